// Kernels of Conv2d and ConvTranspose2d (NCHW), and registration of the pooling kernels.
//
// Two implementations, chosen per call (figures in docs/cpu_backend.md, measured with
// bench/conv_algorithms.cpp):
//   - oneDNN's convolution / deconvolution primitives (float32): blocked activation layouts
//     chosen by oneDNN, with reorders from and to NCHW around the call; primitives are cached
//     per shape and thread count.
//   - im2col + GEMM (convolution) and GEMM + col2im (transposed convolution), for every float
//     dtype, using the GEMMs of gemm.h; depthwise convolution uses a direct loop instead.
// float16/bfloat16 compute in float32. Bias is not part of the primitive: the public functions
// add it as a broadcast add.
#include <omp.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cstring>
#include <map>
#include <mutex>
#include <optional>
#include <vector>

#include "../../core/dispatch.h"
#include "cpu_backend.h"
#include "elementwise_table.h"
#include "gemm.h"
#include "oneapi/dnnl/dnnl.hpp"
#include "parallel.h"
#include "post_ops.h"
#include "tessera/runtime.h"

namespace tessera::cpu {

void register_pool_kernels(Backend& b);  // pool_kernels.cpp

/// Algorithm override for measurements (bench/conv_algorithms.cpp): 0 = automatic,
/// 1 = im2col/col2im + GEMM, 2 = oneDNN with plain NCHW memory, 3 = oneDNN with blocked memory.
TESSERA_API void conv_force_algorithm(int algo);

namespace {

enum class Algo { Auto = 0, Gemm = 1, DnnlPlain = 2, DnnlBlocked = 3 };
std::atomic<int> g_forced{0};

Tensor contig(const Tensor& t) {
  if (t.is_contiguous()) return t;
  Tensor c;
  detail::execute(OpId::Copy, std::span<const Tensor>(&t, 1), NoAttrs{}, std::span<Tensor>(&c, 1));
  return c;
}
Tensor to_dtype(const Tensor& t, DType d) {
  Tensor c;
  detail::execute(OpId::Cast, std::span<const Tensor>(&t, 1), CastAttrs{d}, std::span<Tensor>(&c, 1));
  return contig(c);
}
// Scratch memory from the caching allocator (no page faults on repeated calls).
Tensor scratch(int64_t n, DType d, Device dev) { return detail::alloc_tensor(std::vector<int64_t>{n}, d, dev); }

// Geometry of one call, in the convolution's own terms: the input x [N, C, H, W], the output y
// [N, O, Ho, Wo]; for the transposed convolution "input" and "output" are as the user sees them.
struct Geom {
  int64_t N, C, H, W, O, kh, kw, Ho, Wo, sh, sw, ph, pw, dh, dw, groups;
  int64_t Cg() const { return C / groups; }
  int64_t Og() const { return O / groups; }
  // One input and one output channel per group (the direct depthwise loop's case).
  bool depthwise() const { return Cg() == 1 && Og() == 1; }
  // 1x1, stride 1, unpadded: each group's input is its GEMM operand as it is (no im2col).
  bool pointwise() const { return kh == 1 && kw == 1 && sh == 1 && sw == 1 && ph == 0 && pw == 0; }
};

Geom make_geom(const KernelCall& c, bool transposed) {
  const auto& a = std::get<ConvAttrs>(c.attrs);
  const Shape &xs = c.in[0].shape(), &ws = c.in[1].shape(), &ys = c.out[0].shape();
  Geom g{xs[0], xs[1],       xs[2],       xs[3],        ys[1],        ws[2],         ws[3],         ys[2],
         ys[3], a.stride[0], a.stride[1], a.padding[0], a.padding[1], a.dilation[0], a.dilation[1], a.groups};
  (void)transposed;
  return g;
}

// ====================================================================== im2col + GEMM
// col[(c, i, j), (oh, ow)] = x[c, oh*sh - ph + i*dh, ow*sw - pw + j*dw] (0 outside), rows [r0, r1).
template <typename T>
void im2col(const T* x, const Geom& g, int64_t r0, int64_t r1, T* col) {
  int64_t P = g.Ho * g.Wo;
  for (int64_t r = r0; r < r1; ++r) {
    int64_t c = r / (g.kh * g.kw), i = (r / g.kw) % g.kh, j = r % g.kw;
    const T* xc = x + c * g.H * g.W;
    T* dst = col + (r - r0) * P;
    // Output columns whose input column is inside [0, W): ow in [ow0, ow1).
    int64_t off = j * g.dw - g.pw;
    int64_t ow0 = off >= 0 ? 0 : std::min(g.Wo, (-off + g.sw - 1) / g.sw);
    int64_t ow1 = g.W - off > 0 ? std::min(g.Wo, (g.W - off + g.sw - 1) / g.sw) : 0;
    ow1 = std::max(ow1, ow0);
    for (int64_t oh = 0; oh < g.Ho; ++oh) {
      int64_t ih = oh * g.sh - g.ph + i * g.dh;
      T* d = dst + oh * g.Wo;
      if (ih < 0 || ih >= g.H) {
        std::fill(d, d + g.Wo, T(0));
        continue;
      }
      const T* xr = xc + ih * g.W + off;
      std::fill(d, d + ow0, T(0));
      if (g.sw == 1) {
        std::memcpy(d + ow0, xr + ow0, static_cast<size_t>(ow1 - ow0) * sizeof(T));
      } else {
        for (int64_t ow = ow0; ow < ow1; ++ow) d[ow] = xr[ow * g.sw];
      }
      std::fill(d + ow1, d + g.Wo, T(0));
    }
  }
}

// Depthwise (one input and one output channel per group): a direct loop over planes
// [q0, q1) of the (image, channel) index. Each plane is first copied into a zero-padded buffer,
// so that outputs are computed 16 columns x R rows at a time in registers (R independent FMA
// chains, all taps accumulated, one store) without bounds checks.
template <typename T, int R>
[[gnu::always_inline]] inline void depthwise_rows(const T* buf, int64_t Wp, const T* tap_w, const int64_t* tap_off,
                                                  int64_t taps, const Geom& g, int64_t oh, T* yp) {
  constexpr int L = 16;
  typedef T Vec __attribute__((vector_size(L * sizeof(T)), aligned(sizeof(T))));
  int64_t row_step = g.sh * Wp, sw = g.sw;
  for (int64_t ow0 = 0; ow0 < g.Wo; ow0 += L) {
    Vec acc[R];
#pragma GCC unroll 4
    for (int r = 0; r < R; ++r) acc[r] = Vec{};
    const T* base = buf + oh * row_step + ow0 * sw;
    if (sw == 1) {
      for (int64_t t = 0; t < taps; ++t) {
        const T* src = base + tap_off[t];
        T wv = tap_w[t];
#pragma GCC unroll 4
        for (int r = 0; r < R; ++r) {
          Vec v;
          std::memcpy(&v, src + r * row_step, sizeof(v));
          acc[r] += wv * v;
        }
      }
    } else {
      for (int64_t t = 0; t < taps; ++t) {
        const T* src = base + tap_off[t];
        T wv = tap_w[t];
#pragma GCC unroll 4
        for (int r = 0; r < R; ++r) {
          Vec v;
          for (int l = 0; l < L; ++l) v[l] = src[r * row_step + l * sw];
          acc[r] += wv * v;
        }
      }
    }
    int64_t n = std::min<int64_t>(L, g.Wo - ow0);
#pragma GCC unroll 4
    for (int r = 0; r < R; ++r) {
      T* yr = yp + (oh + r) * g.Wo + ow0;
      if (n == L) {
        std::memcpy(yr, &acc[r], sizeof(Vec));
      } else {
        for (int64_t l = 0; l < n; ++l) yr[l] = acc[r][l];
      }
    }
  }
}

template <typename T>
[[gnu::always_inline]] inline void depthwise_planes(const T* x, const T* w, T* y, const Geom& g, int64_t q0,
                                                    int64_t q1) {
  int64_t Hp = g.H + 2 * g.ph, Wp = g.W + 2 * g.pw, HW = g.H * g.W, P = g.Ho * g.Wo;
  // Slack after the plane: the last 16-column chunk of a row may read past the padded width.
  std::vector<T> buf(static_cast<size_t>(Hp * Wp + 16 * g.sw + g.kw * g.dw + 1), T(0));
  int64_t taps = g.kh * g.kw;
  std::vector<int64_t> tap_off(static_cast<size_t>(taps));
  for (int64_t i = 0; i < g.kh; ++i)
    for (int64_t j = 0; j < g.kw; ++j) tap_off[static_cast<size_t>(i * g.kw + j)] = i * g.dh * Wp + j * g.dw;
  for (int64_t q = q0; q < q1; ++q) {
    const T* xp = x + q * HW;
    const T* wp = w + (q % g.groups) * taps;
    // Interior rows are fully rewritten for every plane; the zero border stays.
    for (int64_t h = 0; h < g.H; ++h)
      std::copy(xp + h * g.W, xp + (h + 1) * g.W, buf.begin() + static_cast<std::ptrdiff_t>((h + g.ph) * Wp + g.pw));
    T* yp = y + q * P;
    const int64_t* to = tap_off.data();
    int64_t oh = 0;
    for (; oh + 4 <= g.Ho; oh += 4) depthwise_rows<T, 4>(buf.data(), Wp, wp, to, taps, g, oh, yp);
    switch (g.Ho - oh) {
      case 3:
        depthwise_rows<T, 3>(buf.data(), Wp, wp, to, taps, g, oh, yp);
        break;
      case 2:
        depthwise_rows<T, 2>(buf.data(), Wp, wp, to, taps, g, oh, yp);
        break;
      case 1:
        depthwise_rows<T, 1>(buf.data(), Wp, wp, to, taps, g, oh, yp);
        break;
      default:
        break;
    }
  }
}

// One clone per ISA level (the CPU layer is compiled for baseline x86-64).
__attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default"))) void depthwise_f32(
    const float* x, const float* w, float* y, const Geom& g, int64_t q0, int64_t q1) {
  depthwise_planes(x, w, y, g, q0, q1);
}
__attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default"))) void depthwise_f64(
    const double* x, const double* w, double* y, const Geom& g, int64_t q0, int64_t q1) {
  depthwise_planes(x, w, y, g, q0, q1);
}
inline void depthwise(const float* x, const float* w, float* y, const Geom& g, int64_t q0, int64_t q1) {
  depthwise_f32(x, w, y, g, q0, q1);
}
inline void depthwise(const double* x, const double* w, double* y, const Geom& g, int64_t q0, int64_t q1) {
  depthwise_f64(x, w, y, g, q0, q1);
}

template <typename T>
void conv_gemm(const Tensor& xt, const Tensor& wt, const Tensor& yt, const Geom& g) {
  const T* x = static_cast<const T*>(xt.raw_data());
  const T* w = static_cast<const T*>(wt.raw_data());
  T* y = static_cast<T*>(yt.raw_data());
  int64_t Cg = g.Cg(), Og = g.Og(), K = Cg * g.kh * g.kw, P = g.Ho * g.Wo, HW = g.H * g.W;
  int64_t jobs = g.N * g.groups;
  if (g.depthwise()) {
    parallel_for(0, jobs, std::max<int64_t>(1, 16384 / std::max<int64_t>(1, P * K)),
                 [&](int64_t b, int64_t e) { depthwise(x, w, y, g, b, e); });
    return;
  }
  const bool direct = g.pointwise();  // col is x itself
  auto gemm_job = [&](int64_t q, T* col, bool parallel_im2col) {
    int64_t n = q / g.groups, gr = q % g.groups;
    const T* xg = x + (n * g.C + gr * Cg) * HW;
    if (!direct) {
      if (parallel_im2col) {
        parallel_for(0, K, std::max<int64_t>(1, 8192 / std::max<int64_t>(P, 1)),
                     [&](int64_t r0, int64_t r1) { im2col(xg, g, r0, r1, col + r0 * P); });
      } else {
        im2col(xg, g, 0, K, col);
      }
    }
    gemm(false, false, Og, P, K, w + gr * Og * K, K, direct ? xg : col, P, T(0), y + (n * g.O + gr * Og) * P, P);
  };
  int nt = num_threads();
  // Enough independent (image, group) jobs: one per thread with single-threaded GEMMs; else
  // one job at a time with the GEMM parallel inside.
  if (jobs >= 2 * nt || (jobs >= nt && Og * P * K < (int64_t{1} << 22))) {
    Tensor buf = direct ? Tensor() : scratch(nt * K * P, dtype_v<T>, xt.device());
    T* cols = direct ? nullptr : static_cast<T*>(buf.raw_data());
    sync_library_threads();
    bool nested = omp_in_parallel();  // parallel_for then runs inline on this one thread
    parallel_for(0, jobs, 1, [&](int64_t b, int64_t e) {
      int64_t tid = nested ? 0 : omp_get_thread_num();
      T* col = direct ? nullptr : cols + tid * K * P;
      for (int64_t q = b; q < e; ++q) gemm_job(q, col, false);
    });
  } else {
    Tensor buf = direct ? Tensor() : scratch(K * P, dtype_v<T>, xt.device());
    T* col = direct ? nullptr : static_cast<T*>(buf.raw_data());
    for (int64_t q = 0; q < jobs; ++q) gemm_job(q, col, true);
  }
}

// Transposed convolution: col[(o, i, j), (ih, iw)] = sum_c w[c, o, i, j] x[c, ih, iw], then each
// col entry is added to y[o, ih*sh - ph + i*dh, iw*sw - pw + j*dw] when inside the output.
template <typename T>
void col2im_add(const T* col, const Geom& g, int64_t o0, int64_t o1, T* y) {
  int64_t HW = g.H * g.W, kk = g.kh * g.kw;
  for (int64_t o = o0; o < o1; ++o) {
    T* yo = y + o * g.Ho * g.Wo;
    std::fill(yo, yo + g.Ho * g.Wo, T(0));
    for (int64_t i = 0; i < g.kh; ++i) {
      for (int64_t j = 0; j < g.kw; ++j) {
        const T* cr = col + (o * kk + i * g.kw + j) * HW;
        int64_t off = j * g.dw - g.pw;
        // iw with 0 <= iw*sw + off < Wo
        int64_t iw0 = off >= 0 ? 0 : std::min(g.W, (-off + g.sw - 1) / g.sw);
        int64_t iw1 = g.Wo - off > 0 ? std::min(g.W, (g.Wo - off + g.sw - 1) / g.sw) : 0;
        for (int64_t ih = 0; ih < g.H; ++ih) {
          int64_t oh = ih * g.sh - g.ph + i * g.dh;
          if (oh < 0 || oh >= g.Ho) continue;
          T* yr = yo + oh * g.Wo + off;
          const T* c = cr + ih * g.W;
          if (g.sw == 1) {
#pragma omp simd
            for (int64_t iw = iw0; iw < iw1; ++iw) yr[iw] += c[iw];
          } else {
            for (int64_t iw = iw0; iw < iw1; ++iw) yr[iw * g.sw] += c[iw];
          }
        }
      }
    }
  }
}

template <typename T>
void deconv_gemm(const Tensor& xt, const Tensor& wt, const Tensor& yt, const Geom& g) {
  const T* x = static_cast<const T*>(xt.raw_data());
  const T* w = static_cast<const T*>(wt.raw_data());
  T* y = static_cast<T*>(yt.raw_data());
  int64_t Cg = g.Cg(), Og = g.Og(), R = Og * g.kh * g.kw, HW = g.H * g.W, OP = g.Ho * g.Wo;
  int64_t jobs = g.N * g.groups;
  auto job = [&](int64_t q, T* col, bool parallel_inner) {
    int64_t n = q / g.groups, gr = q % g.groups;
    // w_g is [Cg, R] row-major: col [R, HW] = w_g^T x_g.
    gemm(true, false, R, HW, Cg, w + gr * Cg * R, R, x + (n * g.C + gr * Cg) * HW, HW, T(0), col, HW);
    T* yg = y + (n * g.O + gr * Og) * OP;
    if (parallel_inner) {
      parallel_for(0, Og, 1, [&](int64_t o0, int64_t o1) { col2im_add(col, g, o0, o1, yg); });
    } else {
      col2im_add(col, g, 0, Og, yg);
    }
  };
  int nt = num_threads();
  if (jobs >= 2 * nt || (jobs >= nt && R * HW * Cg < (int64_t{1} << 22))) {
    Tensor buf = scratch(nt * R * HW, dtype_v<T>, xt.device());
    T* cols = static_cast<T*>(buf.raw_data());
    sync_library_threads();
    bool nested = omp_in_parallel();  // parallel_for then runs inline on this one thread
    parallel_for(0, jobs, 1, [&](int64_t b, int64_t e) {
      int64_t tid = nested ? 0 : omp_get_thread_num();
      T* col = cols + tid * R * HW;
      for (int64_t q = b; q < e; ++q) job(q, col, false);
    });
  } else {
    Tensor buf = scratch(R * HW, dtype_v<T>, xt.device());
    for (int64_t q = 0; q < jobs; ++q) job(q, static_cast<T*>(buf.raw_data()), true);
  }
}

// ============================================================================ oneDNN
const dnnl::engine& dnnl_engine() {
  static const dnnl::engine eng(dnnl::engine::kind::cpu, 0);
  return eng;
}

struct DnnlKey {
  std::array<int64_t, 16> geom;
  bool transposed;
  int algo, threads;
  std::string post_ops;  // PostOps::key ("" = none)
  auto tie() const { return std::tie(geom, transposed, algo, threads, post_ops); }
  bool operator<(const DnnlKey& o) const { return tie() < o.tie(); }
};

// A cached primitive with the reorders that bring NCHW data into its layouts and back.
struct DnnlConv {
  dnnl::primitive prim;
  dnnl::memory::desc user_src, user_wei, user_dst;  // the NCHW / PyTorch layouts
  dnnl::memory::desc src, wei, dst;                 // what the primitive wants
  std::optional<dnnl::reorder> src_in, wei_in, dst_out;
};

std::optional<DnnlConv> make_dnnl_conv(const Geom& g, bool transposed, Algo algo, const PostOps* post) {
  using md = dnnl::memory::desc;
  using dt = dnnl::memory::data_type;
  using tag = dnnl::memory::format_tag;
  DnnlConv d;
  d.user_src = md({g.N, g.C, g.H, g.W}, dt::f32, tag::nchw);
  d.user_dst = md({g.N, g.O, g.Ho, g.Wo}, dt::f32, tag::nchw);
  int64_t kk = g.kh * g.kw;
  if (!transposed) {
    // PyTorch [O, C/g, kh, kw] is oneDNN's oihw, or goihw split into groups.
    if (g.groups == 1)
      d.user_wei = md({g.O, g.C, g.kh, g.kw}, dt::f32, tag::oihw);
    else
      d.user_wei = md({g.groups, g.Og(), g.Cg(), g.kh, g.kw}, dt::f32, tag::goihw);
  } else {
    // PyTorch [C, O/g, kh, kw] = (g, i, o, h, w); oneDNN wants (g, o, i, h, w): a strided view.
    if (g.groups == 1)
      d.user_wei = md({g.O, g.C, g.kh, g.kw}, dt::f32, {kk, g.O * kk, g.kw, 1});
    else
      d.user_wei =
          md({g.groups, g.Og(), g.Cg(), g.kh, g.kw}, dt::f32, {g.Cg() * g.Og() * kk, kk, g.Og() * kk, g.kw, 1});
  }
  bool blocked = algo == Algo::DnnlBlocked;
  md src = blocked ? md(d.user_src.dims(), dt::f32, tag::any) : d.user_src;
  md dst = blocked ? md(d.user_dst.dims(), dt::f32, tag::any) : d.user_dst;
  md wei = md(d.user_wei.dims(), dt::f32, tag::any);
  // Padding on the high side: oneDNN checks (in - extent + pad_l + pad_r) / stride + 1 == out with
  // floor division, which PyTorch's symmetric padding satisfies (minus output_padding beyond a stride).
  dnnl::memory::dims strides{g.sh, g.sw}, dil{g.dh - 1, g.dw - 1}, pl{g.ph, g.pw}, pr{g.ph, g.pw};
  try {
    if (!transposed) {
      dnnl::convolution_forward::desc desc(dnnl::prop_kind::forward_inference, dnnl::algorithm::convolution_direct, src,
                                           wei, dst, strides, dil, pl, pr);
      dnnl::convolution_forward::primitive_desc pd =
          post ? dnnl::convolution_forward::primitive_desc(desc, post->attr, dnnl_engine())
               : dnnl::convolution_forward::primitive_desc(desc, dnnl_engine());
      if (post && is_reference_impl(pd)) return std::nullopt;  // unfused is faster than a reference kernel
      d.prim = dnnl::convolution_forward(pd);
      d.src = pd.src_desc(), d.wei = pd.weights_desc(), d.dst = pd.dst_desc();
    } else {
      int64_t oph = g.Ho - ((g.H - 1) * g.sh - 2 * g.ph + (g.kh - 1) * g.dh + 1);
      int64_t opw = g.Wo - ((g.W - 1) * g.sw - 2 * g.pw + (g.kw - 1) * g.dw + 1);
      if (oph >= g.sh) pr[0] -= oph;
      if (opw >= g.sw) pr[1] -= opw;
      dnnl::deconvolution_forward::desc desc(dnnl::prop_kind::forward_inference, dnnl::algorithm::deconvolution_direct,
                                             src, wei, dst, strides, dil, pl, pr);
      dnnl::deconvolution_forward::primitive_desc pd(desc, dnnl_engine());
      d.prim = dnnl::deconvolution_forward(pd);
      d.src = pd.src_desc(), d.wei = pd.weights_desc(), d.dst = pd.dst_desc();
    }
    const dnnl::engine& e = dnnl_engine();
    if (d.src != d.user_src) d.src_in = dnnl::reorder(dnnl::reorder::primitive_desc(e, d.user_src, e, d.src));
    if (d.wei != d.user_wei) d.wei_in = dnnl::reorder(dnnl::reorder::primitive_desc(e, d.user_wei, e, d.wei));
    if (d.dst != d.user_dst) d.dst_out = dnnl::reorder(dnnl::reorder::primitive_desc(e, d.dst, e, d.user_dst));
  } catch (const dnnl::error&) {
    return std::nullopt;  // configuration oneDNN does not implement: the caller falls back to GEMM
  }
  return d;
}

// nullopt when oneDNN cannot run this configuration. Returned by value (the handles are
// reference counted) so that a cache clear by another thread cannot free it under the caller.
std::optional<DnnlConv> dnnl_conv(const Geom& g, bool transposed, Algo algo, const PostOps* post) {
  static std::mutex mu;
  static std::map<DnnlKey, std::optional<DnnlConv>> cache;
  DnnlKey key{{g.N, g.C, g.H, g.W, g.O, g.kh, g.kw, g.Ho, g.Wo, g.sh, g.sw, g.ph, g.pw, g.dh, g.dw, g.groups},
              transposed,
              static_cast<int>(algo),
              get_num_threads(),
              post ? post->key : std::string()};
  std::lock_guard<std::mutex> lock(mu);
  auto it = cache.find(key);
  if (it == cache.end()) {
    if (cache.size() >= 256) cache.clear();
    it = cache.emplace(key, make_dnnl_conv(g, transposed, algo, post)).first;
  }
  return it->second;
}

bool run_dnnl(const Tensor& x, const Tensor& w, const Tensor& y, const Geom& g, bool transposed, Algo algo,
              const PostOps* post = nullptr) {
  sync_library_threads();
  std::optional<DnnlConv> d = dnnl_conv(g, transposed, algo, post);
  if (!d) return false;
  const dnnl::engine& eng = dnnl_engine();
  dnnl::stream strm(eng);
  auto mem = [&](const dnnl::memory::desc& m, void* ptr) { return dnnl::memory(m, eng, ptr); };
  auto buffer = [&](const dnnl::memory::desc& m) {
    return scratch(static_cast<int64_t>(m.get_size()), DType::UInt8, x.device());
  };
  dnnl::memory usrc = mem(d->user_src, x.raw_data()), uwei = mem(d->user_wei, w.raw_data()),
               udst = mem(d->user_dst, y.raw_data());
  Tensor bs, bw, bd;
  dnnl::memory src = usrc, wei = uwei, dst = udst;
  if (d->src_in) {
    bs = buffer(d->src);
    src = mem(d->src, bs.raw_data());
    d->src_in->execute(strm, usrc, src);
  }
  if (d->wei_in) {
    bw = buffer(d->wei);
    wei = mem(d->wei, bw.raw_data());
    d->wei_in->execute(strm, uwei, wei);
  }
  if (d->dst_out) {
    bd = buffer(d->dst);
    dst = mem(d->dst, bd.raw_data());
  }
  std::unordered_map<int, dnnl::memory> args{{DNNL_ARG_SRC, src}, {DNNL_ARG_WEIGHTS, wei}, {DNNL_ARG_DST, dst}};
  if (post) add_post_op_args(*post, eng, args);
  d->prim.execute(strm, args);
  if (d->dst_out) d->dst_out->execute(strm, dst, udst);
  strm.wait();
  return true;
}

// The automatic choice for float32, from the measurements in docs/cpu_backend.md (2 threads, Zen 4):
// oneDNN's blocked layouts win on 3x3 / dilated / grouped / 7x7 convolutions and overlapping
// transposed ones; its reorders cost more than they gain on 1x1 and strided convolutions with many
// channels and on non-overlapping transposed ones, where im2col/col2im + GEMM wins; the direct
// depthwise loop beats both oneDNN variants; tiny inputs go to oneDNN on plain NCHW memory.
Algo choose_algo(const Geom& g, bool transposed) {
  bool unit_dilation = g.dh == 1 && g.dw == 1;
  if (!transposed) {
    if (g.depthwise()) return Algo::Gemm;                   // the direct loop
    if (g.pointwise() && g.groups == 1) return Algo::Gemm;  // one GEMM per image, no im2col
    if (g.groups == 1 && (g.sh > 1 || g.sw > 1) && g.C >= 32 && unit_dilation) return Algo::Gemm;
    if (g.N * g.C * g.H * g.W <= 4096) return Algo::DnnlPlain;
    return Algo::DnnlBlocked;
  }
  if (g.kh == g.sh && g.kw == g.sw && unit_dilation) return Algo::Gemm;  // windows do not overlap
  return Algo::DnnlBlocked;
}

// The algorithm for a call: the forced one (conv_force_algorithm), else the automatic choice.
Algo pick_algo(const Geom& g, bool transposed) {
  const int forced = g_forced.load();
  return forced ? static_cast<Algo>(forced) : choose_algo(g, transposed);
}

// ============================================================================ kernels
void conv_common(const KernelCall& c, bool transposed) {
  const Tensor& y = c.out[0];
  if (y.numel() == 0) return;
  Geom g = make_geom(c, transposed);
  if (g.C == 0 || (transposed && g.H * g.W == 0)) {  // empty sums
    std::memset(y.raw_data(), 0, static_cast<size_t>(y.numel()) * y.itemsize());
    return;
  }
  DType dt = y.dtype();
  if (dt == DType::Float16 || dt == DType::BFloat16) {
    Tensor y32 = detail::alloc_tensor(y.shape(), DType::Float32, y.device());
    Tensor x32 = to_dtype(c.in[0], DType::Float32), w32 = to_dtype(c.in[1], DType::Float32);
    Algo algo = pick_algo(g, transposed);
    if (algo == Algo::Gemm || !run_dnnl(x32, w32, y32, g, transposed, algo)) {
      if (transposed)
        deconv_gemm<float>(x32, w32, y32, g);
      else
        conv_gemm<float>(x32, w32, y32, g);
    }
    const float* src = y32.data<float>();
    visit_dtype(dt, [&](auto tag) {
      using T = decltype(tag);
      if constexpr (std::is_same_v<T, Half> || std::is_same_v<T, BFloat16>) {
        T* dst = static_cast<T*>(y.raw_data());
        parallel_for(0, y.numel(), kElementwiseGrain, [&](int64_t b, int64_t e) {
          for (int64_t i = b; i < e; ++i) dst[i] = T(src[i]);
        });
      }
    });
    return;
  }
  Tensor x = contig(c.in[0]), w = contig(c.in[1]);
  if (dt == DType::Float32) {
    Algo algo = pick_algo(g, transposed);
    if (algo != Algo::Gemm && run_dnnl(x, w, y, g, transposed, algo)) return;
    if (transposed)
      deconv_gemm<float>(x, w, y, g);
    else
      conv_gemm<float>(x, w, y, g);
  } else {
    if (transposed)
      deconv_gemm<double>(x, w, y, g);
    else
      conv_gemm<double>(x, w, y, g);
  }
}

void conv2d_kernel(const KernelCall& c) { conv_common(c, false); }
void conv_transpose2d_kernel(const KernelCall& c) { conv_common(c, true); }

}  // namespace

void conv_force_algorithm(int algo) { g_forced.store(algo); }

namespace {

// One epilogue step applied to an output plane (one image's channel) with the elementwise
// table's inner loop, the loop the fused pass after an unfused convolution would run, so the
// values are the same bit for bit. The operand: none (unary), a scalar or per-channel value (read
// at stride 0), or the plane of a full tensor.
struct PlaneStep {
  InnerLoop loop = nullptr;
  enum class Kind : uint8_t { Unary, Scalar, Channel, Full } kind = Kind::Unary;
  const char* data = nullptr;
};

// Whether shape, right-aligned with [N, O, Ho, Wo], has O entries along the channel axis only.
bool per_channel(const Shape& shape, int64_t channels) {
  const size_t r = shape.size();
  if (r < 3 || r > 4 || shape[r - 3] != channels) return false;
  for (size_t d = 0; d < r; ++d)
    if (d != r - 3 && shape[d] != 1) return false;
  return true;
}

// The epilogue as plane steps for a float32 [N, O, Ho, Wo] output, or false when a step has no
// float32 loop or an operand is not one of those forms.
bool plane_steps(const graph::Epilogue& e, std::span<const Tensor> in, const Tensor& out, std::vector<PlaneStep>& ps) {
  const ElementwiseTable& table = elementwise_table();
  const int64_t channels = out.shape()[1];
  for (const graph::EpilogueStep& st : e.steps) {
    PlaneStep p;
    p.loop = table.loops[static_cast<int>(st.op)][static_cast<int>(DType::Float32)];
    if (!p.loop) return false;
    if (st.operand >= 0) {
      if (static_cast<size_t>(st.operand) >= in.size()) return false;
      const Tensor& t = in[static_cast<size_t>(st.operand)];
      if (t.dtype() != DType::Float32 || !t.is_contiguous()) return false;
      p.data = static_cast<const char*>(t.raw_data());
      if (t.numel() == 1)
        p.kind = PlaneStep::Kind::Scalar;
      else if (t.shape() == out.shape())
        p.kind = PlaneStep::Kind::Full;
      else if (per_channel(t.shape(), channels))
        p.kind = PlaneStep::Kind::Channel;
      else
        return false;
    }
    ps.push_back(p);
  }
  return true;
}

// Runs the steps in place over elements [j0, j0 + len) of plane q (P elements at y + q * P, of
// channel q % channels).
void run_plane_steps(const std::vector<PlaneStep>& ps, float* y, int64_t q, int64_t P, int64_t channels, int64_t j0 = 0,
                     int64_t len = -1) {
  constexpr int64_t f = sizeof(float);
  if (len < 0) len = P;
  ElementwiseFlags flags;
  char* plane = reinterpret_cast<char*>(y + q * P + j0);
  for (const PlaneStep& p : ps) {
    char* ptrs[3] = {plane, plane, nullptr};
    int64_t strides[3] = {f, f, 0};
    switch (p.kind) {
      case PlaneStep::Kind::Unary:
        break;
      case PlaneStep::Kind::Scalar:
        ptrs[2] = const_cast<char*>(p.data);
        break;
      case PlaneStep::Kind::Channel:
        ptrs[2] = const_cast<char*>(p.data) + (q % channels) * f;
        break;
      case PlaneStep::Kind::Full:
        ptrs[2] = const_cast<char*>(p.data) + (q * P + j0) * f;
        strides[2] = f;
        break;
    }
    p.loop(ptrs, strides, len, &flags);
  }
}

// A convolution's float32 input and weight (contiguous), its output and its epilogue as plane steps.
struct EpilogueOperands {
  std::vector<PlaneStep> steps;
  Tensor x, w;
  const float *xp = nullptr, *wp = nullptr;
  float* y = nullptr;
  // nullopt when the epilogue cannot run as plane steps.
  static std::optional<EpilogueOperands> make(const graph::Epilogue& e, std::span<const Tensor> in, const Tensor& out) {
    EpilogueOperands op;
    if (!plane_steps(e, in, out, op.steps)) return std::nullopt;
    op.x = contig(in[0]);
    op.w = contig(in[1]);
    op.xp = op.x.data<float>();
    op.wp = op.w.data<float>();
    op.y = static_cast<float*>(out.raw_data());
    return op;
  }
};

// A float32 depthwise convolution (the direct loop) with the whole epilogue applied to each output
// plane right after it is computed, while it is in cache: returns the steps fused, or -1.
int depthwise_with_epilogue(const Geom& g, const graph::Epilogue& e, std::span<const Tensor> in, const Tensor& out) {
  auto op = EpilogueOperands::make(e, in, out);
  if (!op) return -1;
  const float *xp = op->xp, *wp = op->wp;
  float* y = op->y;
  const std::vector<PlaneStep>& ps = op->steps;
  const int64_t P = g.Ho * g.Wo, K = g.kh * g.kw;
  // Planes in runs of up to ~64 KiB of output, each run's epilogue right after it.
  const int64_t run = std::max<int64_t>(1, 16384 / std::max<int64_t>(1, P));
  parallel_for(0, g.N * g.groups, std::max<int64_t>(1, 16384 / std::max<int64_t>(1, P * K)),
               [&](int64_t b, int64_t end) {
                 for (int64_t q0 = b; q0 < end; q0 += run) {
                   const int64_t q1 = std::min(end, q0 + run);
                   depthwise(xp, wp, y, g, q0, q1);
                   for (int64_t q = q0; q < q1; ++q) run_plane_steps(ps, y, q, P, g.O);
                 }
               });
  return static_cast<int>(e.steps.size());
}

// A float32 1x1 convolution (stride 1, no padding, one group) whose output per image exceeds the
// L2 cache: per image Y[O, HW] = W[O, C] X[C, HW] in blocks of columns (about 128 KiB of output
// each), the epilogue applied to a block's rows right after its GEMM instead of in a second pass
// over the whole output. Smaller outputs stay in cache for that pass, and there one GEMM per
// image is faster than blocks (MobileNetV2's 576 x 196 output: 0.16 -> 0.23 ms per call). Returns
// the steps fused, or -1.
int pointwise_with_epilogue(const Geom& g, const graph::Epilogue& e, std::span<const Tensor> in, const Tensor& out) {
  if (g.O * g.H * g.W < (int64_t{1} << 18)) return -1;
  auto op = EpilogueOperands::make(e, in, out);
  if (!op) return -1;
  const float *xp = op->xp, *wp = op->wp;
  float* y = op->y;
  const std::vector<PlaneStep>& ps = op->steps;
  const int64_t P = g.H * g.W, cols = std::min(P, std::max<int64_t>(64, 32768 / std::max<int64_t>(1, g.O) / 16 * 16));
  const int64_t blocks = (P + cols - 1) / cols;
  sync_library_threads();
  parallel_for(0, g.N * blocks, 1, [&](int64_t b, int64_t end) {
    for (int64_t job = b; job < end; ++job) {
      const int64_t n = job / blocks, j0 = job % blocks * cols, len = std::min(cols, P - j0);
      gemm(false, false, g.O, len, g.C, wp, g.C, xp + n * g.C * P + j0, P, 0.f, y + n * g.O * P + j0, P);
      for (int64_t o = 0; o < g.O; ++o) run_plane_steps(ps, y, n * g.O + o, P, g.O, j0, len);
    }
  });
  return static_cast<int>(e.steps.size());
}

}  // namespace

// A float32 convolution with a graph-mode epilogue (epilogue.h): oneDNN's with the steps up to its
// first full-size operand as post-ops, or the depthwise loop with every step applied per output
// plane, or a 1x1 convolution's GEMM in column blocks with the steps applied per block. Returns
// the steps fused, or -1 when eager's kernel should run instead.
int conv2d_with_post_ops(const Attrs& attrs, const graph::Epilogue& e, std::span<const Tensor> in, const Tensor& out) {
  if (in[0].dtype() != DType::Float32 || in[1].dtype() != DType::Float32) return -1;
  Tensor y = out;
  const KernelCall call{OpId::Conv2d, in.first(2), std::span<Tensor>(&y, 1), attrs};
  const Geom g = make_geom(call, false);
  if (g.C == 0) return -1;
  const Algo algo = pick_algo(g, false);
  if (algo == Algo::Gemm && out.is_contiguous()) {
    if (g.depthwise()) return depthwise_with_epilogue(g, e, in, out);
    if (g.pointwise() && g.groups == 1) return pointwise_with_epilogue(g, e, in, out);
  }
  if (algo == Algo::Gemm) return -1;
  const PostOps po = make_post_ops(e, in, {g.N, g.O, g.Ho, g.Wo}, 1, false);
  if (po.steps == 0) return -1;
  return run_dnnl(contig(in[0]), contig(in[1]), y, g, false, algo, &po) ? po.steps : -1;
}

void register_conv_kernels(Backend& b) {
  b.set_kernel(OpId::Conv2d, &conv2d_kernel, kFloatDTypes);
  b.set_kernel(OpId::ConvTranspose2d, &conv_transpose2d_kernel, kFloatDTypes);
  register_pool_kernels(b);
}

}  // namespace tessera::cpu
