// Second-order checks: hessian of compositions (tanh of matmul, log_softmax + cross-entropy,
// layer_norm) against central differences of the gradient; grad(grad(f)) of scalar functions
// against closed forms and differences; jacfwd(jacrev(f)) against jacrev(jacrev(f)).
#include <cmath>

#include "harness/gradcheck.h"

namespace ts = tessera;
using namespace tessera::testing;
using ts::Shape;
using ts::Tensor;
using ts::TensorList;

namespace {

TEST(Hessian, TanhOfMatmulMatchesDifferencesOfTheGradient) {
  Tensor x = grad_input({2, 3}, Layout::Transposed, 1, -1, 1);
  Tensor w = grad_input({3, 2}, Layout::Contiguous, 2, -1, 1);
  Tensor c = grad_input({2, 2}, Layout::Contiguous, 3);
  GradFn f = [c](const TensorList& v) { return ts::sum(ts::tanh(ts::matmul(v[0], v[1])) * c); };
  EXPECT_HESSIAN("sum(c * tanh(x @ w)) wrt w", f, {x, w}, 1);
  EXPECT_HESSIAN("sum(c * tanh(x @ w)) wrt x", f, {x, w}, 0);
  // A vector input and a broadcast bias inside.
  GradFn g = [](const TensorList& v) { return ts::sum(ts::tanh(ts::matmul(v[1], v[0]) + v[2])); };
  EXPECT_HESSIAN("sum(tanh(W @ v + b)) wrt v", g,
                 {grad_input({3}, Layout::Sliced, 4), grad_input({2, 3}, Layout::Contiguous, 5),
                  grad_input({2}, Layout::Contiguous, 6)},
                 0);
}

TEST(Hessian, LogSoftmaxCrossEntropyMatchesDifferencesOfTheGradient) {
  Tensor onehot = ts::one_hot(ts::tensor(std::vector<int64_t>{2, 0, 3}, {3}), 4, ts::DType::Float64);
  GradFn ce = [onehot](const TensorList& v) { return -ts::mean(ts::sum(onehot * ts::log_softmax(v[0], -1), {-1})); };
  EXPECT_HESSIAN("cross-entropy wrt logits", ce, {grad_input({3, 4}, Layout::Transposed, 10, -2, 2)});
  // Logits from a linear layer: wrt the weight.
  Tensor x = grad_input({3, 2}, Layout::Contiguous, 11);
  GradFn ce_w = [onehot, x](const TensorList& v) {
    return -ts::mean(ts::sum(onehot * ts::log_softmax(ts::matmul(x, v[0]), -1), {-1}));
  };
  EXPECT_HESSIAN("cross-entropy wrt weight", ce_w, {grad_input({2, 4}, Layout::Sliced, 12)});
  // The Hessian of cross-entropy in the logits is (diag(p) - p p^T) / N per row: check one row exactly.
  Tensor logits = grad_input({1, 4}, Layout::Contiguous, 13);
  Tensor h = ts::hessian(ce)(TensorList{logits});
  std::vector<double> p = ts::softmax(logits, -1).to_vector<double>(), hv = h.to_vector<double>();
  for (size_t i = 0; i < 4; ++i)
    for (size_t j = 0; j < 4; ++j)
      EXPECT_NEAR(hv[i * 4 + j], (i == j ? p[i] : 0.0) - p[i] * p[j], 1e-12) << i << "," << j;
}

TEST(Hessian, LayerNormMatchesDifferencesOfTheGradient) {
  Tensor c = grad_input({2, 4}, Layout::Contiguous, 20);
  GradFn f = [c](const TensorList& v) { return ts::sum(ts::layer_norm(v[0], {4}, v[1], v[2]) * c); };
  TensorList in{grad_input({2, 4}, Layout::Transposed, 21), grad_input({4}, Layout::Contiguous, 22),
                grad_input({4}, Layout::Contiguous, 23)};
  EXPECT_HESSIAN("layer_norm wrt x", f, in, 0);
  EXPECT_HESSIAN("layer_norm wrt weight", f, in, 1);
  GradFn sq = [](const TensorList& v) {
    return ts::sum(ts::layer_norm(v[0], {3}) * ts::layer_norm(v[0], {3})) + ts::sum(ts::layer_norm(v[0], {3}) * v[0]);
  };
  EXPECT_HESSIAN("quadratic in layer_norm", sq, {grad_input({2, 3}, Layout::Sliced, 24)});
  GradFn rms = [c](const TensorList& v) { return ts::sum(ts::tanh(ts::rms_norm(v[0], {4}, v[1])) * c); };
  EXPECT_HESSIAN("rms_norm wrt x", rms,
                 {grad_input({2, 4}, Layout::Contiguous, 25), grad_input({4}, Layout::Contiguous, 26)}, 0);
}

TEST(Hessian, MoreCompositionsMatchDifferencesOfTheGradient) {
  Tensor x = grad_input({2, 3}, Layout::Transposed, 30, 0.5, 1.5);
  EXPECT_HESSIAN("logsumexp", [](const TensorList& v) { return ts::logsumexp(v[0]); }, {x});
  EXPECT_HESSIAN("softmax entropy",
                 [](const TensorList& v) {
                   Tensor p = ts::softmax(v[0], 0);
                   return -ts::sum(p * ts::log(p));
                 },
                 {x});
  EXPECT_HESSIAN("prod", [](const TensorList& v) { return ts::prod(v[0]); }, {x});
  EXPECT_HESSIAN("var", [](const TensorList& v) { return ts::sum(ts::var(v[0], {1})); }, {x});
  EXPECT_HESSIAN("std and sqrt",
                 [](const TensorList& v) { return ts::sum(ts::std(v[0], {0})) * ts::sum(ts::sqrt(v[0])); }, {x});
  EXPECT_HESSIAN("pow and div", [](const TensorList& v) { return ts::sum(ts::pow(v[0], 2.5) / (v[0] + 1.0)); }, {x});
  EXPECT_HESSIAN("gelu silu softplus",
                 [](const TensorList& v) { return ts::sum(ts::gelu(v[0]) * ts::silu(v[0]) + ts::softplus(v[0])); },
                 {x});
  EXPECT_HESSIAN("sigmoid erf", [](const TensorList& v) { return ts::sum(ts::sigmoid(v[0]) * ts::erf(v[0])); }, {x});
  EXPECT_HESSIAN(
      "conv2d",
      [](const TensorList& v) {
        return ts::sum(ts::tanh(ts::conv2d(v[0], v[1], {}, {{1, 1}, {1, 1}, {1, 1}, 1})));
      },
      {grad_input({1, 1, 3, 3}, Layout::Contiguous, 31, -1, 1),
       grad_input({1, 1, 2, 2}, Layout::Contiguous, 32, -1, 1)},
      1);
}

// Scalar functions of a 0-d tensor: grad(grad(f)) against closed forms and differences of grad(f).
TEST(GradOfGrad, ScalarFunctionsMatchClosedForms) {
  struct Case {
    const char* name;
    Tensor (*f)(const Tensor&);
    double (*f2)(double);  // second derivative
  };
  const std::vector<Case> cases{
      {"x^3 sin(x)", [](const Tensor& x) { return ts::pow(x, 3) * ts::sin(x); },
       [](double x) { return 6 * x * std::sin(x) + 6 * x * x * std::cos(x) - x * x * x * std::sin(x); }},
      {"exp(tanh(x))", [](const Tensor& x) { return ts::exp(ts::tanh(x)); },
       [](double x) {
         double t = std::tanh(x), s = 1 - t * t;
         return std::exp(t) * (s * s - 2 * t * s);
       }},
      {"log(1 + x^2)", [](const Tensor& x) { return ts::log(x * x + 1.0); },
       [](double x) { return 2 * (1 - x * x) / ((1 + x * x) * (1 + x * x)); }},
      {"sigmoid", [](const Tensor& x) { return ts::sigmoid(x); },
       [](double x) {
         double s = 1 / (1 + std::exp(-x));
         return s * (1 - s) * (1 - 2 * s);
       }},
      {"sqrt(x) / x", [](const Tensor& x) { return ts::sqrt(x) / x; },
       [](double x) { return 0.75 * std::pow(x, -2.5); }},
  };
  for (const Case& c : cases) {
    for (double x0 : {0.3, 0.9, 1.7}) {
      SCOPED_TRACE(std::string(c.name) + " at " + std::to_string(x0));
      Tensor x = ts::scalar_tensor(x0, ts::DType::Float64);
      auto g = ts::grad(c.f);
      auto gg = ts::grad([g](const Tensor& v) mutable { return g(v); });
      EXPECT_NEAR(gg(x).item<double>(), c.f2(x0), 1e-12 * std::max(1.0, std::abs(c.f2(x0))));
      double h = 1e-6;
      double fd = (g(ts::scalar_tensor(x0 + h, ts::DType::Float64)).item<double>() -
                   g(ts::scalar_tensor(x0 - h, ts::DType::Float64)).item<double>()) /
                  (2 * h);
      EXPECT_NEAR(gg(x).item<double>(), fd, 1e-6 * std::max(1.0, std::abs(fd)));
    }
  }
}

TEST(GradOfGrad, ThirdOrderOfAPolynomial) {
  // f = x^4 + 2x^3: f''' = 24x + 12.
  auto f = [](const Tensor& x) { return ts::pow(x, 4) + 2.0 * ts::pow(x, 3); };
  auto g1 = ts::grad(f);
  auto g2 = ts::grad([g1](const Tensor& x) mutable { return g1(x); });
  auto g3 = ts::grad([g2](const Tensor& x) mutable { return g2(x); });
  EXPECT_NEAR(g3(ts::scalar_tensor(0.7, ts::DType::Float64)).item<double>(), 24 * 0.7 + 12, 1e-10);
}

TEST(GradOfGrad, GradientOfAVectorFunctionsGradientNorm) {
  // grad of sum(grad(f)(x)^2) checked numerically, for f(x) = sum(tanh(x) * x) over a 2-d x.
  GradFn h = [](const TensorList& v) {
    auto g = ts::grad([](const Tensor& x) { return ts::sum(ts::tanh(x) * x); });
    Tensor gx = g(v[0]);
    return ts::sum(gx * gx);
  };
  EXPECT_GRADS("sum(grad(f)^2)", h, {grad_input({2, 3}, Layout::Transposed, 40)});
}

TEST(JacobianNesting, JacfwdOfJacrevAgreesWithJacrevOfJacrev) {
  struct Case {
    const char* name;
    Tensor (*f)(const Tensor&);
    Shape shape;
  };
  const std::vector<Case> cases{
      {"softmax", [](const Tensor& x) { return ts::softmax(x, -1); }, {4}},
      {"tanh(A x) from one vector",
       [](const Tensor& x) {
         return ts::tanh(ts::matmul(ts::reshape(ts::slice(x, 0, 0, 4), {2, 2}), ts::slice(x, 0, 4, 6)));
       },
       {6}},
      {"x * sum(x^2)", [](const Tensor& x) { return x * ts::sum(x * x); }, {3}},
      {"layer_norm", [](const Tensor& x) { return ts::layer_norm(x, {3}); }, {2, 3}},
  };
  uint64_t seed = 50;
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    Tensor x = grad_input(c.shape, Layout::Contiguous, seed++, -1, 1);
    auto jr = [f = c.f](const Tensor& v) { return ts::jacrev(f)(v); };
    Tensor a = ts::jacfwd(jr)(x);
    Tensor b = ts::jacrev(jr)(x);
    Shape want = ts::jacrev(c.f)(x).shape();
    for (int64_t d : c.shape) want.push_back(d);
    EXPECT_EQ(a.shape(), want);
    EXPECT_TRUE(grad_close(std::string("jacfwd(jacrev) vs jacrev(jacrev) ") + c.name, a, b, 1e-10));
    // And against jacfwd(jacfwd).
    auto jf = [f = c.f](const Tensor& v) { return ts::jacfwd(f)(v); };
    EXPECT_TRUE(grad_close(std::string("jacfwd(jacfwd) vs jacrev(jacrev) ") + c.name, ts::jacfwd(jf)(x), b, 1e-10));
    // And against central differences of jacrev.
    int64_t n = x.numel();
    Tensor bflat = ts::reshape(b, {-1, n}).contiguous();
    std::vector<double> bv = bflat.to_vector<double>();
    for (int64_t k = 0; k < n; ++k) {
      std::vector<double> jp = jr(perturbed(x, k, 1e-6)).contiguous().to_vector<double>();
      std::vector<double> jm = jr(perturbed(x, k, -1e-6)).contiguous().to_vector<double>();
      for (size_t r = 0; r < jp.size(); ++r) {
        double fd = (jp[r] - jm[r]) / 2e-6;
        EXPECT_NEAR(bv[r * static_cast<size_t>(n) + static_cast<size_t>(k)], fd, 1e-6 * std::max(1.0, std::abs(fd)))
            << c.name << " row " << r << " col " << k;
      }
    }
  }
}

}  // namespace
