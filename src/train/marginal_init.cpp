#include "train/marginal_init.h"

#include <ATen/ATen.h>

#include <algorithm>
#include <cmath>
#include <numeric>

#include "train/label_combinations.h"

namespace lingshu {

namespace {

// Elements of one [combinations, genes, tokens] temporary in the cell-size fit (128 MB of doubles).
constexpr int64_t kFitElements = int64_t{1} << 24;
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

namespace {
// Rows grouped by their combination of the chosen fields' labels.
// Per chosen field, each combination's label as a tensor [C].
std::vector<torch::Tensor> label_columns(const LabelCombinations& c, size_t n_fields) {
  std::vector<torch::Tensor> out;
  for (size_t f = 0; f < n_fields; ++f) {
    std::vector<int64_t> column;
    for (const auto& labels : c.labels) column.push_back(labels[f]);
    out.push_back(at::tensor(column, at::kLong));
  }
  return out;
}

// Least squares over combinations (each weighted by `weights`), one field at a time (Gauss-Seidel):
// a label's shift is the weighted mean of what the other fields' shifts leave unexplained in
// `target` [C, L, K] (each combination's log-marginals minus the overall ones). The first field is
// fitted first, so it takes each context's whole marginal and later fields the effects within
// contexts: averaging log-ratios keeps one context's extreme values (a monocyte's interferon
// response) out of another's prediction. NULL (0) stays zero.
std::vector<torch::Tensor> least_squares_shifts(const torch::Tensor& target, const torch::Tensor& weights,
                                                const std::vector<torch::Tensor>& label_of,
                                                const std::vector<int64_t>& vocab_sizes) {
  const auto F = vocab_sizes.size();
  std::vector<torch::Tensor> shift;
  for (const int64_t v : vocab_sizes)
    shift.push_back(at::zeros({v, target.size(1), target.size(2)}, at::kDouble));
  for (int round = 0; round < (F > 1 ? kBackfitRounds : 1); ++round) {
    for (size_t f = 0; f < F; ++f) {
      auto residual = target.clone();
      for (size_t h = 0; h < F; ++h) {
        if (h != f) residual -= shift[h].index_select(0, label_of[h]);
      }
      auto sum = at::zeros_like(shift[f]).index_add_(0, label_of[f], residual * weights.view({-1, 1, 1}));
      const auto weight = at::zeros({vocab_sizes[f]}, at::kDouble).index_add_(0, label_of[f], weights);
      shift[f] = sum / weight.clamp_min(1e-12).view({-1, 1, 1});
      shift[f][0].zero_();
    }
  }
  return shift;
}

// The label fields (all but cell size) in the order they nest: contexts, state, perturbation (so
// with a state the perturbation is last, fitted on top of the others).
std::vector<size_t> nesting_order(size_t n_fields, const MarginalFieldRoles& roles) {
  std::vector<size_t> out;
  for (size_t f = 0; f < n_fields; ++f) {
    const auto i = static_cast<int>(f);
    if (i != roles.library && i != roles.perturbation && i != roles.state) out.push_back(f);
  }
  if (roles.state >= 0) out.push_back(static_cast<size_t>(roles.state));
  if (roles.perturbation >= 0) out.push_back(static_cast<size_t>(roles.perturbation));
  return out;
}

// The groups each label combination nests in, outermost first (the combinations themselves left
// out): with a perturbation state, the contexts, then the contexts with the state. Without one
// (Kang's single "stimulated") a context holds both its controls and its perturbed cells: smoothed
// towards it, a control group took pseudo-counts of the response itself, which shrank every
// response's rare large values (Kang's held-out start: Pearson-delta 0.79 -> 0.65), so those
// combinations are smoothed towards all cells.
std::vector<std::vector<size_t>> parent_levels(const std::vector<size_t>& order,
                                               const MarginalFieldRoles& roles) {
  std::vector<std::vector<size_t>> levels;
  if (roles.state < 0) return levels;
  const size_t n_context = order.size() - 1 - (roles.perturbation >= 0 ? 1 : 0);
  for (size_t end = std::max<size_t>(n_context, 1); end < order.size(); ++end)
    levels.emplace_back(order.begin(), order.begin() + static_cast<std::ptrdiff_t>(end));
  return levels;
}

// Each label combination's prior [C, L, K]: the smoothed marginals of its parent group, each group
// along `levels` shrunk by `prior_cells` pseudo-cells of its own parent, the outermost of `q`.
torch::Tensor nested_priors(const std::vector<std::vector<int64_t>>& codes,
                            const std::vector<std::vector<size_t>>& levels,
                            const std::vector<int64_t>& label_of_row, const torch::Tensor& n_by_label,
                            const torch::Tensor& q, double prior_cells) {
  const auto n_rows = static_cast<int64_t>(label_of_row.size());
  auto prior = q.expand_as(n_by_label).clone();
  for (const auto& fields : levels) {
    const auto level = label_combinations(codes, fields, n_rows);
    const auto n_groups = static_cast<int64_t>(level.labels.size());
    std::vector<int64_t> group_of(static_cast<size_t>(n_by_label.size(0))),
        member(static_cast<size_t>(n_groups));
    for (int64_t r = 0; r < n_rows; ++r) {
      const int64_t label = label_of_row[static_cast<size_t>(r)];
      group_of[static_cast<size_t>(label)] = level.of_row[static_cast<size_t>(r)];
      member[static_cast<size_t>(level.of_row[static_cast<size_t>(r)])] = label;
    }
    const auto group = at::tensor(group_of, at::kLong);
    const auto n = at::zeros({n_groups, q.size(0), q.size(1)}, at::kDouble).index_add_(0, group, n_by_label);
    const auto cells = n.select(1, 0).sum(-1);
    // Levels nest, so every member of a group has the same parent: any one of them gives it.
    const auto parent = prior.index_select(0, at::tensor(member, at::kLong));
    prior = ((n + prior_cells * parent) / (cells + prior_cells).view({-1, 1, 1})).index_select(0, group);
  }
  return prior;
}

// One step of iterative proportional fitting for the groups `group_of` [C] of the combinations:
// what to add to each group's logits so that the expected token counts of its cells under
// softmax(logits) [C, L, K] match `observed` [groups, L, K]. Softmax normalises, so with observed
// = counts + pseudo-cells the fixed point is p proportional to them. Groups without cells get 0.
torch::Tensor proportional_fitting_step(const torch::Tensor& logits, const torch::Tensor& cells,
                                        const torch::Tensor& group_of, const torch::Tensor& observed) {
  const auto expected =
      at::zeros_like(observed).index_add_(0, group_of, at::softmax(logits, -1) * cells.view({-1, 1, 1}));
  const auto has_cells = (at::zeros({observed.size(0)}, at::kDouble).index_add_(0, group_of, cells) > 0);
  return at::where(has_cells.view({-1, 1, 1}), observed.log() - expected.clamp_min(1e-300).log(), 0.0);
}

// Cell size within combinations, by maximum likelihood jointly with the combinations' own
// log-marginals (iterative proportional fitting): size bins split every cell type into small
// groups whose averaged log-frequencies would blend the types and under-count rare values;
// summing counts before taking logs does neither. Each combination's `prior_cells` pseudo-cells
// of its parent's marginals (its shrinkage without size) are spread over its size bins by their
// cells: both margins then come from one table, so the fit has a fixed point. Pseudo-cells of the
// combination's own marginals instead left rare values of a bin almost unsmoothed (held-out
// masked cross-entropy of the start on pbmc3k 0.232 against 0.225).
// n: [C, L, K] token counts of the combinations of every field, bin_of [C] their size bin (of
// n_bins) and merged_of [C] their combination of the label fields, whose log-marginals minus the
// overall ones (`target`) are refined in place when fit_labels. Returns the size shifts [n_bins, L, K].
torch::Tensor library_shift(const torch::Tensor& n, const torch::Tensor& bin_of, int64_t n_bins,
                            const torch::Tensor& merged_of, const torch::Tensor& overall,
                            const torch::Tensor& prior_by_label, const torch::Tensor& observed_by_label,
                            const torch::Tensor& cells_by_label, double prior_cells, torch::Tensor& target,
                            bool fit_labels) {
  const auto cells = n.select(1, 0).sum(-1);  // [C]: every gene's tokens add up to the cells
  const auto pseudo = prior_cells * cells / cells_by_label.index_select(0, merged_of);  // [C]
  const auto weight = cells + pseudo;  // a combination's groups add up to observed_by_label
  auto shift = at::zeros({n_bins, n.size(1), n.size(2)}, at::kDouble);
  // Genes do not interact in the fit, so it runs a slice of genes at a time: whole [C, genes,
  // tokens] temporaries took 10 GB on pbmc3k's 160 (type, size) combinations x 13,714 genes.
  const int64_t genes = n.size(1);
  const int64_t slice = std::max<int64_t>(1, kFitElements / std::max<int64_t>(1, n.size(0) * n.size(2)));
  for (int64_t g0 = 0; g0 < genes; g0 += slice) {
    const int64_t w = std::min(slice, genes - g0);
    const auto part = [&](const torch::Tensor& t) { return t.narrow(1, g0, w); };  // views
    const auto smoothed = part(n) + pseudo.view({-1, 1, 1}) * part(prior_by_label).index_select(0, merged_of);
    const auto observed_by_bin =
        at::zeros({n_bins, w, n.size(2)}, at::kDouble).index_add_(0, bin_of, smoothed);
    const auto overall_part = overall.narrow(0, g0, w);
    auto bin_shift = part(shift);
    auto label_shift = part(target);
    const auto logits = [&] {
      return overall_part + label_shift.index_select(0, merged_of) + bin_shift.index_select(0, bin_of);
    };
    for (int round = 0; round < kBackfitRounds; ++round) {
      bin_shift += proportional_fitting_step(logits(), weight, bin_of, observed_by_bin);
      bin_shift[0].zero_();
      if (fit_labels)
        label_shift += proportional_fitting_step(logits(), weight, merged_of, part(observed_by_label));
    }
  }
  return shift;
}

// With a state, contexts and states by least squares on each state's pooled marginals, and the
// perturbation labels by maximum likelihood on top (iterative proportional fitting): a label's
// tilt matches the token counts of all its cells, summed over contexts, to what their states
// expect. Averaged over a state's (context, perturbation) groups of 60-100 cells, log-frequencies
// under-weighted every non-zero value, and a context's perturbed state alone (or with an unseen
// perturbation) came out at half the size of its perturbed cells.
// columns and label_vocab: per label field in nesting order (contexts, state, perturbation), each
// combination's label and the field's vocabulary. Returns the shifts of those fields, in that order.
std::vector<torch::Tensor> state_shifts(const torch::Tensor& overall, const torch::Tensor& target,
                                        const torch::Tensor& cells_by_label,
                                        const std::vector<torch::Tensor>& columns,
                                        const std::vector<int64_t>& label_vocab, int64_t state_vocab) {
  const auto fitted_counts = at::softmax(overall + target, -1) * cells_by_label.view({-1, 1, 1});
  const size_t n_outer = columns.size() - 1;  // contexts and state: the perturbation is last
  const auto& state_of = columns[n_outer - 1];
  const auto by_state = at::zeros({state_vocab, target.size(1), target.size(2)}, at::kDouble)
                            .index_add_(0, state_of, fitted_counts);
  const auto state_cells = by_state.select(1, 0).sum(-1).clamp_min(1e-12).view({-1, 1, 1});
  const auto pooled = (by_state / state_cells).clamp_min(kFloor).log().index_select(0, state_of) - overall;
  auto shifts = least_squares_shifts(
      pooled, cells_by_label, {columns.begin(), columns.begin() + static_cast<std::ptrdiff_t>(n_outer)},
      {label_vocab.begin(), label_vocab.begin() + static_cast<std::ptrdiff_t>(n_outer)});
  auto base = overall.expand_as(target).clone();
  for (size_t i = 0; i < n_outer; ++i) base += shifts[i].index_select(0, columns[i]);
  const auto& label_of = columns[n_outer];
  const auto observed = at::zeros({label_vocab[n_outer], target.size(1), target.size(2)}, at::kDouble)
                            .index_add_(0, label_of, fitted_counts);
  auto tilt = at::zeros_like(observed);
  for (int round = 0; round < kBackfitRounds; ++round) {
    tilt +=
        proportional_fitting_step(base + tilt.index_select(0, label_of), cells_by_label, label_of, observed);
    tilt[0].zero_();
  }
  shifts.push_back(tilt);
  return shifts;
}
}  // namespace

std::vector<torch::Tensor> label_log_shifts(const CsrMatrix& counts, const Tokenizer& tokenizer,
                                            const GenePatching& patching,
                                            const std::vector<std::vector<int64_t>>& codes,
                                            const std::vector<int64_t>& vocab_sizes,
                                            const MarginalFieldRoles& roles, double prior_cells) {
  const auto F = vocab_sizes.size();
  std::vector<size_t> all_fields(F);
  std::iota(all_fields.begin(), all_fields.end(), size_t{0});
  const auto label_fields = nesting_order(F, roles);
  const auto all = label_combinations(codes, all_fields, counts.n_rows);
  const auto n =
      token_counts(counts, tokenizer, patching, all.of_row, static_cast<int64_t>(all.labels.size()));
  // The overall marginals from the same counts (as token_log_marginals computes them).
  const auto overall =
      log_marginals_of(n.sum(0), counts.n_rows, patching.n_genes).to(at::kFloat).to(at::kDouble);

  // Each combination of the label fields (cell size left out: they are large) starts from its
  // smoothed log-marginals.
  const auto by_label = label_combinations(codes, label_fields, counts.n_rows);
  std::vector<int64_t> merged(all.labels.size());
  for (int64_t r = 0; r < counts.n_rows; ++r)
    merged[static_cast<size_t>(all.of_row[static_cast<size_t>(r)])] = by_label.of_row[static_cast<size_t>(r)];
  const auto merged_of = at::tensor(merged, at::kLong);
  const auto n_by_label =
      at::zeros({static_cast<int64_t>(by_label.labels.size()), n.size(1), n.size(2)}, at::kDouble)
          .index_add_(0, merged_of, n);
  const auto q = overall.exp();
  const auto cells_by_label = n_by_label.select(1, 0).sum(-1);
  const auto prior_by_label =
      nested_priors(codes, parent_levels(label_fields, roles), by_label.of_row, n_by_label, q, prior_cells);
  const auto observed_by_label = n_by_label + prior_cells * prior_by_label;
  // Each combination's smoothed log-marginals; without label fields every cell's baseline is the
  // overall marginals themselves.
  auto target =
      label_fields.empty()
          ? at::zeros_like(n_by_label)
          : (observed_by_label / (cells_by_label + prior_cells).view({-1, 1, 1})).clamp_min(kFloor).log() -
                overall;

  std::vector<torch::Tensor> shift(F);
  if (roles.library >= 0) {
    const auto lib = static_cast<size_t>(roles.library);
    shift[lib] =
        library_shift(n, label_columns(all, F)[lib], vocab_sizes[lib], merged_of, overall, prior_by_label,
                      observed_by_label, cells_by_label, prior_cells, target, !label_fields.empty());
  }
  const auto columns = label_columns(by_label, label_fields.size());
  std::vector<int64_t> label_vocab;
  for (const size_t f : label_fields) label_vocab.push_back(vocab_sizes[f]);
  if (roles.state < 0) {
    // The label fields' shifts by least squares on the combinations, each weighted as a random-
    // effects average weighs a study: by its reliability cells / (cells + prior_cells), nearly
    // the same for every combination of more than a few dozen cells. A perturbation's effect is
    // then the average of its effects in the contexts, not dominated by the context with the most
    // perturbed cells (Kang: one monocyte type, with the largest interferon response, held a third
    // of the stimulated cells).
    const auto reliability = cells_by_label / (cells_by_label + prior_cells);
    const auto fitted = least_squares_shifts(target, reliability, columns, label_vocab);
    for (size_t i = 0; i < label_fields.size(); ++i) shift[label_fields[i]] = fitted[i];
  } else {
    const auto fitted = state_shifts(overall, target, cells_by_label, columns, label_vocab,
                                     vocab_sizes[static_cast<size_t>(roles.state)]);
    for (size_t i = 0; i + 1 < label_fields.size(); ++i) shift[label_fields[i]] = fitted[i];
    shift[static_cast<size_t>(roles.perturbation)] = fitted.back();
  }
  std::vector<torch::Tensor> out;
  for (auto& s : shift) out.push_back(s.to(at::kFloat));
  return out;
}

}  // namespace lingshu
