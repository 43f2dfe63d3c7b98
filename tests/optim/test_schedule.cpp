// Learning-rate schedules against PyTorch's lr_scheduler (values from tests/optim/make_reference.py).
#include <gtest/gtest.h>

#include "tessera/ops.h"
#include "tessera/optim/schedule.h"

namespace ts = tessera;
namespace optim = tessera::optim;

namespace {

template <typename S, typename O>
std::vector<double> lrs(O o, int n, double base = 0.1) {
  ts::Tensor w = ts::zeros({1});
  optim::SGD opt({{"w", &w}}, {.lr = base});
  S s(opt, o);
  std::vector<double> out = {opt.lr()};
  for (int i = 0; i < n; ++i) {
    s.step();
    out.push_back(opt.lr());
  }
  return out;
}

void expect_near(const std::vector<double>& got, const std::vector<double>& want) {
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < got.size(); ++i) EXPECT_NEAR(got[i], want[i], 1e-12) << "step " << i;
}

}  // namespace

TEST(Schedule, StepLRMatchesTorch) {
  // torch.optim.lr_scheduler.StepLR(SGD(lr=0.1), step_size=3, gamma=0.5), lr before each step
  expect_near(lrs<optim::StepLR>(optim::StepLROptions{.step_size = 3, .gamma = 0.5}, 12),
              {0.1, 0.1, 0.1, 0.05, 0.05, 0.05, 0.025, 0.025, 0.025, 0.0125, 0.0125, 0.0125, 0.00625});
}

TEST(Schedule, LinearWarmupMatchesTorchLinearLR) {
  // torch.optim.lr_scheduler.LinearLR(SGD(lr=0.1), start_factor=0.25, total_iters=4)
  expect_near(lrs<optim::LinearWarmupLR>(optim::LinearWarmupOptions{.warmup_steps = 4, .start_factor = 0.25}, 12),
              {0.025, 0.04375, 0.0625, 0.08125, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1});
}

TEST(Schedule, CosineWithoutWarmupMatchesTorchCosineAnnealing) {
  // torch.optim.lr_scheduler.CosineAnnealingLR(SGD(lr=0.1), T_max=10, eta_min=0.01), steps 0..10
  expect_near(lrs<optim::WarmupCosineLR>(optim::WarmupCosineOptions{.total_steps = 10, .min_lr = 0.01}, 10),
              {0.10000000000000001, 0.097797543233281922, 0.091405764746872634, 0.08145033635316129,
               0.068905764746872641, 0.055000000000000007, 0.041094235253127373, 0.028549663646838717,
               0.01859423525312737, 0.012202456766718092, 0.01});
}

TEST(Schedule, WarmupCosineMatchesLambdaLR) {
  // torch LambdaLR(SGD(lr=0.1), f) with f = transformers' cosine-with-warmup formula, warmup 3,
  // total 10, floor 0.01 (make_reference.py hf_cosine); holds min_lr after total_steps.
  expect_near(
      lrs<optim::WarmupCosineLR>(optim::WarmupCosineOptions{.warmup_steps = 3, .total_steps = 10, .min_lr = 0.01}, 12),
      {0, 0.033333333333333333, 0.066666666666666666, 0.10000000000000001, 0.095543599055608858, 0.083057041083643021,
       0.065013442028034149, 0.044986557971965858, 0.026942958916356997, 0.014456400944391146, 0.010000000000000002,
       0.010000000000000002, 0.010000000000000002});
}

TEST(Schedule, StateRoundTrip) {
  ts::Tensor w = ts::zeros({1});
  optim::SGD opt({{"w", &w}}, {.lr = 0.1});
  optim::StepLR s(opt, {.step_size = 2, .gamma = 0.5});
  for (int i = 0; i < 5; ++i) s.step();
  auto st = s.state_dict();
  EXPECT_EQ(st.at("last_step").item<int64_t>(), 5);

  ts::Tensor w2 = ts::zeros({1});
  optim::SGD opt2({{"w", &w2}}, {.lr = 0.7});  // a different lr: base_lr comes from the state
  optim::StepLR s2(opt2, {.step_size = 2, .gamma = 0.5});
  s2.load_state_dict(st);
  EXPECT_EQ(s2.last_step(), 5);
  EXPECT_DOUBLE_EQ(opt2.lr(), opt.lr());
  s.step();
  s2.step();
  EXPECT_DOUBLE_EQ(opt2.lr(), opt.lr());
  EXPECT_DOUBLE_EQ(opt2.lr(), 0.0125);
  st.erase("base_lr");
  EXPECT_THROW(s2.load_state_dict(st), ts::ValueError);
}

TEST(Schedule, RejectsBadOptions) {
  ts::Tensor w = ts::zeros({1});
  optim::SGD opt({{"w", &w}}, {.lr = 0.1});
  EXPECT_THROW(optim::StepLR(opt, {.step_size = 0}), ts::ValueError);
  EXPECT_THROW(optim::WarmupCosineLR(opt, {.warmup_steps = 5, .total_steps = 5}), ts::ValueError);
  EXPECT_THROW(optim::LinearWarmupLR(opt, {.warmup_steps = 2, .start_factor = 1.5}), ts::ValueError);
}
