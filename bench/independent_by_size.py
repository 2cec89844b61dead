#!/usr/bin/python3
"""The independent-genes baseline within (label, library-size bin): each generated cell draws a
(label, bin) pair from a random real cell, then every gene's count from a random real cell of that
pair, independently per gene. Measures how much of the real data's structure cell size alone
explains (BENCHMARKS.md, "Cell size").

    /usr/bin/python3 bench/independent_by_size.py REAL.h5ad LABEL BINS N_CELLS OUT.h5ad
BINS 1 is `lingshu baseline independent --label LABEL`'s model (sizes not kept)."""
import sys

import anndata
import numpy as np
import pandas as pd
import scipy.sparse as sp

real_path, label, bins, n_cells, out = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
real = anndata.read_h5ad(real_path)
X = real.X.toarray() if sp.issparse(real.X) else np.asarray(real.X)
log_total = np.log(X.sum(1))
edges = np.quantile(log_total, np.linspace(0, 1, bins + 1)[1:-1]) if bins > 1 else np.array([])
labels = real.obs[label].astype(str).values
keys = np.array([f"{t}|{b}" for t, b in zip(labels, np.searchsorted(edges, log_total))])
members = {k: np.flatnonzero(keys == k) for k in np.unique(keys)}
rng = np.random.default_rng(0)
picked = rng.integers(0, len(keys), n_cells)
Y = np.empty((n_cells, X.shape[1]), dtype=np.float32)
genes = np.arange(X.shape[1])
for i, cell in enumerate(picked):
    group = members[keys[cell]]
    Y[i] = X[group[rng.integers(0, len(group), X.shape[1])], genes]
obs = pd.DataFrame({label: pd.Categorical(labels[picked])}, index=[f"ind_{i}" for i in range(n_cells)])
anndata.AnnData(sp.csr_matrix(Y), obs=obs, var=real.var[[]]).write_h5ad(out)
