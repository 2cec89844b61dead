#!/usr/bin/env bash
# Peak memory of `lingshu generate` against the number of cells (issue 16): cells are written to
# the .h5ad as they are made, so 200,000 cells must need about as much memory as 20,000.
# A tiny model on simulated data (2,000 genes), sampled in 4 steps; peak RSS from GNU time.
#   bench/generate_memory.sh OUT_DIR        (env LINGSHU: the binary, default build/lingshu;
#                                            SIZES: the cell counts, default "20000 200000")
set -euo pipefail
out=${1:?usage: bench/generate_memory.sh OUT_DIR}
lingshu=$(realpath "${LINGSHU:-build/lingshu}")
export OMP_WAIT_POLICY=PASSIVE
mkdir -p "$out"
cd "$out"
[ -e sim.h5ad ] || "$lingshu" simulate --cells 2000 --genes 2000 --seed 1 -q --out sim.h5ad
[ -e tiny/weights.safetensors ] || "$lingshu" train sim.h5ad --out tiny --preset tiny --condition cell_type --steps 20 \
  --seed 1 -q
printf '%10s %14s %10s %12s\n' cells "peak RSS MiB" seconds "cells/s"
rm -f rss.txt
for n in ${SIZES:-20000 200000}; do
  /usr/bin/time -f '%M %e' -o time_$n.txt "$lingshu" generate tiny --n $n --steps 4 --batch-size 256 \
    --seed 0 -q --out gen_$n.h5ad
  read -r kib secs < time_$n.txt
  awk -v n=$n -v k="$kib" -v s="$secs" 'BEGIN { printf "%10d %14.0f %10.1f %12.0f\n", n, k / 1024, s, n / s }'
  echo "$n $kib" >> rss.txt
done
awk 'NR==1{a=$2; n=$1} NR>1{printf "peak RSS %d / %d cells: %.2f\n", $1, n, $2/a}' rss.txt
rm -f rss.txt gen_*.h5ad
