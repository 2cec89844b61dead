#include "data/observed_states.h"

#include <algorithm>
#include <cstdint>
#include <map>
#include <stdexcept>

#include "core/upper_median.h"
#include "data/preprocess.h"

namespace lingshu {

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
      states.push_back(
          {state_of_row[i], 0, 0, std::vector<double>(static_cast<size_t>(counts.n_cols()), 0.0)});
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
      auto& profile = states[s].log_profile;
      const auto cols = logs.row_indices(r);
      const auto vals = logs.row_values(r);
      for (size_t k = 0; k < cols.size(); ++k) profile[static_cast<size_t>(cols[k])] += vals[k];
      totals[s].push_back(sums[static_cast<size_t>(r)]);
      ++states[s].n_cells;
    }
  }
  for (size_t s = 0; s < states.size(); ++s) {
    for (double& v : states[s].log_profile) v /= static_cast<double>(states[s].n_cells);
    states[s].library_size = upper_median(std::move(totals[s]));
  }
  return states;
}

const ObservedState* find_state(const std::vector<ObservedState>& states, const std::string& label) {
  const auto it = std::find_if(states.begin(), states.end(), [&](const auto& s) { return s.label == label; });
  return it == states.end() ? nullptr : &*it;
}

}  // namespace lingshu
