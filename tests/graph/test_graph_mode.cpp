// Graph mode end to end: whole training steps (forward, backward, optimizer update of every
// parameter) compiled into one plan give eager mode's losses over 50 steps for the example
// models; state (parameters, optimizer moments, step counts, learning rate, generator) stays
// current across replays; failed checks leave the state untouched; set_mode switches
// modules and the train loop.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>

#include "tessera/tessera.h"

namespace ts = tessera;
namespace nn = tessera::nn;

namespace {

ts::data::Batch images(int64_t n, int64_t classes, uint64_t seed, ts::Shape shape) {
  ts::Generator g(seed);
  ts::Shape full{n};
  for (int64_t d : shape) full.push_back(d);
  ts::Tensor x = ts::uniform(full, 0.0, 1.0, g);
  ts::Tensor y = ts::cast(ts::floor(ts::uniform({n}, 0.0, static_cast<double>(classes) - 1e-6, g)), ts::DType::Int64);
  return {x, y};
}

ts::data::Batch tokens(int64_t n, int64_t t, uint64_t seed) {
  ts::Generator g(seed);
  ts::Tensor seq = ts::cast(ts::floor(ts::uniform({n, t + 1}, 0.0, 255.999, g)), ts::DType::Int64);
  return {ts::contiguous(ts::slice(seq, 1, 0, t)), ts::contiguous(ts::slice(seq, 1, 1, t + 1))};
}

// Trains `steps` steps on the batches from make_batch(step) and returns the losses.
template <class MakeModel, class MakeOpt, class MakeBatch>
std::vector<double> train(ts::Mode mode, MakeModel make_model, MakeOpt make_opt, MakeBatch make_batch, int steps,
                          double clip = 0.0, std::vector<ts::Tensor>* final_params = nullptr) {
  ts::manual_seed(7);
  auto model = make_model();
  auto opt = make_opt(*model);
  ts::optim::WarmupCosineLR sched(*opt, {.warmup_steps = 5, .total_steps = steps, .min_lr = 1e-5});
  ts::ModeGuard guard(mode);
  std::vector<double> losses;
  for (int s = 0; s < steps; ++s) {
    losses.push_back(ts::train::train_step(*model, *opt, make_batch(s), clip).loss);
    sched.step();
  }
  EXPECT_EQ(opt->steps(), steps);
  if (final_params)
    for (auto& p : model->parameters()) final_params->push_back(*p.value);
  return losses;
}

void expect_same_losses(const std::vector<double>& eager, const std::vector<double>& graph, double tol) {
  ASSERT_EQ(eager.size(), graph.size());
  for (size_t i = 0; i < eager.size(); ++i)
    EXPECT_NEAR(graph[i], eager[i], tol * std::max(1.0, std::abs(eager[i]))) << "step " << i;
  EXPECT_LT(eager.back(), eager.front());  // it trains
}

}  // namespace

TEST(GraphMode, MlpTrainingStepGivesEagerLossesOver50Steps) {
  auto make_model = [] { return std::make_unique<nn::models::Mlp>(64, 32, 16, 10); };
  auto make_opt = [](nn::Module& m) {
    return std::make_unique<ts::optim::Adam>(m.parameters(), ts::optim::AdamOptions{.lr = 3e-3});
  };
  auto batch = [](int s) { return images(32, 10, 100 + static_cast<uint64_t>(s % 4), {64}); };
  std::vector<ts::Tensor> pe, pg;
  auto eager = train(ts::Mode::Eager, make_model, make_opt, batch, 50, 0.0, &pe);
  auto graph = train(ts::Mode::Graph, make_model, make_opt, batch, 50, 0.0, &pg);
  expect_same_losses(eager, graph, 1e-5);
  ASSERT_EQ(pe.size(), pg.size());
  for (size_t i = 0; i < pe.size(); ++i) EXPECT_TRUE(ts::allclose(pg[i], pe[i], 1e-5, 1e-6)) << i;
}

TEST(GraphMode, CnnTrainingStepGivesEagerLossesOver50Steps) {
  auto make_model = [] { return std::make_unique<nn::models::Cnn>(1, 10); };
  auto make_opt = [](nn::Module& m) {
    return std::make_unique<ts::optim::Adam>(m.parameters(), ts::optim::AdamOptions{.lr = 1e-3});
  };
  auto batch = [](int s) { return images(4, 10, 200 + static_cast<uint64_t>(s % 3), {1, 28, 28}); };
  expect_same_losses(train(ts::Mode::Eager, make_model, make_opt, batch, 50),
                     train(ts::Mode::Graph, make_model, make_opt, batch, 50), 1e-5);
}

TEST(GraphMode, GptWithDropoutClippingAndScheduleGivesEagerLossesOver50Steps) {
  nn::models::GptConfig cfg{
      .vocab_size = 256, .context = 16, .d_model = 32, .num_layers = 2, .num_heads = 4, .ff_dim = 64, .dropout = 0.1};
  auto make_model = [&] { return std::make_unique<nn::models::Gpt>(cfg); };
  auto make_opt = [](nn::Module& m) {
    return std::make_unique<ts::optim::AdamW>(m.parameters(), ts::optim::AdamWOptions{.lr = 3e-3, .weight_decay = 0.1});
  };
  auto batch = [](int s) { return tokens(4, 16, 300 + static_cast<uint64_t>(s % 5)); };
  expect_same_losses(train(ts::Mode::Eager, make_model, make_opt, batch, 50, 0.5),
                     train(ts::Mode::Graph, make_model, make_opt, batch, 50, 0.5), 1e-5);
}

TEST(GraphMode, SgdAndRmspropStepsMatchEager) {
  auto make_model = [] { return std::make_unique<nn::models::Mlp>(16, 8, 8, 4); };
  auto batch = [](int s) { return images(8, 4, 400 + static_cast<uint64_t>(s % 2), {16}); };
  auto sgd = [](nn::Module& m) {
    return std::make_unique<ts::optim::SGD>(m.parameters(),
                                            ts::optim::SGDOptions{.lr = 0.3, .momentum = 0.9, .nesterov = true});
  };
  auto rms = [](nn::Module& m) {
    return std::make_unique<ts::optim::RMSprop>(
        m.parameters(), ts::optim::RMSpropOptions{.lr = 1e-2, .momentum = 0.5, .centered = true});
  };
  expect_same_losses(train(ts::Mode::Eager, make_model, sgd, batch, 12),
                     train(ts::Mode::Graph, make_model, sgd, batch, 12), 1e-5);
  expect_same_losses(train(ts::Mode::Eager, make_model, rms, batch, 12),
                     train(ts::Mode::Graph, make_model, rms, batch, 12), 1e-5);
}

TEST(GraphMode, CompiledStepUpdatesStateAndRetracesOnlyWhenStateChangesShape) {
  ts::manual_seed(1);
  nn::models::Mlp model(8, 8, 8, 3);
  ts::optim::Adam opt(model.parameters(), {.lr = 1e-2});
  auto step = ts::compile([&](const ts::TensorList& b) {
    auto [loss, grads] = nn::value_and_grad(model, [&] { return nn::cross_entropy(model(b[0]), b[1]); })();
    opt.step(grads);
    return ts::TensorList{loss};
  });
  auto b = images(6, 3, 5, {8});
  ts::Tensor w0 = model.fc1.weight;
  for (int i = 0; i < 5; ++i) step({b.inputs, b.targets});
  // Step 1 has no moments yet (Adam's first-step formula), steps 2.. share one plan.
  EXPECT_EQ(step.stats().traces, 2);
  EXPECT_EQ(step.stats().cache_hits, 3);
  EXPECT_EQ(opt.steps(), 5);
  EXPECT_EQ(step.stats().state_inputs, 6 + 12);   // 6 parameters, 12 moments
  EXPECT_EQ(step.stats().state_outputs, 6 + 12);  // all rebound
  EXPECT_FALSE(ts::equal(model.fc1.weight, w0));
  EXPECT_EQ(opt.state_dict().at("fc1.weight.step").item<int64_t>(), 5);
  // The cached plan writes Adam's update into the parameters' own buffers (donated state).
  const float* before = model.fc1.weight.data<float>();
  step({b.inputs, b.targets});
  EXPECT_EQ(model.fc1.weight.data<float>(), before);
  EXPECT_GT(step.stats().inplace_buffers, 0);
  // Another batch size: a new input signature.
  auto b2 = images(4, 3, 6, {8});
  step({b2.inputs, b2.targets});
  EXPECT_EQ(step.stats().traces, 3);
}

TEST(GraphMode, FailedCheckInACompiledStepLeavesModelAndOptimizerUntouched) {
  ts::manual_seed(2);
  nn::models::Mlp model(8, 8, 8, 3);
  ts::optim::Adam opt(model.parameters(), {.lr = 1e-2});
  ts::ModeGuard guard(ts::Mode::Graph);
  auto good = images(6, 3, 5, {8});
  ts::train::train_step(model, opt, good);
  ts::train::train_step(model, opt, good);
  ts::train::train_step(model, opt, good);  // a replay
  ts::TensorMap before = model.state_dict();
  ts::TensorMap opt_before = opt.state_dict();
  ts::data::Batch bad{good.inputs, ts::full({6}, 7, ts::DType::Int64)};  // class 7 of 3
  try {
    ts::train::train_step(model, opt, bad);
    FAIL() << "expected IndexError";
  } catch (const ts::IndexError& e) {
    EXPECT_NE(std::string(e.what()).find("[cross_entropy] target class out of range [0, 3)"), std::string::npos)
        << e.what();
  }
  for (auto& [k, v] : model.state_dict()) EXPECT_TRUE(ts::equal(v, before.at(k))) << k;
  for (auto& [k, v] : opt.state_dict()) EXPECT_TRUE(ts::equal(v, opt_before.at(k))) << k;
  EXPECT_EQ(opt.steps(), 3);
  ts::train::train_step(model, opt, good);  // and it goes on
  EXPECT_EQ(opt.steps(), 4);
}

TEST(GraphMode, RandomDrawsAdvanceAtEveryCall) {
  auto f = [](const ts::TensorList& in) {
    return ts::TensorList{ts::dropout(in[0], 0.5, ts::default_generator(), true)};
  };
  auto c = ts::compile(f);
  ts::Tensor x = ts::ones({64});
  ts::manual_seed(3);
  std::vector<ts::Tensor> want;
  for (int i = 0; i < 3; ++i) want.push_back(f({x})[0]);
  ts::manual_seed(3);
  for (int i = 0; i < 3; ++i) EXPECT_TRUE(ts::equal(c({x})[0], want[static_cast<size_t>(i)])) << "call " << i;
  EXPECT_FALSE(ts::equal(want[0], want[1]));
  EXPECT_EQ(c.stats().traces, 1);
  ts::manual_seed(3);  // reseeding between calls is honoured too
  EXPECT_TRUE(ts::equal(c({x})[0], want[0]));
}

TEST(GraphMode, HostReadAfterAStateUpdateFallsBackWithoutDoubleStepping) {
  ts::manual_seed(4);
  nn::models::Mlp model(8, 8, 8, 3);
  ts::optim::SGD opt(model.parameters(), {.lr = 0.1});
  auto b = images(6, 3, 5, {8});
  auto step = ts::compile([&](const ts::TensorList& in) {
    auto [loss, grads] = nn::value_and_grad(model, [&] { return nn::cross_entropy(model(in[0]), in[1]); })();
    opt.step(grads);
    if (loss.item<double>() > 1e9) return ts::TensorList{loss * 0.0};  // reads data: not traceable
    return ts::TensorList{loss};
  });
  nn::models::Mlp twin(8, 8, 8, 3);
  twin.load_state_dict(model.state_dict());
  ts::optim::SGD twin_opt(twin.parameters(), {.lr = 0.1});
  for (int i = 0; i < 3; ++i) {
    ts::Tensor l = step({b.inputs, b.targets})[0];
    auto [want, grads] = nn::value_and_grad(twin, [&] { return nn::cross_entropy(twin(b.inputs), b.targets); })();
    twin_opt.step(grads);
    EXPECT_TRUE(ts::equal(l, want));
  }
  EXPECT_EQ(opt.steps(), 3);
  EXPECT_EQ(step.stats().eager_fallbacks, 3);
  EXPECT_TRUE(ts::equal(model.fc1.weight, twin.fc1.weight));
}

TEST(GraphMode, SetModeCompilesModuleCallsAndTrainingModeRetraces) {
  ts::manual_seed(5);
  nn::models::Mlp model(8, 8, 8, 3);
  ts::Tensor x = images(5, 3, 9, {8}).inputs;
  ts::Tensor want = model(x);
  EXPECT_EQ(ts::get_mode(), ts::Mode::Eager);
  auto dir = std::filesystem::temp_directory_path() / ("ts_graph_mode_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  ts::set_graph_dump_dir(dir.string());
  {
    ts::ModeGuard guard(ts::Mode::Graph);
    EXPECT_EQ(ts::get_mode(), ts::Mode::Graph);
    EXPECT_TRUE(ts::equal(model(x), want));
    EXPECT_TRUE(ts::equal(model(x), want));
    model.eval();
    EXPECT_TRUE(ts::equal(model(x), want));
    model.train();
  }
  ts::set_graph_dump_dir("");
  EXPECT_EQ(ts::get_mode(), ts::Mode::Eager);
  // Two traces of the module's plan (training mode, then eval mode), each dumped before the passes.
  EXPECT_TRUE(std::filesystem::exists(dir / "1-0-traced.txt"));
  EXPECT_TRUE(std::filesystem::exists(dir / "2-0-traced.txt"));
  EXPECT_FALSE(std::filesystem::exists(dir / "3-0-traced.txt"));
  std::filesystem::remove_all(dir);
}
