#!/usr/bin/env bash
# Rebuild the bundled assets from training checkpoints (run from the repo root):
#   bash recipes/ship-default.sh FAST_CHECKPOINT NOISE_CHECKPOINT
# -> ganvoice/assets/default.onnx, noise.onnx (fp32 streaming graphs) and default-finetune.pt
#    (generator + discriminators, fp16, no optimizer state: `ganvoice train --init` reads it).
set -euo pipefail
fast=${1:?fast checkpoint}; noise=${2:?noise checkpoint}
PY=${PY:-.venv/bin/python}
"$PY" -m ganvoice.cli export "$fast" -o ganvoice/assets/default.onnx
"$PY" -m ganvoice.cli export "$noise" -o ganvoice/assets/noise.onnx
"$PY" -c "import sys; from ganvoice.train.checkpoint import save_finetune_checkpoint as s; s(sys.argv[1], sys.argv[2])" \
  "$fast" ganvoice/assets/default-finetune.pt
ls -la ganvoice/assets
