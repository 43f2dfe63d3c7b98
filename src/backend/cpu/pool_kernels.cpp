// Kernels of MaxPool2d, AvgPool2d and AdaptiveAvgPool2d (NCHW), registered from
// register_conv_kernels. Parallel over (image, channel) planes; within a plane each output row
// is accumulated window column by window column, so the inner loop runs along the output row
// (vectorizable, stride sw in the input). Max pooling propagates NaN; float16/bfloat16 compute in
// float32 and float32 accumulates averages in float32 (windows are small).
#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <memory>
#include <type_traits>
#include <vector>

#include "../../core/dispatch.h"
#include "cpu_backend.h"
#include "parallel.h"

namespace tessera::cpu {

void register_pool_kernels(Backend& b);

namespace {

Tensor contig(const Tensor& t) {
  if (t.is_contiguous()) return t;
  Tensor c;
  detail::execute(OpId::Copy, std::span<const Tensor>(&t, 1), NoAttrs{}, std::span<Tensor>(&c, 1));
  return c;
}

// Arithmetic type for T: float for the 16-bit floats, uint8_t for bool, T otherwise.
template <typename T>
using Acc = std::conditional_t<std::is_same_v<T, Half> || std::is_same_v<T, BFloat16>, float,
                               std::conditional_t<std::is_same_v<T, bool>, uint8_t, T>>;

struct PoolGeom {
  int64_t planes, H, W, Ho, Wo, kh, kw, sh, sw, ph, pw;
  bool count_include_pad;
};

PoolGeom pool_geom(const KernelCall& c) {
  const auto& p = std::get<PoolAttrs>(c.attrs);
  const Shape &xs = c.in[0].shape(), &ys = c.out[0].shape();
  return {xs[0] * xs[1], xs[2],       xs[3],       ys[2],        ys[3],        p.kernel[0],
          p.kernel[1],   p.stride[0], p.stride[1], p.padding[0], p.padding[1], p.count_include_pad};
}

// Output columns ow whose input column ow*sw + off lies in [0, W).
inline void valid_cols(int64_t off, int64_t W, int64_t Wo, int64_t sw, int64_t& ow0, int64_t& ow1) {
  ow0 = off >= 0 ? 0 : std::min(Wo, (-off + sw - 1) / sw);
  ow1 = W - off > 0 ? std::min(Wo, (W - off + sw - 1) / sw) : 0;
  ow1 = std::max(ow0, ow1);
}

// The start value of a running maximum: -inf, or the type's lowest value for integers.
template <typename A>
constexpr A max_identity() {
  if constexpr (std::is_floating_point_v<A>)
    return -std::numeric_limits<A>::infinity();
  else
    return std::numeric_limits<A>::lowest();
}

template <typename T, bool IsMax>
[[gnu::always_inline]] inline void pool_planes(const T* x, T* y, const PoolGeom& g, int64_t p0, int64_t p1) {
  using A = Acc<T>;
  if (g.Wo <= 0) return;
  std::unique_ptr<A[]> acc(new A[static_cast<size_t>(g.Wo)]);
  std::vector<A> wdiv(static_cast<size_t>(g.Wo));  // per-column window widths (avg)
  std::vector<A> wdiv_in(static_cast<size_t>(g.Wo));
  if constexpr (!IsMax) {
    for (int64_t ow = 0; ow < g.Wo; ++ow) {
      int64_t ws = ow * g.sw - g.pw, we = std::min(ws + g.kw, g.W + g.pw);
      wdiv[static_cast<size_t>(ow)] = static_cast<A>(we - ws);
      wdiv_in[static_cast<size_t>(ow)] = static_cast<A>(std::min(we, g.W) - std::max<int64_t>(ws, 0));
    }
  }
  for (int64_t pl = p0; pl < p1; ++pl) {
    const T* xp = x + pl * g.H * g.W;
    T* yp = y + pl * g.Ho * g.Wo;
    for (int64_t oh = 0; oh < g.Ho; ++oh) {
      int64_t hs = oh * g.sh - g.ph, he = std::min(hs + g.kh, g.H + g.ph);
      int64_t pool_h = he - hs;
      hs = std::max<int64_t>(hs, 0), he = std::min(he, g.H);
      A* a = acc.get();
      if constexpr (IsMax) {
        std::fill(a, a + g.Wo, max_identity<A>());
      } else {
        std::fill(a, a + g.Wo, A(0));
      }
      for (int64_t ih = hs; ih < he; ++ih) {
        const T* xr = xp + ih * g.W;
        for (int64_t j = 0; j < g.kw; ++j) {
          int64_t off = j - g.pw, ow0, ow1;
          valid_cols(off, g.W, g.Wo, g.sw, ow0, ow1);
          const T* xs = xr + off;
          int64_t sw = g.sw;
          if constexpr (IsMax) {
            if constexpr (std::is_floating_point_v<A>) {
              for (int64_t ow = ow0; ow < ow1; ++ow) {
                A v = static_cast<A>(xs[ow * sw]);
                a[ow] = (v > a[ow] || v != v) ? v : a[ow];
              }
            } else {
              for (int64_t ow = ow0; ow < ow1; ++ow) {
                A v = static_cast<A>(xs[ow * sw]);
                a[ow] = v > a[ow] ? v : a[ow];
              }
            }
          } else {
            for (int64_t ow = ow0; ow < ow1; ++ow) a[ow] += static_cast<A>(xs[ow * sw]);
          }
        }
      }
      T* yr = yp + oh * g.Wo;
      if constexpr (IsMax) {
        for (int64_t ow = 0; ow < g.Wo; ++ow) yr[ow] = static_cast<T>(a[ow]);
      } else {
        A hin = static_cast<A>(he - hs), hpad = static_cast<A>(pool_h);
        for (int64_t ow = 0; ow < g.Wo; ++ow) {
          A div = g.count_include_pad ? hpad * wdiv[static_cast<size_t>(ow)] : hin * wdiv_in[static_cast<size_t>(ow)];
          yr[ow] = static_cast<T>(a[ow] / div);
        }
      }
    }
  }
}

// float32, the common case, gets one clone per ISA level (the CPU layer is compiled for baseline x86-64).
__attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default"))) void max_planes_f32(
    const float* x, float* y, const PoolGeom& g, int64_t p0, int64_t p1) {
  pool_planes<float, true>(x, y, g, p0, p1);
}
__attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default"))) void avg_planes_f32(
    const float* x, float* y, const PoolGeom& g, int64_t p0, int64_t p1) {
  pool_planes<float, false>(x, y, g, p0, p1);
}

template <typename T, bool IsMax>
void run_planes(const T* x, T* y, const PoolGeom& g, int64_t p0, int64_t p1) {
  if constexpr (std::is_same_v<T, float>) {
    if constexpr (IsMax)
      max_planes_f32(x, y, g, p0, p1);
    else
      avg_planes_f32(x, y, g, p0, p1);
  } else {
    pool_planes<T, IsMax>(x, y, g, p0, p1);
  }
}

template <bool IsMax>
void pool_kernel(const KernelCall& c) {
  const Tensor& y = c.out[0];
  if (y.numel() == 0) return;
  Tensor x = contig(c.in[0]);
  PoolGeom g = pool_geom(c);
  int64_t work = std::max<int64_t>(1, g.Ho * g.Wo * g.kh * g.kw);
  visit_dtype(x.dtype(), [&](auto tag) {
    using T = decltype(tag);
    if constexpr (!IsMax && !(std::is_floating_point_v<T> || std::is_same_v<T, Half> || std::is_same_v<T, BFloat16>)) {
      raise<DTypeError>("avg_pool2d", "expects a floating-point tensor");
    } else {
      const T* xp = static_cast<const T*>(x.raw_data());
      T* yp = static_cast<T*>(y.raw_data());
      parallel_for(0, g.planes, std::max<int64_t>(1, 32768 / work),
                   [&](int64_t b, int64_t e) { run_planes<T, IsMax>(xp, yp, g, b, e); });
    }
  });
}

// Position of each window's maximum (what max pooling's gradient routes through), laid out like the
// forward: per output row, window offset by window offset, with the inner loop along the output row.
// Visiting the window in row-major order and taking over only on a strictly larger value (or a NaN)
// keeps the first maximum; a window of -inf (or of the type's lowest value) keeps its first position.
template <typename T>
[[gnu::always_inline]] inline void max_index_planes(const T* x, int64_t* y, const PoolGeom& g, int64_t p0, int64_t p1) {
  using A = Acc<T>;
  if (g.Wo <= 0) return;
  std::vector<A> best(static_cast<size_t>(g.Wo));
  const A init = max_identity<A>();
  for (int64_t pl = p0; pl < p1; ++pl) {
    const T* xp = x + pl * g.H * g.W;
    int64_t* yp = y + pl * g.Ho * g.Wo;
    for (int64_t oh = 0; oh < g.Ho; ++oh) {
      int64_t hs = std::max<int64_t>(oh * g.sh - g.ph, 0), he = std::min(oh * g.sh - g.ph + g.kh, g.H);
      A* b = best.data();
      int64_t* yr = yp + oh * g.Wo;
      std::fill(b, b + g.Wo, init);
      for (int64_t ow = 0; ow < g.Wo; ++ow) yr[ow] = hs * g.W + std::max<int64_t>(ow * g.sw - g.pw, 0);
      for (int64_t ih = hs; ih < he; ++ih) {
        const T* xr = xp + ih * g.W;
        for (int64_t j = 0; j < g.kw; ++j) {
          int64_t off = j - g.pw, ow0, ow1;
          valid_cols(off, g.W, g.Wo, g.sw, ow0, ow1);
          const T* xs = xr + off;
          const int64_t sw = g.sw, base = ih * g.W + off;
          for (int64_t ow = ow0; ow < ow1; ++ow) {
            A v = static_cast<A>(xs[ow * sw]);
            bool take = v > b[ow];
            if constexpr (std::is_floating_point_v<A>) take = take | (v != v);
            b[ow] = take ? v : b[ow];
            yr[ow] = take ? base + ow * sw : yr[ow];
          }
        }
      }
    }
  }
}

// 2x2 windows with stride 2 that all lie inside the input (no padding): the pooling of most CNNs.
// The four candidates in row-major window order, with the generic kernel's rules (first maximum
// wins, a NaN wins over numbers, the last NaN over earlier ones), branch-free so it vectorizes.
bool is_2x2_stride2(const PoolGeom& g) {
  return g.kh == 2 && g.kw == 2 && g.sh == 2 && g.sw == 2 && g.ph == 0 && g.pw == 0 && 2 * g.Ho <= g.H &&
         2 * g.Wo <= g.W;
}

[[gnu::always_inline]] inline void max_index_2x2_f32(const float* x, int64_t* y, const PoolGeom& g, int64_t p0,
                                                     int64_t p1) {
  const int64_t W = g.W;
  for (int64_t pl = p0; pl < p1; ++pl) {
    const float* xp = x + pl * g.H * W;
    int64_t* yp = y + pl * g.Ho * g.Wo;
    for (int64_t oh = 0; oh < g.Ho; ++oh) {
      const float* r0 = xp + 2 * oh * W;
      const float* r1 = r0 + W;
      int64_t* yr = yp + oh * g.Wo;
      const int64_t base = 2 * oh * W;
#pragma omp simd
      for (int64_t ow = 0; ow < g.Wo; ++ow) {
        float m = r0[2 * ow];
        int64_t idx = base + 2 * ow;
        float v = r0[2 * ow + 1];
        bool t = (v > m) | (v != v);
        m = t ? v : m;
        idx = t ? base + 2 * ow + 1 : idx;
        v = r1[2 * ow];
        t = (v > m) | (v != v);
        m = t ? v : m;
        idx = t ? base + W + 2 * ow : idx;
        v = r1[2 * ow + 1];
        t = (v > m) | (v != v);
        idx = t ? base + W + 2 * ow + 1 : idx;
        yr[ow] = idx;
      }
    }
  }
}

__attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default"))) void max_index_planes_f32(
    const float* x, int64_t* y, const PoolGeom& g, int64_t p0, int64_t p1) {
  if (is_2x2_stride2(g))
    max_index_2x2_f32(x, y, g, p0, p1);
  else
    max_index_planes<float>(x, y, g, p0, p1);
}

void max_indices_kernel(const KernelCall& c) {
  const Tensor& y = c.out[0];
  if (y.numel() == 0) return;
  Tensor x = contig(c.in[0]);
  PoolGeom g = pool_geom(c);
  int64_t* yp = static_cast<int64_t*>(y.raw_data());
  int64_t work = std::max<int64_t>(1, g.Ho * g.Wo * g.kh * g.kw);
  visit_dtype(x.dtype(), [&](auto tag) {
    using T = decltype(tag);
    const T* xp = static_cast<const T*>(x.raw_data());
    parallel_for(0, g.planes, std::max<int64_t>(1, 32768 / work), [&](int64_t b, int64_t e) {
      if constexpr (std::is_same_v<T, float>)
        max_index_planes_f32(xp, yp, g, b, e);
      else
        max_index_planes<T>(xp, yp, g, b, e);
    });
  });
}

// PyTorch's adaptive bins: [floor(i * in / out), ceil((i + 1) * in / out)).
void adaptive_avg_kernel(const KernelCall& c) {
  const Tensor& y = c.out[0];
  if (y.numel() == 0) return;
  Tensor x = contig(c.in[0]);
  const Shape& xs = x.shape();
  int64_t planes = xs[0] * xs[1], H = xs[2], W = xs[3], Ho = y.shape()[2], Wo = y.shape()[3];
  std::vector<int64_t> h0(static_cast<size_t>(Ho)), h1(static_cast<size_t>(Ho)), w0(static_cast<size_t>(Wo)),
      w1(static_cast<size_t>(Wo));
  for (int64_t i = 0; i < Ho; ++i)
    h0[static_cast<size_t>(i)] = (i * H) / Ho, h1[static_cast<size_t>(i)] = ((i + 1) * H + Ho - 1) / Ho;
  for (int64_t i = 0; i < Wo; ++i)
    w0[static_cast<size_t>(i)] = (i * W) / Wo, w1[static_cast<size_t>(i)] = ((i + 1) * W + Wo - 1) / Wo;
  visit_dtype(x.dtype(), [&](auto tag) {
    using T = decltype(tag);
    if constexpr (std::is_floating_point_v<T> || std::is_same_v<T, Half> || std::is_same_v<T, BFloat16>) {
      using A = Acc<T>;
      const T* xp = static_cast<const T*>(x.raw_data());
      T* yp = static_cast<T*>(y.raw_data());
      parallel_for(0, planes, std::max<int64_t>(1, 32768 / std::max<int64_t>(1, H * W)), [&](int64_t b, int64_t e) {
        for (int64_t pl = b; pl < e; ++pl) {
          const T* xpl = xp + pl * H * W;
          for (int64_t oh = 0; oh < Ho; ++oh) {
            for (int64_t ow = 0; ow < Wo; ++ow) {
              A s = 0;
              int64_t hs = h0[static_cast<size_t>(oh)], he = h1[static_cast<size_t>(oh)];
              int64_t ws = w0[static_cast<size_t>(ow)], we = w1[static_cast<size_t>(ow)];
              for (int64_t ih = hs; ih < he; ++ih)
                for (int64_t iw = ws; iw < we; ++iw) s += static_cast<A>(xpl[ih * W + iw]);
              yp[(pl * Ho + oh) * Wo + ow] = static_cast<T>(s / static_cast<A>((he - hs) * (we - ws)));
            }
          }
        }
      });
    } else {
      raise<DTypeError>("adaptive_avg_pool2d", "expects a floating-point tensor");
    }
  });
}

}  // namespace

void register_pool_kernels(Backend& b) {
  b.set_kernel(OpId::MaxPool2d, &pool_kernel<true>, kAllDTypes);
  b.set_kernel(OpId::MaxPool2dIndices, &max_indices_kernel, kAllDTypes);
  b.set_kernel(OpId::AvgPool2d, &pool_kernel<false>, kFloatDTypes);
  b.set_kernel(OpId::AdaptiveAvgPool2d, &adaptive_avg_kernel, kFloatDTypes);
}

}  // namespace tessera::cpu
