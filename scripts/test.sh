#!/usr/bin/env bash
# Sets up (if needed) and runs every check: ruff, mypy, then the test suite with real models.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh dev
VENV="${VENV:-.venv}"
export HF_HUB_OFFLINE=1
echo "== ruff";  "$VENV/bin/ruff" check .
echo "== mypy";  "$VENV/bin/mypy" ivr asr tts dialog telephony models
echo "== pytest"; "$VENV/bin/pytest" -q "$@"
