#!/usr/bin/env bash
# Set up (scripts/setup.sh) and run the offline end-to-end demo into ./demo-out.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
. .venv/bin/activate
lora-compat demo --output "${1:-demo-out}"
