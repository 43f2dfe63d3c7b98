// Conformance of conv1d, conv2d and conv_transpose2d against direct float64 loops.
#include <cmath>

#include "harness/harness.h"

namespace ts = tessera;
using ts::Shape;

namespace tessera::cpu {
// Exported by the CPU backend: 0 = automatic, 1 = im2col/col2im + GEMM, 2 = oneDNN on NCHW memory,
// 3 = oneDNN with blocked memory. Lets the tests cover every float32 algorithm on every case.
void conv_force_algorithm(int algo);
}  // namespace tessera::cpu
using namespace tessera::testing;

namespace {

struct ConvCase {
  int64_t N, C, H, W, O, kh, kw;
  std::array<int64_t, 2> stride{1, 1}, padding{0, 0}, dilation{1, 1};
  int64_t groups = 1;
  std::array<int64_t, 2> output_padding{0, 0};  // transposed only
  std::string str() const {
    auto p = [](const std::array<int64_t, 2>& a) {
      return "(" + std::to_string(a[0]) + "," + std::to_string(a[1]) + ")";
    };
    return "x[" + std::to_string(N) + "," + std::to_string(C) + "," + std::to_string(H) + "," + std::to_string(W) +
           "] O=" + std::to_string(O) + " k=" + std::to_string(kh) + "x" + std::to_string(kw) + " s=" + p(stride) +
           " p=" + p(padding) + " d=" + p(dilation) + " g=" + std::to_string(groups) + " op=" + p(output_padding);
  }
};

// The direct 7-loop convolution (cross-correlation, PyTorch semantics).
Ref conv2d_ref(const Ref& x, const Ref& w, const Ref* bias, const ConvCase& c) {
  int64_t Ho = (c.H + 2 * c.padding[0] - c.dilation[0] * (c.kh - 1) - 1) / c.stride[0] + 1;
  int64_t Wo = (c.W + 2 * c.padding[1] - c.dilation[1] * (c.kw - 1) - 1) / c.stride[1] + 1;
  int64_t Cg = c.C / c.groups, Og = c.O / c.groups;
  Ref y{Shape{c.N, c.O, Ho, Wo}, std::vector<double>(static_cast<size_t>(c.N * c.O * Ho * Wo))};
  for (int64_t n = 0; n < c.N; ++n)
    for (int64_t o = 0; o < c.O; ++o)
      for (int64_t oh = 0; oh < Ho; ++oh)
        for (int64_t ow = 0; ow < Wo; ++ow) {
          double s = bias ? bias->v[static_cast<size_t>(o)] : 0.0;
          int64_t g = o / Og;
          for (int64_t ci = 0; ci < Cg; ++ci)
            for (int64_t i = 0; i < c.kh; ++i)
              for (int64_t j = 0; j < c.kw; ++j) {
                int64_t ih = oh * c.stride[0] - c.padding[0] + i * c.dilation[0];
                int64_t iw = ow * c.stride[1] - c.padding[1] + j * c.dilation[1];
                if (ih < 0 || ih >= c.H || iw < 0 || iw >= c.W) continue;
                int64_t cin = g * Cg + ci;
                s += x.v[static_cast<size_t>(((n * c.C + cin) * c.H + ih) * c.W + iw)] *
                     w.v[static_cast<size_t>(((o * Cg + ci) * c.kh + i) * c.kw + j)];
              }
          y.v[static_cast<size_t>(((n * c.O + o) * Ho + oh) * Wo + ow)] = s;
        }
  return y;
}

// Transposed convolution as the scatter it is defined by: every input element adds
// x * w[c, o, i, j] at output position (ih*s - p + i*d, iw*s - p + j*d). weight [C, O/g, kh, kw].
Ref conv_transpose2d_ref(const Ref& x, const Ref& w, const Ref* bias, const ConvCase& c) {
  int64_t Ho = (c.H - 1) * c.stride[0] - 2 * c.padding[0] + c.dilation[0] * (c.kh - 1) + c.output_padding[0] + 1;
  int64_t Wo = (c.W - 1) * c.stride[1] - 2 * c.padding[1] + c.dilation[1] * (c.kw - 1) + c.output_padding[1] + 1;
  int64_t Cg = c.C / c.groups, Og = c.O / c.groups;
  Ref y{Shape{c.N, c.O, Ho, Wo}, std::vector<double>(static_cast<size_t>(c.N * c.O * Ho * Wo), 0.0)};
  for (int64_t n = 0; n < c.N; ++n)
    for (int64_t cin = 0; cin < c.C; ++cin)
      for (int64_t ih = 0; ih < c.H; ++ih)
        for (int64_t iw = 0; iw < c.W; ++iw)
          for (int64_t og = 0; og < Og; ++og)
            for (int64_t i = 0; i < c.kh; ++i)
              for (int64_t j = 0; j < c.kw; ++j) {
                int64_t oh = ih * c.stride[0] - c.padding[0] + i * c.dilation[0];
                int64_t ow = iw * c.stride[1] - c.padding[1] + j * c.dilation[1];
                if (oh < 0 || oh >= Ho || ow < 0 || ow >= Wo) continue;
                int64_t o = (cin / Cg) * Og + og;
                y.v[static_cast<size_t>(((n * c.O + o) * Ho + oh) * Wo + ow)] +=
                    x.v[static_cast<size_t>(((n * c.C + cin) * c.H + ih) * c.W + iw)] *
                    w.v[static_cast<size_t>(((cin * Og + og) * c.kh + i) * c.kw + j)];
              }
  if (bias)
    for (size_t e = 0; e < y.v.size(); ++e)
      y.v[e] += bias->v[static_cast<size_t>((static_cast<int64_t>(e) / (Ho * Wo)) % c.O)];
  return y;
}

std::vector<ConvCase> conv_cases() {
  return {
      {2, 3, 7, 6, 4, 3, 3},                                // plain 3x3
      {1, 4, 9, 9, 6, 3, 3, {2, 2}, {1, 1}, {1, 1}, 2},     // strided, padded, grouped
      {2, 6, 8, 7, 6, 3, 3, {1, 1}, {1, 1}, {1, 1}, 6},     // depthwise
      {1, 4, 8, 8, 8, 3, 3, {1, 1}, {1, 1}, {1, 1}, 4},     // depthwise, channel multiplier 2
      {2, 5, 6, 6, 7, 1, 1},                                // 1x1 (no im2col)
      {1, 3, 10, 9, 2, 3, 2, {2, 1}, {1, 0}, {2, 1}},       // dilated, asymmetric
      {2, 16, 12, 12, 16, 3, 3, {1, 1}, {1, 1}},            // oneDNN blocked path
      {1, 8, 11, 11, 12, 5, 5, {2, 2}, {2, 2}, {1, 1}, 4},  // strided grouped 5x5
      {3, 2, 5, 5, 4, 5, 5, {1, 1}, {2, 2}},                // kernel as large as the input
      {1, 2, 9, 9, 3, 2, 2, {3, 3}},                        // stride larger than kernel
      {1, 2, 1, 1, 3, 1, 1},                                // size-1 spatial
      {0, 3, 5, 5, 2, 3, 3},                                // empty batch
      {2, 3, 6, 6, 4, 3, 3, {2, 2}, {0, 0}, {2, 2}},        // dilation 2, stride 2
  };
}

std::vector<ConvCase> transpose_cases() {
  return {
      {2, 3, 4, 5, 4, 3, 3},
      {1, 4, 5, 5, 6, 3, 3, {2, 2}, {1, 1}, {1, 1}, 2, {1, 1}},  // stride 2, output_padding, groups
      {2, 6, 4, 4, 6, 3, 3, {2, 2}, {1, 1}, {1, 1}, 6, {1, 0}},  // depthwise
      {1, 3, 5, 4, 2, 2, 3, {3, 2}, {0, 1}, {2, 1}, 1, {1, 0}},  // dilated, asymmetric
      {2, 16, 7, 7, 8, 4, 4, {2, 2}, {1, 1}},                    // oneDNN path, typical upsampling
      {1, 2, 3, 3, 4, 1, 1},                                     // 1x1
      {1, 2, 3, 3, 2, 3, 3, {1, 1}, {0, 0}, {2, 2}, 1, {1, 1}},  // output_padding < dilation
      {0, 2, 3, 3, 2, 3, 3},                                     // empty batch
  };
}

// Inputs in [-1, 1]: sums of K = C*kh*kw products stay well scaled; tolerance grows with sqrt(K).
double conv_tol(const ConvCase& c) {
  return std::max(1.0, std::sqrt(static_cast<double>(c.C / c.groups * c.kh * c.kw)));
}

void check_conv(const ConvCase& c, ts::DType dt, Layout lx, bool with_bias, uint64_t& seed) {
  SCOPED_TRACE("conv2d " + c.str() + " " + std::string(ts::dtype_name(dt)) + " " + layout_name(lx) +
               (with_bias ? " bias" : ""));
  ts::Tensor x = make_input({c.N, c.C, c.H, c.W}, dt, lx, seed++, -1, 1);
  ts::Tensor w = make_input({c.O, c.C / c.groups, c.kh, c.kw}, dt, Layout::Contiguous, seed++, -1, 1);
  ts::Tensor b = with_bias ? make_input({c.O}, dt, Layout::Contiguous, seed++, -1, 1) : ts::Tensor();
  Ref rb = with_bias ? to_ref(b) : Ref{};
  Ref want = conv2d_ref(to_ref(x), to_ref(w), with_bias ? &rb : nullptr, c);
  ts::Conv2dOptions o{c.stride, c.padding, c.dilation, c.groups};
  EXPECT_CLOSE_TOL(ts::conv2d(x, w, b, o), want, dt, conv_tol(c));
}

void check_transpose(const ConvCase& c, ts::DType dt, Layout lx, bool with_bias, uint64_t& seed) {
  SCOPED_TRACE("conv_transpose2d " + c.str() + " " + std::string(ts::dtype_name(dt)) + " " + layout_name(lx) +
               (with_bias ? " bias" : ""));
  ts::Tensor x = make_input({c.N, c.C, c.H, c.W}, dt, lx, seed++, -1, 1);
  ts::Tensor w = make_input({c.C, c.O / c.groups, c.kh, c.kw}, dt, Layout::Contiguous, seed++, -1, 1);
  ts::Tensor b = with_bias ? make_input({c.O}, dt, Layout::Contiguous, seed++, -1, 1) : ts::Tensor();
  Ref rb = with_bias ? to_ref(b) : Ref{};
  Ref want = conv_transpose2d_ref(to_ref(x), to_ref(w), with_bias ? &rb : nullptr, c);
  ts::ConvTranspose2dOptions o{c.stride, c.padding, c.output_padding, c.dilation, c.groups};
  EXPECT_CLOSE_TOL(ts::conv_transpose2d(x, w, b, o), want, dt, conv_tol(c) * 2);
}

}  // namespace

TEST(Conv2d, Float32MatchesDirectLoopForEveryLayoutStridePaddingDilationAndGroups) {
  uint64_t seed = 1;
  for (const ConvCase& c : conv_cases())
    for (Layout l : all_layouts()) check_conv(c, ts::DType::Float32, l, l == Layout::Sliced, seed);
}

TEST(Conv2d, EveryFloat32AlgorithmMatchesDirectLoop) {
  uint64_t seed = 100;
  for (int algo : {1, 2, 3}) {
    SCOPED_TRACE("algorithm " + std::to_string(algo));
    ts::cpu::conv_force_algorithm(algo);
    for (const ConvCase& c : conv_cases())
      for (Layout l : {Layout::Contiguous, Layout::Transposed})
        check_conv(c, ts::DType::Float32, l, l == Layout::Contiguous, seed);
    ConvCase big{2, 32, 10, 10, 40, 3, 3, {2, 2}, {1, 1}};  // strided, many channels
    check_conv(big, ts::DType::Float32, Layout::Contiguous, false, seed);
  }
  ts::cpu::conv_force_algorithm(0);
}

TEST(Conv2d, OtherFloatDtypesMatchDirectLoop) {
  uint64_t seed = 1000;
  for (ts::DType dt : {ts::DType::Float64, ts::DType::Float16, ts::DType::BFloat16})
    for (const ConvCase& c : conv_cases()) {
      check_conv(c, dt, Layout::Contiguous, true, seed);
      check_conv(c, dt, Layout::Transposed, false, seed);
    }
}

TEST(Conv2d, WeightViewsAndUnbatchedInput) {
  ConvCase c{1, 4, 6, 7, 6, 3, 3, {1, 2}, {1, 1}, {1, 1}, 2};
  for (Layout lw : all_layouts()) {
    SCOPED_TRACE(layout_name(lw));
    ts::Tensor x = make_input({c.C, c.H, c.W}, ts::DType::Float32, Layout::Contiguous, 5);
    ts::Tensor w = make_input({c.O, c.C / c.groups, c.kh, c.kw}, ts::DType::Float32, lw, 6);
    Ref rx = to_ref(x);
    rx.shape.insert(rx.shape.begin(), 1);
    Ref want = conv2d_ref(rx, to_ref(w), nullptr, c);
    want.shape.erase(want.shape.begin());
    EXPECT_CLOSE_TOL(ts::conv2d(x, w, {}, {c.stride, c.padding, c.dilation, c.groups}), want, ts::DType::Float32, 4);
  }
}

TEST(Conv2d, RespectsTheThreadCount) {
  ConvCase c{4, 16, 14, 14, 24, 3, 3, {1, 1}, {1, 1}};
  ts::Tensor x = make_input({c.N, c.C, c.H, c.W}, ts::DType::Float32, Layout::Contiguous, 9, -1, 1);
  ts::Tensor w = make_input({c.O, c.C, c.kh, c.kw}, ts::DType::Float32, Layout::Contiguous, 10, -1, 1);
  Ref want = conv2d_ref(to_ref(x), to_ref(w), nullptr, c);
  int saved = ts::get_num_threads();
  for (int t : {1, 2}) {
    ts::set_num_threads(t);
    EXPECT_CLOSE_TOL(ts::conv2d(x, w, {}, {c.stride, c.padding}), want, ts::DType::Float32, 12);
  }
  ts::set_num_threads(saved);
}

TEST(Conv2d, ZeroInputChannelsGiveBias) {
  ts::Tensor y = ts::conv2d(ts::zeros({2, 0, 4, 4}), ts::zeros({3, 0, 3, 3}), ts::tensor<float>({1, 2, 3}, {3}));
  EXPECT_EQ(y.shape(), (Shape{2, 3, 2, 2}));
  std::vector<float> v = y.to_vector<float>();
  for (size_t i = 0; i < v.size(); ++i) EXPECT_EQ(v[i], static_cast<float>((i / 4) % 3 + 1));
}

TEST(Conv1d, MatchesDirectLoop) {
  uint64_t seed = 300;
  struct C1 {
    int64_t N, C, L, O, k, stride, padding, dilation, groups;
  };
  for (C1 c : std::vector<C1>{{2, 3, 10, 4, 3, 1, 0, 1, 1},
                              {1, 4, 17, 6, 5, 2, 2, 1, 2},
                              {2, 4, 9, 4, 3, 1, 2, 2, 4},
                              {1, 2, 1, 3, 1, 1, 0, 1, 1}}) {
    for (ts::DType dt : {ts::DType::Float32, ts::DType::Float64}) {
      for (Layout l : {Layout::Contiguous, Layout::Transposed, Layout::Sliced}) {
        SCOPED_TRACE("conv1d L=" + std::to_string(c.L) + " k=" + std::to_string(c.k) + " " +
                     std::string(ts::dtype_name(dt)) + " " + layout_name(l));
        ts::Tensor x = make_input({c.N, c.C, c.L}, dt, l, seed++, -1, 1);
        ts::Tensor w = make_input({c.O, c.C / c.groups, c.k}, dt, Layout::Contiguous, seed++, -1, 1);
        ts::Tensor b = make_input({c.O}, dt, Layout::Contiguous, seed++, -1, 1);
        Ref rx = to_ref(x), rw = to_ref(w), rb = to_ref(b);
        int64_t Lo = (c.L + 2 * c.padding - c.dilation * (c.k - 1) - 1) / c.stride + 1;
        int64_t Cg = c.C / c.groups, Og = c.O / c.groups;
        Ref want{Shape{c.N, c.O, Lo}, {}};
        for (int64_t n = 0; n < c.N; ++n)
          for (int64_t o = 0; o < c.O; ++o)
            for (int64_t t = 0; t < Lo; ++t) {
              double s = rb.v[static_cast<size_t>(o)];
              for (int64_t ci = 0; ci < Cg; ++ci)
                for (int64_t j = 0; j < c.k; ++j) {
                  int64_t il = t * c.stride - c.padding + j * c.dilation;
                  if (il < 0 || il >= c.L) continue;
                  s += rx.v[static_cast<size_t>((n * c.C + (o / Og) * Cg + ci) * c.L + il)] *
                       rw.v[static_cast<size_t>((o * Cg + ci) * c.k + j)];
                }
              want.v.push_back(s);
            }
        EXPECT_CLOSE_TOL(ts::conv1d(x, w, b, {c.stride, c.padding, c.dilation, c.groups}), want, dt, 4);
      }
    }
  }
}

TEST(ConvTranspose2d, Float32MatchesScatterReferenceForEveryLayout) {
  uint64_t seed = 2000;
  for (const ConvCase& c : transpose_cases())
    for (Layout l : all_layouts()) check_transpose(c, ts::DType::Float32, l, l == Layout::Offset, seed);
}

TEST(ConvTranspose2d, EveryFloat32AlgorithmMatchesScatterReference) {
  uint64_t seed = 2500;
  for (int algo : {1, 2, 3}) {
    SCOPED_TRACE("algorithm " + std::to_string(algo));
    ts::cpu::conv_force_algorithm(algo);
    for (const ConvCase& c : transpose_cases())
      check_transpose(c, ts::DType::Float32, Layout::Contiguous, algo == 1, seed);
  }
  ts::cpu::conv_force_algorithm(0);
}

TEST(ConvTranspose2d, OtherFloatDtypesMatchScatterReference) {
  uint64_t seed = 3000;
  for (ts::DType dt : {ts::DType::Float64, ts::DType::Float16, ts::DType::BFloat16})
    for (const ConvCase& c : transpose_cases()) check_transpose(c, dt, Layout::Contiguous, true, seed);
}

TEST(ConvTranspose2d, IsTheAdjointOfConv2d) {
  // <conv2d(x, w), y> == <x, conv_transpose2d(y, w)> for matching geometry (float64).
  ts::Tensor x = make_input({2, 4, 9, 8}, ts::DType::Float64, Layout::Contiguous, 41);
  ts::Tensor w = make_input({6, 2, 3, 3}, ts::DType::Float64, Layout::Contiguous, 42);
  ts::Conv2dOptions o{{2, 2}, {1, 1}, {1, 1}, 2};
  ts::Tensor cx = ts::conv2d(x, w, {}, o);
  ts::Tensor y = make_input(cx.shape(), ts::DType::Float64, Layout::Contiguous, 43);
  ts::Tensor ty = ts::conv_transpose2d(y, w, {}, {{2, 2}, {1, 1}, {0, 1}, {1, 1}, 2});
  ASSERT_EQ(ty.shape(), x.shape());
  Ref a = to_ref(cx), b = to_ref(y), c = to_ref(x), d = to_ref(ty);
  double lhs = 0, rhs = 0;
  for (size_t i = 0; i < a.v.size(); ++i) lhs += a.v[i] * b.v[i];
  for (size_t i = 0; i < c.v.size(); ++i) rhs += c.v[i] * d.v[i];
  EXPECT_NEAR(lhs, rhs, 1e-9 * std::max(1.0, std::fabs(lhs)));
}

TEST(Conv2d, ReportsBadShapesAndArguments) {
  expect_error<ts::ShapeError>(
      [] {
        ts::conv2d(ts::zeros({1, 3, 5, 5}), ts::zeros({4, 2, 3, 3}));
      },
      {"[conv2d]", "[1,3,5,5]", "3 channels", "[4,2,3,3]"});
  expect_error<ts::ShapeError>(
      [] {
        ts::conv2d(ts::zeros({1, 3, 5, 5}), ts::zeros({4, 1, 3, 3}), {}, {{1, 1}, {0, 0}, {1, 1}, 2});
      },
      {"[conv2d]", "groups=2", "3 input channels"});
  expect_error<ts::ShapeError>(
      [] {
        ts::conv2d(ts::zeros({1, 4, 5, 5}), ts::zeros({3, 2, 3, 3}), {}, {{1, 1}, {0, 0}, {1, 1}, 2});
      },
      {"[conv2d]", "groups=2", "3 output channels", "[3,2,3,3]"});
  expect_error<ts::ShapeError>(
      [] {
        ts::conv2d(ts::zeros({1, 3, 2, 2}), ts::zeros({4, 3, 3, 3}));
      },
      {"[conv2d]", "[1,3,2,2]", "smaller"});
  expect_error<ts::ShapeError>([] { ts::conv2d(ts::zeros({3, 5}), ts::zeros({4, 3, 3, 3})); }, {"[conv2d]", "[3,5]"});
  expect_error<ts::ShapeError>(
      [] {
        ts::conv2d(ts::zeros({1, 3, 5, 5}), ts::zeros({4, 3, 3, 3}), ts::zeros({3}));
      },
      {"[conv2d]", "bias", "[3]"});
  expect_error<ts::ValueError>(
      [] {
        ts::conv2d(ts::zeros({1, 3, 5, 5}), ts::zeros({4, 3, 3, 3}), {}, {{0, 1}});
      },
      {"[conv2d]", "stride"});
  expect_error<ts::DTypeError>(
      [] {
        ts::conv2d(ts::zeros({1, 3, 5, 5}, ts::DType::Int32), ts::zeros({4, 3, 3, 3}, ts::DType::Int32));
      },
      {"[conv2d]", "int32"});
  expect_error<ts::ShapeError>(
      [] {
        ts::conv1d(ts::zeros({1, 3, 5}), ts::zeros({4, 2, 3}));
      },
      {"[conv1d]", "[1,3,5]", "[4,2,3]"});
  expect_error<ts::ShapeError>(
      [] {
        ts::conv1d(ts::zeros({1, 4, 5}), ts::zeros({4, 4, 3}), {}, {1, 0, 1, 3});
      },
      {"[conv1d]", "groups=3"});
  expect_error<ts::ShapeError>(
      [] {
        ts::conv_transpose2d(ts::zeros({1, 3, 5, 5}), ts::zeros({4, 2, 3, 3}));
      },
      {"[conv_transpose2d]", "[1,3,5,5]", "[4,2,3,3]"});
  expect_error<ts::ValueError>(
      [] {
        ts::conv_transpose2d(ts::zeros({1, 3, 5, 5}), ts::zeros({3, 2, 3, 3}), {}, {{1, 1}, {0, 0}, {1, 1}});
      },
      {"[conv_transpose2d]", "output_padding"});
}
