#pragma once
// Classifier-free guidance as a weighted sum of forward passes that see different condition
// labels (README "How it works"). The weights of every mode sum to one, so a model that ignores its
// conditions is left unchanged by guidance.
#include <torch/types.h>

#include <string>
#include <vector>

namespace lingshu {

enum class GuideMode {
  All,           // l_u + (w+1)(l_c - l_u), l_u with every field NULL
  Perturbation,  // the same with l_u keeping the context (only the perturbation field NULL)
  Compose,       // l_u + (w+1) sum_f (l_f - l_u), l_f seeing field f alone
};

// "all", "perturbation" or "compose"; UserError otherwise.
GuideMode parse_guide(const std::string& name);

// One forward pass: the condition tokens [B, F] and perturbation targets [B, T] it sees, and its
// weight in the sum of logits.
struct GuidancePass {
  torch::Tensor conditions, targets;
  double weight;
};

// The passes whose weighted sum gives the guided logits at weight w (= --cfg). Without guidance
// (w = 0, modes all / perturbation) one pass with weight 1. Compose at w = 0 is the product of the
// single-field experts p(x|c1) p(x|c2) / p(x) (composable diffusion, Liu et al. 2022): it needs no
// training cell of the combination itself, so it suits (context, perturbation) pairs never seen
// together. Targets go with the perturbation field. The library field (-1: none) is a drawn cell
// size, not a condition to guide towards: every pass keeps it.
std::vector<GuidancePass> guidance_passes(const torch::Tensor& conditions, const torch::Tensor& targets,
                                          GuideMode mode, double w, int64_t perturbation_field,
                                          int64_t library_field = -1);

}  // namespace lingshu
