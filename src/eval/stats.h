#pragma once
// Small, general statistics shared by the evaluation metrics: correlations, average ranks,
// Benjamini-Hochberg FDR, average precision (area under the precision-recall curve) and the
// two-sided Mann-Whitney U test. Each matches the scipy / scikit-learn function named beside it,
// so numbers agree with the Python tools biologists already trust.
//
// Missing values are the caller's business: inputs are assumed finite unless a function says
// otherwise. Degenerate inputs (constant vectors, no positives) give NaN rather than a number
// that looks meaningful.
#include <cstdint>
#include <span>
#include <vector>

namespace lingshu {

// Pearson correlation (scipy.stats.pearsonr). NaN if either vector is constant or sizes < 2.
// Throws std::invalid_argument if the sizes differ.
// The median (the mean of the two middle values for an even count); NaN when empty.
double median(std::vector<double> values);

double pearson_correlation(std::span<const double> x, std::span<const double> y);

// 1-based ranks with ties given the mean of the ranks they span (scipy.stats.rankdata 'average').
std::vector<double> average_ranks(std::span<const double> x);

// Spearman rank correlation with ties (scipy.stats.spearmanr): Pearson of the average ranks.
double spearman_correlation(std::span<const double> x, std::span<const double> y);

// Benjamini-Hochberg adjusted p-values (scipy.stats.false_discovery_control, method 'bh';
// statsmodels multipletests 'fdr_bh'): q_(i) = min over j >= i of p_(j) m / j, capped at 1.
// NaN p-values stay NaN and do not count towards m.
std::vector<double> benjamini_hochberg(std::span<const double> p_values);

// Average precision (sklearn.metrics.average_precision_score): sum over distinct score
// thresholds, highest first, of (recall_n - recall_{n-1}) * precision_n; tied scores form one
// threshold. `labels` nonzero = positive. NaN if there are no positives.
double average_precision(std::span<const uint8_t> labels, std::span<const double> scores);

struct MannWhitneyResult {
  double u = 0;  // U statistic of the first sample: R1 - n1 (n1 + 1) / 2
  double p = 1;  // two-sided p-value
};

// Two-sided Mann-Whitney U test with the normal approximation, tie-corrected variance and
// continuity correction (scipy.stats.mannwhitneyu(x, y, method='asymptotic')). p = 1 when every
// value is tied or a sample is empty.
MannWhitneyResult mann_whitney_u(std::span<const double> x, std::span<const double> y);

// The p-value from the pieces: U of the first sample, the sizes, and sum over tie blocks of
// (t^3 - t) in the pooled sample. Shared by the dense test above and the sparse DE engine.
double mann_whitney_p_value(double u1, double n1, double n2, double tie_term);

// Upper tail of the standard normal, accurate far into the tail (erfc based).
double normal_survival(double z);

}  // namespace lingshu
