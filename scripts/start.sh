#!/usr/bin/env bash
# Starts Bosun on its embedded defaults: the control plane on SQLite (./data/server, port 8000) and
# this machine's agent registered to it as a device (./data/agent), on the local Docker engine (the
# engine script brings one up when none is reachable). Prints the URL, the admin token and a release
# to create with curl. BOSUN_TARGET=examples/hello.json runs the agent alone on a target file instead.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -d node_modules ] || npm ci --no-audit --no-fund
eval "$(bash scripts/engine.sh up)"
data=${BOSUN_DATA_DIR:-./data}
mkdir -p "$data/agent"
# --host-sandbox: a reboot or shutdown asked through the device API is recorded, not performed.
agent=(node --import tsx src/agent/main.ts --data-dir "$data/agent" --host-sandbox "$data/agent/host")
if [ -n "${BOSUN_TARGET:-}" ]; then exec "${agent[@]}" --target "$BOSUN_TARGET" "$@"; fi

port=${BOSUN_SERVER_PORT:-8000}
url="http://127.0.0.1:$port"
node --import tsx src/server/main.ts --data-dir "$data/server" --port "$port" >"$data/server.log" 2>&1 &
server=$!
agent_pid=
stop() { kill $agent_pid $server 2>/dev/null || true; wait 2>/dev/null || true; }
trap stop EXIT
trap 'exit 130' INT TERM
for _ in $(seq 1 100); do
  grep -q '^Bosun server at' "$data/server.log" && break
  kill -0 $server 2>/dev/null || { cat "$data/server.log" >&2; exit 1; }
  sleep 0.2
done
grep -q '^Bosun server at' "$data/server.log" || { echo "the server did not start: see $data/server.log" >&2; exit 1; }
token=$(grep -A1 'admin API token' "$data/server.log" | tail -1 | tr -d ' ' || true)
if [ -n "$token" ]; then (umask 077; echo "$token" >"$data/admin-token"); fi
node scripts/quickstart.mjs "$url" "$data/admin-token" "$data/agent/config.json"
echo "Server log: $data/server.log. The agent logs below; Ctrl-C stops both."
"${agent[@]}" "$@" &
agent_pid=$!
wait $agent_pid
