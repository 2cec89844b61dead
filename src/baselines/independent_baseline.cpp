#include "baselines/independent_baseline.h"

#include <fmt/format.h>

#include <algorithm>
#include <numeric>
#include <random>

#include "baselines/label_groups.h"
#include "core/error.h"
#include "core/parallel.h"
#include "core/random.h"

namespace lingshu {

namespace {

// Training cells split by type; within a type, each gene's non-zero values (its zeros are implicit:
// the type's cell count minus the stored values).
struct TypeColumns {
  int64_t n_cells = 0;
  std::vector<int64_t> offsets;  // per gene
  std::vector<float> values;
};

TypeColumns gather_type(const CsrMatrix& x, const std::vector<int64_t>& rows) {
  TypeColumns t;
  t.n_cells = static_cast<int64_t>(rows.size());
  t.offsets.assign(static_cast<size_t>(x.n_cols) + 1, 0);
  for (const int64_t r : rows) {
    for (const int32_t c : x.row_indices(r)) ++t.offsets[static_cast<size_t>(c) + 1];
  }
  std::partial_sum(t.offsets.begin(), t.offsets.end(), t.offsets.begin());
  t.values.resize(static_cast<size_t>(t.offsets.back()));
  std::vector<int64_t> fill(t.offsets.begin(), t.offsets.end() - 1);
  for (const int64_t r : rows) {
    const auto cols = x.row_indices(r);
    const auto vals = x.row_values(r);
    for (size_t i = 0; i < cols.size(); ++i)
      t.values[static_cast<size_t>(fill[static_cast<size_t>(cols[i])]++)] = vals[i];
  }
  return t;
}

}  // namespace

AnnData sample_independent_baseline(const AnnData& train, const IndependentBaselineOptions& options) {
  if (train.n_obs() == 0) throw UserError("the training data holds no cells");
  const LabelGroups groups = group_cells(train, options.label);
  std::vector<TypeColumns> columns;
  std::vector<double> cumulative;  // for drawing a group in training proportions
  double total = 0;
  for (const auto& rows : groups.rows) {
    columns.push_back(gather_type(train.X, rows));
    total += static_cast<double>(rows.size());
    cumulative.push_back(total);
  }
  const int64_t n_cells = options.n_cells > 0 ? options.n_cells : train.n_obs();
  const int64_t n_genes = train.n_vars();

  // Each cell has its own random stream, so the output does not depend on how cells are split
  // across threads.
  std::vector<int32_t> group_of_cell(static_cast<size_t>(n_cells));
  std::vector<CsrMatrix> chunks(static_cast<size_t>((n_cells + 255) / 256));
  parallel_for(n_cells, options.threads, 256, [&](int64_t begin, int64_t end, int) {
    CsrMatrix& chunk = chunks[static_cast<size_t>(begin / 256)];
    chunk.n_cols = n_genes;
    std::vector<int32_t> cols;
    std::vector<float> vals;
    for (int64_t i = begin; i < end; ++i) {
      std::mt19937_64 rng(rnd::derive_seed(options.seed, static_cast<uint64_t>(i)));
      const size_t group = rnd::draw_index(rng, cumulative);
      group_of_cell[static_cast<size_t>(i)] = static_cast<int32_t>(group);
      const TypeColumns& type = columns[group];
      cols.clear();
      vals.clear();
      for (int64_t g = 0; g < n_genes; ++g) {
        // A uniformly chosen training cell of the type; below the stored count it has a value.
        const int64_t stored =
            type.offsets[static_cast<size_t>(g) + 1] - type.offsets[static_cast<size_t>(g)];
        const auto pick = static_cast<int64_t>(rnd::uniform_below(rng, static_cast<uint64_t>(type.n_cells)));
        if (pick < stored) {
          cols.push_back(static_cast<int32_t>(g));
          vals.push_back(type.values[static_cast<size_t>(type.offsets[static_cast<size_t>(g)] + pick)]);
        }
      }
      chunk.append_row(cols, vals);
    }
  });

  AnnData out;
  out.X.n_cols = n_genes;
  for (const auto& chunk : chunks) {
    for (int64_t r = 0; r < chunk.n_rows; ++r) {
      out.X.append_row(chunk.row_indices(r), chunk.row_values(r));
    }
  }
  out.var = train.var;
  for (int64_t i = 0; i < n_cells; ++i) out.obs.index.push_back(fmt::format("independent_{}", i));
  if (!options.label.empty()) {
    out.obs.set(label_column(groups, options.label, group_of_cell));
  }
  out.uns_strings = {{"lingshu_generator", "baseline independent"},
                     {"lingshu_seed", std::to_string(options.seed)},
                     {"lingshu_label", options.label}};
  return out;
}

}  // namespace lingshu
