// The dashboard at phone width, driven by the keyboard where a user would: a wrong token refused, then
// login; the admin pages (a registry whose password is never shown again, a project, a provisioning
// key and a token each shown once; the new token logs in); a release refused with the error next to
// its field; a revoked token sends the page back to the login form. No page scrolls sideways, and no
// console error but the answers the flow provokes on purpose. Screenshots in test-results/web/.
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { openServer } from '../../src/server/server.js';
import { openBrowser } from './browser.js';

test('dashboard at phone width: keyboard login, admin resources, shown-once secrets, a field error, a revoked token', async (t) => {
  const dataDir = await fs.mkdtemp(path.join(os.tmpdir(), 'bosun-web-admin-'));
  const server = await openServer({ dataDir });
  const url = await server.app.listen({ port: 0, host: '127.0.0.1' });
  const browser = await openBrowser({ width: 390, height: 844 });
  t.after(async () => {
    await browser.close();
    await server.close();
    await fs.rm(dataDir, { recursive: true, force: true });
  });
  const { page, errors } = browser;
  page.setDefaultTimeout(30_000);
  page.on('dialog', (d) => void d.accept());
  const noSideways = async (where: string) => {
    const wide = await page.evaluate(() =>
      [...document.querySelectorAll('body *')]
        // inside a box that scrolls on its own (a wide table) is fine: the page does not move
        .filter((e) => e.getBoundingClientRect().right > window.innerWidth + 1 && !e.parentElement?.closest('.scroll-x, .vlist, .logs'))
        .map((e) => `${e.tagName.toLowerCase()}.${e.className} (${Math.round(e.getBoundingClientRect().right)} px)`),
    );
    assert.deepEqual(wide, [], `${where}: nothing wider than the phone`);
    const page_ = await page.evaluate(() => ({ scroll: document.documentElement.scrollWidth, width: window.innerWidth }));
    assert.ok(page_.scroll <= page_.width, `${where}: the page does not scroll sideways (${page_.scroll} > ${page_.width} px)`);
  };

  // the keyboard alone: Tab to the token field, type, Enter; a wrong token first
  await page.goto(url);
  await page.getByLabel('API token', { exact: true }).waitFor();
  await page.keyboard.press('Tab');
  await page.keyboard.type('bsn_wrong');
  await page.keyboard.press('Enter');
  await page.getByRole('alert').getByText('This token is not valid').waitFor();
  await page.getByLabel('API token', { exact: true }).fill('');
  await page.keyboard.type(server.firstAdminToken!);
  await page.keyboard.press('Enter');
  await page.getByRole('heading', { name: 'Fleet' }).waitFor();
  await page.getByText('No device yet').waitFor();
  await noSideways('fleet');
  await browser.screenshot('phone-1-fleet');

  await page.getByRole('link', { name: 'Admin' }).click();
  const registries = page.getByRole('region', { name: 'Registries' });
  await registries.getByLabel('URL').fill('registry.example.com');
  await registries.getByLabel('Username').fill('me');
  await registries.getByLabel('Password').fill('s3cret-registry-password');
  await registries.getByRole('button', { name: 'Create' }).click();
  await registries.getByRole('cell', { name: 'registry.example.com', exact: true }).waitFor();
  assert.equal(await registries.getByLabel('Password').inputValue(), '', 'the password field is emptied');
  assert.ok(!(await page.content()).includes('s3cret-registry-password'), 'the password is nowhere on the page');

  const projects = page.getByRole('region', { name: 'Projects' });
  await projects.getByLabel('Name').fill('fleet-app');
  await projects.getByLabel('Default registry id').fill('1');
  await projects.getByRole('button', { name: 'Create' }).click();
  await projects.getByRole('cell', { name: 'fleet-app', exact: true }).waitFor();

  const keys = page.getByRole('region', { name: 'Provisioning keys' });
  await keys.getByLabel('Name').fill('line 1');
  await keys.getByLabel('Project id').fill('1');
  await keys.getByRole('button', { name: 'Create' }).click();
  assert.match((await keys.getByTestId('shown-once').textContent()) ?? '', /^bsp_/);

  const tokens = page.getByRole('region', { name: 'API tokens' });
  await tokens.getByLabel('Name').fill('ci');
  await tokens.getByRole('button', { name: 'Create' }).click();
  const token = (await tokens.getByTestId('shown-once').textContent())!;
  assert.match(token, /^bsn_/);
  await noSideways('admin');
  await browser.screenshot('phone-2-admin');
  // shown once: not after a reload
  await page.reload();
  await tokens.getByRole('cell', { name: 'ci', exact: true }).waitFor();
  assert.equal(await page.getByTestId('shown-once').count(), 0);

  // a release the API refuses: the error is next to the field it names, which is marked invalid
  await page.getByRole('link', { name: 'Releases' }).click();
  // a compose file with a key the server cannot honour: named next to the compose field
  await page.getByLabel('Version').fill('1.0.0');
  await page.getByLabel('docker-compose.yml').fill('services:\n  web:\n    image: acme/web:1\n    build: .\n');
  await page.getByRole('button', { name: 'Create release' }).click();
  await page.locator('#f-compose--compose-error').getByText('services.web.build: not supported').waitFor();
  assert.equal(await page.getByLabel('docker-compose.yml').getAttribute('aria-invalid'), 'true');
  // the form
  await page.getByLabel('a form').check();
  await page.getByLabel('Version').fill('1.0.0');
  await page.getByLabel('Name', { exact: true }).fill('web');
  await page.getByLabel('Image').fill('Not An Image');
  await page.getByRole('button', { name: 'Create release' }).click();
  const image = page.getByLabel('Image');
  await page.locator('#f--containers-0-image-error').getByText('is not an image name').waitFor();
  assert.equal(await image.getAttribute('aria-invalid'), 'true');
  assert.equal(await image.getAttribute('aria-describedby'), 'f--containers-0-image-error');
  await noSideways('releases');
  await browser.screenshot('phone-3-release-error');
  await image.fill('acme/web');
  await page.getByLabel('Ports').fill('nonsense');
  await page.getByRole('button', { name: 'Create release' }).click();
  await page.locator('#f--containers-0-startup-parameters-port-bindings-error').getByText('nonsense').waitFor();
  assert.equal(await image.getAttribute('aria-invalid'), null, 'the image is no longer marked');
  await page.getByLabel('Ports').fill('127.0.0.1:8080:80');
  await page.getByRole('button', { name: 'Create release' }).click();
  await page.getByText(/Release 1\.0\.0 \(#\d+\) created/).waitFor();
  await page.locator('[data-release="1.0.0"]').getByText('active (newest)').waitFor();

  // the new token logs in; revoked, the next call sends the page back to the login form
  await page.getByRole('button', { name: 'Log out' }).click();
  await page.getByLabel('API token', { exact: true }).fill(token);
  await page.getByRole('button', { name: 'Log in' }).click();
  await page.getByRole('heading', { name: 'Fleet' }).waitFor();
  const id = (await server.tokens.list()).find((x) => x.name === 'ci')!.id;
  await server.tokens.revoke(id);
  await page.getByRole('link', { name: 'Admin' }).click();
  await page.getByLabel('API token', { exact: true }).waitFor();

  // Chromium logs every answer >= 400 as "Failed to load resource": only those the flow provoked
  const provoked = /Failed to load resource: the server responded with a status of (401 \(Unauthorized\)|400 \(Bad Request\))/;
  assert.deepEqual(
    errors.filter((e) => !provoked.test(e)),
    [],
    'no other console error',
  );
  assert.ok(errors.length > 0, 'the collector sees what the browser logs');
});
