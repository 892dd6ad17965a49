#!/usr/bin/env bash
# The README's first command: installs what is missing, brings the servers up, runs the main job.
# The servers keep running afterwards (stop them with `bash scripts/infra.sh down`).
set -euo pipefail
exec bash "$(dirname "${BASH_SOURCE[0]}")/with-servers.sh" npx tsx scripts/demo.ts
