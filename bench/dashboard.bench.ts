// The dashboard's fleet page with 10,000 devices, in Debian's chromium (headless, software rendering,
// as test/web launches it): a real server (SQLite) with BENCH_WEB_DEVICES rows written directly in
// the shape state reports leave, the built dashboard (dist/web, built by scripts/bench.sh's `npm run
// build`). Measured:
// - first render: from navigation start (token already in session storage) to the first device row
//   in the DOM, and to the whole fleet counted ("10000 devices"), BENCH_REPS page loads;
// - scroll: the list scrolled by 120 px every animation frame for 600 frames; the time between
//   frames (median, p95, max, frames over 50 ms), and how many rows are in the DOM meanwhile;
// - live: 100 devices change in the database; the time until the page shows the last of them, and
//   the server's look at the fleet (list + serialise of all devices) that each tick of the stream makes.
import { randomUUID } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { openServer } from '../src/server/server.js';
import { openBrowser } from '../test/web/browser.js';
import { intEnv, log, median, onCleanup, percentile, REPS, round, runBench, tempDir } from './lib.js';

const DEVICES = intEnv('BENCH_WEB_DEVICES', 10_000);
const SCROLL_FRAMES = 600;

const state = (release: number, status: string, progress: number | null) =>
  JSON.stringify({
    reported_at: new Date().toISOString(),
    apps: {
      '1': {
        releaseId: release,
        targetReleaseId: release,
        updateStatus: status,
        services: { web: { status: 'Running', downloadProgress: progress, error: null }, db: { status: 'Running', downloadProgress: null, error: null } },
      },
    },
  });

await runBench('dashboard', async () => {
  const dataDir = await tempDir('bosun-bench-web-');
  const server = await openServer({ dataDir });
  onCleanup(() => server.close());
  const now = new Date().toISOString();
  const ids: string[] = [];
  for (let first = 0; first < DEVICES; first += 500) {
    const rows = Array.from({ length: Math.min(500, DEVICES - first) }, (_, i) => {
      const id = randomUUID();
      ids.push(id);
      return {
        id,
        unit_id: randomUUID().replaceAll('-', ''),
        device_type: 'generic-amd64',
        name: `device-${String(first + i).padStart(5, '0')}`,
        device_key_hash: randomUUID(),
        created_at: now,
        last_seen_at: now,
        agent_version: '0.1.0',
        state_json: state(1, 'done', null),
      };
    });
    await server.db.insertInto('device').values(rows).execute();
  }
  const url = await server.app.listen({ port: 0, host: '127.0.0.1' });
  log(`${DEVICES} devices on ${url}`);

  const lookMs: number[] = [];
  for (let i = 0; i < 5; i++) {
    const t0 = performance.now();
    JSON.stringify(await server.services.devices.list());
    lookMs.push(performance.now() - t0);
  }

  const browser = await openBrowser();
  onCleanup(() => browser.close());
  const { page } = browser;
  await page.addInitScript((token) => {
    sessionStorage.setItem('bosun.token', token);
    // when the first row and the full count appear, by the page's own clock (from navigation start)
    const marks: Record<string, number> = {};
    Object.assign(window, { benchMarks: marks });
    new MutationObserver(() => {
      if (!marks.firstRow && document.querySelector('[data-device]')) marks.firstRow = performance.now();
      if (!marks.allCounted && /\b\d{4,} devices\b/.test(document.querySelector('.summary')?.textContent ?? '')) marks.allCounted = performance.now();
    }).observe(document, { childList: true, subtree: true, characterData: true });
  }, server.firstAdminToken!);

  const firstRow: number[] = [];
  const allCounted: number[] = [];
  for (let i = 0; i < REPS; i++) {
    await page.goto(url);
    await page.locator('[data-device]').first().waitFor({ timeout: 60_000 });
    await page.getByText(`${DEVICES} devices`).waitFor({ timeout: 60_000 });
    const marks = (await page.evaluate(() => (window as unknown as { benchMarks: Record<string, number> }).benchMarks)) as Record<string, number>;
    firstRow.push(marks.firstRow!);
    allCounted.push(marks.allCounted!);
  }

  const scroll = await page.evaluate(async (frames) => {
    const list = document.querySelector<HTMLElement>('.vlist')!;
    const gaps: number[] = [];
    let rowsMax = 0;
    let last = performance.now();
    for (let i = 0; i < frames; i++) {
      list.scrollTop += 120;
      await new Promise(requestAnimationFrame);
      const t = performance.now();
      gaps.push(t - last);
      last = t;
      rowsMax = Math.max(rowsMax, list.querySelectorAll('li').length);
    }
    return { gaps, rowsMax, scrolledTo: list.scrollTop };
  }, SCROLL_FRAMES);

  // 100 devices start downloading; the page shows the last of them without a reload
  const changed = ids.slice(-100);
  await page.getByLabel('Search').fill(
    await server.db
      .selectFrom('device')
      .select('name')
      .where('id', '=', changed.at(-1)!)
      .executeTakeFirstOrThrow()
      .then((r) => r.name),
  );
  const t0 = performance.now();
  await server.db
    .updateTable('device')
    .set({ state_json: state(2, 'downloading', 40) })
    .where('id', 'in', changed)
    .execute();
  await page
    .locator(`[data-device="${changed.at(-1)}"]`)
    .getByText('updating')
    .waitFor({ timeout: 30_000 });
  const liveMs = performance.now() - t0;

  const gaps = scroll.gaps;
  const result = {
    devices: DEVICES,
    firstRowMs: { median: round(median(firstRow), 0), max: round(Math.max(...firstRow), 0), runs: firstRow.map((x) => round(x, 0)) },
    allCountedMs: { median: round(median(allCounted), 0), max: round(Math.max(...allCounted), 0) },
    scrollFrameMs: {
      frames: gaps.length,
      median: round(median(gaps), 1),
      p95: round(percentile(gaps, 95), 1),
      max: round(Math.max(...gaps), 1),
      over50ms: gaps.filter((g) => g > 50).length,
    },
    rowsInDomMax: scroll.rowsMax,
    liveUpdateMs: round(liveMs, 0),
    serverLookMs: { median: round(median(lookMs), 0), max: round(Math.max(...lookMs), 0) },
  };
  log(JSON.stringify(result, null, 2));
  return result;
});
