// Kernels of the indexing primitives: gather, scatter, scatter_add, index_select.
//
// All four walk the index tensor as (outer, axis, inner) = (dims before axis, the axis, dims after
// it). A DimMap turns a linear position over a group of dims into an element offset of any strided
// operand, so inputs are read in place whatever their layout. Every index value is range-checked
// before it is used; a bad one is skipped and flagged, and the error is raised after the parallel
// region (after a serial scan that names the first bad value, so the message is deterministic).
//
// Gather, scatter and index_select only move elements, so they are compiled per element size, not
// per dtype. Scatter and scatter_add are deterministic: two index entries can only hit the same
// output element when they differ only along the axis, and a work item owns every axis position of
// its (outer, inner) range and walks it in order, so the last write wins / sums run in index order.
#include <algorithm>
#include <atomic>
#include <cstring>
#include <string>
#include <vector>

#include "cpu_backend.h"
#include "elementwise_table.h"
#include "parallel.h"
#include "tessera/error.h"

namespace tessera::cpu {

namespace {

/// Maps a linear position over a group of dims (row-major, sizes `sizes`) to an element offset
/// under `strides`: k * step when the dims collapse to one stride, else through a table.
struct DimMap {
  int64_t n = 1;
  int64_t step = 0;
  std::vector<int64_t> table;  // empty when linear
  int64_t operator()(int64_t k) const { return table.empty() ? k * step : table[static_cast<size_t>(k)]; }
  bool linear() const { return table.empty(); }
  bool unit() const { return table.empty() && (step == 1 || n <= 1); }
};

DimMap make_map(std::span<const int64_t> sizes, std::span<const int64_t> strides) {
  DimMap m;
  SmallVector<int64_t, 8> sz, st;
  for (size_t d = 0; d < sizes.size(); ++d) {
    m.n *= sizes[d];
    if (sizes[d] != 1) {
      sz.push_back(sizes[d]);
      st.push_back(strides[d]);
    }
  }
  if (m.n == 0 || sz.empty()) return m;
  bool linear = true;
  for (size_t d = 0; d + 1 < sz.size(); ++d) linear = linear && st[d] == st[d + 1] * sz[d + 1];
  if (linear) {
    m.step = st.back();
    return m;
  }
  m.table.resize(static_cast<size_t>(m.n));
  SmallVector<int64_t, 8> idx(sz.size(), 0);
  int64_t off = 0;
  for (int64_t k = 0; k < m.n; ++k) {
    m.table[static_cast<size_t>(k)] = off;
    for (size_t d = sz.size(); d-- > 0;) {
      off += st[d];
      if (++idx[d] < sz[d]) break;
      off -= st[d] * sz[d];
      idx[d] = 0;
    }
  }
  return m;
}

/// Shape and strides of t, with a 0-d tensor seen as shape [1].
struct View {
  Shape shape;
  Strides strides;
};
View view_of(const Tensor& t) {
  if (t.ndim() == 0) return {Shape{1}, Strides{1}};
  return {t.shape(), t.strides()};
}

/// Maps of one operand over the index's outer and inner dims, plus its stride along the axis.
struct OperandMaps {
  DimMap outer, inner;
  int64_t axis_stride = 0;
};
OperandMaps operand_maps(const Shape& ishape, const Strides& strides, int64_t axis) {
  size_t a = static_cast<size_t>(axis);
  std::span<const int64_t> s(ishape.data(), ishape.size()), st(strides.data(), strides.size());
  return {make_map(s.first(a), st.first(a)), make_map(s.subspan(a + 1), st.subspan(a + 1)), st[a]};
}

template <typename Fn>
decltype(auto) visit_index(DType t, Fn&& fn) {
  if (t == DType::Int32) return fn(int32_t{});
  return fn(int64_t{});
}

/// The index value at a position, normalized, or -1 when out of range.
template <typename IT>
inline int64_t norm_index(IT raw, int64_t n) {
  int64_t v = static_cast<int64_t>(raw);
  if (v < 0) v += n;
  return static_cast<uint64_t>(v) < static_cast<uint64_t>(n) ? v : -1;
}

/// Finds the first out-of-range value of index (row-major) and throws IndexError.
[[noreturn]] void raise_bad_index(const char* op, const Tensor& index, int64_t axis, int64_t n) {
  std::vector<int64_t> v = index.to_vector<int64_t>();
  for (int64_t raw : v)
    if (raw < -n || raw >= n)
      raise<IndexError>(op, "index " + std::to_string(raw) + " is out of range for axis " + std::to_string(axis) +
                                " of size " + std::to_string(n));
  raise<IndexError>(op, "index out of range for axis " + std::to_string(axis) + " of size " + std::to_string(n));
}

/// Iteration over an index tensor of shape ishape split as (outer, A, inner): calls
/// body(o, i0, i1) for work items that own every axis position of outer o and inner range [i0, i1).
template <typename Body>
void for_index_blocks(int64_t outer, int64_t A, int64_t inner, const Body& body) {
  if (outer == 0 || A == 0 || inner == 0) return;
  // Blocks of at most 2048 inner positions, smaller (down to 64) when outer alone gives too few
  // work items to keep every thread busy.
  int64_t blk = std::min<int64_t>(inner, 2048);
  const int64_t want = 4 * static_cast<int64_t>(num_threads());
  if (outer < want) {
    int64_t per = (want + outer - 1) / outer;
    blk = std::clamp<int64_t>((inner + per - 1) / per, std::min<int64_t>(inner, 64), blk);
  }
  const int64_t nblk = (inner + blk - 1) / blk;
  const int64_t grain = std::max<int64_t>(1, kElementwiseGrain / std::max<int64_t>(1, A * blk));
  parallel_for(0, outer * nblk, grain, [&](int64_t b, int64_t e) {
    for (int64_t it = b; it < e; ++it) {
      int64_t o = it / nblk, i0 = (it % nblk) * blk;
      body(o, i0, std::min(inner, i0 + blk));
    }
  });
}

struct IndexGeometry {
  int64_t axis, n;  // axis and its size in x
  int64_t outer, A, inner;
  Shape ishape;
};
IndexGeometry geometry(const Tensor& x, const Tensor& index, int64_t axis) {
  View xv = view_of(x), iv = view_of(index);
  IndexGeometry g;
  g.axis = axis;
  g.n = xv.shape[static_cast<size_t>(axis)];
  g.ishape = iv.shape;
  g.outer = 1;
  g.inner = 1;
  for (int64_t d = 0; d < axis; ++d) g.outer *= iv.shape[static_cast<size_t>(d)];
  g.A = iv.shape[static_cast<size_t>(axis)];
  for (size_t d = static_cast<size_t>(axis) + 1; d < iv.shape.size(); ++d) g.inner *= iv.shape[d];
  return g;
}

// ------------------------------------------------------------------ gather
void gather_kernel(const KernelCall& c) {
  const Tensor &x = c.in[0], &index = c.in[1];
  const Tensor& out = c.out[0];
  const int64_t axis = std::get<AxisAttrs>(c.attrs).axis;
  if (out.numel() == 0) return;
  IndexGeometry g = geometry(x, index, axis);
  View xv = view_of(x), iv = view_of(index);
  OperandMaps xm = operand_maps(g.ishape, xv.strides, axis), im = operand_maps(g.ishape, iv.strides, axis);
  std::atomic<bool> bad{false};
  visit_index(index.dtype(), [&](auto itag) {
    using IT = decltype(itag);
    const IT* ib = static_cast<const IT*>(index.impl().data());
    visit_elem_size(x.itemsize(), [&](auto etag) {
      using E = decltype(etag);
      const E* xb = static_cast<const E*>(x.impl().data());
      E* ob = static_cast<E*>(out.impl().data());
      const int64_t ias = im.axis_stride, xas = xm.axis_stride;
      const bool lin = im.inner.linear() && xm.inner.linear();
      const int64_t iis = im.inner.step, xis = xm.inner.step;
      for_index_blocks(g.outer, g.A, g.inner, [&](int64_t o, int64_t i0, int64_t i1) {
        const E* xo = xb + xm.outer(o);
        const IT* io = ib + im.outer(o);
        bool local_bad = false;
        if (g.inner == 1) {
          // Gathering along the last axis: one long loop over the axis.
          E* orow = ob + o * g.A;
          for (int64_t j = 0; j < g.A; ++j) {
            int64_t v = norm_index(io[j * ias], g.n);
            local_bad |= v < 0;
            orow[j] = v < 0 ? E{} : xo[v * xas];
          }
        } else {
          for (int64_t j = 0; j < g.A; ++j) {
            const IT* irow = io + j * ias;
            E* orow = ob + (o * g.A + j) * g.inner;
            if (lin) {
              for (int64_t i = i0; i < i1; ++i) {
                int64_t v = norm_index(irow[i * iis], g.n);
                local_bad |= v < 0;
                orow[i] = v < 0 ? E{} : xo[v * xas + i * xis];
              }
            } else {
              for (int64_t i = i0; i < i1; ++i) {
                int64_t v = norm_index(irow[im.inner(i)], g.n);
                local_bad |= v < 0;
                orow[i] = v < 0 ? E{} : xo[v * xas + xm.inner(i)];
              }
            }
          }
        }
        if (local_bad) bad.store(true, std::memory_order_relaxed);
      });
    });
  });
  if (bad.load()) raise_bad_index("gather", index, axis, g.n);
}

// ------------------------------------------------------- scatter, scatter_add
/// Copies x into the (contiguous) output with the elementwise copy loop; nothing to do when the
/// output is x's own buffer (graph mode plans scatters in place over a dying x).
void copy_into(const Tensor& out, const Tensor& x) {
  if (out.numel() == 0 || (x.raw_data() == out.raw_data() && x.is_contiguous())) return;
  InnerLoop loop = elementwise_table().loops[static_cast<int>(OpId::Copy)][static_cast<int>(x.dtype())];
  const Tensor ins[1] = {x};
  run_elementwise(out, ins, loop);
}

enum class Combine { Assign, Add };

template <typename T>
inline void combine_add(T& dst, T v) {
  if constexpr (std::is_same_v<T, bool>) {
    dst = dst || v;
  } else if constexpr (std::is_integral_v<T>) {
    // Wraps on overflow (two's complement) without signed-overflow UB.
    using U = std::make_unsigned_t<T>;
    dst = static_cast<T>(static_cast<U>(static_cast<U>(dst) + static_cast<U>(v)));
  } else {
    dst = dst + v;
  }
}

/// Scatters src (element type S, read as type Acc) into acc (a contiguous buffer of x's shape,
/// element type Acc). Returns false when some index was out of range.
template <Combine C, typename IT, typename S, typename Acc>
bool scatter_run(Acc* acc, const Tensor& x, const Tensor& index, const Tensor& src, int64_t axis) {
  IndexGeometry g = geometry(x, index, axis);
  View xv = view_of(x), iv = view_of(index), sv = view_of(src);
  Strides ost = contiguous_strides(xv.shape);
  OperandMaps om = operand_maps(g.ishape, ost, axis), im = operand_maps(g.ishape, iv.strides, axis),
              sm = operand_maps(g.ishape, sv.strides, axis);
  const IT* ib = static_cast<const IT*>(index.impl().data());
  const S* sb = static_cast<const S*>(src.impl().data());
  std::atomic<bool> bad{false};
  const int64_t ias = im.axis_stride, sas = sm.axis_stride, oas = om.axis_stride;
  const bool row_index = g.inner > 1 && im.inner.linear() && im.inner.step == 0 && om.inner.unit() && sm.inner.unit();
  auto put = [](Acc& dst, Acc val) {
    if constexpr (C == Combine::Assign)
      dst = val;
    else
      combine_add(dst, val);
  };
  for_index_blocks(g.outer, g.A, g.inner, [&](int64_t o, int64_t i0, int64_t i1) {
    Acc* oo = acc + om.outer(o);
    const IT* io = ib + im.outer(o);
    const S* so = sb + sm.outer(o);
    bool local_bad = false;
    if (g.inner == 1) {
      // Scattering along the last axis: one long loop over the axis, in order.
      for (int64_t j = 0; j < g.A; ++j) {
        int64_t v = norm_index(io[j * ias], g.n);
        if (v < 0) {
          local_bad = true;
          continue;
        }
        put(oo[v * oas], static_cast<Acc>(so[j * sas]));
      }
      if (local_bad) bad.store(true, std::memory_order_relaxed);
      return;
    }
    if (row_index) {
      // One index per axis position, broadcast over contiguous inner rows (an embedding's
      // gradient): each source row goes onto its output row in one vector loop, in index order.
      for (int64_t j = 0; j < g.A; ++j) {
        int64_t v = norm_index(io[j * ias], g.n);
        if (v < 0) {
          local_bad = true;
          continue;
        }
        Acc* dst = oo + v * oas + i0;
        const S* from = so + j * sas + i0;
        for (int64_t i = 0; i < i1 - i0; ++i) put(dst[i], static_cast<Acc>(from[i]));
      }
      if (local_bad) bad.store(true, std::memory_order_relaxed);
      return;
    }
    // Axis positions in order (j outer), so duplicates resolve in index order.
    for (int64_t j = 0; j < g.A; ++j) {
      const IT* irow = io + j * ias;
      const S* srow = so + j * sas;
      for (int64_t i = i0; i < i1; ++i) {
        int64_t v = norm_index(irow[im.inner(i)], g.n);
        if (v < 0) {
          local_bad = true;
          continue;
        }
        put(oo[v * oas + om.inner(i)], static_cast<Acc>(srow[sm.inner(i)]));
      }
    }
    if (local_bad) bad.store(true, std::memory_order_relaxed);
  });
  return !bad.load();
}

template <Combine C>
void scatter_kernel(const KernelCall& c) {
  const Tensor &x = c.in[0], &index = c.in[1], &src = c.in[2];
  const Tensor& out = c.out[0];
  const int64_t axis = std::get<AxisAttrs>(c.attrs).axis;
  const char* op = C == Combine::Assign ? "scatter" : "scatter_add";
  const int64_t n = view_of(x).shape[static_cast<size_t>(axis)];
  bool ok = true;
  visit_index(index.dtype(), [&](auto itag) {
    using IT = decltype(itag);
    if constexpr (C == Combine::Assign) {
      copy_into(out, x);
      if (index.numel() == 0) return;
      visit_elem_size(x.itemsize(), [&](auto etag) {
        using E = decltype(etag);
        ok = scatter_run<C, IT, E, E>(static_cast<E*>(out.impl().data()), x, index, src, axis);
      });
    } else {
      visit_dtype(x.dtype(), [&](auto ttag) {
        using T = decltype(ttag);
        if constexpr (std::is_same_v<T, Half> || std::is_same_v<T, BFloat16>) {
          // Accumulate in float32, round once at the end.
          const int64_t numel = out.numel();
          if (numel == 0) return;
          std::vector<float> acc(static_cast<size_t>(numel));
          copy_into(out, x);
          T* ob = static_cast<T*>(out.impl().data());
          parallel_for(0, numel, kElementwiseGrain, [&](int64_t b, int64_t e) {
            for (int64_t i = b; i < e; ++i) acc[static_cast<size_t>(i)] = static_cast<float>(ob[i]);
          });
          if (index.numel() > 0) ok = scatter_run<C, IT, T, float>(acc.data(), x, index, src, axis);
          if (!ok) return;
          parallel_for(0, numel, kElementwiseGrain, [&](int64_t b, int64_t e) {
            for (int64_t i = b; i < e; ++i) ob[i] = T(acc[static_cast<size_t>(i)]);
          });
        } else {
          copy_into(out, x);
          if (index.numel() == 0) return;
          ok = scatter_run<C, IT, T, T>(static_cast<T*>(out.impl().data()), x, index, src, axis);
        }
      });
    }
  });
  if (!ok) raise_bad_index(op, index, axis, n);
}

// ----------------------------------------------------------- index_select
void index_select_kernel(const KernelCall& c) {
  const Tensor &x = c.in[0], &index = c.in[1];
  const Tensor& out = c.out[0];
  const int64_t axis = std::get<AxisAttrs>(c.attrs).axis;
  View xv = view_of(x);
  const size_t a = static_cast<size_t>(axis);
  const int64_t n = xv.shape[a], m = index.numel();
  if (m == 0) return;
  // Normalize and check every index first (in parallel), so the copy below never sees a bad one.
  std::vector<int64_t> idx(static_cast<size_t>(m));
  std::atomic<bool> bad{false};
  visit_index(index.dtype(), [&](auto itag) {
    using IT = decltype(itag);
    const IT* ib = static_cast<const IT*>(index.impl().data());
    const int64_t is = index.ndim() == 0 ? 0 : index.strides()[0];
    parallel_for(0, m, kElementwiseGrain, [&](int64_t b, int64_t e) {
      bool local_bad = false;
      for (int64_t j = b; j < e; ++j) {
        int64_t v = norm_index(ib[j * is], n);
        local_bad |= v < 0;
        idx[static_cast<size_t>(j)] = v;
      }
      if (local_bad) bad.store(true, std::memory_order_relaxed);
    });
  });
  if (bad.load()) raise_bad_index("index_select", index, axis, n);
  if (out.numel() == 0) return;

  std::span<const int64_t> s(xv.shape.data(), xv.shape.size()), st(xv.strides.data(), xv.strides.size());
  DimMap outer = make_map(s.first(a), st.first(a)), inner = make_map(s.subspan(a + 1), st.subspan(a + 1));
  const int64_t xs = st[a], rows = outer.n * m, row_len = inner.n;
  const size_t es = x.itemsize();
  const void* xb = x.impl().data();
  void* ob = out.impl().data();
  const int64_t grain = std::max<int64_t>(1, kElementwiseGrain / std::max<int64_t>(1, row_len));
  const int64_t* ix = idx.data();
  visit_elem_size(es, [&](auto etag) {
    using E = decltype(etag);
    const E* xe = static_cast<const E*>(xb);
    E* oe = static_cast<E*>(ob);
    // Output row r = (o, j) is x's row (o, idx[j]); rows are walked in order from each chunk start.
    parallel_for(0, rows, grain, [&](int64_t b, int64_t e) {
      int64_t o = b / m, j = b % m;
      for (int64_t r = b; r < e;) {
        const E* xo = xe + outer(o);
        E* dst = oe + r * row_len;
        int64_t jend = std::min(m, j + (e - r));
        if (row_len == 1) {
          // Selecting single elements (e.g. along the last axis).
          for (int64_t k = j; k < jend; ++k) dst[k - j] = xo[ix[k] * xs];
        } else if (inner.unit()) {
          // Whole rows contiguous in x (e.g. embedding lookup): one memcpy each.
          for (int64_t k = j; k < jend; ++k, dst += row_len)
            std::memcpy(dst, xo + ix[k] * xs, static_cast<size_t>(row_len) * sizeof(E));
        } else {
          for (int64_t k = j; k < jend; ++k, dst += row_len) {
            const E* src = xo + ix[k] * xs;
            for (int64_t i = 0; i < row_len; ++i) dst[i] = src[inner(i)];
          }
        }
        r += jend - j;
        j = 0;
        ++o;
      }
    });
  });
}

}  // namespace

void register_index_kernels(Backend& b) {
  b.set_kernel(OpId::Gather, &gather_kernel);
  b.set_kernel(OpId::Scatter, &scatter_kernel<Combine::Assign>);
  b.set_kernel(OpId::ScatterAdd, &scatter_kernel<Combine::Add>);
  b.set_kernel(OpId::IndexSelect, &index_select_kernel);
}

}  // namespace tessera::cpu
