// Infer rules: reductions (sum, prod, max, min, any, all, argmax, argmin), cumsum, sort, topk.
#include <string>

#include "infer.h"

namespace tessera::ops {

namespace {

std::string axis_msg(int64_t axis, const Tensor& x) {
  return "axis " + std::to_string(axis) + " is out of range for a tensor of shape " + shape_str(x.shape());
}

/// Validates ReduceAttrs against x (axes normalized, sorted, unique, non-empty unless x is 0-d)
/// and returns the output shape.
Shape reduce_shape(const char* op, const Tensor& x, const Attrs& attrs) {
  const auto& a = std::get<ReduceAttrs>(attrs);
  const int64_t nd = x.ndim();
  if (a.axes.empty() && nd > 0)
    raise<ValueError>(op, "axes must be non-empty for a tensor of shape " + shape_str(x.shape()) + " (use all axes)");
  for (size_t i = 0; i < a.axes.size(); ++i) {
    if (a.axes[i] < 0 || a.axes[i] >= nd) raise<IndexError>(op, axis_msg(a.axes[i], x));
    if (i > 0 && a.axes[i] <= a.axes[i - 1])
      raise<ValueError>(op, "axes must be sorted and unique, got " + shape_str(a.axes));
  }
  Shape out;
  size_t k = 0;
  for (int64_t d = 0; d < nd; ++d) {
    if (k < a.axes.size() && a.axes[k] == d) {
      ++k;
      if (a.keepdims) out.push_back(1);
    } else {
      out.push_back(x.shape()[static_cast<size_t>(d)]);
    }
  }
  return out;
}

/// max/min/argmax/argmin have no identity: reducing an empty axis is an error.
void check_nonempty_axes(const char* op, const Tensor& x, std::span<const int64_t> axes) {
  for (int64_t ax : axes)
    if (x.shape()[static_cast<size_t>(ax)] == 0)
      raise<ValueError>(op, "cannot reduce over axis " + std::to_string(ax) + " of size 0 (shape " +
                                shape_str(x.shape()) + "): the reduction has no identity");
}

/// sum/prod/cumsum: integral and bool inputs accumulate in int64.
DType sum_dtype(DType t) { return is_floating(t) ? t : DType::Int64; }

int64_t checked_axis(const char* op, const Tensor& x, int64_t axis) {
  if (axis < 0 || axis >= x.ndim()) raise<IndexError>(op, axis_msg(axis, x));
  return axis;
}

}  // namespace

void infer_Sum(std::span<const Tensor> in, const Attrs& a, MetaList& out) {
  out.m[0] = {reduce_shape("sum", in[0], a), sum_dtype(in[0].dtype())};
}
void infer_Prod(std::span<const Tensor> in, const Attrs& a, MetaList& out) {
  out.m[0] = {reduce_shape("prod", in[0], a), sum_dtype(in[0].dtype())};
}
void infer_Max(std::span<const Tensor> in, const Attrs& a, MetaList& out) {
  out.m[0] = {reduce_shape("max", in[0], a), in[0].dtype()};
  check_nonempty_axes("max", in[0], std::get<ReduceAttrs>(a).axes);
}
void infer_Min(std::span<const Tensor> in, const Attrs& a, MetaList& out) {
  out.m[0] = {reduce_shape("min", in[0], a), in[0].dtype()};
  check_nonempty_axes("min", in[0], std::get<ReduceAttrs>(a).axes);
}
void infer_Any(std::span<const Tensor> in, const Attrs& a, MetaList& out) {
  out.m[0] = {reduce_shape("any", in[0], a), DType::Bool};
}
void infer_All(std::span<const Tensor> in, const Attrs& a, MetaList& out) {
  out.m[0] = {reduce_shape("all", in[0], a), DType::Bool};
}

static void infer_arg(const char* op, std::span<const Tensor> in, const Attrs& attrs, MetaList& out) {
  const auto& a = std::get<ArgReduceAttrs>(attrs);
  const Tensor& x = in[0];
  int64_t axis = checked_axis(op, x, a.axis);
  int64_t ax[1] = {axis};
  check_nonempty_axes(op, x, ax);
  Shape s = x.shape();
  if (a.keepdims)
    s[static_cast<size_t>(axis)] = 1;
  else
    s.erase(s.begin() + axis);
  out.m[0] = {s, DType::Int64};
}
void infer_ArgMax(std::span<const Tensor> in, const Attrs& a, MetaList& out) { infer_arg("argmax", in, a, out); }
void infer_ArgMin(std::span<const Tensor> in, const Attrs& a, MetaList& out) { infer_arg("argmin", in, a, out); }

void infer_Cumsum(std::span<const Tensor> in, const Attrs& a, MetaList& out) {
  checked_axis("cumsum", in[0], std::get<AxisAttrs>(a).axis);
  out.m[0] = {in[0].shape(), sum_dtype(in[0].dtype())};
}

void infer_Sort(std::span<const Tensor> in, const Attrs& a, MetaList& out) {
  checked_axis("sort", in[0], std::get<SortAttrs>(a).axis);
  out.m[0] = {in[0].shape(), in[0].dtype()};
  out.m[1] = {in[0].shape(), DType::Int64};
  out.n = 2;
}

void infer_TopK(std::span<const Tensor> in, const Attrs& attrs, MetaList& out) {
  const auto& a = std::get<TopKAttrs>(attrs);
  const Tensor& x = in[0];
  int64_t axis = checked_axis("topk", x, a.axis);
  int64_t n = x.shape()[static_cast<size_t>(axis)];
  if (a.k < 0 || a.k > n)
    raise<ValueError>("topk", "k = " + std::to_string(a.k) + " is out of range [0, " + std::to_string(n) +
                                  "] for axis " + std::to_string(axis) + " of shape " + shape_str(x.shape()));
  Shape s = x.shape();
  s[static_cast<size_t>(axis)] = a.k;
  out.m[0] = {s, x.dtype()};
  out.m[1] = {s, DType::Int64};
  out.n = 2;
}

}  // namespace tessera::ops
