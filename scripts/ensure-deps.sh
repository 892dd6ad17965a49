#!/usr/bin/env bash
# Installs the npm dependencies from the lockfile when node_modules is missing or older than it.
set -euo pipefail
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$REPO"
stamp=node_modules/.txoutbox-lock-sha256
want=$(sha256sum package-lock.json | cut -d' ' -f1)
if [[ -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then
  exit 0
fi
echo "[deps] npm ci (package-lock.json changed or node_modules missing)" >&2
npm ci --no-audit --no-fund --loglevel=error >&2
echo "$want" >"$stamp"
