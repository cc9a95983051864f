#!/usr/bin/env bash
# Installs the real balena CLI (balena-cli 22.5.5, from the npm registry) into a cache folder outside
# the repository and prints the path of its `balena` executable on stdout (progress goes to stderr).
# Idempotent: once installed and verified, a repeat run only prints the path.
#
#   BOSUN_CACHE_DIR   cache root (default ~/.cache/bosun); the CLI goes to <root>/balena-cli-22.5.5
#   BALENA_CLI_DIR    install folder (overrides the default above)
#
# Why these settings (measured): 22.5.5 runs on Node 20 when installed with
# `--install-strategy=shallow`, and needs `unbzip2-stream` pinned to 1.4.3 (npm `overrides` in the
# cache folder's package.json). Run it with
#   BALENARC_NO_ANALYTICS=1 BALENARC_NO_SENTRY=1 BALENARC_UNSUPPORTED=1 NO_UPDATE_NOTIFIER=1
# and never BALENARC_OFFLINE_MODE (push refuses to run with it).
set -euo pipefail

VERSION=22.5.5
DIR=${BALENA_CLI_DIR:-${BOSUN_CACHE_DIR:-$HOME/.cache/bosun}/balena-cli-$VERSION}
BIN="$DIR/node_modules/.bin/balena"
STAMP="$DIR/.installed"

log() { echo "[balena-cli] $*" >&2; }

export BALENARC_NO_ANALYTICS=1 BALENARC_NO_SENTRY=1 BALENARC_UNSUPPORTED=1 NO_UPDATE_NOTIFIER=1
unset BALENARC_OFFLINE_MODE

if [ -f "$STAMP" ] && [ -x "$BIN" ]; then
  echo "$BIN"
  exit 0
fi

mkdir -p "$DIR"
# One installer at a time (tests may run this concurrently).
exec 9>"$DIR/.lock"
flock 9
if [ -f "$STAMP" ] && [ -x "$BIN" ]; then echo "$BIN"; exit 0; fi

start=$(date +%s)
log "installing balena-cli $VERSION into $DIR (first run only; takes a few minutes)"
cat > "$DIR/package.json" <<JSON
{
  "name": "bosun-balena-cli-cache",
  "private": true,
  "dependencies": { "balena-cli": "$VERSION" },
  "overrides": { "unbzip2-stream": "1.4.3" }
}
JSON
(
  cd "$DIR"
  npm install --install-strategy=shallow --no-audit --no-fund --loglevel=error \
    --no-package-lock >&2
)
[ -x "$BIN" ] || { log "no balena executable at $BIN after install"; exit 1; }
# (its first run may warn on stderr, e.g. "spawn balena ENOENT"; only stdout is the version)
if ! out=$("$BIN" version 2>"$DIR/.version.err"); then
  log "installed, but \`balena version\` fails:"; cat "$DIR/.version.err" >&2; exit 1
fi
case "$out" in
  *"$VERSION"*) ;;
  *) log "\`balena version\` printed '$out', expected $VERSION"; exit 1 ;;
esac
touch "$STAMP"
log "installed balena-cli $out in $(( $(date +%s) - start )) s"
echo "$BIN"
