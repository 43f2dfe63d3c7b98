// Rules for reductions and cumsum. x = in[0], y = out[0]; `b(v)` re-inserts the reduced axes
// of a keepdims=false result so it broadcasts against x.
#include "rules.h"

namespace tessera::autodiff {

namespace {

using S = std::span<Tensor>;

struct Red {
  const ReduceAttrs& r;
  int64_t nd;
  Tensor b(const Tensor& v) const { return unsqueeze_reduced(v, r.axes, nd, r.keepdims); }
};

// sum: every input element contributes once: g_x = broadcast(g).
void sum_vjp(const VjpArgs& a, S g) {
  Red R{a.at<ReduceAttrs>(), static_cast<int64_t>(a.in_meta[0].shape.size())};
  g[0] = broadcast_to(R.b(a.ct[0]), a.in_meta[0].shape);
}
void sum_jvp(const JvpArgs& a, S t) {
  const auto& r = a.at<ReduceAttrs>();
  t[0] = a.in[0].ndim() == 0 ? a.tan[0] : sum(a.tan[0], r.axes, r.keepdims);
}

// prod: dy/dx_i = product of the other elements. Without zeros that is y / x_i; with one zero it
// is the product of the nonzeros at the zero and 0 elsewhere; with two or more zeros it is 0.
Tensor prod_partials(const Tensor& x, const ReduceAttrs& r) {
  Tensor z = eq(x, 0.0);
  Tensor xnz = where(z, full({}, 1, x.dtype(), x.device()), x);
  Tensor all_axes_x = x.ndim() == 0 ? xnz : prod(xnz, r.axes, /*keepdims=*/true);
  Tensor cnt = x.ndim() == 0 ? cast(z, x.dtype()) : sum(cast(z, x.dtype()), r.axes, /*keepdims=*/true);
  Tensor zero = full({}, 0, x.dtype(), x.device());
  Tensor no_zero = div(all_axes_x, xnz);
  Tensor one_zero = where(logical_and(eq(cnt, 1.0), z), all_axes_x, zero);
  return where(eq(cnt, 0.0), no_zero, one_zero);
}
void prod_vjp(const VjpArgs& a, S g) {
  Red R{a.at<ReduceAttrs>(), a.in[0].ndim()};
  g[0] = mul(R.b(a.ct[0]), prod_partials(a.in[0], R.r));
}
void prod_jvp(const JvpArgs& a, S t) {
  const auto& r = a.at<ReduceAttrs>();
  Tensor p = mul(a.tan[0], prod_partials(a.in[0], r));
  t[0] = a.in[0].ndim() == 0 ? p : sum(p, r.axes, r.keepdims);
}

// max/min: the elements equal to the result share the gradient equally.
Tensor extreme_weights(const Tensor& x, const Tensor& y, const Red& R) {
  Tensor m = cast(eq(x, R.b(y)), x.dtype());
  if (x.ndim() == 0) return m;
  return div(m, sum(m, R.r.axes, /*keepdims=*/true));
}
void extreme_vjp(const VjpArgs& a, S g) {
  Red R{a.at<ReduceAttrs>(), a.in[0].ndim()};
  g[0] = mul(R.b(a.ct[0]), extreme_weights(a.in[0], a.out[0], R));
}
void extreme_jvp(const JvpArgs& a, S t) {
  Red R{a.at<ReduceAttrs>(), a.in[0].ndim()};
  Tensor p = mul(a.tan[0], extreme_weights(a.in[0], a.out[0], R));
  t[0] = a.in[0].ndim() == 0 ? p : sum(p, R.r.axes, R.r.keepdims);
}

// cumsum: y_i = sum_{j<=i} x_j, so g_x_j = sum_{i>=j} g_i: a reversed cumulative sum.
void cumsum_vjp(const VjpArgs& a, S g) {
  int64_t axis = a.at<AxisAttrs>().axis;
  if (a.in_meta[0].shape.empty()) {
    g[0] = a.ct[0];
    return;
  }
  g[0] = flip(cumsum(flip(a.ct[0], {axis}), axis), {axis});
}
void cumsum_jvp(const JvpArgs& a, S t) {
  t[0] = a.in[0].ndim() == 0 ? a.tan[0] : cumsum(a.tan[0], a.at<AxisAttrs>().axis);
}

}  // namespace

void register_reduce_rules(RuleTable& t) {
  for (OpId op : {OpId::Any, OpId::All, OpId::ArgMax, OpId::ArgMin}) set_nondiff(t, op);
  set_rule(t, OpId::Sum, sum_vjp, sum_jvp, kSaveNone, kSaveNone);
  set_rule(t, OpId::Prod, prod_vjp, prod_jvp, 1, kSaveNone);
  set_rule(t, OpId::Max, extreme_vjp, extreme_jvp, 1, 1);
  set_rule(t, OpId::Min, extreme_vjp, extreme_jvp, 1, 1);
  set_rule(t, OpId::Cumsum, cumsum_vjp, cumsum_jvp, kSaveNone, kSaveNone);
}

}  // namespace tessera::autodiff
