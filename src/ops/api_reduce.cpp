// Public functions: reductions (sum, mean, prod, max, min, argmax, argmin, var, std, logsumexp, any, all),
// cumsum, sort, argsort, topk. mean/var/std/logsumexp are composites of the primitives.
#include <algorithm>
#include <cmath>
#include <limits>
#include <string>

#include "api_util.h"
#include "tessera/autodiff.h"

namespace tessera {

using namespace ops;

namespace {

/// Normalized, sorted axes ("all axes" when empty). A 0-d tensor accepts axis 0 and -1 (like PyTorch)
/// and reduces over nothing.
Axes reduce_axes(const char* op, const Tensor& x, IntList axes) {
  if (x.ndim() == 0) {
    for (size_t i = 0; i < axes.size(); ++i) {
      if (axes[i] != 0 && axes[i] != -1)
        raise<IndexError>(op, "axis " + std::to_string(axes[i]) + " is out of range for a 0-d tensor");
      for (size_t j = 0; j < i; ++j)
        if (axes[j] == axes[i] || axes[j] + axes[i] == -1)
          raise<ValueError>(op, "axis " + std::to_string(axes[i]) + " repeated");
    }
    return {};
  }
  return normalize_axes(op, axes, x.ndim(), true);
}

/// Normalized single axis; a 0-d tensor accepts 0 and -1.
int64_t single_axis(const char* op, const Tensor& x, int64_t axis) {
  if (x.ndim() == 0) {
    if (axis != 0 && axis != -1)
      raise<IndexError>(op, "axis " + std::to_string(axis) + " is out of range for a 0-d tensor");
    return 0;
  }
  return normalize_axis(op, axis, x.ndim());
}

/// Number of elements reduced into each output element.
int64_t reduced_count(const Tensor& x, const Axes& axes) {
  int64_t n = 1;
  for (int64_t a : axes) n *= x.shape()[static_cast<size_t>(a)];
  return n;
}

Shape reduced_shape(const Tensor& x, const Axes& axes, bool keepdims) {
  Shape s;
  for (int64_t d = 0; d < x.ndim(); ++d) {
    bool red = std::find(axes.begin(), axes.end(), d) != axes.end();
    if (!red)
      s.push_back(x.shape()[static_cast<size_t>(d)]);
    else if (keepdims)
      s.push_back(1);
  }
  return s;
}

Tensor reduce(OpId op, const Tensor& x, IntList axes, bool keepdims) {
  check_defined(op_name(op), x);
  return dispatch1(op, {x}, ReduceAttrs{reduce_axes(op_name(op), x, axes), keepdims});
}

/// The dtype a "float" composite computes in: float16/bfloat16 go through float32 (their sums and
/// squares overflow or lose precision otherwise); integral/bool inputs become float32.
DType compute_dtype(DType t) { return t == DType::Float64 ? DType::Float64 : DType::Float32; }

Tensor arg_reduce(OpId op, const Tensor& x, std::optional<int64_t> axis, bool keepdims) {
  const char* name = op_name(op);
  check_defined(name, x);
  if (x.ndim() == 0) {
    single_axis(name, x, axis.value_or(0));
    return zeros({}, DType::Int64, x.device());
  }
  if (!axis) {
    if (x.numel() == 0) raise<ValueError>(name, "cannot reduce an empty tensor of shape " + shape_str(x.shape()));
    Tensor r = dispatch1(op, {reshape(x, {x.numel()})}, ArgReduceAttrs{0, false});
    return keepdims ? reshape(r, Shape(static_cast<size_t>(x.ndim()), 1)) : r;
  }
  return dispatch1(op, {x}, ArgReduceAttrs{normalize_axis(name, *axis, x.ndim()), keepdims});
}

}  // namespace

Tensor sum(const Tensor& x, IntList axes, bool keepdims) { return reduce(OpId::Sum, x, axes, keepdims); }
Tensor prod(const Tensor& x, IntList axes, bool keepdims) { return reduce(OpId::Prod, x, axes, keepdims); }
Tensor max(const Tensor& x, IntList axes, bool keepdims) { return reduce(OpId::Max, x, axes, keepdims); }
Tensor min(const Tensor& x, IntList axes, bool keepdims) { return reduce(OpId::Min, x, axes, keepdims); }
Tensor any(const Tensor& x, IntList axes, bool keepdims) { return reduce(OpId::Any, x, axes, keepdims); }
Tensor all(const Tensor& x, IntList axes, bool keepdims) { return reduce(OpId::All, x, axes, keepdims); }

Tensor mean(const Tensor& x, IntList axes, bool keepdims) {
  check_defined("mean", x);
  Axes ax = reduce_axes("mean", x, axes);
  double n = static_cast<double>(reduced_count(x, ax));
  if (!is_floating(x.dtype())) {
    // The int64 sum is exact; divide in float64 and round once to float32. n = 0 gives 0/0 = NaN.
    Tensor s = cast(sum(x, ax, keepdims), DType::Float64);
    return cast(div(s, n), DType::Float32);
  }
  DType t = compute_dtype(x.dtype());
  Tensor s = sum(as_dtype(x, t), ax, keepdims);
  return as_dtype(div(s, n), x.dtype());
}

Tensor var(const Tensor& x, IntList axes, int64_t correction, bool keepdims) {
  check_defined("var", x);
  Axes ax = reduce_axes("var", x, axes);
  DType out_t = to_floating(x.dtype());
  Tensor xf = as_dtype(x, compute_dtype(x.dtype()));
  // Two passes: the mean, then the sum of squared deviations (no catastrophic cancellation).
  int64_t n = reduced_count(x, ax);
  Tensor m = mean(xf, ax, true);
  Tensor d = sub(xf, m);
  Tensor s = sum(mul(d, d), ax, keepdims);
  // N - correction <= 0 divides by zero: inf, or NaN for 0/0 (like PyTorch).
  double denom = static_cast<double>(std::max<int64_t>(n - correction, 0));
  return as_dtype(div(s, denom), out_t);
}

Tensor std(const Tensor& x, IntList axes, int64_t correction, bool keepdims) {
  check_defined("std", x);
  Tensor v = var(x, axes, correction, keepdims);
  return sqrt(v);
}

namespace {
Tensor logsumexp_impl(const Tensor& x, const Axes& ax, bool keepdims) {
  DType out_t = to_floating(x.dtype());
  Shape out_shape = reduced_shape(x, ax, keepdims);
  double inf = std::numeric_limits<double>::infinity();
  // log(sum over nothing) = log(0) = -inf.
  if (reduced_count(x, ax) == 0) return full(out_shape, -inf, out_t, x.device());
  Tensor xf = as_dtype(x, compute_dtype(x.dtype()));
  Tensor m = max(xf, ax, true);
  // A row of -inf (or one holding +inf) would give inf - inf = NaN: shift by 0 instead.
  // NaN maxima stay NaN and propagate.
  Tensor shift = where(eq(abs(m), inf), 0, m);
  Tensor s = sum(exp(sub(xf, shift)), ax, keepdims);
  Tensor r = add(log(s), keepdims ? shift : reshape(shift, out_shape));
  return as_dtype(r, out_t);
}
}  // namespace

// Under a transform, logsumexp carries its own reverse rule: d logsumexp(x) / dx = softmax(x) =
// exp(x - y), one fused expression instead of differentiating the max shift, where and log.
Tensor logsumexp(const Tensor& x, IntList axes, bool keepdims) {
  check_defined("logsumexp", x);
  Axes ax = reduce_axes("logsumexp", x, axes);
  if (!detail::current_interpreter()) return logsumexp_impl(x, ax, keepdims);
  CustomVjp fn;
  fn.name = "logsumexp";
  fn.primal = [ax, keepdims](const TensorList& in) { return TensorList{logsumexp_impl(in[0], ax, keepdims)}; };
  fn.forward = [ax, keepdims](const TensorList& in) {
    Tensor y = logsumexp_impl(in[0], ax, keepdims);
    return std::make_pair(TensorList{y}, TensorList{in[0], y});
  };
  fn.backward = [ax](const TensorList& res, const TensorList& ct) {
    const Tensor& x0 = res[0];
    if (!is_floating(x0.dtype())) return TensorList{Tensor()};
    // y and its cotangent with the reduced axes kept (size 1), so they broadcast against x.
    Shape kept = reduced_shape(x0, ax, /*keepdims=*/true);
    Tensor xf = as_dtype(x0, res[1].dtype());
    Tensor g = mul(reshape(ct[0], kept), exp(sub(xf, reshape(res[1], kept))));
    return TensorList{as_dtype(g, x0.dtype())};
  };
  return custom_vjp_call(fn, {x})[0];
}

Tensor argmax(const Tensor& x, std::optional<int64_t> axis, bool keepdims) {
  return arg_reduce(OpId::ArgMax, x, axis, keepdims);
}
Tensor argmin(const Tensor& x, std::optional<int64_t> axis, bool keepdims) {
  return arg_reduce(OpId::ArgMin, x, axis, keepdims);
}

Tensor cumsum(const Tensor& x, int64_t axis) {
  check_defined("cumsum", x);
  int64_t ax = single_axis("cumsum", x, axis);
  if (x.ndim() == 0) return reshape(dispatch1(OpId::Cumsum, {reshape(x, {1})}, AxisAttrs{0}), {});
  return dispatch1(OpId::Cumsum, {x}, AxisAttrs{ax});
}

std::tuple<Tensor, Tensor> sort(const Tensor& x, int64_t axis, bool descending) {
  check_defined("sort", x);
  int64_t ax = single_axis("sort", x, axis);
  Tensor in = x.ndim() == 0 ? reshape(x, {1}) : x;
  Tensor out[2];
  detail::dispatch(OpId::Sort, std::span<const Tensor>(&in, 1), SortAttrs{ax, descending}, out);
  if (x.ndim() == 0) return {reshape(out[0], {}), reshape(out[1], {})};
  return {out[0], out[1]};
}

Tensor argsort(const Tensor& x, int64_t axis, bool descending) { return std::get<1>(sort(x, axis, descending)); }

std::tuple<Tensor, Tensor> topk(const Tensor& x, int64_t k, int64_t axis, bool largest) {
  check_defined("topk", x);
  int64_t ax = single_axis("topk", x, axis);
  // A 0-d tensor behaves as one element: k = 1 gives 0-d results, k = 0 empty 1-d ones.
  Tensor in = x.ndim() == 0 ? reshape(x, {1}) : x;
  Tensor out[2];
  detail::dispatch(OpId::TopK, std::span<const Tensor>(&in, 1), TopKAttrs{k, ax, largest}, out);
  if (x.ndim() == 0 && k == 1) return {reshape(out[0], {}), reshape(out[1], {})};
  return {out[0], out[1]};
}

}  // namespace tessera
