// The dashboard in Debian's Chromium against a real control plane with a real agent on the real
// engine: log in, create a release, watch the device converge live (no reload), tail a line the
// container prints, restart its service, run a command, plot a telemetry field. Each step leaves a
// screenshot in test-results/web/; a console error anywhere fails the test.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { controlPlane, imageName, provisionedDevice, tag } from '../integration/controlPlane.js';
import { openBrowser } from './browser.js';

const MARKER = `hello-from-the-web-test-${process.pid}`;

test('dashboard: login, a release deployed live, its log line, a restart, a command, a telemetry chart', async (t) => {
  const cp = await controlPlane(t);
  const dev = await provisionedDevice(t, cp, 'webflow', { metricsInterval: 1000 });
  const deviceId = await dev.deviceId();
  const browser = await openBrowser();
  t.after(() => browser.close());
  const { page, errors } = browser;
  page.setDefaultTimeout(90_000);

  // login: the token is checked before it is kept
  await page.goto(cp.url);
  await page.getByLabel('API token').fill(cp.server.firstAdminToken!);
  await page.getByRole('button', { name: 'Log in' }).click();
  await page.getByRole('heading', { name: 'Fleet' }).waitFor();
  const row = page.locator(`[data-device="${deviceId}"]`);
  await row.getByText('online').waitFor();
  await browser.screenshot('1-fleet');

  // a release from the form; the page is never reloaded from here on
  await page.evaluate(() => Object.assign(window, { notReloaded: true }));
  await page.getByRole('link', { name: 'Releases' }).click();
  await page.getByLabel('Version').fill('1.0.0');
  await page.getByLabel('Name', { exact: true }).fill('main');
  await page.getByLabel('Image').fill(imageName);
  await page.getByLabel('Tag').fill(tag!);
  await page.getByLabel('Command').fill(`sh -c 'echo ${MARKER}; exec sleep 3600'`);
  await page.getByRole('button', { name: 'Create release' }).click();
  await page.getByText(/Release 1\.0\.0 \(#\d+\) created/).waitFor();
  const releaseId = Number((await page.getByText(/Release 1\.0\.0 \(#\d+\) created/).textContent())!.match(/#(\d+)/)![1]);
  await browser.screenshot('2-release-created');

  // the device converges, shown live on the fleet page
  await page.getByRole('link', { name: 'Fleet' }).click();
  await row.getByText(`${releaseId} / ${releaseId}`).waitFor();
  await row.getByTestId('status').getByText('idle').waitFor();
  assert.equal(await page.evaluate(() => (window as unknown as { notReloaded?: boolean }).notReloaded), true, 'the page was not reloaded');
  await browser.screenshot('3-fleet-converged');

  // the device page: its service, the line the container printed, in the live tail
  await row.getByRole('link').click();
  await page.getByRole('heading', { name: 'Services' }).waitFor();
  await page.locator('[data-service="main"]').getByText('Running').waitFor();
  await page.getByTestId('log-lines').getByText(MARKER).first().waitFor();
  await browser.screenshot('4-device-logs');

  // a restart through the device's own API
  await page.getByRole('button', { name: 'Restart main' }).click();
  await page.getByText('restart main: done').waitFor();

  // a command and its result
  await page.getByRole('combobox', { name: 'Command', exact: true }).fill('test.ping');
  await page.getByRole('button', { name: 'Execute' }).click();
  const result = page.getByTestId('command-results').locator('li').first();
  await result.getByText('done').waitFor();
  assert.match((await result.textContent()) ?? '', /true/);
  await browser.screenshot('5-command');

  // a telemetry field the agent records each second
  await page.getByLabel('Field').fill('device.cpu.usage');
  for (let i = 0; ; i++) {
    await page.getByRole('button', { name: 'Plot' }).click();
    if (await page.getByTestId('telemetry-chart').isVisible()) break;
    assert.ok(i < 60, 'telemetry arrives within a minute');
    await page.waitForTimeout(1000);
  }
  assert.equal(await page.getByTestId('telemetry-chart').locator('canvas').count(), 1);
  await browser.screenshot('6-telemetry');

  assert.deepEqual(errors, [], 'no console error on any page');
});
