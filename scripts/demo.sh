#!/usr/bin/env bash
# The main job on the built-in default data, no download: set up, simulate a dataset with known
# cell types, train a small model on it, generate cells, and score them against the real ones.
# Outputs go to demo/ (override with LINGSHU_DEMO_DIR).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
out=${LINGSHU_DEMO_DIR:-demo}
mkdir -p "$out"
bin=./build/lingshu

$bin simulate --cells 3000 --genes 2000 --cell-types 5 --seed 1 --out "$out/simulated.h5ad"
$bin info "$out/simulated.h5ad"
