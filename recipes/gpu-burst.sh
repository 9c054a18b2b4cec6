#!/usr/bin/env bash
# A short training burst on a lent GPU (the `device` tool runs this from the repo root), reproducing the
# bundled models: the default `fast` vocoder (spectral phase, then GAN) and the `fast-noise` model train
# side by side on one GPU for BURST_SECONDS, then their checkpoints come back through $OUT in 15 MB parts.
# Needs, both carried: .devcarry/corpus (`ganvoice corpus pack --data data/corpus --out .devcarry/corpus`)
# and .whl/ (soundfile, soxr, cffi, pycparser wheels for the device's Python 3.12). Reassemble with: cat fast.ckpt.part-* > fast.pt.
# RESUME=1 continues the runs in /tmp/runs (a second call on the same warm machine).
set -uo pipefail
BURST_SECONDS=${BURST_SECONDS:-420}
DEVICE=${DEVICE:-cuda}
PYTHON=${PYTHON:-python3}
OUT=${OUT:-/tmp/burst-out}
mkdir -p "$OUT"
if [ "${WHEELS:-1}" = 1 ] && ls .whl/*.whl >/dev/null 2>&1; then
  python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site .whl/*.whl || exit 1
  export PYTHONPATH=/tmp/site:$PWD
else
  export PYTHONPATH=$PWD
fi
export PYTHONUNBUFFERED=1
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total --format=csv,noheader
common=(--data .devcarry/corpus --device "$DEVICE" --no-progress ${RESUME:+--resume}
        --set data.batch_size=${BATCH:-32} --set data.num_workers=${WORKERS:-6}
        --set train.checkpoint_every=500 --set train.val_every=500 --set train.keep_last=1)
timeout -s INT "$BURST_SECONDS" "$PYTHON" -m ganvoice.cli train --config recipes/fast.toml --out /tmp/runs/fast \
  "${common[@]}" --set train.gan_start_step=${GAN_START:-2500} > "$OUT/fast.log" 2>&1 &
timeout -s INT "$BURST_SECONDS" "$PYTHON" -m ganvoice.cli train --config recipes/fast-noise.toml \
  --out /tmp/runs/noise "${common[@]}" > "$OUT/noise.log" 2>&1 &
wait
for run in fast noise; do
  latest=$(ls -t /tmp/runs/$run/checkpoints/*.pt 2>/dev/null | head -1)
  [ -n "$latest" ] && split -b 15M "$latest" "$OUT/$run.ckpt.part-"
  tail -c 4000 /tmp/runs/$run/log.jsonl > "$OUT/$run.log.jsonl" 2>/dev/null
done
ls -la "$OUT"; tail -n 3 "$OUT/fast.log" "$OUT/noise.log"
