// Infer rules of the view primitives.
#include <algorithm>
#include <string>

#include "infer.h"

namespace tessera::ops {

void infer_Reshape(std::span<const Tensor> in, const Attrs& a, MetaList& out) {
  const Shape& s = std::get<ShapeAttrs>(a).shape;
  if (shape_numel(s, "reshape") != in[0].numel())
    raise<ShapeError>("reshape", "cannot reshape " + shape_str(in[0].shape()) + " (" + std::to_string(in[0].numel()) +
                                     " elements) to " + shape_str(s));
  out.m[0] = {s, in[0].dtype()};
}

void infer_Permute(std::span<const Tensor> in, const Attrs& a, MetaList& out) {
  const Axes& p = std::get<PermuteAttrs>(a).perm;
  int64_t nd = in[0].ndim();
  SmallVector<int64_t, 6> seen(static_cast<size_t>(nd), 0);
  bool ok = static_cast<int64_t>(p.size()) == nd;
  for (size_t i = 0; ok && i < p.size(); ++i) {
    ok = p[i] >= 0 && p[i] < nd && !seen[static_cast<size_t>(p[i])];
    if (ok) seen[static_cast<size_t>(p[i])] = 1;
  }
  if (!ok) raise<ValueError>("permute", shape_str(p) + " is not a permutation of the axes of " + shape_str(in[0].shape()));
  Shape s(p.size());
  for (size_t i = 0; i < p.size(); ++i) s[i] = in[0].shape()[static_cast<size_t>(p[i])];
  out.m[0] = {s, in[0].dtype()};
}

void infer_Slice(std::span<const Tensor> in, const Attrs& a, MetaList& out) {
  const auto& s = std::get<SliceAttrs>(a);
  int64_t nd = in[0].ndim();
  if (s.axis < 0 || s.axis >= nd) raise<IndexError>("slice", "axis " + std::to_string(s.axis) + " out of range for shape " + shape_str(in[0].shape()));
  int64_t size = in[0].shape()[static_cast<size_t>(s.axis)];
  if (s.step <= 0) raise<ValueError>("slice", "step must be positive, got " + std::to_string(s.step));
  if (s.start < 0 || s.start > size || s.stop < 0 || s.stop > size)
    raise<IndexError>("slice", "range [" + std::to_string(s.start) + ", " + std::to_string(s.stop) + ") outside axis of size " + std::to_string(size));
  Shape sh = in[0].shape();
  sh[static_cast<size_t>(s.axis)] = s.stop > s.start ? (s.stop - s.start + s.step - 1) / s.step : 0;
  out.m[0] = {sh, in[0].dtype()};
}

void infer_Expand(std::span<const Tensor> in, const Attrs& a, MetaList& out) {
  const Shape& s = std::get<ShapeAttrs>(a).shape;
  const Shape& x = in[0].shape();
  bool ok = s.size() >= x.size();
  for (size_t i = 0; ok && i < x.size(); ++i) {
    int64_t xd = x[i], sd = s[s.size() - x.size() + i];
    ok = xd == sd || xd == 1;
  }
  for (int64_t d : s) ok = ok && d >= 0;
  if (!ok) raise<ShapeError>("expand", "cannot broadcast " + shape_str(x) + " to " + shape_str(s));
  out.m[0] = {s, in[0].dtype()};
}

void infer_AsStrided(std::span<const Tensor> in, const Attrs& a, MetaList& out) {
  const auto& s = std::get<AsStridedAttrs>(a);
  if (s.shape.size() != s.strides.size())
    raise<ShapeError>("as_strided", "shape " + shape_str(s.shape) + " and strides " + shape_str(s.strides) + " differ in rank");
  int64_t n = shape_numel(s.shape, "as_strided");
  if (n > 0 && in[0].has_storage()) {
    int64_t lo = s.offset, hi = s.offset;
    bool overflow = false;  // an extent past int64 is certainly outside the storage
    for (size_t i = 0; i < s.shape.size(); ++i) {
      int64_t ext = 0;
      overflow |= __builtin_mul_overflow(s.shape[i] - 1, s.strides[i], &ext);
      overflow |= __builtin_add_overflow(ext < 0 ? lo : hi, ext, ext < 0 ? &lo : &hi);
    }
    int64_t cap = static_cast<int64_t>(in[0].impl().storage->nbytes() / in[0].itemsize());
    if (overflow || lo < 0 || hi >= cap)
      raise<IndexError>("as_strided", "view of shape " + shape_str(s.shape) + " with strides " + shape_str(s.strides) +
                                          " and offset " + std::to_string(s.offset) + " reaches outside storage of " +
                                          std::to_string(cap) + " elements");
  }
  out.m[0] = {s.shape, in[0].dtype()};
}

}  // namespace tessera::ops
