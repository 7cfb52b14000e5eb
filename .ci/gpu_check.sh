#!/usr/bin/env bash
# GPU check (a developer tool, not CI): the GPU paths of helpers, the engine benchmark on the GPU,
# and the course under TL_PROFILE=full, each timed. Run it on a machine with a CUDA GPU and its own
# PyTorch; packages that machine lacks can be put in .whl/ as wheels. Logs go to $OUT (or
# build/gpu_check).
set -uo pipefail
OUT=${OUT:-build/gpu_check}
mkdir -p "$OUT"
if ls .whl/*.whl >/dev/null 2>&1; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
    && export PYTHONPATH=/tmp/site JUPYTER_PATH=/tmp/site/share/jupyter
fi
export PYTHONPATH=${PYTHONPATH:+$PYTHONPATH:}$PWD PYTHONUNBUFFERED=1 TL_PROFILE=full TQDM_DISABLE=1
export TL_DATA_DIR=/tmp/tl/data TL_ARTIFACTS_DIR=/tmp/tl/artifacts TL_BUILD_DIR=/tmp/tl/build
step() { local name=$1 limit=$2; shift 2; local start=$SECONDS
  echo "== $name"; timeout "$limit" "$@"; echo "== $name: exit $?, $((SECONDS - start)) s"; }
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
step smoke 60 python3 - <<'PY'
import torch
from helpers import models, runtime, train
device = runtime.get_device()
print(runtime.describe(device))
assert device.type == "cuda", "no CUDA device found"
net = models.ImageNet(24)
X, y = torch.randn(4096, 1, 32, 32), torch.randint(0, 24, (4096,))
history = train.fit(net, X, y, epochs=3, batch_size=256, device=device, progress=False)
print(f"fit on cuda: loss {history.train_loss[0]:.3f} -> {history.train_loss[-1]:.3f}, {history.seconds:.2f} s")
with train.autocast(device):
    print("autocast dtype on cuda:", net(X[:2].to(device)).dtype)
PY
step bench 90 python3 -m helpers.authoring.bench --json
for s in images image-sweep counter-examples; do step "prepare $s" 150 python3 data_scripts/prepare.py --profile full --only $s; done
step "notebooks 00-03" 150 python3 -m helpers.authoring.course run --profile full notebooks/00_start_here.ipynb \
  notebooks/01_pretraining.ipynb notebooks/02_head_replacement.ipynb notebooks/03_last_layer_vs_full.ipynb
for s in speech speech-models speech-reversed; do step "prepare $s" 120 python3 data_scripts/prepare.py --profile full --only $s; done
step "notebooks 04-05" 120 python3 -m helpers.authoring.course run --profile full notebooks/04_wake_word.ipynb notebooks/05_reversed_sizes.ipynb
python3 -m helpers.authoring.course table
cp /tmp/tl/build/results.json "$OUT"/results.json 2>/dev/null
cp /tmp/tl/build/timings.json "$OUT"/timings.json 2>/dev/null
true
