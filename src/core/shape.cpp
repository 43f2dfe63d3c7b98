#include "tessera/shape.h"

#include <algorithm>

#include "tessera/error.h"

namespace tessera {

std::string shape_str(std::span<const int64_t> shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) {
    if (i) s += ",";
    s += std::to_string(shape[i]);
  }
  return s + "]";
}

std::ostream& operator<<(std::ostream& os, const Shape& s) { return os << shape_str(s); }

int64_t shape_numel(std::span<const int64_t> shape, const char* op) {
  int64_t n = 1;
  bool overflow = false;
  for (int64_t d : shape) {
    if (d < 0) raise<ValueError>(op, "negative dimension in shape " + shape_str(shape));
    if (__builtin_mul_overflow(n, d, &n)) overflow = true;
  }
  // A zero dimension makes the product 0 even if an intermediate product overflowed.
  if (overflow && std::find(shape.begin(), shape.end(), 0) == shape.end())
    raise<OutOfMemoryError>(op, "element count of shape " + shape_str(shape) + " overflows int64");
  return overflow ? 0 : n;
}

Strides contiguous_strides(std::span<const int64_t> shape) {
  Strides s(shape.size());
  int64_t acc = 1;
  for (size_t i = shape.size(); i-- > 0;) {
    s[i] = acc;
    acc *= std::max<int64_t>(shape[i], 1);
  }
  return s;
}

int64_t normalize_axis(const char* op, int64_t axis, int64_t ndim) {
  int64_t lim = std::max<int64_t>(ndim, 1);  // a 0-d tensor accepts axis 0 / -1 like NumPy's scalars
  if (axis < -lim || axis >= lim)
    raise<IndexError>(op, "axis " + std::to_string(axis) + " is out of range for a tensor of rank " + std::to_string(ndim));
  return axis < 0 ? axis + lim : axis;
}

Axes normalize_axes(const char* op, std::span<const int64_t> axes, int64_t ndim, bool all_if_empty) {
  Axes out;
  if (axes.empty() && all_if_empty) {
    for (int64_t i = 0; i < ndim; ++i) out.push_back(i);
    return out;
  }
  for (int64_t a : axes) {
    if (a < -ndim || a >= ndim || ndim == 0)
      raise<IndexError>(op, "axis " + std::to_string(a) + " is out of range for a tensor of rank " + std::to_string(ndim));
    int64_t n = a < 0 ? a + ndim : a;
    if (std::find(out.begin(), out.end(), n) != out.end()) raise<ValueError>(op, "axis " + std::to_string(a) + " repeated");
    out.push_back(n);
  }
  std::sort(out.begin(), out.end());
  return out;
}

Shape broadcast_shapes(const char* op, std::span<const int64_t> a, std::span<const int64_t> b) {
  size_t n = std::max(a.size(), b.size());
  Shape out(n);
  for (size_t i = 0; i < n; ++i) {
    int64_t da = i < n - a.size() ? 1 : a[i - (n - a.size())];
    int64_t db = i < n - b.size() ? 1 : b[i - (n - b.size())];
    if (da != db && da != 1 && db != 1)
      raise<ShapeError>(op, "cannot broadcast " + shape_str(a) + " with " + shape_str(b));
    out[i] = da == 1 ? db : da;
  }
  return out;
}

}  // namespace tessera
