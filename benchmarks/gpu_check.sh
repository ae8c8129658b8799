#!/usr/bin/env bash
# One prepared GPU check (about 5 minutes): the GPU, then bf16 MFU of the 20M and 200M
# budgets, eager and (time permitting) torch.compile'd. Output also goes to
# $OUT/gpu_benchmark.txt when $OUT is set (the device runner copies $OUT back).
#   bash benchmarks/gpu_check.sh            # H100 peak 989 TFLOP/s bf16 dense
#   PEAK_TFLOPS=989 bash benchmarks/gpu_check.sh
set -uo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-.venv/bin/python}"
[ -x "$PYTHON" ] || PYTHON=python3
PEAK="${PEAK_TFLOPS:-989}"
LOG="${OUT:+$OUT/gpu_benchmark.txt}"
LOG="${LOG:-/dev/null}"
export PYTHONPATH="src${PYTHONPATH:+:$PYTHONPATH}"
{
  date -u
  nvidia-smi || echo "nvidia-smi not available"
  "$PYTHON" -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda, torch.cuda.is_available())"
  echo "== eager, bf16 autocast, mixed channels, F=50 =="
  timeout 150 "$PYTHON" benchmarks/model_throughput.py --skip-cpu --peak-tflops "$PEAK"
  echo "== torch.compile, bf16 autocast =="
  timeout 150 "$PYTHON" benchmarks/model_throughput.py --skip-cpu --peak-tflops "$PEAK" --compile
  echo "== eager, independent channels, F=20 =="
  timeout 60 "$PYTHON" benchmarks/model_throughput.py --skip-cpu --peak-tflops "$PEAK" \
    --gpu-channel-mode independent --gpu-features 20
} 2>&1 | tee "$LOG"
