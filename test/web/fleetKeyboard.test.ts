// The virtualised fleet list by keyboard alone, in Debian's Chromium, with 2,000 devices (rows out of
// view are not in the page, so Tab could never reach them): the list is one tab stop (a listbox with
// aria-activedescendant), End / Page Up / arrows move the active row and scroll it into view, Enter
// opens a device far down the list. No console error. Screenshots in test-results/web/.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { openServer } from '../../src/server/server.js';
import { openBrowser } from './browser.js';

const DEVICES = 2000;
const name = (i: number) => `device-${String(i).padStart(5, '0')}`;

test('fleet list: keyboard only, a device far down the list reached and opened', async (t) => {
  const dataDir = await fs.mkdtemp(path.join(os.tmpdir(), 'bosun-web-keys-'));
  const server = await openServer({ dataDir });
  const browser = await openBrowser();
  t.after(async () => {
    await browser.close();
    await server.close();
    await fs.rm(dataDir, { recursive: true, force: true });
  });
  const now = new Date().toISOString();
  const ids = Array.from({ length: DEVICES }, () => randomUUID());
  for (let first = 0; first < DEVICES; first += 500) {
    const rows = ids.slice(first, first + 500).map((id, i) => ({
      id,
      unit_id: randomUUID().replaceAll('-', ''),
      device_type: 'generic-amd64',
      name: name(first + i),
      device_key_hash: randomUUID(),
      created_at: now,
    }));
    await server.db.insertInto('device').values(rows).execute();
  }
  const url = await server.app.listen({ port: 0, host: '127.0.0.1' });
  const { page, errors } = browser;
  page.setDefaultTimeout(30_000);
  await page.addInitScript((token) => sessionStorage.setItem('bosun.token', token), server.firstAdminToken!);
  await page.goto(url);
  await page.getByText(`${DEVICES} devices`).waitFor();
  const list = page.getByRole('listbox', { name: 'Devices' });
  await list.locator('[data-device]').first().waitFor();

  /** the active row as the list announces it, and whether it is inside the list's box */
  const active = () =>
    list.evaluate((box) => {
      const row = document.getElementById(box.getAttribute('aria-activedescendant') ?? '');
      if (!row) return null;
      const r = row.getBoundingClientRect();
      const b = box.getBoundingClientRect();
      return {
        name: row.querySelector('.name')?.textContent,
        index: Number(row.getAttribute('aria-posinset')) - 1,
        setsize: Number(row.getAttribute('aria-setsize')),
        selected: row.getAttribute('aria-selected'),
        role: row.getAttribute('role'),
        inView: r.top >= b.top - 1 && r.bottom <= b.bottom + 1,
      };
    });
  const focused = () => page.evaluate(() => document.activeElement?.getAttribute('role') ?? document.activeElement?.tagName.toLowerCase());

  // Tab from the top of the page reaches the list: one tab stop, the first row active
  let tabs = 0;
  while ((await focused()) !== 'listbox') {
    assert.ok(++tabs < 20, 'Tab reaches the list');
    await page.keyboard.press('Tab');
  }
  assert.deepEqual(await active(), { name: name(0), index: 0, setsize: DEVICES, selected: 'true', role: 'option', inView: true });
  // the rows' links are no tab stops: the next Tab leaves the list
  await page.keyboard.press('Tab');
  assert.equal(await page.evaluate(() => !!document.activeElement?.closest('[role="listbox"]')), false, 'Tab leaves the list');
  await page.keyboard.press('Shift+Tab');
  assert.equal(await focused(), 'listbox');

  // End: the last row, scrolled into view
  await page.keyboard.press('End');
  assert.deepEqual(await active(), { name: name(DEVICES - 1), index: DEVICES - 1, setsize: DEVICES, selected: 'true', role: 'option', inView: true });
  // Page Up moves by a page (more than one row), the arrows by one, each kept in view
  await page.keyboard.press('PageUp');
  const onePage = DEVICES - 1 - (await active())!.index;
  assert.ok(onePage > 1, `a page is several rows (${onePage})`);
  await page.keyboard.press('PageUp');
  await page.keyboard.press('ArrowUp');
  await page.keyboard.press('ArrowUp');
  await page.keyboard.press('ArrowDown');
  const target = DEVICES - 1 - 2 * onePage - 1;
  assert.deepEqual(await active(), { name: name(target), index: target, setsize: DEVICES, selected: 'true', role: 'option', inView: true });
  await page.keyboard.press('Home');
  assert.equal((await active())!.index, 0);
  await page.keyboard.press('PageDown');
  assert.equal((await active())!.index, onePage);
  await page.keyboard.press('End');
  for (let i = 0; i < 2; i++) await page.keyboard.press('PageUp');
  for (let i = 0; i < 2; i++) await page.keyboard.press('ArrowUp');
  await page.keyboard.press('ArrowDown');
  assert.equal((await active())!.name, name(target));
  await browser.screenshot('keys-1-fleet-row-far-down');

  // Enter opens it
  await page.keyboard.press('Enter');
  await page.getByRole('heading', { name: name(target) }).waitFor();
  assert.equal(new URL(page.url()).pathname, `/devices/${ids[target]}`);
  await browser.screenshot('keys-2-device-opened');
  assert.deepEqual(errors, [], 'no console error');
});
