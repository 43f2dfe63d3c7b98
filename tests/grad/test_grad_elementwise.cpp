// Gradient checks (vjp, jvp, jacrev == jacfwd) of the elementwise ops against central
// differences in float64: unary and binary ops over every layout, broadcasting pairs, scalar
// operands, where, clamp, cast, copy and dropout; piecewise-constant and boolean ops must give
// no gradient. gelu, silu and softplus are in test_grad_nn.cpp; mean/var/std/logsumexp in
// test_grad_reduce.cpp.
#include <cmath>

#include "harness/gradcheck.h"

namespace ts = tessera;
using namespace tessera::testing;
using ts::Shape;
using ts::Tensor;
using ts::TensorList;

namespace {

const std::vector<Shape>& small_shapes() {
  static const std::vector<Shape> v{{}, {1}, {5}, {2, 3}, {3, 1, 2}};
  return v;
}

struct UnaryCase {
  const char* name;
  Tensor (*fn)(const Tensor&);
  double lo, hi;
  bool kink_at_zero;  // move inputs away from 0 (abs, relu)
};

std::ostream& operator<<(std::ostream& os, const UnaryCase& c) { return os << c.name; }

const std::vector<UnaryCase>& unary_cases() {
  static const std::vector<UnaryCase> v{
      {"neg", [](const Tensor& x) { return ts::neg(x); }, -2, 2, false},
      {"abs", [](const Tensor& x) { return ts::abs(x); }, -2, 2, true},
      {"exp", [](const Tensor& x) { return ts::exp(x); }, -2, 2, false},
      {"expm1", [](const Tensor& x) { return ts::expm1(x); }, -2, 2, false},
      {"log", [](const Tensor& x) { return ts::log(x); }, 0.5, 2.5, false},
      {"log1p", [](const Tensor& x) { return ts::log1p(x); }, -0.5, 2, false},
      {"sqrt", [](const Tensor& x) { return ts::sqrt(x); }, 0.5, 2.5, false},
      {"rsqrt", [](const Tensor& x) { return ts::rsqrt(x); }, 0.5, 2.5, false},
      {"sin", [](const Tensor& x) { return ts::sin(x); }, -3, 3, false},
      {"cos", [](const Tensor& x) { return ts::cos(x); }, -3, 3, false},
      {"tan", [](const Tensor& x) { return ts::tan(x); }, -1.2, 1.2, false},
      {"tanh", [](const Tensor& x) { return ts::tanh(x); }, -2, 2, false},
      {"sigmoid", [](const Tensor& x) { return ts::sigmoid(x); }, -3, 3, false},
      {"erf", [](const Tensor& x) { return ts::erf(x); }, -2, 2, false},
      {"relu", [](const Tensor& x) { return ts::relu(x); }, -2, 2, true},
      {"operator-", [](const Tensor& x) { return -x; }, -2, 2, false},
  };
  return v;
}

class GradUnary : public ::testing::TestWithParam<UnaryCase> {};

TEST_P(GradUnary, MatchesCentralDifferencesInEveryLayout) {
  const UnaryCase& c = GetParam();
  GradFn f = [fn = c.fn](const TensorList& in) { return fn(in[0]); };
  uint64_t seed = 1;
  for (const Shape& s : small_shapes()) {
    for (Layout l : all_layouts()) {
      Tensor x = grad_input(s, l, seed++, c.lo, c.hi);
      if (c.kink_at_zero) away_from(x, 0.0, 0.2);
      SCOPED_TRACE(ts::shape_str(s) + " " + layout_name(l));
      EXPECT_GRADS(c.name, f, {x});
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Ops, GradUnary, ::testing::ValuesIn(unary_cases()), [](const auto& info) {
  return std::string(info.param.name == std::string("operator-") ? "operator_neg" : info.param.name);
});

struct BinaryCase {
  const char* name;
  Tensor (*fn)(const Tensor&, const Tensor&);
  double alo, ahi, blo, bhi;
};

std::ostream& operator<<(std::ostream& os, const BinaryCase& c) { return os << c.name; }

const std::vector<BinaryCase>& binary_cases() {
  static const std::vector<BinaryCase> v{
      {"add", [](const Tensor& a, const Tensor& b) { return ts::add(a, b); }, -2, 2, -2, 2},
      {"sub", [](const Tensor& a, const Tensor& b) { return ts::sub(a, b); }, -2, 2, -2, 2},
      {"mul", [](const Tensor& a, const Tensor& b) { return ts::mul(a, b); }, -2, 2, -2, 2},
      {"div", [](const Tensor& a, const Tensor& b) { return ts::div(a, b); }, -2, 2, 0.5, 2},
      {"pow", [](const Tensor& a, const Tensor& b) { return ts::pow(a, b); }, 0.5, 2, -2, 2},
      {"maximum", [](const Tensor& a, const Tensor& b) { return ts::maximum(a, b); }, -2, 2, -2, 2},
      {"minimum", [](const Tensor& a, const Tensor& b) { return ts::minimum(a, b); }, -2, 2, -2, 2},
      {"atan2", [](const Tensor& a, const Tensor& b) { return ts::atan2(a, b); }, -2, 2, 0.5, 2},
      // a / b stays inside (2, 3): floor(a / b) = 2 everywhere, away from the jumps.
      {"remainder", [](const Tensor& a, const Tensor& b) { return ts::remainder(a, b); }, 2.3, 2.6, 1.0, 1.1},
      {"operator_mul", [](const Tensor& a, const Tensor& b) { return a * b + a / b - b; }, -2, 2, 0.5, 2},
  };
  return v;
}

class GradBinary : public ::testing::TestWithParam<BinaryCase> {};

// Same-shape, broadcasting (both ways), 0-d and size-1 operands, in every layout of either side.
TEST_P(GradBinary, MatchesCentralDifferencesWithBroadcasting) {
  const BinaryCase& c = GetParam();
  GradFn f = [fn = c.fn](const TensorList& in) { return fn(in[0], in[1]); };
  const std::vector<std::pair<Shape, Shape>> pairs{{{2, 3}, {2, 3}},    {{2, 3}, {3}}, {{3, 1}, {1, 4}}, {{}, {2, 2}},
                                                   {{2, 1, 3}, {4, 1}}, {{1}, {}},     {{}, {}}};
  uint64_t seed = 100;
  for (const auto& [sa, sb] : pairs) {
    for (Layout l : all_layouts()) {
      for (int side = 0; side < 2; ++side) {
        Tensor a = grad_input(sa, side == 0 ? l : Layout::Contiguous, seed++, c.alo, c.ahi);
        Tensor b = grad_input(sb, side == 1 ? l : Layout::Contiguous, seed++, c.blo, c.bhi);
        SCOPED_TRACE(ts::shape_str(sa) + " x " + ts::shape_str(sb) + " " + layout_name(l) + " on input " +
                     std::to_string(side));
        EXPECT_GRADS(c.name, f, {a, b});
        EXPECT_GRADS(std::string(c.name) + " swapped", [fn = c.fn](const TensorList& in) { return fn(in[1], in[0]); },
                     {b, a});
      }
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Ops, GradBinary, ::testing::ValuesIn(binary_cases()),
                         [](const auto& info) { return std::string(info.param.name); });

TEST(GradElementwise, SameInputOnBothSidesAccumulates) {
  Tensor x = grad_input({2, 3}, Layout::Transposed, 7);
  EXPECT_GRADS("mul(x, x)", [](const TensorList& in) { return ts::mul(in[0], in[0]); }, {x});
  EXPECT_GRADS("x / (x*x + 1)", [](const TensorList& in) { return ts::div(in[0], in[0] * in[0] + 1.0); }, {x});
  EXPECT_GRADS("pow(x, x)", [](const TensorList& in) { return ts::pow(in[0], in[0]); },
               {grad_input({4}, Layout::Sliced, 8, 0.5, 2)});
}

TEST(GradElementwise, ScalarOperandsMatchCentralDifferences) {
  Tensor x = grad_input({2, 3}, Layout::Transposed, 11);
  Tensor xp = grad_input({2, 3}, Layout::Sliced, 12, 0.5, 2);
  EXPECT_GRADS("add scalar", [](const TensorList& in) { return ts::add(in[0], 2.5); }, {x});
  EXPECT_GRADS("sub scalar", [](const TensorList& in) { return ts::sub(in[0], 1.5); }, {x});
  EXPECT_GRADS("mul scalar", [](const TensorList& in) { return ts::mul(in[0], -3.0); }, {x});
  EXPECT_GRADS("div scalar", [](const TensorList& in) { return ts::div(in[0], 0.7); }, {x});
  EXPECT_GRADS("pow scalar 2.5", [](const TensorList& in) { return ts::pow(in[0], 2.5); }, {xp});
  EXPECT_GRADS("pow scalar 3 (negative base)", [](const TensorList& in) { return ts::pow(in[0], 3); }, {x});
  EXPECT_GRADS("pow scalar -1.5", [](const TensorList& in) { return ts::pow(in[0], -1.5); }, {xp});
  EXPECT_GRADS("maximum scalar", [](const TensorList& in) { return ts::maximum(in[0], 0.3); }, {x});
  EXPECT_GRADS("minimum scalar", [](const TensorList& in) { return ts::minimum(in[0], 0.3); }, {x});
  EXPECT_GRADS("remainder scalar", [](const TensorList& in) { return ts::remainder(in[0], 0.7); }, {x});
  EXPECT_GRADS("scalar - x", [](const TensorList& in) { return 2.0 - in[0]; }, {x});
  EXPECT_GRADS("scalar / x", [](const TensorList& in) { return 3.0 / in[0]; }, {xp});
  EXPECT_GRADS("scalar * x + scalar", [](const TensorList& in) { return 0.5 * in[0] + 1.0; }, {x});
  EXPECT_GRADS("x * 0-d tensor", [](const TensorList& in) { return in[0] * in[1]; },
               {x, grad_input({}, Layout::Contiguous, 13)});
}

TEST(GradElementwise, WhereRoutesGradientsToTheChosenSide) {
  Tensor cond = make_input({2, 3}, ts::DType::Bool, Layout::Contiguous, 21);
  Tensor a = grad_input({2, 3}, Layout::Transposed, 22);
  Tensor b = grad_input({3}, Layout::Sliced, 23);
  GradFn f = [](const TensorList& in) { return ts::where(in[0], in[1], in[2]); };
  EXPECT_GRADS("where", f, {cond, a, b});
  EXPECT_GRADS("where broadcast cond", f,
               {make_input({3}, ts::DType::Bool, Layout::Contiguous, 24), grad_input({2, 3}, Layout::Offset, 25),
                grad_input({2, 1}, Layout::Contiguous, 26)});
  EXPECT_GRADS("where 0-d", f,
               {make_input({}, ts::DType::Bool, Layout::Contiguous, 27), grad_input({}, Layout::Contiguous, 28),
                grad_input({2}, Layout::Contiguous, 29)});
  EXPECT_GRADS("where scalar b", [](const TensorList& in) { return ts::where(in[0], in[1], 0.5); }, {cond, a});
  EXPECT_GRADS("where scalar a", [](const TensorList& in) { return ts::where(in[0], -1.0, in[1]); }, {cond, a});
  // A condition computed from the differentiated input: relu written by hand.
  EXPECT_GRADS("where(x > 0, x, 0)", [](const TensorList& in) { return ts::where(ts::gt(in[0], 0.0), in[0], 0.0); },
               {away_from(grad_input({2, 3}, Layout::Expanded, 30))});
}

TEST(GradElementwise, ClampPassesGradientOnlyInside) {
  Tensor x = grad_input({3, 4}, Layout::Transposed, 31);
  EXPECT_GRADS("clamp lo hi", [](const TensorList& in) { return ts::clamp(in[0], -1.0, 1.0); }, {x});
  EXPECT_GRADS("clamp lo", [](const TensorList& in) { return ts::clamp(in[0], 0.5, std::nullopt); }, {x});
  EXPECT_GRADS("clamp hi", [](const TensorList& in) { return ts::clamp(in[0], std::nullopt, -0.5); }, {x});
  Tensor lo = grad_input({4}, Layout::Contiguous, 32, -1.5, -0.5);
  Tensor hi = grad_input({3, 1}, Layout::Contiguous, 33, 0.5, 1.5);
  EXPECT_GRADS("clamp tensor bounds", [](const TensorList& in) { return ts::clamp(in[0], in[1], in[2]); }, {x, lo, hi});
}

// Float-to-float casts are linear: the cotangent is cast back to the input's dtype and the tangent
// to the output's, exactly. (Central differences in float32 are too coarse for 1e-6.)
TEST(GradElementwise, CastBetweenFloatDtypesCastsTheCotangentBack) {
  Tensor x = grad_input({2, 3}, Layout::Transposed, 41);
  for (ts::DType mid : {ts::DType::Float32, ts::DType::Float16, ts::DType::BFloat16}) {
    SCOPED_TRACE(std::string(ts::dtype_name(mid)));
    auto [y, pullback] = ts::vjp([mid](const Tensor& v) { return ts::cast(v, mid); }, x);
    ASSERT_EQ(y.dtype(), mid);
    Tensor u = ts::cast(grad_input({2, 3}, Layout::Contiguous, 42), mid);
    auto [g] = pullback(u);
    ASSERT_TRUE(g.defined());
    EXPECT_EQ(g.dtype(), ts::DType::Float64);
    EXPECT_TRUE(ts::equal(g, ts::cast(u, ts::DType::Float64)));

    Tensor t = grad_input({2, 3}, Layout::Contiguous, 43);
    auto [y2, ty] = ts::jvp([mid](const Tensor& v) { return ts::cast(v, mid); }, {x}, {t});
    ASSERT_TRUE(ty.defined());
    EXPECT_EQ(ty.dtype(), mid);
    EXPECT_TRUE(ts::equal(ty, ts::cast(t, mid)));

    // Round trip float64 -> mid -> float64: the gradient is the cotangent rounded through mid.
    auto [y3, pb3] = ts::vjp([mid](const Tensor& v) { return ts::cast(ts::cast(v, mid), ts::DType::Float64); }, x);
    Tensor u3 = grad_input({2, 3}, Layout::Contiguous, 44);
    auto [g3] = pb3(u3);
    EXPECT_TRUE(ts::equal(g3, ts::cast(ts::cast(u3, mid), ts::DType::Float64)));
  }
  // float32 input, float64 output: the cotangent comes back as float32.
  Tensor x32 = ts::cast(x, ts::DType::Float32);
  auto [y4, pb4] = ts::vjp([](const Tensor& v) { return ts::cast(v, ts::DType::Float64) * 2.0; }, x32);
  Tensor u4 = grad_input({2, 3}, Layout::Contiguous, 45);
  auto [g4] = pb4(u4);
  EXPECT_EQ(g4.dtype(), ts::DType::Float32);
  EXPECT_TRUE(ts::equal(g4, ts::cast(u4 * 2.0, ts::DType::Float32)));
  // Identity cast in float64 is checked numerically like any op.
  EXPECT_GRADS("cast f64->f64", [](const TensorList& in) { return ts::cast(in[0], ts::DType::Float64) * in[0]; }, {x});
}

TEST(GradElementwise, CastToIntegerCarriesNoGradient) {
  Tensor x = grad_input({2, 3}, Layout::Sliced, 51, -3, 3);
  EXPECT_NO_GRAD("cast to int64 and back",
                 [](const TensorList& in) { return ts::cast(ts::cast(in[0], ts::DType::Int64), ts::DType::Float64); },
                 {x});
  EXPECT_NO_GRAD("cast to bool", [](const TensorList& in) { return ts::cast(in[0], ts::DType::Bool); }, {x});
  EXPECT_NO_GRAD("cast to int32", [](const TensorList& in) { return ts::cast(in[0], ts::DType::Int32); }, {x});
}

TEST(GradElementwise, CopyAndCloneAreIdentity) {
  Tensor x = grad_input({3, 2}, Layout::Transposed, 61);
  EXPECT_GRADS("contiguous (copy)", [](const TensorList& in) { return ts::contiguous(in[0]) * in[0]; }, {x});
  EXPECT_GRADS("clone", [](const TensorList& in) { return in[0].clone() * 2.0; },
               {grad_input({2, 3}, Layout::Expanded, 62)});
}

TEST(GradElementwise, DropoutWithAFixedGeneratorScalesKeptElements) {
  Tensor x = grad_input({4, 5}, Layout::Transposed, 71);
  GradFn f = [](const TensorList& in) {
    ts::Generator gen(42);
    return ts::dropout(in[0], 0.3, gen);
  };
  EXPECT_GRADS("dropout p=0.3", f, {x});
  // The gradient is the mask / (1 - p): zero where dropped, 1/0.7 where kept.
  auto [y, pullback] = ts::vjp(f, TensorList{x});
  auto [g] = pullback(ts::ones_like(y));
  std::vector<double> yv = y.to_vector<double>(), xv = x.contiguous().to_vector<double>(),
                      gv = g[0].to_vector<double>();
  int dropped = 0;
  for (size_t i = 0; i < yv.size(); ++i) {
    if (yv[i] == 0.0) {
      ++dropped;
      EXPECT_EQ(gv[i], 0.0);
    } else {
      EXPECT_NEAR(gv[i], 1.0 / 0.7, 1e-12);
      EXPECT_NEAR(yv[i], xv[i] / 0.7, 1e-12);
    }
  }
  EXPECT_GT(dropped, 0);
  EXPECT_GRADS("dropout eval mode",
               [](const TensorList& in) {
                 ts::Generator gen(1);
                 return ts::dropout(in[0], 0.5, gen, /*train=*/false);
               },
               {x});
}

TEST(GradElementwise, IntegerInputsAreHeldFixedAndGetNoGradient) {
  Tensor x = grad_input({2, 3}, Layout::Transposed, 81);
  Tensor k = make_input({2, 3}, ts::DType::Int64, Layout::Contiguous, 82, -3, 3);
  EXPECT_GRADS("x * cast(k)", [](const TensorList& in) { return in[0] * ts::cast(in[1], ts::DType::Float64); }, {x, k});
  EXPECT_GRADS("x + int tensor (promotes)", [](const TensorList& in) { return ts::add(in[1], in[0]); },
               {x, make_input({3}, ts::DType::Int32, Layout::Contiguous, 83)});
}

TEST(GradElementwise, PiecewiseConstantOpsGiveZeroGradient) {
  Tensor x = grad_input({2, 3}, Layout::Transposed, 91, -3, 3);
  EXPECT_NO_GRAD("sign", [](const TensorList& in) { return ts::sign(in[0]); }, {x});
  EXPECT_NO_GRAD("floor", [](const TensorList& in) { return ts::floor(in[0]); }, {x});
  EXPECT_NO_GRAD("ceil", [](const TensorList& in) { return ts::ceil(in[0]); }, {x});
  EXPECT_NO_GRAD("round", [](const TensorList& in) { return ts::round(in[0]); }, {x});
  // Mixed with a differentiable path, only that path counts: d/dx (x * floor(x)) = floor(x).
  EXPECT_GRADS("x * floor(x)", [](const TensorList& in) { return in[0] * ts::floor(in[0]); }, {x});
  EXPECT_GRADS("x - round(x) (straight-through style)", [](const TensorList& in) { return in[0] - ts::round(in[0]); },
               {x});
  EXPECT_GRADS("abs(x) * sign(x)", [](const TensorList& in) { return ts::abs(in[0]) * ts::sign(in[0]); },
               {away_from(grad_input({5}, Layout::Sliced, 92))});
}

TEST(GradElementwise, ComparisonsAndLogicalOpsGiveNoGradient) {
  Tensor a = grad_input({2, 3}, Layout::Transposed, 101);
  Tensor b = grad_input({3}, Layout::Contiguous, 102);
  using BinFn = Tensor (*)(const Tensor&, const Tensor&);
  const std::vector<std::pair<const char*, BinFn>> ops{
      {"eq", [](const Tensor& x, const Tensor& y) { return ts::eq(x, y); }},
      {"ne", [](const Tensor& x, const Tensor& y) { return ts::ne(x, y); }},
      {"lt", [](const Tensor& x, const Tensor& y) { return ts::lt(x, y); }},
      {"le", [](const Tensor& x, const Tensor& y) { return ts::le(x, y); }},
      {"gt", [](const Tensor& x, const Tensor& y) { return ts::gt(x, y); }},
      {"ge", [](const Tensor& x, const Tensor& y) { return ts::ge(x, y); }},
      {"logical_and", [](const Tensor& x, const Tensor& y) { return ts::logical_and(x, y); }},
      {"logical_or", [](const Tensor& x, const Tensor& y) { return ts::logical_or(x, y); }},
      {"logical_xor", [](const Tensor& x, const Tensor& y) { return ts::logical_xor(x, y); }},
  };
  for (const auto& [name, fn] : ops) {
    EXPECT_NO_GRAD(name, [fn = fn](const TensorList& in) { return fn(in[0], in[1]); }, {a, b});
    // Used as a float mask, the comparison contributes nothing: d/da (a * cast(a < b)) = mask.
    EXPECT_GRADS(std::string(name) + " as mask",
                 [fn = fn](const TensorList& in) { return in[0] * ts::cast(fn(in[0], in[1]), ts::DType::Float64); },
                 {a, b});
  }
  EXPECT_NO_GRAD("logical_not", [](const TensorList& in) { return ts::logical_not(in[0]); }, {a});
  EXPECT_NO_GRAD("gt scalar", [](const TensorList& in) { return ts::gt(in[0], 0.0); }, {a});
  EXPECT_NO_GRAD("operator<", [](const TensorList& in) { return in[0] < in[1]; }, {a, b});
}

// Creation and random ops take no differentiable input: inside a transform their results are
// constants, even when shaped after a traced tensor.
TEST(GradElementwise, CreationAndRandomOpsAreConstants) {
  Tensor x = grad_input({2, 3}, Layout::Transposed, 111);
  EXPECT_NO_GRAD("zeros_like", [](const TensorList& in) { return ts::zeros_like(in[0]); }, {x});
  EXPECT_NO_GRAD("ones_like", [](const TensorList& in) { return ts::ones_like(in[0]); }, {x});
  EXPECT_NO_GRAD("full_like", [](const TensorList& in) { return ts::full_like(in[0], 2.5); }, {x});
  EXPECT_GRADS("x * full_like + ones_like + zeros_like",
               [](const TensorList& in) {
                 return in[0] * ts::full_like(in[0], 2.5) + ts::ones_like(in[0]) + ts::zeros_like(in[0]);
               },
               {x});
  EXPECT_GRADS("x * constants",
               [](const TensorList& in) {
                 ts::Generator gen(5);
                 Tensor c = ts::full({2, 3}, 0.5, ts::DType::Float64) + ts::eye(2, 3, ts::DType::Float64) +
                            ts::rand({2, 3}, gen, ts::DType::Float64) + ts::randn({3}, gen, ts::DType::Float64) +
                            ts::uniform({3}, -1, 1, gen, ts::DType::Float64) +
                            ts::normal({3}, 0, 1, gen, ts::DType::Float64) + ts::linspace(0, 1, 3, ts::DType::Float64) +
                            ts::arange(0.0, 3.0, 1.0, ts::DType::Float64) + ts::zeros({3}, ts::DType::Float64) +
                            ts::ones({3}, ts::DType::Float64) +
                            ts::cast(ts::bernoulli({3}, 0.5, gen), ts::DType::Float64) +
                            ts::scalar_tensor(1.5, ts::DType::Float64) + ts::tensor(std::vector<double>{1, 2, 3}, {3});
                 return in[0] * c;
               },
               {x});
}

// The harness itself must be able to fail: a function whose transforms see a different
// derivative than its values have (stop_gradient hides half of d(x*x)/dx; a custom rule
// that is off by a factor) is caught by every check.
TEST(GradCheckHarness, DetectsAWrongDerivative) {
  Tensor x = grad_input({2, 3}, Layout::Transposed, 121, 0.5, 1.5);
  GradFn hidden = [](const TensorList& in) { return in[0] * ts::stop_gradient(in[0]); };
  EXPECT_FALSE(check_vjp("x * stop_gradient(x)", hidden, {x}));
  EXPECT_FALSE(check_jvp("x * stop_gradient(x)", hidden, {x}));
  GradFn scalar = [](const TensorList& in) { return ts::sum(in[0] * in[0] * ts::stop_gradient(in[0])); };
  EXPECT_FALSE(check_hessian("sum(x^2 * stop_gradient(x))", scalar, {x}));
  ts::CustomVjp twice_too_big{
      "double_grad", [](const TensorList& in) { return TensorList{ts::sin(in[0])}; },
      [](const TensorList& in) { return std::make_pair(TensorList{ts::sin(in[0])}, TensorList{in[0]}); },
      [](const TensorList& res, const TensorList& ct) { return TensorList{ct[0] * ts::cos(res[0]) * 2.0}; }};
  GradFn custom = [twice_too_big](const TensorList& in) { return ts::custom_vjp_call(twice_too_big, in)[0]; };
  EXPECT_FALSE(check_vjp("custom rule off by 2", custom, {x}));
  EXPECT_TRUE(check_jvp("custom rule, forward mode differentiates the primal", custom, {x}));
  EXPECT_FALSE(check_jac_agree("custom rule off by 2", custom, {x}));
  // And the error names the element.
  auto r = check_vjp("x * stop_gradient(x)", hidden, {x});
  EXPECT_NE(std::string(r.message()).find("input 0"), std::string::npos) << r.message();
  EXPECT_NE(std::string(r.message()).find("at element ("), std::string::npos) << r.message();
}

TEST(GradCheckHarness, PerturbsEveryElementOfEveryFloatInput) {
  int calls = 0;
  GradFn f = [&calls](const TensorList& in) {
    ++calls;
    return ts::matmul(in[0], in[1]) * ts::cast(in[2], ts::DType::Float64);
  };
  Tensor a = grad_input({2, 3}, Layout::Transposed, 131), b = grad_input({3, 4}, Layout::Sliced, 132);
  Tensor k = make_input({2, 4}, ts::DType::Int32, Layout::Contiguous, 133, 1, 3);
  ASSERT_TRUE(check_vjp("counted", f, {a, b, k}));
  // One traced call, one plain call, and two per element of the two float inputs (6 + 12).
  EXPECT_EQ(calls, 2 + 2 * (6 + 12));
  calls = 0;
  ASSERT_TRUE(check_jvp("counted", f, {a, b, k}));
  // Per pass (input 0, input 1, all): one traced call, one plain call, two shifted calls.
  EXPECT_EQ(calls, 3 * 4);
}

}  // namespace
