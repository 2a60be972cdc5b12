#!/usr/bin/env bash
# Create (or update) the Python reference toolchain venv OUTSIDE the repo from tools/requirements.txt.
# Only the reference scripts in tools/ need it; `npm test` never does.
# Usage: bash tools/setup-venv.sh            (venv at /opt/diffuse-venv)
#        DIFFUSE_VENV=/some/dir bash tools/setup-venv.sh
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
venv="${DIFFUSE_VENV:-/opt/diffuse-venv}"
python="${PYTHON:-python3}"

case "$venv" in
  "$(dirname "$here")"/*) echo "setup-venv: refusing to create the venv inside the repo ($venv)" >&2; exit 1 ;;
esac

if [ ! -x "$venv/bin/python" ]; then
  "$python" -m venv "$venv"
fi
"$venv/bin/python" -m pip install --quiet -r "$here/requirements.txt"
"$venv/bin/python" -m pip install --quiet --no-deps -r "$here/requirements-nodeps.txt"
"$venv/bin/python" -c 'import torch, diffusers, transformers, optimum, onnx, onnxruntime; print("venv ready:", torch.__version__, diffusers.__version__)'
