#!/usr/bin/env bash
# The whole test suite: unit tests, then integration tests against a real engine and registry.
# Brings up the engine script's dockerd and registry when none is reachable and stops only those.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -d node_modules ] || npm ci --no-audit --no-fund
ENGINE_DIR=${BOSUN_ENGINE_DIR:-/tmp/bosun-engine}
already_ours=$(ls "$ENGINE_DIR"/*.started 2>/dev/null || true)
eval "$(bash scripts/engine.sh up)"
cleanup() { [ -n "$already_ours" ] || bash scripts/engine.sh down; }
trap cleanup EXIT
files=(test/unit/*.test.ts test/integration/*.test.ts)
[ $# -gt 0 ] && files=("$@")
node --import tsx --test --test-concurrency=1 --test-timeout=300000 "${files[@]}"
