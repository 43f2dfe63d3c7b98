// Infer rules: softmax, log_softmax, layer_norm, rms_norm.
#include <algorithm>
#include <string>

#include "infer.h"

namespace tessera::ops {

namespace {

void infer_softmax_like(const char* op, std::span<const Tensor> in, const Attrs& a, MetaList& out) {
  const Tensor& x = in[0];
  check_dtype(op, x.dtype(), is_floating(x.dtype()), "a floating-point tensor");
  int64_t axis = std::get<AxisAttrs>(a).axis;
  // A 0-d tensor is one row of one element (axis 0, like NumPy scalars).
  if (axis < 0 || axis >= std::max<int64_t>(x.ndim(), 1))
    raise<IndexError>(
        op, "axis " + std::to_string(axis) + " is out of range for a tensor of rank " + std::to_string(x.ndim()));
  out.m[0] = {x.shape(), x.dtype()};
}

// Inputs: x, then weight (if has_weight), then bias (if has_bias), each shaped like the
// trailing normalized_ndim axes of x and of x's dtype.
void infer_norm(const char* op, std::span<const Tensor> in, const Attrs& a, MetaList& out, bool allow_bias) {
  const auto& na = std::get<NormAttrs>(a);
  if (na.has_bias && !allow_bias) raise<ValueError>(op, "takes no bias");
  size_t want = 1 + (na.has_weight ? 1 : 0) + (na.has_bias ? 1 : 0);
  if (in.size() != want)
    raise<ValueError>(op, "expects " + std::to_string(want) + " inputs, got " + std::to_string(in.size()));
  const Tensor& x = in[0];
  check_dtype(op, x.dtype(), is_floating(x.dtype()), "a floating-point tensor");
  if (na.normalized_ndim < 1 || na.normalized_ndim > x.ndim())
    raise<ShapeError>(op, "cannot normalize the last " + std::to_string(na.normalized_ndim) +
                              " axes of a tensor of shape " + shape_str(x.shape()));
  if (!(na.eps >= 0)) raise<ValueError>(op, "eps must be non-negative, got " + std::to_string(na.eps));
  std::span<const int64_t> trailing(x.shape().data() + (x.ndim() - na.normalized_ndim),
                                    static_cast<size_t>(na.normalized_ndim));
  auto check_param = [&](const Tensor& p, const char* what) {
    if (p.dtype() != x.dtype())
      raise<DTypeError>(op, std::string(what) + " must have the input's dtype " + dtype_str(x.dtype()) + ", got " +
                                dtype_str(p.dtype()));
    if (!std::equal(p.shape().begin(), p.shape().end(), trailing.begin(), trailing.end()))
      raise<ShapeError>(op, std::string(what) + " of shape " + shape_str(p.shape()) +
                                " does not match the normalized shape " + shape_str(trailing) + " of input " +
                                shape_str(x.shape()));
  };
  size_t i = 1;
  if (na.has_weight) check_param(in[i++], "weight");
  if (na.has_bias) check_param(in[i++], "bias");
  out.m[0] = {x.shape(), x.dtype()};
}

}  // namespace

void infer_Softmax(std::span<const Tensor> in, const Attrs& a, MetaList& out) {
  infer_softmax_like("softmax", in, a, out);
}
void infer_LogSoftmax(std::span<const Tensor> in, const Attrs& a, MetaList& out) {
  infer_softmax_like("log_softmax", in, a, out);
}
void infer_LayerNorm(std::span<const Tensor> in, const Attrs& a, MetaList& out) {
  infer_norm("layer_norm", in, a, out, true);
}
void infer_RmsNorm(std::span<const Tensor> in, const Attrs& a, MetaList& out) {
  infer_norm("rms_norm", in, a, out, false);
}

}  // namespace tessera::ops
