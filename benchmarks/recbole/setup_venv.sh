#!/usr/bin/env bash
# Create the RecBole 1.2.1 benchmark venv from the exact pins in requirements.txt.
# Usage: bash benchmarks/recbole/setup_venv.sh [VENV_DIR]
# Default VENV_DIR: /root/.cache/edgerec/recbole-venv (outside the repo; never .venv).
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
VENV="${1:-${RECBOLE_VENV:-/root/.cache/edgerec/recbole-venv}}"
PY="${PYTHON:-python3.11}"

if [ ! -x "$VENV/bin/python" ]; then
    mkdir -p "$(dirname "$VENV")"
    "$PY" -m venv "$VENV"
fi
"$VENV/bin/python" -m pip install --upgrade pip
"$VENV/bin/python" -m pip install -r "$HERE/requirements.txt"
"$VENV/bin/python" -m pip check
OMP_NUM_THREADS=1 "$VENV/bin/python" -W ignore - <<'PY'
import numpy, pandas, torch, recbole
from recbole.config import Config
from recbole.data import create_dataset, data_preparation
from recbole.model.general_recommender import NeuMF
from recbole.trainer import Trainer
from recbole.quick_start import run_recbole  # imports ray -> needs pkg_resources
print("recbole", recbole.__version__, "torch", torch.__version__,
      "numpy", numpy.__version__, "pandas", pandas.__version__)
PY
echo "venv ready: $VENV"
echo "train:   OMP_NUM_THREADS=1 $VENV/bin/python $HERE/train_recbole.py"
