#include "model/weights.h"

#include <fmt/format.h>
#include <torch/serialize.h>

#include <bit>
#include <nlohmann/json.hpp>

#include "core/atomic_file.h"
#include "core/error.h"

namespace lingshu {

namespace fs = std::filesystem;

namespace {
std::string safetensors_dtype(c10::ScalarType type) {
  switch (type) {
    case at::kFloat:
      return "F32";
    case at::kDouble:
      return "F64";
    case at::kBFloat16:
      return "BF16";
    case at::kHalf:
      return "F16";
    case at::kLong:
      return "I64";
    case at::kInt:
      return "I32";
    case at::kByte:
      return "U8";
    case at::kBool:
      return "BOOL";
    default:
      throw std::invalid_argument(fmt::format("safetensors: unsupported dtype {}", c10::toString(type)));
  }
}
}  // namespace

void write_safetensors(const fs::path& path, const NamedTensors& tensors) {
  static_assert(std::endian::native == std::endian::little, "safetensors bytes are little-endian");
  std::vector<torch::Tensor> contiguous;
  nlohmann::json header = nlohmann::json::object();
  size_t offset = 0;
  for (const auto& [name, tensor] : tensors) {
    auto t = tensor.detach().to(torch::kCPU).contiguous();
    const size_t bytes = t.numel() * t.element_size();
    header[name] = {{"dtype", safetensors_dtype(t.scalar_type())},
                    {"shape", t.sizes().vec()},
                    {"data_offsets", {offset, offset + bytes}}};
    offset += bytes;
    contiguous.push_back(std::move(t));
  }
  std::string header_text = header.dump();
  header_text.append((8 - header_text.size() % 8) % 8, ' ');  // keeps the data 8-byte aligned
  write_bytes_atomically(path, [&](FileSink& out) {
    const uint64_t length = header_text.size();
    out.write(&length, sizeof length);
    out.write(header_text);
    for (const auto& t : contiguous) out.write(t.data_ptr(), t.numel() * t.element_size());
  });
}

void save_archive(const fs::path& path, torch::serialize::OutputArchive& archive) {
  // Through a writer function that always reports success: LibTorch's own file writer throws from
  // its destructor after a failed write (std::terminate, an abort with no message); the sink
  // remembers the failure and names it once the archive is done.
  write_bytes_atomically(path, [&](FileSink& out) {
    archive.save_to([&out](const void* data, size_t bytes) {
      out.write(data, bytes);
      return bytes;
    });
  });
}

void save_weights(const fs::path& dir, MaskedDiffusionModel& model) {
  NamedTensors named;
  for (const auto& item : model->named_parameters()) {
    named.emplace_back(item.key(), item.value().detach().to(torch::kCPU, torch::kFloat32));
  }
  torch::serialize::OutputArchive archive;
  for (const auto& [name, tensor] : named) archive.write(name, tensor);
  save_archive(dir / "weights.pt", archive);
  write_safetensors(dir / "weights.safetensors", named);
}

MaskedDiffusionModel load_weights(const fs::path& dir, const ModelConfig& config,
                                  const torch::Device& device) {
  const auto path = dir / "weights.pt";
  if (!fs::is_regular_file(path)) {
    throw UserError(
        fmt::format("{} is missing; the model directory has no trained weights yet", path.string()));
  }
  MaskedDiffusionModel model(config);
  torch::serialize::InputArchive archive;
  try {
    archive.load_from(path.string());
    torch::NoGradGuard no_grad;
    for (auto& item : model->named_parameters()) {
      torch::Tensor stored;
      archive.read(item.key(), stored);
      if (!stored.sizes().equals(item.value().sizes())) {
        throw UserError(
            fmt::format("{}: tensor {} has shape {} but the config expects {}; the model "
                        "directory is inconsistent",
                        path.string(), item.key(), c10::str(stored.sizes()), c10::str(item.value().sizes())));
      }
      item.value().copy_(stored);
    }
  } catch (const c10::Error& e) {
    throw UserError(fmt::format("cannot read {} (corrupt or from another version): {}", path.string(),
                                e.what_without_backtrace()));
  }
  model->to(device);
  model->eval();
  return model;
}

}  // namespace lingshu
