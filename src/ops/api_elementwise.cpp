// Public functions: creation, random, elementwise unary/binary, where, clamp, operators.
#include <cmath>
#include <limits>

#include "../core/host_effects.h"
#include "api_util.h"
#include "tessera/backend.h"

namespace tessera {

using namespace ops;

namespace ops {
Tensor scalar_like(Scalar s, DType t, Device d) { return full({}, s, t, d); }
void check_defined(const char* op, const Tensor& t) {
  if (!t.defined()) raise<ValueError>(op, "input is an undefined tensor");
}
}  // namespace ops

// ---------------------------------------------------------------- creation
Tensor from_blob(const void* data, IntList shape, DType dtype, Device device) {
  Tensor t = detail::alloc_tensor(shape, dtype, device);
  size_t n = static_cast<size_t>(t.numel()) * dtype_size(dtype);
  if (n) backend_for(device).copy_from_host(t.impl().data(), data, n, device.index);
  return t;
}

Tensor full(IntList shape, Scalar value, std::optional<DType> dtype, Device device) {
  FullAttrs a{Shape(shape), value, dtype.value_or(value.default_dtype()), device};
  return dispatch1(OpId::Full, {}, a);
}
Tensor scalar_tensor(Scalar value, std::optional<DType> dtype, Device device) { return full({}, value, dtype, device); }
Tensor zeros(IntList shape, DType dtype, Device device) { return full(shape, 0, dtype, device); }
Tensor ones(IntList shape, DType dtype, Device device) { return full(shape, 1, dtype, device); }
Tensor zeros_like(const Tensor& t) { return zeros(t.shape(), t.dtype(), t.device()); }
Tensor ones_like(const Tensor& t) { return ones(t.shape(), t.dtype(), t.device()); }
Tensor full_like(const Tensor& t, Scalar value) { return full(t.shape(), value, t.dtype(), t.device()); }
Tensor empty(IntList shape, DType dtype, Device device) { return detail::alloc_tensor(shape, dtype, device); }

Tensor arange(Scalar start, Scalar stop, Scalar step, std::optional<DType> dtype, Device device) {
  bool all_int = !start.is_floating() && !stop.is_floating() && !step.is_floating();
  DType t = dtype.value_or(all_int ? DType::Int64 : DType::Float32);
  double s = step.to_double();
  if (s == 0 || !std::isfinite(s)) raise<ValueError>("arange", "step must be finite and nonzero");
  double len = std::ceil((stop.to_double() - start.to_double()) / s);
  if (!std::isfinite(len)) raise<ValueError>("arange", "bounds must be finite");
  if (len > 9.0e18) raise<OutOfMemoryError>("arange", "length overflows int64");
  int64_t n = len > 0 ? static_cast<int64_t>(len) : 0;
  return dispatch1(OpId::Arange, {}, ArangeAttrs{start, step, n, t, device});
}
Tensor arange(Scalar stop, std::optional<DType> dtype, Device device) { return arange(0, stop, 1, dtype, device); }

Tensor linspace(double start, double stop, int64_t num, DType dtype, Device device) {
  if (num < 0) raise<ValueError>("linspace", "num must be non-negative, got " + std::to_string(num));
  check_dtype("linspace", dtype, is_floating(dtype), "a floating-point dtype");
  if (num == 1) return full({1}, start, dtype, device);
  double step = num > 1 ? (stop - start) / static_cast<double>(num - 1) : 0.0;
  // Computed in float64 and cast, so the end point is exact.
  Tensor i = arange(0, num, 1, DType::Float64, device);
  Tensor v = add(mul(i, step), start);
  if (num > 1) v = where(eq(i, static_cast<double>(num - 1)), scalar_like(stop, DType::Float64, device), v);
  return as_dtype(v, dtype);
}

Tensor eye(int64_t n, std::optional<int64_t> m, DType dtype, Device device) {
  int64_t cols = m.value_or(n);
  if (n < 0 || cols < 0) raise<ValueError>("eye", "sizes must be non-negative");
  Tensor r = arange(0, n, 1, DType::Int64, device).reshape({n, 1});
  Tensor c = arange(0, cols, 1, DType::Int64, device).reshape({1, cols});
  return cast(eq(r, c), dtype);
}

// ------------------------------------------------------------------ random
Tensor uniform(IntList shape, double low, double high, Generator& gen, DType dtype, Device device) {
  if (!(low <= high)) raise<ValueError>("uniform", "low must not exceed high");
  RandomAttrs a{Shape(shape), dtype, gen.seed(), 0, low, high, device};
  shape_numel(shape, "uniform");
  check_dtype("uniform", dtype, is_floating(dtype), "a floating-point dtype");
  // float64 values take two 32-bit words each (53 random bits), the other dtypes one.
  const uint64_t words_per_value = dtype == DType::Float64 ? 2 : 1;
  const uint64_t words = words_per_value * static_cast<uint64_t>(shape_numel(shape, "uniform"));
  a.counter = gen.advance(words);
  if (auto* fx = detail::current_host_effects()) fx->random_draw(gen, a.key, a.counter, words);
  return dispatch1(OpId::RandomUniform, {}, a);
}
Tensor rand(IntList shape, Generator& gen, DType dtype, double low, double high, Device device) {
  return uniform(shape, low, high, gen, dtype, device);
}
Tensor normal(IntList shape, double mean, double std, Generator& gen, DType dtype, Device device) {
  if (!(std >= 0)) raise<ValueError>("normal", "std must be non-negative");
  check_dtype("normal", dtype, is_floating(dtype), "a floating-point dtype");
  RandomAttrs a{Shape(shape), dtype, gen.seed(), 0, mean, std, device};
  const uint64_t words = 2 * static_cast<uint64_t>(shape_numel(shape, "normal"));  // two words per value
  a.counter = gen.advance(words);
  if (auto* fx = detail::current_host_effects()) fx->random_draw(gen, a.key, a.counter, words);
  return dispatch1(OpId::RandomNormal, {}, a);
}
Tensor randn(IntList shape, Generator& gen, DType dtype, double mean, double std, Device device) {
  return normal(shape, mean, std, gen, dtype, device);
}
Tensor bernoulli(IntList shape, double p, Generator& gen, Device device) {
  if (!(p >= 0 && p <= 1)) raise<ValueError>("bernoulli", "p must be in [0, 1], got " + std::to_string(p));
  return lt(uniform(shape, 0.0, 1.0, gen, DType::Float32, device), scalar_like(p, DType::Float32, device));
}
Tensor dropout(const Tensor& x, double p, Generator& gen, bool train) {
  check_defined("dropout", x);
  if (!(p >= 0 && p < 1)) raise<ValueError>("dropout", "p must be in [0, 1), got " + std::to_string(p));
  if (!train || p == 0) return x;
  check_dtype("dropout", x.dtype(), is_floating(x.dtype()), "a floating-point tensor");
  Tensor keep = bernoulli(x.shape(), 1.0 - p, gen, x.device());
  return where(keep, mul(x, 1.0 / (1.0 - p)), scalar_like(0, x.dtype(), x.device()));
}

// ------------------------------------------------------- elementwise unary
namespace {
Tensor unary(OpId op, const Tensor& x) {
  check_defined(op_name(op), x);
  return dispatch1(op, {x});
}
Tensor float_unary(OpId op, const Tensor& x) {
  check_defined(op_name(op), x);
  return dispatch1(op, {as_dtype(x, to_floating(x.dtype()))});
}
}  // namespace

Tensor neg(const Tensor& x) { return unary(OpId::Neg, x); }
Tensor abs(const Tensor& x) { return x.defined() && x.dtype() == DType::Bool ? x : unary(OpId::Abs, x); }
Tensor sign(const Tensor& x) { return x.defined() && x.dtype() == DType::Bool ? x : unary(OpId::Sign, x); }
Tensor exp(const Tensor& x) { return float_unary(OpId::Exp, x); }
Tensor expm1(const Tensor& x) { return float_unary(OpId::Expm1, x); }
Tensor log(const Tensor& x) { return float_unary(OpId::Log, x); }
Tensor log1p(const Tensor& x) { return float_unary(OpId::Log1p, x); }
Tensor sqrt(const Tensor& x) { return float_unary(OpId::Sqrt, x); }
Tensor rsqrt(const Tensor& x) { return float_unary(OpId::Rsqrt, x); }
Tensor sin(const Tensor& x) { return float_unary(OpId::Sin, x); }
Tensor cos(const Tensor& x) { return float_unary(OpId::Cos, x); }
Tensor tan(const Tensor& x) { return float_unary(OpId::Tan, x); }
Tensor tanh(const Tensor& x) { return float_unary(OpId::Tanh, x); }
Tensor sigmoid(const Tensor& x) { return float_unary(OpId::Sigmoid, x); }
Tensor erf(const Tensor& x) { return float_unary(OpId::Erf, x); }
Tensor relu(const Tensor& x) { return x.defined() && x.dtype() == DType::Bool ? x : unary(OpId::Relu, x); }
Tensor gelu(const Tensor& x, bool approximate) { return float_unary(approximate ? OpId::GeluTanh : OpId::Gelu, x); }
Tensor silu(const Tensor& x) { return float_unary(OpId::Silu, x); }
Tensor softplus(const Tensor& x) { return float_unary(OpId::Softplus, x); }
Tensor floor(const Tensor& x) { return x.defined() && !is_floating(x.dtype()) ? x : unary(OpId::Floor, x); }
Tensor ceil(const Tensor& x) { return x.defined() && !is_floating(x.dtype()) ? x : unary(OpId::Ceil, x); }
Tensor round(const Tensor& x) { return x.defined() && !is_floating(x.dtype()) ? x : unary(OpId::Round, x); }
Tensor logical_not(const Tensor& x) { return unary(OpId::LogicalNot, x); }
Tensor cast(const Tensor& x, DType dtype) {
  check_defined("cast", x);
  return dispatch1(OpId::Cast, {x}, CastAttrs{dtype});
}

// ------------------------------------------------------ elementwise binary
namespace {
Tensor binary(OpId op, const Tensor& a, const Tensor& b, bool float_only = false) {
  check_defined(op_name(op), a);
  check_defined(op_name(op), b);
  DType t = promote_types(a.dtype(), b.dtype());
  if (float_only) t = to_floating(t);
  return dispatch1(op, {as_dtype(a, t), as_dtype(b, t)});
}
Tensor binary_scalar(OpId op, const Tensor& a, Scalar b, bool float_only = false) {
  check_defined(op_name(op), a);
  DType t = promote_with_scalar(a.dtype(), b);
  if (float_only) t = to_floating(t);
  return dispatch1(op, {as_dtype(a, t), scalar_like(b, t, a.device())});
}
}  // namespace

Tensor add(const Tensor& a, const Tensor& b) { return binary(OpId::Add, a, b); }
Tensor sub(const Tensor& a, const Tensor& b) { return binary(OpId::Sub, a, b); }
Tensor mul(const Tensor& a, const Tensor& b) { return binary(OpId::Mul, a, b); }
Tensor div(const Tensor& a, const Tensor& b) { return binary(OpId::Div, a, b, true); }
Tensor pow(const Tensor& a, const Tensor& b) { return binary(OpId::Pow, a, b); }
Tensor maximum(const Tensor& a, const Tensor& b) { return binary(OpId::Maximum, a, b); }
Tensor minimum(const Tensor& a, const Tensor& b) { return binary(OpId::Minimum, a, b); }
Tensor atan2(const Tensor& a, const Tensor& b) { return binary(OpId::Atan2, a, b, true); }
// Integer division by zero is refused by the kernel (ValueError), never silently 0.
Tensor remainder(const Tensor& a, const Tensor& b) { return binary(OpId::Remainder, a, b); }
Tensor eq(const Tensor& a, const Tensor& b) { return binary(OpId::Eq, a, b); }
Tensor ne(const Tensor& a, const Tensor& b) { return binary(OpId::Ne, a, b); }
Tensor lt(const Tensor& a, const Tensor& b) { return binary(OpId::Lt, a, b); }
Tensor le(const Tensor& a, const Tensor& b) { return binary(OpId::Le, a, b); }
Tensor gt(const Tensor& a, const Tensor& b) { return binary(OpId::Gt, a, b); }
Tensor ge(const Tensor& a, const Tensor& b) { return binary(OpId::Ge, a, b); }
Tensor logical_and(const Tensor& a, const Tensor& b) { return binary(OpId::LogicalAnd, a, b); }
Tensor logical_or(const Tensor& a, const Tensor& b) { return binary(OpId::LogicalOr, a, b); }
Tensor logical_xor(const Tensor& a, const Tensor& b) { return binary(OpId::LogicalXor, a, b); }

Tensor add(const Tensor& a, Scalar b) { return binary_scalar(OpId::Add, a, b); }
Tensor sub(const Tensor& a, Scalar b) { return binary_scalar(OpId::Sub, a, b); }
Tensor mul(const Tensor& a, Scalar b) { return binary_scalar(OpId::Mul, a, b); }
Tensor div(const Tensor& a, Scalar b) { return binary_scalar(OpId::Div, a, b, true); }
Tensor pow(const Tensor& a, Scalar b) { return binary_scalar(OpId::Pow, a, b); }
Tensor maximum(const Tensor& a, Scalar b) { return binary_scalar(OpId::Maximum, a, b); }
Tensor minimum(const Tensor& a, Scalar b) { return binary_scalar(OpId::Minimum, a, b); }
Tensor eq(const Tensor& a, Scalar b) { return binary_scalar(OpId::Eq, a, b); }
Tensor ne(const Tensor& a, Scalar b) { return binary_scalar(OpId::Ne, a, b); }
Tensor lt(const Tensor& a, Scalar b) { return binary_scalar(OpId::Lt, a, b); }
Tensor le(const Tensor& a, Scalar b) { return binary_scalar(OpId::Le, a, b); }
Tensor gt(const Tensor& a, Scalar b) { return binary_scalar(OpId::Gt, a, b); }
Tensor ge(const Tensor& a, Scalar b) { return binary_scalar(OpId::Ge, a, b); }
Tensor remainder(const Tensor& a, Scalar b) {
  check_defined("remainder", a);
  if (!b.is_floating() && !is_floating(a.dtype()) && b.to_int() == 0)
    raise<ValueError>("remainder", "integer division by zero");
  return binary_scalar(OpId::Remainder, a, b);
}

Tensor where(const Tensor& cond, const Tensor& a, const Tensor& b) {
  check_defined("where", cond);
  check_defined("where", a);
  check_defined("where", b);
  DType t = promote_types(a.dtype(), b.dtype());
  return dispatch1(OpId::Where, {as_dtype(cond, DType::Bool), as_dtype(a, t), as_dtype(b, t)});
}
Tensor where(const Tensor& cond, const Tensor& a, Scalar b) {
  check_defined("where", a);
  DType t = promote_with_scalar(a.dtype(), b);
  return where(cond, as_dtype(a, t), scalar_like(b, t, a.device()));
}
Tensor where(const Tensor& cond, Scalar a, const Tensor& b) {
  check_defined("where", b);
  DType t = promote_with_scalar(b.dtype(), a);
  return where(cond, scalar_like(a, t, b.device()), as_dtype(b, t));
}

Tensor clamp(const Tensor& x, std::optional<Scalar> lo, std::optional<Scalar> hi) {
  check_defined("clamp", x);
  if (!lo && !hi) raise<ValueError>("clamp", "at least one of lo and hi must be given");
  Tensor r = x;
  if (lo) r = maximum(r, *lo);
  if (hi) r = minimum(r, *hi);
  return r;
}
Tensor clamp(const Tensor& x, const Tensor& lo, const Tensor& hi) {
  check_defined("clamp", x);
  Tensor r = x;
  if (lo.defined()) r = maximum(r, lo);
  if (hi.defined()) r = minimum(r, hi);
  return r;
}

// ------------------------------------------------------------- operators
Tensor operator-(const Tensor& a) { return neg(a); }
Tensor operator+(const Tensor& a, const Tensor& b) { return add(a, b); }
Tensor operator-(const Tensor& a, const Tensor& b) { return sub(a, b); }
Tensor operator*(const Tensor& a, const Tensor& b) { return mul(a, b); }
Tensor operator/(const Tensor& a, const Tensor& b) { return div(a, b); }
Tensor operator+(const Tensor& a, Scalar b) { return add(a, b); }
Tensor operator-(const Tensor& a, Scalar b) { return sub(a, b); }
Tensor operator*(const Tensor& a, Scalar b) { return mul(a, b); }
Tensor operator/(const Tensor& a, Scalar b) { return div(a, b); }
Tensor operator+(Scalar a, const Tensor& b) { return add(b, a); }
Tensor operator-(Scalar a, const Tensor& b) {
  check_defined("sub", b);
  DType t = promote_with_scalar(b.dtype(), a);
  return sub(scalar_like(a, t, b.device()), b);
}
Tensor operator*(Scalar a, const Tensor& b) { return mul(b, a); }
Tensor operator/(Scalar a, const Tensor& b) {
  check_defined("div", b);
  DType t = promote_with_scalar(b.dtype(), a);
  return div(scalar_like(a, t, b.device()), b);
}
Tensor operator==(const Tensor& a, const Tensor& b) { return eq(a, b); }
Tensor operator!=(const Tensor& a, const Tensor& b) { return ne(a, b); }
Tensor operator<(const Tensor& a, const Tensor& b) { return lt(a, b); }
Tensor operator<=(const Tensor& a, const Tensor& b) { return le(a, b); }
Tensor operator>(const Tensor& a, const Tensor& b) { return gt(a, b); }
Tensor operator>=(const Tensor& a, const Tensor& b) { return ge(a, b); }

bool equal(const Tensor& a, const Tensor& b) {
  check_defined("equal", a);
  check_defined("equal", b);
  if (a.shape() != b.shape() || a.dtype() != b.dtype()) return false;
  return all(eq(a, b)).item<bool>();
}

bool allclose(const Tensor& a, const Tensor& b, double rtol, double atol, bool equal_nan) {
  check_defined("allclose", a);
  check_defined("allclose", b);
  if (a.shape() != b.shape()) return false;
  Tensor x = cast(a, DType::Float64), y = cast(b, DType::Float64);
  Tensor close = le(abs(sub(x, y)), add(mul(abs(y), rtol), atol));
  close = logical_or(close, eq(x, y));  // equal infinities
  if (equal_nan) close = logical_or(close, logical_and(ne(x, x), ne(y, y)));
  return all(close).item<bool>();
}

}  // namespace tessera
