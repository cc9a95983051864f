// The dashboard in Debian's Chromium against a real control plane with a real agent on the real
// engine: log in, create a release from a compose file, watch the device converge live (no reload), tail a line the
// container prints (one service's lines, paused and resumed), restart its service, a reboot refused by the app's update lock, run a command,
// plot a telemetry field. Each step leaves a
// screenshot in test-results/web/; a console error anywhere fails the test.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { controlPlane, imageName, provisionedDevice, tag } from '../integration/controlPlane.js';
import { containersOf, execIn } from '../integration/harness.js';
import { openBrowser } from './browser.js';

const MARKER = `hello-from-the-web-test-${process.pid}`;

test('dashboard: login, a release from a compose file deployed live, its log line, a restart, a command, a telemetry chart', async (t) => {
  const cp = await controlPlane(t);
  const dev = await provisionedDevice(t, cp, 'webflow', { metricsInterval: 1000 });
  const deviceId = await dev.deviceId();
  const browser = await openBrowser();
  t.after(() => browser.close());
  const { page, errors } = browser;
  page.setDefaultTimeout(90_000);

  // login: the token is checked before it is kept
  await page.goto(cp.url);
  await page.getByLabel('API token', { exact: true }).fill(cp.server.firstAdminToken!);
  await page.getByRole('button', { name: 'Log in' }).click();
  await page.getByRole('heading', { name: 'Fleet' }).waitFor();
  const row = page.locator(`[data-device="${deviceId}"]`);
  await row.getByText('online').waitFor();
  await browser.screenshot('1-fleet');

  // a release from a compose file, uploaded; the page is never reloaded from here on
  await page.evaluate(() => Object.assign(window, { notReloaded: true }));
  await page.getByRole('link', { name: 'Releases' }).click();
  await page.getByLabel('Version').fill('1.0.0');
  const compose = `services:\n  main:\n    image: ${imageName}:${tag}\n    command: ["sh", "-c", "echo ${MARKER}; exec sleep 3600"]\n    restart: always\n`;
  await page
    .getByLabel('Compose file', { exact: true })
    .setInputFiles({ name: 'docker-compose.yml', mimeType: 'application/yaml', buffer: Buffer.from(compose) });
  // the page reads the file asynchronously (File.text())
  for (let i = 0; (await page.getByLabel('docker-compose.yml').inputValue()) !== compose; i++) {
    assert.ok(i < 100, 'the upload is shown');
    await page.waitForTimeout(100);
  }
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

  // the release's deployment across its devices, and that it is the one running
  await page.getByRole('link', { name: 'Releases' }).click();
  const release = page.locator('[data-release="1.0.0"]');
  await release.getByText('1 of 1 deployed').waitFor();
  await release.getByText('running on 1 device(s)').waitFor();
  await release.getByText('active (newest)').waitFor();
  await browser.screenshot('3b-release-progress');
  await page.getByRole('link', { name: 'Fleet' }).click();

  // the device page: its service, the line the container printed, in the live tail
  await row.getByRole('link').click();
  await page.getByRole('heading', { name: 'Services' }).waitFor();
  await page.locator('[data-service="main"]').getByText('Running').waitFor();
  await page.getByTestId('log-lines').getByText(MARKER).first().waitFor();
  await browser.screenshot('4-device-logs');

  // one service's lines only; paused, a restart's new line is held until resumed
  const logLines = page.getByTestId('log-lines');
  await page.getByRole('combobox', { name: 'Service' }).selectOption('main');
  await logLines.getByText(MARKER).first().waitFor();
  assert.equal(await logLines.getByText('Starting service main').count(), 0, 'the agent lines are filtered out');
  await page.getByRole('button', { name: 'Pause' }).click();
  await page.getByRole('button', { name: 'Restart main' }).click();
  await page.getByText('restart main: done').waitFor();
  await page.getByText(/1 new lines held/).waitFor();
  assert.equal(await logLines.getByText(MARKER).count(), 1, 'paused: the new line is not shown');
  await page.getByRole('button', { name: 'Resume' }).click();
  await logLines.getByText(MARKER).nth(1).waitFor();

  // a reboot while the app holds its update lock: refused, and the page says which app holds it
  const main = (await containersOf(dev.appId)).find((c) => c.service === 'main' && c.state === 'running')!;
  assert.equal((await execIn(main.id, ['touch', '/tmp/balena/updates.lock'])).exitCode, 0);
  page.once('dialog', (d) => void d.accept());
  await page.getByRole('button', { name: 'Reboot device' }).click();
  await page.getByText(`reboot refused (update lock): updates are locked for app ${dev.appId}`).waitFor();
  await browser.screenshot('5-reboot-locked');

  // a command and its result
  await page.getByRole('combobox', { name: 'Command', exact: true }).fill('test.ping');
  await page.getByRole('button', { name: 'Execute' }).click();
  const result = page.getByTestId('command-results').locator('li').first();
  await result.getByText('done').waitFor();
  assert.match((await result.textContent()) ?? '', /true/);
  await browser.screenshot('6-command');

  // a telemetry field the agent records each second
  await page.getByLabel('Field').fill('device.cpu.usage');
  for (let i = 0; ; i++) {
    await page.getByRole('button', { name: 'Plot' }).click();
    if (await page.getByTestId('telemetry-chart').isVisible()) break;
    assert.ok(i < 60, 'telemetry arrives within a minute');
    await page.waitForTimeout(1000);
  }
  assert.equal(await page.getByTestId('telemetry-chart').locator('canvas').count(), 1);
  await browser.screenshot('7-telemetry');

  // a geo_point track, posted by the app through the device API, drawn on its own axes
  const at = (s: number) => new Date(Date.now() - s * 1000).toISOString();
  const track = [57.047, 57.048, 57.05].map((lat, i) => ({ field: 'track.pos.loc', type: 'geo_point', value: { lat, lon: 9.939 + i / 1000 }, ts: at(30 - i) }));
  const posted = await execIn(main.id, [
    'sh',
    '-c',
    `wget -qO- --header 'Content-Type: application/json' --post-data '${JSON.stringify(track)}' ` +
      '"$BALENA_SUPERVISOR_ADDRESS/v2/telemetry?apikey=$BALENA_SUPERVISOR_API_KEY"',
  ]);
  assert.equal(posted.exitCode, 0, posted.output);
  await page.getByLabel('Field').fill('track.pos.loc');
  await page.getByLabel('Type').selectOption('geo_point');
  for (let i = 0; ; i++) {
    await page.getByRole('button', { name: 'Plot' }).click();
    if (await page.getByTestId('telemetry-track').isVisible()) break;
    assert.ok(i < 60, 'the track arrives within a minute');
    await page.waitForTimeout(1000);
  }
  assert.equal(await page.getByRole('img', { name: 'track of 3 points' }).count(), 1);
  await browser.screenshot('7b-track');

  // the device page at phone width: nothing makes the page scroll sideways
  await page.setViewportSize({ width: 390, height: 844 });
  await page.waitForTimeout(300);
  const widths = await page.evaluate(() => ({ scroll: document.documentElement.scrollWidth, width: window.innerWidth }));
  assert.ok(widths.scroll <= widths.width, `the device page fits a phone (${widths.scroll} > ${widths.width} px)`);
  await browser.screenshot('8-device-phone');

  // Chromium logs every answer >= 400 as "Failed to load resource": only the refused reboot's may be there
  const refused = /Failed to load resource: the server responded with a status of 423 \(Locked\) \(http:\/\/[^/]+\/supervisor\/v1\/reboot\)$/;
  assert.deepEqual(
    errors.filter((e) => !refused.test(e)),
    [],
    'no console error on any page',
  );
});
