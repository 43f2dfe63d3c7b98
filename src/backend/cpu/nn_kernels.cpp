// Fused kernels of softmax, log_softmax, layer_norm and rms_norm.
//
// Rows: every kernel works on rows, the softmax axis or the trailing normalized axes flattened.
// A row whose elements are one stride apart is read in place, wherever the rows themselves sit
// (slices, offsets, expanded outer axes); other layouts are first copied with the elementwise copy
// loop. Each row takes two or three passes while it is hot in L1: softmax = max, exp + sum, scale;
// layer_norm = sum, centered sum of squares, normalize. Rows run in parallel; the next row is
// prefetched during the compute-bound passes, and norm outputs larger than the last-level cache
// are written with non-temporal stores. Rows of >= kLongRow elements are cut into chunks that run in
// parallel in two phases (see "long rows").
//
// Accuracy: float32 partial sums run in SIMD lanes over blocks of kBlock elements and are folded
// into a double, so long rows keep accurate statistics at float32 speed; layer_norm's variance is
// the two-pass centered form with the first-pass mean corrected, stable for inputs far from zero.
// float16/bfloat16 rows are converted to a float32 scratch row; float64 computes in double.
//
// Softmax over a non-last axis runs a column kernel on the contiguous [outer, n, inner] data,
// vectorized over a block of inner positions.
//
// ISA: the loops are compiled three times (x86-64 baseline, AVX2, AVX-512) by thin wrappers with
// target attributes that inline (flatten) the shared templates; the wrapper set matching the
// elementwise ISA is picked at run time. exp is an inlined AVX-512 polynomial for float32 on
// AVX-512, libmvec's vector exp (through vec_math.h) otherwise.
//
// GCC 12 reports its own AVX-512 intrinsics (the _mm512_undefined_ps() pass-through of the unmasked
// forms) as maybe-uninitialized once inlined (GCC bug 105593); the warning is silenced for this file.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <memory>
#include <string>
#include <type_traits>
#include <vector>

#include "cpu_backend.h"
#include "elementwise.h"
#include "elementwise_table.h"
#include "parallel.h"
#include "tessera/ops.h"
#include "vec_math.h"

namespace tessera::cpu {

namespace {

enum class Kind { Softmax, LogSoftmax, LayerNorm, RmsNorm };

template <typename T>
using compute_t = std::conditional_t<std::is_same_v<T, double>, double, float>;

// Float32 lane sums are folded into double every kBlock elements.
constexpr int64_t kBlock = 512;

inline float vexp(float x) { return ::expf(x); }
inline double vexp(double x) { return ::exp(x); }

// ----------------------------------------------------------------- row maths
// Prefetches the lines of [p, p + n) into L2 (p may be null). Issued a block at a time while a
// compute-bound pass runs on the current row, so the next row's memory traffic overlaps it.
// (An asm statement: GCC deletes a loop of __builtin_prefetch calls as free of side effects, so the
// builtin version silently compiled to nothing.)
template <typename C>
inline void prefetch_block(const C* p, int64_t n) {
  if (!p) return;
  const char* c = reinterpret_cast<const char*>(p);
  for (int64_t off = 0; off < n * static_cast<int64_t>(sizeof(C)); off += 64) {
#if defined(__x86_64__)
    asm volatile("prefetcht1 %0" : : "m"(*(c + off)));
#else
    __builtin_prefetch(c + off, 0, 2);
#endif
  }
}

// Max of a row (NaNs are skipped: they poison the sum later anyway). Eight independent vector
// accumulators, because one vmaxps chain is latency-bound at a third of the load throughput.
template <typename C>
inline C row_max(const C* x, int64_t n) {
  constexpr int64_t kLanes = 64 / sizeof(C) * 8;
  C acc[kLanes];
  for (int64_t i = 0; i < kLanes; ++i) acc[i] = -std::numeric_limits<C>::infinity();
  int64_t k = 0;
  for (; k + kLanes <= n; k += kLanes) {
#pragma omp simd
    for (int64_t i = 0; i < kLanes; ++i) acc[i] = x[k + i] > acc[i] ? x[k + i] : acc[i];
  }
  C m = -std::numeric_limits<C>::infinity();
  for (; k < n; ++k) m = x[k] > m ? x[k] : m;
#pragma omp simd reduction(max : m)
  for (int64_t i = 0; i < kLanes; ++i) m = acc[i] > m ? acc[i] : m;
  return m;
}

// exp for float32 lanes with AVX-512: n = round(x log2 e), r = x - n ln 2 (two-step Cody-Waite),
// exp(r) by the Cephes degree-5 polynomial, then vscalefps(p, n) = p * 2^n, which also gives inf/0
// on overflow/underflow. Max error ~1.3 ulp on normal results (libmvec's is ~1 ulp) at ~1.5x its
// speed, and inlined. The clamp keeps -inf - (-inf) out of the reduction; NaN propagates (maxps
// returns its second operand when either is NaN).
__attribute__((target("avx512f"))) inline __m512 exp_avx512(__m512 x) {
  x = _mm512_max_ps(_mm512_set1_ps(-104.0f), x);
  x = _mm512_min_ps(_mm512_set1_ps(89.0f), x);
  const __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)),
                                        _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693359375f), x);
  r = _mm512_fnmadd_ps(n, _mm512_set1_ps(-2.12194440e-4f), r);
  __m512 p = _mm512_set1_ps(1.9875691500e-4f);
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.3981999507e-3f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(8.3334519073e-3f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(4.1665795894e-2f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.6666665459e-1f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(5.0000001201e-1f));
  p = _mm512_fmadd_ps(p, _mm512_mul_ps(r, r), _mm512_add_ps(r, _mm512_set1_ps(1.0f)));
  return _mm512_scalef_ps(p, n);
}

// sum_k exp(x[k] - m), also storing the terms to y when Store; float lanes per kBlock block, the
// block sums in double. Two vectors per step so the two dependency chains overlap.
template <bool Store>
__attribute__((target("avx512f"))) inline double exp_sum_avx512(const float* x, float* y, int64_t n, float m,
                                                                const float* next) {
  const __m512 vm = _mm512_set1_ps(m);
  double s = 0;
  for (int64_t b = 0; b < n; b += kBlock) {
    const int64_t e = std::min(n, b + kBlock);
    prefetch_block(next ? next + b : nullptr, e - b);
    __m512 s0 = _mm512_setzero_ps(), s1 = _mm512_setzero_ps();
    int64_t k = b;
    for (; k + 32 <= e; k += 32) {
      __m512 v0 = exp_avx512(_mm512_sub_ps(_mm512_loadu_ps(x + k), vm));
      __m512 v1 = exp_avx512(_mm512_sub_ps(_mm512_loadu_ps(x + k + 16), vm));
      if constexpr (Store) {
        _mm512_storeu_ps(y + k, v0);
        _mm512_storeu_ps(y + k + 16, v1);
      }
      s0 = _mm512_add_ps(s0, v0);
      s1 = _mm512_add_ps(s1, v1);
    }
    for (; k < e; k += 16) {
      const __mmask16 mask = static_cast<__mmask16>(e - k >= 16 ? 0xffff : (1u << (e - k)) - 1);
      __m512 v = exp_avx512(_mm512_sub_ps(_mm512_maskz_loadu_ps(mask, x + k), vm));
      if constexpr (Store) _mm512_mask_storeu_ps(y + k, mask, v);
      s0 = _mm512_mask_add_ps(s0, mask, s0, v);
    }
    s += static_cast<double>(_mm512_reduce_add_ps(_mm512_add_ps(s0, s1)));
  }
  return s;
}

// sum_k exp(x[k] - m), storing the terms to y when Store.
template <typename C, bool Store, int Isa>
inline double exp_sum(const C* x, C* y, int64_t n, C m, const C* next) {
  if constexpr (Isa == 2 && std::is_same_v<C, float>) {
    return exp_sum_avx512<Store>(x, y, n, m, next);
  } else {
    double s = 0;
    for (int64_t b = 0; b < n; b += kBlock) {
      const int64_t e = std::min(n, b + kBlock);
      prefetch_block(next ? next + b : nullptr, e - b);
      C bs = 0;
      if constexpr (Store) {
#pragma omp simd reduction(+ : bs)
        for (int64_t k = b; k < e; ++k) {
          C v = vexp(x[k] - m);
          y[k] = v;
          bs += v;
        }
      } else {
#pragma omp simd reduction(+ : bs)
        for (int64_t k = b; k < e; ++k) bs += vexp(x[k] - m);
      }
      s += static_cast<double>(bs);
    }
    return s;
  }
}

// The last pass of softmax (y = y * f, y holding the exp terms) or log_softmax (y = (x - m) - f
// with f = log(sum): exact subtraction first, so large-magnitude rows keep their precision).
template <typename C, bool Log>
inline void softmax_apply(const C* x, C* y, int64_t n, C m, C f) {
  if constexpr (Log) {
#pragma omp simd
    for (int64_t k = 0; k < n; ++k) y[k] = (x[k] - m) - f;
  } else {
#pragma omp simd
    for (int64_t k = 0; k < n; ++k) y[k] *= f;
  }
}

// y = exp(x - m) * f: the last pass of softmax when the exp terms were not kept (long rows).
template <typename C, int Isa>
inline void exp_scale(const C* x, C* y, int64_t n, C m, C f);
__attribute__((target("avx512f"))) inline void exp_scale_avx512(const float* x, float* y, int64_t n, float m, float f) {
  const __m512 vm = _mm512_set1_ps(m), vf = _mm512_set1_ps(f);
  for (int64_t k = 0; k < n; k += 16) {
    const __mmask16 mask = static_cast<__mmask16>(n - k >= 16 ? 0xffff : (1u << (n - k)) - 1);
    __m512 v = exp_avx512(_mm512_sub_ps(_mm512_maskz_loadu_ps(mask, x + k), vm));
    _mm512_mask_storeu_ps(y + k, mask, _mm512_mul_ps(v, vf));
  }
}
template <typename C, int Isa>
inline void exp_scale(const C* x, C* y, int64_t n, C m, C f) {
  if constexpr (Isa == 2 && std::is_same_v<C, float>) {
    exp_scale_avx512(x, y, n, m, f);
  } else {
#pragma omp simd
    for (int64_t k = 0; k < n; ++k) y[k] = vexp(x[k] - m) * f;
  }
}

template <typename C, bool Log, int Isa>
inline void softmax_row(const C* x, C* y, int64_t n, const C* next) {
  const C m = row_max(x, n);
  // A row of -inf gives m = -inf and exp(NaN) = NaN everywhere, like PyTorch.
  const double s = exp_sum<C, !Log, Isa>(x, y, n, m, next);
  softmax_apply<C, Log>(x, y, n, m, static_cast<C>(Log ? std::log(s) : 1.0 / s));
}

template <typename C>
inline double row_sum(const C* x, int64_t n) {
  double s = 0;
  for (int64_t b = 0; b < n; b += kBlock) {
    const int64_t e = std::min(n, b + kBlock);
    C bs = 0;
#pragma omp simd reduction(+ : bs)
    for (int64_t k = b; k < e; ++k) bs += x[k];
    s += static_cast<double>(bs);
  }
  return s;
}

template <typename C>
inline double row_sum_sq(const C* x, int64_t n) {
  double s = 0;
  for (int64_t b = 0; b < n; b += kBlock) {
    const int64_t e = std::min(n, b + kBlock);
    C bs = 0;
#pragma omp simd reduction(+ : bs)
    for (int64_t k = b; k < e; ++k) bs += x[k] * x[k];
    s += static_cast<double>(bs);
  }
  return s;
}

// Row statistics of layer_norm: the mean as hi + lo (hi exactly representable in C, lo a small
// double) and m2 = sum (x - mean)^2. Two passes: a first mean, then the centered sums, which also
// measure that mean's error (sum of d) and correct it. With |mean| >> std (inputs around 1e4, say)
// x - hi is exact and the small lo is applied after it, so the centered values keep full precision
// (beyond a double mean's, for float64). For rms_norm, m2 = sum x^2 and the mean is 0.
template <typename C, bool Rms>
inline void norm_stats(const C* x, int64_t n, const C* next, double& hi, double& lo, double& m2) {
  if constexpr (Rms) {
    hi = lo = 0;
    m2 = row_sum_sq(x, n);
    prefetch_block(next, n);
  } else {
    const double dn = static_cast<double>(n);
    const double mean0 = row_sum(x, n) / dn;
    const C h = static_cast<C>(mean0), l = static_cast<C>(mean0 - static_cast<double>(h));
    double sd = 0, sq = 0;
    for (int64_t b = 0; b < n; b += kBlock) {
      const int64_t e = std::min(n, b + kBlock);
      prefetch_block(next ? next + b : nullptr, e - b);
      C bd = 0, bq = 0;
#pragma omp simd reduction(+ : bd, bq)
      for (int64_t k = b; k < e; ++k) {
        C d = (x[k] - h) - l;
        bd += d;
        bq += d * d;
      }
      sd += static_cast<double>(bd);
      sq += static_cast<double>(bq);
    }
    hi = static_cast<double>(h);
    lo = static_cast<double>(l) + sd / dn;
    m2 = std::max(0.0, sq - sd * sd / dn);
  }
}

// y = ((x - hi) - lo) * rstd * w + b; w, b may be null.
template <typename C>
inline void norm_apply(const C* x, C* y, int64_t n, double mean_hi, double mean_lo, double var, double eps, const C* w,
                       const C* bias) {
  const C hi = static_cast<C>(mean_hi), lo = static_cast<C>(mean_lo);
  const C rs = static_cast<C>(1.0 / std::sqrt(var + eps));
  if (w && bias) {
#pragma omp simd
    for (int64_t k = 0; k < n; ++k) y[k] = ((x[k] - hi) - lo) * rs * w[k] + bias[k];
  } else if (w) {
#pragma omp simd
    for (int64_t k = 0; k < n; ++k) y[k] = ((x[k] - hi) - lo) * rs * w[k];
  } else if (bias) {
#pragma omp simd
    for (int64_t k = 0; k < n; ++k) y[k] = ((x[k] - hi) - lo) * rs + bias[k];
  } else {
#pragma omp simd
    for (int64_t k = 0; k < n; ++k) y[k] = ((x[k] - hi) - lo) * rs;
  }
}

template <typename C, bool Rms>
inline void norm_row(const C* x, C* y, int64_t n, const C* w, const C* bias, double eps, const C* next) {
  double hi, lo, m2;
  norm_stats<C, Rms>(x, n, next, hi, lo, m2);
  norm_apply(x, y, n, hi, lo, m2 / static_cast<double>(n), eps, w, bias);
}

// ------------------------------------------------------------------ row jobs
// Row r of the input starts at element offset(r) (from the coalesced outer axes) and its n
// elements are `stride` apart; row r of the output is contiguous at r * n.
struct RowJob {
  const char* x = nullptr;
  char* y = nullptr;
  int64_t n = 0;
  int64_t stride = 1;
  Shape outer_shape;
  Strides outer_strides;
  const void* w = nullptr;  // compute-type arrays of n elements, or null
  const void* b = nullptr;
  double eps = 0;
  bool stream = false;  // write the output with non-temporal stores
};

struct OuterIter {
  const RowJob& j;
  Shape idx;
  int64_t off = 0;
  OuterIter(const RowJob& job, int64_t r) : j(job), idx(job.outer_shape.size(), 0) {
    for (size_t d = idx.size(); d-- > 0;) {
      idx[d] = r % j.outer_shape[d];
      r /= j.outer_shape[d];
      off += idx[d] * j.outer_strides[d];
    }
  }
  void next() {
    for (size_t d = idx.size(); d-- > 0;) {
      off += j.outer_strides[d];
      if (++idx[d] < j.outer_shape[d]) return;
      off -= j.outer_strides[d] * j.outer_shape[d];
      idx[d] = 0;
    }
  }
};

template <typename C, Kind K, int Isa>
inline void row_op(const C* x, C* y, const RowJob& j, const C* next) {
  if constexpr (K == Kind::Softmax)
    softmax_row<C, false, Isa>(x, y, j.n, next);
  else if constexpr (K == Kind::LogSoftmax)
    softmax_row<C, true, Isa>(x, y, j.n, next);
  else
    norm_row<C, K == Kind::RmsNorm>(x, y, j.n, static_cast<const C*>(j.w), static_cast<const C*>(j.b), j.eps, next);
}

// Copies nbytes with non-temporal stores (the aligned middle; the ends are plain copies). One
// version per ISA: the intrinsics need the matching target.
__attribute__((target("avx512f"))) inline void stream_copy_avx512(char* dst, const char* src, int64_t nbytes) {
  int64_t head = std::min<int64_t>(nbytes, (64 - static_cast<int64_t>(reinterpret_cast<uintptr_t>(dst) & 63)) & 63);
  std::memcpy(dst, src, static_cast<size_t>(head));
  int64_t k = head;
  for (; k + 64 <= nbytes; k += 64)
    _mm512_stream_si512(reinterpret_cast<__m512i*>(dst + k),
                        _mm512_loadu_si512(reinterpret_cast<const void*>(src + k)));
  std::memcpy(dst + k, src + k, static_cast<size_t>(nbytes - k));
}
__attribute__((target("avx2"))) inline void stream_copy_avx2(char* dst, const char* src, int64_t nbytes) {
  int64_t head = std::min<int64_t>(nbytes, (32 - static_cast<int64_t>(reinterpret_cast<uintptr_t>(dst) & 31)) & 31);
  std::memcpy(dst, src, static_cast<size_t>(head));
  int64_t k = head;
  for (; k + 32 <= nbytes; k += 32)
    _mm256_stream_si256(reinterpret_cast<__m256i*>(dst + k),
                        _mm256_loadu_si256(reinterpret_cast<const __m256i*>(src + k)));
  std::memcpy(dst + k, src + k, static_cast<size_t>(nbytes - k));
}
inline void stream_copy_sse2(char* dst, const char* src, int64_t nbytes) {
  int64_t head = std::min<int64_t>(nbytes, (16 - static_cast<int64_t>(reinterpret_cast<uintptr_t>(dst) & 15)) & 15);
  std::memcpy(dst, src, static_cast<size_t>(head));
  int64_t k = head;
  for (; k + 16 <= nbytes; k += 16)
    _mm_stream_si128(reinterpret_cast<__m128i*>(dst + k), _mm_loadu_si128(reinterpret_cast<const __m128i*>(src + k)));
  std::memcpy(dst + k, src + k, static_cast<size_t>(nbytes - k));
}
template <int Isa>
inline void stream_copy(char* dst, const char* src, int64_t nbytes) {
  if constexpr (Isa == 2)
    stream_copy_avx512(dst, src, nbytes);
  else if constexpr (Isa == 1)
    stream_copy_avx2(dst, src, nbytes);
  else
    stream_copy_sse2(dst, src, nbytes);
}

// Rows [r0, r1). In-place rows (float32/float64 with unit stride) are computed straight into the
// output, or, for streaming jobs (data much larger than the last-level cache), into an L1 scratch
// row that is then written with non-temporal stores: the output lines are not read for ownership
// first and do not evict the input. Other rows are gathered (and converted) into the scratch row.
template <typename T, Kind K, int Isa>
inline void run_rows(const RowJob& j, int64_t r0, int64_t r1) {
  using C = compute_t<T>;
  constexpr bool same = std::is_same_v<T, C>;
  const int64_t n = j.n, st = j.stride;
  const bool direct = same && st == 1;
  const bool stream = direct && j.stream;
  std::unique_ptr<C[]> buf(direct && !stream ? nullptr : new C[static_cast<size_t>(n)]);  // uninitialized
  C* tmp = buf.get();
  OuterIter it(j, r0), nx(j, r0);
  nx.next();
  for (int64_t r = r0; r < r1; ++r, it.next(), nx.next()) {
    const T* xr = reinterpret_cast<const T*>(j.x) + it.off;
    T* yr = reinterpret_cast<T*>(j.y) + r * n;
    if (direct) {
      const C* next = r + 1 < r1 ? reinterpret_cast<const C*>(j.x) + nx.off : nullptr;
      if (stream) {
        row_op<C, K, Isa>(reinterpret_cast<const C*>(xr), tmp, j, next);
        stream_copy<Isa>(reinterpret_cast<char*>(yr), reinterpret_cast<const char*>(tmp),
                         n * static_cast<int64_t>(sizeof(C)));
      } else {
        row_op<C, K, Isa>(reinterpret_cast<const C*>(xr), reinterpret_cast<C*>(yr), j, next);
      }
      continue;
    }
    for (int64_t k = 0; k < n; ++k) tmp[k] = static_cast<C>(xr[k * st]);
    if constexpr (same) {
      row_op<C, K, Isa>(tmp, reinterpret_cast<C*>(yr), j, nullptr);
    } else {  // float16/bfloat16: compute in place in the float32 scratch row, then round
      row_op<C, K, Isa>(tmp, tmp, j, nullptr);
      for (int64_t k = 0; k < n; ++k) yr[k] = T(tmp[k]);
    }
  }
  if (stream) _mm_sfence();  // order the non-temporal stores before the kernel returns
}

// ----------------------------------------------------------------- long rows
// Rows of at least kLongRow elements (larger than L2): each row is split into chunks that run in
// parallel, in two phases with a small combine in between. Besides using every thread on few rows,
// this reads a row twice instead of three times from memory, as the first phase's passes run on
// an L2-resident chunk.
//   softmax: phase 1 gives each chunk's max m_c and sum of exp(x - m_c); the combine takes
//            m = max m_c and S = sum s_c exp(m_c - m); phase 2 writes exp(x - m) / S (log_softmax:
//            (x - m) - log S). Phase 1 keeps no exp terms: x is read twice, y written once.
//   norms:   phase 1 gives each chunk's mean (hi_c + lo_c) and m2; the combine is Chan et al.'s
//            (mean = sum n_c mean_c / n, m2 = sum m2_c + n_c (mean_c - mean)^2), with the means taken
//            relative to the first chunk's hi so that no precision is lost; phase 2 normalizes.
constexpr int64_t kLongRow = 65536;    // minimum row length for the chunked path
constexpr int64_t kLongChunk = 32768;  // elements per chunk (128 KiB of float32: stays in L2)

struct LongJob {
  const void* x = nullptr;
  void* y = nullptr;
  int64_t n = 0, chunk = kLongChunk;
  int phase = 0;
  double* p0 = nullptr;  // per-chunk partials (phase 0)
  double* p1 = nullptr;
  double* p2 = nullptr;
  double m = 0, f = 0, hi = 0, lo = 0, var = 0;  // combined (phase 1)
  const void* w = nullptr;
  const void* b = nullptr;
  double eps = 0;
};

template <typename C, Kind K, int Isa>
inline void run_long(const LongJob& j, int64_t c0, int64_t c1) {
  const C* x = static_cast<const C*>(j.x);
  C* y = static_cast<C*>(j.y);
  for (int64_t c = c0; c < c1; ++c) {
    const int64_t b = c * j.chunk, len = std::min(j.chunk, j.n - b);
    if constexpr (K == Kind::Softmax || K == Kind::LogSoftmax) {
      if (j.phase == 0) {
        const C m = row_max(x + b, len);
        j.p0[c] = static_cast<double>(m);
        j.p1[c] = exp_sum<C, false, Isa>(x + b, nullptr, len, m, nullptr);
      } else if constexpr (K == Kind::Softmax) {
        exp_scale<C, Isa>(x + b, y + b, len, static_cast<C>(j.m), static_cast<C>(j.f));
      } else {
        softmax_apply<C, true>(x + b, y + b, len, static_cast<C>(j.m), static_cast<C>(j.f));
      }
    } else {
      if (j.phase == 0) {
        norm_stats<C, K == Kind::RmsNorm>(x + b, len, nullptr, j.p0[c], j.p1[c], j.p2[c]);
      } else {
        const C* w = static_cast<const C*>(j.w);
        const C* bias = static_cast<const C*>(j.b);
        norm_apply(x + b, y + b, len, j.hi, j.lo, j.var, j.eps, w ? w + b : nullptr, bias ? bias + b : nullptr);
      }
    }
  }
}

// --------------------------------------------------------------- column jobs
// Softmax along the middle axis of contiguous [outer, n, inner] data, one task per (outer index,
// block of `width` inner positions). The block is packed into a contiguous compute-type scratch
// [n, width] first: rows of the block sit inner elements apart, and with a power-of-two inner they
// would all fall into a few cache sets, so the passes run on the packed copy (one read of x, one
// write of y).
struct ColJob {
  const void* x = nullptr;
  void* y = nullptr;
  int64_t n = 0, inner = 0, width = 0, blocks = 0;
};
constexpr int64_t kMaxColWidth = 256;
constexpr int64_t kColPrefetch = 32;  // rows ahead

// One packed row of a column block: Log: p -= mx, sf += exp(p); else p = exp(p - mx), sf += p.
template <bool Log>
__attribute__((target("avx512f"))) inline void col_exp_avx512(float* p, const float* mx, float* sf, int64_t w) {
  for (int64_t i = 0; i < w; i += 16) {
    const __mmask16 mask = static_cast<__mmask16>(w - i >= 16 ? 0xffff : (1u << (w - i)) - 1);
    const __m512 d = _mm512_sub_ps(_mm512_maskz_loadu_ps(mask, p + i), _mm512_maskz_loadu_ps(mask, mx + i));
    const __m512 e = exp_avx512(d);
    _mm512_mask_storeu_ps(p + i, mask, Log ? d : e);
    _mm512_mask_storeu_ps(sf + i, mask, _mm512_add_ps(_mm512_maskz_loadu_ps(mask, sf + i), e));
  }
}
template <typename C, bool Log, int Isa>
inline void col_exp(C* p, const C* mx, C* sf, int64_t w) {
  if constexpr (Isa == 2 && std::is_same_v<C, float>) {
    col_exp_avx512<Log>(p, mx, sf, w);
  } else if constexpr (Log) {
#pragma omp simd
    for (int64_t i = 0; i < w; ++i) {
      p[i] -= mx[i];
      sf[i] += vexp(p[i]);
    }
  } else {
#pragma omp simd
    for (int64_t i = 0; i < w; ++i) {
      C v = vexp(p[i] - mx[i]);
      p[i] = v;
      sf[i] += v;
    }
  }
}

template <typename T, bool Log, int Isa>
inline void run_cols(const ColJob& j, int64_t t0, int64_t t1) {
  using C = compute_t<T>;
  constexpr int64_t kFold = 256;  // rows between folds of the compute-type sums into double
  alignas(64) C mx[kMaxColWidth];
  alignas(64) C f[kMaxColWidth];
  alignas(64) C sf[kMaxColWidth];
  alignas(64) double s[kMaxColWidth];
  std::unique_ptr<C[]> pack(new C[static_cast<size_t>(j.n * j.width)]);
  for (int64_t t = t0; t < t1; ++t) {
    const int64_t o = t / j.blocks, i0 = (t % j.blocks) * j.width;
    const int64_t w = std::min(j.width, j.inner - i0);
    const T* x = static_cast<const T*>(j.x) + o * j.n * j.inner + i0;
    T* y = static_cast<T*>(j.y) + o * j.n * j.inner + i0;
    for (int64_t i = 0; i < w; ++i) mx[i] = -std::numeric_limits<C>::infinity(), s[i] = 0, sf[i] = 0;
    for (int64_t r = 0; r < j.n; ++r) {
      const T* xr = x + r * j.inner;
      C* pr = pack.get() + r * w;
      // The block's rows are far apart (a stride of inner): fetch ahead (18.9 -> 15 ms on 4096^2).
      if (r + kColPrefetch < j.n) prefetch_block(xr + kColPrefetch * j.inner, w);
#pragma omp simd
      for (int64_t i = 0; i < w; ++i) {
        C v = static_cast<C>(xr[i]);
        pr[i] = v;
        mx[i] = v > mx[i] ? v : mx[i];
      }
    }
    for (int64_t r = 0; r < j.n; ++r) {
      col_exp<C, Log, Isa>(pack.get() + r * w, mx, sf, w);
      if ((r + 1) % kFold == 0 || r + 1 == j.n) {
        for (int64_t i = 0; i < w; ++i) s[i] += static_cast<double>(sf[i]), sf[i] = 0;
      }
    }
    for (int64_t i = 0; i < w; ++i) f[i] = static_cast<C>(Log ? std::log(s[i]) : 1.0 / s[i]);
    for (int64_t r = 0; r < j.n; ++r) {
      const C* pr = pack.get() + r * w;
      T* yr = y + r * j.inner;
      if constexpr (Log) {
#pragma omp simd
        for (int64_t i = 0; i < w; ++i) yr[i] = T(pr[i] - f[i]);
      } else {
#pragma omp simd
        for (int64_t i = 0; i < w; ++i) yr[i] = T(pr[i] * f[i]);
      }
    }
  }
}
// ---------------------------------------------------------- ISA dispatching
using RowsFn = void (*)(const RowJob&, int64_t, int64_t);
using ColsFn = void (*)(const ColJob&, int64_t, int64_t);

#define TS_NN_AVX512 \
  __attribute__((target("avx512f,avx512bw,avx512dq,avx512vl,avx2,fma,f16c,bmi,bmi2,prefer-vector-width=512"), flatten))
#define TS_NN_AVX2 __attribute__((target("avx2,fma,f16c,bmi,bmi2"), flatten))

template <typename T, Kind K>
TS_NN_AVX512 void rows_avx512(const RowJob& j, int64_t b, int64_t e) {
  run_rows<T, K, 2>(j, b, e);
}
template <typename T, Kind K>
TS_NN_AVX2 void rows_avx2(const RowJob& j, int64_t b, int64_t e) {
  run_rows<T, K, 1>(j, b, e);
}
template <typename T, Kind K>
__attribute__((flatten)) void rows_baseline(const RowJob& j, int64_t b, int64_t e) {
  run_rows<T, K, 0>(j, b, e);
}

using LongFn = void (*)(const LongJob&, int64_t, int64_t);
template <typename C, Kind K>
TS_NN_AVX512 void long_avx512(const LongJob& j, int64_t b, int64_t e) {
  run_long<C, K, 2>(j, b, e);
}
template <typename C, Kind K>
TS_NN_AVX2 void long_avx2(const LongJob& j, int64_t b, int64_t e) {
  run_long<C, K, 1>(j, b, e);
}
template <typename C, Kind K>
__attribute__((flatten)) void long_baseline(const LongJob& j, int64_t b, int64_t e) {
  run_long<C, K, 0>(j, b, e);
}

template <typename T, bool Log>
TS_NN_AVX512 void cols_avx512(const ColJob& j, int64_t b, int64_t e) {
  run_cols<T, Log, 2>(j, b, e);
}
template <typename T, bool Log>
TS_NN_AVX2 void cols_avx2(const ColJob& j, int64_t b, int64_t e) {
  run_cols<T, Log, 1>(j, b, e);
}
template <typename T, bool Log>
__attribute__((flatten)) void cols_baseline(const ColJob& j, int64_t b, int64_t e) {
  run_cols<T, Log, 0>(j, b, e);
}

// 0: baseline, 1: AVX2, 2: AVX-512 (the elementwise table's choice, so both agree).
int isa_level() {
  static const int level = [] {
    std::string isa = elementwise_isa();
    return isa == "avx512" ? 2 : isa == "avx2" ? 1 : 0;
  }();
  return level;
}

template <typename T, Kind K>
RowsFn rows_fn() {
  switch (isa_level()) {
    case 2:
      return &rows_avx512<T, K>;
    case 1:
      return &rows_avx2<T, K>;
    default:
      return &rows_baseline<T, K>;
  }
}
template <typename C, Kind K>
LongFn long_fn() {
  switch (isa_level()) {
    case 2:
      return &long_avx512<C, K>;
    case 1:
      return &long_avx2<C, K>;
    default:
      return &long_baseline<C, K>;
  }
}

template <typename T, bool Log>
ColsFn cols_fn() {
  switch (isa_level()) {
    case 2:
      return &cols_avx512<T, Log>;
    case 1:
      return &cols_avx2<T, Log>;
    default:
      return &cols_baseline<T, Log>;
  }
}
template <bool Log>
ColsFn cols_fn_for(DType t) {
  switch (t) {
    case DType::Float16:
      return cols_fn<Half, Log>();
    case DType::BFloat16:
      return cols_fn<BFloat16, Log>();
    case DType::Float64:
      return cols_fn<double, Log>();
    default:
      return cols_fn<float, Log>();
  }
}

// ------------------------------------------------------------------- helpers
/// t as a contiguous tensor of dtype dt (t itself when it already is one).
Tensor contiguous_as(const Tensor& t, DType dt) {
  if (t.dtype() == dt && t.is_contiguous()) return t;
  Tensor out = empty(t.shape(), dt, t.device());
  const ElementwiseTable& tab = elementwise_table();
  InnerLoop loop = t.dtype() == dt ? tab.loops[static_cast<int>(OpId::Copy)][static_cast<int>(dt)]
                                   : tab.cast[static_cast<int>(t.dtype())][static_cast<int>(dt)];
  const Tensor in[1] = {t};
  run_elementwise(out, in, loop);
  return out;
}

/// Merges axes [first, ndim) of x into one row axis: true and its stride when they are evenly
/// spaced (size-1 axes ignored), false otherwise.
bool row_stride(const Tensor& x, int64_t first, int64_t& stride) {
  const Shape& sh = x.shape();
  const Strides& st = x.strides();
  int64_t span = 1;
  bool have = false;
  stride = 1;
  for (int64_t d = x.ndim(); d-- > first;) {
    const size_t i = static_cast<size_t>(d);
    if (sh[i] == 1) continue;
    if (!have) {
      stride = st[i];
      have = true;
    } else if (st[i] != stride * span) {
      return false;
    }
    span *= sh[i];
  }
  return true;
}

/// Fills the outer axes [0, last) of x into job, merged where contiguous with each other.
void set_outer(RowJob& job, const Tensor& x, int64_t last) {
  job.outer_shape.clear();
  job.outer_strides.clear();
  for (int64_t d = 0; d < last; ++d) {
    const int64_t size = x.shape()[static_cast<size_t>(d)], st = x.strides()[static_cast<size_t>(d)];
    if (size == 1) continue;
    if (!job.outer_shape.empty() && job.outer_strides.back() == st * size) {
      job.outer_shape.back() *= size;
      job.outer_strides.back() = st;
    } else {
      job.outer_shape.push_back(size);
      job.outer_strides.push_back(st);
    }
  }
}

/// Bytes (input + output) above which row kernels write with non-temporal stores: the data cannot
/// stay in the last-level cache anyway (glibc's memcpy makes the same choice).
int64_t streaming_threshold() {
  static const int64_t bytes = [] {
    // Clamped: virtual machines report odd sizes (320 MiB on a 32 MiB part), and the cache is
    // shared with the other cores anyway.
    long l3 = sysconf(_SC_LEVEL3_CACHE_SIZE);
    return std::clamp<int64_t>(l3 > 0 ? l3 : 0, int64_t{8} << 20, int64_t{32} << 20);
  }();
  return bytes;
}

int64_t rows_grain(int64_t n) { return std::max<int64_t>(1, 16384 / std::max<int64_t>(n, 1)); }

template <Kind K>
RowsFn rows_fn_for(DType t) {
  switch (t) {
    case DType::Float16:
      return rows_fn<Half, K>();
    case DType::BFloat16:
      return rows_fn<BFloat16, K>();
    case DType::Float64:
      return rows_fn<double, K>();
    default:
      return rows_fn<float, K>();
  }
}

/// The chunked path for rows (unit stride, compute-type data) too few to keep the threads busy.
template <typename C, Kind K>
void run_long_rows(const RowJob& job, int64_t rows) {
  LongJob lj;
  lj.n = job.n;
  lj.w = job.w;
  lj.b = job.b;
  lj.eps = job.eps;
  const int64_t chunks = (job.n + lj.chunk - 1) / lj.chunk;
  std::vector<double> p0(static_cast<size_t>(chunks)), p1(static_cast<size_t>(chunks)), p2(static_cast<size_t>(chunks));
  lj.p0 = p0.data();
  lj.p1 = p1.data();
  lj.p2 = p2.data();
  LongFn fn = long_fn<C, K>();
  OuterIter it(job, 0);
  for (int64_t r = 0; r < rows; ++r, it.next()) {
    lj.x = reinterpret_cast<const C*>(job.x) + it.off;
    lj.y = reinterpret_cast<C*>(job.y) + r * job.n;
    lj.phase = 0;
    parallel_for(0, chunks, 1, [&](int64_t b, int64_t e) { fn(lj, b, e); });
    const double dn = static_cast<double>(job.n);
    if constexpr (K == Kind::Softmax || K == Kind::LogSoftmax) {
      double m = -std::numeric_limits<double>::infinity(), sum = 0;
      for (double v : p0) m = std::max(m, v);
      // A chunk of -inf only adds nothing (its own sum is NaN); with every chunk -inf, m = -inf and
      // phase 2 gives NaN everywhere like the one-pass kernel.
      for (int64_t c = 0; c < chunks; ++c)
        if (p0[static_cast<size_t>(c)] != -std::numeric_limits<double>::infinity())
          sum += p1[static_cast<size_t>(c)] * std::exp(p0[static_cast<size_t>(c)] - m);
      lj.m = m;
      lj.f = K == Kind::LogSoftmax ? std::log(sum) : 1.0 / sum;
    } else {
      // Chunk means relative to ref = hi_0 (hi_c - ref is exact when the means are close, which is
      // when precision matters), so the combined mean keeps lo's precision: mean = ref + delta.
      const double ref = p0[0];
      double delta = 0, m2 = 0;
      auto len = [&](int64_t c) { return static_cast<double>(std::min(lj.chunk, job.n - c * lj.chunk)); };
      auto delta_c = [&](int64_t c) { return (p0[static_cast<size_t>(c)] - ref) + p1[static_cast<size_t>(c)]; };
      for (int64_t c = 0; c < chunks; ++c) delta += len(c) * delta_c(c);
      delta /= dn;
      for (int64_t c = 0; c < chunks; ++c) {
        const double d = delta_c(c) - delta;
        m2 += p2[static_cast<size_t>(c)] + len(c) * d * d;
      }
      lj.hi = ref;
      lj.lo = delta;
      lj.var = m2 / dn;
    }
    lj.phase = 1;
    parallel_for(0, chunks, 1, [&](int64_t b, int64_t e) { fn(lj, b, e); });
  }
}

/// Runs K over the rows made of axes [first, ndim) of x (which must merge into one strided axis,
/// else x is copied to a contiguous tensor first).
template <Kind K>
void run_row_kernel(Tensor x, const Tensor& y, int64_t first, RowJob job) {
  int64_t stride = 1;
  if (!row_stride(x, first, stride)) {
    x = contiguous_as(x, x.dtype());
    stride = 1;
  }
  job.x = static_cast<const char*>(x.impl().data());
  job.y = static_cast<char*>(y.impl().data());
  job.stride = stride;
  job.n = 1;
  for (int64_t d = first; d < x.ndim(); ++d) job.n *= x.shape()[static_cast<size_t>(d)];
  set_outer(job, x, first);
  const int64_t rows = job.n ? y.numel() / job.n : 0;
  const bool in_place_type = x.dtype() == DType::Float32 || x.dtype() == DType::Float64;
  if (!omp_in_parallel() && in_place_type && stride == 1 && job.n >= kLongRow) {
    if (x.dtype() == DType::Float64)
      run_long_rows<double, K>(job, rows);
    else
      run_long_rows<float, K>(job, rows);
    return;
  }
  // Streaming pays for the memory-bound norms (~15% on 8192x1024); softmax is bound by its exp
  // and the extra scratch pass cost more than the saved traffic (12 vs 8.5 ms on 4096x4096).
  job.stream = (K == Kind::LayerNorm || K == Kind::RmsNorm) &&
               2 * y.numel() * static_cast<int64_t>(y.itemsize()) > streaming_threshold();
  RowsFn fn = rows_fn_for<K>(x.dtype());
  parallel_for(0, rows, rows_grain(job.n), [&](int64_t b, int64_t e) { fn(job, b, e); });
}

void softmax_kernel(const KernelCall& c) {
  const bool log = c.op == OpId::LogSoftmax;
  const Tensor& x = c.in[0];
  const Tensor& y = c.out[0];
  if (y.numel() == 0) return;
  const int64_t axis = x.ndim() == 0 ? 0 : std::get<AxisAttrs>(c.attrs).axis;
  int64_t inner = 1;
  for (int64_t d = axis + 1; d < x.ndim(); ++d) inner *= x.shape()[static_cast<size_t>(d)];
  if (inner == 1) {
    if (log)
      run_row_kernel<Kind::LogSoftmax>(x, y, std::min<int64_t>(axis, x.ndim()), RowJob{});
    else
      run_row_kernel<Kind::Softmax>(x, y, std::min<int64_t>(axis, x.ndim()), RowJob{});
    return;
  }
  // Non-last axis: the column kernel on contiguous data.
  const Tensor xc = contiguous_as(x, x.dtype());
  ColJob j;
  j.x = xc.impl().data();
  j.y = y.impl().data();
  j.n = x.shape()[static_cast<size_t>(axis)];
  j.inner = inner;
  // One task's packed n x width block stays within ~1 MiB (about L2; measured best on 4096x4096).
  const int64_t esize = x.dtype() == DType::Float64 ? 8 : 4;
  int64_t width = (1024 * 1024) / std::max<int64_t>(1, j.n * esize);
  width = std::clamp<int64_t>(width / 16 * 16, 16, kMaxColWidth);
  j.width = std::min(width, inner);
  j.blocks = (inner + j.width - 1) / j.width;
  const int64_t outer = y.numel() / (j.n * inner);
  ColsFn fn = log ? cols_fn_for<true>(x.dtype()) : cols_fn_for<false>(x.dtype());
  const int64_t grain = std::max<int64_t>(1, 16384 / std::max<int64_t>(1, j.n * j.width));
  parallel_for(0, outer * j.blocks, grain, [&](int64_t b, int64_t e) { fn(j, b, e); });
}

void norm_kernel(const KernelCall& c) {
  const auto& a = std::get<NormAttrs>(c.attrs);
  const Tensor& x = c.in[0];
  const Tensor& y = c.out[0];
  if (y.numel() == 0) return;
  const DType ct = x.dtype() == DType::Float64 ? DType::Float64 : DType::Float32;
  // weight and bias as contiguous compute-type arrays (small: one row).
  Tensor w, b;
  size_t i = 1;
  if (a.has_weight) w = contiguous_as(c.in[i++], ct);
  if (a.has_bias) b = contiguous_as(c.in[i++], ct);
  RowJob job;
  job.w = w.defined() ? w.impl().data() : nullptr;
  job.b = b.defined() ? b.impl().data() : nullptr;
  job.eps = a.eps;
  const int64_t first = x.ndim() - a.normalized_ndim;
  if (c.op == OpId::RmsNorm)
    run_row_kernel<Kind::RmsNorm>(x, y, first, std::move(job));
  else
    run_row_kernel<Kind::LayerNorm>(x, y, first, std::move(job));
}

}  // namespace

void register_nn_kernels(Backend& b) {
  b.set_kernel(OpId::Softmax, &softmax_kernel, kFloatDTypes);
  b.set_kernel(OpId::LogSoftmax, &softmax_kernel, kFloatDTypes);
  b.set_kernel(OpId::LayerNorm, &norm_kernel, kFloatDTypes);
  b.set_kernel(OpId::RmsNorm, &norm_kernel, kFloatDTypes);
}

}  // namespace tessera::cpu

#pragma GCC diagnostic pop
