#pragma once
// Differential expression of many groups of cells against one control group, gene by gene, as the
// Virtual Cell Challenge's cell-eval computes it (pdex): two-sided Mann-Whitney U with tie-corrected
// variance and continuity correction, fold changes from expm1 of mean log expression.
//
// Speed comes from ranking each gene once for all groups of a context: a group's U against the
// control only needs, for each of its values, how many control values lie below or tie with it,
// and that is a running count in one walk over the gene's sorted values. Zeros (most of a sparse
// matrix) are never expanded: they form one tie block whose size per group is a subtraction.
#include <cstdint>
#include <span>
#include <vector>

#include "data/count_matrix.h"

namespace lingshu {

// Which cells are compared: a group index per matrix row (-1 = leave the cell out), the number of
// groups, and which group is the control.
struct CellGroups {
  std::vector<int32_t> group_of_cell;
  int32_t n_groups = 0;
  int32_t control = 0;

  // Cells per group.
  std::vector<int64_t> sizes() const;
};

// Tables laid out [group * n_genes + gene]; the control's own row is U = 0, p = 1.
struct RankTestResult {
  int32_t n_groups = 0;
  int64_t n_genes = 0;
  std::vector<double> u;        // U statistic of the group (scipy's mannwhitneyu(group, control))
  std::vector<double> p_value;  // two-sided

  std::span<const double> p_row(int32_t group) const {
    return {p_value.data() + static_cast<size_t>(group) * static_cast<size_t>(n_genes),
            static_cast<size_t>(n_genes)};
  }
};

// Mann-Whitney U of every group against the control for every column of `values` (cells x genes;
// any real values, zeros implicit). Groups with no cells get p = 1. Runs on `threads` threads
// (0 = all hardware threads).
RankTestResult mann_whitney_vs_control(const CsrMatrix& values, const CellGroups& groups, int threads = 0);

// Mean of every column per group, zeros included: [group * n_genes + gene]. NaN for empty groups.
std::vector<double> group_column_means(const CsrMatrix& values, const CellGroups& groups);

// pdex's fold change from mean log1p expressions: expm1(group) / expm1(control), with the ratio
// set to kFoldChangeClip when the control mean is 0 and to 1 / kFoldChangeClip when only the
// group mean is 0 (so log2 fold changes stay finite and rank sensibly).
inline constexpr double kFoldChangeClip = 20.0;
double fold_change_from_log_means(double group_log_mean, double control_log_mean);

// The DE table of one file: per group and gene, the mean log expression, p-value, FDR and log2
// fold change against the control. `fdr` is left empty by differential_expression: the caller
// chooses the scope (see apply_fdr_per_group and benjamini_hochberg in eval/stats.h).
struct DifferentialExpression {
  int32_t n_groups = 0;
  int64_t n_genes = 0;
  int32_t control = 0;
  std::vector<int64_t> group_sizes;
  std::vector<double> mean;  // pseudobulk: mean log1p-normalised expression
  std::vector<double> u;
  std::vector<double> p_value;
  std::vector<double> fdr;
  std::vector<double> log2_fold_change;

  size_t at(int32_t group, int64_t gene) const {
    return static_cast<size_t>(group) * static_cast<size_t>(n_genes) + static_cast<size_t>(gene);
  }
  template <class T>
  static std::span<const T> row(const std::vector<T>& table, int32_t group, int64_t n_genes) {
    return {table.data() + static_cast<size_t>(group) * static_cast<size_t>(n_genes),
            static_cast<size_t>(n_genes)};
  }
};

// Everything above in one call on log-normalised expression (cells x genes).
DifferentialExpression differential_expression(const CsrMatrix& log_expression, const CellGroups& groups,
                                               int threads = 0);

// Benjamini-Hochberg over each group's genes separately (cell-eval's per-perturbation scope).
// The control row gets FDR 1.
void apply_fdr_per_group(DifferentialExpression& de);

}  // namespace lingshu
