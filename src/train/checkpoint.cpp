#include "train/checkpoint.h"

#include <fmt/format.h>
#include <torch/serialize.h>

#include "core/error.h"
#include "model/weights.h"

namespace lingshu {

namespace fs = std::filesystem;

void save_checkpoint(const fs::path& path, MaskedDiffusionModel& model, torch::optim::AdamW& optimizer,
                     const nlohmann::json& state) {
  torch::serialize::OutputArchive archive, model_archive, optimizer_archive;
  model->save(model_archive);
  optimizer.save(optimizer_archive);
  archive.write("model", model_archive);
  archive.write("optimizer", optimizer_archive);
  archive.write("state", c10::IValue(state.dump()));
  save_archive(path, archive);
}

nlohmann::json load_checkpoint(const fs::path& path, MaskedDiffusionModel& model,
                               torch::optim::AdamW& optimizer, const torch::Device& device) {
  try {
    torch::serialize::InputArchive archive, model_archive, optimizer_archive;
    archive.load_from(path.string(), device);
    archive.read("model", model_archive);
    archive.read("optimizer", optimizer_archive);
    model->load(model_archive);
    optimizer.load(optimizer_archive);
    c10::IValue state;
    archive.read("state", state);
    return nlohmann::json::parse(state.toStringRef());
  } catch (const c10::Error& e) {
    throw UserError(fmt::format("cannot read checkpoint {} (corrupt, or from another version): {}",
                                path.string(), e.what_without_backtrace()));
  } catch (const nlohmann::json::exception& e) {
    throw UserError(fmt::format("checkpoint {} has an unreadable state ({})", path.string(), e.what()));
  }
}

}  // namespace lingshu
