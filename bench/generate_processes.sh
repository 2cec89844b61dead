#!/usr/bin/env bash
# `lingshu generate` on one process against --nproc 2 (issue 16): throughput on this machine's
# cores, and proof that the processes write the cells one process writes.
#   bench/generate_processes.sh MODEL_DIR OUT_DIR   (env LINGSHU: the binary, default build/lingshu;
#                                                    N: cells, default 1000)
set -euo pipefail
model=$(realpath "${1:?usage: bench/generate_processes.sh MODEL_DIR OUT_DIR}")
out=${2:?usage: bench/generate_processes.sh MODEL_DIR OUT_DIR}
lingshu=$(realpath "${LINGSHU:-build/lingshu}")
n=${N:-1000}
export OMP_WAIT_POLICY=PASSIVE
mkdir -p "$out"
cd "$out"
printf '%-26s %8s %10s %10s %8s\n' run cells seconds cells/s ratio
base=""
for run in "--threads 1" "--threads 2" "--nproc 2 --threads 1"; do
  name=gen_${run//[ -]/_}.h5ad
  start=$(date +%s.%N)
  "$lingshu" generate "$model" --n "$n" --seed 0 -q $run --out "$name"
  secs=$(echo "$(date +%s.%N) - $start" | bc -l)
  [ -n "$base" ] || base=$secs
  awk -v r="$run" -v n="$n" -v s="$secs" -v b="$base" \
    'BEGIN { printf "%-26s %8d %10.1f %10.2f %8.2f\n", r, n, s, n / s, b / s }'
done
/usr/bin/python3 - <<'PY'
import glob, anndata
files = sorted(glob.glob("gen_*.h5ad"))
first = anndata.read_h5ad(files[0])
for f in files[1:]:
    other = anndata.read_h5ad(f)
    same = (first.X != other.X).nnz == 0 and list(first.obs_names) == list(other.obs_names)
    print(f"{f}: {'the same cells as' if same else 'DIFFERENT cells from'} {files[0]}")
PY
rm -f gen_*.h5ad
