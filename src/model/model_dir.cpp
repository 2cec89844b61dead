#include "model/model_dir.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <fstream>

#include "core/atomic_file.h"
#include "core/error.h"

namespace lingshu {

namespace fs = std::filesystem;

namespace {
constexpr const char* kFormatName = "lingshu-model";

nlohmann::json read_json(const fs::path& path) {
  std::ifstream in(path);
  if (!in)
    throw UserError(
        fmt::format("model file {} is missing; the model directory is incomplete", path.string()));
  try {
    return nlohmann::json::parse(in);
  } catch (const nlohmann::json::exception&) {
    throw UserError(fmt::format("model file {} is not valid JSON (truncated copy?)", path.string()));
  }
}

void write_json(const fs::path& path, const nlohmann::json& j) {
  write_text_atomically(path, j.dump(1) + "\n");
}
}  // namespace

bool is_model_dir(const fs::path& dir) {
  return fs::is_regular_file(dir / "config.json");
}

void write_model_metadata(const fs::path& dir, const ModelMetadata& m) {
  fs::create_directories(dir);
  write_json(dir / "tokenizer.json", m.tokenizer.to_json());
  write_json(
      dir / "genes.json",
      {{"names", m.gene_names}, {"patching", m.patching.to_json()}, {"knowledge_genes", m.knowledge_genes}});
  nlohmann::json fields = nlohmann::json::array(), combinations = nlohmann::json::array();
  for (const auto& f : m.conditions) fields.push_back(f.to_json());
  for (const auto& c : m.combinations) combinations.push_back({{"labels", c.labels}, {"n_cells", c.n_cells}});
  write_json(dir / "conditions.json",
             {{"fields", fields}, {"holdouts", m.holdouts}, {"training_combinations", combinations}});
  nlohmann::json states = nlohmann::json::array();
  for (const auto& st : m.observed_states) {
    // Six decimals of log1p CP10k are far below any difference a metric sees, and keep the file small.
    const auto rounded = [](const std::vector<double>& values) {
      std::vector<double> out;
      out.reserve(values.size());
      for (const double v : values) out.push_back(std::round(v * 1e6) / 1e6);
      return out;
    };
    states.push_back({{"label", st.label},
                      {"n_cells", st.n_cells},
                      {"library_size", st.library_size},
                      {"log1p_cp10k", rounded(st.log_profile)},
                      {"log1p_cp10k_variance", rounded(st.log_variance)}});
  }
  write_json(dir / "observed_states.json", {{"states", states}});
  // config.json last: its presence marks a complete model directory.
  write_json(dir / "config.json", {{"format", kFormatName},
                                   {"format_version", kModelFormatVersion},
                                   {"model", m.config.to_json()},
                                   {"training", m.training}});
}

ModelMetadata read_model_metadata(const fs::path& dir) {
  if (!fs::is_directory(dir)) {
    throw UserError(
        fmt::format("model directory {} does not exist; train one with `lingshu train`", dir.string()));
  }
  if (!is_model_dir(dir)) {
    throw UserError(fmt::format("{} is not a lingshu model directory (no config.json)", dir.string()));
  }
  const auto config = read_json(dir / "config.json");
  if (config.value("format", "") != kFormatName) {
    throw UserError(fmt::format("{}/config.json is not a lingshu model config", dir.string()));
  }
  const int version = config.value("format_version", -1);
  if (version != kModelFormatVersion) {
    throw UserError(fmt::format(
        "model directory {} has format version {}, this lingshu reads version {}; retrain the model "
        "with this version (or use the lingshu that wrote it)",
        dir.string(), version, kModelFormatVersion));
  }
  ModelMetadata m;
  m.config = ModelConfig::from_json(config.at("model"));
  m.training = config.value("training", nlohmann::json::object());
  m.tokenizer = Tokenizer::from_json(read_json(dir / "tokenizer.json"));
  const auto genes = read_json(dir / "genes.json");
  m.gene_names = genes.at("names").get<std::vector<std::string>>();
  m.patching = GenePatching::from_json(genes.at("patching"));
  m.knowledge_genes = genes.at("knowledge_genes").get<std::vector<std::string>>();
  try {
    const auto conditions = read_json(dir / "conditions.json");
    for (const auto& f : conditions.at("fields")) m.conditions.push_back(ConditionField::from_json(f));
    m.holdouts = conditions.at("holdouts").get<std::vector<std::string>>();
    for (const auto& c : conditions.at("training_combinations")) {
      m.combinations.push_back(
          {c.at("labels").get<std::vector<std::string>>(), c.at("n_cells").get<int64_t>()});
    }
  } catch (const nlohmann::json::exception& e) {
    throw UserError(
        fmt::format("{}/conditions.json is malformed ({}); retrain the model", dir.string(), e.what()));
  }
  try {
    const auto states = read_json(dir / "observed_states.json");
    for (const auto& st : states.at("states")) {
      m.observed_states.push_back({st.at("label").get<std::string>(), st.at("n_cells").get<int64_t>(),
                                   st.at("library_size").get<double>(),
                                   st.at("log1p_cp10k").get<std::vector<double>>(),
                                   st.at("log1p_cp10k_variance").get<std::vector<double>>()});
    }
  } catch (const nlohmann::json::exception& e) {
    throw UserError(
        fmt::format("{}/observed_states.json is malformed ({}); retrain the model", dir.string(), e.what()));
  }
  if (static_cast<int64_t>(m.conditions.size()) != m.config.n_conditions()) {
    throw UserError(
        fmt::format("model directory {} is inconsistent ({} condition fields in conditions.json, {} in "
                    "config.json); retrain the model",
                    dir.string(), m.conditions.size(), m.config.n_conditions()));
  }
  if (static_cast<int64_t>(m.gene_names.size()) != m.config.n_genes ||
      m.patching.n_genes != m.config.n_genes || m.tokenizer.n_genes() != m.config.n_genes ||
      std::any_of(m.observed_states.begin(), m.observed_states.end(), [&](const auto& st) {
        return std::ssize(st.log_profile) != m.config.n_genes ||
               std::ssize(st.log_variance) != m.config.n_genes;
      })) {
    throw UserError(
        fmt::format("model directory {} is inconsistent (gene counts of config, genes.json, "
                    "tokenizer.json and observed_states.json differ); retrain the model",
                    dir.string()));
  }
  if (static_cast<int64_t>(m.knowledge_genes.size()) != m.config.n_knowledge_genes) {
    throw UserError(
        fmt::format("model directory {} is inconsistent ({} gene-knowledge genes in genes.json, "
                    "{} in config.json); retrain the model",
                    dir.string(), m.knowledge_genes.size(), m.config.n_knowledge_genes));
  }
  return m;
}

}  // namespace lingshu
