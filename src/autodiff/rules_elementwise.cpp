// Rules for elementwise unary and binary primitives, where, cast and copy.
// Notation: x = in[0], y = out[0], g = cotangent of y, t = tangent of x.
#include <cmath>
#include <numbers>

#include "rules.h"

namespace tessera::autodiff {

namespace {

using S = std::span<Tensor>;
constexpr uint32_t kIn0 = 1, kIn01 = 3, kOut0 = 1;

Tensor fzero(const Tensor& like) { return full({}, 0, like.dtype(), like.device()); }
Tensor fone(const Tensor& like) { return full({}, 1, like.dtype(), like.device()); }
// 1.0 where c holds, else 0.0, in dtype of like.
Tensor mask_of(const Tensor& c, const Tensor& like) { return cast(c, like.dtype()); }

// ---- unary: each rule is its derivative dy/dx as a tensor; vjp = g * dy/dx, jvp = t * dy/dx.
#define TS_UNARY_RULE(Name, deriv_expr)                                                            \
  Tensor Name##_deriv(const Tensor& x, const Tensor& y) {                                          \
    (void)x;                                                                                       \
    (void)y;                                                                                       \
    return deriv_expr;                                                                             \
  }                                                                                                \
  void Name##_vjp(const VjpArgs& a, S g) { g[0] = mul(a.ct[0], Name##_deriv(a.in[0], a.out[0])); } \
  void Name##_jvp(const JvpArgs& a, S t) { t[0] = mul(a.tan[0], Name##_deriv(a.in[0], a.out[0])); }

TS_UNARY_RULE(abs, sign(x))
TS_UNARY_RULE(exp, y)
TS_UNARY_RULE(expm1, add(y, 1.0))
TS_UNARY_RULE(log, (1.0 / x))
TS_UNARY_RULE(log1p, (1.0 / add(x, 1.0)))
// sqrt: dy/dx = 1 / (2 sqrt x) = 0.5 / y
TS_UNARY_RULE(sqrt, (0.5 / y))
// rsqrt: y = x^-1/2, dy/dx = -1/2 x^-3/2 = -1/2 y^3
TS_UNARY_RULE(rsqrt, mul(mul(mul(y, y), y), -0.5))
TS_UNARY_RULE(sin, cos(x))
TS_UNARY_RULE(cos, neg(sin(x)))
// tan' = 1 + tan^2
TS_UNARY_RULE(tan, add(mul(y, y), 1.0))
// tanh' = 1 - tanh^2
TS_UNARY_RULE(tanh, (1.0 - mul(y, y)))
// sigmoid' = s (1 - s)
TS_UNARY_RULE(sigmoid, mul(y, (1.0 - y)))
// erf' = 2/sqrt(pi) exp(-x^2)
TS_UNARY_RULE(erf, mul(exp(neg(mul(x, x))), 2.0 / std::sqrt(std::numbers::pi)))
// relu' = [x > 0] (0 at the kink); y > 0 exactly when x > 0
TS_UNARY_RULE(relu, mask_of(gt(y, 0.0), y))
// gelu(x) = x Phi(x): gelu' = Phi(x) + x phi(x), Phi(x) = (1 + erf(x/sqrt2))/2, phi = exp(-x^2/2)/sqrt(2 pi)
TS_UNARY_RULE(gelu, add(mul(add(erf(mul(x, std::numbers::sqrt2 / 2)), 1.0), 0.5),
                        mul(x, mul(exp(mul(mul(x, x), -0.5)), 1.0 / std::sqrt(2 * std::numbers::pi)))))
// gelu_tanh(x) = x (1 + tanh u) / 2, u = c (x + 0.044715 x^3), c = sqrt(2/pi):
// derivative = (1 + tanh u)/2 + x/2 (1 - tanh^2 u) c (1 + 3 * 0.044715 x^2)
Tensor gelu_tanh_inner(const Tensor& x) {
  const double c = std::sqrt(2.0 / std::numbers::pi);
  Tensor th = tanh(mul(add(x, mul(mul(mul(x, x), x), 0.044715)), c));
  Tensor du = mul(add(mul(mul(x, x), 3 * 0.044715), 1.0), c);
  return add(mul(add(th, 1.0), 0.5), mul(mul(mul(x, 0.5), (1.0 - mul(th, th))), du));
}
TS_UNARY_RULE(gelu_tanh, gelu_tanh_inner(x))
// silu(x) = x s(x): silu' = s (1 + x (1 - s))
Tensor silu_inner(const Tensor& x) {
  Tensor s = sigmoid(x);
  return mul(s, add(mul(x, (1.0 - s)), 1.0));
}
TS_UNARY_RULE(silu, silu_inner(x))
// softplus(x) = log(1 + e^x): softplus' = sigmoid(x)
TS_UNARY_RULE(softplus, sigmoid(x))
#undef TS_UNARY_RULE

void neg_vjp(const VjpArgs& a, S g) { g[0] = neg(a.ct[0]); }
void neg_jvp(const JvpArgs& a, S t) { t[0] = neg(a.tan[0]); }
// Identity-like: copy; cast between float dtypes (the engine casts the gradient back to the input dtype).
void id_vjp(const VjpArgs& a, S g) { g[0] = a.ct[0]; }
void copy_jvp(const JvpArgs& a, S t) { t[0] = a.tan[0]; }
void cast_jvp(const JvpArgs& a, S t) { t[0] = cast(a.tan[0], a.at<CastAttrs>().dtype); }

// ---- binary: a = in[0], b = in[1]; gradients come back broadcast and the engine sums them down.
// Forward mode: t_out = da * ta + db * tb with undefined tangents skipped.
Tensor lin(const Tensor& ta, const Tensor& da, const Tensor& tb, const Tensor& db) {
  Tensor r;
  if (ta.defined()) r = da.defined() ? mul(ta, da) : ta;
  if (tb.defined()) r = acc(r, db.defined() ? mul(tb, db) : tb);
  return r;
}

void add_vjp(const VjpArgs& a, S g) { g[0] = a.ct[0], g[1] = a.ct[0]; }
void add_jvp(const JvpArgs& a, S t) { t[0] = acc(a.tan[0], a.tan[1]); }
void sub_vjp(const VjpArgs& a, S g) {
  g[0] = a.ct[0];
  if (a.need[1]) g[1] = neg(a.ct[0]);
}
void sub_jvp(const JvpArgs& a, S t) { t[0] = acc(a.tan[0], a.tan[1].defined() ? neg(a.tan[1]) : Tensor()); }
void mul_vjp(const VjpArgs& a, S g) {
  if (a.need[0]) g[0] = mul(a.ct[0], a.in[1]);
  if (a.need[1]) g[1] = mul(a.ct[0], a.in[0]);
}
void mul_jvp(const JvpArgs& a, S t) { t[0] = lin(a.tan[0], a.in[1], a.tan[1], a.in[0]); }
// y = a / b: dy/da = 1/b, dy/db = -y/b
void div_vjp(const VjpArgs& a, S g) {
  Tensor gb = div(a.ct[0], a.in[1]);
  if (a.need[0]) g[0] = gb;
  if (a.need[1]) g[1] = neg(mul(gb, a.out[0]));
}
void div_jvp(const JvpArgs& a, S t) {
  Tensor num = lin(a.tan[0], Tensor(), a.tan[1], a.tan[1].defined() ? neg(a.out[0]) : Tensor());
  t[0] = div(num, a.in[1]);
}
// y = a^b: dy/da = b a^(b-1); dy/db = y log a (taken as 0 where a <= 0, where log is undefined)
Tensor pow_da(const Tensor& x, const Tensor& e) { return mul(e, pow(x, sub(e, 1.0))); }
Tensor pow_db(const Tensor& x, const Tensor& y) { return mul(y, log(where(gt(x, 0.0), x, fone(x)))); }
void pow_vjp(const VjpArgs& a, S g) {
  if (a.need[0]) g[0] = mul(a.ct[0], pow_da(a.in[0], a.in[1]));
  if (a.need[1]) g[1] = mul(a.ct[0], pow_db(a.in[0], a.out[0]));
}
void pow_jvp(const JvpArgs& a, S t) {
  t[0] = lin(a.tan[0], a.tan[0].defined() ? pow_da(a.in[0], a.in[1]) : Tensor(), a.tan[1],
             a.tan[1].defined() ? pow_db(a.in[0], a.out[0]) : Tensor());
}
// maximum/minimum: the winner takes the gradient, ties split it equally.
Tensor share_a(OpId op, const Tensor& x, const Tensor& y) {
  Tensor win = op == OpId::Maximum ? gt(x, y) : lt(x, y);
  return add(mask_of(win, x), mul(mask_of(eq(x, y), x), 0.5));
}
void minmax_vjp(const VjpArgs& a, S g) {
  Tensor w = share_a(a.op, a.in[0], a.in[1]);
  if (a.need[0]) g[0] = mul(a.ct[0], w);
  if (a.need[1]) g[1] = mul(a.ct[0], (1.0 - w));
}
void minmax_jvp(const JvpArgs& a, S t) {
  Tensor w = share_a(a.op, a.in[0], a.in[1]);
  t[0] = lin(a.tan[0], w, a.tan[1], a.tan[1].defined() ? (1.0 - w) : Tensor());
}
// y = atan2(a, b): dy/da = b / (a^2 + b^2), dy/db = -a / (a^2 + b^2)
void atan2_vjp(const VjpArgs& a, S g) {
  Tensor d = div(a.ct[0], add(mul(a.in[0], a.in[0]), mul(a.in[1], a.in[1])));
  if (a.need[0]) g[0] = mul(d, a.in[1]);
  if (a.need[1]) g[1] = neg(mul(d, a.in[0]));
}
void atan2_jvp(const JvpArgs& a, S t) {
  Tensor inv = (1.0 / add(mul(a.in[0], a.in[0]), mul(a.in[1], a.in[1])));
  t[0] = lin(a.tan[0], mul(a.in[1], inv), a.tan[1], a.tan[1].defined() ? neg(mul(a.in[0], inv)) : Tensor());
}
// y = a - b floor(a / b): dy/da = 1, dy/db = -floor(a / b)
void remainder_vjp(const VjpArgs& a, S g) {
  if (a.need[0]) g[0] = a.ct[0];
  if (a.need[1]) g[1] = neg(mul(a.ct[0], floor(div(a.in[0], a.in[1]))));
}
void remainder_jvp(const JvpArgs& a, S t) {
  t[0] = lin(a.tan[0], Tensor(), a.tan[1], a.tan[1].defined() ? neg(floor(div(a.in[0], a.in[1]))) : Tensor());
}
// where(c, a, b): the gradient goes to the branch that was taken.
void where_vjp(const VjpArgs& a, S g) {
  const Tensor& c = a.in[0];
  if (a.need[1]) g[1] = where(c, a.ct[0], fzero(a.ct[0]));
  if (a.need[2]) g[2] = where(c, fzero(a.ct[0]), a.ct[0]);
}
void where_jvp(const JvpArgs& a, S t) {
  const Tensor& y = a.out[0];
  Tensor ta = a.tan[1].defined() ? a.tan[1] : fzero(y);
  Tensor tb = a.tan[2].defined() ? a.tan[2] : fzero(y);
  t[0] = where(a.in[0], ta, tb);
}

}  // namespace

void register_elementwise_rules(RuleTable& t) {
  for (OpId op : {OpId::Sign, OpId::Floor, OpId::Ceil, OpId::Round, OpId::LogicalNot, OpId::Eq, OpId::Ne, OpId::Lt,
                  OpId::Le, OpId::Gt, OpId::Ge, OpId::LogicalAnd, OpId::LogicalOr, OpId::LogicalXor})
    set_nondiff(t, op);
  set_rule(t, OpId::Neg, neg_vjp, neg_jvp, kSaveNone, kSaveNone);
  set_rule(t, OpId::Abs, abs_vjp, abs_jvp, kIn0, kSaveNone);
  set_rule(t, OpId::Exp, exp_vjp, exp_jvp, kSaveNone, kOut0);
  set_rule(t, OpId::Expm1, expm1_vjp, expm1_jvp, kSaveNone, kOut0);
  set_rule(t, OpId::Log, log_vjp, log_jvp, kIn0, kSaveNone);
  set_rule(t, OpId::Log1p, log1p_vjp, log1p_jvp, kIn0, kSaveNone);
  set_rule(t, OpId::Sqrt, sqrt_vjp, sqrt_jvp, kSaveNone, kOut0);
  set_rule(t, OpId::Rsqrt, rsqrt_vjp, rsqrt_jvp, kSaveNone, kOut0);
  set_rule(t, OpId::Sin, sin_vjp, sin_jvp, kIn0, kSaveNone);
  set_rule(t, OpId::Cos, cos_vjp, cos_jvp, kIn0, kSaveNone);
  set_rule(t, OpId::Tan, tan_vjp, tan_jvp, kSaveNone, kOut0);
  set_rule(t, OpId::Tanh, tanh_vjp, tanh_jvp, kSaveNone, kOut0);
  set_rule(t, OpId::Sigmoid, sigmoid_vjp, sigmoid_jvp, kSaveNone, kOut0);
  set_rule(t, OpId::Erf, erf_vjp, erf_jvp, kIn0, kSaveNone);
  set_rule(t, OpId::Relu, relu_vjp, relu_jvp, kSaveNone, kOut0);
  set_rule(t, OpId::Gelu, gelu_vjp, gelu_jvp, kIn0, kSaveNone);
  set_rule(t, OpId::GeluTanh, gelu_tanh_vjp, gelu_tanh_jvp, kIn0, kSaveNone);
  set_rule(t, OpId::Silu, silu_vjp, silu_jvp, kIn0, kSaveNone);
  set_rule(t, OpId::Softplus, softplus_vjp, softplus_jvp, kIn0, kSaveNone);
  set_rule(t, OpId::Cast, id_vjp, cast_jvp, kSaveNone, kSaveNone);
  set_rule(t, OpId::Copy, id_vjp, copy_jvp, kSaveNone, kSaveNone);

  set_rule(t, OpId::Add, add_vjp, add_jvp, kSaveNone, kSaveNone);
  set_rule(t, OpId::Sub, sub_vjp, sub_jvp, kSaveNone, kSaveNone);
  set_rule(t, OpId::Mul, mul_vjp, mul_jvp, kIn01, kSaveNone);
  set_rule(t, OpId::Div, div_vjp, div_jvp, kIn01, kOut0);
  set_rule(t, OpId::Pow, pow_vjp, pow_jvp, kIn01, kOut0);
  set_rule(t, OpId::Maximum, minmax_vjp, minmax_jvp, kIn01, kSaveNone);
  set_rule(t, OpId::Minimum, minmax_vjp, minmax_jvp, kIn01, kSaveNone);
  set_rule(t, OpId::Atan2, atan2_vjp, atan2_jvp, kIn01, kSaveNone);
  set_rule(t, OpId::Remainder, remainder_vjp, remainder_jvp, kIn01, kSaveNone);
  set_rule(t, OpId::Where, where_vjp, where_jvp, kIn0, kSaveNone);
}

}  // namespace tessera::autodiff
