#!/usr/bin/env bash
# The GPU checks behind the benchmarks page, in one run on a machine with one CUDA GPU (about 8 minutes on an H100 or H200):
#   1. `mmsent_train` end to end on the GPU: tiny preset, synthetic set, bf16 and `--compile`, 3 epochs; prints its history;
#   2. bench_train_step.py --device cuda: fp32, bf16 and bf16 under torch.compile, model-FLOPs utilisation of the base preset
#      against the GPU's measured and datasheet bf16 peaks, the GPU goals of the step, a profiler trace of the base bf16 step;
#   3. bench_serve.py --device cuda: mmsent_serve with the model on the GPU, batching on and off, tiny and base (goal: base
#      at >= 500 requests/s, p50 <= 80 ms, 32 in flight).
# Each step has its own time limit, so one that fails or hangs does not stop the others.
#
#     bash bench/gpu_checks.sh [DEST]    # DEST: a folder to copy the logs and result files into (default: bench/results)
# Then `python bench/run_all.py --report` puts the results (train_step_cuda.json, serve_cuda.json) on the benchmarks page.
set -uo pipefail
DEST=${1:-bench/results}
mkdir -p "$DEST"
export PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
PY=${PYTHON:-python3}

{ nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv
  $PY -c "import torch, transformers; print('torch', torch.__version__, 'cuda', torch.version.cuda, 'transformers', transformers.__version__, torch.cuda.get_device_name(0))"
} 2>&1 | tee "$DEST/gpu.txt"

run=$(mktemp -d)
echo "== 1. mmsent_train on the GPU, bf16, --compile" | tee "$DEST/train_e2e.log"
SECONDS=0
timeout 170 $PY -c "from mmsent.train import mmsent_train; mmsent_train()" --preset tiny --epochs 3 --batch_size 32 --num_workers 4 \
    --device cuda --precision bf16 --compile --no_progress --output_dir "$run/model" 2>&1 | tee -a "$DEST/train_e2e.log"
echo "exit status ${PIPESTATUS[0]} after $SECONDS s" | tee -a "$DEST/train_e2e.log"
$PY - "$run/model" <<'EOF' 2>&1 | tee -a "$DEST/train_e2e.log"
import json, sys
from pathlib import Path
for f in Path(sys.argv[1]).glob('training_history_*.json'):
    for r in json.loads(f.read_text())['epochs']:
        print({k: (round(v, 4) if isinstance(v, float) else v) for k, v in r.items() if not isinstance(v, (dict, list))})
EOF

echo "== 2. training step" | tee "$DEST/train_step.log"
timeout 240 $PY bench/bench_train_step.py --device cuda --steps 10 2>&1 | tee -a "$DEST/train_step.log"
echo "exit status ${PIPESTATUS[0]}" | tee -a "$DEST/train_step.log"

echo "== 3. serving" | tee "$DEST/serve.log"
timeout 180 $PY bench/bench_serve.py --device cuda --presets tiny base --max_seconds 5 --requests 5000 --warmup 16 --client httpx 2>&1 | tee -a "$DEST/serve.log"
echo "exit status ${PIPESTATUS[0]}" | tee -a "$DEST/serve.log"
for f in train_step_cuda serve_cuda; do [ -f "bench/results/$f.json" ] && [ "$DEST" != bench/results ] && cp "bench/results/$f.json" "$DEST/"; done
rm -rf "$run"
