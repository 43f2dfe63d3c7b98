// Gradient checks (float64, central differences) of the corners of the view, index and conv rules
// (src/autodiff/rules_view.cpp, rules_index.cpp, rules_conv.cpp) that the per-op suites do not reach:
// as_strided over non-contiguous views (its offset is absolute in the storage) and its refusal to
// differentiate a read outside the input; conv_transpose2d with an output_padding allowed by the
// dilation (the data and weight gradients come out larger and are cropped); pooling windows that hang
// over the input in ceil mode; and second order through the structural rules (their rules are written
// with Tessera ops, so they differentiate again).
#include "harness/gradcheck.h"

namespace ts = tessera;
using namespace tessera::testing;
using ts::Tensor;
using ts::TensorList;

namespace {
Tensor idx(const std::vector<int64_t>& v, ts::IntList shape) { return ts::tensor(v, shape); }
}  // namespace

TEST(GradRules, AsStridedOfNonContiguousViews) {
  Tensor x = grad_input({4, 6}, Layout::Contiguous, 1);
  EXPECT_GRADS("as_strided of a sliced view",
               [](const TensorList& a) {
                 Tensor v = ts::slice(ts::slice(a[0], 0, 1, 4), 1, 2, 6);  // offset 8, strides [6, 1]
                 return ts::as_strided(v, {2, 3}, {6, 1}, 9);
               },
               {x});
  EXPECT_GRADS("as_strided of a transposed view",
               [](const TensorList& a) {
                 return ts::as_strided(ts::transpose(a[0], 0, 1), {5, 2}, {1, 12}, 0);
               },
               {x});
  EXPECT_GRADS("as_strided overlapping windows",
               [](const TensorList& a) {
                 return ts::as_strided(a[0], {3, 4, 3}, {6, 2, 1}, 1);
               },
               {x});
}

TEST(GradRules, AsStridedReadingOutsideTheInputIsRefused) {
  Tensor x = grad_input({4, 6}, Layout::Contiguous, 2);
  // The view of the first 3 columns does not own storage positions 3..5 of each row.
  auto f = [](const Tensor& a) { return ts::sum(ts::as_strided(ts::slice(a, 1, 0, 3), {2, 4}, {6, 1}, 0)); };
  EXPECT_THROW(ts::grad(f)(x), ts::ValueError);
}

TEST(GradRules, ConvTransposeOutputPaddingFromDilation) {
  // Along W: stride 1, dilation 2, output_padding 1 (allowed since it is below the dilation).
  ts::ConvTranspose2dOptions o{{2, 1}, {1, 0}, {1, 1}, {1, 2}, 2};
  Tensor x = grad_input({2, 4, 3, 4}, Layout::Transposed, 3), w = grad_input({4, 3, 3, 2}, Layout::Contiguous, 4);
  EXPECT_GRADS(
      "conv_transpose2d", [o](const TensorList& a) { return ts::conv_transpose2d(a[0], a[1], {}, o); }, {x, w},
      GradCheckOptions{.max_jac_elems = 2048});
  // conv2d whose data gradient needs output_padding on both axes, grouped and dilated.
  ts::Conv2dOptions c{{3, 2}, {1, 0}, {2, 1}, 3};
  Tensor xc = grad_input({1, 6, 8, 10}, Layout::Sliced, 5), wc = grad_input({3, 2, 2, 3}, Layout::Contiguous, 6);
  EXPECT_GRADS(
      "conv2d", [c](const TensorList& a) { return ts::conv2d(a[0], a[1], {}, c); }, {xc, wc},
      GradCheckOptions{.max_jac_elems = 2048});
}

TEST(GradRules, PoolWindowsHangingOverTheInput) {
  Tensor x = grad_input({2, 3, 7, 6}, Layout::Transposed, 7);
  for (bool cip : {false, true})
    for (int64_t p : {0, 1}) {
      ts::Pool2dOptions o;
      o.kernel = {3, 3};
      o.stride = std::array<int64_t, 2>{2, 2};
      o.padding = {p, p};
      o.ceil_mode = true;  // W: the last window starts at 4 (- p) and hangs over
      o.count_include_pad = cip;
      EXPECT_GRADS("avg_pool2d", [o](const TensorList& a) { return ts::avg_pool2d(a[0], o); }, {x});
      EXPECT_GRADS("max_pool2d", [o](const TensorList& a) { return ts::max_pool2d(a[0], o); }, {x});
    }
}

TEST(GradRules, SecondOrderThroughStructuralRules) {
  Tensor x = grad_input({1, 2, 5, 5}, Layout::Contiguous, 31);
  Tensor w = grad_input({3, 2, 2, 2}, Layout::Contiguous, 32);
  GradFn conv = [](const TensorList& a) {
    ts::Conv2dOptions o{{2, 1}, {1, 0}, {1, 2}, 1};
    return ts::sum(ts::tanh(ts::conv2d(a[0], a[1], {}, o)));
  };
  EXPECT_HESSIAN("conv2d wrt x", conv, {x, w}, 0);
  EXPECT_HESSIAN("conv2d wrt w", conv, {x, w}, 1);
  GradFn conv_t = [](const TensorList& a) {
    ts::ConvTranspose2dOptions o{{2, 1}, {1, 0}, {1, 0}, {1, 2}, 2};
    return ts::sum(ts::sin(ts::conv_transpose2d(a[0], a[1], {}, o)));
  };
  Tensor xt = grad_input({1, 4, 3, 4}, Layout::Contiguous, 33), wt = grad_input({4, 1, 2, 2}, Layout::Contiguous, 34);
  EXPECT_HESSIAN("conv_transpose2d wrt x", conv_t, {xt, wt}, 0);
  EXPECT_HESSIAN("conv_transpose2d wrt w", conv_t, {xt, wt}, 1);
  GradFn pools = [](const TensorList& a) {
    ts::Pool2dOptions po;
    po.kernel = {2, 2};
    po.padding = {1, 1};
    Tensor y = ts::max_pool2d(a[0], po);
    Tensor z = ts::avg_pool2d(ts::pad(y, {0, 0, 0, 0, 1, 1, 1, 1}, ts::PadMode::Reflect), po);
    return ts::sum(ts::mul(z, z)) + ts::sum(ts::exp(ts::adaptive_avg_pool2d(a[0], {2, 3})));
  };
  EXPECT_HESSIAN("max, avg, adaptive pooling and reflect pad", pools, {x});
  GradFn sorts = [](const TensorList& a) {
    auto [v, i] = ts::topk(ts::reshape(a[0], {2, -1}), 4, 1);
    Tensor s = ts::as_strided(a[0], {3, 3}, {5, 1}, 2);
    return ts::sum(ts::mul(v, v)) + ts::sum(ts::mul(ts::slice(s, 1, 0, 3, 2), ts::slice(s, 1, 1, 3)));
  };
  EXPECT_HESSIAN("topk, as_strided, strided slice", sorts, {x});
  Tensor si = idx({1, 3, 1, 0, 1, 2, 2, 2}, {2, 4});  // duplicate targets: the last write wins
  GradFn index = [si](const TensorList& a) {
    Tensor y = ts::scatter(ts::tanh(a[0]), 0, si, ts::sin(a[1]));
    Tensor z = ts::index_select(ts::gather(y, 1, ts::slice(si, 1, 0, 3)), 0, idx({1, 0, 1}, {3}));
    return ts::sum(ts::mul(y, y)) + ts::sum(ts::exp(z));
  };
  Tensor xs = grad_input({4, 5}, Layout::Transposed, 41), ss = grad_input({3, 5}, Layout::Sliced, 42);
  EXPECT_HESSIAN("scatter, gather, index_select wrt x", index, {xs, ss}, 0);
  EXPECT_HESSIAN("scatter, gather, index_select wrt src", index, {xs, ss}, 1);
}
