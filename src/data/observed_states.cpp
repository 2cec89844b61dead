#include "data/observed_states.h"

#include <algorithm>
#include <cstdint>
#include <map>
#include <stdexcept>

#include "core/upper_median.h"
#include "data/preprocess.h"

namespace lingshu {

namespace {
// The variance of a state's mean of gene j over its cells.
double sampling_variance(const ObservedState& state, size_t j) {
  return state.log_variance[j] / static_cast<double>(state.n_cells);
}
}  // namespace

std::vector<ObservedState> observed_states(const CellRows& counts, std::span<const int64_t> rows,
                                           std::span<const std::string> state_of_row) {
  if (rows.size() != state_of_row.size())
    throw std::invalid_argument("observed_states: one state label per row is needed");
  std::vector<ObservedState> states;
  std::map<std::string, size_t> index;
  std::vector<std::vector<double>> totals;
  std::vector<size_t> state_of(rows.size(), SIZE_MAX);
  for (size_t i = 0; i < rows.size(); ++i) {
    if (state_of_row[i].empty()) continue;
    const auto [it, added] = index.emplace(state_of_row[i], states.size());
    if (added) {
      const std::vector<double> zeros(static_cast<size_t>(counts.n_cols()), 0.0);
      states.push_back({state_of_row[i], 0, 0, zeros, zeros});
      totals.emplace_back();
    }
    state_of[i] = it->second;
  }
  constexpr size_t kChunk = 4096;
  for (size_t begin = 0; begin < rows.size(); begin += kChunk) {
    const size_t end = std::min(rows.size(), begin + kChunk);
    const CsrMatrix chunk = counts.read(rows.subspan(begin, end - begin));
    const auto sums = chunk.row_sums();
    const CsrMatrix logs = log_normalize(chunk);
    for (int64_t r = 0; r < chunk.n_rows; ++r) {
      const size_t s = state_of[begin + static_cast<size_t>(r)];
      if (s == SIZE_MAX) continue;
      auto& sum = states[s].log_profile;
      auto& sum_of_squares = states[s].log_variance;
      const auto cols = logs.row_indices(r);
      const auto vals = logs.row_values(r);
      for (size_t k = 0; k < cols.size(); ++k) {
        const auto j = static_cast<size_t>(cols[k]);
        sum[j] += vals[k];
        sum_of_squares[j] += static_cast<double>(vals[k]) * vals[k];
      }
      totals[s].push_back(sums[static_cast<size_t>(r)]);
      ++states[s].n_cells;
    }
  }
  for (size_t s = 0; s < states.size(); ++s) {
    auto& st = states[s];
    const auto n = static_cast<double>(st.n_cells);
    for (size_t j = 0; j < st.log_profile.size(); ++j) {
      st.log_profile[j] /= n;
      st.log_variance[j] =
          n > 1 ? std::max(0.0, (st.log_variance[j] - n * st.log_profile[j] * st.log_profile[j]) / (n - 1))
                : 0.0;
    }
    st.library_size = upper_median(std::move(totals[s]));
  }
  return states;
}

std::vector<ObservedState> estimated_across_contexts(const std::vector<ObservedState>& states) {
  constexpr size_t kMinContexts = 3;
  std::map<std::string, std::vector<size_t>> of_kind;
  for (size_t s = 0; s < states.size(); ++s) {
    const auto& label = states[s].label;
    of_kind[label.substr(label.rfind('/') + 1)].push_back(s);
  }
  std::vector<ObservedState> out = states;
  for (const auto& [kind, members] : of_kind) {
    if (members.size() < kMinContexts) continue;
    const auto k = static_cast<double>(members.size());
    for (size_t j = 0; j < states[members[0]].log_profile.size(); ++j) {
      double sum = 0, sum_of_squares = 0, noise = 0;
      for (const size_t s : members) {
        const double m = states[s].log_profile[j];
        sum += m;
        sum_of_squares += m * m;
        noise += sampling_variance(states[s], j);
      }
      const double g = sum / k;
      const double spread = std::max(0.0, (sum_of_squares - k * g * g) / (k - 1) - noise / k);
      for (const size_t s : members) {
        const double s2 = sampling_variance(states[s], j);
        const double weight = spread + s2 > 0 ? spread / (spread + s2) : 1.0;
        out[s].log_profile[j] = g + weight * (states[s].log_profile[j] - g);
      }
    }
  }
  return out;
}

const ObservedState* find_state(const std::vector<ObservedState>& states, const std::string& label) {
  const auto it = std::find_if(states.begin(), states.end(), [&](const auto& s) { return s.label == label; });
  return it == states.end() ? nullptr : &*it;
}

}  // namespace lingshu
