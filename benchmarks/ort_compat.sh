#!/usr/bin/env bash
# The oldest ONNX Runtime we claim (1.17): export every variant here, run each in a throwaway venv with
# onnxruntime==1.17.3 and compare with the current ONNX Runtime's output. Usage: bash benchmarks/ort_compat.sh
set -euo pipefail
PY=${PY:-.venv/bin/python}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
python3 -m venv "$work/venv"
"$work/venv/bin/pip" install -q "onnxruntime==1.17.3" "numpy<2"
for variant in fast hifigan-v1 hifigan-v2 hifigan-v3 seed-mlp; do
  "$PY" -m ganvoice.cli export --variant "$variant" --random -o "$work/$variant.onnx" >/dev/null
done
cat > "$work/run.py" <<'PYEOF'
import json, sys
import numpy as np, onnxruntime as ort
for path in sys.argv[1:]:
    s = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    meta = json.loads(s.get_modelmeta().custom_metadata_map["ganvoice"])
    feeds = {"conditioning": np.random.default_rng(0).standard_normal((1, meta["channels"], 4)).astype(np.float32)}
    feeds.update({st["input"]: np.zeros(st["shape"], np.float32) for st in meta["state"]})
    np.save(path + f".{ort.__version__}.npy", s.run(None, feeds)[0])
    print(ort.__version__, meta["variant"], "ok")
PYEOF
"$work/venv/bin/python" "$work/run.py" "$work"/*.onnx
"$PY" "$work/run.py" "$work"/*.onnx
"$PY" - "$work" <<'PYEOF'
import glob, sys
import numpy as np
for old in sorted(glob.glob(sys.argv[1] + "/*.1.17.3.npy")):
    new = [p for p in glob.glob(old.replace(".1.17.3.npy", ".*.npy")) if p != old][0]
    print(old.split("/")[-1], "max abs diff vs", new.split(".onnx.")[-1][:-4], float(np.abs(np.load(old) - np.load(new)).max()))
PYEOF
