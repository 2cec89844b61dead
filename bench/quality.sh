#!/usr/bin/env bash
# The quality-bar runs of BENCHMARKS.md, exactly as recorded there.
#   bench/quality.sh pbmc|kang|cellline OUT_DIR
# Reads ../shared/data in place; writes models, generated cells and metric JSON under OUT_DIR.
# LINGSHU (default build/lingshu) picks the binary; MINUTES overrides the training budget, STEPS
# the unmasking steps; TRAIN_FLAGS adds options to every train command (the experiments'
# "--library-bins 16 --prior-lr-scale 0").
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
data=${DATA_DIR:-$here/../shared/data}
lingshu=${LINGSHU:-$here/build/lingshu}
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-PASSIVE}
py=/usr/bin/python3
read -r -a train_flags <<< "${TRAIN_FLAGS:-}"

[ $# -eq 2 ] || { echo "usage: bench/quality.sh pbmc|kang|cellline OUT_DIR" >&2; exit 2; }
[ -d "$data" ] || { echo "quality.sh: $data is missing (set DATA_DIR)" >&2; exit 2; }
mkdir -p "$2"
cd "$2"

# Random halves A / B of a file (seed 0), as in "Generation metrics".
split_halves() {
  $py -c "
import anndata, numpy as np
a = anndata.read_h5ad('$1'); p = np.random.default_rng(0).permutation(a.n_obs); h = a.n_obs // 2
a[np.sort(p[:h])].copy().write_h5ad('$2_A.h5ad'); a[np.sort(p[h:])].copy().write_h5ad('$2_B.h5ad')"
}

# pbmc3k, all genes, cell-type-conditional `small` (issue 4's bar and issue 5's per-type agreement).
pbmc() {
  local real=$data/pbmc3k.h5ad
  [ -e pbmc/weights.pt ] || "$lingshu" train "$real" --out pbmc --preset small --condition cell_type \
    "${train_flags[@]}" --minutes "${MINUTES:-45}" --seed 1 --threads 2 --eval-every 200 --checkpoint-every 200
  split_halves "$real" pbmc3k
  # 2,700 cells in the training proportions of the cell types.
  "$lingshu" generate pbmc --n 2700 --steps "${STEPS:-32}" --seed 0 --threads 2 --out generated.h5ad
  "$lingshu" baseline independent "$real" --label cell_type --n 2700 --seed 0 --out independent.h5ad
  for side in generated independent pbmc3k_A; do
    "$lingshu" eval generation pbmc3k_B.h5ad $side.h5ad --label cell_type --max-cells 1350 --seed 0 -q \
      --out eval_$side.json
  done
  # Declared vs transferred cell type of every generated cell, against all real cells; then 100
  # cells of each type with >= 100 real cells under guidance.
  "$lingshu" eval generation "$real" generated.h5ad --label cell_type --seed 0 -q --out eval_agreement.json
  printf 'cell_type,n_cells\n' > pbmc_plan.csv
  for t in "Naive CD4 T" "Memory CD4 T" "CD14+ Mono" B "CD8 T" "FCGR3A+ Mono" NK; do echo "$t,100" >> pbmc_plan.csv; done
  "$lingshu" generate pbmc --plan pbmc_plan.csv --cfg 2 --steps "${STEPS:-32}" --seed 0 --threads 2 --out guided.h5ad
  "$lingshu" eval generation "$real" guided.h5ad --label cell_type --seed 0 -q --out eval_guided.json
}

# Kang IFN-beta: (CD4T, stimulated) held out, predicted, scored against the real held-out cells.
kang() {
  local real=$data/kang_ifnb.h5ad
  printf 'cell_type,condition,n_cells\nCD4T,stimulated,356\n' > kang_pairs.csv
  [ -e kang/weights.pt ] || "$lingshu" train "$real" --out kang --preset small --condition cell_type \
    --perturbation condition --control control --holdout cell_type=CD4T,condition=stimulated \
    "${train_flags[@]}" --minutes "${MINUTES:-20}" --seed 1 --threads 2
  for b in mean additive control; do
    "$lingshu" baseline $b "$real" --pairs kang_pairs.csv --context-col cell_type \
      --holdout cell_type=CD4T,condition=stimulated --seed 0 --out kang_$b.h5ad
  done
  predict_ablation kang "$real" kang_pairs.csv
}

# cellline CRISPR: each perturbation measured in all four lines held out in one of them.
cellline() {
  local real=$data/cellline_crispr.h5ad
  local holdouts=(A172:MAP2K3:100 A172:MAP4K5:68 A172:TGFBR2:69 T98G:MAP2K6:71 T98G:MAPK1:88
                  U87MG:MAP3K21:86 U87MG:PLK4:60 k562:MAP4K3:100 k562:SGK1:100)
  local flags=() line
  echo "cell_type,condition,n_cells" > cellline_pairs.csv
  for h in "${holdouts[@]}"; do
    IFS=: read -r ctx pert n <<< "$h"
    flags+=(--holdout "cell_type=$ctx,condition=$pert")
    echo "$ctx,$pert,$n" >> cellline_pairs.csv
  done
  [ -e cellline/weights.pt ] || "$lingshu" train "$real" --out cellline --preset small --condition cell_type \
    --perturbation condition --control control "${flags[@]}" "${train_flags[@]}" --minutes "${MINUTES:-20}" --seed 1 --threads 2
  for b in mean additive control; do
    "$lingshu" baseline $b "$real" --pairs cellline_pairs.csv --context-col cell_type "${flags[@]}" --seed 0 \
      --out cellline_$b.h5ad
  done
  predict_ablation cellline "$real" cellline_pairs.csv
}

# Predictions at --cfg 0, 1, 2 with and without --prior, guided on the perturbation alone at
# --cfg 1, 2, 4, composed from single-condition experts at --cfg 0, 1, and the baselines, each
# scored against the real cells (normalised against the mean baseline).
predict_ablation() {
  local name=$1 real=$2 pairs=$3
  for cfg in 0 1 2; do
    "$lingshu" predict $name --pairs "$pairs" --cfg $cfg --steps "${STEPS:-32}" --seed 0 --threads 2 -q \
      --out ${name}_cfg$cfg.h5ad
    "$lingshu" predict $name --pairs "$pairs" --cfg $cfg --prior "$real" --steps "${STEPS:-32}" --seed 0 \
      --threads 2 -q --out ${name}_cfg${cfg}_prior.h5ad
  done
  for cfg in 1 2 4; do
    "$lingshu" predict $name --pairs "$pairs" --cfg $cfg --guide perturbation --steps "${STEPS:-32}" --seed 0 \
      --threads 2 -q --out ${name}_cfg${cfg}_pert.h5ad
  done
  for cfg in 0 1; do
    "$lingshu" predict $name --pairs "$pairs" --cfg $cfg --guide compose --steps "${STEPS:-32}" --seed 0 \
      --threads 2 -q --out ${name}_cfg${cfg}_compose.h5ad
  done
  for pred in ${name}_cfg{0,1,2} ${name}_cfg{0,1,2}_prior ${name}_cfg{1,2,4}_pert ${name}_cfg{0,1}_compose \
              ${name}_{additive,control,mean}; do
    "$lingshu" eval perturbation "$real" $pred.h5ad --context-col cell_type --baseline ${name}_mean.h5ad -q \
      --out eval_$pred.json
  done
}

"$1"
