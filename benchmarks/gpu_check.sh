#!/usr/bin/env bash
# One prepared check on a GPU machine (the device tool's `run`; see benchmarks/RESULTS.md):
#   1. tests/test_gpu.py: every method trains on CUDA and its checkpoint reloads on the CPU;
#   2. the 12 configs/quant runs at their full 3000-step budget on the GPU, all at once, for the error at
#      convergence of the four variants (the CPU table in RESULTS.md has a 30-step budget).
# Missing packages travel as wheels in .whl/ (pip download ... --python-version 3.12, see the device README).
#     bash benchmarks/gpu_check.sh        # writes into $OUT (default /tmp/gpu_check)
set -uo pipefail
OUT=${OUT:-/tmp/gpu_check}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 PL_DISABLE_TIPS=1 PYTHONPATH=/tmp/site
if [ -d .whl ]; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
fi
python3 -m pip install -q --no-index --no-deps --no-build-isolation --no-compile --target /tmp/site \
    . plugins/smx plugins/brevitas plugins/example || exit 1
nvidia-smi -L
python3 -c "import torch, pytorch_lightning as pl; print('torch', torch.__version__, 'lightning', pl.__version__, torch.cuda.get_device_name())"
if [ -n "${SWEEP:-}" ]; then
    # a sweep instead of the default checks (benchmarks/sweep.py); the GPU tests given in GPU_TESTS run beside it
    if [ -n "${GPU_TESTS:-}" ]; then
        (timeout "${GPU_TEST_TIMEOUT:-240}" python3 -m pytest -q -p no:cacheprovider tests/test_gpu.py -k "$GPU_TESTS" \
            > "$OUT/gpu_tests.log" 2>&1) &
    fi
    OMP_NUM_THREADS=1 timeout "${SWEEP_TIMEOUT:-500}" python3 benchmarks/sweep.py "$SWEEP" --accelerator gpu \
        --jobs "${SWEEP_JOBS:-8}" --timeout "${RUN_TIMEOUT:-400}" --output "$OUT/sweep.jsonl" 2>&1 | tee "$OUT/sweep.log"
    wait
    tail -5 "$OUT/gpu_tests.log" 2>/dev/null
    exit 0
fi
timeout "${GPU_TEST_TIMEOUT:-240}" python3 -m pytest -q -p no:cacheprovider tests/test_gpu.py 2>&1 | tee "$OUT/gpu_tests.log"
OMP_NUM_THREADS=1 timeout "${QUANT_TIMEOUT:-330}" python3 benchmarks/quant.py --accelerator gpu --jobs 12 \
    --steps "${QUANT_STEPS:-3000}" --output "$OUT/quant_gpu.json" 2>&1 | tee "$OUT/quant_gpu.log"
