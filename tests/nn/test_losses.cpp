// Losses against formulas evaluated here in double precision.
#include <gtest/gtest.h>

#include <cmath>

#include "harness/gradcheck.h"
#include "tessera/tessera.h"

namespace ts = tessera;
namespace nn = tessera::nn;

namespace {
std::vector<double> values(const ts::Tensor& t) { return t.to(ts::DType::Float64).contiguous().to_vector<double>(); }

// -log softmax(row)[k] and the mean of -log softmax(row).
std::pair<double, double> nll_row(const std::vector<double>& x, int row, int c, int k) {
  double mx = -INFINITY, z = 0, sumlp = 0;
  for (int j = 0; j < c; ++j) mx = std::max(mx, x[row * c + j]);
  for (int j = 0; j < c; ++j) z += std::exp(x[row * c + j] - mx);
  double lz = mx + std::log(z);
  for (int j = 0; j < c; ++j) sumlp += x[row * c + j] - lz;
  return {lz - x[row * c + k], -sumlp / c};
}
}  // namespace

TEST(CrossEntropy, MatchesFormulaWithSmoothingAndIgnoreIndex) {
  ts::Generator g(1);
  ts::Tensor logits = ts::randn({4, 5}, g, ts::DType::Float64);
  ts::Tensor targets = ts::tensor<int64_t>({2, -100, 0, 4}, {4});
  auto x = values(logits);
  std::vector<int> t{2, -100, 0, 4};
  for (double s : {0.0, 0.1}) {
    double total = 0;
    int n = 0;
    for (int r = 0; r < 4; ++r) {
      if (t[r] == -100) continue;
      auto [nll, smooth] = nll_row(x, r, 5, t[r]);
      total += (1 - s) * nll + s * smooth;
      ++n;
    }
    nn::CrossEntropyOptions opt;
    opt.label_smoothing = s;
    EXPECT_NEAR(nn::cross_entropy(logits, targets, opt).item<double>(), total / n, 1e-12) << s;
    opt.reduction = nn::Reduction::Sum;
    EXPECT_NEAR(nn::cross_entropy(logits, targets, opt).item<double>(), total, 1e-12) << s;
    opt.reduction = nn::Reduction::None;
    auto per = values(nn::cross_entropy(logits, targets, opt));
    EXPECT_EQ(per[1], 0.0);
  }
  EXPECT_NEAR(nn::nll_loss(ts::log_softmax(logits, 1), targets).item<double>(),
              nn::cross_entropy(logits, targets).item<double>(), 1e-12);
}

TEST(CrossEntropy, SpatialClassAxisIsAxisOne) {
  ts::Generator g(2);
  ts::Tensor logits = ts::randn({2, 3, 4}, g);  // [N, C, T]
  ts::Tensor targets = ts::tensor<int64_t>({0, 1, 2, 1, 2, 2, 0, 1}, {2, 4});
  ts::Tensor flat = logits.permute({0, 2, 1}).reshape({8, 3});
  EXPECT_NEAR(nn::cross_entropy(logits, targets).item<float>(),
              nn::cross_entropy(flat, targets.reshape({8})).item<float>(), 1e-6);
}

TEST(CrossEntropy, RejectsBadTargets) {
  ts::Tensor logits = ts::zeros({2, 3});
  EXPECT_THROW(nn::cross_entropy(logits, ts::tensor<int64_t>({0, 3}, {2})), ts::IndexError);
  EXPECT_THROW(nn::cross_entropy(logits, ts::tensor<int64_t>({0, 1, 2}, {3})), ts::ShapeError);
  EXPECT_THROW(nn::cross_entropy(logits, ts::zeros({2})), ts::DTypeError);
  nn::CrossEntropyOptions bad;
  bad.label_smoothing = 1.5;
  EXPECT_THROW(nn::cross_entropy(logits, ts::tensor<int64_t>({0, 1}, {2}), bad), ts::ValueError);
}

TEST(CrossEntropy, GradientIsSoftmaxMinusOneHot) {
  ts::Generator g(3);
  ts::Tensor logits = ts::randn({3, 4}, g, ts::DType::Float64);
  ts::Tensor targets = ts::tensor<int64_t>({1, 3, 0}, {3});
  ts::Tensor gl = ts::grad([&](const ts::Tensor& z) { return nn::cross_entropy(z, targets); })(logits);
  ts::Tensor want = (ts::softmax(logits, 1) - ts::one_hot(targets, 4, ts::DType::Float64)) / 3.0;
  EXPECT_TRUE(ts::allclose(gl, want, 1e-10, 1e-12));
}

TEST(Losses, RegressionLossesMatchFormulas) {
  ts::Tensor a = ts::tensor<double>({0.5, -2.0, 3.0, 0.1}, {4});
  ts::Tensor b = ts::tensor<double>({0.0, 1.0, 3.5, -0.1}, {4});
  // d = 0.5, -3, -0.5, 0.2
  EXPECT_NEAR(nn::mse_loss(a, b).item<double>(), (0.25 + 9 + 0.25 + 0.04) / 4, 1e-12);
  EXPECT_NEAR(nn::l1_loss(a, b, nn::Reduction::Sum).item<double>(), 0.5 + 3 + 0.5 + 0.2, 1e-12);
  EXPECT_NEAR(nn::smooth_l1_loss(a, b).item<double>(), (0.125 + 2.5 + 0.125 + 0.02) / 4, 1e-12);
  EXPECT_NEAR(nn::smooth_l1_loss(a, b, nn::Reduction::Mean, 0.0).item<double>(), 4.2 / 4, 1e-12);
  EXPECT_THROW(nn::smooth_l1_loss(a, b, nn::Reduction::Mean, -1.0), ts::ValueError);
}

TEST(Losses, BinaryCrossEntropyWithLogitsIsStableAndMatchesFormula) {
  ts::Tensor x = ts::tensor<double>({-1.5, 0.0, 2.0, 800.0, -800.0}, {5});
  ts::Tensor t = ts::tensor<double>({0.0, 1.0, 0.3, 1.0, 0.0}, {5});
  auto per = values(nn::binary_cross_entropy_with_logits(x, t, nn::Reduction::None));
  auto sig = [](double v) { return 1.0 / (1.0 + std::exp(-v)); };
  double xs[3] = {-1.5, 0.0, 2.0}, ts_[3] = {0.0, 1.0, 0.3};
  for (int i = 0; i < 3; ++i)
    EXPECT_NEAR(per[i], -(ts_[i] * std::log(sig(xs[i])) + (1 - ts_[i]) * std::log(1 - sig(xs[i]))), 1e-12);
  EXPECT_NEAR(per[3], 0.0, 1e-12);  // no overflow at large |x|
  EXPECT_NEAR(per[4], 0.0, 1e-12);
  ts::Tensor pw = ts::tensor<double>({2.0}, {1});
  auto pwl = values(nn::binary_cross_entropy_with_logits(x, t, nn::Reduction::None, pw));
  EXPECT_NEAR(pwl[2], -(2.0 * 0.3 * std::log(sig(2.0)) + 0.7 * std::log(1 - sig(2.0))), 1e-12);
  EXPECT_THROW(nn::binary_cross_entropy_with_logits(x, ts::zeros({4}, ts::DType::Float64)), ts::ShapeError);
}
