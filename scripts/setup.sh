#!/usr/bin/env bash
# Install dbtui and what it needs into the current Python (activate a venv first to isolate it).
#
# torch first, and only when none is importable: a CPU build (torch==2.13.0) on machines with no
# NVIDIA GPU, the default CUDA build where `nvidia-smi` sees a GPU. A torch you already have
# (CUDA builds included) is never replaced. Set DBTUI_TORCH_INDEX to a wheel index (for example
# PyTorch's CPU index) to choose where the CPU build comes from.
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-python3}"

if "$PY" -c "import torch" >/dev/null 2>&1; then
    echo "setup: keeping the installed torch $("$PY" -c 'import torch; print(torch.__version__)')"
elif command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then
    echo "setup: NVIDIA GPU found, installing the CUDA build of torch"
    "$PY" -m pip install --quiet "torch>=2.4"
else
    echo "setup: no NVIDIA GPU, installing the CPU build of torch"
    "$PY" -m pip install --quiet torch==2.13.0 ${DBTUI_TORCH_INDEX:+--index-url "$DBTUI_TORCH_INDEX"}
fi

"$PY" -m pip install --quiet --disable-pip-version-check -e ".[test]"
# An editable install compiles nothing, and where PYTHONDONTWRITEBYTECODE is set (as on this project's machines) Python never
# keeps what it compiles: every trainer and command process would compile dbtui's modules again (about 0.5 s of a
# trainer's start on 2 cores). Compiled once here (about 1 s), they are read from engine/ and dbtui/'s __pycache__.
# Only a saving: where it cannot write there (a read-only checkout) dbtui works as well, so setup goes on.
"$PY" -m compileall -q engine dbtui >/dev/null \
    || echo "setup: engine/ and dbtui/ not compiled ahead (is the folder read-only?); dbtui works, each command compiling what it runs"
echo "setup: done; run 'dbtui --help'"
