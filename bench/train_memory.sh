#!/usr/bin/env bash
# Peak memory of `lingshu train` against the number of cells (issue 16): training reads its cells
# from the .h5ad a shuffle group at a time and fits its starting statistics to a 20,000-cell
# sample, so 1,000,000 cells must need about as much memory as 100,000.
# Simulated data (2,000 genes, median library 1,000 UMIs), the tiny preset, 200 steps of 64 cells,
# one thread; peak RSS from GNU time. Throughput against the in-memory path: bench_streaming.
#   bench/train_memory.sh OUT_DIR        (env LINGSHU: the binary, default build/lingshu;
#                                         SIZES: the cell counts, default "100000 1000000")
set -euo pipefail
out=${1:?usage: bench/train_memory.sh OUT_DIR}
lingshu=$(realpath "${LINGSHU:-build/lingshu}")
export OMP_WAIT_POLICY=PASSIVE
mkdir -p "$out"
cd "$out"
printf '%10s %14s %10s %12s\n' cells "peak RSS MiB" seconds "cells/s"
rm -f rss.txt
for n in ${SIZES:-100000 1000000}; do
  [ -e sim_$n.h5ad ] || "$lingshu" simulate --cells $n --genes 2000 --library-size 1000 --seed 1 -q \
    --threads 1 --out sim_$n.h5ad
  rm -rf model_$n
  /usr/bin/time -f '%M %e' -o time_$n.txt "$lingshu" train sim_$n.h5ad --out model_$n --preset tiny \
    --steps 200 --batch-size 64 --threads 1 -q > train_$n.txt
  read -r kib secs < time_$n.txt
  rate=$(sed -n 's/.*(\([0-9.]*\) cells\/s.*/\1/p' train_$n.txt)
  awk -v n=$n -v k="$kib" -v s="$secs" -v r="$rate" 'BEGIN { printf "%10d %14.0f %10.1f %12.1f\n", n, k / 1024, s, r }'
  echo "$n $kib" >> rss.txt
done
awk 'NR==1{a=$2; n=$1} NR>1{printf "peak RSS %d / %d cells: %.2f\n", $1, n, $2/a}' rss.txt
rm -f rss.txt
