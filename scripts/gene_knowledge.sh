#!/usr/bin/env bash
# Builds a gene-knowledge file for `lingshu train --gene-knowledge` from the Gene Ontology
# annotations of human genes that Debian ships (r-bioc-org.hs.eg.db): one line per gene symbol,
# its GO profile reduced to DIM numbers (scripts/gene_knowledge.py says how).
#   scripts/gene_knowledge.sh OUT.tsv [DIM]        (DIM: 32 by default; needs apt access)
# The package is downloaded and unpacked into a temporary folder, not installed (it would pull in
# R); only the reduction needs numpy and scipy for /usr/bin/python3, installed when missing.
set -euo pipefail
if [ $# -lt 1 ] || [ $# -gt 2 ]; then
  echo "usage: $0 OUT.tsv [DIM]" >&2
  exit 2
fi
out=$(realpath -m "$1")
dim=${2:-32}
here=$(cd "$(dirname "$0")" && pwd)
if ! /usr/bin/python3 -c 'import numpy, scipy.sparse.linalg' 2>/dev/null; then
  sudo=(); [ "$(id -u)" -ne 0 ] && sudo=(sudo)
  "${sudo[@]}" apt-get install -y -q python3-numpy python3-scipy >/dev/null
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
(cd "$work" && apt-get download -q r-bioc-org.hs.eg.db 2>/dev/null) || {
  echo "gene_knowledge: cannot download r-bioc-org.hs.eg.db (apt-get download); is apt reachable?" >&2
  exit 1
}
dpkg -x "$work"/r-bioc-org.hs.eg.db_*.deb "$work/pkg"
db=$(find "$work/pkg" -name org.Hs.eg.sqlite | head -1)
[ -n "$db" ] || { echo "gene_knowledge: org.Hs.eg.sqlite not found in the package" >&2; exit 1; }
# Written beside OUT and renamed, so an interrupted run leaves no half-written file.
/usr/bin/python3 "$here/gene_knowledge.py" "$db" "$out.partial" "$dim"
mv "$out.partial" "$out"
echo "gene_knowledge: wrote $out"
