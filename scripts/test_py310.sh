#!/usr/bin/env bash
# Run the test suite without the slow tests under Python 3.10, the oldest Python lora-compat supports, in
# ./.venv-py310 (light dependencies and the test extra; torch-only tests skip). .ci/run runs this as its py310
# phase. Exit 0 with a message when no runnable Python 3.10 is installed (the static scan in
# tests/test_python310.py still runs in the main suite).
set -euo pipefail
cd "$(dirname "$0")/.."
py=""
for c in $(command -v python3.10 2>/dev/null) "${PYENV_ROOT:-$HOME/.pyenv}"/versions/3.10*/bin/python \
         /usr/bin/python3.10 /usr/local/bin/python3.10; do   # a pyenv shim may exist without 3.10 selected
  if [ -x "$c" ] && "$c" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 10))' 2>/dev/null; then
    py=$c; break
  fi
done
if [ -z "$py" ]; then
  echo "py310: skipped (no python3.10 installed)"
  exit 0
fi
if [ ! -x .venv-py310/bin/python ]; then
  "$py" -m venv .venv-py310
fi
.venv-py310/bin/python -m pip install -q -e ".[test]"
exec .venv-py310/bin/python -m pytest -q -n "${PYTEST_WORKERS:-2}" -m "not slow" -p no:cacheprovider "$@"
