// Collects the benches' result files ($BENCH_OUT/<bench>.json) into one summary: a short table for
// people, then the whole thing as JSON (the last thing printed, from a line `BENCH_SUMMARY_JSON`
// on), also written to $BENCH_JSON when set.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createDocker } from '../src/agent/engine/docker.js';

interface DeployRow {
  services: number;
  bosunMedianS: number;
  composeMedianS: number;
  ratio: number;
}
interface RssRow {
  variant: string;
  ok: boolean;
  maxMb: number;
  finalMb: number;
  finalAnonMb: number;
  meetsGoal: boolean;
}

const dir = process.argv[2] ?? process.env.BENCH_OUT;
if (!dir) throw new Error('usage: summary.ts <results dir>');
const expected = (process.env.BENCH_LIST ?? 'deploy noopReconcile agentRss').split(/\s+/).filter(Boolean);

const results: Record<string, Record<string, unknown> | undefined> = {};
for (const name of expected) {
  const file = path.join(dir, `${name}.json`);
  results[name] = fs.existsSync(file)
    ? (JSON.parse(fs.readFileSync(file, 'utf8')) as Record<string, unknown>)
    : { bench: name, ok: false, error: 'no result (the bench did not finish)' };
}

const engine = await createDocker()
  .version()
  .then((v) => v.Version)
  .catch(() => 'unknown');
const machine = {
  cpus: os.cpus().length,
  cpuModel: os.cpus()[0]?.model ?? 'unknown',
  memGiB: Math.round(os.totalmem() / 2 ** 30),
  node: process.version,
  dockerEngine: engine,
  kernel: os.release(),
  load1AtEnd: Number(os.loadavg()[0]!.toFixed(2)),
};

const lines: string[] = ['', '== summary', `machine: ${machine.cpus} cores (${machine.cpuModel}), node ${machine.node}, Docker Engine ${engine}`];
const d = results.deploy;
const load = (r: Record<string, unknown> | undefined) => {
  const l = r?.load1 as { start: number; end: number } | undefined;
  return l ? ` [load ${l.start} → ${l.end}]` : '';
};
if (!d) {
  // not run
} else if (d.ok) {
  lines.push(`deploy (median of ${String(d.reps)})${load(d)}:`);
  for (const r of d.results as DeployRow[]) {
    lines.push(`  ${String(r.services).padStart(2)} services: bosun ${r.bosunMedianS} s, docker-compose ${r.composeMedianS} s, ratio ${r.ratio} (goal ≤ 1.1)`);
  }
} else lines.push(`deploy: FAILED ${String(d.error ?? '')}`);
const n = results.noopReconcile;
if (!n) {
  // not run
} else if (n.ok) {
  lines.push(
    `no-op reconcile${load(n)}: median ${String(n.applyMedianMs)} ms, p95 ${String(n.applyP95Ms)} ms (goal < 20 ms); ` +
      `engine reads alone ${String(n.engineReadsMedianMs)} ms; ratio ${String(n.ratio)}`,
  );
} else lines.push(`noopReconcile: FAILED ${String(n.error ?? '')}`);
const a = results.agentRss;
if (!a) {
  // not run
} else if (a.ok) {
  lines.push(`agent RSS, 10 services, ${String(a.idleS)} s idle${load(a)}:`);
  for (const r of a.results as RssRow[]) {
    lines.push(
      r.ok
        ? `  ${r.variant}: max ${r.maxMb} MB, final ${r.finalMb} MB (own ${r.finalAnonMb} MB)` +
            (r.variant.startsWith('bundled') ? (r.meetsGoal ? ' — meets ≤ 50 MB idle' : ' — over 50 MB idle') : '')
        : `  ${r.variant}: FAILED`,
    );
  }
} else lines.push(`agentRss: FAILED ${String(a.error ?? '')}`);

const summary = { date: new Date().toISOString(), machine, ok: Object.values(results).every((r) => r?.ok === true), results };
const json = JSON.stringify(summary, null, 2);
if (process.env.BENCH_JSON) fs.writeFileSync(process.env.BENCH_JSON, json + '\n');
console.log(lines.join('\n'));
console.log('BENCH_SUMMARY_JSON');
console.log(json);
process.exit(summary.ok ? 0 : 1);
