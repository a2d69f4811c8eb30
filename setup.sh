#!/usr/bin/env bash
# Sets up builder in ./.venv on a fresh machine: the CPU build of torch first (an unpinned torch would pull
# a multi-GB CUDA build), then builder with its build tools and dev tools. Safe to run again.
#   TORCH_SPEC   torch requirement (default torch==2.13.0, a CPU build on this workplace's disk)
#   TORCH_INDEX  extra pip arguments for torch, e.g. "--index-url https://download.pytorch.org/whl/cpu"
set -euo pipefail
cd "$(dirname "$0")"
python=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$python" -m venv .venv
pip=(.venv/bin/python -m pip install -q --disable-pip-version-check)
# shellcheck disable=SC2086
.venv/bin/python -c "import torch" 2>/dev/null || "${pip[@]}" ${TORCH_INDEX:-} "${TORCH_SPEC:-torch==2.13.0}"
# The distribution was called `builder` before: drop that old editable install of this checkout.
if .venv/bin/python -m pip show builder 2>/dev/null | grep -q "^Editable project location: $(pwd)$"; then
  .venv/bin/python -m pip uninstall -q -y builder
fi
"${pip[@]}" -e ".[build,dev]"
echo "builder is set up in $(pwd)/.venv"
