#!/usr/bin/env bash
# The main job on the built-in default data, no download: set up, simulate a dataset with known
# cell types and gene programs, train a small cell-type-conditional model on half of it (a few
# minutes on 2 cores), generate cells, and score them against the other half next to the two
# baselines, with the copy check and an HTML report.
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
echo "== 1/5 simulate 4,000 cells x 1,000 genes (5 cell types, 3 gene programs), split into halves"
$bin simulate --cells 4000 --genes 1000 --cell-types 5 --programs 3 --seed 1 --out "$out/simulated.h5ad" \
  --truth "$out/simulated_truth.json"
$bin info "$out/simulated.h5ad"
# The model sees one half only; every score is against the other half, which it never saw.
$bin split "$out/simulated.h5ad" --out "$out/train.h5ad" --rest "$out/heldout.h5ad" --seed 1

echo "== 2/5 train a small model on the training half (at most ${minutes} minutes, 8 passes over the cells)"
rm -rf "$out/model"
$bin train "$out/train.h5ad" --out "$out/model" --preset small --condition cell_type --minutes "$minutes" --seed 1

echo "== 3/5 generate 500 cells"
$bin generate "$out/model" --n 500 --batch-size 100 --seed 2 --out "$out/generated.h5ad"

echo "== 4/5 the two baselines a model must beat, from the same training half"
# Independent genes: right marginals, no gene-gene structure. Factor: the structure, wrong marginals.
$bin baseline independent "$out/train.h5ad" --label cell_type --n 500 --seed 3 --out "$out/independent.h5ad"
$bin baseline factor "$out/train.h5ad" --label cell_type --n 500 --seed 3 --out "$out/factor.h5ad"

echo "== 5/5 evaluate against the held-out half (with the copy check against the training half)"
for side in generated independent factor; do
  report=()
  [ "$side" = generated ] && report=(--report "$out/report.html")
  $bin eval generation "$out/heldout.h5ad" "$out/$side.h5ad" --label cell_type --max-cells 500 \
    --train "$out/train.h5ad" --out "$out/metrics_$side.json" "${report[@]}" -q > /dev/null
done
/usr/bin/python3 - "$out" <<'PY'
import json, sys
print(f"{'against held-out cells':<22} {'kNN AUC':>8} {'5-NN clf':>9} {'MMD':>8} {'gene-gene':>10} {'copy':>6}")
for side, name in [("generated", "lingshu"), ("independent", "independent genes"), ("factor", "factor baseline")]:
    m = json.load(open(f"{sys.argv[1]}/metrics_{side}.json"))
    print(f"{name:<22} {m['knn_auc']:>8.3f} {m['classifier_auc']:>9.3f} {m['mmd']:>8.4f} "
          f"{m['gene_gene_corr']:>10.3f} {m['copy_ratio']:>6.2f}")
print("(AUCs: 0.5 = indistinguishable from real cells; copy: 1 = no closer to the training cells than "
      "new real cells are, well below 1 = copies)")
PY

echo
echo "Generated cells: $out/generated.h5ad (open with anndata.read_h5ad)"
echo "Metrics:         $out/metrics_generated.json (baselines: $out/metrics_independent.json, $out/metrics_factor.json)"
echo "Report:          $out/report.html"
