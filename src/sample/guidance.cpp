#include "sample/guidance.h"

#include <ATen/ATen.h>
#include <fmt/format.h>

#include <functional>

#include "core/error.h"

namespace lingshu {

GuideMode parse_guide(const std::string& name) {
  if (name == "all") return GuideMode::All;
  if (name == "perturbation") return GuideMode::Perturbation;
  if (name == "compose") return GuideMode::Compose;
  throw UserError(fmt::format("unknown --guide '{}'; use all, perturbation or compose", name));
}

namespace {
// `conditions` with the fields where `keep` is false set to NULL.
GuidancePass keep_fields(const torch::Tensor& conditions, const torch::Tensor& targets,
                         int64_t perturbation_field, const std::function<bool(int64_t)>& keep,
                         double weight) {
  auto kept = conditions.clone();
  for (int64_t f = 0; f < kept.size(1); ++f) {
    if (!keep(f)) kept.select(1, f).zero_();
  }
  const bool with_targets = perturbation_field >= 0 && keep(perturbation_field);
  return {kept, with_targets ? targets : at::full_like(targets, -1), weight};
}
}  // namespace

std::vector<GuidancePass> guidance_passes(const torch::Tensor& conditions, const torch::Tensor& targets,
                                          GuideMode mode, double w, int64_t perturbation_field,
                                          int64_t library_field) {
  const auto library = [library_field](int64_t f) { return f == library_field; };
  const auto pass = [&](const std::function<bool(int64_t)>& keep, double weight) {
    return keep_fields(
        conditions, targets, perturbation_field, [&](int64_t f) { return library(f) || keep(f); }, weight);
  };
  if (mode == GuideMode::Compose) {
    std::vector<GuidancePass> passes;
    for (int64_t f = 0; f < conditions.size(1); ++f) {
      if (!library(f)) passes.push_back(pass([f](int64_t k) { return k == f; }, w + 1));
    }
    const auto experts = static_cast<double>(passes.size());
    passes.push_back(pass(library, 1.0 - experts * (w + 1)));
    return passes;
  }
  if (w <= 0) return {{conditions, targets, 1.0}};
  if (mode == GuideMode::Perturbation) {
    return {{conditions, targets, w + 1}, pass([&](int64_t f) { return f != perturbation_field; }, -w)};
  }
  return {{conditions, targets, w + 1}, pass(library, -w)};
}

}  // namespace lingshu
