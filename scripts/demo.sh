#!/usr/bin/env bash
# The main job on the built-in default data, no download: set up, simulate a dataset with known
# cell types and gene programs, train a small cell-type-conditional model on it (a few minutes on
# 2 cores), generate cells, and score them against the simulated cells next to the independent-genes
# baseline, with an HTML report.
# Outputs go to demo/ (override with LINGSHU_DEMO_DIR); LINGSHU_DEMO_MINUTES sets the training budget.
# Set OMP_WAIT_POLICY=PASSIVE: on a busy 2-core machine OpenMP's spinning workers halve LibTorch's speed.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
out=${LINGSHU_DEMO_DIR:-demo}
minutes=${LINGSHU_DEMO_MINUTES:-3}
mkdir -p "$out"
bin=./build/lingshu
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-PASSIVE}

# Gene programs (co-expressed modules varying within a type) give the data the gene-gene structure
# that the independent-genes baseline lacks; at the default ~3,000 UMIs per cell a program's genes
# correlate at about 0.4 within a type. The truth (DE genes, programs) goes to simulated_truth.json.
echo "== 1/5 simulate: 2,000 cells x 1,000 genes, 5 cell types, 3 gene programs (known truth)"
$bin simulate --cells 2000 --genes 1000 --cell-types 5 --programs 3 --seed 1 --out "$out/simulated.h5ad" \
  --truth "$out/simulated_truth.json"
$bin info "$out/simulated.h5ad"

echo "== 2/5 train a small model (at most ${minutes} minutes, 8 passes over the cells)"
rm -rf "$out/model"
$bin train "$out/simulated.h5ad" --out "$out/model" --preset small --condition cell_type --minutes "$minutes" --seed 1

echo "== 3/5 generate 500 cells"
$bin generate "$out/model" --n 500 --steps 16 --batch-size 100 --seed 2 --out "$out/generated.h5ad"

echo "== 4/5 the independent-genes baseline (same cell count): what a model must beat"
$bin baseline independent "$out/simulated.h5ad" --label cell_type --n 500 --seed 3 --out "$out/baseline.h5ad"

echo "== 5/5 evaluate against the simulated cells"
echo "-- model:"
$bin eval generation "$out/simulated.h5ad" "$out/generated.h5ad" --label cell_type --max-cells 500 \
  --out "$out/metrics_model.json" --report "$out/report.html"
echo "-- independent-genes baseline:"
$bin eval generation "$out/simulated.h5ad" "$out/baseline.h5ad" --label cell_type --max-cells 500 \
  --out "$out/metrics_baseline.json"

echo
echo "Generated cells: $out/generated.h5ad (open with anndata.read_h5ad)"
echo "Metrics:         $out/metrics_model.json (baseline: $out/metrics_baseline.json)"
echo "Report:          $out/report.html"
