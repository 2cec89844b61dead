// Model training and sampling throughput for the presets, beside the fp32 and bf16 matrix-multiply
// peaks measured in the same process (so the ratio column is meaningful on any machine).
//
//   ./build/bench/bench_model [--presets tiny,small,base] [--threads N] [--data FILE.h5ad]
//                             [--precisions fp32,bf16] [--device cpu|cuda] [--batch B]
//
// On a GPU (--device cuda, a CUDA build: scripts/build-cuda.sh) the peaks are 8192^3 products and
// every timing waits for the device; bench/gpu_check.sh runs it.
//
// Data: pbmc3k (../shared/data/pbmc3k.h5ad, all 13,714 genes, P = 32) when present, else a
// simulated dataset of the same shape. Prints one Markdown table; BENCHMARKS.md keeps the results.
#include <ATen/CPUGeneratorImpl.h>
#include <ATen/Parallel.h>
#include <fmt/format.h>
#include <sys/resource.h>
#include <torch/cuda.h>
#include <torch/torch.h>

#include <chrono>
#include <filesystem>
#include <sstream>
#include <thread>

#include "core/allocator.h"
#include "data/simulator.h"
#include "data/tokenizer.h"
#include "io/h5ad.h"
#include "model/model.h"
#include "model/precision.h"
#include "sample/sampler.h"
#include "train/batch_loader.h"
#include "train/objective.h"

namespace {

using namespace lingshu;
using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

double peak_rss_mib() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return static_cast<double>(usage.ru_maxrss) / 1024.0;
}

// Waits for the work queued on a GPU (a no-op on the CPU), so that wall-clock timings are true.
void finish(const torch::Device& device) {
  if (device.is_cuda()) torch::cuda::synchronize();
}

// GFLOP/s of an n x n x n matrix product in `dtype`, best of a few repetitions.
double matmul_gflops(torch::ScalarType dtype, const torch::Device& device, int64_t n) {
  const auto a = torch::randn({n, n}).to(device, dtype), b = torch::randn({n, n}).to(device, dtype);
  double best = 0;
  for (int rep = 0; rep < 5; ++rep) {
    finish(device);
    const auto t0 = Clock::now();
    auto c = torch::mm(a, b);
    finish(device);
    best = std::max(best, 2.0 * n * n * n / seconds_since(t0) / 1e9);
  }
  return best;
}

struct Row {
  std::string preset, precision, what;
  double cells_per_s = 0, tokens_per_s = 0, gflops = 0, ratio = 0, mib = 0;
};

struct Setup {
  CsrMatrix counts;
  Tokenizer tokenizer;
  GenePatching patching;
  std::string source;
};

Setup load_data(const std::string& path) {
  Setup s;
  if (!path.empty() && std::filesystem::exists(path)) {
    s.counts = read_h5ad(path).X;
    s.source = path;
  } else {
    SimulatorConfig c;
    c.n_cells = 512;
    c.n_genes = 13714;
    c.n_cell_types = 5;
    s.counts = simulate(c).data.X;
    s.source = "simulated 512 x 13714";
  }
  s.tokenizer = Tokenizer::fit(s.counts);
  s.patching = GenePatching::make(s.counts.n_cols, 32, 0);
  return s;
}

ModelConfig config_for(const std::string& preset, const Setup& s) {
  auto c = ModelConfig::from_preset(preset);
  c.n_genes = s.counts.n_cols;
  c.n_tokens = s.tokenizer.n_tokens();
  return c;
}

// Seconds per training step (forward, loss, backward, AdamW) of `batch` cells, after a warm-up.
Row train_row(const std::string& preset, Precision precision, const Setup& s, int64_t batch, double peak,
              const torch::Device& device) {
  const auto config = config_for(preset, s);
  MaskedDiffusionModel model(config);
  model->to(device);
  torch::optim::AdamW optimizer(model->parameters(), torch::optim::AdamWOptions(1e-3));
  std::vector<int64_t> rows(static_cast<size_t>(batch));
  for (int64_t i = 0; i < batch; ++i) rows[i] = i % s.counts.n_rows;
  const auto tokens = encode_cells(s.counts, rows, s.tokenizer, s.patching).to(device);
  auto is_gene = torch::zeros({config.n_positions()}, torch::kBool);
  is_gene.slice(0, 0, config.n_genes).fill_(true);
  auto gen = at::make_generator<at::CPUGeneratorImpl>(1);
  const auto step = [&] {
    // Drawn on the CPU as the trainer draws them, then moved.
    const auto t_cpu = sample_diffusion_times(batch, gen);
    const auto mask = forward_mask(t_cpu, is_gene, gen).to(device);
    const auto t = t_cpu.to(device);
    torch::Tensor loss;
    {
      const AutocastScope autocast(precision, device);
      loss = masked_diffusion_loss(model->forward(apply_mask(tokens, mask, config.n_tokens)), tokens, mask, t,
                                   config.n_genes);
    }
    optimizer.zero_grad();
    loss.backward();
    optimizer.step();
  };
  step();  // warm-up: allocations, oneDNN primitive creation
  finish(device);
  int n = 0;
  const auto t0 = Clock::now();
  while (n < 3 || (seconds_since(t0) < 10 && n < 50)) {
    step();
    ++n;
  }
  finish(device);
  Row r{preset, precision_name(precision), fmt::format("train (batch {})", batch)};
  r.cells_per_s = static_cast<double>(n * batch) / seconds_since(t0);
  r.tokens_per_s = r.cells_per_s * static_cast<double>(config.sequence_length());
  r.gflops = 3 * config.forward_flops_per_cell() * r.cells_per_s / 1e9;
  r.ratio = r.gflops / peak;
  r.mib = peak_rss_mib();
  return r;
}

// Cells per second of the whole sampler (S model passes + proposals) for `steps` steps. Random
// order runs the output head only at the genes each step commits, as `lingshu generate` does.
Row sample_row(const std::string& preset, Precision precision, const Setup& s, int64_t batch, int steps,
               UnmaskOrder order, double peak, const torch::Device& device) {
  const auto config = config_for(preset, s);
  MaskedDiffusionModel model(config);
  model->to(device);
  model->eval();
  torch::NoGradGuard no_grad;
  auto is_gene = torch::zeros({config.n_positions()}, torch::kBool);
  is_gene.slice(0, 0, config.n_genes).fill_(true);
  const auto initial = torch::full({batch, config.n_positions()}, config.n_tokens, torch::kLong);
  const Denoiser denoiser = [&](const torch::Tensor& z) {
    const AutocastScope autocast(precision, device);
    return model->forward(z);
  };
  const PositionDenoiser at_positions = [&](const torch::Tensor& z, const torch::Tensor& rows,
                                            const torch::Tensor& positions) {
    const AutocastScope autocast(precision, device);
    return model->forward_at(z, {}, {}, rows, positions);
  };
  auto gen = at::make_generator<at::CPUGeneratorImpl>(2);
  const auto t0 = Clock::now();
  // As `lingshu generate` does: tokens on the device, the generator on the CPU.
  const auto out = sample_tokens(denoiser, initial.to(device), is_gene, config.n_tokens,
                                 {steps, 1.0, order, UnmaskSchedule::Linear}, gen, at_positions);
  finish(device);
  const char* order_name = order == UnmaskOrder::Random ? "random" : "confidence";
  Row r{preset, precision_name(precision),
        fmt::format("sample {} steps, {} (batch {})", steps, order_name, batch)};
  r.cells_per_s = static_cast<double>(batch) / seconds_since(t0);
  r.tokens_per_s = r.cells_per_s * static_cast<double>(config.sequence_length()) * steps;
  r.gflops = config.forward_flops_per_cell() * steps * r.cells_per_s / 1e9;
  r.ratio = r.gflops / peak;
  r.mib = peak_rss_mib();
  return r;
}

std::vector<std::string> split(const std::string& text) {
  std::vector<std::string> out;
  std::stringstream ss(text);
  std::string item;
  while (std::getline(ss, item, ',')) out.push_back(item);
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  lingshu::keep_freed_memory_in_process();
  std::string presets = "tiny,small", data = "../shared/data/pbmc3k.h5ad", precisions = "fp32,bf16";
  int threads = static_cast<int>(std::thread::hardware_concurrency());
  std::string device_name = "cpu";
  int64_t batch_override = 0;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string key = argv[i], value = argv[i + 1];
    if (key == "--presets") presets = value;
    if (key == "--data") data = value;
    if (key == "--threads") threads = std::stoi(value);
    if (key == "--precisions") precisions = value;
    if (key == "--device") device_name = value;
    if (key == "--batch") batch_override = std::stoll(value);
  }
  const torch::Device device = resolve_device(device_name);
  const int64_t matmul_n = device.is_cuda() ? 8192 : 1024;
  at::set_num_threads(threads);
  torch::manual_seed(0);
  const Setup setup = load_data(data);
  const double peak_fp32 = matmul_gflops(torch::kFloat32, device, matmul_n);
  const double peak_bf16 = matmul_gflops(torch::kBFloat16, device, matmul_n);
  fmt::print("data: {} ({} cells x {} genes, P = 32, {} tokens per cell); {} threads; native bf16: {}\n",
             setup.source, setup.counts.n_rows, setup.counts.n_cols, setup.patching.n_patches(), threads,
             cpu_has_native_bf16() ? "yes" : "no");
  fmt::print("device: {}; matmul peak ({}^3, same process): fp32 {:.0f} GFLOP/s, bf16 {:.0f} GFLOP/s\n\n",
             device.str(), matmul_n, peak_fp32, peak_bf16);
  fmt::print(
      "| preset | precision | work | cells/s | tokens/s | GFLOP/s | of matmul peak | peak RSS MiB |\n");
  fmt::print("|---|---|---|---:|---:|---:|---:|---:|\n");
  for (const auto& preset : split(presets)) {
    for (const auto& p : split(precisions)) {
      const auto precision = resolve_precision(p, device);
      const double peak = precision == Precision::BFloat16 ? peak_bf16 : peak_fp32;
      const int64_t batch = batch_override > 0 ? batch_override : preset == "tiny" ? 32 : 8;
      std::vector<Row> rows = {train_row(preset, precision, setup, batch, peak, device)};
      for (const int steps : {1, 8, 32}) {  // 1: the default
        for (const auto order : {UnmaskOrder::Confidence, UnmaskOrder::Random}) {
          rows.push_back(sample_row(preset, precision, setup, batch, steps, order, peak, device));
        }
      }
      for (const auto& r : rows) {
        fmt::print("| {} | {} | {} | {:.2f} | {:.0f} | {:.1f} | {:.0f}% | {:.0f} |\n", r.preset, r.precision,
                   r.what, r.cells_per_s, r.tokens_per_s, r.gflops, 100 * r.ratio, r.mib);
        std::fflush(stdout);
      }
    }
  }
  return 0;
}
