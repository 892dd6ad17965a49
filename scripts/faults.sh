#!/usr/bin/env bash
# The fault harness as a soak: installs what is missing, brings the servers up, runs scripts/faults.ts.
#   npm run faults -- --minutes 20 --faults 50 --seed 42
set -euo pipefail
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$REPO"
bash scripts/ensure-deps.sh
eval "$(bash scripts/infra.sh up)"
npx tsx scripts/faults.ts "$@"
