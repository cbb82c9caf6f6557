#!/usr/bin/env bash
# Create ./.venv (if missing) and install lora-compat editable with its training and test extras.
# torch is pinned first to the CPU build that these machines provide locally; any torch in the
# range of pyproject.toml works elsewhere. A second run with the same pyproject.toml and setup.sh
# does nothing (the install is editable: code changes need no reinstall; a version change in
# lora_compat/__init__.py reinstalls so the metadata follows); delete .venv to start over.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
. .venv/bin/activate
stamp=.venv/.lora-compat-setup
want=$(cat pyproject.toml scripts/setup.sh lora_compat/__init__.py | python -c "import hashlib, sys; print(hashlib.sha256(sys.stdin.buffer.read()).hexdigest())")
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] && python -c "import importlib.metadata as m; m.version('lora-compat')" 2>/dev/null; then
  echo "setup: .venv is up to date (pyproject.toml and the version unchanged)"
  exit 0
fi
python -m pip install -q --upgrade pip
python -m pip install -q "torch==2.13.0" || python -m pip install -q "torch>=2.1,<2.15"
python -m pip install -q -e ".[train,test]"
echo "$want" > "$stamp"
