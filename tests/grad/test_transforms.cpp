// The transforms themselves: argument handling, nesting, control flow, custom rules, errors.
// Per-op derivative checks live in test_grad_*.cpp (numerical gradient checks).
#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "autodiff/rules.h"
#include "harness/harness.h"
#include "tessera/autodiff.h"
#include "tessera/tessera.h"

namespace ts = tessera;
using ts::Tensor;
using ts::TensorList;

namespace {

Tensor vec(std::vector<double> v) {
  return ts::from_blob(v.data(), {static_cast<int64_t>(v.size())}, ts::DType::Float64);
}
double at(const Tensor& t, int64_t i) { return t.to_vector<double>()[static_cast<size_t>(i)]; }

}  // namespace

TEST(AutodiffRules, EveryPrimitiveIsCovered) {
  for (int i = 0; i < ts::kNumOps; ++i) {
    auto op = static_cast<ts::OpId>(i);
    const auto& r = ts::autodiff::rule_for(op);
    EXPECT_TRUE(r.nondiff || (r.vjp && r.jvp)) << ts::op_name(op) << " has neither derivative rules nor a nondiff mark";
  }
}

TEST(Grad, OfSumOfSquaresIsTwiceTheInput) {
  Tensor x = vec({1, -2, 3});
  Tensor g = ts::grad([](const Tensor& v) { return ts::sum(v * v); })(x);
  EXPECT_EQ(g.to_vector<double>(), (std::vector<double>{2, -4, 6}));
}

TEST(Grad, MatchesTheApiExample) {
  // d/dx sum(tanh(x) * x) = tanh(x) + x (1 - tanh^2 x)
  Tensor x = vec({0.3, -1.2});
  auto f = [](const Tensor& v) { return ts::sum(ts::tanh(v) * v); };
  Tensor g = ts::grad(f)(x);
  for (int i = 0; i < 2; ++i) {
    double v = at(x, i), th = std::tanh(v);
    EXPECT_NEAR(at(g, i), th + v * (1 - th * th), 1e-12);
  }
  // Second derivative through grad of grad: d/dx sum(f'(x)) = f''(x) = 2 (1 - th^2) - 2 x th (1 - th^2)
  Tensor gg = ts::grad([&](const Tensor& v) { return ts::sum(ts::grad(f)(v)); })(x);
  for (int i = 0; i < 2; ++i) {
    double v = at(x, i), th = std::tanh(v), s = 1 - th * th;
    EXPECT_NEAR(at(gg, i), 2 * s - 2 * v * th * s, 1e-12);
  }
}

TEST(Grad, ThirdOrderOfAPolynomial) {
  // f = x^4: f''' = 24 x
  auto f = [](const Tensor& v) { return ts::sum(v * v * v * v); };
  auto d1 = [&](const Tensor& v) { return ts::sum(ts::grad(f)(v)); };
  auto d2 = [&](const Tensor& v) { return ts::sum(ts::grad(d1)(v)); };
  Tensor x = vec({0.5, 2.0});
  Tensor d3 = ts::grad(d2)(x);
  EXPECT_NEAR(at(d3, 0), 12.0, 1e-9);
  EXPECT_NEAR(at(d3, 1), 48.0, 1e-9);
}

TEST(Grad, SelectsArgumentsByArgnums) {
  auto f = [](const Tensor& a, const Tensor& b) { return ts::sum(a * b * b); };
  Tensor a = vec({1, 2}), b = vec({3, 4});
  Tensor gb = ts::grad(f, 1)(a, b);  // 2 a b
  EXPECT_EQ(gb.to_vector<double>(), (std::vector<double>{6, 16}));
  TensorList both = ts::grad(f, {1, 0})(a, b);
  ASSERT_EQ(both.size(), 2u);
  EXPECT_EQ(both[0].to_vector<double>(), (std::vector<double>{6, 16}));
  EXPECT_EQ(both[1].to_vector<double>(), (std::vector<double>{9, 16}));
  auto [ga, gb2] = ts::grad<0, 1>(f)(a, b);
  EXPECT_EQ(ga.to_vector<double>(), (std::vector<double>{9, 16}));
  EXPECT_EQ(gb2.to_vector<double>(), (std::vector<double>{6, 16}));
}

TEST(Grad, OfANamedParameterMapReturnsAMap) {
  ts::TensorMap params{{"w", vec({2, 3})}, {"b", vec({1})}};
  Tensor x = vec({1, -1});
  auto f = [&](const ts::TensorMap& p) { return ts::sum(p.at("w") * x) + ts::sum(p.at("b") * p.at("b")); };
  ts::TensorMap g = ts::grad(f)(params);
  ASSERT_EQ(g.size(), 2u);
  EXPECT_EQ(g.at("w").to_vector<double>(), (std::vector<double>{1, -1}));
  EXPECT_EQ(g.at("b").to_vector<double>(), (std::vector<double>{2}));
}

TEST(ValueAndGrad, ReturnsValueAuxAndGradient) {
  Tensor x = vec({1, 2, 3});
  auto f = [](const Tensor& v) {
    Tensor s = ts::sum(v * v);
    return std::make_pair(s, ts::max(v));  // aux: any tensor tree
  };
  auto [value_aux, g] = ts::value_and_grad(f)(x);
  EXPECT_DOUBLE_EQ(value_aux.first.item<double>(), 14.0);
  EXPECT_DOUBLE_EQ(value_aux.second.item<double>(), 3.0);
  EXPECT_EQ(g.to_vector<double>(), (std::vector<double>{2, 4, 6}));
  // Results are plain tensors once the transform has finished: using them later records nothing.
  Tensor later = ts::grad([&](const Tensor& v) { return ts::sum(v * value_aux.first); })(x);
  EXPECT_EQ(later.to_vector<double>(), (std::vector<double>{14, 14, 14}));
}

TEST(ValueAndGrad, NonTensorArgumentsPassThrough) {
  auto f = [](const Tensor& v, double scale, int power) {
    Tensor r = v;
    for (int i = 1; i < power; ++i) r = r * v;
    return ts::sum(r) * scale;
  };
  auto [v, g] = ts::value_and_grad(f)(vec({2.0}), 0.5, 3);
  EXPECT_DOUBLE_EQ(v.item<double>(), 4.0);
  EXPECT_DOUBLE_EQ(g.item<double>(), 6.0);  // 0.5 * 3 x^2
}

TEST(Vjp, PullbackCanBeCalledRepeatedlyAndGivesOneCotangentPerPrimal) {
  auto f = [](const Tensor& a, const Tensor& b) { return a * b; };
  Tensor a = vec({1, 2}), b = vec({3, 5});
  auto [y, pullback] = ts::vjp(f, a, b);
  EXPECT_EQ(y.to_vector<double>(), (std::vector<double>{3, 10}));
  for (int rep = 0; rep < 2; ++rep) {
    auto [ga, gb] = pullback(vec({1, 10}));
    EXPECT_EQ(ga.to_vector<double>(), (std::vector<double>{3, 50}));
    EXPECT_EQ(gb.to_vector<double>(), (std::vector<double>{1, 20}));
  }
}

TEST(Vjp, RejectsCotangentsOfTheWrongShapeOrDtype) {
  auto [y, pullback] = ts::vjp([](const Tensor& v) { return v * 2.0; }, vec({1, 2}));
  ts::testing::expect_error<ts::ShapeError>([&] { pullback(vec({1, 2, 3})); }, {"[vjp]", "[3]", "[2]"});
  ts::testing::expect_error<ts::DTypeError>([&] { pullback(ts::ones({2}, ts::DType::Float32)); }, {"[vjp]", "float32"});
}

TEST(Vjp, UnusedInputGetsZerosAndConstantOutputGetsNoError) {
  auto f = [](const Tensor& a, const Tensor& b) {
    (void)b;
    return a * 3.0;
  };
  auto [y, pb] = ts::vjp(f, vec({1}), vec({1, 2}));
  auto [ga, gb] = pb(vec({1}));
  EXPECT_EQ(ga.to_vector<double>(), (std::vector<double>{3}));
  EXPECT_EQ(gb.to_vector<double>(), (std::vector<double>{0, 0}));
  // An output that does not depend on the input at all.
  Tensor g = ts::grad([](const Tensor& v) { return ts::sum(ts::ones_like(v)); })(vec({4, 5}));
  EXPECT_EQ(g.to_vector<double>(), (std::vector<double>{0, 0}));
}

TEST(Jvp, DirectionalDerivativeOfTheApiExample) {
  Tensor x = vec({0.5, -1.0});
  auto f = [](const Tensor& v) { return ts::sum(ts::tanh(v) * v); };
  auto [y, t] = ts::jvp(f, {x}, {ts::ones_like(x)});
  Tensor g = ts::grad(f)(x);
  EXPECT_NEAR(t.item<double>(), at(g, 0) + at(g, 1), 1e-12);
  EXPECT_NEAR(y.item<double>(), std::tanh(0.5) * 0.5 + std::tanh(-1.0) * -1.0, 1e-12);
}

TEST(Jvp, RejectsMismatchedTangents) {
  auto f = [](const Tensor& v) { return v; };
  ts::testing::expect_error<ts::ShapeError>([&] { ts::jvp(f, {vec({1, 2})}, {vec({1})}); }, {"[jvp]", "[1]", "[2]"});
  ts::testing::expect_error<ts::DTypeError>([&] { ts::jvp(f, {vec({1})}, {ts::ones({1})}); },
                                            {"[jvp]", "float32", "float64"});
  ts::testing::expect_error<ts::ValueError>([&] { ts::jvp(f, {vec({1})}, {}); }, {"[jvp]", "1 primals", "0 tangents"});
}

TEST(Jacobian, ReverseAndForwardAgreeOnAMatrixFunction) {
  ts::Generator gen(3);
  Tensor w = ts::randn({3, 4}, gen, ts::DType::Float64);
  Tensor x = ts::randn({4, 2}, gen, ts::DType::Float64);
  auto f = [&](const Tensor& v) { return ts::tanh(ts::matmul(w, v)); };
  Tensor jr = ts::jacrev(f)(x), jf = ts::jacfwd(f)(x);
  EXPECT_EQ(jr.shape(), (ts::Shape{3, 2, 4, 2}));
  EXPECT_TRUE(ts::allclose(jr, jf, 1e-12, 1e-12));
  // Entry check: d y[i,j] / d x[k,l] = (1 - y[i,j]^2) w[i,k] [j == l]
  Tensor y = f(x);
  auto J = jr.to_vector<double>(), Y = y.to_vector<double>(), W = w.to_vector<double>();
  for (int i = 0; i < 3; ++i)
    for (int j = 0; j < 2; ++j)
      for (int k = 0; k < 4; ++k)
        for (int l = 0; l < 2; ++l) {
          double want = j == l ? (1 - Y[i * 2 + j] * Y[i * 2 + j]) * W[i * 4 + k] : 0.0;
          EXPECT_NEAR(J[((i * 2 + j) * 4 + k) * 2 + l], want, 1e-12);
        }
}

TEST(Hessian, OfAQuadraticFormIsTheSymmetrizedMatrix) {
  Tensor a = ts::from_blob(std::vector<double>{1, 2, 0, 3}.data(), {2, 2}, ts::DType::Float64);
  auto f = [&](const Tensor& v) { return ts::sum(v * ts::matmul(a, v)); };
  Tensor h = ts::hessian(f)(vec({0.3, -0.7}));
  EXPECT_EQ(h.to_vector<double>(), (std::vector<double>{2, 2, 2, 6}));
  // Both orders of composition agree.
  Tensor h2 = ts::jacrev([&](const Tensor& v) { return ts::grad(f)(v); })(vec({0.3, -0.7}));
  EXPECT_TRUE(ts::allclose(h, h2));
}

TEST(Nesting, InnerTransformTreatsOuterVariablesAsConstants) {
  // d/dy [ d/dx (x * y) at x = 1 ] = d/dy y = 1 (no perturbation confusion)
  auto outer = [](const Tensor& y) {
    auto inner = [&](const Tensor& x) { return ts::sum(x * y); };
    return ts::sum(ts::grad(inner)(vec({1.0})));
  };
  Tensor g = ts::grad(outer)(vec({5.0}));
  EXPECT_DOUBLE_EQ(g.item<double>(), 1.0);
  // jvp inside grad: d/dx [ d/dt f(x + t) at t = 0 ] = f''(x) for f = sin.
  auto outer2 = [](const Tensor& x) {
    auto [y, t] = ts::jvp([](const Tensor& v) { return ts::sum(ts::sin(v)); }, {x}, {ts::ones_like(x)});
    return t;
  };
  Tensor g2 = ts::grad(outer2)(vec({0.4}));
  EXPECT_NEAR(g2.item<double>(), -std::sin(0.4), 1e-14);
}

TEST(ControlFlow, LoopWhoseTripCountIsReadFromATensor) {
  // Repeatedly halves x until its sum is below 1: the number of steps depends on the value.
  auto f = [](const Tensor& x) {
    Tensor y = x;
    int steps = 0;
    while (ts::sum(y).item<double>() >= 1.0) {
      y = y * 0.5;
      ++steps;
    }
    return ts::sum(y * y) * static_cast<double>(steps);
  };
  Tensor x = vec({3.0, 2.0});  // sum 5 -> 2.5 -> 1.25 -> 0.625: 3 steps, y = x / 8
  Tensor g = ts::grad(f)(x);
  // f = 3 * sum((x/8)^2) -> df/dx = 6 x / 64
  EXPECT_NEAR(at(g, 0), 6 * 3.0 / 64, 1e-14);
  EXPECT_NEAR(at(g, 1), 6 * 2.0 / 64, 1e-14);
  Tensor x2 = vec({0.25, 0.25});  // already below 1: zero steps, f = 0
  EXPECT_EQ(ts::grad(f)(x2).to_vector<double>(), (std::vector<double>{0, 0}));
  // A branch on a tensor value.
  auto relu_like = [](const Tensor& v) { return v.item<double>() > 0 ? ts::sum(v * v) : ts::sum(v * -1.0); };
  EXPECT_DOUBLE_EQ(ts::grad(relu_like)(vec({2.0})).item<double>(), 4.0);
  EXPECT_DOUBLE_EQ(ts::grad(relu_like)(vec({-2.0})).item<double>(), -1.0);
}

TEST(StopGradient, BlocksTheGradientOfItsArgument) {
  auto f = [](const Tensor& x) { return ts::sum(x * ts::stop_gradient(x)); };
  Tensor g = ts::grad(f)(vec({3.0}));
  EXPECT_DOUBLE_EQ(g.item<double>(), 3.0);  // not 2x
}

TEST(CustomVjp, UsesTheHandWrittenBackwardAndSupportsSecondOrder) {
  int backward_calls = 0;
  // f(x) = x^3 with backward written as 3 x^2 g.
  ts::CustomVjp cube{
      "cube", [](const TensorList& in) { return TensorList{in[0] * in[0] * in[0]}; },
      [](const TensorList& in) { return std::make_pair(TensorList{in[0] * in[0] * in[0]}, TensorList{in[0]}); },
      [&](const TensorList& res, const TensorList& ct) {
        ++backward_calls;
        return TensorList{ct[0] * res[0] * res[0] * 3.0};
      }};
  auto f = [&](const Tensor& x) { return ts::sum(ts::custom_vjp_call(cube, {x})[0]); };
  Tensor x = vec({2.0, -1.0});
  EXPECT_EQ(ts::grad(f)(x).to_vector<double>(), (std::vector<double>{12, 3}));
  EXPECT_EQ(backward_calls, 1);
  // Second order: the backward is made of Tessera ops, so it differentiates: 6x.
  Tensor gg = ts::grad([&](const Tensor& v) { return ts::sum(ts::grad(f)(v)); })(x);
  EXPECT_EQ(gg.to_vector<double>(), (std::vector<double>{12, -6}));
  // Forward mode differentiates the primal function.
  auto [y, t] = ts::jvp(f, {x}, {ts::ones_like(x)});
  EXPECT_DOUBLE_EQ(t.item<double>(), 15.0);
}

TEST(CustomVjp, WrongNumberOfGradientsIsAClearError) {
  ts::CustomVjp bad{"bad_fn", [](const TensorList& in) { return in; },
                    [](const TensorList& in) { return std::make_pair(in, TensorList{}); },
                    [](const TensorList&, const TensorList&) { return TensorList{}; }};
  ts::testing::expect_error<ts::ValueError>(
      [&] { ts::grad([&](const Tensor& x) { return ts::sum(ts::custom_vjp_call(bad, {x})[0]); })(vec({1})); },
      {"[bad_fn]", "0 gradients", "1 inputs"});
}

TEST(NonDifferentiable, OutputsGiveZeroGradientNotErrors) {
  Tensor x = vec({0.5, 2.5, -1.5});
  auto f = [](const Tensor& v) {
    Tensor idx = ts::argmax(v);
    Tensor cmp = ts::cast(ts::gt(v, 0.0), ts::DType::Float64);
    return ts::sum(ts::floor(v) + cmp) + ts::cast(idx, ts::DType::Float64) + ts::sum(ts::sign(v));
  };
  EXPECT_EQ(ts::grad(f)(x).to_vector<double>(), (std::vector<double>{0, 0, 0}));
}

TEST(Errors, GradNeedsAFloatScalarOutputAndFloatInputs) {
  ts::testing::expect_error<ts::ValueError>(
      [] {
        ts::grad([](const Tensor& v) { return v * 2.0; })(vec({1, 2}));
      },
      {"[value_and_grad]", "scalar", "[2]"});
  ts::testing::expect_error<ts::DTypeError>([] { ts::grad([](const Tensor& v) { return ts::sum(v); })(ts::arange(3)); },
                                            {"int64"});
  ts::testing::expect_error<ts::IndexError>([] { ts::grad([](const Tensor& v) { return ts::sum(v); }, 2)(vec({1})); },
                                            {"[grad]", "argnum 2"});
}

TEST(Errors, ExceptionInsideTheFunctionLeavesNoTransformActive) {
  auto f = [](const Tensor& v) -> Tensor {
    ts::matmul(v, ts::ones({3, 3}, ts::DType::Float64));  // [2] x [3,3]: throws
    return v;
  };
  EXPECT_THROW(ts::grad(f)(vec({1, 2})), ts::ShapeError);
  // Eager ops still work and a new transform starts cleanly.
  EXPECT_EQ(ts::grad([](const Tensor& v) { return ts::sum(v * v); })(vec({1})).item<double>(), 2.0);
}

TEST(CustomVjp, LogsumexpUsesItsFusedRuleToAnyOrder) {
  Tensor x = ts::from_blob(std::vector<double>{0.1, -0.4, 1.3, 2.0, 0.0, -1.0}.data(), {2, 3}, ts::DType::Float64);
  auto f = [](const Tensor& v) { return ts::sum(ts::logsumexp(v, {1})); };
  Tensor g = ts::grad(f)(x);
  EXPECT_TRUE(ts::allclose(g, ts::softmax(x, 1), 1e-14, 1e-14));
  // Hessian of logsumexp over one row: diag(p) - p p^T.
  Tensor row = ts::slice(x, 0, 0, 1).reshape({3});
  Tensor h = ts::hessian([](const Tensor& v) { return ts::logsumexp(v); })(row);
  auto p = ts::softmax(row, 0).to_vector<double>();
  auto H = h.to_vector<double>();
  for (int i = 0; i < 3; ++i)
    for (int j = 0; j < 3; ++j) EXPECT_NEAR(H[i * 3 + j], (i == j ? p[i] : 0.0) - p[i] * p[j], 1e-13);
  // keepdims and a -inf entry: the gradient there is exactly zero, not NaN.
  double inf = std::numeric_limits<double>::infinity();
  Tensor y = ts::from_blob(std::vector<double>{0.0, -inf}.data(), {1, 2}, ts::DType::Float64);
  Tensor gy = ts::grad([](const Tensor& v) { return ts::sum(ts::logsumexp(v, {1}, true)); })(y);
  EXPECT_EQ(gy.to_vector<double>(), (std::vector<double>{1.0, 0.0}));
}

TEST(ValueAndGrad, PassesNonTensorArgumentsByReferenceWithoutCopying) {
  struct Scale {
    Tensor w;
    explicit Scale(Tensor t) : w(std::move(t)) {}
    Scale(const Scale&) = delete;
    Scale& operator=(const Scale&) = delete;
  };
  Scale s(vec({2.0, 3.0}));
  auto f = [](const Tensor& x, const Scale& m) { return ts::sum(x * m.w); };
  auto [v, g] = ts::value_and_grad(f)(vec({1.0, 1.0}), s);
  EXPECT_DOUBLE_EQ(v.item<double>(), 5.0);
  EXPECT_EQ(g.to_vector<double>(), (std::vector<double>{2, 3}));
  EXPECT_EQ(ts::grad(f, 0)(vec({1.0, 1.0}), s).to_vector<double>(), (std::vector<double>{2, 3}));
}
