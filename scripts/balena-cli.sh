#!/usr/bin/env bash
# Installs the real balena CLI (the version scripts/balena-cli/package.json pins, from the npm
# registry) into a cache folder outside the repository and prints the path of its `balena` executable
# on stdout (progress goes to stderr). Idempotent: once installed and verified, a repeat run only
# prints the path.
#
#   BOSUN_CACHE_DIR   cache root (default ~/.cache/bosun); the CLI goes to <root>/balena-cli-<version>
#   BALENA_CLI_DIR    install folder (overrides the default above)
#
# The whole dependency tree is pinned: scripts/balena-cli/package-lock.json is balena-cli's own
# published npm-shrinkwrap.json (made by scripts/balena-cli/lock.mjs, which says what it changes and
# why), installed with `npm ci`, so the same bytes install on every machine and every year. The
# install is stamped with a digest of the lockfile, package.json and Node's ABI: a cache installed
# from other files, or for another Node, is installed again. Run the CLI with
#   BALENARC_NO_ANALYTICS=1 BALENARC_NO_SENTRY=1 BALENARC_UNSUPPORTED=1 NO_UPDATE_NOTIFIER=1
# and never BALENARC_OFFLINE_MODE (push refuses to run with it).
set -euo pipefail

SRC=$(cd "$(dirname "$0")/balena-cli" && pwd)
VERSION=$(node -p 'require(process.argv[1]).dependencies["balena-cli"]' "$SRC/package.json")
KEY=$({ cat "$SRC/package.json" "$SRC/package-lock.json"; node -p process.versions.modules; } | sha256sum | cut -d' ' -f1)
DIR=${BALENA_CLI_DIR:-${BOSUN_CACHE_DIR:-$HOME/.cache/bosun}/balena-cli-$VERSION}
BIN="$DIR/node_modules/.bin/balena"
STAMP="$DIR/.installed"

log() { echo "[balena-cli] $*" >&2; }
installed() { [ "$(cat "$STAMP" 2>/dev/null)" = "$KEY" ] && [ -x "$BIN" ]; }

export BALENARC_NO_ANALYTICS=1 BALENARC_NO_SENTRY=1 BALENARC_UNSUPPORTED=1 NO_UPDATE_NOTIFIER=1
unset BALENARC_OFFLINE_MODE

if installed; then echo "$BIN"; exit 0; fi

mkdir -p "$DIR"
# One installer at a time (tests may run this concurrently).
exec 9>"$DIR/.lock"
flock 9
if installed; then echo "$BIN"; exit 0; fi

start=$(date +%s)
log "installing balena-cli $VERSION into $DIR (first run only; takes a minute or two)"
rm -f "$STAMP"
cp "$SRC/package.json" "$SRC/package-lock.json" "$DIR/"
# `npm ci` installs exactly the lockfile (and removes what an earlier install left in node_modules).
# The CLI's postinstall must run (it patches its dependencies), whatever the user's npm config says.
(cd "$DIR" && npm ci --ignore-scripts=false --no-audit --no-fund --loglevel=error >&2)
[ -x "$BIN" ] || { log "no balena executable at $BIN after install"; exit 1; }
# The CLI's postinstall patches packages with patch-package, which only warns when one is missing
# (so a floating install once passed without exit-hook's patch): every patched package must be
# where patch-package looks. Patch names: <name, / as +>+<version>.patch, `++` for a nested one.
for patch in "$DIR"/node_modules/balena-cli/patches/{all,unix,linux}/*.patch; do
  [ -e "$patch" ] || continue
  name=$(basename "$patch" .patch); name=${name%+*}; name=${name//++//node_modules/}; name=${name//+//}
  [ -f "$DIR/node_modules/balena-cli/node_modules/$name/package.json" ] ||
    { log "the CLI patches $name, which is not installed: the install is not the CLI's shrinkwrap"; exit 1; }
done
# (its first run may warn on stderr, e.g. "spawn balena ENOENT"; only stdout is the version)
if ! out=$("$BIN" version 2>"$DIR/.version.err"); then
  log "installed, but \`balena version\` fails:"; cat "$DIR/.version.err" >&2; exit 1
fi
case "$out" in
  *"$VERSION"*) ;;
  *) log "\`balena version\` printed '$out', expected $VERSION"; exit 1 ;;
esac
echo "$KEY" > "$STAMP"
log "installed balena-cli $out in $(( $(date +%s) - start )) s"
echo "$BIN"
