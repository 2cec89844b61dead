#include "train/label_combinations.h"

#include <map>
#include <numeric>

namespace lingshu {

LabelCombinations label_combinations(const std::vector<std::vector<int64_t>>& codes,
                                     const std::vector<size_t>& fields, std::span<const int64_t> rows) {
  std::map<std::vector<int64_t>, std::vector<size_t>> members;  // sorted by labels
  for (size_t i = 0; i < rows.size(); ++i) {
    std::vector<int64_t> key;
    for (const size_t f : fields) key.push_back(codes[f][static_cast<size_t>(rows[i])]);
    members[key].push_back(i);
  }
  LabelCombinations out;
  out.of_row.resize(rows.size());
  for (const auto& [labels, at] : members) {
    for (const size_t i : at) out.of_row[i] = static_cast<int64_t>(out.labels.size());
    out.labels.push_back(labels);
  }
  return out;
}

LabelCombinations label_combinations(const std::vector<std::vector<int64_t>>& codes,
                                     const std::vector<size_t>& fields, int64_t n_rows) {
  std::vector<int64_t> rows(static_cast<size_t>(n_rows));
  std::iota(rows.begin(), rows.end(), 0);
  return label_combinations(codes, fields, rows);
}

std::vector<size_t> every_field(const std::vector<std::vector<int64_t>>& codes) {
  std::vector<size_t> out(codes.size());
  std::iota(out.begin(), out.end(), 0);
  return out;
}

}  // namespace lingshu
