#pragma once
// The expression every generation metric reads (README "Evaluation"): real and generated cells on
// the genes both files share, subsampled to the same number of cells with a seed, as
// log1p(counts / total * 1e4).
//
// Library sizes are taken over the shared genes in both files, so a generator that writes only a
// subset of the genes (e.g. highly variable ones) is normalised the same way as the real cells.
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "data/anndata.h"

namespace lingshu {

struct ExpressionOptions {
  uint64_t seed = 0;
  int64_t max_cells = 0;           // cells kept per side; 0 = as many as the smaller side has
  std::string layer;               // read counts from this layer of both files ("" = X, "raw" = raw/X)
  bool allow_non_integer = false;  // accept non-negative non-integer values (expected counts)
};

struct ExpressionPair {
  std::string real_name = "real";  // the sources, for messages ("pbmc3k.h5ad")
  std::string generated_name = "generated";
  std::vector<std::string> genes;  // shared genes, in the real file's order
  CsrMatrix real;                  // log-normalised, cells x genes
  CsrMatrix generated;
  DataFrame real_obs;  // obs rows of the kept cells
  DataFrame generated_obs;
  int64_t real_cells_in_file = 0;
  int64_t generated_cells_in_file = 0;
  int64_t real_genes_in_file = 0;
  int64_t generated_genes_in_file = 0;
  std::vector<std::string> notes;  // things the user should know (dropped genes, duplicates)
  // Training cells for the copy check (attach_training_cells), log-normalised over the columns
  // `train_columns` of `genes` that the training file has; empty when none were given.
  CsrMatrix train;
  std::vector<int64_t> train_columns;

  int64_t n_cells() const { return real.n_rows; }  // per side
  int64_t n_genes() const { return static_cast<int64_t>(genes.size()); }
};

// Matches genes by name, subsamples and normalises two in-memory datasets. `real_name` and
// `generated_name` name the sources in messages. Throws UserError when the files share no gene,
// hold no cells, or hold values that are not counts.
ExpressionPair match_expression(const AnnData& real, const AnnData& generated,
                                const ExpressionOptions& options, const std::string& real_name = "real",
                                const std::string& generated_name = "generated");

// Reads both .h5ad files and calls match_expression.
ExpressionPair load_expression_pair(const std::filesystem::path& real, const std::filesystem::path& generated,
                                    const ExpressionOptions& options);

// Reads at most options.max_cells cells of the training file `path` (drawn with the seed) on the
// pair's genes, for the copy check. UserError naming the overlap when the file holds under half of
// the pair's genes; a note when it lacks some (the copy check then uses the genes it has).
void attach_training_cells(ExpressionPair& pair, const std::filesystem::path& path,
                           const ExpressionOptions& options);

// `k` of the indices [0, n) drawn without replacement with `seed`, in increasing order (all of them,
// in order, when k >= n).
std::vector<int64_t> subsample_indices(int64_t n, int64_t k, uint64_t seed);

// The first column of each distinct gene name in `ours` that also occurs in `theirs`, paired with
// its column there (first occurrence); in `ours` order.
struct SharedGenes {
  std::vector<int64_t> ours;
  std::vector<int64_t> theirs;
  std::vector<std::string> names;
};
SharedGenes shared_genes(const std::vector<std::string>& ours, const std::vector<std::string>& theirs);

}  // namespace lingshu
