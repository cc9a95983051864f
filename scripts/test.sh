#!/usr/bin/env bash
# The whole test suite: unit tests, then integration tests against a real engine and registry.
# Brings up the engine script's dockerd and registry when none is reachable, and a PostgreSQL with
# scripts/postgres.sh (BOSUN_TEST_DATABASE_URL), and stops only those.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -d node_modules ] || npm ci --no-audit --no-fund
ENGINE_DIR=${BOSUN_ENGINE_DIR:-/tmp/bosun-engine}
PG_DIR=${BOSUN_PG_DIR:-/tmp/bosun-pg}
# What the scripts started before this run and still runs is someone else's (a concurrent run's):
# left running. A stamp whose process is gone (a killed run's) does not count, else this run would
# leave the engine or PostgreSQL it starts itself running.
alive() { kill -0 "$(head -1 "$1" 2>/dev/null)" 2>/dev/null; }
already_ours=$(for f in "$ENGINE_DIR"/*.started; do ! alive "$f" || echo "$f"; done)
pg_already_ours=$(! [ -f "$PG_DIR/postgres.started" ] || ! alive "$PG_DIR/data/postmaster.pid" || echo yes)
eval "$(bash scripts/engine.sh up)"
cleanup() {
  [ -n "$pg_already_ours" ] || bash scripts/postgres.sh down
  [ -n "$already_ours" ] || bash scripts/engine.sh down
}
trap cleanup EXIT
pg_env=$(bash scripts/postgres.sh up)
eval "$pg_env"
# the shipped agent (dist/bosun-agent, dist/agent.cjs) is tested as bundled from these sources
node scripts/bundle-agent.mjs
# the dashboard (dist/web) is tested as built from web/, in Debian's chromium (test/web/)
npm run --silent build:web >/dev/null
run() { node --import tsx --test --test-timeout=300000 "$@"; }
if [ $# -gt 0 ]; then
  run --test-concurrency=1 "$@"
else
  # unit and server test files need no engine and share nothing (temporary dirs and databases, ports
  # the kernel picks), so BOSUN_TEST_CONCURRENCY=4 runs several at a time; on 2 cores that load has
  # made timing-sensitive server tests flaky (a PostgreSQL listener reconnect test), so one at a time
  # by default. The engine tests one file at a time. Both run either way.
  status=0
  run --test-concurrency="${BOSUN_TEST_CONCURRENCY:-1}" test/unit/*.test.ts test/server/*.test.ts || status=1
  run --test-concurrency=1 test/integration/*.test.ts test/web/*.test.ts || status=1
  exit $status
fi
