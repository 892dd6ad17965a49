#!/usr/bin/env bash
# The whole test suite, from a fresh clone: installs dependencies, starts the real servers it needs
# (reusing any that scripts/infra.sh already runs), type-checks, lints, runs every Jest project,
# and stops only the servers it started itself.
#
#   npm test                      everything
#   npm test -- --selectProjects unit     extra arguments go to Jest
set -euo pipefail
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$REPO"

bash scripts/ensure-deps.sh

# The Web UI test drives Debian's Chromium (playwright-core never downloads a browser of its own).
if [[ -z "${TXOUTBOX_CHROMIUM:-}" && ! -x /usr/bin/chromium ]]; then
  if [[ $EUID -eq 0 ]]; then
    echo "[test] installing Chromium from Debian's packages (first run only)" >&2
    DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  else
    echo "[test] /usr/bin/chromium is missing: run 'sudo apt-get install chromium' (the Web UI test needs it)" >&2
  fi
fi

started_file=$(mktemp)
results_file=$(mktemp)
stop_started() {
  local started
  mapfile -t started <"$started_file"
  if ((${#started[@]})); then bash scripts/infra.sh down "${started[@]}" || true; fi
  rm -f "$started_file" "$results_file"
}
trap stop_started EXIT

eval "$(bash scripts/infra.sh up --started-file "$started_file")"

echo "[test] type-check (tsc --noEmit)"
npx tsc -p tsconfig.json --noEmit
echo "[test] lint (eslint)"
npx eslint .

echo "[test] jest"
status=0
# --forceExit: the fault harness restarts the broker under live kafkajs clients; one that reconnects
# after its disconnect must not keep the suite (and CI) from ending; Jest then says "Force exiting"
# in the log, so a leak still shows.
npx jest --runInBand --forceExit --json --outputFile="$results_file" "$@" || status=$?

# One plain closing line with the counts, whatever the reporter printed above it.
node -e '
  const r = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
  const skipped = r.numPendingTests + r.numTodoTests;
  console.log(`jest: ${r.numPassedTests} passed, ${r.numFailedTests} failed, ${skipped} skipped`);
' "$results_file" || true
exit "$status"
