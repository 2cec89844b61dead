#pragma once
// The upper median: the middle value, or the upper of the two middle ones for an even count; 0 when
// empty. A value that occurs in the data (a cell's total count, say), unlike the mean of the two
// middle values (eval/stats.h median).
#include <algorithm>
#include <cstddef>
#include <vector>

namespace lingshu {

inline double upper_median(std::vector<double> values) {
  if (values.empty()) return 0;
  const auto mid = values.begin() + static_cast<std::ptrdiff_t>(values.size() / 2);
  std::nth_element(values.begin(), mid, values.end());
  return *mid;
}

}  // namespace lingshu
