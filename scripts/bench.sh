#!/usr/bin/env bash
# The benchmark suite (BENCHMARKS.md): fresh deploy vs docker-compose, no-op reconcile time, and the
# bundled agent's memory; on request, the control plane's device link and telemetry logbook. Like scripts/test.sh, brings up
# the engine script's dockerd and registry when none is reachable and stops only those.
# Usage: scripts/bench.sh [deploy|noopReconcile|agentRss|deviceLink|logbook|dashboard ...]
# Env: BENCH_REPS (5), BENCH_NOOP_ITERATIONS (200), BENCH_RSS_IDLE_S (20), BENCH_DEPLOY_SIZES (5,20),
#      BENCH_RSS_EXTRA ("flags;flags": more V8 flag sets for the bundle), BENCH_JSON (also write the summary there),
#      BENCH_TIMEOUT_S (420: the last-resort limit of each bench).
# agentRss: BENCH_RSS_CHECK_MB (CI's short form, `npm run bench:rss-check`: only the shipped launcher, failing
#      when its idle RSS is above this), BENCH_RSS_ONLY, BENCH_RSS_COMPARE (see bench/agentRss.bench.ts).
# deviceLink, logbook: BENCH_DATABASE_URL (a PostgreSQL where it may create a database; default: the test
#      cluster of scripts/postgres.sh, started for it and stopped after when we started it), BENCH_DL_*
#      (see bench/deviceLink.bench.ts), BENCH_LB_* (see bench/logbook.bench.ts).
set -euo pipefail
cd "$(dirname "$0")/.."
log() { echo "[bench] $*" >&2; }

[ -d node_modules ] || npm ci --no-audit --no-fund
ENGINE_DIR=${BOSUN_ENGINE_DIR:-/tmp/bosun-engine}
already_ours=$(ls "$ENGINE_DIR"/*.started 2>/dev/null || true)
out=$(mktemp -d "${TMPDIR:-/tmp}/bosun-bench-out-XXXXXX")
pg_started=
cleanup() {
  rm -rf "$out"
  [ -z "$pg_started" ] || bash scripts/postgres.sh down
  [ -n "$already_ours" ] || bash scripts/engine.sh down
}
trap cleanup EXIT
eval "$(bash scripts/engine.sh up)"

log "building the agent bundle"
npm run build --silent >&2

benches=(deploy noopReconcile agentRss)
[ $# -gt 0 ] && benches=("$@")
# the deploy bench compares with docker-compose; the others do without it
if [[ " ${benches[*]} " == *" deploy "* ]] && ! command -v docker-compose >/dev/null; then
  log "installing docker-compose (Debian's, v1)"
  apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker-compose >&2
fi

if [[ " ${benches[*]} " == *" deviceLink "* || " ${benches[*]} " == *" logbook "* ]]; then
  # 10k simulated devices: each socket is a file descriptor in the server process and in the fleet process
  ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
  if [ -z "${BENCH_DATABASE_URL:-}" ] && [ "${BENCH_DL_BACKENDS:-sqlite,postgres}" != sqlite ]; then
    pg_already=$(ls "${BOSUN_PG_DIR:-/tmp/bosun-pg}"/postgres.started 2>/dev/null || true)
    if pg_env=$(bash scripts/postgres.sh up); then
      eval "$pg_env"
      export BENCH_DATABASE_URL=$BOSUN_TEST_DATABASE_URL
      [ -n "$pg_already" ] || pg_started=1
    else
      log "no PostgreSQL (scripts/postgres.sh up failed): deviceLink and logbook measure SQLite only"
    fi
  fi
fi
log "load average before the benches: $(cut -d' ' -f1-3 /proc/loadavg) on $(nproc) cores (other work on the machine skews the figures)"
started=$SECONDS
status=0
for b in "${benches[@]}"; do
  [ -f "bench/$b.bench.ts" ] || { log "no bench named $b"; exit 2; }
  echo "== $b"
  # every bench bounds its own waits; this is the last resort (SIGTERM lets it clean up)
  BENCH_OUT=$out timeout -k 30 "${BENCH_TIMEOUT_S:-420}" node --import tsx "bench/$b.bench.ts" || { status=1; log "$b failed"; }
done
log "benches took $((SECONDS - started)) s"
BENCH_LIST="${benches[*]}" node --import tsx bench/summary.ts "$out" || status=1
exit $status
