// What the device link's test files share: a release row written straight to the database.
import { nowIso } from '../../src/server/db/database.js';
import type { Server } from '../../src/server/server.js';
import { hex } from './helpers.js';

/** A release row for these devices, as the releases resource would store it (no target refresh). */
export async function insertRelease(server: Server, project: number, devices: string[], image = 'example/web'): Promise<number> {
  const { id } = await server.db
    .insertInto('release')
    .values({ project_id: project, version: '1.0.0', version_hash: hex(4), remove_containers: '[]', created_at: nowIso() })
    .returning('id')
    .executeTakeFirstOrThrow();
  await server.db
    .insertInto('release_container')
    .values({ release_id: id, position: 0, name: 'web', image, tag: 'v1', required_tags: '[]', startup_parameters: '{}', purge_data: 0, registry_id: null })
    .execute();
  if (devices.length)
    await server.db
      .insertInto('release_device')
      .values(devices.map((device_id) => ({ release_id: id, device_id })))
      .execute();
  return id;
}
