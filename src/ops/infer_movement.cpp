// Infer rules of the data-movement (concat, pad, flip) and indexing (gather, scatter, scatter_add,
// index_select) primitives. Index values are data, so their range is checked by the kernels; the
// rules here check ranks, sizes, dtypes and attributes.
#include <string>

#include "infer.h"
#include "tessera/ops.h"

namespace tessera::ops {

namespace {

void check_axis(const char* op, int64_t axis, int64_t ndim, const Shape& shape) {
  // A 0-d tensor behaves as a one-element vector for the index ops (like PyTorch).
  int64_t lim = ndim == 0 ? 1 : ndim;
  if (axis < 0 || axis >= lim)
    raise<IndexError>(op, "axis " + std::to_string(axis) + " is out of range for shape " + shape_str(shape));
}

void check_index_dtype(const char* op, DType t) {
  check_dtype(op, t, t == DType::Int32 || t == DType::Int64, "an int32 or int64 index tensor");
}

}  // namespace

void infer_Concat(std::span<const Tensor> in, const Attrs& a, MetaList& out) {
  if (in.empty()) raise<ValueError>("concat", "needs at least one input tensor");
  const int64_t axis = std::get<AxisAttrs>(a).axis;
  const Tensor& x0 = in[0];
  const int64_t nd = x0.ndim();
  if (nd == 0) raise<ShapeError>("concat", "cannot concatenate zero-dimensional tensors (input 0 has shape [])");
  if (axis < 0 || axis >= nd)
    raise<IndexError>("concat", "axis " + std::to_string(axis) + " is out of range for shape " + shape_str(x0.shape()));
  Shape s = x0.shape();
  int64_t total = 0;
  for (size_t k = 0; k < in.size(); ++k) {
    const Tensor& t = in[k];
    if (t.dtype() != x0.dtype())
      raise<DTypeError>("concat", "inputs must have one dtype, got " + dtype_str(x0.dtype()) + " (input 0) and " +
                                      dtype_str(t.dtype()) + " (input " + std::to_string(k) + ")");
    bool ok = t.ndim() == nd;
    for (int64_t d = 0; ok && d < nd; ++d)
      ok = d == axis || t.shape()[static_cast<size_t>(d)] == s[static_cast<size_t>(d)];
    if (!ok)
      raise<ShapeError>("concat", "inputs must have the same rank and match outside axis " + std::to_string(axis) +
                                      ", got " + shape_str(x0.shape()) + " (input 0) and " + shape_str(t.shape()) +
                                      " (input " + std::to_string(k) + ")");
    if (__builtin_add_overflow(total, t.shape()[static_cast<size_t>(axis)], &total))
      raise<OutOfMemoryError>("concat", "result size overflows int64");
  }
  s[static_cast<size_t>(axis)] = total;
  shape_numel(s, "concat");
  out.m[0] = {s, x0.dtype()};
}

void infer_Pad(std::span<const Tensor> in, const Attrs& a, MetaList& out) {
  const auto& p = std::get<PadAttrs>(a);
  const Shape& xs = in[0].shape();
  const int64_t nd = in[0].ndim();
  if (static_cast<int64_t>(p.pads.size()) != 2 * nd)
    raise<ValueError>("pad", "expects " + std::to_string(2 * nd) + " pad values for shape " + shape_str(xs) + ", got " +
                                 std::to_string(p.pads.size()));
  if (p.mode > static_cast<uint8_t>(PadMode::Edge)) raise<ValueError>("pad", "unknown mode " + std::to_string(p.mode));
  auto mode = static_cast<PadMode>(p.mode);
  Shape s = xs;
  for (int64_t d = 0; d < nd; ++d) {
    int64_t lo = p.pads[static_cast<size_t>(2 * d)], hi = p.pads[static_cast<size_t>(2 * d + 1)];
    int64_t n = xs[static_cast<size_t>(d)];
    if (lo < 0 || hi < 0)
      raise<ValueError>("pad", "negative pad (" + std::to_string(lo) + ", " + std::to_string(hi) + ") on axis " +
                                   std::to_string(d) + " of " + shape_str(xs) + " is not supported (use slice)");
    if (mode == PadMode::Reflect && (lo >= n || hi >= n) && (lo > 0 || hi > 0))
      raise<ValueError>("pad", "reflect padding (" + std::to_string(lo) + ", " + std::to_string(hi) + ") on axis " +
                                   std::to_string(d) + " must be smaller than its size in " + shape_str(xs));
    if (mode == PadMode::Edge && n == 0 && (lo > 0 || hi > 0))
      raise<ValueError>("pad", "edge padding of empty axis " + std::to_string(d) + " of " + shape_str(xs));
    if (__builtin_add_overflow(n, lo, &n) || __builtin_add_overflow(n, hi, &n))
      raise<OutOfMemoryError>("pad", "result size overflows int64");
    s[static_cast<size_t>(d)] = n;
  }
  shape_numel(s, "pad");
  out.m[0] = {s, in[0].dtype()};
}

void infer_Flip(std::span<const Tensor> in, const Attrs& a, MetaList& out) {
  const Axes& axes = std::get<AxesAttrs>(a).axes;
  const int64_t nd = in[0].ndim();
  SmallVector<int64_t, 6> seen(static_cast<size_t>(nd), 0);
  for (int64_t ax : axes) {
    if (ax < 0 || ax >= nd)
      raise<IndexError>("flip",
                        "axis " + std::to_string(ax) + " is out of range for shape " + shape_str(in[0].shape()));
    if (seen[static_cast<size_t>(ax)]++) raise<ValueError>("flip", "axis " + std::to_string(ax) + " repeated");
  }
  out.m[0] = {in[0].shape(), in[0].dtype()};
}

void infer_Gather(std::span<const Tensor> in, const Attrs& a, MetaList& out) {
  const Tensor &x = in[0], &index = in[1];
  const int64_t axis = std::get<AxisAttrs>(a).axis;
  check_axis("gather", axis, x.ndim(), x.shape());
  check_index_dtype("gather", index.dtype());
  bool ok = index.ndim() == x.ndim();
  for (int64_t d = 0; ok && d < x.ndim(); ++d)
    ok = d == axis || index.shape()[static_cast<size_t>(d)] <= x.shape()[static_cast<size_t>(d)];
  if (!ok)
    raise<ShapeError>("gather", "index of shape " + shape_str(index.shape()) + " must have the rank of x " +
                                    shape_str(x.shape()) + " and no larger size outside axis " + std::to_string(axis));
  out.m[0] = {index.shape(), x.dtype()};
}

static void infer_scatter(const char* op, std::span<const Tensor> in, const Attrs& a, MetaList& out) {
  const Tensor &x = in[0], &index = in[1], &src = in[2];
  const int64_t axis = std::get<AxisAttrs>(a).axis;
  check_axis(op, axis, x.ndim(), x.shape());
  check_index_dtype(op, index.dtype());
  if (src.dtype() != x.dtype())
    raise<DTypeError>(op,
                      "src must have the dtype of x, got " + dtype_str(src.dtype()) + " and " + dtype_str(x.dtype()));
  bool ok = index.ndim() == x.ndim() && src.ndim() == x.ndim();
  for (int64_t d = 0; ok && d < x.ndim(); ++d) {
    int64_t i = index.shape()[static_cast<size_t>(d)];
    ok = i <= src.shape()[static_cast<size_t>(d)] && (d == axis || i <= x.shape()[static_cast<size_t>(d)]);
  }
  if (!ok)
    raise<ShapeError>(op, "index of shape " + shape_str(index.shape()) + " must have the rank of x " +
                              shape_str(x.shape()) + " and src " + shape_str(src.shape()) +
                              ", be no larger than src, and no larger than x outside axis " + std::to_string(axis));
  out.m[0] = {x.shape(), x.dtype()};
}

void infer_Scatter(std::span<const Tensor> in, const Attrs& a, MetaList& out) { infer_scatter("scatter", in, a, out); }
void infer_ScatterAdd(std::span<const Tensor> in, const Attrs& a, MetaList& out) {
  infer_scatter("scatter_add", in, a, out);
}

void infer_IndexSelect(std::span<const Tensor> in, const Attrs& a, MetaList& out) {
  const Tensor &x = in[0], &index = in[1];
  const int64_t axis = std::get<AxisAttrs>(a).axis;
  check_axis("index_select", axis, x.ndim(), x.shape());
  check_index_dtype("index_select", index.dtype());
  if (index.ndim() > 1) raise<ShapeError>("index_select", "index must be 1-d, got shape " + shape_str(index.shape()));
  Shape s = x.shape();
  if (x.ndim() == 0) {
    if (index.ndim() == 1) s.push_back(index.numel());  // a 0-d x acts as [1]; the result follows the index
  } else {
    s[static_cast<size_t>(axis)] = index.numel();
  }
  out.m[0] = {s, x.dtype()};
}

}  // namespace tessera::ops
