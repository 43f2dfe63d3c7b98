// Public indexing functions: gather, take_along_axis, scatter, scatter_add, index_select,
// embedding, one_hot. Primitives: gather, scatter, scatter_add, index_select (their kernels check
// every index value); the rest are composites.
#include <string>

#include "api_util.h"

namespace tessera {

using namespace ops;

namespace {

void check_index(const char* op, const Tensor& index) {
  check_defined(op, index);
  check_dtype(op, index.dtype(), index.dtype() == DType::Int32 || index.dtype() == DType::Int64,
              "an int32 or int64 index tensor");
}

Tensor scatter_impl(OpId op, const Tensor& x, int64_t axis, const Tensor& index, const Tensor& src) {
  const char* name = op_name(op);
  check_defined(name, x);
  check_index(name, index);
  check_defined(name, src);
  int64_t ax = normalize_axis(name, axis, x.ndim());
  Tensor s = as_dtype(src, x.dtype());
  // A 0-d src is a value written at every index position.
  if (s.ndim() == 0 && index.ndim() > 0) s = expand(s, index.shape());
  return dispatch1(op, {x, index, s}, AxisAttrs{ax});
}

}  // namespace

Tensor gather(const Tensor& x, int64_t axis, const Tensor& index) {
  check_defined("gather", x);
  check_index("gather", index);
  int64_t ax = normalize_axis("gather", axis, x.ndim());
  return dispatch1(OpId::Gather, {x, index}, AxisAttrs{ax});
}

Tensor take_along_axis(const Tensor& x, const Tensor& index, int64_t axis) {
  check_defined("take_along_axis", x);
  check_index("take_along_axis", index);
  if (index.ndim() != x.ndim())
    raise<ShapeError>("take_along_axis", "index of shape " + shape_str(index.shape()) + " must have the rank of x " +
                                             shape_str(x.shape()));
  int64_t ax = normalize_axis("take_along_axis", axis, x.ndim());
  if (x.ndim() == 0) return gather(x, ax, index);
  // Broadcast x and index against each other on every axis but `axis`.
  Shape xs = x.shape(), is = index.shape();
  for (size_t d = 0; d < xs.size(); ++d) {
    if (static_cast<int64_t>(d) == ax) continue;
    if (xs[d] != is[d] && xs[d] != 1 && is[d] != 1)
      raise<ShapeError>("take_along_axis", "cannot broadcast index of shape " + shape_str(index.shape()) +
                                               " against x of shape " + shape_str(x.shape()) + " outside axis " +
                                               std::to_string(ax));
    int64_t b = xs[d] == 1 ? is[d] : xs[d];
    xs[d] = is[d] = b;
  }
  return gather(expand(x, xs), ax, expand(index, is));
}

Tensor scatter(const Tensor& x, int64_t axis, const Tensor& index, const Tensor& src) {
  return scatter_impl(OpId::Scatter, x, axis, index, src);
}

Tensor scatter_add(const Tensor& x, int64_t axis, const Tensor& index, const Tensor& src) {
  return scatter_impl(OpId::ScatterAdd, x, axis, index, src);
}

Tensor index_select(const Tensor& x, int64_t axis, const Tensor& index) {
  check_defined("index_select", x);
  check_index("index_select", index);
  int64_t ax = normalize_axis("index_select", axis, x.ndim());
  return dispatch1(OpId::IndexSelect, {x, index}, AxisAttrs{ax});
}

Tensor embedding(const Tensor& weight, const Tensor& indices) {
  check_defined("embedding", weight);
  check_index("embedding", indices);
  if (weight.ndim() != 2)
    raise<ShapeError>("embedding", "weight must be 2-d [num, dim], got shape " + shape_str(weight.shape()));
  Tensor rows = index_select(weight, 0, reshape(indices, {-1}));
  Shape out = indices.shape();
  out.push_back(weight.shape()[1]);
  return reshape(rows, out);
}

Tensor one_hot(const Tensor& indices, int64_t num_classes, DType dtype) {
  check_index("one_hot", indices);
  if (num_classes < 0)
    raise<ValueError>("one_hot", "num_classes must be non-negative, got " + std::to_string(num_classes));
  if (indices.has_storage()) {
    for (int64_t v : indices.to_vector<int64_t>())
      if (v < 0 || v >= num_classes)
        raise<IndexError>("one_hot", "class " + std::to_string(v) + " is out of range for " +
                                         std::to_string(num_classes) + " classes");
  }
  Tensor classes = arange(0, num_classes, 1, indices.dtype(), indices.device());
  return as_dtype(eq(unsqueeze(indices, -1), classes), dtype);
}

}  // namespace tessera
