#!/usr/bin/env bash
# Installs what is missing, brings the servers up (exporting their TXOUTBOX_* settings), then runs
# the given command: the wrapper of `npm run bench` and `npm run faults`.
set -euo pipefail
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$REPO"
bash scripts/ensure-deps.sh
eval "$(bash scripts/infra.sh up)"
exec "$@"
