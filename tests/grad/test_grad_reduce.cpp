// Gradient checks of the reductions and scans (sum, mean, prod, max, min, var, std, logsumexp,
// cumsum) over various axes, with and without keepdims, in several layouts, against central
// differences in float64; argmax/argmin/any/all carry no gradient.
#include "harness/gradcheck.h"

namespace ts = tessera;
using namespace tessera::testing;
using ts::Shape;
using ts::Tensor;
using ts::TensorList;

namespace {

using ReduceFn = Tensor (*)(const Tensor&, ts::IntList, bool);

struct ReduceCase {
  const char* name;
  ReduceFn fn;
  double lo, hi;
  bool ties_matter;  // max/min: skip the expanded layout, whose repeated values tie
};
std::ostream& operator<<(std::ostream& os, const ReduceCase& c) { return os << c.name; }

const std::vector<ReduceCase>& reduce_cases() {
  static const std::vector<ReduceCase> v{
      {"sum", [](const Tensor& x, ts::IntList a, bool k) { return ts::sum(x, a, k); }, -2, 2, false},
      {"mean", [](const Tensor& x, ts::IntList a, bool k) { return ts::mean(x, a, k); }, -2, 2, false},
      {"prod", [](const Tensor& x, ts::IntList a, bool k) { return ts::prod(x, a, k); }, 0.5, 1.5, false},
      {"prod_negative", [](const Tensor& x, ts::IntList a, bool k) { return ts::prod(x, a, k); }, -1.5, -0.5, false},
      {"max", [](const Tensor& x, ts::IntList a, bool k) { return ts::max(x, a, k); }, -2, 2, true},
      {"min", [](const Tensor& x, ts::IntList a, bool k) { return ts::min(x, a, k); }, -2, 2, true},
      {"var", [](const Tensor& x, ts::IntList a, bool k) { return ts::var(x, a, 1, k); }, -2, 2, false},
      {"var_biased", [](const Tensor& x, ts::IntList a, bool k) { return ts::var(x, a, 0, k); }, -2, 2, false},
      {"std", [](const Tensor& x, ts::IntList a, bool k) { return ts::std(x, a, 1, k); }, -2, 2, false},
      {"std_biased", [](const Tensor& x, ts::IntList a, bool k) { return ts::std(x, a, 0, k); }, -2, 2, false},
      {"logsumexp", [](const Tensor& x, ts::IntList a, bool k) { return ts::logsumexp(x, a, k); }, -2, 2, false},
  };
  return v;
}

class GradReduce : public ::testing::TestWithParam<ReduceCase> {};

TEST_P(GradReduce, MatchesCentralDifferencesOverAxesAndLayouts) {
  const ReduceCase& c = GetParam();
  const std::vector<std::vector<int64_t>> axes_list{{}, {0}, {1}, {-1}, {0, 2}};
  uint64_t seed = 1;
  for (const auto& axes : axes_list) {
    for (bool keepdims : {false, true}) {
      for (Layout l : {Layout::Contiguous, Layout::Transposed, Layout::Sliced, Layout::Expanded}) {
        if (c.ties_matter && l == Layout::Expanded) continue;
        // std of an expanded layout along the repeated axis is 0, where sqrt is not differentiable.
        if (std::string(c.name).rfind("std", 0) == 0 && l == Layout::Expanded) continue;
        Tensor x = grad_input({2, 3, 4}, l, seed++, c.lo, c.hi);
        GradFn f = [fn = c.fn, axes, keepdims](const TensorList& in) { return fn(in[0], ts::IntList(axes), keepdims); };
        SCOPED_TRACE("axes size " + std::to_string(axes.size()) +
                     (axes.empty() ? "" : " first " + std::to_string(axes[0])) + " keepdims " +
                     std::to_string(keepdims) + " " + layout_name(l));
        EXPECT_GRADS(c.name, f, {x});
      }
    }
  }
  // Size-1 axes, vectors and 0-d inputs.
  GradFn f1 = [fn = c.fn](const TensorList& in) { return fn(in[0], {1}, false); };
  EXPECT_GRADS(std::string(c.name) + " over size-1 axis",
               [fn = c.fn](const TensorList& in) { return fn(in[0], {0}, true); },
               {grad_input({3, 1, 2}, Layout::Contiguous, 90, c.lo, c.hi)});
  EXPECT_GRADS(std::string(c.name) + " vector", [fn = c.fn](const TensorList& in) { return fn(in[0], {}, false); },
               {grad_input({5}, Layout::Sliced, 92, c.lo, c.hi)});
  bool var_like = std::string(c.name).rfind("var", 0) == 0 || std::string(c.name).rfind("std", 0) == 0;
  if (!var_like) {  // var/std of one element is NaN (correction 1) or 0 (correction 0)
    EXPECT_GRADS(std::string(c.name) + " [3,1,2] axis 1", f1, {grad_input({3, 1, 2}, Layout::Offset, 91, c.lo, c.hi)});
    EXPECT_GRADS(std::string(c.name) + " 0-d", [fn = c.fn](const TensorList& in) { return fn(in[0], {}, false); },
                 {grad_input({}, Layout::Contiguous, 93, c.lo, c.hi)});
  }
}

INSTANTIATE_TEST_SUITE_P(Ops, GradReduce, ::testing::ValuesIn(reduce_cases()),
                         [](const auto& info) { return std::string(info.param.name); });

TEST(GradReduce, EmptyInputsGiveEmptyGradients) {
  Tensor e = grad_input({0, 3}, Layout::Contiguous, 95);
  EXPECT_GRADS("sum over an empty axis", [](const TensorList& in) { return ts::sum(in[0], {0}); }, {e});
  EXPECT_GRADS("prod over an empty axis", [](const TensorList& in) { return ts::prod(in[0], {0}, true); }, {e});
  EXPECT_GRADS("sum over a non-empty axis of an empty tensor", [](const TensorList& in) { return ts::sum(in[0], {1}); },
               {e});
  EXPECT_GRADS("cumsum of an empty tensor", [](const TensorList& in) { return ts::cumsum(in[0], 0); }, {e});
}

TEST(GradReduce, ProdWithOneZeroKeepsTheOtherFactors) {
  // d/dx_i prod(x) = prod of the others, also where some x_j == 0 (no division by x).
  Tensor x = ts::tensor(std::vector<double>{0.0, 1.5, -2.0, 0.5}, {4});
  EXPECT_GRADS("prod with a zero", [](const TensorList& in) { return ts::prod(in[0]); }, {x});
  Tensor y = ts::tensor(std::vector<double>{0.0, 1.5, 0.0, 0.5, 2.0, 3.0}, {2, 3});
  EXPECT_GRADS("prod with two zeros", [](const TensorList& in) { return ts::prod(in[0], {1}); }, {y});
}

TEST(GradReduce, MaxTiesShareTheGradientEqually) {
  Tensor x = ts::tensor(std::vector<double>{1.0, 3.0, 3.0, -1.0}, {4});
  auto [y, pullback] = ts::vjp([](const Tensor& v) { return ts::max(v); }, x);
  auto [g] = pullback(ts::ones_like(y));
  EXPECT_EQ(g.to_vector<double>(), (std::vector<double>{0.0, 0.5, 0.5, 0.0}));
  auto [y2, t2] =
      ts::jvp([](const Tensor& v) { return ts::min(v); }, {ts::tensor(std::vector<double>{-2.0, 0.0, -2.0}, {3})},
              {ts::tensor(std::vector<double>{1.0, 5.0, 3.0}, {3})});
  EXPECT_DOUBLE_EQ(t2.item<double>(), 2.0);
}

TEST(GradReduce, CumsumMatchesCentralDifferences) {
  uint64_t seed = 200;
  for (int64_t axis : {0, 1, -1}) {
    for (Layout l : all_layouts()) {
      Tensor x = grad_input({3, 4}, l, seed++);
      SCOPED_TRACE("axis " + std::to_string(axis) + " " + layout_name(l));
      EXPECT_GRADS("cumsum", [axis](const TensorList& in) { return ts::cumsum(in[0], axis); }, {x});
    }
  }
  EXPECT_GRADS("cumsum rank 3 middle axis", [](const TensorList& in) { return ts::cumsum(in[0], 1); },
               {grad_input({2, 3, 2}, Layout::Transposed, 210)});
  EXPECT_GRADS("cumsum 0-d", [](const TensorList& in) { return ts::cumsum(in[0], 0); },
               {grad_input({}, Layout::Contiguous, 211)});
}

TEST(GradReduce, CompositesOfReductionsMatchCentralDifferences) {
  Tensor x = grad_input({3, 4}, Layout::Transposed, 300);
  EXPECT_GRADS("x - mean(x) keepdims", [](const TensorList& in) { return in[0] - ts::mean(in[0], {1}, true); }, {x});
  EXPECT_GRADS("x / sum(x*x)", [](const TensorList& in) { return in[0] / ts::sum(in[0] * in[0]); }, {x});
  EXPECT_GRADS("logsumexp large values", [](const TensorList& in) { return ts::logsumexp(in[0] * 50.0, {0}); }, {x});
  EXPECT_GRADS("max - min", [](const TensorList& in) { return ts::max(in[0], {0}) - ts::min(in[0], {0}); }, {x});
}

TEST(GradReduce, ArgReductionsAndBooleanReductionsGiveNoGradient) {
  Tensor x = grad_input({3, 4}, Layout::Transposed, 400);
  EXPECT_NO_GRAD("argmax", [](const TensorList& in) { return ts::argmax(in[0], 1); }, {x});
  EXPECT_NO_GRAD("argmin flat", [](const TensorList& in) { return ts::argmin(in[0]); }, {x});
  EXPECT_NO_GRAD("any", [](const TensorList& in) { return ts::any(ts::gt(in[0], 0.0), {0}); }, {x});
  EXPECT_NO_GRAD("all", [](const TensorList& in) { return ts::all(in[0], {1}); }, {x});
  EXPECT_NO_GRAD("argmax as float",
                 [](const TensorList& in) { return ts::cast(ts::argmax(in[0], 0, true), ts::DType::Float64); }, {x});
  // Indices used to pick values: the gradient flows through the gather, not through argmax.
  EXPECT_GRADS("take_along_axis(x, argmax)",
               [](const TensorList& in) { return ts::take_along_axis(in[0], ts::argmax(in[0], 1, true), 1); }, {x});
}

}  // namespace
