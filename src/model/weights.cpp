#include "model/weights.h"

#include <fmt/format.h>
#include <torch/serialize.h>

#include <bit>
#include <fstream>
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
  write_safetensors(dir / "weights.safetensors", named);
}

namespace {

// The header of a safetensors file: {name: {dtype, shape, data_offsets}}, offsets from the end of
// the header.
struct SafetensorsHeader {
  nlohmann::json entries;
  uint64_t data_start = 0;
};

SafetensorsHeader read_safetensors_header(std::ifstream& in, const fs::path& path) {
  uint64_t length = 0;
  in.read(reinterpret_cast<char*>(&length), sizeof length);
  const auto size = fs::file_size(path);
  if (!in || length > size - sizeof length) {
    throw UserError(
        fmt::format("{} is not a safetensors file (truncated or damaged); train again", path.string()));
  }
  std::string text(length, '\0');
  in.read(text.data(), static_cast<std::streamsize>(length));
  SafetensorsHeader header;
  header.entries = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (!in || !header.entries.is_object()) {
    throw UserError(fmt::format("{} has an unreadable header (damaged); train again", path.string()));
  }
  header.data_start = sizeof length + length;
  return header;
}

}  // namespace

MaskedDiffusionModel load_weights(const fs::path& dir, const ModelConfig& config,
                                  const torch::Device& device) {
  const auto path = dir / "weights.safetensors";
  if (!fs::is_regular_file(path)) {
    throw UserError(
        fmt::format("{} is missing; the model directory has no trained weights yet", path.string()));
  }
  std::ifstream in(path, std::ios::binary);
  const SafetensorsHeader header = read_safetensors_header(in, path);
  MaskedDiffusionModel model(config);
  torch::NoGradGuard no_grad;
  for (auto& item : model->named_parameters()) {
    const auto entry = header.entries.find(item.key());
    if (entry == header.entries.end()) {
      throw UserError(
          fmt::format("{} lacks tensor {}; the model directory is inconsistent", path.string(), item.key()));
    }
    const auto shape = entry->at("shape").get<std::vector<int64_t>>();
    const auto offsets = entry->at("data_offsets").get<std::vector<uint64_t>>();
    auto& value = item.value();
    const auto bytes = static_cast<uint64_t>(value.numel()) * sizeof(float);
    if (entry->at("dtype") != "F32" || !value.sizes().equals(shape) || offsets.size() != 2 ||
        offsets[1] - offsets[0] != bytes) {
      throw UserError(
          fmt::format("{}: tensor {} is {} {} but the config expects F32 {}; the model directory is "
                      "inconsistent",
                      path.string(), item.key(), entry->at("dtype").dump(), entry->at("shape").dump(),
                      c10::str(value.sizes())));
    }
    auto stored = torch::empty(value.sizes(), torch::kFloat32);
    in.seekg(static_cast<std::streamoff>(header.data_start + offsets[0]));
    in.read(static_cast<char*>(stored.data_ptr()), static_cast<std::streamsize>(bytes));
    if (!in) throw UserError(fmt::format("{} is truncated (damaged); train again", path.string()));
    value.copy_(stored);
  }
  model->to(device);
  model->eval();
  return model;
}

}  // namespace lingshu
