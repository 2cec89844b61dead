#pragma once
// The statistics that compare two samples of cells, one by one: Wasserstein-1 per gene, MMD, the
// kNN AUCs, the copy check, iLISI and kNN label transfer (eval/generation_metrics.h combines them;
// exposed for tests and other tools).
#include <cstdint>
#include <span>
#include <vector>

#include "data/count_matrix.h"
#include "eval/dense_matrix.h"
#include "eval/knn.h"

namespace lingshu {

// 1-D Wasserstein-1 distance between two samples with equal weights (scipy.stats.wasserstein_distance).
double wasserstein1(std::span<const double> u, std::span<const double> v);
// Mean over columns of the Wasserstein-1 distance between the columns of two matrices with the same
// columns (zeros included). Values must be >= 0 (log-normalised expression).
double mean_column_wasserstein1(const CsrMatrix& a, const CsrMatrix& b, int threads = 0);

// Biased MMD^2 with a sum of `n_kernels` Gaussian kernels whose bandwidths are m * multiplier^(i - n/2)
// for the mean squared distance m between distinct points of x and y together.
double mmd_gaussian(const DenseMatrix& x, const DenseMatrix& y, int n_kernels = 5, double multiplier = 2.0,
                    int threads = 0);

// Per point of the graph, the share of its neighbours for which is_marked[neighbour] is true.
std::vector<double> marked_neighbour_fraction(const KnnGraph& graph, std::span<const uint8_t> is_marked);

// The held-out kNN classifier: a seeded random `test_share` of the points is scored by the share of
// marked points among its k nearest points of the rest; the ROC AUC of those scores.
double knn_classifier_auc(const DenseMatrix& points, std::span<const uint8_t> is_marked, int k,
                          double test_share, uint64_t seed);

// The copy check's medians: distance from each real / generated cell to its nearest training cell,
// in `n_pcs` principal components of the training cells (all three matrices: the same columns).
struct CopyCheck {
  double generated_median = 0;
  double real_median = 0;
  double ratio() const { return generated_median / real_median; }
};
CopyCheck copy_check(const CsrMatrix& train, const CsrMatrix& real, const CsrMatrix& generated, int n_pcs,
                     uint64_t seed);

// Area under the ROC curve of `scores` for labels (nonzero = positive), ties counted half
// (= Mann-Whitney U / (n_pos n_neg)). NaN without both classes.
double roc_auc(std::span<const uint8_t> labels, std::span<const double> scores);

// Mean inverse Simpson index of `source` (0 .. n_sources-1) over each point's neighbours, scaled
// (x - 1) / (n_sources - 1) to [0, 1].
double scaled_ilisi(const KnnGraph& graph, std::span<const int32_t> source, int n_sources);

// Majority vote of each query's neighbours' labels (graph from queries to labelled references);
// ties go to the label of the nearest neighbour among the tied ones. Labels are 0 .. n_labels-1.
std::vector<int32_t> transfer_labels(const KnnGraph& graph, std::span<const int32_t> reference_labels,
                                     int n_labels);

}  // namespace lingshu
