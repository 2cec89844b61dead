#pragma once
// scanpy-style preprocessing on CSR counts (cells x genes). Every function leaves zeros implicit,
// so the sparsity pattern of the input is kept.
#include <cstdint>
#include <string>
#include <vector>

#include "data/anndata.h"
#include "data/count_matrix.h"

namespace lingshu {

// Default target for library-size normalisation: counts per 10,000 (the normalisation of every metric, README
// "Evaluation").
inline constexpr double kDefaultTargetSum = 1e4;

// Scales every cell to sum to `target_sum` (scanpy's pp.normalize_total with target_sum given).
// Cells with no counts stay all zero.
CsrMatrix normalize_total(const CsrMatrix& counts, double target_sum = kDefaultTargetSum);

// Natural log(1 + x) of every stored value, in place / on a copy (scanpy's pp.log1p).
void log1p_inplace(CsrMatrix& matrix);
CsrMatrix log1p(CsrMatrix matrix);

// log1p(counts / total * target_sum) in one pass: the expression every metric works on.
CsrMatrix log_normalize(const CsrMatrix& counts, double target_sum = kDefaultTargetSum);

// Mean of every column over all rows (zeros included): per-gene mean expression.
std::vector<double> column_means(const CsrMatrix& matrix);

// scanpy's pp.filter_cells: keep cells with at least `min_genes` expressed genes and at least
// `min_counts` total counts. Returns the kept row indices, increasing.
struct CellFilter {
  int64_t min_genes = 0;
  double min_counts = 0.0;
};
std::vector<int64_t> filter_cells(const CsrMatrix& counts, const CellFilter& filter);

// scanpy's pp.filter_genes: keep genes expressed in at least `min_cells` cells and with at least
// `min_counts` total counts. Returns the kept column indices, increasing.
struct GeneFilter {
  int64_t min_cells = 0;
  double min_counts = 0.0;
};
std::vector<int64_t> filter_genes(const CsrMatrix& counts, const GeneFilter& filter);

// Column index of each name in `wanted` (in that order). Throws UserError naming the unknown genes
// (the first few and how many) and the file's gene count when any name is missing.
std::vector<int64_t> gene_indices(const std::vector<std::string>& gene_names,
                                  const std::vector<std::string>& wanted);

// The genes named (in that order): X columns and var rows.
AnnData subset_genes(const AnnData& data, const std::vector<std::string>& wanted);
// The genes listed by index (in that order).
AnnData select_genes(const AnnData& data, const std::vector<int64_t>& cols);

}  // namespace lingshu
