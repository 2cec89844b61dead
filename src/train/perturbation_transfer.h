#pragma once
// How far a perturbation's own effect carries to a context where it was never measured
// (README "The perturbation state").
//
// A perturbation's cells differ from their context's control cells by what every perturbation of
// the context shares (the perturbation state) and by the perturbation's own effect. Where the own
// effect is the same in every context (Kang's interferon response), the effect seen elsewhere is
// the prediction; where it is mostly the context's own or noise (knock-downs across four cell lines
// of a CRISPR screen: the effect beyond the state in one line predicts another's at Pearson 0.1),
// adding it moves the prediction away from the truth (rotation: Pearson-delta 0.38 with it, 0.51
// from the state alone). Each perturbation's own effect in context c is its cells' mean log1p CP10k
// minus the mean of all perturbed cells of c (its target genes left out); r is the mean Pearson
// correlation of those effects between pairs of the m contexts that measured it; the effect
// averaged over m contexts predicts a new context's with slope m r / (1 + (m - 1) r) (the
// Spearman-Brown reliability of the average). That slope is the perturbation's transfer weight;
// sampling scales its own effect by it (sample/cell_batches.h).
#include <cstdint>
#include <vector>

#include "data/conditions.h"
#include "data/count_matrix.h"

namespace lingshu {

// The transfer weight in [0, 1] of each label of fields[perturbation] (index = token - 1; the
// control's is 1): from the cells of `expression` (log1p CP10k, data/preprocess.h log_normalize;
// codes[f][r]: token of row r in field f) of every (state, perturbation) with at least `min_cells`
// cells. A perturbation measured in fewer than two
// contexts gets the mean weight of those measured in two or more (1 when there are none).
std::vector<double> perturbation_transfer(const CsrMatrix& expression,
                                          const std::vector<std::vector<int64_t>>& codes,
                                          const std::vector<ConditionField>& fields,
                                          const std::vector<std::string>& gene_names, int64_t min_cells = 10);

// What perturbations do to their own target genes, for a label no context measured (a knock-down
// screen's held-out targets: the target gene itself is often the strongest change, and nothing
// else in the model carries it to a label it never saw). Over every (perturbation, context, target
// gene) with at least `min_cells` cells, whose target the context's other perturbed cells express
// (mean log1p CP10k at least kMinTargetLevel): log(the target's mean log1p CP10k in the
// perturbation's cells / in the context's other perturbed cells), the ratio in which a predicted
// fall scales its start (sample/expected_profile.cpp). The median, when at least 3 were measured
// and at least two thirds of them move the way the median does (a file mixing activation and
// interference has no typical effect); otherwise none.
struct TargetGeneEffect {
  double log_ratio = 0;  // the median log ratio (0: none)
  int64_t measured = 0;  // (perturbation, context, target) triples it was measured on
};
inline constexpr double kMinTargetLevel = 0.1;
TargetGeneEffect target_gene_effect(const CsrMatrix& expression,
                                    const std::vector<std::vector<int64_t>>& codes,
                                    const std::vector<ConditionField>& fields,
                                    const std::vector<std::string>& gene_names, int64_t min_cells = 10);

}  // namespace lingshu
