#!/usr/bin/env bash
# Starts the agent on its embedded defaults: SQLite under ./data, the local Docker engine (the
# engine script brings one up when none is reachable), and the target state in examples/hello.json
# (edit it while the agent runs: changes are applied at once).
set -euo pipefail
cd "$(dirname "$0")/.."
[ -d node_modules ] || npm ci --no-audit --no-fund
eval "$(bash scripts/engine.sh up)"
exec node --import tsx src/agent/main.ts --data-dir "${BOSUN_DATA_DIR:-./data}" --target "${BOSUN_TARGET:-examples/hello.json}" "$@"
