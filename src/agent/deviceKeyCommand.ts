// `bosun-agent device-key`: the device key, for the device's operator on the host (curl to the device
// API with every app in scope). It is read from the agent database, which only the agent's user
// (root on a device) can read: the file is 0600, and a file found readable by others is refused
// rather than trusted. Read-only: no key is created, nothing is migrated, a running agent is unaffected.
import fs from 'node:fs';
import path from 'node:path';
import SQLite from 'better-sqlite3';
import { DEVICE_KEY_SETTING } from './api/apiKeys.js';

/** The device key stored under `dataDir`; throws an error saying what to do when it cannot be read. */
export function readDeviceKey(dataDir: string): string {
  const file = path.join(dataDir, 'agent.sqlite');
  let mode: number;
  try {
    mode = fs.statSync(file).mode;
    fs.accessSync(file, fs.constants.R_OK);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new Error(`no agent database at ${file}: give the agent's --data-dir (the key is created at the agent's first start)`);
    if (code === 'EACCES') throw new Error(`cannot read ${file}: run this as the agent's user (root on a device, e.g. with sudo)`);
    throw err;
  }
  if (mode & 0o077)
    throw new Error(`${file} is readable by other users (mode ${(mode & 0o777).toString(8)}): run chmod 600 ${file} (the agent also narrows it at start)`);
  const db = new SQLite(file, { readonly: true, fileMustExist: true });
  try {
    db.pragma('busy_timeout = 5000');
    const row = db.prepare('select value from config where key = ?').get(DEVICE_KEY_SETTING) as { value: string } | undefined;
    if (!row) throw new Error(`no device key in ${file} yet: it is created at the agent's first start`);
    return row.value;
  } finally {
    db.close();
  }
}
