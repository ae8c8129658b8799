#!/usr/bin/env bash
# The GPU check in one call, under ten minutes on one CUDA GPU (benchmarks/gpu_check.py):
# bf16 MFU of the 20M and 200M budgets eager and compiled (FLOPs counted by
# torch.utils.flop_counter), the batch-size discovery into real out-of-memory errors, the
# NVML sensor. Figures go to $OUT/gpu_benchmark.txt when $OUT is set (the device runner
# copies $OUT back), else ./gpu_benchmark.txt; the file is rewritten after every line, so a
# run stopped at the time limit keeps what it measured.
#   bash benchmarks/gpu_check.sh                       # CUDA host
#   bash benchmarks/gpu_check.sh --peak-tflops 989     # override the per-GPU peak table
#   bash benchmarks/gpu_check.sh --dry-run             # CPU, tiny budgets: checks the script
set -uo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-.venv/bin/python}"
[ -x "$PYTHON" ] || PYTHON=python3
FIGURES="${OUT:-.}/gpu_benchmark.txt"
LIMIT_S="${GPU_CHECK_LIMIT_S:-540}"
export PYTHONPATH="src${PYTHONPATH:+:$PYTHONPATH}"
if command -v nvidia-smi >/dev/null 2>&1; then
  nvidia-smi --query-gpu=name,memory.total,driver_version,temperature.gpu,power.draw \
    --format=csv
else
  echo "nvidia-smi not available"
fi
timeout --kill-after=20 "$LIMIT_S" "$PYTHON" benchmarks/gpu_check.py --out "$FIGURES" "$@"
rc=$?
if [ "$rc" -eq 124 ]; then
  echo "gpu_check: stopped at the ${LIMIT_S} s limit; $FIGURES holds what was measured"
fi
exit "$rc"
