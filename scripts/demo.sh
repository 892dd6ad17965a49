#!/usr/bin/env bash
# The README's first command: installs what is missing, brings the servers up, runs the main job.
# The servers keep running afterwards (stop them with `bash scripts/infra.sh down`).
set -euo pipefail
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$REPO"
bash scripts/ensure-deps.sh
eval "$(bash scripts/infra.sh up)"
npx tsx scripts/demo.ts
