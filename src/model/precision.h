#pragma once
// Mixed precision: bf16 autocast where the hardware computes in bf16 natively (CPUs with
// AVX512-BF16 or AMX, CUDA GPUs), float32 elsewhere. On a CPU without those instructions bf16
// matrix products are emulated and slower than float32, so `auto` picks float32 there.
#include <c10/core/Device.h>

#include <string>

namespace lingshu {

enum class Precision { Float32, BFloat16 };

// True if /proc/cpuinfo lists avx512_bf16 or amx_bf16.
bool cpu_has_native_bf16();

// "auto", "fp32" or "bf16" for `device` -> the precision to run. Throws UserError otherwise.
Precision resolve_precision(const std::string& name, const c10::Device& device);
const char* precision_name(Precision precision);

// "cpu" or "cuda" -> a device; throws UserError if CUDA is asked for but unavailable.
c10::Device resolve_device(const std::string& name);

// Runs the enclosed forward passes under bf16 autocast (nothing for Float32). Leaving the scope
// clears autocast's cache of bf16 weight copies, which go stale once the optimiser steps.
class AutocastScope {
 public:
  AutocastScope(Precision precision, const c10::Device& device);
  ~AutocastScope();
  AutocastScope(const AutocastScope&) = delete;
  AutocastScope& operator=(const AutocastScope&) = delete;

 private:
  bool active_ = false;
  bool cuda_ = false;
};

}  // namespace lingshu
