#!/usr/bin/env bash
# When a GPU is lent (the device tool): the bench on it and the paper-size SFSRM x10 and rDL models trained
# within a fixed budget, rows for the README in bench_out/gpu/rows.md. See bench/gpu.py for what it measures.
#   bash bench/gpu.sh [--budget-min 8] [--out bench_out/gpu]    # on the GPU machine
#   bash bench/gpu.sh --tiny --out /tmp/gpu_check              # the same code on a CPU, tiny (the tests run this)
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-.venv/bin/python}
"$PYTHON" -c "import torch; print('torch', torch.__version__, '| CUDA', torch.cuda.is_available())"
exec "$PYTHON" bench/gpu.py "$@"
