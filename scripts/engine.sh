#!/usr/bin/env bash
# Makes a Docker Engine and an authenticated registry available for tests and local runs.
#   scripts/engine.sh up    start what is missing, build and push the test images, print the env
#   scripts/engine.sh env   print the env (export lines) for what is running
#   scripts/engine.sh down  stop only what `up` started
#   scripts/engine.sh restart-engine   restart the private dockerd (tests of engine restarts)
# Uses the engine behind $DOCKER_HOST (or the default socket) when `docker info` works there;
# otherwise installs Debian's docker.io and starts a private dockerd under $BOSUN_ENGINE_DIR.
set -euo pipefail

DIR=${BOSUN_ENGINE_DIR:-/tmp/bosun-engine}
REG_PORT=${BOSUN_REGISTRY_PORT:-5123}
REG_USER=bosun
REG_PASS=bosun-test-password
TCP_DEV=${BOSUN_ENGINE_TCP:-}   # e.g. 127.0.0.1:2375 exposes the private engine on TCP (development only)
mkdir -p "$DIR"

log() { echo "[engine] $*" >&2; }

need_pkgs() {
  local missing=()
  command -v dockerd >/dev/null || missing+=(docker.io)
  command -v docker-registry >/dev/null || missing+=(docker-registry)
  dpkg -s busybox-static >/dev/null 2>&1 || missing+=(busybox-static)
  command -v htpasswd >/dev/null || missing+=(apache2-utils)
  if [ ${#missing[@]} -gt 0 ]; then
    log "installing ${missing[*]}"
    # package lists are fetched each time something is missing: lists an earlier run fetched may
    # name versions the mirror no longer has
    apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >&2
  fi
}

engine_host() {
  if [ -f "$DIR/docker.pid" ] && kill -0 "$(cat "$DIR/docker.pid")" 2>/dev/null; then
    echo "unix://$DIR/docker.sock"
  elif [ -n "${DOCKER_HOST:-}" ]; then
    echo "$DOCKER_HOST"
  else
    echo "unix:///var/run/docker.sock"
  fi
}

engine_ok() { DOCKER_HOST="$1" timeout 10 docker info >/dev/null 2>&1; }

start_engine() {
  local host; host=$(engine_host)
  if engine_ok "$host"; then echo "$host"; return; fi
  # a dockerd of ours that runs but is slow to answer (a loaded machine) is waited for, never
  # replaced: a second one on the same folders would fail and its recovery would stop the first
  if [ -f "$DIR/docker.pid" ] && kill -0 "$(cat "$DIR/docker.pid")" 2>/dev/null; then
    for _ in $(seq 1 12); do engine_ok "$host" && { echo "$host"; return; }; sleep 5; done
    log "the dockerd in $DIR (pid $(cat "$DIR/docker.pid")) runs but has not answered for 2 minutes; see $DIR/dockerd.log"
    return 1
  fi
  need_pkgs
  log "starting a private dockerd in $DIR"
  mkdir -p "$DIR/data" "$DIR/exec"
  local hosts=(-H "unix://$DIR/docker.sock")
  [ -n "$TCP_DEV" ] && hosts+=(-H "tcp://$TCP_DEV")
  local extra=()
  [ -f "$DIR/dockerd.flags" ] && read -r -a extra < "$DIR/dockerd.flags"
  nohup dockerd --data-root "$DIR/data" --exec-root "$DIR/exec" --pidfile "$DIR/docker.pid" \
    "${hosts[@]}" "${extra[@]}" >"$DIR/dockerd.log" 2>&1 &
  echo $! > "$DIR/dockerd.started"
  host="unix://$DIR/docker.sock"
  for _ in $(seq 1 120); do engine_ok "$host" && break; sleep 0.5; done
  if ! engine_ok "$host" && [ ! -f "$DIR/dockerd.flags" ] && [ -z "${RESTARTING:-}" ]; then
    log "dockerd failed with defaults; retrying with --iptables=false --bridge=none --storage-driver=vfs. Its log:"
    tail -5 "$DIR/dockerd.log" >&2
    stop_engine
    echo "--iptables=false --bridge=none --storage-driver=vfs" > "$DIR/dockerd.flags"
    # the failed start stored a default bridge that a --bridge=none dockerd panics on at its next restart
    rm -f "$DIR/data/network/files/local-kv.db"
    start_engine; return
  fi
  if ! engine_ok "$host" && grep -q 'libnetwork.*reservePools' "$DIR/dockerd.log" && [ -z "${NETWORKS_RESET:-}" ]; then
    # dockerd 20.10 can panic restoring a network it stored itself; a test engine drops its networks
    log "dockerd panicked restoring its networks; starting again without them"
    stop_engine
    mv "$DIR/data/network/files/local-kv.db" "$DIR/data/network/files/local-kv.db.broken.$(date +%s)"
    NETWORKS_RESET=1 start_engine; return
  fi
  engine_ok "$host" || { tail -20 "$DIR/dockerd.log" >&2; log "dockerd did not come up"; exit 1; }
  echo "$host"
}

start_registry() {
  if curl -s -o /dev/null "http://127.0.0.1:$REG_PORT/v2/"; then return; fi
  need_pkgs
  log "starting a registry on 127.0.0.1:$REG_PORT"
  mkdir -p "$DIR/registry"
  htpasswd -Bbc "$DIR/registry/htpasswd" "$REG_USER" "$REG_PASS" >/dev/null 2>&1
  cat > "$DIR/registry/config.yml" <<YAML
version: 0.1
log: { level: warn }
storage:
  filesystem: { rootdirectory: $DIR/registry/data }
  delete: { enabled: true }
http: { addr: 127.0.0.1:$REG_PORT }
auth:
  htpasswd: { realm: bosun-test, path: $DIR/registry/htpasswd }
YAML
  nohup docker-registry serve "$DIR/registry/config.yml" >"$DIR/registry.log" 2>&1 &
  echo $! > "$DIR/registry.started"
  for _ in $(seq 1 40); do curl -s -o /dev/null "http://127.0.0.1:$REG_PORT/v2/" && return; sleep 0.25; done
  tail -20 "$DIR/registry.log" >&2; log "registry did not come up"; exit 1
}

# Test images: busybox-static in an otherwise empty rootfs, no internet needed.
# v1 and v2 differ in content (so in image id); base is a required-tag companion.
build_images() {
  local host=$1 reg="127.0.0.1:$REG_PORT" repo
  repo="$reg/bosun-test/app"
  export DOCKER_HOST=$host
  # One builder at a time (test runs share the registry). The stamp holds a digest of this recipe:
  # images that an earlier, different recipe pushed are built again, not trusted.
  exec 8>"$DIR/.images.lock"
  flock 8
  local recipe; recipe=$(declare -f build_images | sha256sum | cut -d' ' -f1)
  if [ "$(cat "$DIR/images.pushed" 2>/dev/null)" = "$recipe" ] &&
    curl -sf -u "$REG_USER:$REG_PASS" "http://$reg/v2/bosun-test/app/tags/list" | grep -q '"big"'; then return; fi
  need_pkgs
  local root="$DIR/rootfs"
  rm -rf "$root"; mkdir -p "$root/bin" "$root/tmp" "$root/data" "$root/etc" "$root/usr/local/bin"
  cp /bin/busybox "$root/bin/busybox"
  for a in $(/bin/busybox --list); do [ "$a" = busybox ] || ln -sf busybox "$root/bin/$a"; done
  echo 'root:x:0:0:root:/root:/bin/sh' > "$root/etc/passwd"
  echo 'nobody:x:65534:65534:nobody:/:/bin/sh' >> "$root/etc/passwd"
  echo 'root:x:0:' > "$root/etc/group"
  # idle: exits at once on SIGTERM (a plain `sleep` as PID 1 ignores it)
  printf '#!/bin/sh\ntrap "exit 0" TERM INT\nwhile :; do sleep 3600 & wait $!; done\n' > "$root/usr/local/bin/idle"
  chmod +x "$root/usr/local/bin/idle"
  local v
  for v in v1 v2 base big; do
    echo "$v" > "$root/VERSION"
    # big: 96 MB of incompressible data, so that a pull takes long enough to be interrupted
    if [ "$v" = big ]; then head -c 100663296 /dev/urandom > "$root/blob"; else rm -f "$root/blob"; fi
    tar -C "$root" -cf "$DIR/rootfs-$v.tar" .
    docker import --change 'CMD ["/usr/local/bin/idle"]' --change 'ENV PATH=/usr/local/bin:/bin' \
      --change "LABEL io.bosun.test.version=$v" "$DIR/rootfs-$v.tar" "$repo:$v" >/dev/null
  done
  echo "$REG_PASS" | docker login -u "$REG_USER" --password-stdin "$reg" >/dev/null 2>&1
  for v in v1 v2 base big; do docker push -q "$repo:$v" >/dev/null; done
  docker logout "$reg" >/dev/null 2>&1 || true
  # Only the registry keeps them: whoever needs them pulls them, with credentials.
  for v in v1 v2 base big; do docker rmi "$repo:$v" >/dev/null 2>&1 || true; done
  rm -f "$DIR"/rootfs-*.tar
  echo "$recipe" > "$DIR/images.pushed"
}

print_env() {
  local host=$1
  echo "export DOCKER_HOST=$host"
  echo "export BOSUN_TEST_REGISTRY=127.0.0.1:$REG_PORT"
  echo "export BOSUN_TEST_REGISTRY_USER=$REG_USER"
  echo "export BOSUN_TEST_REGISTRY_PASSWORD=$REG_PASS"
  echo "export BOSUN_TEST_IMAGE=127.0.0.1:$REG_PORT/bosun-test/app"
}

stop_pid() {
  local f=$1
  [ -f "$f" ] || return 0
  local pid; pid=$(cat "$f")
  if kill -0 "$pid" 2>/dev/null; then
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 1 40); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
    kill -9 "$pid" 2>/dev/null || true
  fi
  rm -f "$f"
}
stop_engine() {
  stop_pid "$DIR/dockerd.started"
  # dockerd's own containerd must be gone too before another dockerd may start on this exec-root
  local cpid; cpid=$(cat "$DIR/exec/containerd/containerd.pid" 2>/dev/null || true)
  if [ -n "$cpid" ] && kill -0 "$cpid" 2>/dev/null; then
    kill "$cpid" 2>/dev/null || true
    for _ in $(seq 1 40); do kill -0 "$cpid" 2>/dev/null || break; sleep 0.25; done
    kill -9 "$cpid" 2>/dev/null || true
  fi
  rm -f "$DIR/docker.pid"
}

case "${1:-up}" in
  up)
    host=$(start_engine)
    start_registry
    build_images "$host"
    print_env "$host"
    ;;
  env) print_env "$(engine_host)" ;;
  restart-engine)
    [ -f "$DIR/dockerd.started" ] || { log "the engine is not this script's: not restarting it"; exit 3; }
    stop_engine
    RESTARTING=1 start_engine >/dev/null
    ;;
  down)
    stop_pid "$DIR/registry.started"
    stop_engine
    rm -f "$DIR/images.pushed"
    ;;
  *) echo "usage: $0 up|env|down" >&2; exit 2 ;;
esac
