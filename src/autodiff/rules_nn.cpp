// Rules for the fused normalization primitives: softmax, log_softmax, layer_norm, rms_norm.
#include "rules.h"

namespace tessera::autodiff {

namespace {

using S = std::span<Tensor>;

// y = softmax(x): its Jacobian diag(y) - y y^T is symmetric, so the vjp and the jvp apply the same map:
// v -> y * (v - sum(v * y))  (sums over the softmax axis, kept). A 0-d softmax is constant (1).
Tensor softmax_map(const Tensor& y, const Tensor& v, int64_t ax) {
  if (y.ndim() == 0) return mul(v, 0.0);
  return mul(y, sub(v, sum(mul(v, y), {ax}, true)));
}
void softmax_vjp(const VjpArgs& a, S g) { g[0] = softmax_map(a.out[0], a.ct[0], a.at<AxisAttrs>().axis); }
void softmax_jvp(const JvpArgs& a, S t) { t[0] = softmax_map(a.out[0], a.tan[0], a.at<AxisAttrs>().axis); }
// y = log_softmax(x): dx = g - softmax(x) * sum(g), softmax(x) = exp(y)
void log_softmax_vjp(const VjpArgs& a, S g) {
  int64_t ax = a.at<AxisAttrs>().axis;
  const Tensor& y = a.out[0];
  if (y.ndim() == 0) {
    g[0] = mul(a.ct[0], 0.0);
    return;
  }
  g[0] = sub(a.ct[0], mul(exp(y), sum(a.ct[0], {ax}, true)));
}
void log_softmax_jvp(const JvpArgs& a, S t) {
  int64_t ax = a.at<AxisAttrs>().axis;
  const Tensor& y = a.out[0];
  if (y.ndim() == 0) {
    t[0] = mul(a.tan[0], 0.0);
    return;
  }
  t[0] = sub(a.tan[0], sum(mul(exp(y), a.tan[0]), {ax}, true));
}

// Normalization over the trailing n axes: xhat = (x - mu) * rstd (layer_norm) or x * rstd
// (rms_norm), y = xhat * w + b. With r = rstd and means over the normalized axes:
//   layer_norm: dx = r * (dxhat - mean(dxhat) - xhat * mean(dxhat * xhat))
//   rms_norm:   dx = r * (dxhat - xhat * mean(dxhat * xhat))
// where dxhat = g * w; dw = g * xhat and db = g (summed over the leading axes by the engine).
// Forward mode is the same linear map applied to the tangent, plus xhat * tw + tb.
struct Norm {
  Tensor xhat, rstd;
  Axes axes;
  bool centered;
  Norm(const Tensor& x, const NormAttrs& na, bool centered_) : centered(centered_) {
    for (int64_t i = x.ndim() - na.normalized_ndim; i < x.ndim(); ++i) axes.push_back(i);
    Tensor xc = centered ? sub(x, mean(x, axes, true)) : x;
    rstd = rsqrt(add(mean(mul(xc, xc), axes, true), na.eps));
    xhat = mul(xc, rstd);
  }
  Tensor back(const Tensor& d) const {
    Tensor r = sub(d, mul(xhat, mean(mul(d, xhat), axes, true)));
    if (centered) r = sub(r, mean(d, axes, true));
    return mul(r, rstd);
  }
};

void norm_vjp(const VjpArgs& a, S g) {
  const auto& na = a.at<NormAttrs>();
  Norm n(a.in[0], na, a.op == OpId::LayerNorm);
  size_t wi = 1, bi = na.has_weight ? 2 : 1;
  const Tensor& ct = a.ct[0];
  if (a.need[0]) g[0] = n.back(na.has_weight ? mul(ct, a.in[wi]) : ct);
  if (na.has_weight && a.need[wi]) g[wi] = mul(ct, n.xhat);
  if (na.has_bias && a.need[bi]) g[bi] = ct;
}
void norm_jvp(const JvpArgs& a, S t) {
  const auto& na = a.at<NormAttrs>();
  Norm n(a.in[0], na, a.op == OpId::LayerNorm);
  size_t wi = 1, bi = na.has_weight ? 2 : 1;
  Tensor r;
  if (a.tan[0].defined()) {
    r = n.back(a.tan[0]);
    if (na.has_weight) r = mul(r, a.in[wi]);
  }
  if (na.has_weight && a.tan[wi].defined()) r = acc(r, mul(n.xhat, a.tan[wi]));
  if (na.has_bias && a.tan[bi].defined()) r = acc(r, a.tan[bi]);
  t[0] = r;
}

}  // namespace

void register_nn_rules(RuleTable& t) {
  set_rule(t, OpId::Softmax, softmax_vjp, softmax_jvp, kSaveNone, 1);
  set_rule(t, OpId::LogSoftmax, log_softmax_vjp, log_softmax_jvp, kSaveNone, 1);
  set_rule(t, OpId::LayerNorm, norm_vjp, norm_jvp, kSaveAll, kSaveNone);
  set_rule(t, OpId::RmsNorm, norm_vjp, norm_jvp, kSaveAll, kSaveNone);
}

}  // namespace tessera::autodiff
