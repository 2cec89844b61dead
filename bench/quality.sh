#!/usr/bin/env bash
# The quality-bar runs of BENCHMARKS.md, exactly as recorded there.
#   bench/quality.sh pbmc|paul15|kang|cellline|cellline_unseen OUT_DIR
# Reads ../shared/data in place; writes models, generated cells and metric JSON under OUT_DIR.
# LINGSHU (default build/lingshu) picks the binary; MINUTES overrides the training budget, STEPS
# the unmasking steps, THREADS the CPU threads of every command (default 2), N_CELLS the generated
# cells of the generation runs (default: as many as half B, which the metrics then match);
# TRAIN_FLAGS adds options to every train command (e.g. "--library-bins 0"); KNOWLEDGE a gene
# knowledge file for cellline_unseen.
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
data=${DATA_DIR:-$here/../shared/data}
lingshu=${LINGSHU:-$here/build/lingshu}
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-PASSIVE}
py=/usr/bin/python3
read -r -a train_flags <<< "${TRAIN_FLAGS:-}"
threads=${THREADS:-2}

[ $# -eq 2 ] || { echo "usage: bench/quality.sh pbmc|paul15|kang|cellline|cellline_unseen OUT_DIR" >&2; exit 2; }
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

# Generation, held out honestly (issue 14's protocol): train on half A only, generate as many
# cells as half B has, build the baselines from A (independent genes, the factor model, independent
# genes within 16 size bins), and score everything against B with the copy check against A.
generation() {
  local name=$1 real=$2
  split_halves "$real" $name
  local n_b
  n_b=${N_CELLS:-$($py -c "import anndata; print(anndata.read_h5ad('${name}_B.h5ad', backed='r').n_obs)")}
  [ -e $name/weights.safetensors ] || "$lingshu" train ${name}_A.h5ad --out $name --preset small --condition cell_type \
    "${train_flags[@]}" --minutes "${MINUTES:-45}" --seed 1 --threads "$threads" --eval-every 200 --checkpoint-every 200
  "$lingshu" generate $name --n "$n_b" --steps "${STEPS:-1}" --seed 0 --threads "$threads" --out ${name}_generated.h5ad
  "$lingshu" baseline independent ${name}_A.h5ad --label cell_type --n "$n_b" --seed 0 --out ${name}_independent.h5ad
  "$lingshu" baseline factor ${name}_A.h5ad --label cell_type --n "$n_b" --seed 0 --out ${name}_factor.h5ad
  $py "$here/bench/independent_by_size.py" ${name}_A.h5ad cell_type 16 "$n_b" ${name}_independent_size16.h5ad
  for side in generated independent factor independent_size16 A; do
    "$lingshu" eval generation ${name}_B.h5ad ${name}_$side.h5ad --label cell_type --seed 0 -q \
      --train ${name}_A.h5ad --out eval_${name}_$side.json
  done
}

# pbmc3k (discrete cell types) and paul15 (a continuous differentiation), all genes, `small`.
pbmc() { generation pbmc3k "$data/pbmc3k.h5ad"; }
paul15() { generation paul15 "$data/paul15_mouse.h5ad"; }

# Kang IFN-beta: (CD4T, stimulated) held out, predicted, scored against the real held-out cells.
kang() {
  local real=$data/kang_ifnb.h5ad
  printf 'cell_type,condition,n_cells\nCD4T,stimulated,356\n' > kang_pairs.csv
  [ -e kang/weights.safetensors ] || "$lingshu" train "$real" --out kang --preset small --condition cell_type \
    --perturbation condition --control control --holdout cell_type=CD4T,condition=stimulated \
    "${train_flags[@]}" --minutes "${MINUTES:-20}" --seed 1 --threads "$threads"
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
  [ -e cellline/weights.safetensors ] || "$lingshu" train "$real" --out cellline --preset small --condition cell_type \
    --perturbation condition --control control "${flags[@]}" "${train_flags[@]}" --minutes "${MINUTES:-20}" --seed 1 --threads "$threads"
  for b in mean additive control; do
    "$lingshu" baseline $b "$real" --pairs cellline_pairs.csv --context-col cell_type "${flags[@]}" --seed 0 \
      --out cellline_$b.h5ad
  done
  predict_ablation cellline "$real" cellline_pairs.csv
}

# cellline CRISPR, unseen perturbations (issue 15): every cell of MAP2K6 and SGK1 held out in all
# four lines, their combinations too, and each (line, target) predicted at its real size: by a
# model without gene knowledge from the line's perturbed state alone (--allow-unknown: neither gene
# is measured), and with KNOWLEDGE=FILE (scripts/gene_knowledge.sh) by a second model that embeds
# the targets from it.
cellline_unseen() {
  local real=$data/cellline_crispr.h5ad flags=() label
  for label in MAP2K6 SGK1 KLF1+MAP2K6 MAP2K3+MAP2K6 SGK1+TBX3; do flags+=(--holdout "condition=$label"); done
  $py -c "
import anndata
obs = anndata.read_h5ad('$real', backed='r').obs
print('cell_type,condition,n_cells')
for (line, target), n in obs.groupby(['cell_type', 'condition'], observed=True).size().items():
    if target in ('MAP2K6', 'SGK1'): print(f'{line},{target},{n}')" > unseen_pairs.csv
  local models=(unseen) allow=(--allow-unknown)
  [ -n "${KNOWLEDGE:-}" ] && models+=(unseen_knowledge)
  for m in "${models[@]}"; do
    local extra=()
    [ $m = unseen_knowledge ] && extra=(--gene-knowledge "$KNOWLEDGE")
    [ -e $m/weights.safetensors ] || "$lingshu" train "$real" --out $m --preset small --condition cell_type \
      --perturbation condition --control control "${flags[@]}" "${extra[@]}" "${train_flags[@]}" \
      --minutes "${MINUTES:-20}" --seed 1 --threads "$threads"
    [ $m = unseen_knowledge ] && allow=()
    "$lingshu" predict $m --pairs unseen_pairs.csv "${allow[@]}" --steps "${STEPS:-1}" --seed 0 \
      --threads "$threads" -q --out ${m}_pred.h5ad
    "$lingshu" predict $m --pairs unseen_pairs.csv "${allow[@]}" --expected --seed 0 \
      --threads "$threads" -q --out ${m}_expected.h5ad
  done
  "$lingshu" baseline mean "$real" --pairs unseen_pairs.csv --context-col cell_type "${flags[@]}" --seed 0 \
    --out unseen_mean.h5ad
  for pred in "${models[@]/%/_pred}" "${models[@]/%/_expected}" unseen_mean; do
    "$lingshu" eval perturbation "$real" $pred.h5ad --context-col cell_type --baseline unseen_mean.h5ad -q \
      --out eval_$pred.json
  done
}

# Predictions at --cfg 0, 1, 2 with and without --prior, guided on the perturbation alone at
# --cfg 1, 2, 4, composed from single-condition experts at --cfg 0, 1, and the baselines, each
# scored against the real cells (normalised against the mean baseline).
predict_ablation() {
  local name=$1 real=$2 pairs=$3
  for cfg in 0 1 2; do
    "$lingshu" predict $name --pairs "$pairs" --cfg $cfg --steps "${STEPS:-1}" --seed 0 --threads "$threads" -q \
      --out ${name}_cfg$cfg.h5ad
    "$lingshu" predict $name --pairs "$pairs" --cfg $cfg --prior "$real" --steps "${STEPS:-1}" --seed 0 \
      --threads "$threads" -q --out ${name}_cfg${cfg}_prior.h5ad
  done
  for cfg in 1 2 4; do
    "$lingshu" predict $name --pairs "$pairs" --cfg $cfg --guide perturbation --steps "${STEPS:-1}" --seed 0 \
      --threads "$threads" -q --out ${name}_cfg${cfg}_pert.h5ad
  done
  for cfg in 0 1; do
    "$lingshu" predict $name --pairs "$pairs" --cfg $cfg --guide compose --steps "${STEPS:-1}" --seed 0 \
      --threads "$threads" -q --out ${name}_cfg${cfg}_compose.h5ad
  done
  "$lingshu" predict $name --pairs "$pairs" --expected --seed 0 --threads "$threads" -q --out ${name}_expected.h5ad
  for pred in ${name}_cfg{0,1,2} ${name}_cfg{0,1,2}_prior ${name}_cfg{1,2,4}_pert ${name}_cfg{0,1}_compose \
              ${name}_expected ${name}_{additive,control,mean}; do
    "$lingshu" eval perturbation "$real" $pred.h5ad --context-col cell_type --baseline ${name}_mean.h5ad -q \
      --out eval_$pred.json
  done
}

"$1"
