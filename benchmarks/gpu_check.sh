#!/usr/bin/env bash
# GPU evidence in one go (about 5–8 minutes on one H100): the CUDA tests, then the measurements the
# README quotes. Run from the repository root on a machine with a CUDA GPU and rftbench installed
# (`make test` or `pip install -e ".[dev]"`):
#
#     bash benchmarks/gpu_check.sh [OUTPUT_DIR]        # default: gpu-check/
#
# 1. `rftbench doctor` (what the machine is, what `auto` chooses on the GPU);
# 2. the GPU-relevant tests: tests/test_cuda.py (AMP bf16/fp16 + GradScaler, compile, a run and an
#    evaluation on CUDA) and the engine tests;
# 3. ResNet-50 at 224 px, PGD-10, batch 128: the fp32 torchattacks loop against the fused step in fp32,
#    bf16 and fp16 AMP, and AMP + torch.compile — images/s and peak memory, each against the floor in
#    its own precision — then the offline default config trained in fp32 and in AMP (robust accuracy);
# 4. AutoAttack standard (L∞ 4/255) on 500 points through rftbench against pyautoattack called directly;
# 5. benchmarks/gpu_report.py: syncs per step, data-path images/s with workers, the fused step's images/s for
#    ResNet-50 and ViT-S/16 at 224 px, PGD-10, in fp32, bf16, fp16 + GradScaler and compiled, each against its
#    clean-step floor and the ceiling 3/(2k+3), and MFU (torch.utils.flop_counter against the device's peak):
#    OUTPUT_DIR/gpu_report.json and gpu_report.md (its --dry-run runs the same code on CPU in CI);
# 6. benchmarks/bench_data.py: the 224-px data path per worker count against the fused step on this GPU.
# Every step writes under OUTPUT_DIR (logs and JSON); a failing step is reported and the others still run.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT_DIR=${1:-${OUT:-gpu-check}}
mkdir -p "$OUT_DIR"
PY=${PYTHON:-$( [ -x .venv/bin/python ] && echo .venv/bin/python || echo python3 )}
export PYTHONUNBUFFERED=1
status=0
step() {  # step NAME COMMAND…: run, tee the log, remember a failure
    local name=$1; shift
    echo "== $name: $*"
    local t0=$SECONDS
    "$@" 2>&1 | tee "$OUT_DIR/$name.log"
    local rc=${PIPESTATUS[0]}
    echo "== $name: exit $rc after $((SECONDS - t0)) s"
    [ "$rc" -eq 0 ] || status=1
}

if ! "$PY" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)"; then
    echo "error: no CUDA GPU visible to torch ($("$PY" -c 'import torch; print(torch.__version__, torch.version.cuda)'))" >&2
    exit 2
fi
nvidia-smi > "$OUT_DIR/nvidia-smi.txt" 2>&1 || true
step doctor "$PY" -m rftbench doctor
step tests "$PY" -m pytest tests/test_cuda.py tests/test_engine_step.py tests/test_engine_trainer.py tests/test_engine_guards.py -q -p no:cacheprovider -rs
step fused_step "$PY" benchmarks/bench_fused_step.py --device cuda --model resnet50 --size 224 --batch 128 --steps 10 --repeats 5 \
    --precisions fp32,bf16,fp16 --compile --accuracy --epochs 5 --json "$OUT_DIR/fused_step.json"
step autoattack "$PY" benchmarks/bench_evaluation.py --device cuda --parts 1 --n 500 --repeats 2 --out "$OUT_DIR/autoattack.json"
step gpu_report "$PY" benchmarks/gpu_report.py --out "$OUT_DIR" --batch 64 --repeats 3
step data_path "$PY" benchmarks/bench_data.py --device cuda --images 512 --repeats 2 --step-batch 64 --json "$OUT_DIR/data_path.json"
echo "results in $OUT_DIR/ (exit $status)"
exit $status
