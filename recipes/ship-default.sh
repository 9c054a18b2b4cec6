#!/usr/bin/env bash
# Rebuild the bundled default model from a training checkpoint (run from the repo root):
#   bash recipes/ship-default.sh FAST_PHASE_CHECKPOINT [CONSISTENCY_ITERATIONS] [NNLS_ITERATIONS] [MOMENTUM]
# (the bundled default: bash recipes/ship-default.sh AVERAGED.pt 12 16 0.8; low latency: 6 16 0.8)
# -> ganvoice/assets/default.onnx (fp32 streaming graph with the given number of unrolled consistency layers,
#    NNLS magnitude steps and momentum: weightless, so they are chosen here) and ganvoice/assets/default-finetune.pt
#    (the compact checkpoint: fp16 generator + discriminators, step and LR schedule, no optimizer state;
#    `ganvoice train --continue` goes on from it, `--init` fine-tunes from it).
# noise.onnx is rebuilt from its own checkpoint with: .venv/bin/ganvoice export NOISE.pt -o ganvoice/assets/noise.onnx
set -euo pipefail
checkpoint=${1:?fast-phase checkpoint}
layers=${2:-12}
nnls=${3:-16}
momentum=${4:-0.8}
PY=${PY:-.venv/bin/python}
"$PY" -m ganvoice.cli export "$checkpoint" -o ganvoice/assets/default.onnx \
  --set consistency_iterations="$layers" --set nnls_iterations="$nnls" --set consistency_momentum="$momentum"
"$PY" -c "import sys; from ganvoice.train.checkpoint import save_finetune_checkpoint as s; s(sys.argv[1], sys.argv[2])" \
  "$checkpoint" ganvoice/assets/default-finetune.pt
ls -la ganvoice/assets
