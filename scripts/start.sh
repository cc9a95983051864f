#!/usr/bin/env bash
# Starts the agent on its embedded defaults: SQLite under ./data, the local Docker engine (the
# engine script brings one up when none is reachable), and the target state in examples/hello.json
# (edit it while the agent runs: changes are applied at once).
set -euo pipefail
cd "$(dirname "$0")/.."
[ -d node_modules ] || npm ci --no-audit --no-fund
eval "$(bash scripts/engine.sh up)"
# --host-sandbox: a reboot or shutdown asked through the device API is recorded, not performed.
data=${BOSUN_DATA_DIR:-./data}
exec node --import tsx src/agent/main.ts --data-dir "$data" --target "${BOSUN_TARGET:-examples/hello.json}" --host-sandbox "$data/host" "$@"
