// Optimizers against PyTorch trajectories, state save/restore, error handling, clipping.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <functional>
#include <memory>

#include "tessera/io/safetensors.h"
#include "tessera/ops.h"
#include "tessera/optim/optimizer.h"

namespace ts = tessera;
namespace optim = tessera::optim;
using ts::Tensor;
using ts::TensorMap;

namespace {

const std::vector<float> kP0 = {0.5f, -1.25f, 2.0f, 0.0f, 3.5f, -0.75f};
const std::vector<float> kTarget = {1.0f, 0.5f, -1.0f, 2.0f, 0.25f, -3.0f};

// grad = (p - target) * 2, the gradient of sum((p - target)^2): the same as make_reference.py.
TensorMap quad_grad(const Tensor& p) { return {{"w", ts::mul(ts::sub(p, ts::tensor(kTarget, {2, 3})), 2.0)}}; }

using Factory = std::function<std::unique_ptr<optim::Optimizer>(tessera::nn::ParameterList)>;

std::vector<float> run(const Factory& make, int steps) {
  Tensor w = ts::tensor(kP0, {2, 3});
  auto opt = make({{"w", &w}});
  for (int i = 0; i < steps; ++i) opt->step(quad_grad(w));
  EXPECT_EQ(opt->steps(), steps);
  return w.to_vector<float>();
}

struct Case {
  const char* name;
  Factory make;
};

template <typename O, typename Opt>
Factory make(Opt o) {
  return [o](tessera::nn::ParameterList ps) { return std::make_unique<O>(std::move(ps), o); };
}

std::vector<Case> cases() {
  return {
      {"SGD_plain", make<optim::SGD>(optim::SGDOptions{.lr = 0.1})},
      {"SGD_momentum", make<optim::SGD>(optim::SGDOptions{.lr = 0.1, .momentum = 0.9})},
      {"SGD_dampening", make<optim::SGD>(optim::SGDOptions{.lr = 0.1, .momentum = 0.9, .dampening = 0.1})},
      {"SGD_nesterov", make<optim::SGD>(optim::SGDOptions{.lr = 0.1, .momentum = 0.9, .nesterov = true})},
      {"SGD_wd", make<optim::SGD>(optim::SGDOptions{.lr = 0.1, .momentum = 0.5, .weight_decay = 0.1})},
      {"Adam_default", make<optim::Adam>(optim::AdamOptions{.lr = 0.05})},
      {"Adam_wd", make<optim::Adam>(optim::AdamOptions{.lr = 0.05, .weight_decay = 0.1})},
      {"Adam_amsgrad", make<optim::Adam>(optim::AdamOptions{.lr = 0.5, .beta2 = 0.6, .amsgrad = true})},
      {"Adam_betas", make<optim::Adam>(optim::AdamOptions{.lr = 0.05, .beta1 = 0.8, .beta2 = 0.99, .eps = 1e-3})},
      {"AdamW_default", make<optim::AdamW>(optim::AdamWOptions{.lr = 0.05})},
      {"AdamW_wd_amsgrad",
       make<optim::AdamW>(optim::AdamWOptions{.lr = 0.5, .beta2 = 0.6, .weight_decay = 0.1, .amsgrad = true})},
      {"RMSprop_default", make<optim::RMSprop>(optim::RMSpropOptions{})},
      {"RMSprop_momentum", make<optim::RMSprop>(optim::RMSpropOptions{.lr = 0.01, .momentum = 0.9})},
      {"RMSprop_centered", make<optim::RMSprop>(optim::RMSpropOptions{.lr = 0.01, .centered = true})},
      {"RMSprop_all", make<optim::RMSprop>(optim::RMSpropOptions{
                          .lr = 0.01, .alpha = 0.9, .weight_decay = 0.1, .momentum = 0.5, .centered = true})},
  };
}

// Parameters after 5 steps, from tests/optim/make_reference.py (torch 2.13.0+cpu, float32):
// torch.optim.SGD/Adam/AdamW/RMSprop(...) with the options named in cases(), p.grad = (p - target) * 2.
const std::map<std::string, std::vector<float>> kReference = {
    {"SGD_plain", {0.836160004f, -0.073439993f, -0.0169600528f, 1.34464002f, 1.31495988f, -2.26272011f}},
    {"SGD_momentum", {1.29021001f, 1.51573479f, -2.74125981f, 3.16084003f, -1.63636458f, -4.30594492f}},
    {"SGD_dampening", {1.26682138f, 1.43387473f, -2.60092807f, 3.0672853f, -1.48433888f, -4.20069599f}},
    {"SGD_nesterov", {1.20785868f, 1.22750568f, -2.24715257f, 2.8314352f, -1.10108221f, -3.93536448f}},
    {"SGD_wd", {0.959217429f, 0.502277076f, -0.996998131f, 1.93354702f, 0.188800558f, -2.88898659f}},
    {"Adam_default", {0.746018171f, -1.00074041f, 1.75040114f, 0.249366209f, 3.25036716f, -0.999446332f}},
    {"Adam_wd", {0.745320916f, -1.00075257f, 1.75040841f, 0.249329358f, 3.25036573f, -0.999403238f}},
    {"Adam_amsgrad", {1.0663321f, 0.879051685f, -0.404529333f, 2.2149241f, 1.06768441f, -3.02983475f}},
    {"Adam_betas", {0.743210256f, -1.00146914f, 1.75081909f, 0.248731822f, 3.25075245f, -0.998884559f}},
    {"AdamW_default", {0.744556129f, -0.997878551f, 1.74566424f, 0.249117017f, 3.24188948f, -0.99732852f}},
    {"AdamW_wd_amsgrad", {1.0091759f, 0.884028971f, -0.570928097f, 2.0131793f, 0.60596478f, -2.68764925f}},
    {"RMSprop_default", {0.778428972f, -0.93698597f, 1.6820538f, 0.314518422f, 3.18153691f, -1.06567383f}},
    {"RMSprop_momentum", {1.23021388f, -0.347476095f, 1.07573342f, 0.9092623f, 2.57351232f, -1.66437447f}},
    {"RMSprop_centered", {0.781219542f, -0.933057606f, 1.67797351f, 0.318493694f, 3.17744064f, -1.06968474f}},
    {"RMSprop_all", {0.689489186f, -1.04966235f, 1.79824913f, 0.20066072f, 3.29806376f, -0.95095855f}},
};

}  // namespace

TEST(Optim, MatchesPyTorchTrajectories) {
  for (const auto& c : cases()) {
    SCOPED_TRACE(c.name);
    std::vector<float> got = run(c.make, 5);
    const auto& want = kReference.at(c.name);
    ASSERT_EQ(got.size(), want.size());
    for (size_t i = 0; i < got.size(); ++i)
      EXPECT_NEAR(got[i], want[i], 2e-6 * (1.0 + std::abs(want[i]))) << "element " << i;
  }
}

TEST(Optim, AmsgradChangesTheTrajectory) {
  auto plain = run(make<optim::Adam>(optim::AdamOptions{.lr = 0.5, .beta2 = 0.6}), 5);
  auto ams = run(make<optim::Adam>(optim::AdamOptions{.lr = 0.5, .beta2 = 0.6, .amsgrad = true}), 5);
  EXPECT_NE(plain, ams);
}

TEST(Optim, SaveRestoreContinuesBitIdentically) {
  for (const auto& c : cases()) {
    SCOPED_TRACE(c.name);
    std::vector<float> straight = run(c.make, 10);
    Tensor w = ts::tensor(kP0, {2, 3});
    TensorMap saved;
    {
      auto opt = c.make({{"w", &w}});
      for (int i = 0; i < 5; ++i) opt->step(quad_grad(w));
      opt->set_lr(opt->lr());  // no-op; the lr travels in the state
      saved = opt->state_dict();
    }
    EXPECT_EQ(saved.at("step").item<int64_t>(), 5);
    EXPECT_EQ(saved.at("w.step").item<int64_t>(), 5);
    // A fresh optimizer with different lr: load_state_dict restores the lr too.
    auto opt = c.make({{"w", &w}});
    opt->set_lr(123.0);
    opt->load_state_dict(saved);
    EXPECT_EQ(opt->steps(), 5);
    for (int i = 0; i < 5; ++i) opt->step(quad_grad(w));
    EXPECT_EQ(w.to_vector<float>(), straight);  // exact
  }
}

TEST(Optim, StateDictKeys) {
  Tensor a = ts::zeros({2, 2}), b = ts::zeros({3});
  optim::Adam opt({{"fc1.weight", &a}, {"fc1.bias", &b}}, {.amsgrad = true});
  opt.step({{"fc1.weight", ts::ones({2, 2})}});  // fc1.bias has no grad: skipped
  TensorMap s = opt.state_dict();
  std::vector<std::string> keys;
  for (auto& [k, v] : s) keys.push_back(k);
  EXPECT_EQ(keys, (std::vector<std::string>{"fc1.weight.exp_avg", "fc1.weight.exp_avg_sq", "fc1.weight.max_exp_avg_sq",
                                            "fc1.weight.step", "lr", "step"}));
  EXPECT_EQ(b.to_vector<float>(), std::vector<float>(3, 0.0f));
  // First Adam step moves every element by lr (m / sqrt(v) = sign(g) after bias correction).
  for (float v : a.to_vector<float>()) EXPECT_NEAR(v, -1e-3f, 1e-9f);
  EXPECT_EQ(s.at("fc1.weight.exp_avg").shape(), (ts::Shape{2, 2}));
}

TEST(Optim, SkipsParametersWithoutGrad) {
  Tensor a = ts::ones({2}), b = ts::ones({2});
  optim::SGD opt({{"a", &a}, {"b", &b}}, {.lr = 0.5});
  opt.step({{"b", ts::ones({2})}});
  EXPECT_EQ(a.to_vector<float>(), (std::vector<float>{1, 1}));
  EXPECT_EQ(b.to_vector<float>(), (std::vector<float>{0.5f, 0.5f}));
  opt.step({});
  EXPECT_EQ(opt.steps(), 2);
}

TEST(Optim, PerParameterStepCountsLikeTorch) {
  // b receives its first grad at optimizer step 2: its bias correction uses its own count (1),
  // so its first update is exactly -lr * sign(g), as in PyTorch.
  Tensor a = ts::zeros({2}), b = ts::zeros({2});
  optim::Adam opt({{"a", &a}, {"b", &b}}, {.lr = 0.25});
  opt.step({{"a", ts::ones({2})}});
  opt.step({{"a", ts::ones({2})}, {"b", ts::full({2}, -3.0)}});
  for (float v : b.to_vector<float>()) EXPECT_NEAR(v, 0.25f, 1e-6f);
  EXPECT_EQ(opt.state_dict().at("b.step").item<int64_t>(), 1);
  EXPECT_EQ(opt.state_dict().at("a.step").item<int64_t>(), 2);
}

TEST(Optim, RejectsBadGradients) {
  Tensor a = ts::ones({2, 3});
  optim::Adam opt({{"fc1.weight", &a}});
  try {
    opt.step({{"fc1.weight", ts::ones({3, 2})}});
    FAIL() << "no error";
  } catch (const ts::ShapeError& e) {
    std::string m = e.what();
    EXPECT_NE(m.find("fc1.weight"), std::string::npos) << m;
    EXPECT_NE(m.find("[3,2]"), std::string::npos) << m;
    EXPECT_NE(m.find("[2,3]"), std::string::npos) << m;
  }
  EXPECT_THROW(opt.step({{"fc1.weight", ts::ones({2, 3}, ts::DType::Float64)}}), ts::DTypeError);
  try {
    opt.step({{"fc2.weight", ts::ones({2, 3})}});
    FAIL() << "no error";
  } catch (const ts::ValueError& e) {
    EXPECT_NE(std::string(e.what()).find("fc2.weight"), std::string::npos);
  }
  // A failing step changes nothing (the valid entry is not applied either).
  EXPECT_THROW(opt.step({{"fc1.weight", ts::ones({2, 3})}, {"zzz", ts::ones({1})}}), ts::ValueError);
  EXPECT_EQ(a.to_vector<float>(), std::vector<float>(6, 1.0f));
  EXPECT_EQ(opt.steps(), 0);
  EXPECT_TRUE(opt.state_dict().count("fc1.weight.exp_avg") == 0);
}

TEST(Optim, RejectsBadConstruction) {
  Tensor a = ts::ones({2});
  Tensor i = ts::ones({2}, ts::DType::Int64);
  EXPECT_THROW(optim::SGD({{"a", &a}, {"a", &a}}), ts::ValueError);
  EXPECT_THROW(optim::SGD({{"a", nullptr}}), ts::ValueError);
  EXPECT_THROW(optim::SGD({{"i", &i}}), ts::DTypeError);
  EXPECT_THROW(optim::SGD({{"a", &a}}, {.lr = -1}), ts::ValueError);
  EXPECT_THROW(optim::SGD({{"a", &a}}, {.nesterov = true}), ts::ValueError);
  EXPECT_THROW(optim::Adam({{"a", &a}}, {.beta1 = 1.0}), ts::ValueError);
  EXPECT_THROW(optim::RMSprop({{"a", &a}}, {.alpha = -0.5}), ts::ValueError);
}

TEST(Optim, LoadStateDictValidates) {
  Tensor a = ts::ones({2, 3});
  optim::Adam src({{"w", &a}});
  src.step({{"w", ts::ones({2, 3})}});
  TensorMap good = src.state_dict();

  Tensor b = ts::ones({2, 3});
  optim::Adam dst({{"w", &b}});
  auto expect_err = [&](TensorMap s, const char* needle) {
    try {
      dst.load_state_dict(s);
      ADD_FAILURE() << "no error for " << needle;
    } catch (const ts::Error& e) {
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    }
  };
  TensorMap s = good;
  s["w.exp_avg"] = ts::zeros({3, 2});
  expect_err(s, "w.exp_avg");
  s = good;
  s.erase("w.exp_avg_sq");
  expect_err(s, "w.exp_avg_sq");
  s = good;
  s["v.exp_avg"] = ts::zeros({1});
  expect_err(s, "v.exp_avg");
  s = good;
  s.erase("step");
  expect_err(s, "'step'");
  s = good;
  s["step"] = ts::scalar_tensor(1.5);
  expect_err(s, "'step'");
  EXPECT_EQ(dst.steps(), 0);  // unchanged by the failures
  dst.load_state_dict(good);
  EXPECT_EQ(dst.steps(), 1);
  // An AdamW/Adam state does not fit an SGD with momentum.
  optim::SGD sgd({{"w", &b}}, {.momentum = 0.9});
  EXPECT_THROW(sgd.load_state_dict(good), ts::ValueError);
}

TEST(Optim, ClipGradNormMatchesTorch) {
  // torch.nn.utils.clip_grad_norm_([p1, p2], max_norm=2.0) with p1.grad = [3,-4,1],
  // p2.grad = [[0.5,2],[-1.5,0.25]] (make_reference.py): norm 5.70635605, grads below.
  TensorMap g = {{"a", ts::tensor<float>({3.0f, -4.0f, 1.0f})},
                 {"b", ts::tensor<float>({0.5f, 2.0f, -1.5f, 0.25f}, {2, 2})}};
  double n = optim::clip_grad_norm(g, 2.0);
  EXPECT_NEAR(n, 5.70635605, 1e-6);
  std::vector<float> wa = {1.05145895f, -1.40194523f, 0.350486308f};
  std::vector<float> wb = {0.175243154f, 0.700972617f, -0.525729477f, 0.0876215771f};
  auto ga = g["a"].to_vector<float>(), gb = g["b"].to_vector<float>();
  for (size_t i = 0; i < 3; ++i) EXPECT_NEAR(ga[i], wa[i], 1e-6);
  for (size_t i = 0; i < 4; ++i) EXPECT_NEAR(gb[i], wb[i], 1e-6);
  // Below the threshold: unchanged.
  TensorMap h = {{"a", ts::tensor<float>({0.3f, 0.4f})}};
  EXPECT_NEAR(optim::clip_grad_norm(h, 1.0), 0.5, 1e-7);
  EXPECT_EQ(h["a"].to_vector<float>(), (std::vector<float>{0.3f, 0.4f}));
  EXPECT_THROW(optim::clip_grad_norm(h, -1.0), ts::ValueError);
}

TEST(Optim, StateSurvivesASafetensorsFile) {
  // The state goes through a file (mmap-backed tensors on load) and still continues exactly.
  auto make_opt = make<optim::AdamW>(optim::AdamWOptions{.lr = 0.05, .amsgrad = true});
  std::vector<float> straight = run(make_opt, 8);
  std::string path =
      (std::filesystem::temp_directory_path() / ("tessera_optim_state_" + std::to_string(::getpid()))).string();
  Tensor w = ts::tensor(kP0, {2, 3});
  {
    auto opt = make_opt({{"w", &w}});
    for (int i = 0; i < 3; ++i) opt->step(quad_grad(w));
    TensorMap st = opt->state_dict();
    st["param.w"] = w;  // a checkpoint holds both
    ts::io::save_safetensors(path, st);
  }
  auto f = ts::io::load_safetensors(path);
  std::filesystem::remove(path);
  Tensor w2 = f.tensors.at("param.w");
  f.tensors.erase("param.w");
  auto opt = make_opt({{"w", &w2}});
  opt->load_state_dict(f.tensors);
  for (int i = 0; i < 5; ++i) opt->step(quad_grad(w2));
  EXPECT_EQ(w2.to_vector<float>(), straight);
}
