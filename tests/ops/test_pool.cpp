// Conformance of max/avg pooling (1-d and 2-d) and adaptive average pooling against direct
// float64 loops written from PyTorch's definitions.
#include <cmath>
#include <limits>

#include "harness/harness.h"

namespace ts = tessera;
using ts::Shape;
using namespace tessera::testing;

namespace {

// PyTorch: out = floor_or_ceil((in + 2p - k) / s) + 1, and with ceil_mode the last window must
// start inside the input or the left padding.
int64_t out_size(int64_t in, int64_t k, int64_t s, int64_t p, bool ceil_mode) {
  double q = static_cast<double>(in + 2 * p - k) / static_cast<double>(s);
  int64_t o = static_cast<int64_t>(ceil_mode ? std::ceil(q) : std::floor(q)) + 1;
  if (ceil_mode && (o - 1) * s >= in + p) --o;
  return o;
}

struct PoolCase {
  Shape x;  // [N, C, H, W]
  std::array<int64_t, 2> k, s, p;
  bool ceil_mode;
};

// Max over the window clipped to the input (padding never wins); NaN propagates.
// Avg: the window clipped to [-p, in + p) counts for count_include_pad, else the part inside the input.
Ref pool_ref(const Ref& x, const PoolCase& c, bool is_max, bool count_include_pad) {
  int64_t N = x.shape[0], C = x.shape[1], H = x.shape[2], W = x.shape[3];
  int64_t Ho = out_size(H, c.k[0], c.s[0], c.p[0], c.ceil_mode), Wo = out_size(W, c.k[1], c.s[1], c.p[1], c.ceil_mode);
  Ref y{Shape{N, C, Ho, Wo}, {}};
  for (int64_t nc = 0; nc < N * C; ++nc)
    for (int64_t oh = 0; oh < Ho; ++oh)
      for (int64_t ow = 0; ow < Wo; ++ow) {
        int64_t h0 = oh * c.s[0] - c.p[0], w0 = ow * c.s[1] - c.p[1];
        int64_t h1 = std::min(h0 + c.k[0], H + c.p[0]), w1 = std::min(w0 + c.k[1], W + c.p[1]);
        double padded_count = static_cast<double>((h1 - h0) * (w1 - w0));
        double best = -std::numeric_limits<double>::infinity(), sum = 0;
        int64_t inside = 0;
        bool nan = false;
        for (int64_t ih = std::max<int64_t>(h0, 0); ih < std::min(h1, H); ++ih)
          for (int64_t iw = std::max<int64_t>(w0, 0); iw < std::min(w1, W); ++iw) {
            double v = x.v[static_cast<size_t>((nc * H + ih) * W + iw)];
            nan = nan || std::isnan(v);
            best = std::max(best, v);
            sum += v;
            ++inside;
          }
        if (is_max)
          y.v.push_back(nan ? NAN : best);
        else
          y.v.push_back(sum / (count_include_pad ? padded_count : static_cast<double>(inside)));
      }
  return y;
}

std::vector<PoolCase> pool_cases() {
  return {
      {{2, 3, 8, 8}, {2, 2}, {2, 2}, {0, 0}, false},
      {{1, 2, 7, 9}, {3, 3}, {2, 2}, {1, 1}, false},
      {{1, 2, 7, 9}, {3, 3}, {2, 2}, {1, 1}, true},
      {{2, 2, 5, 5}, {2, 2}, {2, 2}, {1, 1}, true},  // last window would start in the right padding: dropped
      {{1, 3, 6, 5}, {3, 2}, {1, 2}, {1, 0}, true},
      {{1, 1, 10, 7}, {4, 3}, {3, 2}, {2, 1}, true},
      {{2, 2, 6, 6}, {3, 3}, {3, 3}, {0, 0}, true},   // ceil_mode adds a partial window
      {{1, 2, 1, 1}, {1, 1}, {1, 1}, {0, 0}, false},  // size-1
      {{0, 3, 4, 4}, {2, 2}, {2, 2}, {0, 0}, false},  // empty batch
      {{1, 2, 5, 4}, {5, 4}, {1, 1}, {2, 2}, false},  // window as large as the input
  };
}

std::string case_str(const PoolCase& c) {
  return ts::shape_str(c.x) + " k=" + std::to_string(c.k[0]) + "x" + std::to_string(c.k[1]) +
         " s=" + std::to_string(c.s[0]) + "," + std::to_string(c.s[1]) + " p=" + std::to_string(c.p[0]) + "," +
         std::to_string(c.p[1]) + (c.ceil_mode ? " ceil" : "");
}

}  // namespace

TEST(MaxPool2d, MatchesReferenceForEveryDtypeLayoutAndGeometry) {
  uint64_t seed = 1;
  for (const PoolCase& c : pool_cases())
    for (ts::DType dt : all_dtypes())
      for (Layout l : all_layouts()) {
        if (dt != ts::DType::Float32 && l != Layout::Contiguous && l != Layout::Transposed) continue;
        SCOPED_TRACE(case_str(c) + " " + std::string(ts::dtype_name(dt)) + " " + layout_name(l));
        ts::Tensor x = make_input(c.x, dt, l, seed++, dt == ts::DType::UInt8 ? 0 : -50, 50);
        Ref want = pool_ref(to_ref(x), c, true, true);
        EXPECT_CLOSE(ts::max_pool2d(x, {c.k, c.s, c.p, c.ceil_mode}), want, dt);
      }
}

// Reference positions: first maximum in row-major window order, a NaN takes over (the last one wins).
std::vector<int64_t> max_index_ref(const Ref& x, const PoolCase& c) {
  int64_t N = x.shape[0], C = x.shape[1], H = x.shape[2], W = x.shape[3];
  int64_t Ho = out_size(H, c.k[0], c.s[0], c.p[0], c.ceil_mode), Wo = out_size(W, c.k[1], c.s[1], c.p[1], c.ceil_mode);
  std::vector<int64_t> r;
  for (int64_t nc = 0; nc < N * C; ++nc)
    for (int64_t oh = 0; oh < Ho; ++oh)
      for (int64_t ow = 0; ow < Wo; ++ow) {
        int64_t h0 = std::max<int64_t>(oh * c.s[0] - c.p[0], 0), w0 = std::max<int64_t>(ow * c.s[1] - c.p[1], 0);
        int64_t h1 = std::min(oh * c.s[0] - c.p[0] + c.k[0], H), w1 = std::min(ow * c.s[1] - c.p[1] + c.k[1], W);
        int64_t best = -1;
        double bv = 0;
        for (int64_t ih = h0; ih < h1; ++ih)
          for (int64_t iw = w0; iw < w1; ++iw) {
            double v = x.v[static_cast<size_t>((nc * H + ih) * W + iw)];
            if (best < 0 || v > bv || std::isnan(v)) best = ih * W + iw, bv = v;
          }
        r.push_back(best);
      }
  return r;
}

TEST(MaxPool2dIndices, PointsAtEachWindowsFirstMaximum) {
  uint64_t seed = 900;
  for (const PoolCase& c : pool_cases())
    for (ts::DType dt : all_dtypes())
      for (Layout l : {Layout::Contiguous, Layout::Transposed}) {
        SCOPED_TRACE(case_str(c) + " " + std::string(ts::dtype_name(dt)) + " " + layout_name(l));
        // Few distinct values, so windows hold ties.
        ts::Tensor x = make_input(c.x, dt, l, seed++, 0, dt == ts::DType::Bool ? 2 : 4);
        if (ts::is_floating(dt)) x = ts::floor(x);
        ts::Tensor idx = ts::max_pool2d_indices(x, {c.k, c.s, c.p, c.ceil_mode});
        EXPECT_EQ(idx.dtype(), ts::DType::Int64);
        EXPECT_EQ(idx.shape(), ts::max_pool2d(x, {c.k, c.s, c.p, c.ceil_mode}).shape());
        EXPECT_EQ(idx.to_vector<int64_t>(), max_index_ref(to_ref(x), c));
      }
  double nan = std::numeric_limits<double>::quiet_NaN();
  ts::Tensor x = ts::tensor<double>({1, nan, 3, nan}, {1, 1, 2, 2});
  EXPECT_EQ(ts::max_pool2d_indices(x, {{2, 2}}).to_vector<int64_t>(), (std::vector<int64_t>{3}));
  ts::Tensor u = ts::tensor<float>({5, 1, 2, 9, 9, 0}, {1, 3, 2});  // unbatched [C=1... as [C, H, W]]
  EXPECT_EQ(ts::max_pool2d_indices(u, {{3, 2}}).to_vector<int64_t>(), (std::vector<int64_t>{3}));
  expect_error<ts::ShapeError>([] { ts::max_pool2d_indices(ts::ones({4}), {{2, 2}}); }, {"[max_pool2d_indices]"});
}

TEST(AvgPool2d, MatchesReferenceWithAndWithoutPaddingInTheCount) {
  uint64_t seed = 500;
  for (const PoolCase& c : pool_cases())
    for (bool cip : {true, false})
      for (ts::DType dt : float_dtypes())
        for (Layout l : all_layouts()) {
          if (dt != ts::DType::Float32 && l != Layout::Contiguous && l != Layout::Sliced) continue;
          SCOPED_TRACE(case_str(c) + (cip ? " count_include_pad " : " ") + std::string(ts::dtype_name(dt)) + " " +
                       layout_name(l));
          ts::Tensor x = make_input(c.x, dt, l, seed++);
          Ref want = pool_ref(to_ref(x), c, false, cip);
          EXPECT_CLOSE_TOL(ts::avg_pool2d(x, {c.k, c.s, c.p, c.ceil_mode, cip}), want, dt, 2);
        }
}

TEST(AvgPool2d, IntegerInputAveragesInFloat32) {
  ts::Tensor x = ts::tensor<int64_t>({1, 2, 3, 4}, {1, 1, 2, 2});
  ts::Tensor y = ts::avg_pool2d(x, {{2, 2}});
  EXPECT_EQ(y.dtype(), ts::DType::Float32);
  EXPECT_EQ(y.to_vector<float>(), (std::vector<float>{2.5f}));
}

TEST(Pool1d, MatchesPyTorchValues) {
  ts::Tensor x = ts::tensor<float>({1, 2, 3, 4, 5}, {1, 1, 5});
  // Values computed by torch.nn.functional.avg_pool1d / max_pool1d.
  EXPECT_EQ(ts::avg_pool1d(x, {2, 2, 0, true}).to_vector<float>(), (std::vector<float>{1.5f, 3.5f, 5.0f}));
  EXPECT_EQ(ts::avg_pool1d(x, {2, 2, 1, false, true}).to_vector<float>(), (std::vector<float>{0.5f, 2.5f, 4.5f}));
  EXPECT_EQ(ts::avg_pool1d(x, {2, 2, 1, true, false}).to_vector<float>(), (std::vector<float>{1.0f, 2.5f, 4.5f}));
  EXPECT_EQ(ts::avg_pool1d(x, {3, 2, 1, true, true}).to_vector<float>(), (std::vector<float>{1.0f, 3.0f, 3.0f}));
  EXPECT_EQ(ts::max_pool1d(x, {2, 2, 0, true}).to_vector<float>(), (std::vector<float>{2, 4, 5}));
  EXPECT_EQ(ts::max_pool1d(x, {2, 2, 0, false}).to_vector<float>(), (std::vector<float>{2, 4}));
  EXPECT_EQ(ts::max_pool1d(x, {3, 1, 1}).to_vector<float>(), (std::vector<float>{2, 3, 4, 5, 5}));
}

TEST(Pool1d, MatchesReferenceAndAcceptsUnbatchedInput) {
  uint64_t seed = 900;
  for (bool ceil_mode : {false, true})
    for (int64_t k : {1, 2, 3, 4})
      for (int64_t s : {1, 2, 3})
        for (int64_t p = 0; p <= k / 2; ++p) {
          SCOPED_TRACE("k=" + std::to_string(k) + " s=" + std::to_string(s) + " p=" + std::to_string(p) +
                       (ceil_mode ? " ceil" : ""));
          ts::Tensor x = make_input({2, 3, 11}, ts::DType::Float32, Layout::Transposed, seed++);
          PoolCase c{{2, 3, 1, 11}, {1, k}, {1, s}, {0, p}, ceil_mode};
          Ref rx = to_ref(x);
          rx.shape = {2, 3, 1, 11};
          Ref mx = pool_ref(rx, c, true, true), av = pool_ref(rx, c, false, false);
          mx.shape = av.shape = {2, 3, mx.shape[3]};
          EXPECT_CLOSE(ts::max_pool1d(x, {k, s, p, ceil_mode}), mx, ts::DType::Float32);
          EXPECT_CLOSE(ts::avg_pool1d(x, {k, s, p, ceil_mode, false}), av, ts::DType::Float32);
          // Unbatched [C, L] gives the first image's result.
          Ref first{{3, mx.shape[2]},
                    std::vector<double>(mx.v.begin(), mx.v.begin() + static_cast<int64_t>(mx.v.size() / 2))};
          EXPECT_CLOSE(ts::max_pool1d(ts::select(x, 0, 0), {k, s, p, ceil_mode}), first, ts::DType::Float32);
        }
}

TEST(MaxPool2d, PropagatesNaNAndAcceptsUnbatchedInput) {
  float nan = std::numeric_limits<float>::quiet_NaN();
  ts::Tensor x = ts::tensor<float>({1, nan, 3, 4, 5, 6, 7, 8, 9, -1, -2, -3, -4, -5, -6, -7}, {1, 4, 4});
  std::vector<float> y = ts::max_pool2d(x, {{2, 2}}).to_vector<float>();
  ASSERT_EQ(y.size(), 4u);
  EXPECT_TRUE(std::isnan(y[0]));
  EXPECT_EQ(y[1], 8);
  EXPECT_EQ(y[2], 9);
  EXPECT_EQ(y[3], -2);
  EXPECT_EQ(ts::max_pool2d(x, {{2, 2}}).shape(), (Shape{1, 2, 2}));
}

TEST(AdaptiveAvgPool2d, UsesPyTorchBinsIncludingOverlappingAndUpsamplingBins) {
  uint64_t seed = 700;
  for (Shape xs : std::vector<Shape>{{2, 3, 7, 9}, {1, 2, 5, 5}, {1, 1, 3, 2}, {0, 2, 4, 4}})
    for (std::array<int64_t, 2> os : std::vector<std::array<int64_t, 2>>{{3, 4}, {1, 1}, {5, 5}, {2, 7}})
      for (ts::DType dt : float_dtypes()) {
        SCOPED_TRACE(ts::shape_str(xs) + " -> " + std::to_string(os[0]) + "x" + std::to_string(os[1]) + " " +
                     std::string(ts::dtype_name(dt)));
        ts::Tensor x = make_input(xs, dt, Layout::Transposed, seed++);
        Ref rx = to_ref(x);
        int64_t H = xs[2], W = xs[3];
        Ref want{Shape{xs[0], xs[1], os[0], os[1]}, {}};
        for (int64_t nc = 0; nc < xs[0] * xs[1]; ++nc)
          for (int64_t i = 0; i < os[0]; ++i)
            for (int64_t j = 0; j < os[1]; ++j) {
              int64_t h0 = static_cast<int64_t>(std::floor(static_cast<double>(i * H) / os[0]));
              int64_t h1 = static_cast<int64_t>(std::ceil(static_cast<double>((i + 1) * H) / os[0]));
              int64_t w0 = static_cast<int64_t>(std::floor(static_cast<double>(j * W) / os[1]));
              int64_t w1 = static_cast<int64_t>(std::ceil(static_cast<double>((j + 1) * W) / os[1]));
              double s = 0;
              for (int64_t h = h0; h < h1; ++h)
                for (int64_t w = w0; w < w1; ++w) s += rx.v[static_cast<size_t>((nc * H + h) * W + w)];
              want.v.push_back(s / static_cast<double>((h1 - h0) * (w1 - w0)));
            }
        EXPECT_CLOSE_TOL(ts::adaptive_avg_pool2d(x, os), want, dt, 2);
      }
  ts::Tensor u = ts::tensor<float>({1, 2, 3, 4, 5, 6}, {1, 2, 3});  // unbatched [C, H, W]
  EXPECT_EQ(ts::adaptive_avg_pool2d(u, {1, 1}).to_vector<float>(), (std::vector<float>{3.5f}));
}

TEST(Pool, ReportsBadArguments) {
  expect_error<ts::ValueError>(
      [] {
        ts::max_pool2d(ts::zeros({1, 1, 8, 8}), {{2, 2}, std::nullopt, {2, 0}});
      },
      {"[max_pool2d]", "padding", "half"});
  expect_error<ts::ValueError>([] { ts::avg_pool1d(ts::zeros({1, 1, 8}), {3, 1, 2}); }, {"[avg_pool1d]", "padding"});
  expect_error<ts::ShapeError>(
      [] {
        ts::max_pool2d(ts::zeros({1, 1, 2, 2}), {{3, 3}});
      },
      {"[max_pool2d]", "[1,1,2,2]", "too small"});
  expect_error<ts::ShapeError>([] { ts::max_pool1d(ts::zeros({1, 1, 2, 2}), {2}); }, {"[max_pool1d]", "[1,1,2,2]"});
  expect_error<ts::ShapeError>([] { ts::avg_pool2d(ts::zeros({4, 4}), {{2, 2}}); }, {"[avg_pool2d]", "[4,4]"});
  expect_error<ts::ValueError>(
      [] {
        ts::max_pool2d(ts::zeros({1, 1, 4, 4}), {{2, 2}, std::array<int64_t, 2>{0, 1}});
      },
      {"[max_pool2d]", "stride"});
  expect_error<ts::ValueError>(
      [] {
        ts::adaptive_avg_pool2d(ts::zeros({1, 1, 4, 4}), {0, 2});
      },
      {"[adaptive_avg_pool2d]", "output_size"});
  expect_error<ts::ShapeError>(
      [] {
        ts::adaptive_avg_pool2d(ts::zeros({1, 1, 0, 4}), {2, 2});
      },
      {"[adaptive_avg_pool2d]", "[1,1,0,4]"});
}
