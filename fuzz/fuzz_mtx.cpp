// Fuzzes the 10x Matrix Market reader. The input is split at NUL bytes into matrix.mtx,
// features.tsv and barcodes.tsv; anything the reader refuses must be a UserError.
#include <string_view>

#include "core/error.h"
#include "fuzz_common.h"
#include "io/tenx.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace lingshu;
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  std::string_view parts[3] = {input, "g1\tG1\tGene Expression\n", "AAAC-1\n"};
  for (size_t k = 0, start = 0; k < 3 && start <= input.size(); ++k) {
    const size_t end = std::min(input.find('\0', start), input.size());
    parts[k] = input.substr(start, end - start);
    start = end + 1;
  }
  const auto folder = fuzz::scratch() / "tenx";
  std::filesystem::create_directories(folder);
  fuzz::write_bytes(folder / "matrix.mtx", parts[0].data(), parts[0].size());
  fuzz::write_bytes(folder / "features.tsv", parts[1].data(), parts[1].size());
  fuzz::write_bytes(folder / "barcodes.tsv", parts[2].data(), parts[2].size());
  try {
    fuzz::check_result(read_10x_mtx(folder));
  } catch (const UserError&) {
  }
  return 0;
}
