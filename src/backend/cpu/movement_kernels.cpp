// Kernels of the data-movement primitives: concat, pad, flip.
//
// They only move elements, so they are compiled per element size (1, 2, 4, 8 bytes), not per dtype.
// The workhorse is strided_copy: drops size-1 dims, merges dims that are contiguous in both source
// and destination, and copies runs of the innermost dim (memcpy when both sides are dense there),
// in parallel over the flattened element range. Concat copies each input into its slab of the
// output, flip copies through negated strides, pad walks the output row by row.
#include <cstring>
#include <string>
#include <vector>

#include "cpu_backend.h"
#include "parallel.h"
#include "tessera/ops.h"

namespace tessera::cpu {

namespace {

/// Copies n elements from src (element stride ss) to dst (element stride ds).
template <typename E>
inline void copy_run(E* dst, int64_t ds, const E* src, int64_t ss, int64_t n) {
  if (ds == 1 && ss == 1) {
    std::memcpy(dst, src, static_cast<size_t>(n) * sizeof(E));
  } else if (ds == 1 && ss == -1) {  // flip of the innermost axis
#pragma omp simd
    for (int64_t i = 0; i < n; ++i) dst[i] = src[-i];
  } else if (ds == 1) {
#pragma omp simd
    for (int64_t i = 0; i < n; ++i) dst[i] = src[i * ss];
  } else {
    for (int64_t i = 0; i < n; ++i) dst[i * ds] = src[i * ss];
  }
}

/// strided_copy for a source that is dense along dim k but not along the last dim: the (k, last)
/// plane is copied in T x T tiles, in parallel over (other dims, tile rows of k).
template <typename E>
void tiled_copy(E* dst, const E* src, const Shape& shape, const Strides& ds, const Strides& ss, size_t k) {
  constexpr int64_t T = 32;
  const size_t r = shape.size();
  Shape os;
  Strides ods, oss;
  for (size_t d = 0; d + 1 < r; ++d) {
    if (d == k) continue;
    os.push_back(shape[d]);
    ods.push_back(ds[d]);
    oss.push_back(ss[d]);
  }
  int64_t outer = 1;
  for (int64_t d : os) outer *= d;
  const int64_t nk = shape[k], ni = shape[r - 1], kb = (nk + T - 1) / T;
  const int64_t dsk = ds[k], ssk = ss[k], dsi = ds[r - 1], ssi = ss[r - 1];
  parallel_for(0, outer * kb, std::max<int64_t>(1, kElementwiseGrain / (T * ni)), [&](int64_t b, int64_t e) {
    for (int64_t it = b; it < e; ++it) {
      int64_t o = it / kb, k0 = (it % kb) * T, k1 = std::min(nk, k0 + T);
      int64_t doff = 0, soff = 0;
      for (size_t d = os.size(); d-- > 0;) {
        int64_t c = o % os[d];
        o /= os[d];
        doff += c * ods[d];
        soff += c * oss[d];
      }
      // Through a small buffer, so that both memory sides are read/written as short dense runs
      // (a direct strided walk of either side hits one cache set over and over).
      E buf[T * T];
      const int64_t kn = k1 - k0;
      for (int64_t i0 = 0; i0 < ni; i0 += T) {
        int64_t in = std::min(ni - i0, T);
        for (int64_t i = 0; i < in; ++i) {
          const E* sp = src + soff + k0 * ssk + (i0 + i) * ssi;
          for (int64_t kk = 0; kk < kn; ++kk) buf[i * T + kk] = sp[kk * ssk];
        }
        for (int64_t kk = 0; kk < kn; ++kk) {
          E* dp = dst + doff + (k0 + kk) * dsk + i0 * dsi;
          for (int64_t i = 0; i < in; ++i) dp[i * dsi] = buf[i * T + kk];
        }
      }
    }
  });
}

/// dst[idx . dst_strides] = src[idx . src_strides] for every multi-index of shape (strides in elements).
template <typename E>
void strided_copy(E* dst, std::span<const int64_t> dst_strides, const E* src, std::span<const int64_t> src_strides,
                  std::span<const int64_t> shape_in) {
  Shape shape;
  Strides ds, ss;
  int64_t numel = 1;
  for (size_t d = 0; d < shape_in.size(); ++d) {
    numel *= shape_in[d];
    if (shape_in[d] == 1) continue;
    shape.push_back(shape_in[d]);
    ds.push_back(dst_strides[d]);
    ss.push_back(src_strides[d]);
  }
  if (numel == 0) return;
  // Merge dim d-1 into d when both operands are contiguous across them.
  for (size_t d = shape.size(); d-- > 1;) {
    if (ds[d - 1] != ds[d] * shape[d] || ss[d - 1] != ss[d] * shape[d]) continue;
    shape[d] *= shape[d - 1];
    shape.erase(shape.begin() + static_cast<std::ptrdiff_t>(d - 1));
    ds.erase(ds.begin() + static_cast<std::ptrdiff_t>(d - 1));
    ss.erase(ss.begin() + static_cast<std::ptrdiff_t>(d - 1));
  }
  if (shape.empty()) {
    shape.push_back(1);
    ds.push_back(1);
    ss.push_back(1);
  }
  const size_t r = shape.size();
  const int64_t inner = shape[r - 1], dsi = ds[r - 1], ssi = ss[r - 1];
  // Transposed source (dense along an outer dim, strided along the inner one): copy in square
  // tiles so that both sides stay in cache.
  size_t k = r;
  for (size_t d = 0; d + 1 < r; ++d)
    if ((ss[d] == 1 || ss[d] == -1) && shape[d] >= 8) k = d;
  if (k < r && ssi != 1 && ssi != -1 && inner >= 8) {
    tiled_copy(dst, src, shape, ds, ss, k);
    return;
  }
  parallel_for(0, numel, kElementwiseGrain, [&](int64_t b, int64_t e) {
    SmallVector<int64_t, 8> idx(r, 0);
    int64_t rem = b;
    for (size_t d = r; d-- > 0;) {
      idx[d] = rem % shape[d];
      rem /= shape[d];
    }
    int64_t pos = b;
    while (pos < e) {
      int64_t doff = 0, soff = 0;
      for (size_t d = 0; d < r; ++d) {
        doff += idx[d] * ds[d];
        soff += idx[d] * ss[d];
      }
      int64_t n = std::min(inner - idx[r - 1], e - pos);
      copy_run(dst + doff, dsi, src + soff, ssi, n);
      pos += n;
      idx[r - 1] += n;
      for (size_t d = r - 1; d > 0 && idx[d] >= shape[d]; --d) {
        idx[d] = 0;
        ++idx[d - 1];
      }
    }
  });
}

// ------------------------------------------------------------------ concat
void concat_kernel(const KernelCall& c) {
  const Tensor& out = c.out[0];
  const int64_t axis = std::get<AxisAttrs>(c.attrs).axis;
  if (out.numel() == 0) return;
  const Strides& ost = out.strides();
  visit_elem_size(out.itemsize(), [&](auto tag) {
    using E = decltype(tag);
    E* ob = static_cast<E*>(out.impl().data());
    // Many small contiguous inputs: one pass over the output rows instead of one copy per input.
    int64_t outer = 1, inner = 1;
    for (int64_t d = 0; d < axis; ++d) outer *= out.shape()[static_cast<size_t>(d)];
    for (size_t d = static_cast<size_t>(axis) + 1; d < out.shape().size(); ++d) inner *= out.shape()[d];
    bool all_contig = true;
    for (const Tensor& t : c.in) all_contig = all_contig && t.is_contiguous();
    const int64_t row = out.shape()[static_cast<size_t>(axis)] * inner;
    if (all_contig && outer > 1 && row < kElementwiseGrain) {
      parallel_for(0, outer, std::max<int64_t>(1, kElementwiseGrain / std::max<int64_t>(row, 1)),
                   [&](int64_t b, int64_t e) {
                     for (int64_t o = b; o < e; ++o) {
                       E* dst = ob + o * row;
                       for (const Tensor& t : c.in) {
                         int64_t len = t.shape()[static_cast<size_t>(axis)] * inner;
                         if (len)
                           std::memcpy(dst, static_cast<const E*>(t.impl().data()) + o * len,
                                       static_cast<size_t>(len) * sizeof(E));
                         dst += len;
                       }
                     }
                   });
      return;
    }
    int64_t at = 0;
    for (const Tensor& t : c.in) {
      strided_copy(ob + at * ost[static_cast<size_t>(axis)], ost, static_cast<const E*>(t.impl().data()), t.strides(),
                   t.shape());
      at += t.shape()[static_cast<size_t>(axis)];
    }
  });
}

// -------------------------------------------------------------------- flip
void flip_kernel(const KernelCall& c) {
  const Tensor &x = c.in[0], &out = c.out[0];
  if (out.numel() == 0) return;
  Strides st = x.strides();
  int64_t off = 0;
  for (int64_t a : std::get<AxesAttrs>(c.attrs).axes) {
    size_t d = static_cast<size_t>(a);
    off += (x.shape()[d] - 1) * st[d];
    st[d] = -st[d];
  }
  visit_elem_size(x.itemsize(), [&](auto tag) {
    using E = decltype(tag);
    strided_copy(static_cast<E*>(out.impl().data()), out.strides(), static_cast<const E*>(x.impl().data()) + off, st,
                 x.shape());
  });
}

// --------------------------------------------------------------------- pad
// Source index of output position j on an axis of size n padded by lo before it, or -1 (constant fill).
inline int64_t pad_source(int64_t j, int64_t lo, int64_t n, PadMode mode) {
  int64_t i = j - lo;
  if (i >= 0 && i < n) return i;
  switch (mode) {
    case PadMode::Constant:
      return -1;
    case PadMode::Reflect:
      return i < 0 ? -i : 2 * (n - 1) - i;
    case PadMode::Edge:
      return i < 0 ? 0 : n - 1;
  }
  return -1;
}

template <typename E>
void pad_impl(const Tensor& x, const Tensor& out, const PadAttrs& p, E fill) {
  const auto mode = static_cast<PadMode>(p.mode);
  // Working dims: x's shape and strides plus pads, with a 0-d tensor seen as [1].
  Shape xs;
  Strides xst;
  SmallVector<int64_t, 12> lo, hi;
  for (int64_t d = 0; d < x.ndim(); ++d) {
    xs.push_back(x.shape()[static_cast<size_t>(d)]);
    xst.push_back(x.strides()[static_cast<size_t>(d)]);
    lo.push_back(p.pads[static_cast<size_t>(2 * d)]);
    hi.push_back(p.pads[static_cast<size_t>(2 * d + 1)]);
  }
  if (xs.empty()) {
    xs.push_back(1), xst.push_back(1), lo.push_back(0), hi.push_back(0);
  }
  // Merge dim d into d+1 when d+1 is unpadded and x is dense across them. For constant mode dim d
  // may be padded (whole padded rows are fill); the other modes map indices per axis, so both
  // must be unpadded.
  for (size_t d = xs.size() - 1; d-- > 0;) {
    bool next_free = lo[d + 1] == 0 && hi[d + 1] == 0;
    bool free = lo[d] == 0 && hi[d] == 0;
    bool dense = xs[d] == 1 || xs[d + 1] == 1 || xst[d] == xst[d + 1] * xs[d + 1];
    if (!next_free || !dense || (mode != PadMode::Constant && !free)) continue;
    int64_t m = xs[d + 1];
    xst[d] = m == 1 ? xst[d] : xst[d + 1];
    xs[d] *= m, lo[d] *= m, hi[d] *= m;
    xs.erase(xs.begin() + static_cast<std::ptrdiff_t>(d + 1));
    xst.erase(xst.begin() + static_cast<std::ptrdiff_t>(d + 1));
    lo.erase(lo.begin() + static_cast<std::ptrdiff_t>(d + 1));
    hi.erase(hi.begin() + static_cast<std::ptrdiff_t>(d + 1));
  }
  const size_t r = xs.size();
  Shape os(r);
  for (size_t d = 0; d < r; ++d) os[d] = xs[d] + lo[d] + hi[d];
  const int64_t row = os[r - 1], n_in = xs[r - 1], lo_in = lo[r - 1], s_in = xst[r - 1];
  int64_t rows = 1;
  for (size_t d = 0; d + 1 < r; ++d) rows *= os[d];
  const E* xb = static_cast<const E*>(x.impl().data());
  E* ob = static_cast<E*>(out.impl().data());
  const bool x_empty = x.numel() == 0;  // constant mode only (infer rejects the others when it matters)

  parallel_for(0, rows, std::max<int64_t>(1, kElementwiseGrain / std::max<int64_t>(row, 1)), [&](int64_t b, int64_t e) {
    SmallVector<int64_t, 8> idx(r, 0);
    int64_t rem = b;
    for (size_t d = r - 1; d-- > 0;) {
      idx[d] = rem % os[d];
      rem /= os[d];
    }
    for (int64_t rr = b; rr < e; ++rr) {
      E* dst = ob + rr * row;
      // Source row, or none when some outer coordinate falls in constant padding.
      int64_t soff = 0;
      bool fill_row = x_empty;
      for (size_t d = 0; d + 1 < r && !fill_row; ++d) {
        int64_t s = pad_source(idx[d], lo[d], xs[d], mode);
        if (s < 0)
          fill_row = true;
        else
          soff += s * xst[d];
      }
      if (fill_row) {
        for (int64_t j = 0; j < row; ++j) dst[j] = fill;
      } else {
        const E* src = xb + soff;
        for (int64_t j = 0; j < lo_in; ++j) {
          int64_t s = pad_source(j, lo_in, n_in, mode);
          dst[j] = s < 0 ? fill : src[s * s_in];
        }
        copy_run(dst + lo_in, 1, src, s_in, n_in);
        for (int64_t j = lo_in + n_in; j < row; ++j) {
          int64_t s = pad_source(j, lo_in, n_in, mode);
          dst[j] = s < 0 ? fill : src[s * s_in];
        }
      }
      for (size_t d = r - 1; d-- > 0;) {
        if (++idx[d] < os[d]) break;
        idx[d] = 0;
      }
    }
  });
}

void pad_kernel(const KernelCall& c) {
  const Tensor &x = c.in[0], &out = c.out[0];
  const auto& p = std::get<PadAttrs>(c.attrs);
  if (out.numel() == 0) return;
  visit_dtype(x.dtype(), [&](auto ttag) {
    using T = decltype(ttag);
    using E = std::conditional_t<
        sizeof(T) == 1, uint8_t,
        std::conditional_t<sizeof(T) == 2, uint16_t, std::conditional_t<sizeof(T) == 4, uint32_t, uint64_t>>>;
    static_assert(sizeof(E) == sizeof(T));
    T v = p.value.to<T>();
    E fill;
    std::memcpy(&fill, &v, sizeof(E));
    pad_impl<E>(x, out, p, fill);
  });
}

}  // namespace

void register_movement_kernels(Backend& b) {
  b.set_kernel(OpId::Concat, &concat_kernel);
  b.set_kernel(OpId::Pad, &pad_kernel);
  b.set_kernel(OpId::Flip, &flip_kernel);
}

}  // namespace tessera::cpu
