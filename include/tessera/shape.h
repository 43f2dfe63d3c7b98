// Shapes, strides and axis helpers shared by every op.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <vector>
#include <ostream>
#include <span>
#include <string>

#include "tessera/export.h"
#include "tessera/small_vector.h"

namespace tessera {

/// Dynamic-rank shape; inline storage for rank <= 6.
using Shape = SmallVector<int64_t, 6>;
/// Strides in elements (not bytes); may be 0 (broadcast) or negative (flip).
using Strides = SmallVector<int64_t, 6>;
/// A list of axes (may contain negative values counted from the end).
using Axes = SmallVector<int64_t, 6>;

/// A non-owning list of int64 values (shapes, axes, strides) that binds to braced lists,
/// std::vector, Shape and spans alike: reshape(x, {2, -1}), sum(x, {0, 1}).
class IntList {
 public:
  IntList() = default;
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Winit-list-lifetime"
  // The list outlives the call it is passed to, which is all an IntList is used for.
  IntList(std::initializer_list<int64_t> l) : p_(l.begin()), n_(l.size()) {}  // NOLINT: implicit by design
#pragma GCC diagnostic pop
  IntList(std::span<const int64_t> s) : p_(s.data()), n_(s.size()) {}         // NOLINT
  IntList(const std::vector<int64_t>& v) : p_(v.data()), n_(v.size()) {}      // NOLINT
  template <size_t N>
  IntList(const SmallVector<int64_t, N>& v) : p_(v.data()), n_(v.size()) {}   // NOLINT
  IntList(const int64_t* p, size_t n) : p_(p), n_(n) {}
  const int64_t* data() const { return p_; }
  size_t size() const { return n_; }
  bool empty() const { return n_ == 0; }
  const int64_t* begin() const { return p_; }
  const int64_t* end() const { return p_ + n_; }
  int64_t operator[](size_t i) const { return p_[i]; }
  operator std::span<const int64_t>() const { return {p_, n_}; }  // NOLINT

 private:
  const int64_t* p_ = nullptr;
  size_t n_ = 0;
};

/// "[2,3]"
TESSERA_API std::string shape_str(std::span<const int64_t> shape);
TESSERA_API std::ostream& operator<<(std::ostream& os, const Shape& s);

/// Number of elements; throws OutOfMemoryError (naming op) when it overflows int64,
/// ValueError when a dimension is negative.
TESSERA_API int64_t shape_numel(std::span<const int64_t> shape, const char* op = "shape");
/// Row-major strides of a contiguous tensor of this shape.
TESSERA_API Strides contiguous_strides(std::span<const int64_t> shape);
/// Maps axis in [-ndim, ndim) to [0, ndim); throws IndexError naming op otherwise.
TESSERA_API int64_t normalize_axis(const char* op, int64_t axis, int64_t ndim);
/// Normalizes a list of axes, rejecting duplicates. An empty list means "all axes"
/// when all_if_empty is true.
TESSERA_API Axes normalize_axes(const char* op, std::span<const int64_t> axes, int64_t ndim, bool all_if_empty);
/// NumPy broadcasting of two shapes; throws ShapeError naming op.
TESSERA_API Shape broadcast_shapes(const char* op, std::span<const int64_t> a, std::span<const int64_t> b);

}  // namespace tessera
