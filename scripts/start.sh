#!/usr/bin/env bash
# Starts Bosun on its embedded defaults: the control plane on SQLite (./data/server, port 8000) and
# this machine's agent registered to it as a device (./data/agent), on the local Docker engine (the
# engine script brings one up when none is reachable). The agent is the shipped bundle
# (dist/bosun-agent, rebuilt when its sources changed). Prints the URLs, the admin token and a
# release to create with curl. BOSUN_TARGET=examples/hello.json runs the agent alone on a target file.
# Ports are checked before anything starts; SIGINT or SIGTERM stops everything this started (the
# server, the agent) but not the engine, whose stop command it prints. Each log keeps the previous
# run's as <log>.1.
set -euo pipefail
cd "$(dirname "$0")/.."
data=${BOSUN_DATA_DIR:-./data}
port=${BOSUN_SERVER_PORT:-8000}
api_port=${BOSUN_API_PORT:-48484}
unik_port=${BOSUN_UNIK_PORT:-3000}
url="http://127.0.0.1:$port"

ports=("0.0.0.0:$api_port=the device API: BOSUN_API_PORT=<port> npm start")
[ "$unik_port" = off ] || ports+=("127.0.0.1:$unik_port=the UniK API: BOSUN_UNIK_PORT=<port> npm start")
[ -n "${BOSUN_TARGET:-}" ] || ports+=("127.0.0.1:$port=the server: BOSUN_SERVER_PORT=<port> npm start")
node scripts/check-ports.mjs "${ports[@]}"

[ -d node_modules ] || npm ci --no-audit --no-fund
# what ships: the bundled agent, rebuilt when a source it is built from is newer
if [ ! -f dist/agent.cjs ] || [ -n "$(find src/agent src/shared scripts/bundle-agent.mjs scripts/bundleRequireRules.mjs -newer dist/agent.cjs -print -quit)" ]; then
  echo "Bundling the agent (node scripts/bundle-agent.mjs)…"
  node scripts/bundle-agent.mjs
fi
eval "$(bash scripts/engine.sh up)"
engine_note=
engine_dir=${BOSUN_ENGINE_DIR:-/tmp/bosun-engine}
if [ -f "$engine_dir/dockerd.started" ] || [ -f "$engine_dir/registry.started" ]; then
  engine_note="The Docker engine and registry (scripts/engine.sh) keep running after this stops, with the apps; stop them with: bash scripts/engine.sh down"
fi
mkdir -p "$data/agent"
rotate() { if [ -f "$1" ]; then mv -f "$1" "$1.1"; fi; }
# --host-sandbox: a reboot or shutdown asked through the device API is recorded, not performed.
agent=(dist/bosun-agent --data-dir "$data/agent" --host-sandbox "$data/agent/host" --api-port "$api_port" --unik-port "$unik_port")
if [ -n "${BOSUN_TARGET:-}" ]; then exec "${agent[@]}" --target "$BOSUN_TARGET" "$@"; fi

pids=()
stop() {
  # once: a second signal (npm may pass on one more) must not end this before what it started has stopped
  trap - EXIT
  trap '' INT TERM HUP
  [ ${#pids[@]} -eq 0 ] || kill -TERM "${pids[@]}" 2>/dev/null || true
  # the agent and the server stop within seconds; whatever has not after 20 s is killed
  for _ in $(seq 1 100); do
    alive=()
    for p in "${pids[@]}"; do if kill -0 "$p" 2>/dev/null; then alive+=("$p"); fi; done
    [ ${#alive[@]} -gt 0 ] || break
    sleep 0.2
  done
  [ ${#alive[@]} -eq 0 ] || kill -KILL "${alive[@]}" 2>/dev/null || true
  wait 2>/dev/null || true
  echo "Stopped the server and the agent (the apps keep running)."
  [ -z "$engine_note" ] || echo "$engine_note"
}
trap stop EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP

rotate "$data/server.log"
node --import tsx src/server/main.ts --data-dir "$data/server" --port "$port" >"$data/server.log" 2>&1 &
server=$!
pids+=("$server")
for _ in $(seq 1 150); do
  grep -q '^Bosun server at' "$data/server.log" && break
  kill -0 "$server" 2>/dev/null || { cat "$data/server.log" >&2; exit 1; }
  sleep 0.2
done
grep -q '^Bosun server at' "$data/server.log" || { echo "the server did not start: see $data/server.log" >&2; exit 1; }
token=$(grep -A1 'admin API token' "$data/server.log" | tail -1 | tr -d ' ' || true)
if [ -n "$token" ]; then (umask 077; echo "$token" >"$data/admin-token"); fi
node scripts/quickstart.mjs "$url" "$data/admin-token" "$data/agent/config.json" "$api_port" "$data"
rotate "$data/agent.log"
# tee -i: a Ctrl-C reaches the whole group; tee must outlive it to pass on the agent's last lines
"${agent[@]}" "$@" > >(tee -i "$data/agent.log") 2>&1 &
pids+=("$!")
echo "Server log: $data/server.log; the agent's below and in $data/agent.log. Ctrl-C (or SIGTERM to npm start) stops both."
[ -z "$engine_note" ] || echo "$engine_note"
# until the agent or the server ends (the other is then stopped); also when whoever started this
# (npm) is gone without passing on a signal
parent=$PPID
while kill -0 "${pids[1]}" 2>/dev/null; do
  kill -0 "$parent" 2>/dev/null || exit 129
  kill -0 "$server" 2>/dev/null || { echo "The server stopped: see $data/server.log" >&2; exit 1; }
  sleep 1 &
  wait $! || true
done
wait "${pids[1]}"
