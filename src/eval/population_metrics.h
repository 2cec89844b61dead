#pragma once
// A predicted perturbation as a population of cells, not a pseudobulk (README "Evaluation").
//
// The pseudobulk metrics score a file of identical cells at the mean as perfect. These compare the
// predicted perturbed cells with the real ones as distributions, in 50 principal components of log1p
// CP10k fitted on the context's real control and perturbed cells:
//   energy distance  2 E|X - Y| - E|X - X'| - E|Y - Y'| (Szekely; Euclidean distances, not squared:
//                    squared ones reduce it to the squared distance between the means), within-set
//                    terms over distinct pairs, so two samples of one population score about 0;
//   energy share     that distance over the real control-vs-perturbed one: 1 = as far from the real
//                    perturbed cells as the unperturbed cells are (NaN when the control's distance is
//                    not above 0: a perturbation within the estimate's noise);
//   kNN AUC          the neighbour-fraction AUC of `eval generation` on equal numbers of predicted
//                    and real perturbed cells: 0.5 = indistinguishable, 1 = separable.
// The components are fitted on one random half of the real cells and only the other half is scored:
// 50 components fitted on a few hundred cells take up part of each cell's own noise, so the cells
// they were fitted on spread twice as wide in them as new cells do (Kang's CD4T, two halves of the
// stimulated cells: energy share 0.48 in-sample, about 0 out of sample), and every prediction
// would look far from the real cells.
#include <cstdint>
#include <span>
#include <vector>

#include "data/count_matrix.h"
#include "eval/dense_matrix.h"
#include "eval/pca.h"

namespace lingshu {

// Fewer predicted cells, or scored real cells (half of a pair's), leave its population metrics
// undefined (NaN).
inline constexpr int64_t kMinPopulationCells = 10;

struct PopulationScore {
  double energy_distance;  // NaN when undefined
  double energy_share;     // NaN also when the real perturbation does not move the cells
  double knn_auc;
};

// Energy distance between the rows of x and y (same columns; at least 2 rows each).
double energy_distance(const DenseMatrix& x, const DenseMatrix& y, int threads = 0);

// One context's space and its scored real cells.
class ContextPopulation {
 public:
  // expression: log-normalised real cells (kept by reference); control: the context's control rows;
  // perturbed[k]: the rows of its perturbation k.
  ContextPopulation(const CsrMatrix& expression, std::span<const int64_t> control,
                    const std::vector<std::vector<int64_t>>& perturbed, uint64_t seed, int threads = 0);

  // Perturbation k's scored real cells against the rows `predicted` of the predicted expression
  // (same genes).
  PopulationScore score(size_t k, const CsrMatrix& predicted_expression,
                        std::span<const int64_t> predicted) const;
  // Perturbation k's real cells that are scored.
  int64_t scored_cells(size_t k) const { return static_cast<int64_t>(scored_[k].size()); }

 private:
  const CsrMatrix& expression_;
  PcaResult pcs_;
  DenseMatrix control_;  // the scored control cells in the components
  std::vector<std::vector<int64_t>> scored_;
  uint64_t seed_;
  int threads_;
};

}  // namespace lingshu
