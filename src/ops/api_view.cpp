// Public view functions: reshape, permute, slice, expand, squeeze/unsqueeze, as_strided.
#include <algorithm>

#include "api_util.h"

namespace tessera {

using namespace ops;

Tensor reshape(const Tensor& x, IntList shape) {
  check_defined("reshape", x);
  Shape s(shape);
  int64_t infer_at = -1, known = 1;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == -1) {
      if (infer_at >= 0) raise<ShapeError>("reshape", "only one dimension can be -1 in " + shape_str(shape));
      infer_at = static_cast<int64_t>(i);
    } else if (s[i] < 0) {
      raise<ShapeError>("reshape", "invalid dimension in " + shape_str(shape));
    } else {
      known *= s[i];
    }
  }
  if (infer_at >= 0) {
    if (known == 0 || x.numel() % known != 0)
      raise<ShapeError>("reshape", "cannot reshape " + shape_str(x.shape()) + " to " + shape_str(shape));
    s[static_cast<size_t>(infer_at)] = x.numel() / known;
  }
  if (s == x.shape()) return x;
  return dispatch1(OpId::Reshape, {x}, ShapeAttrs{s});
}

Tensor flatten(const Tensor& x, int64_t start_axis, int64_t end_axis) {
  check_defined("flatten", x);
  if (x.ndim() == 0) return reshape(x, {1});
  int64_t s = normalize_axis("flatten", start_axis, x.ndim()), e = normalize_axis("flatten", end_axis, x.ndim());
  if (s > e) raise<ValueError>("flatten", "start axis comes after end axis");
  Shape out;
  for (int64_t i = 0; i < s; ++i) out.push_back(x.shape()[static_cast<size_t>(i)]);
  int64_t m = 1;
  for (int64_t i = s; i <= e; ++i) m *= x.shape()[static_cast<size_t>(i)];
  out.push_back(m);
  for (int64_t i = e + 1; i < x.ndim(); ++i) out.push_back(x.shape()[static_cast<size_t>(i)]);
  return reshape(x, out);
}

Tensor permute(const Tensor& x, IntList perm) {
  check_defined("permute", x);
  Axes p;
  for (int64_t a : perm) p.push_back(a < 0 ? a + x.ndim() : a);
  bool identity = true;
  for (size_t i = 0; i < p.size(); ++i) identity = identity && p[i] == static_cast<int64_t>(i);
  if (identity && static_cast<int64_t>(p.size()) == x.ndim()) return x;
  return dispatch1(OpId::Permute, {x}, PermuteAttrs{p});
}

Tensor transpose(const Tensor& x, int64_t a, int64_t b) {
  check_defined("transpose", x);
  if (x.ndim() < 2 && (a == -2 || a == -1) && (b == -1 || b == -2)) return x;  // 0-d/1-d: nothing to swap
  int64_t ia = normalize_axis("transpose", a, x.ndim()), ib = normalize_axis("transpose", b, x.ndim());
  if (x.ndim() == 0) return x;  // axes 0 / -1 of a 0-d tensor: nothing to swap
  Axes p;
  for (int64_t i = 0; i < x.ndim(); ++i) p.push_back(i);
  std::swap(p[static_cast<size_t>(ia)], p[static_cast<size_t>(ib)]);
  return permute(x, p);
}

Tensor squeeze(const Tensor& x, IntList axes) {
  check_defined("squeeze", x);
  Axes ax = normalize_axes("squeeze", axes, x.ndim(), false);
  Shape out;
  for (int64_t i = 0; i < x.ndim(); ++i) {
    int64_t d = x.shape()[static_cast<size_t>(i)];
    bool listed = std::find(ax.begin(), ax.end(), i) != ax.end();
    if (listed && d != 1)
      raise<ShapeError>("squeeze", "axis " + std::to_string(i) + " of " + shape_str(x.shape()) + " has size " + std::to_string(d) + ", not 1");
    if ((ax.empty() && d == 1) || listed) continue;
    out.push_back(d);
  }
  return reshape(x, out);
}

Tensor unsqueeze(const Tensor& x, int64_t axis) {
  check_defined("unsqueeze", x);
  int64_t a = normalize_axis("unsqueeze", axis, x.ndim() + 1);
  Shape out = x.shape();
  out.insert(out.begin() + a, 1);
  return reshape(x, out);
}

Tensor expand(const Tensor& x, IntList shape) {
  check_defined("expand", x);
  Shape s(shape);
  // -1 keeps the existing size (PyTorch convention).
  for (size_t i = 0; i < s.size(); ++i) {
    size_t off = s.size() - static_cast<size_t>(x.ndim());
    if (s[i] == -1 && i >= off) s[i] = x.shape()[i - off];
  }
  if (s == x.shape()) return x;
  return dispatch1(OpId::Expand, {x}, ShapeAttrs{s});
}
Tensor broadcast_to(const Tensor& x, IntList shape) { return expand(x, shape); }

Tensor slice(const Tensor& x, int64_t axis, std::optional<int64_t> start, std::optional<int64_t> stop, int64_t step) {
  check_defined("slice", x);
  if (x.ndim() == 0) raise<IndexError>("slice", "cannot slice a 0-d tensor");
  int64_t ax = normalize_axis("slice", axis, x.ndim());
  if (step <= 0) raise<ValueError>("slice", "step must be positive, got " + std::to_string(step));
  int64_t n = x.shape()[static_cast<size_t>(ax)];
  auto clampi = [n](int64_t v) { return std::clamp<int64_t>(v < 0 ? v + n : v, 0, n); };
  int64_t b = start ? clampi(*start) : 0, e = stop ? clampi(*stop) : n;
  if (e < b) e = b;
  if (b == 0 && e == n && step == 1) return x;
  return dispatch1(OpId::Slice, {x}, SliceAttrs{ax, b, e, step});
}

Tensor select(const Tensor& x, int64_t axis, int64_t index) {
  check_defined("select", x);
  if (x.ndim() == 0) raise<IndexError>("select", "cannot index a 0-d tensor");
  int64_t ax = normalize_axis("select", axis, x.ndim());
  int64_t n = x.shape()[static_cast<size_t>(ax)];
  if (index < -n || index >= n)
    raise<IndexError>("select", "index " + std::to_string(index) + " is out of range for axis " + std::to_string(ax) + " of " + shape_str(x.shape()));
  int64_t i = index < 0 ? index + n : index;
  Tensor s = dispatch1(OpId::Slice, {x}, SliceAttrs{ax, i, i + 1, 1});
  return squeeze(s, {ax});
}

Tensor as_strided(const Tensor& x, IntList shape, IntList strides, int64_t offset) {
  check_defined("as_strided", x);
  return dispatch1(OpId::AsStrided, {x}, AsStridedAttrs{Shape(shape), Strides(strides), offset});
}

Tensor contiguous(const Tensor& x) {
  check_defined("contiguous", x);
  if (x.is_contiguous()) return x;
  return dispatch1(OpId::Copy, {x});
}

}  // namespace tessera
