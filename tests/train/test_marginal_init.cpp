// Starting values of the output biases: token marginals per gene and per label, checked against
// histograms of the encoded cells.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <numeric>

#include "data/simulator.h"
#include "train/batch_loader.h"
#include "train/marginal_init.h"

namespace lingshu {
namespace {

constexpr int64_t K = 16;

struct Encoded {
  Simulation sim;
  Tokenizer tokenizer;
  GenePatching patching;
  torch::Tensor tokens;  // [cells, genes] in sequence order (padding dropped)
};

Encoded encoded(int64_t cells, uint64_t seed) {
  SimulatorConfig c;
  c.n_cells = cells;
  c.n_genes = 30;
  c.n_cell_types = 3;
  c.seed = seed;
  c.de_prob = 0.4;
  c.de_fac_loc = 1.5;
  Encoded e{simulate(c), {}, GenePatching::make(30, 8, 2), {}};
  e.tokenizer = Tokenizer::fit(e.sim.data.X, {static_cast<int>(K), 8, 0.9999});
  std::vector<int64_t> all(static_cast<size_t>(cells));
  std::iota(all.begin(), all.end(), 0);
  e.tokens = encode_cells(e.sim.data.X, all, e.tokenizer, e.patching).slice(1, 0, 30);
  return e;
}

// Per-position token histogram of the chosen cells, another way: one-hot sums of encoded cells.
torch::Tensor token_histogram(const torch::Tensor& tokens) {
  return torch::one_hot(tokens, K).sum(0).to(torch::kDouble);  // [genes, K]
}

TEST(MarginalInit, TokenLogMarginalsAreEachGenesSmoothedTokenFrequencies) {
  const auto e = encoded(200, 8);
  const auto log_p = token_log_marginals(e.sim.data.X, e.tokenizer, e.patching);
  ASSERT_EQ(log_p.sizes(), (std::vector<int64_t>{32, K}));
  const auto counts = token_histogram(e.tokens);
  const auto overall = (counts.sum(0) + 1) / (counts.sum() + K);
  const auto expected = ((counts + overall) / 201.0).clamp_min(1e-7).log();
  EXPECT_TRUE(torch::allclose(log_p.slice(0, 0, 30).to(torch::kDouble), expected, 1e-5, 1e-5));
  // Each gene's distribution sums to one up to the floor; padding rows get the overall one.
  EXPECT_NEAR(log_p.slice(0, 0, 30).exp().sum(1).max().item<double>(), 1.0, K * 1e-7 + 1e-5);
  EXPECT_TRUE(torch::allclose(log_p[31].to(torch::kDouble), overall.clamp_min(1e-7).log(), 1e-5, 1e-5));
}

TEST(MarginalInit, OneFieldShiftsGiveEachLabelItsOwnShrunkMarginals) {
  const auto e = encoded(300, 9);
  // Codes 1..3 from the simulated types; code 0 (NULL) has no cells.
  std::vector<int64_t> code(300);
  for (int64_t r = 0; r < 300; ++r)
    code[static_cast<size_t>(r)] = e.sim.truth.cell_type[static_cast<size_t>(r)] + 1;
  const double prior = 10;
  const auto shifts = label_log_shifts(e.sim.data.X, e.tokenizer, e.patching, {code}, {4}, {}, prior);
  ASSERT_EQ(shifts.size(), 1u);
  ASSERT_EQ(shifts[0].sizes(), (std::vector<int64_t>{4, 32, K}));
  EXPECT_TRUE((shifts[0][0] == 0).all().item<bool>());  // NULL: the overall marginals
  const auto overall =
      token_log_marginals(e.sim.data.X, e.tokenizer, e.patching).slice(0, 0, 30).to(torch::kDouble);
  const auto codes = torch::tensor(code, torch::kLong);
  for (int64_t label = 1; label <= 3; ++label) {
    const auto mine = e.tokens.index_select(0, (codes == label).nonzero().squeeze(1));
    const double n = static_cast<double>(mine.size(0));
    const auto expected =
        ((token_histogram(mine) + prior * overall.exp()) / (n + prior)).clamp_min(1e-7).log();
    const auto got = overall + shifts[0][label].slice(0, 0, 30).to(torch::kDouble);
    EXPECT_TRUE(torch::allclose(got, expected, 1e-4, 1e-4)) << "label " << label;
  }
}

TEST(MarginalInit, ContextAndPerturbationShiftsAddUpForAnUnseenCombination) {
  // Two contexts x two perturbation labels, one combination (context 2, label 2) absent. The label
  // shift is the perturbation's effect within context 1, so the absent combination is predicted as
  // context 2 plus that effect, and the three seen combinations are fitted.
  const auto e = encoded(400, 10);
  std::vector<int64_t> context(400), pert(400);
  std::vector<int64_t> kept;
  for (int64_t r = 0; r < 400; ++r) {
    context[static_cast<size_t>(r)] = 1 + r % 2;
    pert[static_cast<size_t>(r)] = 1 + e.sim.truth.cell_type[static_cast<size_t>(r)] % 2;
    if (!(context[static_cast<size_t>(r)] == 2 && pert[static_cast<size_t>(r)] == 2)) kept.push_back(r);
  }
  const auto X = e.sim.data.X.select_rows(kept);
  std::vector<int64_t> c_kept, p_kept;
  for (const int64_t r : kept) {
    c_kept.push_back(context[static_cast<size_t>(r)]);
    p_kept.push_back(pert[static_cast<size_t>(r)]);
  }
  const auto shifts = label_log_shifts(X, e.tokenizer, e.patching, {c_kept, p_kept}, {3, 3}, {}, 10);
  // The fit is exact for three combinations and four free shifts: each seen combination's sum
  // equals its own shrunk log-marginals (up to the backfitting's convergence).
  const auto overall = token_log_marginals(X, e.tokenizer, e.patching).slice(0, 0, 30).to(torch::kDouble);
  const auto kept_tokens = e.tokens.index_select(0, torch::tensor(kept, torch::kLong));
  const auto ct = torch::tensor(c_kept, torch::kLong), pt = torch::tensor(p_kept, torch::kLong);
  const auto target = [&](int64_t c, int64_t p) {
    const auto mine = kept_tokens.index_select(0, ((ct == c) & (pt == p)).nonzero().squeeze(1));
    const double n = static_cast<double>(mine.size(0));
    return ((token_histogram(mine) + 10 * overall.exp()) / (n + 10)).clamp_min(1e-7).log() - overall;
  };
  const auto sum = [&](int64_t c, int64_t p) {
    return (shifts[0][c] + shifts[1][p]).slice(0, 0, 30).to(torch::kDouble);
  };
  double worst = 0;
  for (const auto& [c, p] : std::vector<std::pair<int64_t, int64_t>>{{1, 1}, {1, 2}, {2, 1}}) {
    worst = std::max(worst, (sum(c, p) - target(c, p)).abs().max().item<double>());
  }
  EXPECT_LT(worst, 0.05);
  // The unseen combination: context 2 plus the label-2 effect measured in context 1.
  const auto additive = target(2, 1) + (target(1, 2) - target(1, 1));
  EXPECT_LT((sum(2, 2) - additive).abs().max().item<double>(), 0.05);
  EXPECT_TRUE((shifts[0][0] == 0).all().item<bool>());
  EXPECT_TRUE((shifts[1][0] == 0).all().item<bool>());
}

TEST(MarginalInit, AnUnseenCombinationTakesTheEffectAveragedOverContextsByReliabilityNotByCells) {
  // Three contexts x two labels, (context 3, label 2) absent; context 1 has ten times the cells of
  // context 2. Weighted least squares with weights n / (n + prior) per combination gives the label-2
  // effect as the average of the two contexts' effects d_c weighted by h_c = 1 / (1/w_c1 + 1/w_c2):
  // nearly equal, where weighting by cells would let context 1 decide alone.
  const auto e = encoded(900, 12);
  std::vector<int64_t> kept, c_kept, p_kept;
  for (int64_t r = 0; r < 900; ++r) {
    const int64_t c = r < 660 ? 1 : r < 726 ? 2 : 3;
    const int64_t p = 1 + e.sim.truth.cell_type[static_cast<size_t>(r)] % 2;
    if (c == 3 && p == 2) continue;
    kept.push_back(r);
    c_kept.push_back(c);
    p_kept.push_back(p);
  }
  const double prior = 10;
  const auto X = e.sim.data.X.select_rows(kept);
  const auto shifts = label_log_shifts(X, e.tokenizer, e.patching, {c_kept, p_kept}, {4, 3}, {}, prior);
  const auto overall = token_log_marginals(X, e.tokenizer, e.patching).slice(0, 0, 30).to(torch::kDouble);
  const auto kept_tokens = e.tokens.index_select(0, torch::tensor(kept, torch::kLong));
  const auto ct = torch::tensor(c_kept, torch::kLong), pt = torch::tensor(p_kept, torch::kLong);
  const auto cells = [&](int64_t c, int64_t p) { return ((ct == c) & (pt == p)).sum().item<double>(); };
  const auto target = [&](int64_t c, int64_t p) {
    const auto mine = kept_tokens.index_select(0, ((ct == c) & (pt == p)).nonzero().squeeze(1));
    return ((token_histogram(mine) + prior * overall.exp()) / (cells(c, p) + prior)).clamp_min(1e-7).log() -
           overall;
  };
  const auto pooled_effect = [&](const auto& weight) {
    torch::Tensor sum = torch::zeros_like(overall);
    double total = 0;
    for (const int64_t c : {1, 2}) {
      const double h = 1.0 / (1.0 / weight(cells(c, 1)) + 1.0 / weight(cells(c, 2)));
      sum = sum + h * (target(c, 2) - target(c, 1));
      total += h;
    }
    return sum / total;
  };
  const auto by_reliability = target(3, 1) + pooled_effect([&](double n) { return n / (n + prior); });
  const auto by_cells = target(3, 1) + pooled_effect([](double n) { return n; });
  const auto unseen = (shifts[0][3] + shifts[1][2]).slice(0, 0, 30).to(torch::kDouble);
  EXPECT_LT((unseen - by_reliability).abs().max().item<double>(), 0.02);
  EXPECT_GT((by_cells - by_reliability).abs().max().item<double>(), 0.1);  // the test can tell them apart
}

TEST(MarginalInit, SizeBinsDoNotPullACellTypeTowardsTheAverageCell) {
  // Each cell type split into eight size bins of ~12 cells. Type and size are fitted jointly by
  // maximum likelihood: each type's cells, summed over its bins, expect the token counts they have
  // plus the type's 10 pseudo-cells of the overall marginals (the shrinkage of a type-only prior),
  // and so do each bin's, with the pseudo-cells of its groups. Shifts fitted to each small
  // combination's shrunk log-frequencies pulled every type towards the average cell.
  const auto e = encoded(300, 11);
  std::vector<int64_t> type(300), bin(300);
  for (int64_t r = 0; r < 300; ++r) {
    type[static_cast<size_t>(r)] = e.sim.truth.cell_type[static_cast<size_t>(r)] + 1;
    bin[static_cast<size_t>(r)] = 1 + r % 8;
  }
  const auto shifts =
      label_log_shifts(e.sim.data.X, e.tokenizer, e.patching, {type, bin}, {4, 10}, {.library = 1}, 10);
  EXPECT_TRUE((shifts[1][0] == 0).all().item<bool>());
  EXPECT_TRUE((shifts[1][9] == 0).all().item<bool>());  // a bin without cells
  const auto overall =
      token_log_marginals(e.sim.data.X, e.tokenizer, e.patching).slice(0, 0, 30).to(torch::kDouble);
  const auto q = overall.exp();
  const auto types = torch::tensor(type, torch::kLong), bins = torch::tensor(bin, torch::kLong);
  // Expected against observed token counts of the cells in `in` (a mask), each (type, bin) group
  // with its share of the type's pseudo-cells, per cell.
  const auto deviation = [&](const torch::Tensor& in) {
    auto expected = torch::zeros_like(overall);
    auto observed = token_histogram(e.tokens.index_select(0, in.nonzero().squeeze(1)));
    double weight = 0;
    for (int64_t t = 1; t <= 3; ++t) {
      for (int64_t b = 1; b <= 8; ++b) {
        const double n = (in & (types == t) & (bins == b)).sum().item<double>();
        const double pseudo = 10 * n / (types == t).sum().item<double>();
        const auto logits = overall + (shifts[0][t] + shifts[1][b]).slice(0, 0, 30).to(torch::kDouble);
        expected += (n + pseudo) * torch::softmax(logits, -1);
        observed += pseudo * q;
        weight += n + pseudo;
      }
    }
    return ((expected - observed) / weight).abs().max().item<double>();
  };
  for (int64_t b = 1; b <= 8; ++b) EXPECT_LT(deviation(bins == b), 0.005) << "bin " << b;
  for (int64_t t = 1; t <= 3; ++t) EXPECT_LT(deviation(types == t), 1e-3) << "type " << t;
  // Size alone (an unconditional model with --library-bins): each bin its own smoothed counts.
  const auto alone = label_log_shifts(e.sim.data.X, e.tokenizer, e.patching, {bin}, {10}, {.library = 0}, 10);
  for (int64_t b = 1; b <= 8; ++b) {
    const auto mine = e.tokens.index_select(0, (bins == b).nonzero().squeeze(1));
    const double cells = static_cast<double>(mine.size(0));
    const double pseudo = 10 * cells / 300;  // the 10 pseudo-cells spread over the bins by their cells
    const auto observed = (token_histogram(mine) + pseudo * q) / (cells + pseudo);
    const auto fitted = torch::softmax(overall + alone[0][b].slice(0, 0, 30).to(torch::kDouble), -1);
    EXPECT_LT((fitted - observed).abs().max().item<double>(), 1e-3) << "bin " << b;
  }
}

TEST(MarginalInit, AStateAloneGivesItsCellsPooledMarginalsAndPerturbationsTiltByTheirCounts) {
  // Two contexts; perturbation labels 1 (control), 2 and 3; the state is (context, perturbed or
  // not); (context 2, label 3) is held out. Each (context, state, label) group is smoothed by 10
  // pseudo-cells of its state's marginals, each state by 10 of its context's, each context by 10
  // of the overall. A context with its state alone gives the state's cells' pooled marginals (what
  // an unseen perturbation of the context starts from), and each label's tilt makes the expected
  // token counts of its cells, summed over contexts, equal to their smoothed counts.
  const auto e = encoded(600, 12);
  std::vector<int64_t> kept, context, pert, state;
  for (int64_t r = 0; r < 600; ++r) {
    const int64_t c = 1 + r % 2, p = 1 + e.sim.truth.cell_type[static_cast<size_t>(r)] % 3;
    if (c == 2 && p == 3) continue;
    kept.push_back(r);
    context.push_back(c);
    pert.push_back(p);
    state.push_back(1 + 2 * (c - 1) + (p > 1 ? 1 : 0));
  }
  const auto X = e.sim.data.X.select_rows(kept);
  const auto shifts = label_log_shifts(X, e.tokenizer, e.patching, {context, pert, state}, {3, 4, 5},
                                       {.perturbation = 1, .state = 2}, 10);
  const auto overall = token_log_marginals(X, e.tokenizer, e.patching).slice(0, 0, 30).to(torch::kDouble);
  const auto tokens = e.tokens.index_select(0, torch::tensor(kept, torch::kLong));
  const auto ct = torch::tensor(context, torch::kLong), pt = torch::tensor(pert, torch::kLong),
             st = torch::tensor(state, torch::kLong);
  const auto histogram = [&](const torch::Tensor& in) {
    return token_histogram(tokens.index_select(0, in.nonzero().squeeze(1)));
  };
  const auto cells = [](const torch::Tensor& in) { return in.sum().item<double>(); };
  const auto smoothed = [&](const torch::Tensor& in, const torch::Tensor& prior) {
    return (histogram(in) + 10 * prior) / (cells(in) + 10);
  };
  const auto part = [](const torch::Tensor& shift, int64_t label) {
    return shift[label].slice(0, 0, 30).to(torch::kDouble);
  };
  // Each state's groups together: their smoothed counts pooled.
  std::vector<torch::Tensor> state_prior(5), group_counts;
  for (int64_t p = 0; p <= 3; ++p) group_counts.push_back(torch::zeros({30, K}, torch::kDouble));
  for (int64_t s = 1; s <= 4; ++s) {
    const int64_t c = (s + 1) / 2;
    state_prior[s] = smoothed(st == s, smoothed(ct == c, overall.exp()));
    auto pooled = torch::zeros({30, K}, torch::kDouble);
    double weight = 0;
    for (int64_t p = 1; p <= 3; ++p) {
      const auto in = (st == s) & (pt == p);
      if (cells(in) == 0) continue;
      const auto counts = smoothed(in, state_prior[s]) * cells(in);
      pooled += counts;
      weight += cells(in);
      group_counts[p] += counts;
    }
    const auto alone = torch::softmax(overall + part(shifts[0], c) + part(shifts[2], s), -1);
    EXPECT_LT((alone - pooled / weight).abs().max().item<double>(), 1e-4) << "state " << s;
  }
  for (int64_t p = 1; p <= 3; ++p) {
    auto expected = torch::zeros({30, K}, torch::kDouble);
    for (int64_t s = 1; s <= 4; ++s) {
      const auto in = (st == s) & (pt == p);
      const int64_t c = (s + 1) / 2;
      expected += cells(in) *
                  torch::softmax(overall + part(shifts[0], c) + part(shifts[2], s) + part(shifts[1], p), -1);
    }
    EXPECT_LT(((expected - group_counts[p]) / cells(pt == p)).abs().max().item<double>(), 1e-3)
        << "label " << p;
  }
  EXPECT_TRUE((shifts[1][0] == 0).all().item<bool>());
  EXPECT_TRUE((shifts[2][0] == 0).all().item<bool>());
}

}  // namespace
}  // namespace lingshu
