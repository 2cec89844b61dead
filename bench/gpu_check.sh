#!/usr/bin/env bash
# The GPU check of issue 16, one prepared script for a GPU machine with a CUDA PyTorch and no
# network (under 8 minutes on an H200): builds lingshu offline (scripts/build-cuda.sh build; run
# `scripts/build-cuda.sh fetch` on a machine with network first and carry third_party/offline),
# then on --device cuda:
#   1. checks: training steps, same-seed determinism (two runs' weights), checkpoint round trip
#      (20 steps + --resume to 40 against 40 straight), sampling (same seed, same cells);
#   2. bench_model: `base` training in bf16 on pbmc3k, tokens/s and achieved TFLOP/s against the
#      bf16 matrix-multiply peak measured in the same process; peak GPU memory (nvidia-smi);
#   3. generation: cells/s of `lingshu generate` on a pbmc3k model, and the minutes 200,000 cells
#      would take at that rate.
#   bench/gpu_check.sh [OUT_DIR]   env DATA: pbmc3k.h5ad (default third_party/offline/pbmc3k.h5ad);
#                                  BUILD: the build folder (default build-cuda); DEVICE (default cuda);
#                                  PYTHON: an interpreter with numpy and h5py (default python3)
# Prints Markdown for BENCHMARKS.md and writes it to OUT_DIR/gpu_check.md.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
out=$(realpath -m "${1:-gpu_check_out}")
build=$(realpath -m "${BUILD:-$here/build-cuda}")
data=${DATA:-$here/third_party/offline/pbmc3k.h5ad}
device=${DEVICE:-cuda}
python=${PYTHON:-python3}  # with numpy and h5py
export OMP_WAIT_POLICY=PASSIVE
mkdir -p "$out"
work=$(mktemp -d)
trap 'rm -rf "$work"; kill $(jobs -p) 2>/dev/null || true' EXIT
report="$out/gpu_check.md"
say() { echo "$*" | tee -a "$report"; }
: >"$report"

started=$(date +%s)
"$here/scripts/build-cuda.sh" build "$build" >"$out/build.log" 2>&1 || { tail -40 "$out/build.log"; exit 1; }
say "build: $(( $(date +%s) - started )) s"
bin="$build/lingshu"
command -v nvidia-smi >/dev/null && say "gpu: $(nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader)"

# Weights of two model directories: identical, or the largest difference.
compare_weights() {
  "$python" - "$1" "$2" <<'PY'
import json, struct, sys
import numpy as np
def tensors(path):  # safetensors: 8-byte header size, JSON header, raw little-endian data
    raw = open(path, "rb").read()
    n = struct.unpack("<Q", raw[:8])[0]
    header = json.loads(raw[8:8 + n])
    kinds = {"F32": np.float32, "F64": np.float64, "I64": np.int64, "BF16": np.uint16, "F16": np.float16}
    return {k: np.frombuffer(raw[8 + n + v["data_offsets"][0]:8 + n + v["data_offsets"][1]],
                             kinds[v["dtype"]]).astype(np.float64)
            for k, v in header.items() if k != "__metadata__"}
a, b = (tensors(f"{d}/weights.safetensors") for d in sys.argv[1:3])
diff = max(float(np.abs(a[k] - b[k]).max(initial=0)) for k in a)
print("identical" if diff == 0 else f"max |difference| {diff:.3g}")
PY
}
compare_cells() {
  "$python" - "$1" "$2" <<'PY'
import sys, h5py, numpy as np
def x(p):
    with h5py.File(p) as f:
        return [np.asarray(f["X"][k]) for k in ("data", "indices", "indptr")]
same = all(np.array_equal(u, v) for u, v in zip(x(sys.argv[1]), x(sys.argv[2])))
print("identical" if same else "different")
PY
}

# 1. checks on a small simulated data set
tiny="--preset tiny --device $device --seed 3 -q --condition cell_type --checkpoint-every 20"
"$bin" simulate --cells 3000 --genes 1000 --cell-types 3 --seed 1 -q --out "$work/sim.h5ad"
"$bin" train "$work/sim.h5ad" --out "$work/a" $tiny --steps 40
"$bin" train "$work/sim.h5ad" --out "$work/b" $tiny --steps 40
say "same seed, two trainings (40 steps): $(compare_weights "$work/a" "$work/b")"
"$bin" train "$work/sim.h5ad" --out "$work/c" $tiny --steps 40 >"$work/c.log" 2>&1 &
pid=$!
while [ ! -e "$work/c/checkpoint.pt" ]; do
  kill -0 $pid 2>/dev/null || { cat "$work/c.log"; echo "gpu_check: the run to interrupt ended without a checkpoint"; exit 1; }
  sleep 0.2
done
kill -9 $pid 2>/dev/null || true
wait $pid 2>/dev/null || true
"$bin" train "$work/sim.h5ad" --out "$work/c" --resume --device "$device" -q
say "killed after the step-20 checkpoint and resumed, against 40 straight steps: $(compare_weights "$work/a" "$work/c")"
"$bin" generate "$work/a" --n 1000 --device "$device" --seed 5 -q --out "$work/g1.h5ad"
"$bin" generate "$work/a" --n 1000 --device "$device" --seed 5 -q --out "$work/g2.h5ad"
say "same seed, two generations of 1,000 cells: $(compare_cells "$work/g1.h5ad" "$work/g2.h5ad")"
"$bin" eval generation "$work/sim.h5ad" "$work/g1.h5ad" --label cell_type -q | grep -i -E 'auc|mmd' | head -3 | sed 's/^/    /' | tee -a "$report"

# 2. training throughput of `base` in bf16, peak GPU memory
if [ -e "$data" ]; then
  ( while true; do nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits 2>/dev/null; sleep 0.5; done ) \
    >"$work/memory.txt" &
  poller=$!
  "$build/bench/bench_model" --presets base --precisions bf16 --device "$device" --batch 64 --data "$data" \
    | tee -a "$report"
  kill $poller 2>/dev/null || true
  say "peak GPU memory used (nvidia-smi, whole GPU): $(sort -n "$work/memory.txt" | tail -1) MiB"

  # 3. generation speed on pbmc3k
  "$bin" train "$data" --out "$work/pbmc" --preset base --device "$device" --precision bf16 --steps 200 \
    --batch-size 64 -q
  t0=$(date +%s.%N)
  "$bin" generate "$work/pbmc" --n 20000 --device "$device" --batch-size 1024 -q --out "$work/pbmc_gen.h5ad"
  secs=$(echo "$(date +%s.%N) - $t0" | bc)
  say "$(awk -v s="$secs" 'BEGIN { printf "generate 20,000 pbmc3k cells (base, 32 steps): %.1f s, %.0f cells/s; 200,000 cells: %.1f min at that rate", s, 20000 / s, 200000 / (20000 / s) / 60 }')"
else
  say "no pbmc3k at $data: training and generation throughput skipped (copy it there and carry it)"
fi
say "total: $(( $(date +%s) - started )) s"
