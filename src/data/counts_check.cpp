#include "data/counts_check.h"

#include <fmt/format.h>

#include <cmath>

#include "core/error.h"

namespace lingshu {

namespace {

std::optional<NonCountValue::Problem> classify(float v) {
  if (std::isnan(v)) return NonCountValue::Problem::NotANumber;
  if (std::isinf(v)) return NonCountValue::Problem::Infinite;
  if (v < 0.0f) return NonCountValue::Problem::Negative;
  if (v != std::floor(v)) return NonCountValue::Problem::NonInteger;
  return std::nullopt;
}

std::string name_or_position(const std::vector<std::string>& names, int64_t i) {
  if (i >= 0 && i < static_cast<int64_t>(names.size()))
    return fmt::format("'{}'", names[static_cast<size_t>(i)]);
  return fmt::format("#{}", i);
}

}  // namespace

std::optional<NonCountValue> find_non_count(const CsrMatrix& matrix) {
  for (int64_t r = 0; r < matrix.n_rows; ++r) {
    const auto cols = matrix.row_indices(r);
    const auto vals = matrix.row_values(r);
    for (size_t i = 0; i < vals.size(); ++i) {
      if (const auto problem = classify(vals[i])) return NonCountValue{*problem, r, cols[i], vals[i]};
    }
  }
  return std::nullopt;
}

namespace {

std::string describe_non_count_at(const NonCountValue& bad, const std::string& cell, const std::string& gene,
                                  const std::string& source) {
  const std::string where = fmt::format("at cell {}, gene {}", cell, gene);
  std::string what;
  switch (bad.problem) {
    case NonCountValue::Problem::NotANumber:
      what = fmt::format("NaN values (e.g. {})", where);
      break;
    case NonCountValue::Problem::Infinite:
      what = fmt::format("infinite values (e.g. {} {})", bad.value, where);
      break;
    case NonCountValue::Problem::Negative:
      what = fmt::format("negative values (e.g. {:g} {}; the data look scaled)", bad.value, where);
      break;
    case NonCountValue::Problem::NonInteger:
      what = fmt::format("non-integer values (e.g. {:g} {}; the data look normalised or log-transformed)",
                         bad.value, where);
      break;
  }
  // Once a layer was chosen, pointing back at the usual layers would send the user in circles.
  const bool chose_x = source == "X" || source.ends_with(" X");
  const char* cure = chose_x
                         ? "pass --layer counts or --layer raw if the file keeps them there"
                         : "choose the matrix that holds them with --layer (X, raw, or a name under layers/)";
  return fmt::format("{} holds {}: lingshu needs raw counts; {}", source, what, cure);
}

}  // namespace

std::string describe_non_count(const NonCountValue& bad, const AnnData& data, const std::string& source) {
  return describe_non_count_at(bad, name_or_position(data.obs.index, bad.row),
                               name_or_position(data.var.index, bad.col), source);
}

std::string layer_source_name(const std::string& layer) {
  if (layer.empty() || layer == "X") return "X";
  if (layer == "raw") return "raw/X";
  return "layers/" + layer;
}

void require_counts(const AnnData& data, const std::string& source) {
  if (const auto bad = find_non_count(data.X)) throw UserError(describe_non_count(*bad, data, source));
}

CsrMatrix CountCheckedRows::read(std::span<const int64_t> rows) const {
  CsrMatrix out = inner_.read(rows);
  if (const auto bad = find_non_count(out)) {
    throw UserError(describe_non_count_at(*bad,
                                          name_or_position(obs_.index, rows[static_cast<size_t>(bad->row)]),
                                          name_or_position(var_.index, bad->col), source_));
  }
  return out;
}

}  // namespace lingshu
