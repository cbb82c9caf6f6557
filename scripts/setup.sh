#!/usr/bin/env bash
# Create ./.venv (if missing) and install lora-compat with its training and test extras.
# torch is pinned first to the CPU build that these machines provide locally; any torch in the
# range of pyproject.toml works elsewhere.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
. .venv/bin/activate
python -m pip install -q --upgrade pip
python -m pip install -q "torch==2.13.0" || python -m pip install -q "torch>=2.1,<2.15"
python -m pip install -q -e ".[train,test]"
