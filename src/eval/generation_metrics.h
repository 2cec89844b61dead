#pragma once
// Generation metrics (README "Evaluation"): how close a set of generated cells is to real cells.
//
// Mean-expression correlations only see each gene's average; a generator that keeps every marginal
// and no gene-gene structure (the independent baseline) scores as well as real cells there. The
// distribution-level metrics tell them apart and come first in every table:
//   - kNN AUC: for each cell, the fraction of its k nearest neighbours (itself excluded) in the joint
//     PCA space that are generated; the ROC AUC of that score for generated vs real (0.5 = mixed;
//     well below 0.5 = generated cells sit on top of real ones, i.e. copies of them).
//   - MMD: biased MMD^2 with a sum of 5 Gaussian kernels exp(-d^2 / b_i), b_i = m * 2^(i-2), m the mean
//     squared distance between distinct points of real+generated (the scDiffusion / DAN formula).
//   - iLISI: inverse Simpson index of the source (real / generated) among each cell's k = 30 nearest
//     neighbours (itself excluded, uniform weights rather than harmony's perplexity weights), averaged
//     and scaled (x - 1) / (2 - 1) to [0, 1]. Even perfectly mixed sources give about 0.93 at k = 30,
//     because a finite neighbourhood rarely splits exactly in half.
//   - 1-WD: mean over genes of the 1-D Wasserstein-1 distance between real and generated values.
// With a cell-type column: generated cells are labelled by majority vote of their 15 nearest real
// cells (PCA space); the total variation distance between the two proportion vectors; per type, the
// Pearson correlation of real vs generated mean expression over the type's 50 marker genes (largest
// mean difference against the other real cells).
// Gene-gene structure, per type with >= 50 real and >= 50 generated cells (generated cells grouped
// like the marker means: declared labels when the generated file has them, else transferred): the
// Pearson correlation matrix of the real type's 50 most variable genes among its real cells and among
// its generated cells; the Pearson correlation of the two upper triangles ("correlation of
// correlations") and their mean absolute difference, averaged over the scored types weighted by real
// cells. Independent genes with the right marginals score ~0; two halves of real pbmc3k ~0.44.
#include <cstdint>
#include <nlohmann/json_fwd.hpp>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "eval/dense_matrix.h"
#include "eval/expression.h"
#include "eval/knn.h"
#include "eval/sample_statistics.h"

namespace lingshu {

struct GenerationOptions {
  int n_pcs = 50;
  int k_neighbors = 30;     // kNN graph for iLISI and the AUC
  int label_k = 15;         // real neighbours voting in label transfer
  int n_markers = 50;       // marker genes per cell type
  int min_group_cells = 3;  // fewer generated cells in a type: no marker correlation for it
  // Gene-gene structure: cells a type needs on each side (fewer give noisy correlations), and how
  // many of its most variable real genes are compared.
  int gene_gene_min_cells = 50;
  int gene_gene_genes = 50;
  std::string label;  // obs column of cell types; "" = no cell-type metrics
  uint64_t seed = 0;
  int threads = 0;  // 0 = all hardware threads
};

struct CellTypeResult {
  std::string name;
  int64_t n_real = 0;       // real cells with this label
  int64_t n_generated = 0;  // generated cells transferred to it
  double real_fraction = 0;
  double generated_fraction = 0;
  int64_t n_grouped_generated = 0;  // generated cells used for its marker means
  double marker_pearson = 0;        // NaN when too few cells
  // Conditional generation: share of the cells generated as this type (declared label) that kNN
  // transfer from real cells also calls this type. NaN when none was declared so.
  double agreement = 0;
  std::vector<std::string> markers;
  // Gene-gene structure over this type's most variable real genes; NaN (and 0 genes) when the type
  // is not scored (too few cells on a side, or fewer than 3 of the genes vary on both sides).
  double gene_gene_corr = 0;  // Pearson of the upper triangles of the two correlation matrices
  double gene_gene_mad = 0;   // mean |real r - generated r| over the upper triangles
  int64_t gene_gene_genes = 0;
};

struct GenerationMetrics {
  int64_t n_cells = 0;  // per side
  int64_t n_genes = 0;
  int64_t n_pcs = 0;
  double mean_pearson = 0;
  double mean_spearman = 0;
  double mmd = 0;
  double wasserstein1 = 0;
  double ilisi = 0;
  double knn_auc = 0;
  // A 5-NN classifier fitted on a random 70% of the pooled cells (PCA space), scored by ROC AUC on
  // the other 30%: the definition most papers use; 0.5 = indistinguishable.
  double classifier_auc = 0;
  // The copy check (with training cells): median distance from each generated cell to its nearest
  // training cell over the same median for the real cells, in a PCA fitted on the training cells.
  // 1 = no closer to the training cells than new real cells are; well below 1 = copies. NaN without.
  double copy_ratio = 0;
  double copy_generated_distance = 0;
  double copy_real_distance = 0;
  int64_t copy_train_cells = 0;

  // Cell-type metrics (empty label: not computed).
  std::string label;
  std::string generated_grouping;  // "declared" (generated file's own column) or "transferred"
  double proportion_tv = 0;
  double label_agreement =
      0;  // share of generated cells whose declared label matches the transfer; NaN without
  double marker_pearson_mean = 0;
  // Gene-gene structure, weighted by the real cells of each scored type; NaN without --label or
  // when no type qualifies (a note says which).
  double gene_gene_corr = 0;
  double gene_gene_mad = 0;
  int64_t gene_gene_types = 0;  // types scored
  int64_t unlabelled_real_cells = 0;
  std::vector<CellTypeResult> cell_types;

  std::vector<std::string> notes;
};

// Everything the report draws, beside the numbers.
struct GenerationEvaluation {
  GenerationMetrics metrics;
  GenerationOptions options;
  DenseMatrix embedding;                         // first two PCs, real cells then generated cells
  std::vector<double> explained_variance_ratio;  // of every PC used
  std::vector<double> real_gene_means;
  std::vector<double> generated_gene_means;
  std::vector<std::string> genes;
  std::vector<int32_t> real_types;                   // index into metrics.cell_types, -1 = unlabelled
  std::vector<int32_t> generated_types;              // transferred labels
  std::vector<double> generated_neighbour_fraction;  // kNN score of every cell, real then generated
  // The gene-gene correlation matrices of the scored type with the most real cells (for the
  // report's heat maps); gene_gene_type = -1 when no type was scored.
  int32_t gene_gene_type = -1;  // index into metrics.cell_types
  std::vector<std::string> gene_gene_genes;
  std::vector<double> gene_gene_real;  // genes x genes, row-major
  std::vector<double> gene_gene_generated;
  std::vector<std::pair<std::string, double>> stage_seconds;  // wall time of each stage, in order
};

// Computes every metric on a matched pair. Throws UserError when the label column is missing from
// the real cells or holds no labels.
GenerationEvaluation evaluate_generation(const ExpressionPair& pair, const GenerationOptions& options);

nlohmann::json to_json(const GenerationMetrics& metrics);
// A plain-text table for the terminal: metric, value, and what an indistinguishable generator scores.
std::string format_metrics_table(const GenerationMetrics& metrics);

// --- The statistics, one by one (exposed for tests and other tools) ---

// The gene-gene structure of one cell type: `real_rows` and `generated_rows` are its cells in each
// matrix (log-normalised expression, the same columns). Picks the `n_genes` columns of highest
// variance among the real rows (zero variance excluded; ties to the lower column), and correlates
// them (Pearson) among the real rows and among the generated rows; a column constant in the generated
// rows has correlation 0 with every column, itself included. Not scored (genes empty, NaN values)
// when fewer than 3 chosen columns vary on both sides or a side has under 2 rows. The caller applies
// the minimum cell count.
struct GeneGeneStructure {
  std::vector<int64_t> genes;          // columns compared, most variable first
  std::vector<double> real_corr;       // genes x genes, row-major
  std::vector<double> generated_corr;  // genes x genes, row-major
  double corr = 0;                     // Pearson of the two upper triangles (diagonal excluded)
  double mad = 0;                      // mean |real - generated| over the upper triangles
};
GeneGeneStructure gene_gene_structure(const CsrMatrix& real, std::span<const int64_t> real_rows,
                                      const CsrMatrix& generated, std::span<const int64_t> generated_rows,
                                      int n_genes);

// Half the L1 distance between two probability vectors.
double total_variation(std::span<const double> p, std::span<const double> q);

}  // namespace lingshu
