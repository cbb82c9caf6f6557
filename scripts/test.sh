#!/usr/bin/env bash
# Set up (scripts/setup.sh) and run the whole test suite. CI runs exactly this.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
. .venv/bin/activate
set +e
python -m pytest -q -n "${PYTEST_WORKERS:-2}" --durations=15 "$@"
rc=$?
set -e
# pytest exit 5 = no tests collected: that is a failure for us, never a silent green.
exit $rc
