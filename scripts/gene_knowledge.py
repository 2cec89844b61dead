#!/usr/bin/python3
"""Gene Ontology embeddings of human genes, for `lingshu train --gene-knowledge`.

Reads Bioconductor's org.Hs.eg.db SQLite file (Debian's r-bioc-org.hs.eg.db), whose go_*_all
tables already carry every gene's annotations propagated to all ancestor terms, and writes one
row per gene symbol: the gene's TF-IDF weighted GO term profile reduced by a truncated SVD to DIM
dimensions and scaled to unit length. Two genes in the same pathways (MAP2K3 and MAP2K6) get
nearby vectors whether or not a data set measures them.

usage: gene_knowledge.py ORG_HS_EG_SQLITE OUT.tsv [DIM]
"""
import sqlite3
import sys

import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as sla

# Terms on fewer genes say nothing about similarity; terms on more are near-roots ("binding").
MIN_GENES, MAX_SHARE = 3, 0.05


def main():
    if len(sys.argv) not in (3, 4):
        sys.exit(__doc__.strip().splitlines()[-1])
    db, out = sys.argv[1], sys.argv[2]
    dim = int(sys.argv[3]) if len(sys.argv) == 4 else 32
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    symbols = {}
    for gene, symbol in con.execute("select _id, symbol from gene_info order by _id"):
        symbols.setdefault(symbol, gene)  # a symbol named twice keeps its first gene
    pairs = set()
    for table in ("go_bp_all", "go_mf_all", "go_cc_all"):
        # ND: "no biological data available", an annotation that says nothing.
        pairs.update(con.execute(f"select _id, go_id from {table} where evidence != 'ND'"))
    genes = sorted({g for g, _ in pairs} & set(symbols.values()))
    row = {g: i for i, g in enumerate(genes)}
    term_genes = {}
    for g, t in pairs:
        if g in row:
            term_genes.setdefault(t, []).append(row[g])
    n = len(genes)
    terms = [t for t, gs in term_genes.items() if MIN_GENES <= len(gs) <= MAX_SHARE * n]
    rows, cols, vals = [], [], []
    for j, t in enumerate(terms):
        gs = term_genes[t]
        idf = np.log(n / len(gs))
        rows += gs
        cols += [j] * len(gs)
        vals += [idf] * len(gs)
    m = sp.csr_matrix((vals, (rows, cols)), shape=(n, len(terms)), dtype=np.float64)
    norms = np.sqrt(np.asarray(m.multiply(m).sum(1))).ravel()
    keep = norms > 0
    m = sp.diags(1 / np.where(keep, norms, 1)) @ m
    u, s, _ = sla.svds(m, k=dim, random_state=0)
    order = np.argsort(-s)
    emb = u[:, order] * s[order]
    # A singular vector's sign is arbitrary (ARPACK's start differs run to run): fix it so the
    # same annotations always give the same file.
    emb *= np.sign(emb[np.argmax(np.abs(emb), axis=0), np.arange(dim)])
    length = np.linalg.norm(emb, axis=1, keepdims=True)
    keep &= length.ravel() > 1e-8
    emb = emb / np.where(length > 0, length, 1)
    name_of = {g: s for s, g in symbols.items()}
    with open(out, "w") as f:
        f.write(f"# Gene Ontology (org.Hs.eg.db, BP+MF+CC with ancestors), TF-IDF over {len(terms)} terms, "
                f"SVD to {dim} dimensions, unit length\n")
        f.write("gene\t" + "\t".join(f"go{k + 1}" for k in range(dim)) + "\n")
        for i, g in enumerate(genes):
            if keep[i]:
                f.write(name_of[g] + "\t" + "\t".join(f"{v:.5f}" for v in emb[i]) + "\n")
    print(f"{int(keep.sum())} genes x {dim} dimensions from {len(terms)} GO terms")


if __name__ == "__main__":
    main()
