// Derivative rules of the views (reshape, permute, slice, expand, as_strided) and of the data-movement
// primitives (concat, pad, flip). All of them are linear in their (single differentiable) input, so every
// jvp applies the op itself to the tangent, and every vjp is the op's transpose written with views, pad,
// slice and scatter_add.
#include <algorithm>
#include <string>
#include <vector>

#include "rules.h"

namespace tessera::autodiff {

namespace {

Shape with_axis(const Shape& s, int64_t axis, int64_t n) {
  Shape r = s;
  r[static_cast<size_t>(axis)] = n;
  return r;
}

// ------------------------------------------------------------------ reshape
void reshape_vjp(const VjpArgs& a, std::span<Tensor> g) {
  if (a.need[0] && a.ct[0].defined()) g[0] = reshape(a.ct[0], a.in_meta[0].shape);
}
void reshape_jvp(const JvpArgs& a, std::span<Tensor> t) {
  if (a.tan[0].defined()) t[0] = reshape(a.tan[0], a.at<ShapeAttrs>().shape);
}

// ------------------------------------------------------------------ permute
// y = permute(x, p): y axis i is x axis p[i]; the transpose permutes back with inv[p[i]] = i.
void permute_vjp(const VjpArgs& a, std::span<Tensor> g) {
  if (!a.need[0] || !a.ct[0].defined()) return;
  const Axes& p = a.at<PermuteAttrs>().perm;
  Axes inv(p.size());
  for (size_t i = 0; i < p.size(); ++i) inv[static_cast<size_t>(p[i])] = static_cast<int64_t>(i);
  g[0] = permute(a.ct[0], inv);
}
void permute_jvp(const JvpArgs& a, std::span<Tensor> t) {
  if (a.tan[0].defined()) t[0] = permute(a.tan[0], a.at<PermuteAttrs>().perm);
}

// -------------------------------------------------------------------- slice
// y = x[start:stop:step] along axis (m elements). The transpose puts ct back at positions start + i*step
// of a zero tensor of x's shape, with views and pad only:
//   ct [.., m, ..] -> unsqueeze [.., m, 1, ..] -> pad (0, step-1) -> [.., m, step, ..]
//   -> reshape [.., m*step, ..] -> keep the first min(m*step, n-start) -> pad (start, rest) -> [.., n, ..].
void slice_vjp(const VjpArgs& a, std::span<Tensor> g) {
  if (!a.need[0] || !a.ct[0].defined()) return;
  const auto& s = a.at<SliceAttrs>();
  const Shape& xs = a.in_meta[0].shape;
  const int64_t nd = static_cast<int64_t>(xs.size()), n = xs[static_cast<size_t>(s.axis)];
  Tensor ct = a.ct[0];
  const int64_t m = ct.shape()[static_cast<size_t>(s.axis)];
  if (m == 0) {
    g[0] = zeros(xs, ct.dtype(), ct.device());
    return;
  }
  if (s.step > 1) {
    Tensor u = unsqueeze(ct, s.axis + 1);
    std::vector<int64_t> pads(static_cast<size_t>(2 * (nd + 1)), 0);
    pads[static_cast<size_t>(2 * (s.axis + 1) + 1)] = s.step - 1;
    u = pad(u, pads);
    ct = reshape(u, with_axis(ct.shape(), s.axis, m * s.step));
    ct = slice(ct, s.axis, 0, std::min(m * s.step, n - s.start));
  }
  const int64_t len = ct.shape()[static_cast<size_t>(s.axis)];
  std::vector<int64_t> pads(static_cast<size_t>(2 * nd), 0);
  pads[static_cast<size_t>(2 * s.axis)] = s.start;
  pads[static_cast<size_t>(2 * s.axis + 1)] = n - s.start - len;
  g[0] = pad(ct, pads);
}
void slice_jvp(const JvpArgs& a, std::span<Tensor> t) {
  const auto& s = a.at<SliceAttrs>();
  if (a.tan[0].defined()) t[0] = slice(a.tan[0], s.axis, s.start, s.stop, s.step);
}

// ------------------------------------------------------------------- expand
// y = expand(x, shape): the transpose sums over the added and stretched axes.
void expand_vjp(const VjpArgs& a, std::span<Tensor> g) {
  if (a.need[0] && a.ct[0].defined()) g[0] = unbroadcast(a.ct[0], a.in_meta[0].shape);
}
void expand_jvp(const JvpArgs& a, std::span<Tensor> t) {
  if (a.tan[0].defined()) t[0] = expand(a.tan[0], a.at<ShapeAttrs>().shape);
}

// --------------------------------------------------------------- as_strided
// y = as_strided(x, shape, strides, offset) reads storage positions offset + sum_k j_k*strides_k; x owns
// the positions x.offset + sum_k i_k*x.strides_k. The map out-element -> x flat (row-major) index is built
// on the host from metadata only: y = gather(flat(x), map), so the vjp is scatter_add(zeros, map, flat(ct))
// (elements read twice accumulate) and the jvp is gather(flat(tan), map). If x aliases itself (stride 0),
// a storage position maps to the first x element that owns it.
Tensor as_strided_map(const Tensor& x, const AsStridedAttrs& s) {
  const Shape& xs = x.shape();
  const Strides& xst = x.strides();
  const int64_t xn = x.numel();
  int64_t lo = x.offset(), hi = x.offset();
  if (xn > 0)
    for (size_t k = 0; k < xs.size(); ++k) {
      int64_t ext = (xs[k] - 1) * xst[k];
      (ext < 0 ? lo : hi) += ext;
    }
  // owner[pos - lo]: flat index of the x element stored at pos, or -1.
  std::vector<int64_t> owner(xn > 0 ? static_cast<size_t>(hi - lo + 1) : 0, -1);
  {
    std::vector<int64_t> idx(xs.size(), 0);
    int64_t pos = x.offset();
    for (int64_t f = 0; f < xn; ++f) {
      int64_t& o = owner[static_cast<size_t>(pos - lo)];
      if (o < 0) o = f;
      for (size_t k = xs.size(); k-- > 0;) {  // row-major increment
        pos += xst[k];
        if (++idx[k] < xs[k]) break;
        pos -= xst[k] * xs[k];
        idx[k] = 0;
      }
    }
  }
  const int64_t yn = shape_numel(s.shape, "as_strided");
  std::vector<int64_t> map(static_cast<size_t>(yn));
  std::vector<int64_t> idx(s.shape.size(), 0);
  int64_t pos = s.offset;
  for (int64_t f = 0; f < yn; ++f) {
    int64_t o = pos >= lo && pos <= hi && xn > 0 ? owner[static_cast<size_t>(pos - lo)] : -1;
    if (o < 0)
      raise<ValueError>("as_strided", "cannot differentiate: the view of shape " + shape_str(s.shape) +
                                          " with strides " + shape_str(s.strides) + " and offset " +
                                          std::to_string(s.offset) + " reads storage position " + std::to_string(pos) +
                                          ", which the input of shape " + shape_str(xs) + ", strides " +
                                          shape_str(xst) + " and offset " + std::to_string(x.offset()) +
                                          " does not cover");
    map[static_cast<size_t>(f)] = o;
    for (size_t k = s.shape.size(); k-- > 0;) {
      pos += s.strides[k];
      if (++idx[k] < s.shape[k]) break;
      pos -= s.strides[k] * s.shape[k];
      idx[k] = 0;
    }
  }
  return tensor(map, {yn}, x.device());
}

void as_strided_vjp(const VjpArgs& a, std::span<Tensor> g) {
  if (!a.need[0] || !a.ct[0].defined()) return;
  const Tensor& ct = a.ct[0];
  const Shape& xs = a.in_meta[0].shape;
  Tensor map = as_strided_map(a.in[0], a.at<AsStridedAttrs>());
  Tensor flat = zeros({shape_numel(xs, "as_strided")}, ct.dtype(), ct.device());
  g[0] = reshape(scatter_add(flat, 0, map, reshape(ct, {-1})), xs);
}
void as_strided_jvp(const JvpArgs& a, std::span<Tensor> t) {
  if (!a.tan[0].defined()) return;
  const auto& s = a.at<AsStridedAttrs>();
  Tensor map = as_strided_map(a.in[0], s);
  t[0] = reshape(gather(reshape(a.tan[0], {-1}), 0, map), s.shape);
}

// ------------------------------------------------------------------- concat
// y = concat(x_0, .., x_{k-1}) along axis: the cotangent splits back into slices of each input's size.
void concat_vjp(const VjpArgs& a, std::span<Tensor> g) {
  if (!a.ct[0].defined()) return;
  const int64_t axis = a.at<AxisAttrs>().axis;
  int64_t at = 0;
  for (size_t i = 0; i < a.in_meta.size(); ++i) {
    int64_t n = a.in_meta[i].shape[static_cast<size_t>(axis)];
    if (a.need[i]) g[i] = slice(a.ct[0], axis, at, at + n);
    at += n;
  }
}
void concat_jvp(const JvpArgs& a, std::span<Tensor> t) {
  bool any = false;
  for (const Tensor& x : a.tan) any = any || x.defined();
  if (!any) return;
  std::vector<Tensor> parts;
  parts.reserve(a.in.size());
  for (size_t i = 0; i < a.in.size(); ++i) parts.push_back(tan_or_zero(a.tan[i], a.in[i]));
  t[0] = concat(parts, a.at<AxisAttrs>().axis);
}

// ---------------------------------------------------------------------- pad
// Constant mode: y holds x at [lo_d, lo_d + n_d) on every axis, so the vjp slices ct there.
// Reflect / edge: y[j] = x[src(j)] with several j per source; the map j -> flat source index comes from
// padding an int64 arange of x's flat indices with the same mode, and the vjp scatter-adds ct through it.
// Every mode is linear in x (the constant carries no tangent): jvp = pad(tan) with value 0.
void pad_vjp(const VjpArgs& a, std::span<Tensor> g) {
  if (!a.need[0] || !a.ct[0].defined()) return;
  const auto& p = a.at<PadAttrs>();
  const Shape& xs = a.in_meta[0].shape;
  const Tensor& ct = a.ct[0];
  if (static_cast<PadMode>(p.mode) == PadMode::Constant) {
    Tensor r = ct;
    for (size_t d = 0; d < xs.size(); ++d) {
      int64_t lo = p.pads[2 * d];
      r = slice(r, static_cast<int64_t>(d), lo, lo + xs[d]);
    }
    g[0] = r;
    return;
  }
  const int64_t n = shape_numel(xs, "pad");
  Tensor src = reshape(arange(0, n, 1, DType::Int64, ct.device()), xs);
  Tensor map = reshape(
      pad(src, IntList(std::span<const int64_t>(p.pads.data(), p.pads.size())), static_cast<PadMode>(p.mode)), {-1});
  Tensor flat = zeros({n}, ct.dtype(), ct.device());
  g[0] = reshape(scatter_add(flat, 0, map, reshape(ct, {-1})), xs);
}
void pad_jvp(const JvpArgs& a, std::span<Tensor> t) {
  if (!a.tan[0].defined()) return;
  const auto& p = a.at<PadAttrs>();
  t[0] =
      pad(a.tan[0], IntList(std::span<const int64_t>(p.pads.data(), p.pads.size())), static_cast<PadMode>(p.mode), 0);
}

// --------------------------------------------------------------------- flip
// Flip is its own transpose.
void flip_vjp(const VjpArgs& a, std::span<Tensor> g) {
  if (a.need[0] && a.ct[0].defined()) g[0] = flip(a.ct[0], a.at<AxesAttrs>().axes);
}
void flip_jvp(const JvpArgs& a, std::span<Tensor> t) {
  if (a.tan[0].defined()) t[0] = flip(a.tan[0], a.at<AxesAttrs>().axes);
}

}  // namespace

void register_view_rules(RuleTable& t) {
  set_rule(t, OpId::Reshape, reshape_vjp, reshape_jvp, kSaveNone, kSaveNone);
  set_rule(t, OpId::Permute, permute_vjp, permute_jvp, kSaveNone, kSaveNone);
  set_rule(t, OpId::Slice, slice_vjp, slice_jvp, kSaveNone, kSaveNone);
  set_rule(t, OpId::Expand, expand_vjp, expand_jvp, kSaveNone, kSaveNone);
  set_rule(t, OpId::AsStrided, as_strided_vjp, as_strided_jvp, kSaveAll, kSaveNone);  // x's strides and offset
  set_rule(t, OpId::Concat, concat_vjp, concat_jvp, kSaveNone, kSaveNone);
  set_rule(t, OpId::Pad, pad_vjp, pad_jvp, kSaveNone, kSaveNone);
  set_rule(t, OpId::Flip, flip_vjp, flip_jvp, kSaveNone, kSaveNone);
}

}  // namespace tessera::autodiff
