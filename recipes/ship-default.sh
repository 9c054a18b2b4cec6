#!/usr/bin/env bash
# Rebuild the bundled default model from a training checkpoint (run from the repo root):
#   bash recipes/ship-default.sh FAST_PHASE_CHECKPOINT [CONSISTENCY_ITERATIONS NNLS_ITERATIONS MOMENTUM]
# (the bundled default: bash recipes/ship-default.sh AVERAGED.pt, i.e. `ganvoice export --preset quality`,
#  whose numbers live in ganvoice.models.fast.EXPORT_PRESETS; other choices: e.g. ... AVERAGED.pt 6 16 0.8)
# -> ganvoice/assets/default.onnx (fp32 streaming graph with the given number of unrolled consistency layers,
#    NNLS magnitude steps and momentum: weightless, so they are chosen here) and ganvoice/assets/default-finetune.pt
#    (the compact checkpoint: fp16 generator + discriminators, step and LR schedule, no optimizer state;
#    `ganvoice train --continue` goes on from it, `--init` fine-tunes from it).
# noise.onnx is rebuilt from its own checkpoint with: .venv/bin/ganvoice export NOISE.pt -o ganvoice/assets/noise.onnx
set -euo pipefail
checkpoint=${1:?fast-phase checkpoint}
choice=(--preset quality)
if [ $# -gt 1 ]; then
  choice=(--set consistency_iterations="${2:?}" --set nnls_iterations="${3:?}" --set consistency_momentum="${4:?}")
fi
PY=${PY:-.venv/bin/python}
"$PY" -m ganvoice.cli export "$checkpoint" -o ganvoice/assets/default.onnx "${choice[@]}"
"$PY" -c "import sys; from ganvoice.train.checkpoint import save_finetune_checkpoint as s; s(sys.argv[1], sys.argv[2])" \
  "$checkpoint" ganvoice/assets/default-finetune.pt
ls -la ganvoice/assets
