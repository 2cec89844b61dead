#include "train/trainer.h"

// clang-format off
#include <torch/types.h>  // first: clip_grad.h uses torch::Tensor without including it
// clang-format on

#include <ATen/CPUGeneratorImpl.h>
#include <fmt/format.h>
#include <torch/nn/utils/clip_grad.h>
#include <torch/optim/adamw.h>

#include <chrono>
#include <cmath>
#include <fstream>
#include <limits>
#include <optional>

#include "core/error.h"
#include "core/progress.h"
#include "core/seed.h"
#include "data/conditions.h"
#include "model/model.h"
#include "model/model_dir.h"
#include "model/precision.h"
#include "model/weights.h"
#include "train/batch_loader.h"
#include "train/cell_factor_init.h"
#include "train/cell_state_bank.h"
#include "train/checkpoint.h"
#include "train/condition_inputs.h"
#include "train/conditioning.h"
#include "train/distributed.h"
#include "train/marginal_init.h"
#include "train/objective.h"
#include "train/prepare_run.h"
#include "train/step_plan.h"
#include "train/validation.h"

namespace lingshu {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

namespace {

// The masks and times of step `step` depend only on (seed, step): a resumed run replays them.
at::Generator step_generator(uint64_t seed, int64_t step) {
  return at::make_generator<at::CPUGeneratorImpl>(mix_seed(seed, static_cast<uint64_t>(step)));
}

// Parameter groups as in GPT-2/nanoGPT: weight decay on matrices, none on embeddings, biases and
// LayerNorm gains. The output biases are not trained (requires_grad false): they stay at the
// marginals they start from.
torch::optim::AdamW make_optimizer(MaskedDiffusionModel& model, const TrainOptions& o) {
  std::vector<torch::Tensor> decay, no_decay;
  for (const auto& item : model->named_parameters()) {
    if (!item.value().requires_grad()) continue;
    const auto& name = item.key();
    const bool is_table = name.find("emb") != std::string::npos || name == "patch_pos";
    (item.value().dim() >= 2 && !is_table ? decay : no_decay).push_back(item.value());
  }
  const auto options = torch::optim::AdamWOptions(o.lr).betas({0.9, 0.95}).eps(1e-8);
  std::vector<torch::optim::OptimizerParamGroup> groups;
  for (auto* group : {&decay, &no_decay}) {
    const double decay_rate = group == &decay ? o.weight_decay : 0.0;
    groups.emplace_back(*group, std::make_unique<torch::optim::AdamWOptions>(
                                    torch::optim::AdamWOptions(options).weight_decay(decay_rate)));
  }
  return torch::optim::AdamW(std::move(groups), options);
}

void set_learning_rate(torch::optim::AdamW& optimizer, double lr) {
  for (auto& group : optimizer.param_groups())
    static_cast<torch::optim::AdamWOptions&>(group.options()).lr(lr);
}

// A fresh model's output biases: each gene's token marginals, and each label's shift of them.
void start_from_marginals(MaskedDiffusionModelImpl& model, const CsrMatrix& counts,
                          const std::vector<std::vector<int64_t>>& codes, const ModelMetadata& meta) {
  model.set_gene_logit_bias(token_log_marginals(counts, meta.tokenizer, meta.patching));
  if (meta.config.gene_factors > 0) {
    const auto levels = torch::log1p(torch::tensor(meta.tokenizer.lower_edges(), torch::kDouble));
    const std::vector<int64_t> one_group(static_cast<size_t>(counts.n_rows), 0);
    const auto n = token_counts(counts, meta.tokenizer, meta.patching, one_group, 1)[0];  // [L, K]
    const auto mean_levels = n.matmul(levels) / static_cast<double>(std::max<int64_t>(counts.n_rows, 1));
    model.set_value_levels(levels.to(torch::kFloat), mean_levels.to(torch::kFloat));
    const auto cell =
        cell_factor_start(counts, meta.tokenizer, meta.patching, levels, codes, meta.config.gene_factors);
    model.set_cell_factors(cell.in_loading, cell.out_loading, cell.narrowing);
  }
  const int perturbation = perturbation_field_index(meta.conditions);
  const auto shifts = label_log_shifts(
      counts, meta.tokenizer, meta.patching, codes, meta.config.condition_vocab_sizes,
      {library_field_index(meta.conditions), perturbation, state_field_index(meta.conditions)},
      label_prior_cells(perturbation >= 0));
  for (size_t f = 0; f < shifts.size(); ++f)
    model.set_condition_logit_bias(static_cast<int64_t>(f), shifts[f]);
}

// train_log.jsonl, a line per event, flushed at once: a killed run keeps its log up to its last
// step, and a full disk stops the run instead of losing lines silently.
class TrainLog {
 public:
  explicit TrainLog(fs::path path) : path_(std::move(path)), out_(path_, std::ios::app) {
    if (!out_) throw UserError(fmt::format("cannot write the training log {}", path_.string()));
  }
  void write(const nlohmann::json& line) {
    out_ << line.dump() << '\n';
    out_.flush();
    if (!out_) throw UserError(fmt::format("cannot write the training log {} (disk full?)", path_.string()));
  }

 private:
  fs::path path_;
  std::ofstream out_;
};

// Every parameter's gradient (zeros where this step left it undefined, so that all ranks send the
// same tensors), for the all-reduce.
std::vector<torch::Tensor> trained_gradients(MaskedDiffusionModel& model) {
  std::vector<torch::Tensor> grads;
  for (auto& p : model->parameters()) {
    if (!p.requires_grad()) continue;
    if (!p.grad().defined()) p.mutable_grad() = torch::zeros_like(p);
    grads.push_back(p.grad());
  }
  return grads;
}

// Makes every rank's weights and buffers rank 0's.
void broadcast_model(Collective& collective, MaskedDiffusionModel& model) {
  std::vector<torch::Tensor> state;
  for (const auto& p : model->parameters()) state.push_back(p.detach());
  for (const auto& b : model->buffers()) state.push_back(b.detach());
  collective.broadcast_from_root(state);
}

// One optimiser step and the validation loss of a model on a prepared run. In a data-parallel job
// each rank runs its share of the batch and the gradients are summed over the ranks before the
// clip, so the ranks take the step one process would take with the whole batch.
class Stepper {
 public:
  Stepper(const PreparedRun& run, MaskedDiffusionModel& model, torch::optim::AdamW& optimizer,
          const torch::Device& device, Precision precision, Collective* collective)
      : run_(run),
        model_(model),
        optimizer_(optimizer),
        device_(device),
        precision_(precision),
        collective_(collective) {
    const ModelConfig& config = run.meta.config;
    is_gene_ = torch::zeros({config.n_positions()}, torch::kBool);
    is_gene_.slice(0, 0, config.n_genes).fill_(true);
    library_field_ = library_field_index(run.meta.conditions);
    targets_ = make_target_table(run.meta);
    if (run.options.world.is_root()) {
      validation_ = make_validation_set(run.val_counts, run.meta.tokenizer, run.meta.patching, is_gene_,
                                        run.options.seed, run.val_codes);
    }
  }

  // Masks the batch as step `step` of the seed does (a resumed run replays it), steps the optimiser
  // at `lr` and returns the loss of the whole batch.
  double step(const TokenBatch& batch, int64_t step, double lr) {
    const TrainOptions& o = run_.options;
    auto generator = step_generator(o.seed, step);
    // Drawn for the whole batch, of which this rank takes its rows: the draws do not depend on the
    // number of processes.
    const auto all_t = sample_diffusion_times(o.batch_size, generator);
    const auto all_mask = forward_mask(all_t, is_gene_, generator);
    const auto all_inputs =
        drop_for_guidance(batch.conditions, o.p_uncond, targets_, library_field_, generator);
    const int64_t begin = batch.shard_begin, rows = batch.tokens.size(0);
    const auto mine = [&](const torch::Tensor& x) {
      return x.defined() ? x.narrow(0, begin, rows).to(device_) : torch::Tensor();
    };
    const auto tokens = batch.tokens.to(device_);
    const auto mask = mine(all_mask);
    torch::Tensor loss;
    {
      const AutocastScope autocast(precision_, device_);
      const auto logits = model_->forward(apply_mask(tokens, mask, mask_token()), mine(all_inputs.conditions),
                                          mine(all_inputs.targets));
      // The mean over the batch is the sum over ranks of each rank's share of it.
      loss = masked_diffusion_loss(logits, tokens, mask, mine(all_t), run_.meta.config.n_genes) *
             (static_cast<double>(rows) / static_cast<double>(o.batch_size));
    }
    set_learning_rate(optimizer_, lr);
    optimizer_.zero_grad();
    loss.backward();
    auto batch_loss = loss.detach().to(torch::kCPU, torch::kFloat).reshape({1});
    if (collective_ != nullptr) {
      auto tensors = trained_gradients(model_);
      tensors.push_back(batch_loss);
      collective_->sum_over_ranks(tensors);
    }
    torch::nn::utils::clip_grad_norm_(model_->parameters(), o.grad_clip);
    optimizer_.step();
    const double value = batch_loss.item<double>();
    if (!std::isfinite(value)) {
      throw UserError(
          fmt::format("training diverged at step {} (loss {}); lower --lr (now {})", step, value, o.lr));
    }
    return value;
  }

  ValidationLoss validate() {
    return validation_loss(model_, validation_, targets_, run_.options.batch_size * 2, precision_, device_,
                           run_.meta.config.n_genes, mask_token());
  }

 private:
  int64_t mask_token() const { return run_.meta.config.n_tokens; }

  const PreparedRun& run_;
  MaskedDiffusionModel& model_;
  torch::optim::AdamW& optimizer_;
  torch::Device device_;
  Precision precision_;
  Collective* collective_;
  torch::Tensor is_gene_;
  int library_field_ = -1;
  TargetTable targets_;
  ValidationSet validation_;
};

// A fresh model starts from the training marginals; a resumed one is filled from its checkpoint.
MaskedDiffusionModel build_model(const PreparedRun& run, const torch::Device& device) {
  torch::manual_seed(mix_seed(run.options.seed, 0x1417ULL << 32));  // weight initialisation
  MaskedDiffusionModel model(run.meta.config);
  if (!run.resuming) start_from_marginals(*model, run.sample_counts, run.sample_codes, run.meta);
  if (!run.resuming && run.knowledge.dim > 0) {
    model->set_gene_knowledge(torch::tensor(run.knowledge.values).view({-1, run.knowledge.dim}));
  }
  model->to(device);
  model->train();
  return model;
}

// What rank 0 tells the others before every step: whether there is one, and its learning rate.
// Only rank 0 keeps the clock and the plan, so the ranks can never disagree on when to stop.
struct StepOrder {
  bool go = false;
  double lr = 0;
};

StepOrder share_order(Collective* collective, StepOrder order) {
  if (collective == nullptr) return order;
  const auto message = torch::tensor({order.go ? 1.0 : 0.0, order.lr}, torch::kDouble);
  collective->broadcast_from_root({message});
  return {message[0].item<double>() > 0.5, message[1].item<double>()};
}

void print_model_summary(const MaskedDiffusionModel& model, const ModelConfig& c, Precision precision,
                         const WorldInfo& world) {
  int64_t n_parameters = 0;
  for (const auto& p : model->parameters()) n_parameters += p.numel();
  fmt::print(
      stderr,
      "train: {} model, {:.1f}M parameters (width {}, {} layers, {} gene factors, {} tokens per cell), "
      "{}{}\n",
      c.preset, static_cast<double>(n_parameters) / 1e6, c.d_model, c.n_layers, c.gene_factors,
      c.sequence_length(), precision_name(precision),
      world.distributed() ? fmt::format(", {} processes", world.size) : "");
}

fs::path checkpoint_path(const fs::path& dir) {
  return dir / "checkpoint.pt";
}

// Where a run stands: what checkpoint.pt keeps beside the weights and the optimiser's moments, so
// that --resume goes on with the same schedule, budget and best weights. The loop keeps `step` and
// the best weights current; the plan and the clock own the rest until a save (as_of). The JSON keys
// are the checkpoint's format: checkpoints written before must still resume.
struct RunState {
  int64_t step = 0;
  int64_t total_steps = 0;     // the steps the schedule is planned for
  bool planned = false;        // false until a --minutes run has timed its speed
  double elapsed_seconds = 0;  // wall-clock of the run, every invocation until the save
  int64_t best_step = -1;      // the step of the model directory's weights (-1: the last weights)
  double best_val_loss = 0;

  static RunState fresh(const TrainOptions& o) {
    RunState s;
    s.total_steps = o.steps;
    s.planned = o.minutes <= 0;
    return s;
  }
  static RunState from_json(const nlohmann::json& j) {
    return {j.at("step").get<int64_t>(),      j.at("total_steps").get<int64_t>(),
            j.at("planned").get<bool>(),      j.at("elapsed_seconds").get<double>(),
            j.at("best_step").get<int64_t>(), j.at("best_val_loss").get<double>()};
  }
  nlohmann::json to_json() const {
    return {{"step", step},           {"total_steps", total_steps},
            {"planned", planned},     {"elapsed_seconds", elapsed_seconds},
            {"best_step", best_step}, {"best_val_loss", best_val_loss}};
  }
};

// A new run's state, or the checkpoint's when resuming. Every rank reads the checkpoint (the model
// directory is shared, as on a cluster's file system): the optimiser state is not broadcast.
RunState starting_state(const PreparedRun& run, MaskedDiffusionModel& model, torch::optim::AdamW& optimizer,
                        const torch::Device& device) {
  const fs::path path = checkpoint_path(run.options.out);
  if (run.resuming && fs::exists(path)) {
    return RunState::from_json(load_checkpoint(path, model, optimizer, device));
  }
  return RunState::fresh(run.options);
}

// The run's wall-clock, counted across invocations: a --minutes budget is the whole run's.
class RunClock {
 public:
  RunClock(double seconds_before, double minutes) : before_(seconds_before), minutes_(minutes) {}
  double this_invocation() const { return std::chrono::duration<double>(Clock::now() - start_).count(); }
  double elapsed() const { return before_ + this_invocation(); }
  bool out_of_time() const { return minutes_ > 0 && elapsed() >= minutes_ * 60.0; }

 private:
  double before_;
  double minutes_;  // 0: no budget
  Clock::time_point start_ = Clock::now();
};

// The state to save: the loop's, with the plan and the clock as they stand now.
RunState as_of(RunState state, const StepPlan& plan, const RunClock& clock) {
  state.total_steps = plan.total();
  state.planned = plan.planned();
  state.elapsed_seconds = clock.elapsed();
  return state;
}

// The mean training loss of the steps since the last log line.
class LossWindow {
 public:
  void add(double loss) {
    sum_ += loss;
    ++steps_;
  }
  // Closes the window if it holds steps; returns the mean of the last closed one (0 before any).
  double close() {
    if (steps_ > 0) {
      mean_ = sum_ / static_cast<double>(steps_);
      sum_ = 0;
      steps_ = 0;
    }
    return mean_;
  }

 private:
  double sum_ = 0, mean_ = 0;
  int64_t steps_ = 0;
};

// What rank 0 writes as the run goes: the training log, the model directory's weights (with the
// cell states generation draws from) and the checkpoint. The weights are those of the best
// validation loss so far: on a few thousand cells a long run overfits (paul15, 45 minutes:
// validation masked CE 0.700 at step 800, 0.729 at step 6,744), and a user should not have to guess
// the number of steps. Without validation cells the last weights are kept. The checkpoint always
// holds the latest state, for --resume.
class RunRecord {
 public:
  RunRecord(const PreparedRun& run, MaskedDiffusionModel& model, torch::optim::AdamW& optimizer,
            const torch::Device& device)
      : run_(run),
        model_(model),
        optimizer_(optimizer),
        device_(device),
        log_(run.options.out / "train_log.jsonl") {}

  void log_training(int64_t step, double lr, double loss, double cells_per_second, double elapsed_seconds) {
    log_.write({{"step", step},
                {"lr", lr},
                {"loss", loss},
                {"cells_per_s", cells_per_second},
                {"elapsed_s", elapsed_seconds}});
  }
  // Logs the validation loss of the state's step; a new best becomes the model directory's weights.
  void log_validation(RunState& state, const ValidationLoss& v) {
    log_.write(v.to_json(state.step));
    if (std::isnan(v.loss) || (state.best_step >= 0 && v.loss >= state.best_val_loss)) return;
    state.best_step = state.step;
    state.best_val_loss = v.loss;
    save_weights_and_states(state.step);
  }
  void save(const RunState& state) {
    save_checkpoint(checkpoint_path(run_.options.out), model_, optimizer_, state.to_json());
    if (state.best_step < 0) save_weights_and_states(state.step);
  }

 private:
  void save_weights_and_states(int64_t step) {
    const auto reliability = refresh_cell_state_bank(model_, run_, device_);
    save_weights(run_.options.out, model_);
    if (!reliability.empty()) log_.write({{"step", step}, {"cell_state_reliability", reliability}});
  }

  const PreparedRun& run_;
  MaskedDiffusionModel& model_;
  torch::optim::AdamW& optimizer_;
  torch::Device device_;
  TrainLog log_;
};

// What rank 0 shows the user as the run goes (nothing with --quiet): a progress line from the
// moment the number of steps is known, and what a --minutes run makes of its budget.
class Console {
 public:
  Console(const PreparedRun& run, const StepPlan& plan, int64_t step)
      : run_(run), talk_(run.options.world.is_root() && !run.options.quiet) {
    if (talk_ && plan.planned()) progress_.emplace("train", plan.total(), "steps", step);
  }
  // The plan has changed; `news` when the user should hear of it.
  void replanned(const StepPlan& plan, int64_t step, double steps_per_second, bool news) {
    if (news && talk_) print_plan(plan.total(), steps_per_second, run_.options, run_.steps_are_passes);
    if (talk_ && !progress_) progress_.emplace("train", plan.total(), "steps", step);
    if (progress_) progress_->set_total(plan.total());
  }
  void update(int64_t step, double loss, const ValidationLoss& val) {
    if (!progress_) return;
    progress_->update(step, std::isnan(val.loss)
                                ? fmt::format("loss {:.4f}", loss)
                                : fmt::format("loss {:.4f} | val {:.4f} | context gain {:.4f}", loss,
                                              val.loss, val.context_gain()));
  }
  void finish(double train_loss, const ValidationLoss& val) {
    if (progress_) progress_->finish(fmt::format("loss {:.4f} | val {:.4f}", train_loss, val.loss));
  }

 private:
  const PreparedRun& run_;
  bool talk_;
  std::optional<Progress> progress_;
};

// What an invocation reports once rank 0 has saved the run.
TrainResult finished_result(TrainResult result, const StepPlan& plan, const RunState& state,
                            double train_loss, const ValidationLoss& val, const RunClock& clock,
                            const StepTimer& timer, int64_t batch_size) {
  result.total_steps = plan.total();
  result.train_loss = train_loss;
  result.val_loss = val.loss;
  result.val_masked_ce = val.masked_ce;
  result.context_gain = val.context_gain();
  result.best_step = state.best_step;
  result.best_val_loss =
      state.best_step >= 0 ? state.best_val_loss : std::numeric_limits<double>::quiet_NaN();
  result.seconds = clock.this_invocation();
  if (timer.timed_steps() > 0) {
    result.cells_per_second = static_cast<double>(timer.timed_steps() * batch_size) / timer.seconds();
  }
  return result;
}

}  // namespace

TrainResult train_model(const AnnData& data, const TrainOptions& options, const TrainHooks& hooks) {
  // Not owned: `data` outlives the call (an aliasing pointer with no owner).
  const std::shared_ptr<const CsrMatrix> counts(std::shared_ptr<void>(), &data.X);
  return train_model(TrainingCells{data.obs, data.var, std::make_shared<MatrixRows>(counts)}, options, hooks);
}

TrainResult train_model(const TrainingCells& cells, const TrainOptions& requested, const TrainHooks& hooks) {
  PreparedRun run = prepare_run(cells, requested);
  const TrainOptions& options = run.options;
  const bool root = options.world.is_root();
  const auto device = resolve_device(options.device);
  const auto precision = resolve_precision(options.precision, device);
  std::optional<Collective> collective;
  if (options.world.distributed()) collective.emplace(options.world);
  Collective* const group = collective ? &*collective : nullptr;
  auto model = build_model(run, device);
  // The start is set: the statistics sample (up to 20,000 cells) need not stay in memory.
  run.sample_counts = CsrMatrix{};
  run.sample_codes.clear();
  auto optimizer = make_optimizer(model, options);
  if (root && !options.quiet) print_model_summary(model, run.meta.config, precision, options.world);
  RunState state = starting_state(run, model, optimizer, device);
  if (group != nullptr) broadcast_model(*group, model);
  StepPlan plan(options, state.total_steps, state.planned);
  const RunClock clock(state.elapsed_seconds, options.minutes);
  std::optional<RunRecord> record;  // the model directory is rank 0's to write
  if (root) record.emplace(run, model, optimizer, device);
  Stepper stepper(run, model, optimizer, device, precision, group);
  const TrainingRows training{*run.counts, run.train_rows, run.train_codes};
  BatchLoader loader(training, run.meta.tokenizer, run.meta.patching, options.batch_size, options.seed,
                     state.step, {options.world.rank, options.world.size});
  Console console(run, plan, state.step);
  StepTimer timer;
  LossWindow window;
  ValidationLoss val;
  int64_t steps_this_run = 0;

  while (true) {
    // Plan: whether there is a step, and at which learning rate (rank 0 decides for every rank).
    const bool stopped_by_hook = hooks.stop_after_steps > 0 && steps_this_run >= hooks.stop_after_steps;
    const bool go = !plan.done(state.step) && !clock.out_of_time() && !stopped_by_hook;
    const StepOrder order = share_order(group, {go, root ? plan.lr(state.step) : 0.0});
    if (!order.go) break;
    // Step.
    const double loss = stepper.step(loader.next(), state.step, order.lr);
    ++state.step;
    ++steps_this_run;
    if (!root) continue;
    window.add(loss);
    timer.step_done();
    if (plan.wants_replan(state.step, timer.timed_steps())) {
      const bool news = plan.replan(state.step, timer.steps_per_second(), clock.elapsed());
      console.replanned(plan, state.step, timer.steps_per_second(), news);
    }
    // Log, validate, save.
    const bool last = plan.is_last(state.step);
    if (state.step % options.log_every == 0 || last) {
      const double cells_per_second = timer.steps_per_second() * static_cast<double>(options.batch_size);
      record->log_training(state.step, order.lr, window.close(), cells_per_second, clock.elapsed());
    }
    if (state.step % options.eval_every == 0 || last) {
      val = stepper.validate();
      record->log_validation(state, val);
    }
    if (state.step % options.checkpoint_every == 0 && !last) record->save(as_of(state, plan, clock));
    console.update(state.step, loss, val);
  }
  TrainResult result;
  result.precision = precision_name(precision);
  result.steps = state.step;
  if (!root) return result;

  const double train_loss = window.close();
  if (clock.out_of_time() && !plan.done(state.step)) {  // the budget ended before the plan did
    plan.end_at(state.step);
    val = stepper.validate();
    record->log_validation(state, val);
  }
  record->save(as_of(state, plan, clock));
  console.finish(train_loss, val);
  return finished_result(result, plan, state, train_loss, val, clock, timer, options.batch_size);
}

}  // namespace lingshu
