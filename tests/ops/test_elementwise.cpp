// Conformance of the elementwise primitives against naive float64 references.
#include <cmath>

#include "harness/harness.h"

namespace ts = tessera;
using namespace tessera::testing;

namespace {

struct UnaryCase {
  const char* name;
  std::function<ts::Tensor(const ts::Tensor&)> op;
  std::function<double(double)> ref;
  enum Kind { FloatOnly, Numeric, KeepsInts, ToBool } kind;
  double lo = -2, hi = 2;
  double tol_scale = 1;
};

double erf_ref(double x) { return std::erf(x); }

std::vector<UnaryCase> unary_cases() {
  using K = UnaryCase::Kind;
  return {
      {"neg", [](auto& x) { return ts::neg(x); }, [](double x) { return -x; }, K::Numeric},
      {"abs", [](auto& x) { return ts::abs(x); }, [](double x) { return std::fabs(x); }, K::Numeric},
      {"sign", [](auto& x) { return ts::sign(x); }, [](double x) { return double((x > 0) - (x < 0)); }, K::Numeric},
      {"exp", [](auto& x) { return ts::exp(x); }, [](double x) { return std::exp(x); }, K::FloatOnly},
      {"expm1", [](auto& x) { return ts::expm1(x); }, [](double x) { return std::expm1(x); }, K::FloatOnly},
      {"log", [](auto& x) { return ts::log(x); }, [](double x) { return std::log(x); }, K::FloatOnly, 0.01, 5},
      {"log1p", [](auto& x) { return ts::log1p(x); }, [](double x) { return std::log1p(x); }, K::FloatOnly, -0.9, 5},
      {"sqrt", [](auto& x) { return ts::sqrt(x); }, [](double x) { return std::sqrt(x); }, K::FloatOnly, 0, 9},
      {"rsqrt", [](auto& x) { return ts::rsqrt(x); }, [](double x) { return 1 / std::sqrt(x); }, K::FloatOnly, 0.05, 9},
      {"sin", [](auto& x) { return ts::sin(x); }, [](double x) { return std::sin(x); }, K::FloatOnly, -6, 6},
      {"cos", [](auto& x) { return ts::cos(x); }, [](double x) { return std::cos(x); }, K::FloatOnly, -6, 6},
      {"tan", [](auto& x) { return ts::tan(x); }, [](double x) { return std::tan(x); }, K::FloatOnly, -1.2, 1.2},
      {"tanh", [](auto& x) { return ts::tanh(x); }, [](double x) { return std::tanh(x); }, K::FloatOnly, -5, 5},
      {"sigmoid", [](auto& x) { return ts::sigmoid(x); }, [](double x) { return 1 / (1 + std::exp(-x)); }, K::FloatOnly, -8, 8},
      {"erf", [](auto& x) { return ts::erf(x); }, erf_ref, K::FloatOnly, -3, 3},
      {"relu", [](auto& x) { return ts::relu(x); }, [](double x) { return x > 0 ? x : 0; }, K::Numeric},
      {"gelu", [](auto& x) { return ts::gelu(x); }, [](double x) { return 0.5 * x * (1 + std::erf(x / std::sqrt(2.0))); }, K::FloatOnly, -4, 4},
      {"gelu_tanh", [](auto& x) { return ts::gelu(x, true); },
       [](double x) { return 0.5 * x * (1 + std::tanh(std::sqrt(2 / M_PI) * (x + 0.044715 * x * x * x))); }, K::FloatOnly, -4, 4},
      {"silu", [](auto& x) { return ts::silu(x); }, [](double x) { return x / (1 + std::exp(-x)); }, K::FloatOnly, -6, 6},
      {"softplus", [](auto& x) { return ts::softplus(x); }, [](double x) { return std::log1p(std::exp(x)); }, K::FloatOnly, -20, 20},
      {"floor", [](auto& x) { return ts::floor(x); }, [](double x) { return std::floor(x); }, K::KeepsInts, -5, 5},
      {"ceil", [](auto& x) { return ts::ceil(x); }, [](double x) { return std::ceil(x); }, K::KeepsInts, -5, 5},
      {"round", [](auto& x) { return ts::round(x); }, [](double x) { return std::nearbyint(x); }, K::KeepsInts, -5, 5},
      {"logical_not", [](auto& x) { return ts::logical_not(x); }, [](double x) { return x == 0 ? 1.0 : 0.0; }, K::ToBool},
  };
}

}  // namespace

TEST(Unary, MatchesFloat64ReferenceForEveryDtypeLayoutAndShape) {
  uint64_t seed = 1;
  for (const auto& c : unary_cases()) {
    for (ts::DType dt : all_dtypes()) {
      bool accepted = c.kind == UnaryCase::ToBool || c.kind == UnaryCase::KeepsInts || c.kind == UnaryCase::FloatOnly ||
                      dt != ts::DType::Bool;
      if (!accepted) continue;
      // Float-only ops compute integer inputs in float32; the rest keep the dtype.
      ts::DType out_dt = c.kind == UnaryCase::ToBool ? ts::DType::Bool
                         : c.kind == UnaryCase::FloatOnly ? ts::to_floating(dt) : dt;
      double lo = c.lo, hi = c.hi;
      if (!ts::is_floating(dt) && dt != ts::DType::Bool) {
        lo = std::max(lo, dt == ts::DType::UInt8 ? 0.0 : -100.0);
        hi = std::min(std::max(hi, lo + 1), 100.0);
        if (c.kind == UnaryCase::FloatOnly) lo = std::max(lo, c.lo), hi = std::min(hi, c.hi);
      }
      for (const auto& shape : unary_shapes()) {
        for (Layout layout : all_layouts()) {
          SCOPED_TRACE(std::string(c.name) + " " + std::string(ts::dtype_name(dt)) + " " + ts::shape_str(shape) + " " + layout_name(layout));
          ts::Tensor x = make_input(shape, dt, layout, seed++, lo, hi);
          Ref rx = to_ref(x);
          Ref want{rx.shape, {}};
          for (double v : rx.v) want.v.push_back(c.ref(v));
          ts::Tensor y = c.op(x);
          // float16/bfloat16 results are rounded from a float32 computation on the rounded input
          EXPECT_CLOSE_TOL(y, want, out_dt, c.tol_scale);
        }
      }
    }
  }
}

TEST(Unary, RejectsUnsupportedDtypesWithOpName) {
  ts::Tensor b = ts::full({2}, true);
  expect_error<ts::DTypeError>([&] { ts::neg(b); }, {"[neg]", "bool"});
}

namespace {
struct BinaryCase {
  const char* name;
  std::function<ts::Tensor(const ts::Tensor&, const ts::Tensor&)> op;
  std::function<double(double, double)> ref;
  enum Kind { Arith, FloatOnly, Compare, NoBool } kind;
  double lo = -3, hi = 3;
};

double py_mod(double a, double b) {
  double r = std::fmod(a, b);
  if (r != 0 && ((r < 0) != (b < 0))) r += b;
  return r;
}

std::vector<BinaryCase> binary_cases() {
  using K = BinaryCase::Kind;
  auto nan_max = [](double a, double b) { return std::isnan(a) || std::isnan(b) ? NAN : std::max(a, b); };
  auto nan_min = [](double a, double b) { return std::isnan(a) || std::isnan(b) ? NAN : std::min(a, b); };
  return {
      {"add", [](auto& a, auto& b) { return ts::add(a, b); }, [](double a, double b) { return a + b; }, K::Arith},
      {"sub", [](auto& a, auto& b) { return ts::sub(a, b); }, [](double a, double b) { return a - b; }, K::NoBool},
      {"mul", [](auto& a, auto& b) { return ts::mul(a, b); }, [](double a, double b) { return a * b; }, K::Arith},
      {"div", [](auto& a, auto& b) { return ts::div(a, b); }, [](double a, double b) { return a / b; }, K::FloatOnly, 0.5, 3},
      {"pow", [](auto& a, auto& b) { return ts::pow(a, b); }, [](double a, double b) { return std::pow(a, b); }, K::NoBool, 0.1, 2},
      {"maximum", [](auto& a, auto& b) { return ts::maximum(a, b); }, nan_max, K::Arith},
      {"minimum", [](auto& a, auto& b) { return ts::minimum(a, b); }, nan_min, K::Arith},
      {"atan2", [](auto& a, auto& b) { return ts::atan2(a, b); }, [](double a, double b) { return std::atan2(a, b); }, K::FloatOnly},
      {"remainder", [](auto& a, auto& b) { return ts::remainder(a, b); }, py_mod, K::NoBool, 0.5, 4},
      {"eq", [](auto& a, auto& b) { return ts::eq(a, b); }, [](double a, double b) { return double(a == b); }, K::Compare},
      {"ne", [](auto& a, auto& b) { return ts::ne(a, b); }, [](double a, double b) { return double(a != b); }, K::Compare},
      {"lt", [](auto& a, auto& b) { return ts::lt(a, b); }, [](double a, double b) { return double(a < b); }, K::Compare},
      {"le", [](auto& a, auto& b) { return ts::le(a, b); }, [](double a, double b) { return double(a <= b); }, K::Compare},
      {"gt", [](auto& a, auto& b) { return ts::gt(a, b); }, [](double a, double b) { return double(a > b); }, K::Compare},
      {"ge", [](auto& a, auto& b) { return ts::ge(a, b); }, [](double a, double b) { return double(a >= b); }, K::Compare},
      {"logical_and", [](auto& a, auto& b) { return ts::logical_and(a, b); }, [](double a, double b) { return double(a != 0 && b != 0); }, K::Compare},
      {"logical_or", [](auto& a, auto& b) { return ts::logical_or(a, b); }, [](double a, double b) { return double(a != 0 || b != 0); }, K::Compare},
      {"logical_xor", [](auto& a, auto& b) { return ts::logical_xor(a, b); }, [](double a, double b) { return double((a != 0) != (b != 0)); }, K::Compare},
  };
}
}  // namespace

TEST(Binary, MatchesFloat64ReferenceWithBroadcastingLayoutsAndDtypes) {
  uint64_t seed = 1000;
  for (const auto& c : binary_cases()) {
    for (ts::DType dt : all_dtypes()) {
      if (dt == ts::DType::Bool && (c.kind == BinaryCase::NoBool)) continue;
      ts::DType out_dt = c.kind == BinaryCase::Compare ? ts::DType::Bool
                         : c.kind == BinaryCase::FloatOnly ? ts::to_floating(dt) : dt;
      double lo = c.lo, hi = c.hi;
      if (dt == ts::DType::UInt8) lo = std::max(lo, 0.0);
      if (!ts::is_floating(dt)) {
        if (std::string(c.name) == "div" || std::string(c.name) == "remainder") lo = 1;  // no integer zero divisors
        if (dt == ts::DType::Bool && c.kind == BinaryCase::FloatOnly) continue;
      }
      for (const auto& [sa, sb] : broadcast_pairs()) {
        for (Layout la : {Layout::Contiguous, Layout::Transposed, Layout::Expanded}) {
          for (Layout lb : {Layout::Contiguous, Layout::Sliced, Layout::Offset}) {
            SCOPED_TRACE(std::string(c.name) + " " + std::string(ts::dtype_name(dt)) + " " + ts::shape_str(sa) + " " +
                         layout_name(la) + " with " + ts::shape_str(sb) + " " + layout_name(lb));
            ts::Tensor a = make_input(sa, dt, la, seed++, lo, hi);
            ts::Tensor b = make_input(sb, dt, lb, seed++, lo, hi);
            Ref ra = to_ref(a), rb = to_ref(b);
            ts::Shape out = ts::broadcast_shapes("test", sa, sb);
            Ref want{out, {}};
            for_each_index(out, [&](std::span<const int64_t> idx, int64_t) {
              double x = ra.v[static_cast<size_t>(broadcast_index(sa, out, idx))];
              double y = rb.v[static_cast<size_t>(broadcast_index(sb, out, idx))];
              want.v.push_back(c.ref(x, y));
            });
            EXPECT_CLOSE(c.op(a, b), want, out_dt);
          }
        }
      }
    }
  }
}

TEST(Binary, PromotesMixedDtypesLikePyTorch) {
  ts::Tensor i32 = ts::full({2}, 3, ts::DType::Int32);
  ts::Tensor f16 = ts::full({2}, 1.5, ts::DType::Float16);
  ts::Tensor u8 = ts::full({2}, 200, ts::DType::UInt8);
  ts::Tensor i8 = ts::full({2}, -1, ts::DType::Int8);
  EXPECT_EQ(ts::add(i32, f16).dtype(), ts::DType::Float16);
  EXPECT_EQ(ts::add(u8, i8).dtype(), ts::DType::Int32);
  EXPECT_EQ(ts::add(u8, i8).to_vector<int32_t>()[0], 199);
  EXPECT_EQ(ts::div(i32, i32).dtype(), ts::DType::Float32);
  EXPECT_EQ((i32 * 2.5).dtype(), ts::DType::Float32);
  EXPECT_EQ((f16 * 2.0).dtype(), ts::DType::Float16);
  EXPECT_EQ((i8 + 1000).dtype(), ts::DType::Int8);
}

TEST(Binary, IntegerPowAndRemainderFollowPythonRules) {
  ts::Tensor a = ts::tensor<int64_t>({-7, 7, -7, 7, 2, -1}, {6});
  ts::Tensor b = ts::tensor<int64_t>({3, -3, -3, 3, -1, -3}, {6});
  EXPECT_EQ(ts::remainder(a, ts::tensor<int64_t>({3, -3, -3, 3, 5, 2}, {6})).to_vector<int64_t>(),
            (std::vector<int64_t>{2, -2, -1, 1, 2, 1}));
  EXPECT_EQ(ts::pow(a, b).to_vector<int64_t>(), (std::vector<int64_t>{-343, 0, 0, 343, 0, -1}));
  expect_error<ts::ValueError>([&] { ts::remainder(a, ts::zeros({6}, ts::DType::Int64)); }, {"[remainder]", "division by zero"});
}

TEST(Binary, ReportsBroadcastFailureWithShapes) {
  expect_error<ts::ShapeError>([] { ts::add(ts::zeros({2, 3}), ts::zeros({4})); }, {"[add]", "[2,3]", "[4]"});
}

TEST(Where, SelectsWithBroadcastingAndPromotion) {
  uint64_t seed = 5;
  for (ts::DType dt : all_dtypes()) {
    for (Layout l : all_layouts()) {
      ts::Tensor c = make_input({3, 4}, ts::DType::Bool, l, seed++);
      ts::Tensor a = make_input({4}, dt, Layout::Contiguous, seed++);
      ts::Tensor b = make_input({3, 1}, dt, Layout::Contiguous, seed++);
      Ref rc = to_ref(c), ra = to_ref(a), rb = to_ref(b);
      ts::Shape out{3, 4};
      Ref want{out, {}};
      for_each_index(out, [&](std::span<const int64_t> idx, int64_t lin) {
        want.v.push_back(rc.v[static_cast<size_t>(lin)] != 0 ? ra.v[static_cast<size_t>(idx[1])] : rb.v[static_cast<size_t>(idx[0])]);
      });
      EXPECT_CLOSE(ts::where(c, a, b), want, dt);
    }
  }
  ts::Tensor r = ts::where(ts::tensor<bool>({true, false}, {2}), ts::full({2}, 1, ts::DType::Int32), 2.5);
  EXPECT_EQ(r.dtype(), ts::DType::Float32);
  EXPECT_EQ(r.to_vector<float>(), (std::vector<float>{1.0f, 2.5f}));
}

TEST(Clamp, BoundsBothSides) {
  ts::Tensor x = ts::tensor<float>({-3, -1, 0, 2, 5}, {5});
  EXPECT_EQ(ts::clamp(x, -1.5, 2.5).to_vector<float>(), (std::vector<float>{-1.5f, -1, 0, 2, 2.5f}));
  EXPECT_EQ(ts::clamp(x, std::nullopt, 0).to_vector<float>(), (std::vector<float>{-3, -1, 0, 0, 0}));
}

TEST(Cast, ConvertsBetweenEveryPairOfDtypes) {
  uint64_t seed = 77;
  for (ts::DType from : all_dtypes()) {
    for (ts::DType to : all_dtypes()) {
      for (Layout l : all_layouts()) {
        SCOPED_TRACE(std::string(ts::dtype_name(from)) + " -> " + std::string(ts::dtype_name(to)) + " " + layout_name(l));
        ts::Tensor x = make_input({3, 5}, from, l, seed++, -100, 100);
        Ref r = to_ref(x);
        EXPECT_CLOSE(ts::cast(x, to), r, to);
      }
    }
  }
}
