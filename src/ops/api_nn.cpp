// Public functions: softmax, log_softmax, layer_norm, rms_norm (fused primitives) and
// batch_norm (a composite of elementwise ops).
#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "api_util.h"

namespace tessera {

using namespace ops;

namespace {

Tensor softmax_like(OpId op, const Tensor& x, int64_t axis) {
  const char* name = op_name(op);
  check_defined(name, x);
  int64_t ax = normalize_axis(name, axis, x.ndim());
  return dispatch1(op, {as_dtype(x, to_floating(x.dtype()))}, AxisAttrs{ax});
}

void check_eps(const char* op, double eps) {
  if (!(eps >= 0) || !std::isfinite(eps))
    raise<ValueError>(op, "eps must be finite and non-negative, got " + std::to_string(eps));
}

// Validates normalized_shape and the optional affine parameters against x, then dispatches.
Tensor norm_like(OpId op, const Tensor& x, IntList normalized_shape, const Tensor& weight, const Tensor& bias,
                 double eps) {
  const char* name = op_name(op);
  check_defined(name, x);
  check_eps(name, eps);
  int64_t k = static_cast<int64_t>(normalized_shape.size());
  if (k == 0) raise<ValueError>(name, "normalized_shape must name at least one axis");
  bool match = k <= x.ndim();
  for (int64_t i = 0; match && i < k; ++i)
    match = x.shape()[static_cast<size_t>(x.ndim() - k + i)] == normalized_shape[static_cast<size_t>(i)];
  if (!match)
    raise<ShapeError>(name, "normalized_shape " + shape_str(normalized_shape) +
                                " does not match the trailing axes of input " + shape_str(x.shape()));
  DType t = to_floating(x.dtype());
  std::vector<Tensor> ins{as_dtype(x, t)};
  auto add_param = [&](const Tensor& p, const char* what) {
    if (!p.defined()) return false;
    if (!std::equal(p.shape().begin(), p.shape().end(), normalized_shape.begin(), normalized_shape.end()))
      raise<ShapeError>(name, std::string(what) + " of shape " + shape_str(p.shape()) +
                                  " does not match normalized_shape " + shape_str(normalized_shape));
    ins.push_back(as_dtype(p, t));
    return true;
  };
  NormAttrs a;
  a.normalized_ndim = k;
  a.eps = eps;
  a.has_weight = add_param(weight, "weight");
  a.has_bias = add_param(bias, "bias");
  return dispatch1(op, std::span<const Tensor>(ins), a);
}

}  // namespace

Tensor softmax(const Tensor& x, int64_t axis) { return softmax_like(OpId::Softmax, x, axis); }
Tensor log_softmax(const Tensor& x, int64_t axis) { return softmax_like(OpId::LogSoftmax, x, axis); }

Tensor layer_norm(const Tensor& x, IntList normalized_shape, const Tensor& weight, const Tensor& bias, double eps) {
  return norm_like(OpId::LayerNorm, x, normalized_shape, weight, bias, eps);
}

Tensor rms_norm(const Tensor& x, IntList normalized_shape, const Tensor& weight, double eps) {
  return norm_like(OpId::RmsNorm, x, normalized_shape, weight, Tensor(), eps);
}

// Inference batch norm as y = x * scale + shift per channel, with scale = weight * rsqrt(var + eps)
// and shift = bias - mean * scale computed once on the [C] statistics (PyTorch's CPU form: two
// passes over x instead of four). float16/bfloat16 inputs compute in float32.
Tensor batch_norm(const Tensor& x, const Tensor& running_mean, const Tensor& running_var, const Tensor& weight,
                  const Tensor& bias, double eps) {
  check_defined("batch_norm", x);
  check_defined("batch_norm", running_mean);
  check_defined("batch_norm", running_var);
  check_eps("batch_norm", eps);
  if (x.ndim() < 2)
    raise<ShapeError>("batch_norm", "expects an input of shape [N, C, ...], got " + shape_str(x.shape()));
  int64_t c = x.shape()[1];
  auto check_stat = [&](const Tensor& p, const char* what) {
    if (p.defined() && (p.ndim() != 1 || p.shape()[0] != c))
      raise<ShapeError>("batch_norm", std::string(what) + " of shape " + shape_str(p.shape()) + " does not match the " +
                                          std::to_string(c) + " channels of input " + shape_str(x.shape()));
  };
  check_stat(running_mean, "running_mean");
  check_stat(running_var, "running_var");
  check_stat(weight, "weight");
  check_stat(bias, "bias");
  DType t = to_floating(x.dtype());
  DType ct = t == DType::Float64 ? DType::Float64 : DType::Float32;
  Tensor scale = rsqrt(add(as_dtype(running_var, ct), eps));
  if (weight.defined()) scale = mul(scale, as_dtype(weight, ct));
  Tensor shift = neg(mul(as_dtype(running_mean, ct), scale));
  if (bias.defined()) shift = add(shift, as_dtype(bias, ct));
  Shape bshape(static_cast<size_t>(x.ndim() - 1), 1);
  bshape[0] = c;
  scale = scale.reshape(bshape);
  shift = shift.reshape(bshape);
  Tensor y = add(mul(as_dtype(x, ct), scale), shift);
  return as_dtype(y, t);
}

}  // namespace tessera
