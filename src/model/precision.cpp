#include "model/precision.h"

#include <ATen/autocast_mode.h>
#include <fmt/format.h>
#include <torch/cuda.h>

#include <fstream>
#include <sstream>

#include "core/error.h"

namespace lingshu {

bool cpu_has_native_bf16() {
  static const bool has = [] {
    std::ifstream in("/proc/cpuinfo");
    std::string line;
    while (std::getline(in, line)) {
      if (line.rfind("flags", 0) != 0) continue;
      std::istringstream words(line);
      std::string w;
      while (words >> w) {
        if (w == "avx512_bf16" || w == "amx_bf16") return true;
      }
      return false;
    }
    return false;
  }();
  return has;
}

c10::Device resolve_device(const std::string& name) {
  if (name == "cpu") return c10::Device(c10::kCPU);
  if (name == "cuda" || name.rfind("cuda:", 0) == 0) {
    if (!torch::cuda::is_available()) {
      throw UserError(
          "--device cuda: this lingshu was built against a LibTorch without CUDA (or no GPU is visible); "
          "rebuild with -DCMAKE_PREFIX_PATH pointing at a CUDA LibTorch (see README) or use --device cpu");
    }
    return c10::Device(name);
  }
  throw UserError(fmt::format("unknown --device '{}'; use cpu or cuda", name));
}

Precision resolve_precision(const std::string& name, const c10::Device& device) {
  if (name == "fp32") return Precision::Float32;
  if (name == "bf16") return Precision::BFloat16;
  if (name == "auto") {
    return device.is_cuda() || cpu_has_native_bf16() ? Precision::BFloat16 : Precision::Float32;
  }
  throw UserError(fmt::format("unknown --precision '{}'; use auto, fp32 or bf16", name));
}

const char* precision_name(Precision precision) {
  return precision == Precision::BFloat16 ? "bf16" : "fp32";
}

AutocastScope::AutocastScope(Precision precision, const c10::Device& device)
    : active_(precision == Precision::BFloat16), cuda_(device.is_cuda()) {
  if (!active_) return;
  if (cuda_) {
    at::autocast::set_autocast_gpu_dtype(at::kBFloat16);
    at::autocast::set_enabled(true);
  } else {
    at::autocast::set_autocast_cpu_dtype(at::kBFloat16);
    at::autocast::set_cpu_enabled(true);
  }
  at::autocast::increment_nesting();
}

AutocastScope::~AutocastScope() {
  if (!active_) return;
  if (cuda_) {
    at::autocast::set_enabled(false);
  } else {
    at::autocast::set_cpu_enabled(false);
  }
  if (at::autocast::decrement_nesting() == 0) at::autocast::clear_cache();
}

}  // namespace lingshu
