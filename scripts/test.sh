#!/usr/bin/env bash
# The whole test suite: unit tests, then integration tests against a real engine and registry.
# Brings up the engine script's dockerd and registry when none is reachable, and a PostgreSQL with
# scripts/postgres.sh (BOSUN_TEST_DATABASE_URL), and stops only those.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -d node_modules ] || npm ci --no-audit --no-fund
ENGINE_DIR=${BOSUN_ENGINE_DIR:-/tmp/bosun-engine}
PG_DIR=${BOSUN_PG_DIR:-/tmp/bosun-pg}
already_ours=$(ls "$ENGINE_DIR"/*.started 2>/dev/null || true)
pg_already_ours=$(ls "$PG_DIR"/postgres.started 2>/dev/null || true)
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
files=(test/unit/*.test.ts test/integration/*.test.ts test/server/*.test.ts)
[ $# -gt 0 ] && files=("$@")
node --import tsx --test --test-concurrency=1 --test-timeout=300000 "${files[@]}"
