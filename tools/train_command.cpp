// `tessera train` and `tessera demo`: train the reference models (nn/models.h) on the embedded
// data sets, with progress, metrics, checkpoints and resume.
#include "train_command.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <iomanip>
#include <iostream>
#include <sstream>

#include "cli_args.h"
#include "tessera/backend.h"
#include "tessera/data/idx.h"
#include "tessera/data/progress.h"
#include "tessera/data/text.h"
#include "tessera/runtime.h"
#include "tessera/tessera.h"
#include "tessera/train/checkpoint.h"
#include "tessera/train/loop.h"

namespace tessera::cli {

namespace nn = tessera::nn;

namespace {

struct TrainJob {
  std::string model = "cnn";
  int64_t epochs = 1;
  int64_t batch_size = 0;  // 0: the model's default
  double lr = 1e-3;
  std::string optimizer;  // "": the model's default
  int64_t threads = 0;    // 0: leave as configured
  uint64_t seed = 0;
  int64_t max_steps = -1;  // per epoch
  int64_t workers = 1;
  int64_t eval_batches = -1;
  bool eval = true;
  double clip = 0.0;
  std::string data_dir;
  std::string checkpoint;
  int64_t save_every = 0;
  std::string resume;
  std::string metrics;
  int64_t time_steps = 0;
  bool profile = false;  // with --time-steps --mode graph: time the compiled step per op
  Mode mode = Mode::Eager;
  data::ProgressMode progress = data::ProgressMode::Auto;
};

const std::set<std::string> kTrainFlags = {"model",   "epochs",     "batch-size", "lr",      "optimizer",
                                           "threads", "seed",       "max-steps",  "workers", "eval-batches",
                                           "clip",    "data",       "checkpoint", "resume",  "save-every",
                                           "metrics", "time-steps", "progress",   "mode"};

TrainJob parse_job(const std::string& cmd, int argc, char** argv, TrainJob job) {
  Args a(cmd, argc, argv, kTrainFlags, {"no-eval", "profile"});
  job.model = a.str("model", job.model);
  if (job.model != "mlp" && job.model != "cnn" && job.model != "gpt")
    raise<ValueError>(cmd.c_str(), "--model must be mlp, cnn or gpt, got '" + job.model + "'");
  job.epochs = a.integer("epochs", job.epochs);
  job.batch_size = a.integer("batch-size", job.batch_size);
  job.lr = a.real("lr", job.lr);
  job.optimizer = a.str("optimizer", job.optimizer);
  job.threads = a.integer("threads", job.threads);
  job.seed = static_cast<uint64_t>(a.integer("seed", static_cast<int64_t>(job.seed)));
  job.max_steps = a.integer("max-steps", job.max_steps);
  job.workers = a.integer("workers", job.workers);
  job.eval_batches = a.integer("eval-batches", job.eval_batches);
  job.eval = !a.has("no-eval");
  job.clip = a.real("clip", job.clip);
  job.data_dir = a.str("data", job.data_dir);
  job.checkpoint = a.str("checkpoint", job.checkpoint);
  job.save_every = a.integer("save-every", job.save_every);
  job.resume = a.str("resume", job.resume);
  job.metrics = a.str("metrics", job.metrics);
  job.time_steps = a.integer("time-steps", job.time_steps);
  job.profile = a.has("profile");
  std::string mode = a.str("mode", "eager");
  if (mode != "eager" && mode != "graph")
    raise<ValueError>(cmd.c_str(), "--mode must be eager or graph, got '" + mode + "'");
  job.mode = mode == "graph" ? Mode::Graph : Mode::Eager;
  std::string p = a.str("progress", "auto");
  if (p == "auto")
    job.progress = data::ProgressMode::Auto;
  else if (p == "bar")
    job.progress = data::ProgressMode::Bar;
  else if (p == "plain")
    job.progress = data::ProgressMode::Plain;
  else if (p == "off")
    job.progress = data::ProgressMode::Off;
  else
    raise<ValueError>(cmd.c_str(), "--progress must be auto, bar, plain or off, got '" + p + "'");
  if (job.epochs < 1) raise<ValueError>(cmd.c_str(), "--epochs must be >= 1");
  if (job.batch_size < 0 || job.workers < 0 || job.threads < 0)
    raise<ValueError>(cmd.c_str(), "--batch-size, --workers and --threads must be >= 0");
  if (!(job.lr > 0)) raise<ValueError>(cmd.c_str(), "--lr must be positive");
  // Model defaults: the configurations.
  if (job.batch_size == 0) job.batch_size = job.model == "mlp" ? 128 : job.model == "cnn" ? 64 : 16;
  if (job.optimizer.empty()) job.optimizer = job.model == "gpt" ? "adamw" : "adam";
  if (job.model == "gpt") {
    if (job.max_steps < 0) job.max_steps = 200;  // an "epoch" over every byte offset would be ~100k steps
    if (job.eval_batches < 0) job.eval_batches = 20;
    if (job.clip == 0.0) job.clip = 1.0;
  }
  return job;
}

struct Setup {
  std::shared_ptr<nn::Module> model;
  std::shared_ptr<const data::Dataset> train, test;
};

Setup make_setup(const TrainJob& job) {
  Setup s;
  if (job.model == "gpt") {
    nn::models::GptConfig cfg;
    s.model = std::make_shared<nn::models::Gpt>(cfg);
    auto corpus = job.data_dir.empty() ? data::ByteCorpus::fortunes(cfg.context)
                                       : data::ByteCorpus::from_file(job.data_dir, cfg.context);
    auto [tr, va] = corpus->split(0.9);
    s.train = tr;
    s.test = va;
  } else {
    std::string dir = job.data_dir.empty() ? data::FashionMnist::default_dir() : job.data_dir;
    s.train = data::FashionMnist::train(dir);
    s.test = data::FashionMnist::test(dir);
    if (job.model == "mlp")
      s.model = std::make_shared<nn::models::Mlp>();
    else
      s.model = std::make_shared<nn::models::Cnn>();
  }
  return s;
}

std::unique_ptr<optim::Optimizer> make_optimizer(const TrainJob& job, nn::Module& model) {
  if (job.optimizer == "adam")
    return std::make_unique<optim::Adam>(model.parameters(), optim::AdamOptions{.lr = job.lr});
  if (job.optimizer == "adamw")
    return std::make_unique<optim::AdamW>(model.parameters(), optim::AdamWOptions{.lr = job.lr});
  if (job.optimizer == "sgd")
    return std::make_unique<optim::SGD>(model.parameters(), optim::SGDOptions{.lr = job.lr, .momentum = 0.9});
  if (job.optimizer == "rmsprop")
    return std::make_unique<optim::RMSprop>(model.parameters(), optim::RMSpropOptions{.lr = job.lr});
  raise<ValueError>("train", "--optimizer must be adam, adamw, sgd or rmsprop, got '" + job.optimizer + "'");
}

std::string fmt(double v, int prec) {
  std::ostringstream os;
  os << std::fixed << std::setprecision(prec) << v;
  return os.str();
}

// Per-step wall time of train_step on the first batches, after warm-up (for side-by-side
// checks by hand; `tessera bench` has the side-by-side comparison with other frameworks).
int time_steps(const TrainJob& job, Setup& s, optim::Optimizer& opt, std::ostream& out) {
  data::DataLoader loader(s.train, {.batch_size = job.batch_size,
                                    .shuffle = true,
                                    .seed = job.seed,
                                    .drop_last = true,
                                    .num_workers = static_cast<int>(job.workers)});
  const int warmup = 3;
  std::vector<double> ms;
  Allocator& alloc = backend_for(Device{}).allocator(0);
  int64_t peak = 0;  // most bytes a step allocated beyond what was live before it
  int64_t i = 0;
  for (auto& batch : loader) {
    const int64_t before = alloc.stats().bytes_in_use;
    alloc.reset_peak();
    auto t0 = std::chrono::steady_clock::now();
    train::train_step(*s.model, opt, batch, job.clip);
    double t = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    if (i++ >= warmup) {
      ms.push_back(t);
      peak = std::max(peak, alloc.stats().peak_bytes_in_use - before);
    }
    if (static_cast<int64_t>(ms.size()) >= job.time_steps) break;
  }
  std::vector<double> sorted = ms;
  std::sort(sorted.begin(), sorted.end());
  out << "step_ms model=" << job.model << " mode=" << (job.mode == Mode::Graph ? "graph" : "eager")
      << " batch=" << job.batch_size << " threads=" << get_num_threads() << " steps=" << ms.size()
      << " median=" << fmt(sorted[sorted.size() / 2], 3) << " min=" << fmt(sorted.front(), 3)
      << " max=" << fmt(sorted.back(), 3) << " step_peak_mb=" << fmt(static_cast<double>(peak) / 1048576.0, 2);
  const CompiledFunction* step = train::graph_step(*s.model, opt);
  if (step) {
    const CompileStats& st = step->stats();
    out << " planned_peak_mb=" << fmt(static_cast<double>(st.planned_peak_bytes) / 1048576.0, 2)
        << " naive_mb=" << fmt(static_cast<double>(st.naive_bytes) / 1048576.0, 2) << " traces=" << st.traces
        << " fused_nodes=" << st.nodes_fused << " inplace=" << st.inplace_buffers;
  }
  out << " all=";
  for (size_t k = 0; k < ms.size(); ++k) out << (k ? "," : "") << fmt(ms[k], 3);
  out << "\n";
  if (step && job.profile) out << format_profile(step->profile());
  return 0;
}

}  // namespace

TrainResult run_training(int argc, char** argv, const TrainDefaults& defaults, std::ostream& out) {
  TrainJob base;
  base.model = defaults.model;
  base.checkpoint = defaults.checkpoint;
  TrainJob job = parse_job(defaults.command, argc, argv, base);
  if (job.threads > 0) set_num_threads(static_cast<int>(job.threads));
  set_mode(job.mode);
  set_graph_profiling(job.profile);
  manual_seed(job.seed);  // model initialization and dropout

  Setup s = make_setup(job);
  auto opt = make_optimizer(job, *s.model);
  TrainResult result;
  if (job.time_steps > 0) {
    time_steps(job, s, *opt, out);
    return result;
  }
  out << "tessera " << defaults.command << ": model " << job.model << " (" << s.model->num_parameters()
      << " parameters), " << job.optimizer << " lr " << job.lr << ", batch " << job.batch_size << ", " << job.epochs
      << " epoch(s), " << get_num_threads() << " threads, seed " << job.seed << "\n"
      << "data: " << s.train->size() << " training / " << s.test->size() << " test examples\n";

  data::DataLoader loader(
      s.train,
      {.batch_size = job.batch_size, .shuffle = true, .seed = job.seed, .num_workers = static_cast<int>(job.workers)});
  data::DataLoader test_loader(s.test, {.batch_size = 256, .num_workers = static_cast<int>(job.workers)});
  int64_t step = 0;
  if (!job.resume.empty()) {
    train::CheckpointState st = train::load_checkpoint(job.resume, *s.model, opt.get());
    step = st.step;
    loader.set_position(st.position);
    out << "resumed from " << job.resume << " at step " << step << " (epoch " << st.position.epoch + 1 << ", batch "
        << st.position.batch << ")\n";
  }
  std::unique_ptr<data::MetricsLogger> metrics;
  // Step rows and epoch rows share one file: a CSV gets every column up front.
  if (!job.metrics.empty())
    metrics = std::make_unique<data::MetricsLogger>(
        job.metrics, std::vector<std::string>{"step", "loss", "epoch", "train_loss", "train_acc", "seconds",
                                              "test_loss", "test_acc"});
  auto save = [&] {
    if (job.checkpoint.empty()) return;
    train::save_checkpoint(job.checkpoint, *s.model, opt.get(), {.step = step, .position = loader.position()});
  };

  while (loader.epoch() < job.epochs) {
    int64_t epoch = loader.epoch();
    train::EpochOptions eo;
    eo.desc = "epoch " + std::to_string(epoch + 1) + "/" + std::to_string(job.epochs);
    eo.max_steps = job.max_steps;
    eo.clip_norm = job.clip;
    eo.progress.mode = job.progress;
    eo.on_step = [&](const train::StepStats& st) {
      ++step;
      if (metrics) metrics->log({{"step", double(step)}, {"loss", st.loss}});
      if (job.save_every > 0 && step % job.save_every == 0) save();
    };
    train::EpochStats tr = train::train_epoch(*s.model, *opt, loader, eo);
    if (loader.epoch() == epoch) loader.set_epoch(epoch + 1);  // max_steps ended the epoch early
    save();
    std::string line = "epoch " + std::to_string(epoch + 1) + "/" + std::to_string(job.epochs) + ": train loss " +
                       fmt(tr.loss, 4) + " acc " + fmt(100 * tr.accuracy, 2) + "% | " + fmt(tr.seconds, 1) + " s (" +
                       fmt(tr.seconds > 0 ? tr.samples / tr.seconds : 0, 0) + " samples/s)";
    result.train_loss = tr.loss;
    data::Metrics rec = {
        {"epoch", double(epoch + 1)}, {"train_loss", tr.loss}, {"train_acc", tr.accuracy}, {"seconds", tr.seconds}};
    if (job.eval) {
      train::EpochStats te = train::evaluate(*s.model, test_loader, job.eval_batches);
      line += " | test loss " + fmt(te.loss, 4) + " acc " + fmt(100 * te.accuracy, 2) + "%";
      result.test_accuracy = te.accuracy;
      result.test_loss = te.loss;
      rec.push_back({"test_loss", te.loss});
      rec.push_back({"test_acc", te.accuracy});
    }
    if (metrics) metrics->log(rec);
    out << line << "\n" << std::flush;
  }
  if (!job.checkpoint.empty()) out << "checkpoint: " << job.checkpoint << " (step " << step << ")\n";
  if (job.model == "gpt") {
    auto* gpt = static_cast<nn::models::Gpt*>(s.model.get());
    gpt->eval();
    std::string prompt = "The ";
    std::vector<int64_t> ids(prompt.begin(), prompt.end());
    Tensor seq = gpt->generate(tensor<int64_t>(ids, {1, static_cast<int64_t>(ids.size())}), 60);
    std::string text;
    for (int64_t v : seq.to_vector<int64_t>()) text += (v >= 32 && v < 127) || v == '\n' ? char(v) : '?';
    out << "sample (greedy): " << text << "\n";
  }
  result.model = s.model;
  result.test_set = s.test;
  result.checkpoint = job.checkpoint;
  return result;
}

int demo(int argc, char** argv, const std::string& checkpoint) {
  std::ostream& out = std::cout;
  TrainDefaults d{.command = "demo", .model = "cnn", .checkpoint = checkpoint};
  TrainResult r = run_training(argc, argv, d, out);
  if (!r.model) return 0;  // --time-steps
  if (r.checkpoint.empty()) raise<ValueError>("demo", "--checkpoint must name a file");
  // Reload the checkpoint into a freshly initialized model and evaluate it again.
  manual_seed(12345);
  std::shared_ptr<nn::Module> fresh;
  if (std::dynamic_pointer_cast<nn::models::Mlp>(r.model))
    fresh = std::make_shared<nn::models::Mlp>();
  else if (std::dynamic_pointer_cast<nn::models::Cnn>(r.model))
    fresh = std::make_shared<nn::models::Cnn>();
  else
    fresh = std::make_shared<nn::models::Gpt>();
  train::CheckpointState st = train::load_checkpoint(r.checkpoint, *fresh, nullptr);
  data::DataLoader test_loader(r.test_set, {.batch_size = 256});
  train::EpochStats te = train::evaluate(*fresh, test_loader);
  bool same = te.accuracy == r.test_accuracy;
  out << "reloaded " << r.checkpoint << " (step " << st.step << ") into a fresh model: test acc "
      << fmt(100 * te.accuracy, 2) << "% (" << (same ? "same as before saving" : "DIFFERENT from before saving")
      << ")\n";
  return same ? 0 : 1;
}

int train_command(int argc, char** argv) {
  TrainDefaults d{.command = "train", .model = "cnn", .checkpoint = ""};
  run_training(argc, argv, d, std::cout);
  return 0;
}

const char* train_usage() {
  return "  train     train a reference model: --model mlp|cnn|gpt (cnn) --epochs N (1) --batch-size N\n"
         "            (mlp 128, cnn 64, gpt 16) --lr X (1e-3) --optimizer adam|adamw|sgd|rmsprop\n"
         "            --threads N --seed N (0) --workers N (1) --max-steps N (per epoch; gpt 200)\n"
         "            --eval-batches N --no-eval --clip X --data DIR|FILE --checkpoint FILE --save-every N\n"
         "            --resume FILE --metrics FILE.csv|.jsonl --progress auto|bar|plain|off\n"
         "            --time-steps N (time N training steps: per-step milliseconds and peak memory)\n"
         "            --mode eager|graph (graph: each training step runs as one compiled plan)\n"
         "            --profile (with --time-steps and --mode graph: time per op and input shapes)\n"
         "  demo      train the CNN on Fashion-MNIST for 1 epoch, evaluate, save a checkpoint, reload it\n"
         "            and check the reloaded model's accuracy (same flags; --checkpoint FILE)\n";
}

}  // namespace tessera::cli
