// Derivative rules of the convolutions and the pooling primitives (NCHW, 4-d inputs: the public
// functions add the batch axis and add the bias with a separate broadcast add).
//
// conv2d and conv_transpose2d are bilinear in (x, w): the jvp is op(dx, w) + op(x, dw), and the vjp is
// written with the other convolution (data gradient) and with a conv2d over permuted tensors in which the
// batch acts as the channels (weight gradient). The average poolings are linear: their jvp pools the
// tangent; avg_pool2d's vjp is a conv_transpose2d with a ones kernel over the cotangent divided by each
// window's divisor, adaptive_avg_pool2d's applies a host-built (output, input, weight) list with gather /
// mul / scatter_add. Max pooling routes the gradient through the position of each window's maximum
// (the max_pool2d_indices primitive).
#include <cmath>
#include <limits>
#include <vector>

#include "rules.h"
#include "tessera/autodiff.h"

namespace tessera::autodiff {

namespace {

Conv2dOptions conv_opts(const ConvAttrs& c) { return Conv2dOptions{c.stride, c.padding, c.dilation, c.groups}; }
ConvTranspose2dOptions conv_t_opts(const ConvAttrs& c) {
  return ConvTranspose2dOptions{c.stride, c.padding, c.output_padding, c.dilation, c.groups};
}

// r [.., h', w'] cut to its leading [.., h, w] (no-op when it already has that size).
Tensor crop_hw(Tensor r, int64_t h, int64_t w) {
  if (r.shape()[2] != h) r = slice(r, 2, 0, h);
  if (r.shape()[3] != w) r = slice(r, 3, 0, w);
  return r;
}

// Weight gradient of y = conv2d(inp, W) (geometry c) given g = dy:
//   dW[o, ci, i, j] = sum_{n, oh, ow} g[n, o, oh, ow] * inp_pad[n, grp(o)*Cg + ci, oh*s + i*d, ow*s + j*d]
// which is itself a conv2d in which the batch n plays the channel:
//   in  = inp [N, G*Cg, H, W] -> [N, G, Cg, H, W] -> permute -> [Cg, G, N, H, W] -> [Cg, G*N, H, W]
//   wt  = g [N, O, Ho, Wo] -> [O, N, Ho, Wo]   (groups G: group k pairs in-channels k*N.. with out k*O/G..)
//   r   = conv2d(in, wt, stride d, padding p, dilation s, groups G) -> [Cg, O, kh', kw'] -> [O, Cg, kh', kw']
// with kh' = (H + 2p - s*(Ho-1) - 1) / d + 1 >= kh (the rows past kh are positions no output reads): crop.
Tensor conv_weight_grad(const Tensor& inp, const Tensor& g, int64_t kh, int64_t kw, const ConvAttrs& c) {
  const Shape& xs = inp.shape();
  const int64_t N = xs[0], G = c.groups, Cg = xs[1] / G, H = xs[2], W = xs[3];
  Tensor in = reshape(permute(reshape(inp, {N, G, Cg, H, W}), {2, 1, 0, 3, 4}), {Cg, G * N, H, W});
  Tensor wt = permute(g, {1, 0, 2, 3});
  Conv2dOptions o{c.dilation, c.padding, c.stride, G};
  Tensor r = permute(conv2d(in, wt, {}, o), {1, 0, 2, 3});
  return crop_hw(r, kh, kw);
}

// ------------------------------------------------------------------- conv2d
// y = conv2d(x [N, C, H, W], w [O, C/G, kh, kw]) -> [N, O, Ho, Wo], Ho = (H + 2p - d(kh-1) - 1) / s + 1.
// dx = conv_transpose2d(dy, w) with the same stride/padding/dilation/groups and output_padding
//      op = (H + 2p - d(kh-1) - 1) - s*(Ho-1) in [0, s): its output size (Ho-1)s - 2p + d(kh-1) + 1 + op = H.
// dw = conv_weight_grad(x, dy).
void conv2d_vjp(const VjpArgs& a, std::span<Tensor> g) {
  const Tensor& ct = a.ct[0];
  if (!ct.defined()) return;
  const auto& c = a.at<ConvAttrs>();
  const Shape &xs = a.in_meta[0].shape, &ws = a.in_meta[1].shape;
  if (a.need[0]) {
    ConvTranspose2dOptions o = conv_t_opts(c);
    for (int i = 0; i < 2; ++i) {
      int64_t span = xs[2 + i] + 2 * c.padding[i] - c.dilation[i] * (ws[2 + i] - 1) - 1;
      o.output_padding[i] = span - c.stride[i] * (ct.shape()[2 + i] - 1);
    }
    g[0] = conv_transpose2d(ct, a.in[1], {}, o);
  }
  if (a.need[1]) g[1] = conv_weight_grad(a.in[0], ct, ws[2], ws[3], c);
}
void conv2d_jvp(const JvpArgs& a, std::span<Tensor> t) {
  const Conv2dOptions o = conv_opts(a.at<ConvAttrs>());
  Tensor r;
  if (a.tan[0].defined()) r = conv2d(a.tan[0], a.in[1], {}, o);
  if (a.tan[1].defined()) r = acc(r, conv2d(a.in[0], a.tan[1], {}, o));
  t[0] = r;
}

// --------------------------------------------------------- conv_transpose2d
// y = conv_transpose2d(x [N, C, H, W], w [C, O/G, kh, kw]) -> [N, O, Ho, Wo],
//   Ho = (H-1)s - 2p + d(kh-1) + op + 1;  y[n, grp(c)*O/G + o, ih*s - p + i*d, ..] += x[n, c, ih, ..] w[c, o, i, ..].
// dx = conv2d(dy, w) (w read as [C, O/G, ..] = a conv2d weight from O to C channels); its output has
//      (Ho + 2p - d(kh-1) - 1) / s + 1 = H + op / s >= H rows: crop to H.
// dw[c, o, i, j] = sum x[n, c, ih, iw] dy_pad[n, grp(c)*O/G + o, ih*s + i*d, ..] = conv_weight_grad(dy, x):
//      the weight gradient of a conv2d from dy to x, [C, O/G, kh', kw'] with kh' = kh + op / d: crop.
void conv_t_vjp(const VjpArgs& a, std::span<Tensor> g) {
  const Tensor& ct = a.ct[0];
  if (!ct.defined()) return;
  const auto& c = a.at<ConvAttrs>();
  const Shape &xs = a.in_meta[0].shape, &ws = a.in_meta[1].shape;
  if (a.need[0]) g[0] = crop_hw(conv2d(ct, a.in[1], {}, conv_opts(c)), xs[2], xs[3]);
  if (a.need[1]) g[1] = conv_weight_grad(ct, a.in[0], ws[2], ws[3], c);
}
void conv_t_jvp(const JvpArgs& a, std::span<Tensor> t) {
  const ConvTranspose2dOptions o = conv_t_opts(a.at<ConvAttrs>());
  Tensor r;
  if (a.tan[0].defined()) r = conv_transpose2d(a.tan[0], a.in[1], {}, o);
  if (a.tan[1].defined()) r = acc(r, conv_transpose2d(a.in[0], a.tan[1], {}, o));
  t[0] = r;
}

// --------------------------------------------------------------- max_pool2d
// The flat position (h * W + w within its plane) of each output's maximum, [N*C, Ho*Wo] int64, from the
// max_pool2d_indices primitive (ties: first in row-major window order). Integer, so a constant for every
// transform.
Tensor max_positions(const Tensor& x, const PoolAttrs& p) {
  Pool2dOptions o{p.kernel, p.stride, p.padding, p.ceil_mode, p.count_include_pad};
  Tensor pos = max_pool2d_indices(x, o);
  const Shape& ps = pos.shape();
  return reshape(pos, {ps[0] * ps[1], ps[2] * ps[3]});
}

// y[p, o] = x[p, pos[p, o]]: vjp scatter-adds ct at pos into zeros [P, H*W]; jvp gathers the tangent at pos.
void max_pool_vjp(const VjpArgs& a, std::span<Tensor> g) {
  const Tensor& ct = a.ct[0];
  if (!a.need[0] || !ct.defined()) return;
  const Shape& xs = a.in_meta[0].shape;
  const int64_t P = xs[0] * xs[1], HW = xs[2] * xs[3], Ho = ct.shape()[2], Wo = ct.shape()[3];
  if (P * HW == 0 || Ho * Wo == 0) {
    g[0] = zeros(xs, ct.dtype(), ct.device());
    return;
  }
  Tensor pos = max_positions(a.in[0], a.at<PoolAttrs>());
  g[0] = reshape(scatter_add(zeros({P, HW}, ct.dtype(), ct.device()), 1, pos, reshape(ct, {P, Ho * Wo})), xs);
}
void max_pool_jvp(const JvpArgs& a, std::span<Tensor> t) {
  const Tensor& tan = a.tan[0];
  if (!tan.defined()) return;
  const Shape &xs = a.in[0].shape(), &ys = a.out[0].shape();
  const int64_t P = xs[0] * xs[1], HW = xs[2] * xs[3], Ho = ys[2], Wo = ys[3];
  if (P * HW == 0 || Ho * Wo == 0) {
    t[0] = zeros(ys, tan.dtype(), tan.device());
    return;
  }
  Tensor pos = max_positions(a.in[0], a.at<PoolAttrs>());
  t[0] = reshape(gather(reshape(tan, {P, HW}), 1, pos), ys);
}

// ------------------------------------------------------- average pooling (linear)
// adaptive_avg_pool2d: y[p, o] = sum_e [out_e == o] w_e x[p, in_e]: a list of (output, input, weight) entries per
// plane, built on the host. vjp: vals = gather(ct, out) * w, then scatter_add(zeros [P, H*W], in, vals).
struct LinearPool {
  std::vector<int64_t> out, in;
  std::vector<double> w;
  void add(int64_t o, int64_t i, double wt) { out.push_back(o), in.push_back(i), w.push_back(wt); }
};

Tensor linear_pool_vjp(const LinearPool& lp, const Tensor& ct, const Shape& xs) {
  const int64_t P = xs[0] * xs[1], HW = xs[2] * xs[3], L = ct.shape()[2] * ct.shape()[3];
  const int64_t E = static_cast<int64_t>(lp.out.size());
  if (P * HW == 0 || E == 0) return zeros(xs, ct.dtype(), ct.device());
  Tensor oi = expand(tensor(lp.out, {1, E}, ct.device()), {P, E});
  Tensor ii = expand(tensor(lp.in, {1, E}, ct.device()), {P, E});
  Tensor w = cast(tensor(lp.w, {E}, ct.device()), ct.dtype());
  Tensor vals = mul(gather(reshape(ct, {P, L}), 1, oi), w);
  return reshape(scatter_add(zeros({P, HW}, ct.dtype(), ct.device()), 1, ii, vals), xs);
}

// avg_pool2d's forward (pool_kernels.cpp): the window of output oh starts at hs = oh*s - p and ends at
// he = min(hs + k, H + p); it sums x over the window clipped to [0, H) and divides by (he - hs) times the
// same for W when count_include_pad, else by the clipped window's size. So y = conv2d(x, ones) / div with a
// host-built divisor div [Ho, Wo], one channel per (image, channel) plane, and the vjp is
//   dx = conv_transpose2d(reshape(ct / div, [P, 1, Ho, Wo]), ones [1, 1, kh, kw], stride s, padding p)
// whose output has (Ho-1)s - 2p + k (+ output_padding) rows: output_padding (< s) makes up the rows that
// floor mode leaves unread; rows past H (windows hanging over the right padding in ceil mode) are cropped.
void avg_pool_vjp(const VjpArgs& a, std::span<Tensor> g) {
  const Tensor& ct = a.ct[0];
  if (!a.need[0] || !ct.defined()) return;
  const auto& p = a.at<PoolAttrs>();
  const Shape& xs = a.in_meta[0].shape;
  const int64_t P = xs[0] * xs[1], H = xs[2], W = xs[3], Ho = ct.shape()[2], Wo = ct.shape()[3];
  if (P * H * W == 0 || Ho * Wo == 0) {
    g[0] = zeros(xs, ct.dtype(), ct.device());
    return;
  }
  std::vector<double> dv(static_cast<size_t>(Ho * Wo));
  for (int64_t oh = 0; oh < Ho; ++oh) {
    int64_t hs = oh * p.stride[0] - p.padding[0], he = std::min(hs + p.kernel[0], H + p.padding[0]);
    int64_t hn = p.count_include_pad ? he - hs : std::min(he, H) - std::max<int64_t>(hs, 0);
    for (int64_t ow = 0; ow < Wo; ++ow) {
      int64_t ws = ow * p.stride[1] - p.padding[1], we = std::min(ws + p.kernel[1], W + p.padding[1]);
      int64_t wn = p.count_include_pad ? we - ws : std::min(we, W) - std::max<int64_t>(ws, 0);
      dv[static_cast<size_t>(oh * Wo + ow)] = static_cast<double>(hn * wn);
    }
  }
  Tensor d = cast(tensor(dv, {Ho, Wo}, ct.device()), ct.dtype());
  ConvTranspose2dOptions o;
  o.stride = p.stride, o.padding = p.padding;
  const std::array<int64_t, 2> in{H, W}, out{Ho, Wo};
  for (int i = 0; i < 2; ++i) {
    int64_t len = (out[i] - 1) * p.stride[i] - 2 * p.padding[i] + p.kernel[i];
    o.output_padding[i] = std::max<int64_t>(0, in[i] - len);
  }
  Tensor ones_k = ones({1, 1, p.kernel[0], p.kernel[1]}, ct.dtype(), ct.device());
  Tensor r = conv_transpose2d(reshape(div(ct, d), {P, 1, Ho, Wo}), ones_k, {}, o);
  g[0] = reshape(crop_hw(r, H, W), xs);
}
void avg_pool_jvp(const JvpArgs& a, std::span<Tensor> t) {
  if (!a.tan[0].defined()) return;
  const auto& p = a.at<PoolAttrs>();
  Pool2dOptions o;
  o.kernel = p.kernel, o.stride = p.stride, o.padding = p.padding;
  o.ceil_mode = p.ceil_mode, o.count_include_pad = p.count_include_pad;
  t[0] = avg_pool2d(a.tan[0], o);
}

// adaptive_avg_pool2d: output bin i covers [floor(i*H/Ho), ceil((i+1)*H/Ho)) and divides by its size.
void adaptive_pool_vjp(const VjpArgs& a, std::span<Tensor> g) {
  const Tensor& ct = a.ct[0];
  if (!a.need[0] || !ct.defined()) return;
  const Shape& xs = a.in_meta[0].shape;
  const int64_t H = xs[2], W = xs[3], Ho = ct.shape()[2], Wo = ct.shape()[3];
  LinearPool lp;
  for (int64_t oh = 0; oh < Ho; ++oh) {
    int64_t hs = oh * H / Ho, he = ((oh + 1) * H + Ho - 1) / Ho;
    for (int64_t ow = 0; ow < Wo; ++ow) {
      int64_t ws = ow * W / Wo, we = ((ow + 1) * W + Wo - 1) / Wo;
      double div = static_cast<double>((he - hs) * (we - ws));
      for (int64_t ih = hs; ih < he; ++ih)
        for (int64_t iw = ws; iw < we; ++iw) lp.add(oh * Wo + ow, ih * W + iw, 1.0 / div);
    }
  }
  g[0] = linear_pool_vjp(lp, ct, xs);
}
void adaptive_pool_jvp(const JvpArgs& a, std::span<Tensor> t) {
  if (a.tan[0].defined()) t[0] = adaptive_avg_pool2d(a.tan[0], a.at<AdaptivePoolAttrs>().output_size);
}

}  // namespace

void register_conv_rules(RuleTable& t) {
  set_rule(t, OpId::Conv2d, conv2d_vjp, conv2d_jvp, kSaveAll, kSaveNone);
  set_rule(t, OpId::ConvTranspose2d, conv_t_vjp, conv_t_jvp, kSaveAll, kSaveNone);
  set_rule(t, OpId::MaxPool2d, max_pool_vjp, max_pool_jvp, kSaveAll, kSaveNone);
  set_nondiff(t, OpId::MaxPool2dIndices);
  set_rule(t, OpId::AvgPool2d, avg_pool_vjp, avg_pool_jvp, kSaveNone, kSaveNone);
  set_rule(t, OpId::AdaptiveAvgPool2d, adaptive_pool_vjp, adaptive_pool_jvp, kSaveNone, kSaveNone);
}

}  // namespace tessera::autodiff
