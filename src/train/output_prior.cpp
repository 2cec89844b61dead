#include "train/output_prior.h"

#include <ATen/ATen.h>

#include <cmath>
#include <map>

namespace lingshu {

namespace {
constexpr double kFloor = 1e-7;
constexpr int kBackfitRounds = 10;
}  // namespace

torch::Tensor token_counts(const CsrMatrix& counts, const Tokenizer& tokenizer, const GenePatching& patching,
                           std::span<const int64_t> group_of_row, int64_t n_groups) {
  const int64_t K = tokenizer.n_tokens(), G = patching.n_genes;
  const int64_t zero = tokenizer.encode(0.0F);
  auto by_gene = at::zeros({n_groups, G, K}, at::kDouble);
  auto* n = by_gene.data_ptr<double>();
  for (int64_t r = 0; r < counts.n_rows; ++r) {
    double* group = n + group_of_row[static_cast<size_t>(r)] * G * K;
    // A zero is whatever a row does not store: count every gene as zero, then move the stored ones.
    for (int64_t g = 0; g < G; ++g) group[g * K + zero] += 1;
    const auto genes = counts.row_indices(r);
    const auto values = counts.row_values(r);
    for (size_t i = 0; i < genes.size(); ++i) {
      group[genes[i] * K + zero] -= 1;
      group[genes[i] * K + tokenizer.encode(values[i])] += 1;
    }
  }
  auto out = at::zeros({n_groups, patching.n_positions(), K}, at::kDouble);
  const auto order =
      at::tensor(std::vector<int64_t>(patching.order.begin(), patching.order.end()), at::kLong);
  out.slice(1, 0, G).copy_(by_gene.index_select(1, order));
  return out;
}

namespace {
// Smoothed, floored log-marginals [L, K] float64 from token counts [L, K] of `n_rows` cells.
torch::Tensor log_marginals_of(const torch::Tensor& n, int64_t n_rows, int64_t n_genes) {
  const int64_t K = n.size(1);
  const auto genes = n.slice(0, 0, n_genes);
  const auto overall = (genes.sum(0) + 1.0) / (genes.sum() + static_cast<double>(K));
  auto out = overall.log().expand({n.size(0), K}).clone();
  out.slice(0, 0, n_genes).copy_(((genes + overall) / (static_cast<double>(n_rows) + 1.0)).log());
  return out.clamp_min(std::log(kFloor));
}
}  // namespace

torch::Tensor token_log_marginals(const CsrMatrix& counts, const Tokenizer& tokenizer,
                                  const GenePatching& patching) {
  const std::vector<int64_t> one_group(static_cast<size_t>(counts.n_rows), 0);
  const auto n = token_counts(counts, tokenizer, patching, one_group, 1)[0];  // [L, K]
  return log_marginals_of(n, counts.n_rows, patching.n_genes).to(at::kFloat);
}

std::vector<torch::Tensor> label_log_shifts(const CsrMatrix& counts, const Tokenizer& tokenizer,
                                            const GenePatching& patching,
                                            const std::vector<std::vector<int64_t>>& codes,
                                            const std::vector<int64_t>& vocab_sizes, double prior_cells) {
  const auto F = vocab_sizes.size();
  // Cells grouped by their combination of labels; each combination's log-marginals, shrunk
  // towards the overall ones, minus the overall ones: what the shifts of its labels should add to.
  std::map<std::vector<int64_t>, int64_t> combination_of;
  std::vector<int64_t> group_of_row(static_cast<size_t>(counts.n_rows));
  std::vector<std::vector<int64_t>> labels;  // per combination, one label per field
  for (int64_t r = 0; r < counts.n_rows; ++r) {
    std::vector<int64_t> key(F);
    for (size_t f = 0; f < F; ++f) key[f] = codes[f][static_cast<size_t>(r)];
    const auto [it, added] = combination_of.emplace(key, static_cast<int64_t>(labels.size()));
    if (added) labels.push_back(key);
    group_of_row[static_cast<size_t>(r)] = it->second;
  }
  const auto C = static_cast<int64_t>(labels.size());
  const auto n = token_counts(counts, tokenizer, patching, group_of_row, C);  // [C, L, K]
  // The overall marginals from the same counts (as token_log_marginals computes them).
  const auto overall =
      log_marginals_of(n.sum(0), counts.n_rows, patching.n_genes).to(at::kFloat).to(at::kDouble);
  const auto cells = n.select(1, 0).sum(-1);  // [C]: every gene's tokens add up to the cells
  const auto p = (n + prior_cells * overall.exp()) / (cells + prior_cells).view({-1, 1, 1});
  const auto target = p.clamp_min(kFloor).log() - overall;

  // Least squares over combinations (weighted by cells), one field at a time (Gauss-Seidel): a
  // label's shift is the cell-weighted mean of what the other fields' shifts leave unexplained.
  // The first field is fitted first, so it takes each context's whole marginal and later fields
  // the effects within contexts. NULL (0) stays zero: the overall marginals.
  std::vector<torch::Tensor> shift;
  for (const int64_t v : vocab_sizes)
    shift.push_back(at::zeros({v, overall.size(0), overall.size(1)}, at::kDouble));
  std::vector<torch::Tensor> label_of;  // per field: each combination's label
  for (size_t f = 0; f < F; ++f) {
    std::vector<int64_t> column(static_cast<size_t>(C));
    for (int64_t c = 0; c < C; ++c) column[static_cast<size_t>(c)] = labels[static_cast<size_t>(c)][f];
    label_of.push_back(at::tensor(column, at::kLong));
  }
  for (int round = 0; round < (F > 1 ? kBackfitRounds : 1); ++round) {
    for (size_t f = 0; f < F; ++f) {
      auto residual = target.clone();
      for (size_t h = 0; h < F; ++h) {
        if (h != f) residual -= shift[h].index_select(0, label_of[h]);
      }
      const auto& of_f = label_of[f];
      auto sum = at::zeros_like(shift[f]).index_add_(0, of_f, residual * cells.view({-1, 1, 1}));
      const auto weight = at::zeros({vocab_sizes[f]}, at::kDouble).index_add_(0, of_f, cells);
      shift[f] = sum / weight.clamp_min(1.0).view({-1, 1, 1});
      shift[f][0].zero_();
    }
  }
  std::vector<torch::Tensor> out;
  for (auto& s : shift) out.push_back(s.to(at::kFloat));
  return out;
}

}  // namespace lingshu
