// Public data-movement functions: concat, stack, split, chunk, pad, flip, roll, tile, repeat_interleave.
// Primitives: concat, pad, flip. The rest are composites of views and those.
#include <algorithm>
#include <string>

#include "api_util.h"

namespace tessera {

using namespace ops;

Tensor concat(const std::vector<Tensor>& xs, int64_t axis) {
  if (xs.empty()) raise<ValueError>("concat", "needs at least one input tensor");
  for (const Tensor& t : xs) check_defined("concat", t);
  DType t = xs[0].dtype();
  for (const Tensor& x : xs) t = promote_types(t, x.dtype());
  if (xs[0].ndim() == 0)
    raise<ShapeError>("concat", "cannot concatenate zero-dimensional tensors (input 0 has shape [])");
  int64_t ax = normalize_axis("concat", axis, xs[0].ndim());
  std::vector<Tensor> in;
  in.reserve(xs.size());
  for (const Tensor& x : xs) in.push_back(as_dtype(x, t));
  if (in.size() == 1) {
    detail::infer(OpId::Concat, in, AxisAttrs{ax});  // same validation as the general case
    return in[0];
  }
  return dispatch1(OpId::Concat, std::span<const Tensor>(in), AxisAttrs{ax});
}

Tensor stack(const std::vector<Tensor>& xs, int64_t axis) {
  if (xs.empty()) raise<ValueError>("stack", "needs at least one input tensor");
  for (const Tensor& t : xs) check_defined("stack", t);
  for (size_t k = 1; k < xs.size(); ++k)
    if (xs[k].shape() != xs[0].shape())
      raise<ShapeError>("stack", "all inputs must have the same shape, got " + shape_str(xs[0].shape()) +
                                     " (input 0) and " + shape_str(xs[k].shape()) + " (input " + std::to_string(k) +
                                     ")");
  int64_t ax = normalize_axis("stack", axis, xs[0].ndim() + 1);
  std::vector<Tensor> u;
  u.reserve(xs.size());
  for (const Tensor& x : xs) u.push_back(unsqueeze(x, ax));
  return concat(u, ax);
}

namespace {
int64_t split_axis(const char* op, const Tensor& x, int64_t axis) {
  check_defined(op, x);
  if (x.ndim() == 0) raise<ShapeError>(op, "cannot split a zero-dimensional tensor");
  return normalize_axis(op, axis, x.ndim());
}
}  // namespace

std::vector<Tensor> split(const Tensor& x, IntList sizes, int64_t axis) {
  int64_t ax = split_axis("split", x, axis);
  int64_t n = x.shape()[static_cast<size_t>(ax)], total = 0;
  for (int64_t s : sizes) {
    if (s < 0) raise<ValueError>("split", "negative size in " + shape_str(sizes));
    total += s;
  }
  if (total != n)
    raise<ValueError>("split", "sizes " + shape_str(sizes) + " must add up to " + std::to_string(n) +
                                   ", the size of axis " + std::to_string(ax) + " of " + shape_str(x.shape()));
  std::vector<Tensor> out;
  out.reserve(sizes.size());
  int64_t at = 0;
  for (int64_t s : sizes) {
    out.push_back(slice(x, ax, at, at + s));
    at += s;
  }
  return out;
}

std::vector<Tensor> split(const Tensor& x, int64_t size, int64_t axis) {
  int64_t ax = split_axis("split", x, axis);
  int64_t n = x.shape()[static_cast<size_t>(ax)];
  if (size <= 0 && !(size == 0 && n == 0))
    raise<ValueError>("split", "size must be positive, got " + std::to_string(size));
  if (n == 0) return {x};
  std::vector<Tensor> out;
  for (int64_t at = 0; at < n; at += size) out.push_back(slice(x, ax, at, std::min(n, at + size)));
  return out;
}

std::vector<Tensor> chunk(const Tensor& x, int64_t chunks, int64_t axis) {
  int64_t ax = split_axis("chunk", x, axis);
  if (chunks <= 0) raise<ValueError>("chunk", "chunks must be positive, got " + std::to_string(chunks));
  int64_t n = x.shape()[static_cast<size_t>(ax)];
  if (n == 0) return {x};
  return split(x, (n + chunks - 1) / chunks, ax);
}

Tensor pad(const Tensor& x, IntList pads, PadMode mode, Scalar value) {
  check_defined("pad", x);
  int64_t nd = x.ndim();
  if (pads.size() % 2 != 0)
    raise<ValueError>("pad", "pads must hold (before, after) pairs, got " + std::to_string(pads.size()) + " values");
  if (static_cast<int64_t>(pads.size()) > 2 * nd)
    raise<ValueError>("pad", std::to_string(pads.size() / 2) + " (before, after) pairs for shape " +
                                 shape_str(x.shape()) + " of rank " + std::to_string(nd));
  PadAttrs a;
  a.pads.assign(pads.begin(), pads.end());
  a.pads.resize(static_cast<size_t>(2 * nd), 0);
  a.mode = static_cast<uint8_t>(mode);
  a.value = value;
  bool any = false;
  for (int64_t p : a.pads) any = any || p != 0;
  if (!any) {
    detail::infer(OpId::Pad, std::span<const Tensor>(&x, 1), a);
    return x;
  }
  return dispatch1(OpId::Pad, {x}, a);
}

Tensor flip(const Tensor& x, IntList axes) {
  check_defined("flip", x);
  Axes ax = normalize_axes("flip", axes, x.ndim(), false);
  // Axes of size <= 1 are unchanged by flipping.
  Axes keep;
  for (int64_t a : ax)
    if (x.shape()[static_cast<size_t>(a)] > 1) keep.push_back(a);
  if (keep.empty()) return x;
  return dispatch1(OpId::Flip, {x}, AxesAttrs{keep});
}

Tensor roll(const Tensor& x, int64_t shift, std::optional<int64_t> axis) {
  check_defined("roll", x);
  if (!axis) {
    if (x.numel() <= 1) return x;
    return reshape(roll(reshape(x, {-1}), shift, 0), x.shape());
  }
  if (x.ndim() == 0) {
    normalize_axis("roll", *axis, 0);
    return x;
  }
  int64_t ax = normalize_axis("roll", *axis, x.ndim());
  int64_t n = x.shape()[static_cast<size_t>(ax)];
  if (n == 0) return x;
  int64_t s = ((shift % n) + n) % n;
  if (s == 0) return x;
  // The last s elements move to the front.
  return concat({slice(x, ax, n - s, n), slice(x, ax, 0, n - s)}, ax);
}

Tensor tile(const Tensor& x, IntList reps) {
  check_defined("tile", x);
  for (int64_t r : reps)
    if (r < 0) raise<ValueError>("tile", "negative repetition count in " + shape_str(reps));
  // Align x's shape and reps from the right (NumPy): the shorter one gets leading 1s.
  size_t nd = std::max(static_cast<size_t>(x.ndim()), reps.size());
  Shape xs(nd, 1), rs(nd, 1);
  std::copy(x.shape().begin(), x.shape().end(), xs.begin() + static_cast<std::ptrdiff_t>(nd - x.shape().size()));
  std::copy(reps.begin(), reps.end(), rs.begin() + static_cast<std::ptrdiff_t>(nd - reps.size()));
  // [d0, d1] -> [1, d0, 1, d1] -> expand [r0, d0, r1, d1] -> reshape [r0*d0, r1*d1].
  Shape inter, expanded, out;
  for (size_t i = 0; i < nd; ++i) {
    inter.push_back(1), inter.push_back(xs[i]);
    expanded.push_back(rs[i]), expanded.push_back(xs[i]);
    out.push_back(rs[i] * xs[i]);
  }
  Tensor e = expand(reshape(x, inter), expanded);
  return contiguous(reshape(e, out));
}

Tensor repeat_interleave(const Tensor& x, int64_t repeats, std::optional<int64_t> axis) {
  check_defined("repeat_interleave", x);
  if (repeats < 0)
    raise<ValueError>("repeat_interleave", "repeats must be non-negative, got " + std::to_string(repeats));
  if (!axis) return repeat_interleave(reshape(x, {-1}), repeats, 0);
  Tensor v = x.ndim() == 0 ? reshape(x, {1}) : x;
  int64_t ax = normalize_axis("repeat_interleave", *axis, v.ndim());
  // [.., n, ..] -> [.., n, 1, ..] -> expand [.., n, r, ..] -> reshape [.., n*r, ..].
  Shape expanded = v.shape(), out = v.shape();
  expanded.insert(expanded.begin() + ax + 1, repeats);
  out[static_cast<size_t>(ax)] *= repeats;
  Tensor e = expand(unsqueeze(v, ax + 1), expanded);
  return contiguous(reshape(e, out));
}

Tensor repeat_interleave(const Tensor& x, const Tensor& repeats, int64_t axis) {
  check_defined("repeat_interleave", x);
  check_defined("repeat_interleave", repeats);
  check_dtype("repeat_interleave", repeats.dtype(), repeats.dtype() == DType::Int32 || repeats.dtype() == DType::Int64,
              "int32 or int64 repeats");
  Tensor v = x.ndim() == 0 ? reshape(x, {1}) : x;
  int64_t ax = normalize_axis("repeat_interleave", axis, v.ndim());
  int64_t n = v.shape()[static_cast<size_t>(ax)];
  if (repeats.ndim() > 1 || (repeats.numel() != n && repeats.numel() != 1))
    raise<ShapeError>("repeat_interleave", "repeats of shape " + shape_str(repeats.shape()) +
                                               " must be 1-d with one count per entry of axis " + std::to_string(ax) +
                                               " of " + shape_str(v.shape()));
  std::vector<int64_t> r = repeats.to_vector<int64_t>();
  if (r.size() == 1 && n != 1) return repeat_interleave(v, r[0], ax);
  std::vector<int64_t> idx;
  for (int64_t i = 0; i < n; ++i) {
    int64_t c = r[static_cast<size_t>(i)];
    if (c < 0) raise<ValueError>("repeat_interleave", "repeats must be non-negative, got " + std::to_string(c));
    idx.insert(idx.end(), static_cast<size_t>(c), i);
  }
  int64_t len = static_cast<int64_t>(idx.size());
  return index_select(v, ax, tensor(idx, IntList(&len, 1), v.device()));
}

}  // namespace tessera
