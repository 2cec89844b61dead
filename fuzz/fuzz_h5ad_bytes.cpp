// Fuzzes read_h5ad with arbitrary file bytes (seed it with small valid .h5ad files). Crashes
// inside libhdf5's own parser are libhdf5 bugs; anything in lingshu's code is ours.
#include "core/error.h"
#include "fuzz_common.h"
#include "io/h5ad.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace lingshu;
  const auto path = fuzz::scratch() / "input.h5ad";
  fuzz::write_bytes(path, reinterpret_cast<const char*>(data), size);
  try {
    fuzz::check_result(read_h5ad(path));
  } catch (const UserError&) {
  }
  return 0;
}
