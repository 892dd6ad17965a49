#!/usr/bin/env bash
# Benchmark: installs what is missing, brings the servers up, runs scripts/bench.ts.
#   npm run bench -- --events 1000 --keys 20 --out BENCHMARKS.md
set -euo pipefail
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$REPO"
bash scripts/ensure-deps.sh
eval "$(bash scripts/infra.sh up)"
npx tsx scripts/bench.ts "$@"
