// End-to-end training on Fashion-MNIST (Debian's dataset-fashion-mnist): short runs reach a bar,
// runs are deterministic for a fixed seed and thread count, and training resumed from a checkpoint
// reproduces the uninterrupted run's losses exactly.
#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <numeric>

#include "tessera/tessera.h"

namespace ts = tessera;
namespace nn = tessera::nn;
namespace fs = std::filesystem;

namespace {

// The first n examples of a split, as float images [n, 1, 28, 28] and int64 labels.
std::shared_ptr<ts::data::TensorDataset> subset(const std::shared_ptr<ts::data::ImageDataset>& d, int64_t n) {
  std::vector<int64_t> idx(static_cast<size_t>(n));
  std::iota(idx.begin(), idx.end(), 0);
  ts::data::Batch b = d->get_batch(idx);
  return std::make_shared<ts::data::TensorDataset>(b.inputs, b.targets);
}

struct Data {
  std::shared_ptr<ts::data::TensorDataset> train, test;
};
const Data& fashion() {
  static Data d{subset(ts::data::FashionMnist::train(), 12800), subset(ts::data::FashionMnist::test(), 2000)};
  return d;
}

// A small model with dropout, so that resuming also depends on the restored random state.
struct DropoutMlp : nn::Module {
  nn::Linear fc1{784, 64}, fc2{64, 10};
  nn::Dropout drop{0.2};
  DropoutMlp() { register_modules({{"fc1", fc1}, {"drop", drop}, {"fc2", fc2}}); }
  ts::Tensor forward(const ts::Tensor& x) override { return fc2(drop(ts::relu(fc1(ts::flatten(x, 1))))); }
};

std::vector<double> run_steps(nn::Module& model, ts::optim::Optimizer& opt, ts::data::DataLoader& loader,
                              int64_t steps) {
  std::vector<double> losses;
  ts::train::EpochOptions eo;
  eo.max_steps = steps;
  eo.progress.mode = ts::data::ProgressMode::Off;
  eo.on_step = [&](const ts::train::StepStats& s) { losses.push_back(s.loss); };
  ts::train::train_epoch(model, opt, loader, eo);
  return losses;
}

// n steps, continuing into the next epochs as needed.
std::vector<double> run_n(nn::Module& model, ts::optim::Optimizer& opt, ts::data::DataLoader& loader, int64_t n) {
  std::vector<double> all;
  while (static_cast<int64_t>(all.size()) < n) {
    std::vector<double> l = run_steps(model, opt, loader, n - static_cast<int64_t>(all.size()));
    all.insert(all.end(), l.begin(), l.end());
  }
  return all;
}

class ThreadsGuard {
 public:
  explicit ThreadsGuard(int n) : saved_(ts::get_num_threads()) { ts::set_num_threads(n); }
  ~ThreadsGuard() { ts::set_num_threads(saved_); }

 private:
  int saved_;
};

}  // namespace

TEST(Training, MlpShortRunReachesTheBarDeterministically) {
  ThreadsGuard threads(2);
  std::vector<double> first;
  for (int run = 0; run < 2; ++run) {
    ts::manual_seed(0);
    nn::models::Mlp model;
    ts::optim::Adam opt(model.parameters(), {.lr = 1e-3});
    ts::data::DataLoader loader(fashion().train, {.batch_size = 128, .shuffle = true, .seed = 0});
    std::vector<double> losses = run_steps(model, opt, loader, 100);  // one pass over 12,800 examples
    ts::data::DataLoader test(fashion().test, {.batch_size = 500});
    ts::train::EpochStats e = ts::train::evaluate(model, test);
    std::printf("[training] mlp, 100 steps of 128: test accuracy %.2f%% (first 2000 test images)\n", 100 * e.accuracy);
    EXPECT_GE(e.accuracy, 0.78) << "run " << run;  // 100 steps of batch 128
    EXPECT_LT(losses.back(), losses.front() * 0.5);
    if (run == 0)
      first = losses;
    else
      EXPECT_EQ(losses, first);  // bitwise identical for the same seed and thread count
  }
}

TEST(Training, CnnShortRunLearns) {
  ThreadsGuard threads(2);
  ts::manual_seed(0);
  nn::models::Cnn model;
  ts::optim::Adam opt(model.parameters(), {.lr = 1e-3});
  ts::data::DataLoader loader(fashion().train, {.batch_size = 64, .shuffle = true, .seed = 0});
  std::vector<double> losses = run_steps(model, opt, loader, 40);
  ts::data::DataLoader test(fashion().test, {.batch_size = 500});
  ts::train::EpochStats e = ts::train::evaluate(model, test, /*max_batches=*/2);
  std::printf("[training] cnn, 40 steps of 64: test accuracy %.2f%% (first 1000 test images)\n", 100 * e.accuracy);
  EXPECT_GE(e.accuracy, 0.55);  // 40 steps of batch 64 (64.8% here; the bar leaves room for other CPUs)
  EXPECT_LT(losses.back(), 1.2);
  EXPECT_GT(losses.front(), 2.0);  // started near ln(10) = 2.30
}

TEST(Training, ResumedFromCheckpointGivesTheSameLossesAsUninterrupted) {
  ThreadsGuard threads(2);
  const int64_t half = 30;
  fs::path dir = fs::temp_directory_path() / ("tessera_resume_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  std::string ckpt = (dir / "ckpt.safetensors").string();
  // Uninterrupted: 2 * half steps crossing an epoch boundary (12,800 / 256 = 50 batches per epoch).
  ts::data::DataLoaderOptions lo{.batch_size = 256, .shuffle = true, .seed = 3};
  ts::manual_seed(1);
  DropoutMlp a;
  ts::optim::AdamW opt_a(a.parameters(), {.lr = 2e-3});
  ts::data::DataLoader la(fashion().train, lo);
  std::vector<double> full = run_n(a, opt_a, la, 2 * half);
  ASSERT_EQ(full.size(), static_cast<size_t>(2 * half));

  // Interrupted: half steps, checkpoint, then a fresh process state (other init, other RNG state).
  ts::manual_seed(1);
  DropoutMlp b;
  ts::optim::AdamW opt_b(b.parameters(), {.lr = 2e-3});
  ts::data::DataLoader lb(fashion().train, lo);
  std::vector<double> part1 = run_n(b, opt_b, lb, half);
  ts::train::save_checkpoint(ckpt, b, &opt_b, {.step = half, .position = lb.position()});

  ts::manual_seed(999);
  DropoutMlp c;
  ts::optim::AdamW opt_c(c.parameters(), {.lr = 2e-3});
  ts::default_generator().advance(1000);
  ts::train::CheckpointState st = ts::train::load_checkpoint(ckpt, c, &opt_c);
  EXPECT_EQ(st.step, half);
  ts::data::DataLoader lc(fashion().train, lo);
  lc.set_position(st.position);
  std::vector<double> part2 = run_n(c, opt_c, lc, half);  // crosses into the second epoch
  std::vector<double> resumed = part1;
  resumed.insert(resumed.end(), part2.begin(), part2.end());
  EXPECT_EQ(resumed, full);  // bitwise: weights, optimizer moments, dropout RNG and data order restored
  EXPECT_TRUE(ts::equal(c.fc2.weight, a.fc2.weight));
  fs::remove_all(dir);
}

TEST(Training, CheckpointRejectsOtherFilesAndMismatchedModels) {
  fs::path dir = fs::temp_directory_path() / ("tessera_ckpt_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  std::string plain = (dir / "plain.safetensors").string(), ckpt = (dir / "c.safetensors").string();
  ts::io::save_safetensors(plain, {{"w", ts::zeros({2})}});
  nn::Linear lin(3, 2);
  EXPECT_THROW(ts::train::load_checkpoint(plain, lin, nullptr), ts::FormatError);
  ts::train::save_checkpoint(ckpt, lin, nullptr, {});
  nn::Linear other(4, 2);
  ts::Tensor before = other.weight;
  EXPECT_THROW(ts::train::load_checkpoint(ckpt, other, nullptr), ts::ShapeError);
  EXPECT_TRUE(other.weight.is_same(before));
  ts::optim::Adam opt(lin.parameters());
  EXPECT_THROW(ts::train::load_checkpoint(ckpt, lin, &opt), ts::FormatError);  // saved without optimizer state
  fs::remove_all(dir);
}
