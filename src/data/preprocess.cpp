#include "data/preprocess.h"

#include <fmt/format.h>

#include <cmath>
#include <unordered_map>

#include "core/error.h"

namespace lingshu {

namespace {

// Scale factor that brings a cell with total `total` to `target_sum`; empty cells keep their zeros.
double scale_for(double total, double target_sum) {
  return total > 0.0 ? target_sum / total : 0.0;
}

}  // namespace

CsrMatrix normalize_total(const CsrMatrix& counts, double target_sum) {
  CsrMatrix out = counts;
  const std::vector<double> totals = counts.row_sums();
  for (int64_t r = 0; r < out.n_rows; ++r) {
    const double scale = scale_for(totals[static_cast<size_t>(r)], target_sum);
    for (int64_t i = out.indptr[r]; i < out.indptr[r + 1]; ++i) {
      out.values[static_cast<size_t>(i)] = static_cast<float>(out.values[static_cast<size_t>(i)] * scale);
    }
  }
  return out;
}

void log1p_inplace(CsrMatrix& matrix) {
  for (float& v : matrix.values) v = static_cast<float>(std::log1p(static_cast<double>(v)));
}

CsrMatrix log1p(CsrMatrix matrix) {
  log1p_inplace(matrix);
  return matrix;
}

CsrMatrix log_normalize(const CsrMatrix& counts, double target_sum) {
  CsrMatrix out = counts;
  const std::vector<double> totals = counts.row_sums();
  for (int64_t r = 0; r < out.n_rows; ++r) {
    const double scale = scale_for(totals[static_cast<size_t>(r)], target_sum);
    for (int64_t i = out.indptr[r]; i < out.indptr[r + 1]; ++i) {
      float& v = out.values[static_cast<size_t>(i)];
      v = static_cast<float>(std::log1p(static_cast<double>(v) * scale));
    }
  }
  return out;
}

std::vector<double> column_means(const CsrMatrix& matrix) {
  std::vector<double> means = matrix.col_sums();
  if (matrix.n_rows > 0) {
    for (double& m : means) m /= static_cast<double>(matrix.n_rows);
  }
  return means;
}

std::vector<int64_t> filter_cells(const CsrMatrix& counts, const CellFilter& filter) {
  std::vector<int64_t> kept;
  for (int64_t r = 0; r < counts.n_rows; ++r) {
    int64_t genes = 0;
    double total = 0.0;
    for (const float v : counts.row_values(r)) {
      genes += v != 0.0f ? 1 : 0;
      total += v;
    }
    if (genes >= filter.min_genes && total >= filter.min_counts) kept.push_back(r);
  }
  return kept;
}

std::vector<int64_t> filter_genes(const CsrMatrix& counts, const GeneFilter& filter) {
  std::vector<int64_t> cells(static_cast<size_t>(counts.n_cols), 0);
  std::vector<double> totals(static_cast<size_t>(counts.n_cols), 0.0);
  for (size_t i = 0; i < counts.values.size(); ++i) {
    const auto c = static_cast<size_t>(counts.indices[i]);
    cells[c] += counts.values[i] != 0.0f ? 1 : 0;
    totals[c] += counts.values[i];
  }
  std::vector<int64_t> kept;
  for (int64_t c = 0; c < counts.n_cols; ++c) {
    const auto k = static_cast<size_t>(c);
    if (cells[k] >= filter.min_cells && totals[k] >= filter.min_counts) kept.push_back(c);
  }
  return kept;
}

std::vector<int64_t> gene_indices(const std::vector<std::string>& gene_names,
                                  const std::vector<std::string>& wanted) {
  std::unordered_map<std::string, int64_t> position;
  position.reserve(gene_names.size());
  // The first occurrence wins, as in pandas' get_loc on a non-unique index used for lookup.
  for (size_t i = 0; i < gene_names.size(); ++i) position.emplace(gene_names[i], static_cast<int64_t>(i));
  std::vector<int64_t> out;
  std::vector<std::string> unknown;
  out.reserve(wanted.size());
  for (const auto& name : wanted) {
    const auto it = position.find(name);
    if (it == position.end()) {
      unknown.push_back(name);
    } else {
      out.push_back(it->second);
    }
  }
  if (!unknown.empty()) {
    constexpr size_t kShown = 5;
    std::string shown;
    for (size_t i = 0; i < std::min(kShown, unknown.size()); ++i) shown += (i ? ", " : "") + unknown[i];
    if (unknown.size() > kShown) shown += fmt::format(", ... ({} in all)", unknown.size());
    throw UserError(fmt::format(
        "{} of {} requested genes are not among the {} genes of the data: {}; check the spelling and "
        "the naming scheme (symbols vs Ensembl IDs)",
        unknown.size(), wanted.size(), gene_names.size(), shown));
  }
  return out;
}

AnnData select_genes(const AnnData& data, const std::vector<int64_t>& cols) {
  AnnData out;
  out.X = data.X.select_cols(cols);
  out.obs = data.obs;
  out.var = data.var.select_rows(cols);
  out.uns_strings = data.uns_strings;
  return out;
}

AnnData subset_genes(const AnnData& data, const std::vector<std::string>& wanted) {
  return select_genes(data, gene_indices(data.gene_names(), wanted));
}

}  // namespace lingshu
