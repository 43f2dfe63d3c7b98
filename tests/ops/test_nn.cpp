// Conformance of softmax, log_softmax, layer_norm, rms_norm, batch_norm and dropout against
// naive float64 references.
#include <cmath>
#include <limits>

#include "harness/harness.h"

namespace ts = tessera;
using namespace tessera::testing;

namespace {

// ------------------------------------------------------------ references
// Views a Ref of shape [..., n, ...] as [outer, n, inner] around axis.
struct Split {
  int64_t outer = 1, n = 1, inner = 1;
};
Split split_at(const ts::Shape& s, int64_t axis, int64_t axes = 1) {
  Split r;
  for (int64_t d = 0; d < static_cast<int64_t>(s.size()); ++d) {
    int64_t v = s[static_cast<size_t>(d)];
    if (d < axis)
      r.outer *= v;
    else if (d < axis + axes)
      r.n *= v;
    else
      r.inner *= v;
  }
  return r;
}

Ref softmax_ref(const Ref& x, int64_t axis, bool log) {
  Ref y{x.shape, std::vector<double>(x.v.size())};
  Split sp = split_at(x.shape, axis);
  for (int64_t o = 0; o < sp.outer; ++o) {
    for (int64_t i = 0; i < sp.inner; ++i) {
      auto at = [&](int64_t k) { return static_cast<size_t>((o * sp.n + k) * sp.inner + i); };
      double m = -INFINITY;
      for (int64_t k = 0; k < sp.n; ++k) m = std::max(m, x.v[at(k)]);
      double s = 0;
      for (int64_t k = 0; k < sp.n; ++k) s += std::exp(x.v[at(k)] - m);
      for (int64_t k = 0; k < sp.n; ++k)
        y.v[at(k)] = log ? (x.v[at(k)] - m) - std::log(s) : std::exp(x.v[at(k)] - m) / s;
    }
  }
  return y;
}

// Normalizes the trailing k axes; w/b (may be empty) hold one row of parameters. Statistics in
// long double: inputs far from zero (1e4 +- 1) make a float64 mean itself off by an ulp.
Ref norm_ref(const Ref& x, int64_t k, const std::vector<double>& w, const std::vector<double>& b, double eps,
             bool rms) {
  Ref y{x.shape, std::vector<double>(x.v.size())};
  Split sp = split_at(x.shape, static_cast<int64_t>(x.shape.size()) - k, k);
  for (int64_t r = 0; r < sp.outer; ++r) {
    const double* xr = x.v.data() + r * sp.n;
    double* yr = y.v.data() + r * sp.n;
    long double mean = 0, var = 0;
    if (!rms) {
      for (int64_t j = 0; j < sp.n; ++j) mean += xr[j];
      mean /= static_cast<long double>(sp.n);
    }
    for (int64_t j = 0; j < sp.n; ++j) var += (xr[j] - mean) * (xr[j] - mean);
    var /= static_cast<long double>(sp.n);
    long double rs = 1 / std::sqrt(var + eps);
    for (int64_t j = 0; j < sp.n; ++j) {
      long double v = (xr[j] - mean) * rs;
      if (!w.empty()) v *= w[static_cast<size_t>(j)];
      if (!b.empty()) v += b[static_cast<size_t>(j)];
      yr[j] = static_cast<double>(v);
    }
  }
  return y;
}

std::string trace(const char* op, ts::DType dt, const ts::Shape& s, Layout l, int64_t axis) {
  return std::string(op) + " " + std::string(ts::dtype_name(dt)) + " " + ts::shape_str(s) + " " + layout_name(l) +
         " axis " + std::to_string(axis);
}

const std::vector<ts::DType>& softmax_dtypes() {
  static const std::vector<ts::DType> v{ts::DType::Float16, ts::DType::BFloat16, ts::DType::Float32, ts::DType::Float64,
                                        ts::DType::Int32,   ts::DType::UInt8,    ts::DType::Bool};
  return v;
}

}  // namespace

// ---------------------------------------------------------------- softmax
TEST(Softmax, MatchesFloat64ReferenceOnEveryAxisLayoutAndDtype) {
  uint64_t seed = 1;
  for (bool log : {false, true}) {
    for (ts::DType dt : softmax_dtypes()) {
      ts::DType out_dt = ts::to_floating(dt);
      for (const auto& shape : unary_shapes()) {
        int64_t nd = static_cast<int64_t>(shape.size());
        for (int64_t axis = -std::max<int64_t>(nd, 1); axis < std::max<int64_t>(nd, 1); ++axis) {
          for (Layout layout : all_layouts()) {
            SCOPED_TRACE(trace(log ? "log_softmax" : "softmax", dt, shape, layout, axis));
            ts::Tensor x = make_input(shape, dt, layout, seed++, -4, 4);
            Ref rx = to_ref(x);
            int64_t ax = nd == 0 ? 0 : (axis + nd) % nd;
            Ref want = nd == 0 ? softmax_ref(Ref{ts::Shape{1}, rx.v}, 0, log) : softmax_ref(rx, ax, log);
            want.shape = rx.shape;
            ts::Tensor y = log ? ts::log_softmax(x, axis) : ts::softmax(x, axis);
            EXPECT_CLOSE(y, want, out_dt);
          }
        }
      }
    }
  }
}

TEST(Softmax, LargeRowsAndColumnsMatchReference) {
  // Long rows exercise the blocked sums and vector tails; a non-last axis with a wide inner
  // extent exercises the column kernel's blocking (inner 300 = 256 + 44).
  uint64_t seed = 77;
  for (ts::DType dt : {ts::DType::Float32, ts::DType::Float64, ts::DType::BFloat16}) {
    for (bool log : {false, true}) {
      for (auto [shape, axis] : std::vector<std::pair<ts::Shape, int64_t>>{
               {{3, 5000}, 1}, {{2, 37, 300}, 1}, {{600, 9}, 0}, {{5, 3, 2, 129}, 0}, {{4097}, 0}}) {
        SCOPED_TRACE(trace(log ? "log_softmax" : "softmax", dt, shape, Layout::Contiguous, axis));
        ts::Tensor x = make_input(shape, dt, Layout::Contiguous, seed++, -10, 10);
        Ref want = softmax_ref(to_ref(x), axis, log);
        EXPECT_CLOSE(log ? ts::log_softmax(x, axis) : ts::softmax(x, axis), want, dt);
      }
    }
  }
}

namespace {
// Runs fn with `threads` CPU threads, restoring the previous count.
template <typename Fn>
void with_threads(int threads, Fn&& fn) {
  int old = ts::get_num_threads();
  ts::set_num_threads(threads);
  fn();
  ts::set_num_threads(old);
}
}  // namespace

TEST(Softmax, LongRowsSplitAcrossThreadsMatchReference) {
  // Rows of >= 65536 elements are cut into chunks that run in parallel, and the per-chunk maxima
  // and sums are combined (three threads: chunks do not split evenly). A run of -inf longer than a chunk
  // checks that an all -inf chunk adds nothing instead of NaN.
  with_threads(3, [] {
    uint64_t seed = 500;
    for (ts::DType dt : {ts::DType::Float32, ts::DType::Float64}) {
      for (bool log : {false, true}) {
        SCOPED_TRACE(std::string(log ? "log_softmax " : "softmax ") + std::string(ts::dtype_name(dt)));
        ts::Tensor x = make_input({2, 200003}, dt, Layout::Contiguous, seed++, -20, 20);
        Ref rx = to_ref(x);
        for (size_t i = 1000; i < 80000; ++i) rx.v[i] = -INFINITY;
        x = ts::cast(from_ref(rx), dt);
        EXPECT_CLOSE(log ? ts::log_softmax(x, -1) : ts::softmax(x, -1), softmax_ref(rx, 1, log), dt);
        // Rows at a stride (every other row of a taller matrix).
        ts::Tensor tall = make_input({6, 70000}, dt, Layout::Contiguous, seed++, -5, 5);
        ts::Tensor rows = ts::slice(tall, 0, 0, std::nullopt, 2);
        EXPECT_CLOSE(log ? ts::log_softmax(rows, 1) : ts::softmax(rows, 1), softmax_ref(to_ref(rows), 1, log), dt);
      }
    }
    ts::Tensor minf = ts::full({1, 70000}, -INFINITY);
    for (double v : ts::softmax(minf, 1).to_vector<double>()) ASSERT_TRUE(std::isnan(v));
  });
}

TEST(Softmax, StableForLargeMagnitudeInputs) {
  // exp(1e4) overflows every float type: the result is only right when the max is subtracted.
  uint64_t seed = 300;
  for (ts::DType dt : {ts::DType::Float32, ts::DType::Float64}) {
    for (auto [lo, hi] : std::vector<std::pair<double, double>>{{1e4, 1e4 + 8}, {-1e4 - 8, -1e4}, {-1e4, 1e4}}) {
      for (bool log : {false, true}) {
        for (int64_t axis : {0, 1}) {
          SCOPED_TRACE(std::string(log ? "log_softmax " : "softmax ") + std::string(ts::dtype_name(dt)) + " lo " +
                       std::to_string(lo) + " axis " + std::to_string(axis));
          ts::Tensor x = make_input({6, 33}, dt, Layout::Contiguous, seed++, lo, hi);
          Ref want = softmax_ref(to_ref(x), axis, log);
          ts::Tensor y = log ? ts::log_softmax(x, axis) : ts::softmax(x, axis);
          // log_softmax over [-1e4, 1e4] has outputs near -2e4: relative tolerance covers them.
          EXPECT_CLOSE(y, want, dt);
          for (double v : y.to_vector<double>()) EXPECT_TRUE(std::isfinite(v));
        }
      }
    }
  }
}

TEST(Softmax, RowsOfMinusInfinityGiveNaNAndInfinitiesElsewhereGiveZero) {
  const double inf = std::numeric_limits<double>::infinity();
  for (ts::DType dt : float_dtypes()) {
    ts::Tensor x = ts::cast(ts::tensor<double>({-inf, -inf, -inf, 0.0, -inf, 1.0}, {2, 3}), dt);
    std::vector<double> y = ts::softmax(x, -1).to_vector<double>();
    for (int i = 0; i < 3; ++i) EXPECT_TRUE(std::isnan(y[static_cast<size_t>(i)])) << ts::dtype_name(dt);
    EXPECT_NEAR(y[3], 1 / (1 + std::exp(1.0)), 1e-2);
    EXPECT_EQ(y[4], 0.0);
    EXPECT_NEAR(y[5], std::exp(1.0) / (1 + std::exp(1.0)), 1e-2);
    std::vector<double> l = ts::log_softmax(x, -1).to_vector<double>();
    EXPECT_TRUE(std::isnan(l[0]));
    EXPECT_EQ(l[4], -inf);
    // Column kernel: the same data along axis 0.
    std::vector<double> c = ts::softmax(ts::transpose(x, 0, 1).contiguous(), 0).to_vector<double>();
    EXPECT_TRUE(std::isnan(c[0]) && std::isnan(c[2]) && std::isnan(c[4]));
    EXPECT_EQ(c[3], 0.0);
  }
}

TEST(Softmax, NaNPoisonsOnlyItsRow) {
  ts::Tensor x = ts::tensor<float>({1, NAN, 2, 1, 2, 3}, {2, 3});
  std::vector<double> y = ts::softmax(x, 1).to_vector<double>();
  for (int i = 0; i < 3; ++i) EXPECT_TRUE(std::isnan(y[static_cast<size_t>(i)]));
  for (int i = 3; i < 6; ++i) EXPECT_TRUE(std::isfinite(y[static_cast<size_t>(i)]));
}

TEST(Softmax, RejectsBadAxisAndUndefinedInput) {
  ts::Tensor x = ts::zeros({2, 3});
  expect_error<ts::IndexError>([&] { ts::softmax(x, 2); }, {"[softmax]", "axis 2", "rank 2"});
  expect_error<ts::IndexError>([&] { ts::log_softmax(x, -3); }, {"[log_softmax]", "axis -3"});
  expect_error<ts::ValueError>([&] { ts::softmax(ts::Tensor(), 0); }, {"[softmax]", "undefined"});
}

// ------------------------------------------------------------- layer norm
namespace {
struct NormCase {
  ts::Shape shape;
  int64_t k;  // normalized trailing axes
};
std::vector<NormCase> norm_cases() {
  return {{{1}, 1},    {{7}, 1},    {{4, 5}, 1},       {{4, 5}, 2}, {{2, 1, 3}, 1}, {{3, 4, 5}, 2}, {{2, 3, 1, 4}, 3},
          {{3, 0}, 1}, {{0, 3}, 1}, {{2, 3, 4, 5}, 1}, {{5, 1}, 1}, {{1000}, 1},    {{3, 1030}, 1}};
}
std::vector<double> param_values(const ts::Tensor& p) { return p.defined() ? to_ref(p).v : std::vector<double>{}; }
ts::Shape trailing(const ts::Shape& s, int64_t k) { return ts::Shape(s.end() - k, s.end()); }
}  // namespace

TEST(LayerNorm, MatchesFloat64ReferenceForLayoutsDtypesAndAffineCombinations) {
  uint64_t seed = 1000;
  for (bool rms : {false, true}) {
    for (ts::DType dt : float_dtypes()) {
      for (const auto& c : norm_cases()) {
        ts::Shape ns = trailing(c.shape, c.k);
        for (int affine = 0; affine < 4; ++affine) {
          bool has_w = affine & 1, has_b = (affine & 2) != 0;
          if (rms && has_b) continue;
          for (Layout layout : all_layouts()) {
            SCOPED_TRACE(trace(rms ? "rms_norm" : "layer_norm", dt, c.shape, layout, c.k) + " weight " +
                         std::to_string(has_w) + " bias " + std::to_string(has_b));
            ts::Tensor x = make_input(c.shape, dt, layout, seed++, -3, 5);
            // Parameters in another layout too (sliced): the kernel must not assume contiguity.
            ts::Tensor w = has_w ? make_input(ns, dt, layout == Layout::Sliced ? Layout::Sliced : Layout::Contiguous,
                                              seed++, 0.5, 2)
                                 : ts::Tensor();
            ts::Tensor b = has_b ? make_input(ns, dt, Layout::Offset, seed++, -1, 1) : ts::Tensor();
            double eps = rms ? 1e-6 : 1e-5;
            Ref want = norm_ref(to_ref(x), c.k, param_values(w), param_values(b), eps, rms);
            ts::Tensor y = rms ? ts::rms_norm(x, ns, w, eps) : ts::layer_norm(x, ns, w, b, eps);
            // The normalized values of low-precision inputs are rounded once more by rstd.
            EXPECT_CLOSE_TOL(y, want, dt, dt == ts::DType::Float32 || dt == ts::DType::Float64 ? 1 : 2);
          }
        }
      }
    }
  }
}

TEST(LayerNorm, IntegerInputsComputeInFloat32) {
  ts::Tensor x = make_input({3, 4}, ts::DType::Int32, Layout::Contiguous, 5, -20, 20);
  Ref want = norm_ref(to_ref(x), 1, {}, {}, 1e-5, false);
  EXPECT_CLOSE(ts::layer_norm(x, {4}), want, ts::DType::Float32);
}

TEST(LayerNorm, AccurateForLargeOffsetsAndLongRows) {
  // Inputs around 1e4 with unit spread: a one-pass or float-mean variance loses most digits here.
  uint64_t seed = 4000;
  for (ts::DType dt : {ts::DType::Float32, ts::DType::Float64}) {
    for (ts::Shape shape : {ts::Shape{8, 1024}, ts::Shape{2, 100003}}) {
      for (bool rms : {false, true}) {
        SCOPED_TRACE(trace(rms ? "rms_norm" : "layer_norm", dt, shape, Layout::Contiguous, 1));
        ts::Tensor x = make_input(shape, dt, Layout::Contiguous, seed++, 1e4 - 1, 1e4 + 1);
        int64_t n = shape.back();
        ts::Tensor w = make_input({n}, dt, Layout::Contiguous, seed++, 0.5, 2);
        Ref want = norm_ref(to_ref(x), 1, param_values(w), {}, 1e-5, rms);
        ts::Tensor y = rms ? ts::rms_norm(x, {n}, w, 1e-5) : ts::layer_norm(x, {n}, w, {}, 1e-5);
        EXPECT_CLOSE(y, want, dt);
      }
    }
  }
}

TEST(LayerNorm, LargeOutputsWrittenWithStreamingStoresMatchReference) {
  // 4.6M float32 elements (37 MB in + out) exceed the norm kernels' streaming threshold (at most
  // 32 MiB), so rows go through the scratch row + non-temporal copy; an odd row length exercises
  // the unaligned head and tail of that copy.
  ts::Tensor x = make_input({4500, 1027}, ts::DType::Float32, Layout::Contiguous, 92, -3, 5);
  ts::Tensor w = make_input({1027}, ts::DType::Float32, Layout::Contiguous, 93, 0.5, 2);
  ts::Tensor b = make_input({1027}, ts::DType::Float32, Layout::Contiguous, 94, -1, 1);
  Ref rx = to_ref(x);
  EXPECT_CLOSE(ts::layer_norm(x, {1027}, w, b), norm_ref(rx, 1, param_values(w), param_values(b), 1e-5, false),
               ts::DType::Float32);
  EXPECT_CLOSE(ts::rms_norm(x, {1027}, w), norm_ref(rx, 1, param_values(w), {}, 1e-6, true), ts::DType::Float32);
}

TEST(LayerNorm, LongRowsSplitAcrossThreadsMatchReference) {
  with_threads(3, [] {
    uint64_t seed = 600;
    for (ts::DType dt : {ts::DType::Float32, ts::DType::Float64}) {
      for (bool rms : {false, true}) {
        SCOPED_TRACE(std::string(rms ? "rms_norm " : "layer_norm ") + std::string(ts::dtype_name(dt)));
        // Offset inputs, so that combining the chunks' means must be exact enough.
        ts::Tensor x = make_input({3, 2, 50001}, dt, Layout::Contiguous, seed++, 1e4 - 2, 1e4 + 2);
        ts::Tensor w = make_input({2, 50001}, dt, Layout::Contiguous, seed++, 0.5, 2);
        ts::Tensor b = make_input({2, 50001}, dt, Layout::Contiguous, seed++, -1, 1);
        Ref want = norm_ref(to_ref(x), 2, param_values(w), rms ? std::vector<double>{} : param_values(b), 1e-5, rms);
        ts::Tensor y = rms ? ts::rms_norm(x, {2, 50001}, w, 1e-5) : ts::layer_norm(x, {2, 50001}, w, b, 1e-5);
        EXPECT_CLOSE(y, want, dt);
      }
    }
  });
}

TEST(LayerNorm, ConstantRowsGiveZeroNotNaN) {
  ts::Tensor x = ts::full({3, 16}, 7.25);
  for (double v : ts::layer_norm(x, {16}).to_vector<double>()) EXPECT_EQ(v, 0.0);
  ts::Tensor z = ts::zeros({2, 8});
  for (double v : ts::rms_norm(z, {8}).to_vector<double>()) EXPECT_EQ(v, 0.0);
}

TEST(LayerNorm, RejectsMismatchedShapesDtypesAndArguments) {
  ts::Tensor x = ts::zeros({2, 3, 5});
  expect_error<ts::ShapeError>([&] { ts::layer_norm(x, {4, 5}); }, {"[layer_norm]", "[4,5]", "[2,3,5]"});
  expect_error<ts::ShapeError>([&] { ts::rms_norm(x, {3}); }, {"[rms_norm]", "[3]", "[2,3,5]"});
  expect_error<ts::ShapeError>([&] { ts::layer_norm(x, {1, 2, 3, 5}); }, {"[layer_norm]", "[1,2,3,5]", "[2,3,5]"});
  expect_error<ts::ShapeError>([&] { ts::layer_norm(x, {5}, ts::ones({4})); },
                               {"[layer_norm]", "weight", "[4]", "[5]"});
  expect_error<ts::ShapeError>(
      [&] {
        ts::layer_norm(x, {3, 5}, ts::ones({3, 5}), ts::ones({5}));
      },
      {"[layer_norm]", "bias", "[5]", "[3,5]"});
  expect_error<ts::ValueError>([&] { ts::layer_norm(x, {}); }, {"[layer_norm]", "normalized_shape"});
  expect_error<ts::ValueError>([&] { ts::layer_norm(x, {5}, {}, {}, -1.0); }, {"[layer_norm]", "eps"});
  expect_error<ts::ValueError>([&] { ts::rms_norm(ts::Tensor(), {5}); }, {"[rms_norm]", "undefined"});
}

TEST(LayerNorm, CastsParametersToTheInputDtype) {
  ts::Tensor x = make_input({4, 6}, ts::DType::Float64, Layout::Contiguous, 9);
  ts::Tensor w = make_input({6}, ts::DType::Float32, Layout::Contiguous, 10, 0.5, 2);
  ts::Tensor y = ts::layer_norm(x, {6}, w);
  EXPECT_EQ(y.dtype(), ts::DType::Float64);
  EXPECT_CLOSE(y, norm_ref(to_ref(x), 1, param_values(w), {}, 1e-5, false), ts::DType::Float64);
}

// ------------------------------------------------------------- batch norm
namespace {
Ref batch_norm_ref(const Ref& x, const std::vector<double>& mean, const std::vector<double>& var,
                   const std::vector<double>& w, const std::vector<double>& b, double eps) {
  Ref y{x.shape, std::vector<double>(x.v.size())};
  Split sp = split_at(x.shape, 1);
  for (int64_t o = 0; o < sp.outer; ++o)
    for (int64_t c = 0; c < sp.n; ++c)
      for (int64_t i = 0; i < sp.inner; ++i) {
        size_t at = static_cast<size_t>((o * sp.n + c) * sp.inner + i), ci = static_cast<size_t>(c);
        double v = (x.v[at] - mean[ci]) / std::sqrt(var[ci] + eps);
        if (!w.empty()) v *= w[ci];
        if (!b.empty()) v += b[ci];
        y.v[at] = v;
      }
  return y;
}
}  // namespace

TEST(BatchNorm, MatchesFloat64ReferenceForShapesLayoutsAndDtypes) {
  uint64_t seed = 7000;
  for (ts::DType dt : float_dtypes()) {
    for (ts::Shape shape :
         {ts::Shape{2, 3}, ts::Shape{4, 5, 6}, ts::Shape{2, 3, 4, 5}, ts::Shape{0, 3, 2}, ts::Shape{1, 1, 1}}) {
      int64_t c = shape[1];
      for (int affine = 0; affine < 4; ++affine) {
        for (Layout layout : all_layouts()) {
          SCOPED_TRACE(trace("batch_norm", dt, shape, layout, 1) + " affine " + std::to_string(affine));
          ts::Tensor x = make_input(shape, dt, layout, seed++, -3, 3);
          ts::Tensor mean = make_input({c}, dt, Layout::Contiguous, seed++, -1, 1);
          ts::Tensor var = make_input({c}, dt, Layout::Sliced, seed++, 0.1, 3);
          ts::Tensor w = affine & 1 ? make_input({c}, dt, Layout::Contiguous, seed++, 0.5, 2) : ts::Tensor();
          ts::Tensor b = affine & 2 ? make_input({c}, dt, Layout::Contiguous, seed++, -1, 1) : ts::Tensor();
          Ref want =
              batch_norm_ref(to_ref(x), param_values(mean), param_values(var), param_values(w), param_values(b), 1e-5);
          ts::Tensor y = ts::batch_norm(x, mean, var, w, b, 1e-5);
          EXPECT_CLOSE_TOL(y, want, dt, 2);
        }
      }
    }
  }
}

TEST(BatchNorm, RejectsStatisticsThatDoNotMatchTheChannels) {
  ts::Tensor x = ts::zeros({2, 4, 5});
  ts::Tensor s4 = ts::ones({4});
  expect_error<ts::ShapeError>([&] { ts::batch_norm(x, ts::ones({3}), s4); },
                               {"[batch_norm]", "running_mean", "[3]", "4 channels", "[2,4,5]"});
  expect_error<ts::ShapeError>(
      [&] {
        ts::batch_norm(x, s4, ts::ones({4, 1}));
      },
      {"[batch_norm]", "running_var", "[4,1]"});
  expect_error<ts::ShapeError>([&] { ts::batch_norm(x, s4, s4, ts::ones({5})); }, {"[batch_norm]", "weight", "[5]"});
  expect_error<ts::ShapeError>([&] { ts::batch_norm(x, s4, s4, s4, ts::ones({2})); }, {"[batch_norm]", "bias", "[2]"});
  expect_error<ts::ShapeError>([&] { ts::batch_norm(ts::zeros({4}), s4, s4); }, {"[batch_norm]", "[N, C, ...]", "[4]"});
  expect_error<ts::ValueError>([&] { ts::batch_norm(x, s4, s4, {}, {}, -1e-5); }, {"[batch_norm]", "eps"});
}

// ---------------------------------------------------------------- dropout
TEST(Dropout, KeepsAboutOneMinusPAndScalesKeptValues) {
  const int64_t n = 200000;
  for (double p : {0.1, 0.5, 0.8}) {
    ts::Generator gen(123);
    ts::Tensor x = make_input({n}, ts::DType::Float32, Layout::Contiguous, 11, 0.5, 2);
    std::vector<float> xv = x.to_vector<float>();
    std::vector<float> y = ts::dropout(x, p, gen).to_vector<float>();
    int64_t kept = 0;
    for (size_t i = 0; i < y.size(); ++i) {
      if (y[i] == 0) continue;
      ++kept;
      EXPECT_NEAR(y[i], xv[i] / (1 - p), 1e-5 * std::fabs(xv[i] / (1 - p))) << "element " << i;
    }
    // The kept fraction has standard deviation sqrt(p(1-p)/n) <= 0.0012; allow ~8 of them.
    EXPECT_NEAR(static_cast<double>(kept) / n, 1 - p, 0.01) << "p = " << p;
  }
}

TEST(Dropout, SameSeedSameMaskAndGeneratorAdvances) {
  ts::Tensor x = ts::ones({4096});
  ts::Generator g1(7), g2(7), g3(8);
  std::vector<float> a = ts::dropout(x, 0.5, g1).to_vector<float>();
  std::vector<float> b = ts::dropout(x, 0.5, g2).to_vector<float>();
  std::vector<float> c = ts::dropout(x, 0.5, g3).to_vector<float>();
  std::vector<float> a2 = ts::dropout(x, 0.5, g1).to_vector<float>();
  EXPECT_EQ(a, b);
  EXPECT_NE(a, c);
  EXPECT_NE(a, a2);  // the generator moved on
}

TEST(Dropout, IdentityWhenNotTrainingOrPZero) {
  ts::Generator gen(1);
  ts::Tensor x = make_input({3, 7}, ts::DType::Float32, Layout::Transposed, 3);
  EXPECT_EQ(ts::dropout(x, 0.5, gen, false).to_vector<float>(), x.to_vector<float>());
  EXPECT_EQ(ts::dropout(x, 0.0, gen, true).to_vector<float>(), x.to_vector<float>());
}

TEST(Dropout, KeepsFloatDtypesAndRejectsIntegersAndBadP) {
  for (ts::DType dt : float_dtypes()) {
    ts::Generator gen(5);
    ts::Tensor y = ts::dropout(ts::ones({1000}, dt), 0.25, gen);
    EXPECT_EQ(y.dtype(), dt);
    for (double v : y.to_vector<double>()) EXPECT_TRUE(v == 0 || std::fabs(v - 1 / 0.75) < 1e-2) << v;
  }
  ts::Generator gen(5);
  ts::Tensor x = ts::ones({10});
  for (double p : {-0.1, 1.0, 1.5, std::nan("")})
    expect_error<ts::ValueError>([&] { ts::dropout(x, p, gen); }, {"[dropout]", "p must be in [0, 1)"});
  expect_error<ts::DTypeError>([&] { ts::dropout(ts::ones({4}, ts::DType::Int32), 0.5, gen); }, {"[dropout]", "int32"});
}
