#pragma once
// Principal component analysis of a sparse cells x genes matrix (log-normalised expression),
// centred per gene and not scaled, as scanpy's tl.pca(zero_center=True) computes it.
//
// The centred matrix is never formed: products with it are a sparse product minus a rank-one
// correction, so memory stays at the size of the sparse input. The default is randomized SVD
// (Halko, Martinsson & Tropp 2011) with power iterations, which matches the exact decomposition
// closely for the leading components; small inputs use an exact dense SVD.
#include <cstdint>
#include <vector>

#include "data/count_matrix.h"
#include "eval/dense_matrix.h"

namespace lingshu {

struct PcaOptions {
  enum class Method { Auto, Exact, Randomized };
  int n_components = 50;  // reduced to min(n_cells - 1, n_genes) when larger
  Method method = Method::Auto;
  int oversamples = 10;      // extra random directions beyond n_components
  int power_iterations = 7;  // sklearn's choice for few components
  uint64_t seed = 0;
};

struct PcaResult {
  DenseMatrix scores;                      // cells x components: the centred data projected on the components
  DenseMatrix components;                  // components x genes, unit rows
  std::vector<double> mean;                // per gene
  std::vector<double> explained_variance;  // per component, variance of its scores (ddof = 1)
  std::vector<double> explained_variance_ratio;  // share of the total variance of all genes
  bool exact = false;                            // exact dense SVD was used

  int64_t n_components() const { return scores.cols; }
};

// Signs are fixed as sklearn's svd_flip does: each component's largest-magnitude score is positive,
// so results do not depend on the SVD routine's arbitrary signs.
PcaResult pca(const CsrMatrix& matrix, const PcaOptions& options = {});

// Other cells (same genes as the fitted matrix) in a fitted PCA's space: (x - mean) components^T.
DenseMatrix pca_project(const PcaResult& fitted, const CsrMatrix& matrix);

}  // namespace lingshu
