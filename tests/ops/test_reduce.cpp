// Conformance of the reductions (sum, mean, prod, max, min, any, all, argmax, argmin, var, std,
// logsumexp) and cumsum against naive float64 references written here.
#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

#include "core/dispatch.h"
#include "harness/harness.h"

namespace ts = tessera;
using namespace tessera::testing;
using ts::Shape;
using ts::Strides;

namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
constexpr double kInf = std::numeric_limits<double>::infinity();

/// Normalized reduced axes (empty list = all), as the reference understands them.
std::vector<bool> reduced_mask(const Shape& shape, const std::vector<int64_t>& axes) {
  int64_t nd = static_cast<int64_t>(shape.size());
  std::vector<bool> red(shape.size(), axes.empty());
  for (int64_t a : axes) {
    if (nd == 0) continue;  // 0-d: axis 0 / -1 reduce over nothing
    red[static_cast<size_t>(a < 0 ? a + nd : a)] = true;
  }
  return red;
}

Shape reduced_shape(const Shape& shape, const std::vector<bool>& red, bool keepdims) {
  Shape out;
  for (size_t d = 0; d < shape.size(); ++d) {
    if (!red[d])
      out.push_back(shape[d]);
    else if (keepdims)
      out.push_back(1);
  }
  return out;
}

/// Naive reduction: the list of values of each output element (row-major), in input order.
std::vector<std::vector<double>> groups(const Ref& x, const std::vector<bool>& red) {
  Shape kept;
  for (size_t d = 0; d < x.shape.size(); ++d)
    if (!red[d]) kept.push_back(x.shape[d]);
  int64_t nout = 1;
  for (int64_t k : kept) nout *= k;
  std::vector<std::vector<double>> g(static_cast<size_t>(nout));
  for_each_index(x.shape, [&](std::span<const int64_t> idx, int64_t lin) {
    int64_t o = 0;
    for (size_t d = 0; d < idx.size(); ++d)
      if (!red[d]) o = o * x.shape[d] + idx[d];
    g[static_cast<size_t>(o)].push_back(x.v[static_cast<size_t>(lin)]);
  });
  return g;
}

Ref reduce_ref(const Ref& x, const std::vector<int64_t>& axes, bool keepdims,
               const std::function<double(const std::vector<double>&)>& f) {
  std::vector<bool> red = reduced_mask(x.shape, axes);
  Ref out{reduced_shape(x.shape, red, keepdims), {}};
  for (const auto& g : groups(x, red)) out.v.push_back(f(g));
  return out;
}

double ref_sum(const std::vector<double>& g) { return std::accumulate(g.begin(), g.end(), 0.0); }
double ref_prod(const std::vector<double>& g) {
  double p = 1;
  for (double v : g) p *= v;
  return p;
}
/// Integer products wrap modulo 2^64 (int64 two's complement).
double ref_prod_wrapping(const std::vector<double>& g) {
  uint64_t p = 1;
  for (double v : g) p *= static_cast<uint64_t>(static_cast<int64_t>(v));
  return static_cast<double>(static_cast<int64_t>(p));
}
double ref_max(const std::vector<double>& g) {
  double m = -kInf;
  for (double v : g) {
    if (std::isnan(v)) return kNaN;
    m = std::max(m, v);
  }
  return m;
}
double ref_min(const std::vector<double>& g) {
  double m = kInf;
  for (double v : g) {
    if (std::isnan(v)) return kNaN;
    m = std::min(m, v);
  }
  return m;
}
double ref_any(const std::vector<double>& g) {
  for (double v : g)
    if (v != 0) return 1;
  return 0;
}
double ref_all(const std::vector<double>& g) {
  for (double v : g)
    if (v == 0) return 0;
  return 1;
}
double ref_mean(const std::vector<double>& g) { return ref_sum(g) / static_cast<double>(g.size()); }
double ref_var(const std::vector<double>& g, int64_t correction) {
  double m = ref_mean(g), s = 0;
  for (double v : g) s += (v - m) * (v - m);
  return s / static_cast<double>(std::max<int64_t>(static_cast<int64_t>(g.size()) - correction, 0));
}
double ref_logsumexp(const std::vector<double>& g) {
  double m = -kInf;
  for (double v : g) m = std::isnan(v) || std::isnan(m) ? kNaN : std::max(m, v);
  if (std::isnan(m)) return kNaN;
  if (std::isinf(m)) return m;  // all -inf (or empty): -inf; any +inf: +inf
  double s = 0;
  for (double v : g) s += std::exp(v - m);
  return m + std::log(s);
}
/// First index of the extreme; NaN counts as the extreme.
double ref_argext(const std::vector<double>& g, bool is_max) {
  size_t best = 0;
  for (size_t i = 0; i < g.size(); ++i) {
    if (std::isnan(g[i])) return static_cast<double>(i);
    if (is_max ? g[i] > g[best] : g[i] < g[best]) best = i;
  }
  return static_cast<double>(best);
}

struct AxesCase {
  Shape shape;
  std::vector<int64_t> axes;
};

/// Shapes with axis sets: 0-d, empty, size-1 axes, single/multiple/negative/all axes, and the
/// kernel's paths (inner rows, outer rows, small power-of-two and odd trailing sizes, wide tiles).
const std::vector<AxesCase>& axes_cases() {
  static const std::vector<AxesCase> v{{{}, {}},
                                       {{}, {0}},
                                       {{}, {-1}},
                                       {{0}, {}},
                                       {{0}, {0}},
                                       {{3, 0}, {1}},
                                       {{3, 0}, {0}},
                                       {{0, 4}, {0}},
                                       {{0, 4}, {1}},
                                       {{3, 0}, {}},
                                       {{1}, {0}},
                                       {{7}, {0}},
                                       {{7}, {-1}},
                                       {{1, 1}, {}},
                                       {{4, 5}, {0}},
                                       {{4, 5}, {1}},
                                       {{4, 5}, {-1}},
                                       {{4, 5}, {0, 1}},
                                       {{4, 5}, {}},
                                       {{2, 1, 3}, {1}},
                                       {{2, 1, 3}, {0, 2}},
                                       {{2, 1, 3}, {-1, 0}},
                                       {{3, 4, 5}, {1}},
                                       {{3, 4, 5}, {0, 2}},
                                       {{3, 4, 5}, {2, 0}},
                                       {{3, 4, 5}, {0, 1}},
                                       {{3, 4, 5}, {-2, -1}},
                                       {{3, 4, 5}, {}},
                                       {{2, 3, 1, 4}, {1, 3}},
                                       {{2, 3, 1, 4}, {0, 2}},
                                       {{2, 3, 1, 4}, {3}},
                                       {{1000}, {0}},
                                       {{6, 300}, {1}},
                                       {{300, 4}, {0}},
                                       {{130, 16}, {0}},
                                       {{70, 3}, {0}},
                                       {{40, 300}, {0}},
                                       {{3, 40, 5}, {1}},
                                       {{2, 33, 260}, {1}},
                                       {{5, 130}, {-1}},
                                       {{2, 3, 4, 5}, {0, 2}},
                                       {{4, 8, 300}, {0, 2}},
                                       {{3, 4, 16, 4}, {0, 2}},
                                       {{3, 2, 20, 100}, {2, 0}}};
  return v;
}

/// Product of the reduced sizes (the number of elements in each group).
int64_t group_size(const AxesCase& c) {
  std::vector<bool> red = reduced_mask(c.shape, c.axes);
  int64_t n = 1;
  for (size_t d = 0; d < c.shape.size(); ++d)
    if (red[d]) n *= c.shape[d];
  return n;
}

bool has_empty_reduced_axis(const AxesCase& c) {
  std::vector<bool> red = reduced_mask(c.shape, c.axes);
  for (size_t d = 0; d < c.shape.size(); ++d)
    if (red[d] && c.shape[d] == 0) return true;
  return false;
}

struct ReduceCase {
  const char* name;
  std::function<ts::Tensor(const ts::Tensor&, ts::IntList, bool)> op;
  std::function<double(const std::vector<double>&)> ref;
  enum Kind { SumLike, SameDtype, ToBool, Float } kind;
  bool needs_nonempty = false;
  double lo = -2, hi = 2;
};

std::vector<ReduceCase> reduce_cases() {
  using K = ReduceCase::Kind;
  return {
      {"sum", [](auto& x, auto ax, bool k) { return ts::sum(x, ax, k); }, ref_sum, K::SumLike},
      {"prod", [](auto& x, auto ax, bool k) { return ts::prod(x, ax, k); }, ref_prod, K::SumLike, false, 0.9, 1.1},
      {"max", [](auto& x, auto ax, bool k) { return ts::max(x, ax, k); }, ref_max, K::SameDtype, true},
      {"min", [](auto& x, auto ax, bool k) { return ts::min(x, ax, k); }, ref_min, K::SameDtype, true},
      {"any", [](auto& x, auto ax, bool k) { return ts::any(x, ax, k); }, ref_any, K::ToBool, false, -0.4, 0.4},
      {"all", [](auto& x, auto ax, bool k) { return ts::all(x, ax, k); }, ref_all, K::ToBool, false, -0.4, 0.4},
      {"mean", [](auto& x, auto ax, bool k) { return ts::mean(x, ax, k); }, ref_mean, K::Float},
      {"logsumexp", [](auto& x, auto ax, bool k) { return ts::logsumexp(x, ax, k); }, ref_logsumexp, K::Float},
      {"var", [](auto& x, auto ax, bool k) { return ts::var(x, ax, 1, k); }, [](auto& g) { return ref_var(g, 1); },
       K::Float},
      {"var_c0", [](auto& x, auto ax, bool k) { return ts::var(x, ax, 0, k); }, [](auto& g) { return ref_var(g, 0); },
       K::Float},
      {"std", [](auto& x, auto ax, bool k) { return ts::std(x, ax, 1, k); },
       [](auto& g) { return std::sqrt(ref_var(g, 1)); }, K::Float},
  };
}

ts::DType out_dtype(ReduceCase::Kind k, ts::DType in) {
  switch (k) {
    case ReduceCase::SumLike:
      return ts::is_floating(in) ? in : ts::DType::Int64;
    case ReduceCase::SameDtype:
      return in;
    case ReduceCase::ToBool:
      return ts::DType::Bool;
    case ReduceCase::Float:
      return ts::to_floating(in);
  }
  return in;
}

}  // namespace

TEST(Reduce, MatchesFloat64ReferenceForEveryDtypeLayoutAndAxisSet) {
  uint64_t seed = 1;
  for (const auto& c : reduce_cases()) {
    for (ts::DType dt : all_dtypes()) {
      ts::DType odt = out_dtype(c.kind, dt);
      double lo = c.lo, hi = c.hi;
      // Integer inputs: small values so that products stay exact; any/all see zeros and non-zeros.
      if (!ts::is_floating(dt) && dt != ts::DType::Bool) {
        lo = std::string(c.name) == "prod" ? (dt == ts::DType::UInt8 ? 0 : -1) : std::floor(std::min(c.lo, -1.0));
        hi = std::string(c.name) == "prod" ? 1 : std::ceil(std::max(c.hi, 1.0));
      }
      for (const auto& ac : axes_cases()) {
        if (c.needs_nonempty && has_empty_reduced_axis(ac)) continue;
        int64_t n = group_size(ac);
        // Float32 rounding grows (slowly, pairwise) with the group size; float16 rounds the inputs
        // of the float32 composites (var, logsumexp) once more.
        double tol = 1.0 + static_cast<double>(n) / 200.0;
        if (c.kind == ReduceCase::Float && (dt == ts::DType::Float16 || dt == ts::DType::BFloat16)) tol *= 2;
        for (Layout layout : all_layouts()) {
          for (bool keepdims : {false, true}) {
            // Both keepdims values on contiguous inputs; one (alternating) on the other layouts.
            if (layout != Layout::Contiguous && keepdims != (seed % 2 == 0)) continue;
            SCOPED_TRACE(std::string(c.name) + " " + std::string(ts::dtype_name(dt)) + " " + ts::shape_str(ac.shape) +
                         " axes " + ts::shape_str(ac.axes) + (keepdims ? " keepdims " : " ") + layout_name(layout));
            ts::Tensor x = make_input(ac.shape, dt, layout, seed++, lo, hi);
            Ref want = reduce_ref(to_ref(x), ac.axes, keepdims,
                                  std::string(c.name) == "prod" && !ts::is_floating(dt) ? ref_prod_wrapping : c.ref);
            EXPECT_CLOSE_TOL(c.op(x, ac.axes, keepdims), want, odt, tol);
          }
        }
      }
    }
  }
}

TEST(Reduce, EmptyAxesGiveTheIdentity) {
  ts::Tensor x = ts::zeros({3, 0});
  EXPECT_EQ(ts::sum(x, {1}).to_vector<float>(), (std::vector<float>{0, 0, 0}));
  EXPECT_EQ(ts::prod(x, {1}).to_vector<float>(), (std::vector<float>{1, 1, 1}));
  EXPECT_EQ(ts::any(x, {1}).to_vector<bool>(), (std::vector<bool>{false, false, false}));
  EXPECT_EQ(ts::all(x, {1}).to_vector<bool>(), (std::vector<bool>{true, true, true}));
  EXPECT_TRUE(std::isnan(ts::mean(x).item<double>()));
  EXPECT_EQ(ts::logsumexp(x, {1}).to_vector<float>(), (std::vector<float>(3, -INFINITY)));
  EXPECT_EQ(ts::sum(ts::zeros({0}, ts::DType::Int32)).dtype(), ts::DType::Int64);
  EXPECT_EQ(ts::sum(x, {0}).shape(), (Shape{0}));
  EXPECT_EQ(ts::sum(x, {0}, true).shape(), (Shape{1, 0}));
}

TEST(Reduce, IntegralAndBoolInputsAccumulateInInt64) {
  ts::Tensor i8 = ts::full({300}, 100, ts::DType::Int8);
  EXPECT_EQ(ts::sum(i8).dtype(), ts::DType::Int64);
  EXPECT_EQ(ts::sum(i8).item<int64_t>(), 30000);
  ts::Tensor u8 = ts::full({4, 100}, 255, ts::DType::UInt8);
  EXPECT_EQ(ts::sum(u8, {1}).to_vector<int64_t>(), (std::vector<int64_t>(4, 25500)));
  ts::Tensor b = ts::tensor<bool>({true, false, true, true}, {4});
  EXPECT_EQ(ts::sum(b).item<int64_t>(), 3);
  EXPECT_EQ(ts::prod(b).item<int64_t>(), 0);
  EXPECT_EQ(ts::prod(ts::tensor<int32_t>({2, 3, 4, -5}, {4})).item<int64_t>(), -120);
  // int64 products wrap modulo 2^64 like PyTorch (no undefined behaviour).
  int64_t big = int64_t{1} << 40;
  ts::Tensor w = ts::tensor<int64_t>({big, big, 3}, {3});
  uint64_t expect = static_cast<uint64_t>(big) * static_cast<uint64_t>(big) * 3u;
  EXPECT_EQ(ts::prod(w).item<int64_t>(), static_cast<int64_t>(expect));
  ts::Tensor s = ts::tensor<int64_t>({INT64_MAX, 1}, {2});
  EXPECT_EQ(ts::sum(s).item<int64_t>(), INT64_MIN);
  // Exact int64 sums beyond float64's 53 bits.
  ts::Tensor e = ts::tensor<int64_t>({(int64_t{1} << 60) + 1, 1}, {2});
  EXPECT_EQ(ts::sum(e).item<int64_t>(), (int64_t{1} << 60) + 2);
}

TEST(Reduce, HalfPrecisionSumsAccumulateInFloat32) {
  // 4096 ones: a float16 accumulator would stop at 2048.
  ts::Tensor h = ts::ones({4096}, ts::DType::Float16);
  EXPECT_EQ(ts::sum(h).dtype(), ts::DType::Float16);
  EXPECT_EQ(ts::sum(h).item<double>(), 4096.0);
  ts::Tensor b = ts::ones({64, 3000}, ts::DType::BFloat16);
  EXPECT_EQ(ts::sum(b, {1}).to_vector<double>(), std::vector<double>(64, 3008.0));  // 3000 rounded to bfloat16
  // mean goes through float32, so its sum cannot overflow float16.
  ts::Tensor m = ts::full({100000}, 2.0, ts::DType::Float16);
  EXPECT_EQ(ts::mean(m).item<double>(), 2.0);
}

TEST(Reduce, MaxMinPropagateNaNAndArgFindsFirstNaN) {
  for (ts::DType dt : float_dtypes()) {
    SCOPED_TRACE(std::string(ts::dtype_name(dt)));
    // Inner rows (last axis), a long row, and outer columns (axis 0).
    std::vector<double> v{1, kNaN, 5, kNaN, -3, 2};
    ts::Tensor x = ts::cast(ts::tensor(v, {2, 3}), dt);
    EXPECT_TRUE(std::isnan(ts::max(x).item<double>()));
    EXPECT_TRUE(std::isnan(ts::min(x).item<double>()));
    auto rows = ts::max(x, {1}).to_vector<double>();
    EXPECT_TRUE(std::isnan(rows[0]) && std::isnan(rows[1]));
    auto cols = ts::min(x, {0}).to_vector<double>();
    EXPECT_TRUE(std::isnan(cols[0]) && std::isnan(cols[1]));
    EXPECT_EQ(cols[2], 2);
    EXPECT_EQ(ts::argmax(x, 1).to_vector<int64_t>(), (std::vector<int64_t>{1, 0}));
    EXPECT_EQ(ts::argmin(x, 0).to_vector<int64_t>(), (std::vector<int64_t>{1, 0, 1}));
  }
}

TEST(Reduce, ArgMaxArgMinMatchReferenceWithTiesAndLayouts) {
  uint64_t seed = 7000;
  struct ArgCase {
    Shape shape;
    std::optional<int64_t> axis;
  };
  std::vector<ArgCase> cases{{{}, std::nullopt},     {{}, 0},        {{1}, 0},       {{7}, 0},
                             {{7}, std::nullopt},    {{4, 5}, 0},    {{4, 5}, 1},    {{4, 5}, -1},
                             {{4, 5}, std::nullopt}, {{3, 4, 5}, 1}, {{2, 1, 3}, 1}, {{3, 0}, 0},
                             {{70, 300}, 0},         {{5, 1000}, 1}, {{300, 3}, 0}};
  for (bool is_max : {true, false}) {
    for (ts::DType dt : all_dtypes()) {
      for (const auto& c : cases) {
        for (Layout layout : all_layouts()) {
          for (bool keepdims : {false, true}) {
            SCOPED_TRACE(std::string(is_max ? "argmax " : "argmin ") + std::string(ts::dtype_name(dt)) + " " +
                         ts::shape_str(c.shape) + " axis " + (c.axis ? std::to_string(*c.axis) : "none") +
                         (keepdims ? " keepdims " : " ") + layout_name(layout));
            // Integers in [-3, 3] tie often: the first occurrence must win.
            ts::Tensor x = make_input(c.shape, dt, layout, seed++, -3, 3);
            ts::Tensor got = is_max ? ts::argmax(x, c.axis, keepdims) : ts::argmin(x, c.axis, keepdims);
            Ref rx = to_ref(x);
            Ref want;
            if (!c.axis) {
              want.v.push_back(rx.v.empty() ? 0 : ref_argext(rx.v, is_max));
              if (keepdims) want.shape = Shape(c.shape.size(), 1);
            } else {
              std::vector<int64_t> ax{*c.axis};
              want = reduce_ref(rx, ax, keepdims, [&](const std::vector<double>& g) { return ref_argext(g, is_max); });
            }
            EXPECT_CLOSE(got, want, ts::DType::Int64);
          }
        }
      }
    }
  }
}

TEST(Reduce, ArgMaxTreatsNaNAsExtremeAndLongRowsSplitCorrectly) {
  std::vector<float> v(400000);
  for (size_t i = 0; i < v.size(); ++i) v[i] = static_cast<float>((i * 7919) % 100003) / 100.0f;
  v[333333] = 5000.0f;  // the unique maximum, late in the row
  v[12345] = -1.0f;
  ts::Tensor x = ts::tensor(v, {400000});
  EXPECT_EQ(ts::argmax(x).item<int64_t>(), 333333);
  EXPECT_EQ(ts::argmin(x).item<int64_t>(), 12345);
  v[200001] = NAN;
  v[300001] = NAN;
  ts::Tensor y = ts::tensor(v, {400000});
  EXPECT_EQ(ts::argmax(y).item<int64_t>(), 200001);
  EXPECT_EQ(ts::argmin(y).item<int64_t>(), 200001);
  ts::Tensor cols = ts::tensor<float>({1, NAN, 3, NAN, 2, 9}, {3, 2});
  EXPECT_EQ(ts::argmax(cols, 0).to_vector<int64_t>(), (std::vector<int64_t>{1, 0}));
  EXPECT_EQ(ts::argmin(cols, 0).to_vector<int64_t>(), (std::vector<int64_t>{0, 0}));
}

TEST(Reduce, CumsumMatchesReferenceForEveryDtypeLayoutAndAxis) {
  uint64_t seed = 9000;
  struct CumCase {
    Shape shape;
    int64_t axis;
  };
  std::vector<CumCase> cases{{{}, 0},        {{}, -1},       {{0}, 0},      {{1}, 0},       {{7}, 0},
                             {{3, 0}, 1},    {{3, 0}, 0},    {{4, 5}, 0},   {{4, 5}, 1},    {{4, 5}, -1},
                             {{3, 4, 5}, 1}, {{2, 1, 3}, 1}, {{3, 300}, 0}, {{2, 1000}, 1}, {{2, 3, 1, 4}, -2}};
  for (ts::DType dt : all_dtypes()) {
    ts::DType odt = ts::is_floating(dt) ? dt : ts::DType::Int64;
    for (const auto& c : cases) {
      for (Layout layout : all_layouts()) {
        SCOPED_TRACE(std::string(ts::dtype_name(dt)) + " " + ts::shape_str(c.shape) + " axis " +
                     std::to_string(c.axis) + " " + layout_name(layout));
        ts::Tensor x = make_input(c.shape, dt, layout, seed++);
        Ref rx = to_ref(x);
        Ref want{rx.shape, std::vector<double>(rx.v.size())};
        if (c.shape.empty()) {
          want.v = rx.v;
        } else {
          int64_t nd = static_cast<int64_t>(c.shape.size()), ax = c.axis < 0 ? c.axis + nd : c.axis;
          Strides st = rx.strides();
          for_each_index(rx.shape, [&](std::span<const int64_t> idx, int64_t lin) {
            double s = 0;
            for (int64_t r = 0; r <= idx[static_cast<size_t>(ax)]; ++r)
              s += rx.v[static_cast<size_t>(lin + (r - idx[static_cast<size_t>(ax)]) * st[static_cast<size_t>(ax)])];
            want.v[static_cast<size_t>(lin)] = s;
          });
        }
        int64_t len =
            c.shape.empty()
                ? 1
                : c.shape[static_cast<size_t>(c.axis < 0 ? c.axis + static_cast<int64_t>(c.shape.size()) : c.axis)];
        EXPECT_CLOSE_TOL(ts::cumsum(x, c.axis), want, odt, 1.0 + static_cast<double>(len) / 100.0);
      }
    }
  }
}

TEST(Reduce, SumIsAccurateOnLongFloat32Inputs) {
  // 1e7 values 0.1 + small noise: naive float32 accumulation is off by ~1e-2 relative.
  const int64_t n = 10'000'000;
  std::vector<float> v(static_cast<size_t>(n));
  uint64_t s = 12345;
  for (auto& f : v) {
    s = s * 6364136223846793005ull + 1442695040888963407ull;
    f = 0.1f + static_cast<float>(static_cast<double>(s >> 11) * 0x1.0p-53 - 0.5) * 1e-3f;
  }
  double ref = 0;
  float naive = 0;
  for (float f : v) ref += f, naive += f;
  ASSERT_GT(std::fabs(naive - ref) / ref, 1e-6) << "the naive float sum should fail this test";
  ts::Tensor x = ts::tensor(v, {n});
  EXPECT_LT(std::fabs(ts::sum(x).item<double>() - ref) / ref, 1e-6);
  EXPECT_LT(std::fabs(ts::mean(x).item<double>() - ref / static_cast<double>(n)) / (ref / static_cast<double>(n)),
            1e-6);
  // The same data reduced along the outer axis (columns of rows) and as a few long rows.
  for (auto shape : {Shape{2500000, 4}, Shape{100000, 100}, Shape{4, 2500000}}) {
    SCOPED_TRACE(ts::shape_str(shape));
    ts::Tensor m = ts::reshape(x, shape);
    int axis = shape[0] == 4 ? 1 : 0;
    std::vector<double> got = ts::sum(m, {axis}).to_vector<double>();
    int64_t R = shape[static_cast<size_t>(axis)], C = shape[static_cast<size_t>(1 - axis)];
    for (int64_t c = 0; c < C; c += std::max<int64_t>(1, C / 7)) {
      double r = 0;
      for (int64_t i = 0; i < R; ++i) r += v[static_cast<size_t>(axis == 0 ? i * C + c : c * R + i)];
      EXPECT_LT(std::fabs(got[static_cast<size_t>(c)] - r) / r, 1e-6) << "column " << c;
    }
  }
}

TEST(Reduce, ResultsDoNotDependOnTheThreadCount) {
  int saved = ts::get_num_threads();
  std::vector<std::pair<Shape, std::vector<int64_t>>> cases{
      {{3, 300000}, {1}}, {{300000, 3}, {0}},   {{200000, 8}, {0}},      {{1000000}, {}},
      {{50, 20000}, {1}}, {{2, 90000, 3}, {1}}, {{8, 3, 40000}, {0, 2}}, {{30, 2, 3000, 40}, {0, 2}}};
  for (const auto& [shape, axes] : cases) {
    SCOPED_TRACE(ts::shape_str(shape));
    ts::Tensor x = make_input(shape, ts::DType::Float32, Layout::Contiguous, 4242, -1, 3);
    std::vector<std::vector<float>> results;
    for (int nt : {1, 2, 3}) {
      ts::set_num_threads(nt);
      results.push_back(ts::sum(x, axes).to_vector<float>());
      results.push_back(ts::prod(ts::div(x, 1.5), axes).to_vector<float>());
      results.push_back(ts::max(x, axes).to_vector<float>());
    }
    ts::set_num_threads(saved);
    for (size_t i = 3; i < results.size(); ++i) EXPECT_EQ(results[i], results[i % 3]) << "result " << i;
  }
  ts::set_num_threads(saved);
}

TEST(Reduce, ChunkedLongReductionsMatchUnchunkedBitForBit) {
  // Few outputs split long reductions into chunks; many outputs do not. The chunks are aligned to the
  // pairwise cascade, so the same rows must give the same bits either way.
  ts::Tensor x = make_input({64, 70000}, ts::DType::Float32, Layout::Contiguous, 31, 0, 1);
  std::vector<float> many = ts::sum(x, {1}).to_vector<float>();
  std::vector<float> few = ts::sum(ts::slice(x, 0, 0, 3), {1}).to_vector<float>();
  for (size_t i = 0; i < few.size(); ++i) EXPECT_EQ(few[i], many[i]) << "row " << i;
  ts::Tensor y = make_input({32, 2000, 10}, ts::DType::Float32, Layout::Contiguous, 32, 0, 1);
  std::vector<float> all_blocks = ts::sum(y, {1}).to_vector<float>();
  std::vector<float> one_block = ts::sum(ts::select(y, 0, 0), {0}).to_vector<float>();
  for (size_t i = 0; i < one_block.size(); ++i) EXPECT_EQ(one_block[i], all_blocks[i]) << "column " << i;
}

TEST(Reduce, LogsumexpHandlesInfinitiesAndNaN) {
  ts::Tensor x = ts::tensor<float>({-INFINITY, -INFINITY, 1, INFINITY, 0, NAN, 1000, 1000}, {4, 2});
  std::vector<float> r = ts::logsumexp(x, {1}).to_vector<float>();
  EXPECT_EQ(r[0], -INFINITY);
  EXPECT_EQ(r[1], INFINITY);
  EXPECT_TRUE(std::isnan(r[2]));
  EXPECT_NEAR(r[3], 1000 + std::log(2.0), 1e-3);  // no overflow
  EXPECT_EQ(ts::logsumexp(ts::tensor<int32_t>({1, 2}, {2})).dtype(), ts::DType::Float32);
}

TEST(Reduce, VarUsesTwoPassesAndCorrection) {
  // A large offset: the one-pass formula E[x^2] - E[x]^2 loses every digit here.
  ts::Tensor x = ts::tensor<float>({1e4f + 1, 1e4f + 2, 1e4f + 3, 1e4f + 4}, {4});
  EXPECT_NEAR(ts::var(x).item<double>(), 5.0 / 3.0, 1e-4);
  EXPECT_NEAR(ts::var(x, {}, 0).item<double>(), 1.25, 1e-4);
  EXPECT_NEAR(ts::std(x, {}, 0).item<double>(), std::sqrt(1.25), 1e-4);
  EXPECT_TRUE(std::isnan(ts::var(ts::ones({1})).item<double>()));  // 0 / 0
  EXPECT_TRUE(std::isinf(ts::var(x, {}, 4).item<double>()));       // N - correction = 0
  EXPECT_EQ(ts::var(ts::ones({2, 3}, ts::DType::Int32), {1}).dtype(), ts::DType::Float32);
}

TEST(Reduce, RejectsBadAxesAndEmptyExtremaWithOpName) {
  ts::Tensor x = ts::zeros({2, 3});
  expect_error<ts::IndexError>([&] { ts::sum(x, {2}); }, {"[sum]", "axis 2"});
  expect_error<ts::IndexError>([&] { ts::mean(x, {-3}); }, {"[mean]", "axis -3"});
  expect_error<ts::ValueError>([&] { ts::sum(x, {0, 0}); }, {"[sum]", "repeated"});
  expect_error<ts::ValueError>([&] { ts::max(x, {1, -1}); }, {"[max]", "repeated"});
  expect_error<ts::IndexError>([&] { ts::sum(ts::zeros({}), {1}); }, {"[sum]", "axis 1"});
  expect_error<ts::IndexError>([&] { ts::argmax(x, 2); }, {"[argmax]", "axis 2"});
  expect_error<ts::IndexError>([&] { ts::cumsum(x, -3); }, {"[cumsum]", "axis -3"});
  expect_error<ts::ValueError>([&] { ts::max(ts::zeros({3, 0}), {1}); }, {"[max]", "[3,0]"});
  expect_error<ts::ValueError>([&] { ts::min(ts::zeros({0})); }, {"[min]", "[0]"});
  expect_error<ts::ValueError>([&] { ts::argmax(ts::zeros({0, 2})); }, {"[argmax]", "[0,2]"});
  expect_error<ts::ValueError>([&] { ts::argmin(ts::zeros({2, 0}), 1); }, {"[argmin]", "[2,0]"});
  expect_error<ts::ValueError>([&] { ts::var(ts::Tensor()); }, {"[var]", "undefined"});
  // The primitives validate their attributes too (graph mode builds them directly).
  using ts::detail::dispatch1;
  expect_error<ts::ValueError>(
      [&] {
        dispatch1(ts::OpId::Sum, {x}, ts::ReduceAttrs{{1, 0}, false});
      },
      {"[sum]", "sorted"});
  expect_error<ts::IndexError>(
      [&] {
        dispatch1(ts::OpId::Any, {x}, ts::ReduceAttrs{{5}, false});
      },
      {"[any]", "axis 5"});
  expect_error<ts::ValueError>(
      [&] {
        dispatch1(ts::OpId::Prod, {x}, ts::ReduceAttrs{{}, false});
      },
      {"[prod]", "non-empty"});
}

TEST(Reduce, ZeroDimInputsReduceToThemselves) {
  ts::Tensor s = ts::full({}, 2.5);
  EXPECT_EQ(ts::sum(s).shape(), Shape{});
  EXPECT_EQ(ts::sum(s, {0}, true).item<double>(), 2.5);
  EXPECT_EQ(ts::max(s, {-1}).item<double>(), 2.5);
  EXPECT_EQ(ts::argmax(s).item<int64_t>(), 0);
  EXPECT_EQ(ts::cumsum(s, 0).shape(), Shape{});
  EXPECT_TRUE(std::isnan(ts::var(s).item<double>()));
  EXPECT_EQ(ts::var(s, {}, 0).item<double>(), 0.0);
}
