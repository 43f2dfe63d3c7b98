// The Matmul kernel and the GEMM entry points of gemm.h (shared with the convolution kernels).
//
// Library choice, by measurement on the reference machine (figures in docs/cpu_backend.md,
// program in bench/gemm_libraries.cpp):
//   float32   oneDNN dnnl_sgemm; its transpose flags take transposed views without a copy. It
//             matches or beats OpenBLAS and BLIS from 128^3 up and, unlike OpenBLAS, does not
//             depend on OPENBLAS_CORETYPE. Products up to kTinyFlops use the register-blocked loop
//             below, where the libraries' fixed call cost dominates. Row-major A times transposed
//             B (x W^T) from 256^3 up uses oneDNN's matmul primitive, faster than transb = 'T'.
//   bfloat16  oneDNN's matmul primitive (bf16 inputs, f32 accumulation, cached) when the CPU has
//             AVX512_BF16; otherwise converted to float32.
//   float16   converted to float32 (no fp16 arithmetic on the reference CPUs).
//   float64   OpenBLAS cblas_dgemm (oneDNN has no f64 GEMM).
//   integers  a direct loop accumulating in unsigned arithmetic of the dtype's width (or wider), so
//             results wrap around modulo 2^bits exactly as an int8/int32/int64 accumulator would.
//   bool      logical semantics (NumPy): out[i, j] = any_p(a[i, p] and b[p, j]).
// Batched products: when the right operand is shared by every batch and the left one's batch axes
// fold into its rows, the whole batch is one GEMM ([B*M, K] x [K, N]); otherwise one GEMM per batch
// entry, run in parallel over the batch when each is small. Broadcast batch axes are stride-0
// walks, never materialized.
#include <cblas.h>
#include <omp.h>

#include <algorithm>
#include <climits>
#include <cstring>
#include <map>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <tuple>
#include <vector>

#include "../../core/dispatch.h"
#include "../../graph/ir.h"
#include "cpu_backend.h"
#include "gemm.h"
#include "oneapi/dnnl/dnnl.hpp"
#include "parallel.h"
#include "post_ops.h"
#include "tessera/runtime.h"

namespace tessera::cpu {

// ============================================================================ shared helpers

void sync_library_threads() {
  if (omp_in_parallel()) return;
  int n = get_num_threads();
  if (omp_get_max_threads() != n) omp_set_num_threads(n);
}

bool cpu_has_bf16() {
  static const bool has = [] {
    auto isa = static_cast<unsigned>(dnnl::get_effective_cpu_isa());
    constexpr auto bf16 = static_cast<unsigned>(dnnl::cpu_isa::avx512_core_bf16);
    return (isa & bf16) == bf16;
  }();
  return has;
}

namespace {

// ------------------------------------------------------------------ tiny float32 GEMM
// Up to this many multiply-adds (64^3) the single-threaded loop below beats dnnl_sgemm, whose
// fixed cost is ~0.3 us and whose 2-thread split does not pay yet (bench/gemm_libraries.cpp).
constexpr int64_t kTinyFlops = int64_t{1} << 18;
constexpr int kNR = 16;
typedef float VecNR __attribute__((vector_size(kNR * sizeof(float)), aligned(4)));
// MR rows x 16 columns of C, accumulated in MR vector registers over all of k; B rows are read
// bstride apart (a packed panel or B itself).
template <int MR>
[[gnu::always_inline]] inline void tiny_block(int64_t k, const float* a, int64_t a_rs, int64_t a_cs, const float* bp,
                                              int64_t bstride, float beta, float* c, int64_t ldc, int64_t nc) {
  VecNR acc[MR];
#pragma GCC unroll 8
  for (int r = 0; r < MR; ++r) acc[r] = VecNR{};
  for (int64_t p = 0; p < k; ++p) {
    VecNR bv;
    std::memcpy(&bv, bp + p * bstride, sizeof(bv));
#pragma GCC unroll 8
    for (int r = 0; r < MR; ++r) acc[r] += a[r * a_rs + p * a_cs] * bv;
  }
#pragma GCC unroll 8
  for (int r = 0; r < MR; ++r) {
    float* cr = c + r * ldc;
    if (nc == kNR && beta == 0) {
      std::memcpy(cr, &acc[r], sizeof(VecNR));
      continue;
    }
    for (int64_t j = 0; j < nc; ++j) cr[j] = acc[r][j] + (beta == 0 ? 0.f : beta * cr[j]);
  }
}
// MR rows x 32 columns (two 16-column panels, the second `next` floats after the first), each A
// element broadcast once for both; beta = 0 and full panels only.
template <int MR>
[[gnu::always_inline]] inline void tiny_block2(int64_t k, const float* a, int64_t a_rs, int64_t a_cs, const float* bp,
                                               int64_t bstride, int64_t next, float* c, int64_t ldc) {
  VecNR acc[MR][2];
#pragma GCC unroll 8
  for (int r = 0; r < MR; ++r) acc[r][0] = acc[r][1] = VecNR{};
  for (int64_t p = 0; p < k; ++p) {
    VecNR b0, b1;
    std::memcpy(&b0, bp + p * bstride, sizeof(b0));
    std::memcpy(&b1, bp + p * bstride + next, sizeof(b1));
#pragma GCC unroll 8
    for (int r = 0; r < MR; ++r) {
      const float av = a[r * a_rs + p * a_cs];
      acc[r][0] += av * b0;
      acc[r][1] += av * b1;
    }
  }
#pragma GCC unroll 8
  for (int r = 0; r < MR; ++r) {
    std::memcpy(c + r * ldc, &acc[r][0], sizeof(VecNR));
    std::memcpy(c + r * ldc + kNR, &acc[r][1], sizeof(VecNR));
  }
}
// C[m, n] = A B + beta C with A, B given by element strides. One clone per ISA level (the CPU
// layer is compiled for baseline x86-64).
__attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default"))) void tiny_sgemm(
    int64_t m, int64_t n, int64_t k, const float* a, int64_t a_rs, int64_t a_cs, const float* b, int64_t b_rs,
    int64_t b_cs, float beta, float* c, int64_t ldc) {
  float stack_buf[2048];
  std::vector<float> heap_buf;
  float* buf = stack_buf;
  if (k * kNR > 2048) {
    heap_buf.resize(static_cast<size_t>(k * kNR));
    buf = heap_buf.data();
  }
  for (int64_t j0 = 0; j0 < n; j0 += kNR) {
    int64_t nc = std::min<int64_t>(kNR, n - j0);
    const float* bp;
    int64_t bstride;
    if (nc == kNR && b_cs == 1) {  // full-width panel read in place
      bp = b + j0;
      bstride = b_rs;
    } else {  // pack B[:, j0:j0+16] zero-padded, so the inner loop always works on full vectors
      for (int64_t p = 0; p < k; ++p) {
        const float* br = b + p * b_rs + j0 * b_cs;
        float* d = buf + p * kNR;
        int64_t j = 0;
        for (; j < nc; ++j) d[j] = br[j * b_cs];
        for (; j < kNR; ++j) d[j] = 0;
      }
      bp = buf;
      bstride = kNR;
    }
    int64_t i = 0;
    for (; i + 8 <= m; i += 8) tiny_block<8>(k, a + i * a_rs, a_rs, a_cs, bp, bstride, beta, c + i * ldc + j0, ldc, nc);
    const float* ai = a + i * a_rs;
    float* ci = c + i * ldc + j0;
    switch (m - i) {
      case 7:
        tiny_block<7>(k, ai, a_rs, a_cs, bp, bstride, beta, ci, ldc, nc);
        break;
      case 6:
        tiny_block<6>(k, ai, a_rs, a_cs, bp, bstride, beta, ci, ldc, nc);
        break;
      case 5:
        tiny_block<5>(k, ai, a_rs, a_cs, bp, bstride, beta, ci, ldc, nc);
        break;
      case 4:
        tiny_block<4>(k, ai, a_rs, a_cs, bp, bstride, beta, ci, ldc, nc);
        break;
      case 3:
        tiny_block<3>(k, ai, a_rs, a_cs, bp, bstride, beta, ci, ldc, nc);
        break;
      case 2:
        tiny_block<2>(k, ai, a_rs, a_cs, bp, bstride, beta, ci, ldc, nc);
        break;
      case 1:
        tiny_block<1>(k, ai, a_rs, a_cs, bp, bstride, beta, ci, ldc, nc);
        break;
      default:
        break;
    }
  }
}

// R rows (from i0) of C = A B for one triangular product: k runs only over the part of A that can
// be nonzero (LowerA: p < i0 + R; UpperA: p >= i0), and a lower result computes only the
// 16-column panels left of i0 + R, writing zeros right of them. B is read as 16-column panels
// (bstride between rows, `next` between panels).
template <int R>
[[gnu::always_inline]] inline void triangular_rows(MatmulStructure s, int64_t i0, int64_t n, int64_t k, const float* a,
                                                   int64_t a_rs, int64_t a_cs, const float* b, int64_t bstride,
                                                   int64_t next, float* c, int64_t ldc) {
  const int64_t panels = (n + kNR - 1) / kNR, i1 = i0 + R;
  int64_t p0 = 0, p1 = k, q1 = panels;
  if (s == MatmulStructure::LowerA) p1 = std::min(k, i1);
  if (s == MatmulStructure::UpperA) p0 = i0;
  if (s == MatmulStructure::LowerResult) q1 = std::min(panels, (i1 + kNR - 1) / kNR);
  const float* ab = a + i0 * a_rs + p0 * a_cs;
  for (int64_t q = 0; q < q1;) {
    const int64_t j0 = q * kNR;
    const float* bp = b + q * next + p0 * bstride;
    if (q + 1 < q1 && n - j0 >= 2 * kNR) {
      tiny_block2<R>(p1 - p0, ab, a_rs, a_cs, bp, bstride, next, c + i0 * ldc + j0, ldc);
      q += 2;
    } else {
      tiny_block<R>(p1 - p0, ab, a_rs, a_cs, bp, bstride, 0.f, c + i0 * ldc + j0, ldc, std::min<int64_t>(kNR, n - j0));
      ++q;
    }
  }
  if (q1 < panels)
    for (int64_t r = 0; r < R; ++r) std::fill(c + (i0 + r) * ldc + q1 * kNR, c + (i0 + r) * ldc + n, 0.f);
}

// One stage of a 16 x 16 transpose held in 16 vectors (row r in v[r]): swaps the off-diagonal
// S x S blocks of every 2S x 2S block. The four stages (S = 8, 4, 2, 1) together transpose.
#define TESSERA_LO8 0, 1, 2, 3, 4, 5, 6, 7, 16, 17, 18, 19, 20, 21, 22, 23
#define TESSERA_HI8 8, 9, 10, 11, 12, 13, 14, 15, 24, 25, 26, 27, 28, 29, 30, 31
#define TESSERA_LO4 0, 1, 2, 3, 16, 17, 18, 19, 8, 9, 10, 11, 24, 25, 26, 27
#define TESSERA_HI4 4, 5, 6, 7, 20, 21, 22, 23, 12, 13, 14, 15, 28, 29, 30, 31
#define TESSERA_LO2 0, 1, 16, 17, 4, 5, 20, 21, 8, 9, 24, 25, 12, 13, 28, 29
#define TESSERA_HI2 2, 3, 18, 19, 6, 7, 22, 23, 10, 11, 26, 27, 14, 15, 30, 31
#define TESSERA_LO1 0, 16, 2, 18, 4, 20, 6, 22, 8, 24, 10, 26, 12, 28, 14, 30
#define TESSERA_HI1 1, 17, 3, 19, 5, 21, 7, 23, 9, 25, 11, 27, 13, 29, 15, 31
#define TESSERA_TRANSPOSE_STAGE(v, S)                          \
  for (int r = 0; r < 16; ++r)                                 \
    if (!(r & S)) {                                            \
      const VecNR a = v[r], b = v[r + S];                      \
      v[r] = __builtin_shufflevector(a, b, TESSERA_LO##S);     \
      v[r + S] = __builtin_shufflevector(a, b, TESSERA_HI##S); \
    }

// pack[(q * k + p) * 16 + j] = B[p, 16 q + j] for every 16-column panel q of a k x n B whose
// columns are contiguous (B^T row-major, column stride b_cs; n a multiple of 16): 16 x 16 tiles
// transposed in registers, the k % 16 last rows element by element.
[[gnu::always_inline]] inline void pack_transposed_panels(int64_t n, int64_t k, const float* b, int64_t b_cs,
                                                          float* pack) {
  for (int64_t q = 0; q < n / kNR; ++q) {
    const float* col = b + q * kNR * b_cs;  // B[:, 16 q]
    float* dst = pack + q * k * kNR;
    int64_t p = 0;
    for (; p + kNR <= k; p += kNR) {
      VecNR v[kNR];
#pragma GCC unroll 16
      for (int j = 0; j < kNR; ++j) std::memcpy(&v[j], col + j * b_cs + p, sizeof(VecNR));
      TESSERA_TRANSPOSE_STAGE(v, 8)
      TESSERA_TRANSPOSE_STAGE(v, 4)
      TESSERA_TRANSPOSE_STAGE(v, 2)
      TESSERA_TRANSPOSE_STAGE(v, 1)
#pragma GCC unroll 16
      for (int r = 0; r < kNR; ++r) std::memcpy(dst + (p + r) * kNR, &v[r], sizeof(VecNR));
    }
    for (; p < k; ++p)
      for (int64_t j = 0; j < kNR; ++j) dst[p * kNR + j] = col[j * b_cs + p];
  }
}
#undef TESSERA_TRANSPOSE_STAGE
#undef TESSERA_LO8
#undef TESSERA_HI8
#undef TESSERA_LO4
#undef TESSERA_HI4
#undef TESSERA_LO2
#undef TESSERA_HI2
#undef TESSERA_LO1
#undef TESSERA_HI1

// C = A B for one triangular product (MatmulStructure, primitives.h), A and B given by element
// strides, in register blocks of 8 rows x 32 (or 16) columns. Blocks of 8 rows skip nearly the
// whole masked triangle, where row blocks of a library GEMM are small, separately packed
// products. B is read in place when `pack` is null (its rows contiguous, n a multiple of 16:
// triangular_pack_floats == 0), else packed once per call, zero-padded, into `pack`: by 16 x 16
// tiles transposed in registers when B's columns are contiguous (k^T of attention's q k^T; the
// element loop took ~20% of such a product in cache), element by element otherwise.
__attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default"))) void triangular_sgemm(
    MatmulStructure s, int64_t m, int64_t n, int64_t k, const float* a, int64_t a_rs, int64_t a_cs, const float* b,
    int64_t b_rs, int64_t b_cs, float* c, int64_t ldc, float* pack) {
  constexpr int MR = 8;
  const int64_t panels = (n + kNR - 1) / kNR;
  const bool in_place = !pack;
  if (!in_place && b_rs == 1 && n % kNR == 0)
    pack_transposed_panels(n, k, b, b_cs, pack);
  else if (!in_place)
    for (int64_t q = 0; q < panels; ++q)
      for (int64_t p = 0; p < k; ++p) {
        float* d = pack + (q * k + p) * kNR;
        for (int64_t j = 0; j < kNR; ++j) d[j] = q * kNR + j < n ? b[p * b_rs + (q * kNR + j) * b_cs] : 0.f;
      }
  const float* bp = in_place ? b : pack;
  const int64_t bstride = in_place ? b_rs : kNR, next = in_place ? kNR : k * kNR;
  int64_t i = 0;
  for (; i + MR <= m; i += MR) triangular_rows<MR>(s, i, n, k, a, a_rs, a_cs, bp, bstride, next, c, ldc);
  for (; i < m; ++i) triangular_rows<1>(s, i, n, k, a, a_rs, a_cs, bp, bstride, next, c, ldc);
}

// Floats of B panels triangular_sgemm packs for a k x n B with column stride b_cs (0: none).
int64_t triangular_pack_floats(int64_t n, int64_t k, int64_t b_cs) {
  return b_cs == 1 && n % kNR == 0 ? 0 : (n + kNR - 1) / kNR * kNR * k;
}

void check_blas_int(int64_t v) {
  if (v > INT_MAX)
    raise<NotImplementedError>("matmul", "float64 GEMM dimension " + std::to_string(v) + " exceeds the BLAS int range");
}

}  // namespace

void gemm(bool ta, bool tb, int64_t m, int64_t n, int64_t k, const float* a, int64_t lda, const float* b, int64_t ldb,
          float beta, float* c, int64_t ldc) {
  if (m <= 0 || n <= 0) return;
  if (m * n * k <= kTinyFlops) {
    tiny_sgemm(m, n, k, a, ta ? 1 : lda, ta ? lda : 1, b, tb ? 1 : ldb, tb ? ldb : 1, beta, c, ldc);
    return;
  }
  sync_library_threads();
  dnnl_status_t st = dnnl_sgemm(ta ? 'T' : 'N', tb ? 'T' : 'N', m, n, k, 1.0f, a, lda, b, ldb, beta, c, ldc);
  if (st != dnnl_success)
    raise<Error>("matmul", "dnnl_sgemm failed with status " + std::to_string(static_cast<int>(st)));
}

void gemm(bool ta, bool tb, int64_t m, int64_t n, int64_t k, const double* a, int64_t lda, const double* b, int64_t ldb,
          double beta, double* c, int64_t ldc) {
  if (m <= 0 || n <= 0) return;
  for (int64_t v : {m, n, k, lda, ldb, ldc}) check_blas_int(v);
  sync_library_threads();
  cblas_dgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, static_cast<int>(m),
              static_cast<int>(n), static_cast<int>(k), 1.0, a, static_cast<int>(lda), b, static_cast<int>(ldb), beta,
              c, static_cast<int>(ldc));
}

namespace {

// ========================================================================= the Matmul kernel

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

// How BLAS sees one matrix: stored as given (trans = false, element (i, j) at i * ld + j) or
// transposed (element (i, j) at j * ld + i).
struct BlasLayout {
  bool trans = false;
  int64_t ld = 1;
};
std::optional<BlasLayout> blas_layout(int64_t rows, int64_t cols, int64_t rs, int64_t cs) {
  if ((cols <= 1 || cs == 1) && (rows <= 1 || rs >= std::max<int64_t>(1, cols)))
    return BlasLayout{false, rows <= 1 ? std::max<int64_t>(1, cols) : rs};
  if ((rows <= 1 || rs == 1) && (cols <= 1 || cs >= std::max<int64_t>(1, rows)))
    return BlasLayout{true, cols <= 1 ? std::max<int64_t>(1, rows) : cs};
  return std::nullopt;
}

// The operands of one Matmul call, with batch axes aligned to the output's.
struct Problem {
  Tensor a, b;
  const Tensor* c;
  int64_t m, n, k, nbatch;
  Shape batch;         // output batch shape
  Strides a_bs, b_bs;  // batch strides (0 on broadcast axes)
  int64_t a_rs, a_cs, b_rs, b_cs;
  // What each product may skip (primitives.h); the kernels may ignore it.
  MatmulStructure structure = MatmulStructure::Dense;

  void set(const Tensor& A, const Tensor& B) {
    a = A, b = B;
    auto bstrides = [&](const Tensor& t) {
      Strides s(batch.size(), 0);
      size_t off = batch.size() - static_cast<size_t>(t.ndim() - 2);
      for (size_t i = 0; i + 2 < static_cast<size_t>(t.ndim()); ++i)
        if (t.shape()[i] != 1) s[off + i] = t.strides()[i];
      return s;
    };
    a_bs = bstrides(a), b_bs = bstrides(b);
    size_t na = static_cast<size_t>(a.ndim()), nb = static_cast<size_t>(b.ndim());
    a_rs = a.strides()[na - 2], a_cs = a.strides()[na - 1];
    b_rs = b.strides()[nb - 2], b_cs = b.strides()[nb - 1];
  }
  // C's row stride (graph mode may hand the kernel an output whose batch axes are permuted:
  // Value::strided_output; its columns are contiguous).
  int64_t ldc() const { return c->strides()[c->strides().size() - 2]; }
  bool c_dense() const { return c->is_contiguous(); }
  // Element offsets of every batch entry for batch strides bs (odometer over the batch shape).
  void batch_offsets(std::span<const int64_t> bs, std::vector<int64_t>& out) const {
    out.resize(static_cast<size_t>(nbatch));
    Shape idx(batch.size(), 0);
    int64_t o = 0;
    for (int64_t g = 0; g < nbatch; ++g) {
      out[static_cast<size_t>(g)] = o;
      for (size_t d = batch.size(); d-- > 0;) {
        o += bs[d];
        if (++idx[d] < batch[d]) break;
        o -= bs[d] * batch[d];
        idx[d] = 0;
      }
    }
  }
  // ... of A's and B's batch entries, and of C's (whose leading axes are the batch axes).
  void offsets(std::vector<int64_t>& ao, std::vector<int64_t>& bo) const {
    batch_offsets(a_bs, ao);
    batch_offsets(b_bs, bo);
  }
  void c_offsets(std::vector<int64_t>& co) const { batch_offsets(std::span(c->strides()).first(batch.size()), co); }
  // The row stride with which all (batch, row) pairs of A form one matrix, when B is shared by
  // every batch entry and A's batch axes are laid out like extra rows.
  std::optional<int64_t> folded_row_stride() const {
    for (int64_t s : b_bs)
      if (s != 0) return std::nullopt;
    std::vector<std::pair<int64_t, int64_t>> dims;  // (size, stride), size-1 axes dropped
    for (size_t d = 0; d < batch.size(); ++d)
      if (batch[d] != 1) dims.push_back({batch[d], a_bs[d]});
    if (m != 1) dims.push_back({m, a_rs});
    // The folded matrix must be row-major with unit column stride (BLAS "N" layout).
    if (k > 1 && a_cs != 1) return std::nullopt;
    if (dims.empty()) return std::max<int64_t>(1, k);
    for (size_t i = 0; i + 1 < dims.size(); ++i)
      if (dims[i].second != dims[i + 1].second * dims[i + 1].first) return std::nullopt;
    int64_t rs = dims.back().second;
    if (rs < std::max<int64_t>(1, k)) return std::nullopt;
    return rs;
  }
};

// ---------------------------------------------------------------- float32 / float64
// Rows per block of a float64 triangular product (float32 ones run triangular_sgemm's 8-row
// register blocks). Blocks multiply only the part of A that can be nonzero (LowerA, UpperA) or
// compute only the result columns that are read (LowerResult), as separate library GEMMs: for
// the 128 x 128 products of attention (64 batches, 2 threads), 32-row blocks took ~0.62 of the
// dense product's time when A is triangular, 64-row blocks ~0.85 for a lower result. These are
// also the smallest products given a structure at all.
constexpr int64_t kTriangleBlockA = 32;
constexpr int64_t kTriangleBlockResult = 64;

// Whether P's shape allows its structure (a kernel may always run the dense product instead).
bool structure_applies(const Problem& P) {
  switch (P.structure) {
    case MatmulStructure::LowerA:
    case MatmulStructure::UpperA:
      return P.m == P.k && P.m > kTriangleBlockA;
    case MatmulStructure::LowerResult:
      return P.m == P.n && P.m > kTriangleBlockResult;
    case MatmulStructure::Dense:
      break;
  }
  return false;
}

// One product C = A B with triangular structure s, C row-major with n columns: float32 in 8-row
// register blocks (triangular_sgemm; pack: triangular_pack_floats of scratch, or null), float64
// as row blocks of library GEMMs.
template <typename T>
void gemm_triangular(MatmulStructure s, int64_t m, int64_t n, int64_t k, const T* A, const BlasLayout& la, const T* B,
                     const BlasLayout& lb, T* C, int64_t ldc, T* pack) {
  if constexpr (std::is_same_v<T, float>) {
    triangular_sgemm(s, m, n, k, A, la.trans ? 1 : la.ld, la.trans ? la.ld : 1, B, lb.trans ? 1 : lb.ld,
                     lb.trans ? lb.ld : 1, C, ldc, pack);
    return;
  }
  auto a_at = [&](int64_t i, int64_t p) { return A + (la.trans ? p * la.ld + i : i * la.ld + p); };
  auto b_at = [&](int64_t p, int64_t j) { return B + (lb.trans ? j * lb.ld + p : p * lb.ld + j); };
  const int64_t rb = s == MatmulStructure::LowerResult ? kTriangleBlockResult : kTriangleBlockA;
  for (int64_t i0 = 0; i0 < m; i0 += rb) {
    const int64_t i1 = std::min(m, i0 + rb), rows = i1 - i0;
    T* c = C + i0 * ldc;
    if (s == MatmulStructure::LowerA) {  // rows i < i1 read A[i, p] for p < i1 only
      gemm(la.trans, lb.trans, rows, n, i1, a_at(i0, 0), la.ld, b_at(0, 0), lb.ld, T(0), c, ldc);
    } else if (s == MatmulStructure::UpperA) {  // rows i >= i0 read A[i, p] for p >= i0 only
      gemm(la.trans, lb.trans, rows, n, k - i0, a_at(i0, i0), la.ld, b_at(i0, 0), lb.ld, T(0), c, ldc);
    } else {  // LowerResult: columns j < i1; the columns right of the block are written as zeros
      gemm(la.trans, lb.trans, rows, i1, k, a_at(i0, 0), la.ld, b_at(0, 0), lb.ld, T(0), c, ldc);
      for (int64_t r = 0; r < rows; ++r) std::fill(c + r * ldc + i1, c + r * ldc + n, T(0));
    }
  }
}

template <typename T>
void matmul_blas(Problem& P) {
  auto la = blas_layout(P.m, P.k, P.a_rs, P.a_cs);
  if (!la) {
    P.set(contig(P.a), P.b);
    la = blas_layout(P.m, P.k, P.a_rs, P.a_cs);
  }
  auto lb = blas_layout(P.k, P.n, P.b_rs, P.b_cs);
  if (!lb) {
    P.set(P.a, contig(P.b));
    lb = blas_layout(P.k, P.n, P.b_rs, P.b_cs);
  }
  const T* A = static_cast<const T*>(P.a.raw_data());
  const T* B = static_cast<const T*>(P.b.raw_data());
  T* C = static_cast<T*>(P.c->raw_data());
  const bool triangular = structure_applies(P);
  // [B, M, K] x [K, N]: one GEMM of [B*M, K] x [K, N] (the output is contiguous).
  if (auto rs = triangular || !P.c_dense() ? std::nullopt : P.folded_row_stride()) {
    gemm(false, lb->trans, P.m * P.nbatch, P.n, P.k, A, *rs, B, lb->ld, T(0), C, P.n);
    return;
  }
  std::vector<int64_t> ao, bo, co;
  P.offsets(ao, bo);
  P.c_offsets(co);
  const int64_t ldc = P.ldc();
  // float32 triangular products pack B's panels into one buffer per thread (allocated here, not
  // inside the parallel region); nested in a caller's parallel region everything runs inline.
  const bool nested = omp_in_parallel();
  int64_t pack_floats = 0;
  std::vector<T> packs;
  if constexpr (std::is_same_v<T, float>)
    if (triangular) pack_floats = triangular_pack_floats(P.n, P.k, lb->trans ? lb->ld : 1);
  if (pack_floats) packs.resize(static_cast<size_t>(pack_floats * (nested ? 1 : std::max(1, num_threads()))));
  auto one = [&](int64_t g) {
    const T* a = A + ao[static_cast<size_t>(g)];
    const T* b = B + bo[static_cast<size_t>(g)];
    T* c = C + co[static_cast<size_t>(g)];
    T* pack = pack_floats ? packs.data() + (nested ? 0 : omp_get_thread_num()) * pack_floats : nullptr;
    if (triangular)
      gemm_triangular(P.structure, P.m, P.n, P.k, a, *la, b, *lb, c, ldc, pack);
    else
      gemm(la->trans, lb->trans, P.m, P.n, P.k, a, la->ld, b, lb->ld, T(0), c, ldc);
  };
  // Large products parallelize inside the library; many small ones across the batch.
  if (P.m * P.n * P.k >= (int64_t{1} << 21)) {
    for (int64_t g = 0; g < P.nbatch; ++g) one(g);
  } else {
    sync_library_threads();
    int64_t grain = std::max<int64_t>(1, (int64_t{1} << 16) / std::max<int64_t>(1, P.m * P.n * P.k));
    parallel_for(0, P.nbatch, grain, [&](int64_t b, int64_t e) {
      for (int64_t g = b; g < e; ++g) one(g);
    });
  }
}

// --------------------------------------------------------------------------- bfloat16
// ------------------------------------------------- oneDNN matmul primitive (bf16, f32 x B^T)
// Identifies a cached primitive: [m, k] x [k, n] with these strides, thread count, data type and
// post-ops (PostOps::key, "" for none).
struct PrimKey {
  int64_t m, n, k, a_rs, a_cs, b_rs, b_cs, threads;
  int dt;
  std::string post_ops;
  auto tie() const { return std::tie(m, n, k, a_rs, a_cs, b_rs, b_cs, threads, dt, post_ops); }
  bool operator<(const PrimKey& o) const { return tie() < o.tie(); }
  dnnl::memory::data_type type() const { return static_cast<dnnl::memory::data_type>(dt); }
  dnnl::memory::desc a_md() const { return dnnl::memory::desc({m, k}, type(), {a_rs, a_cs}); }
  dnnl::memory::desc b_md() const { return dnnl::memory::desc({k, n}, type(), {b_rs, b_cs}); }
  dnnl::memory::desc c_md() const { return dnnl::memory::desc({m, n}, type(), {n, 1}); }
};
// The key of P's product with m rows (its batch folded in when it folds) and A, B laid out as la, lb.
PrimKey prim_key(const Problem& P, int64_t m, const BlasLayout& la, const BlasLayout& lb, dnnl::memory::data_type t,
                 std::string post_ops = {}) {
  auto rs = [](const BlasLayout& l) { return l.trans ? 1 : l.ld; };
  auto cs = [](const BlasLayout& l) { return l.trans ? l.ld : 1; };
  return PrimKey{
      m, P.n, P.k, rs(la), cs(la), rs(lb), cs(lb), get_num_threads(), static_cast<int>(t), std::move(post_ops)};
}

const dnnl::engine& dnnl_engine() {
  static const dnnl::engine eng(dnnl::engine::kind::cpu, 0);
  return eng;
}

// A cached oneDNN matmul primitive for key, with `post` as post-ops when given. nullopt when
// oneDNN has no optimized implementation with those post-ops (without post-ops its errors are
// raised).
std::optional<dnnl::matmul> matmul_primitive(const PrimKey& key, const PostOps* post = nullptr) {
  static std::mutex mu;
  static std::map<PrimKey, std::optional<dnnl::matmul>> cache;
  std::lock_guard<std::mutex> lock(mu);
  auto it = cache.find(key);
  if (it != cache.end()) return it->second;
  std::optional<dnnl::matmul> made;
  const dnnl::matmul::desc desc = post && post->bias.data
                                      ? dnnl::matmul::desc(key.a_md(), key.b_md(), post->bias.md, key.c_md())
                                      : dnnl::matmul::desc(key.a_md(), key.b_md(), key.c_md());
  if (!post) {
    made = dnnl::matmul(dnnl::matmul::primitive_desc(desc, dnnl_engine()));
  } else {
    try {
      dnnl::matmul::primitive_desc pd(desc, post->attr, dnnl_engine());
      if (!is_reference_impl(pd)) made = dnnl::matmul(pd);
    } catch (const dnnl::error&) {
    }
  }
  if (cache.size() >= 512) cache.clear();
  cache.emplace(key, made);
  return made;
}

// bfloat16 (f32 accumulation inside oneDNN) or float32, through the matmul primitive.
template <typename T>
void matmul_dnnl(Problem& P) {
  constexpr auto t = std::is_same_v<T, float> ? dnnl::memory::data_type::f32 : dnnl::memory::data_type::bf16;
  auto la = blas_layout(P.m, P.k, P.a_rs, P.a_cs);
  if (!la) P.set(contig(P.a), P.b), la = blas_layout(P.m, P.k, P.a_rs, P.a_cs);
  auto lb = blas_layout(P.k, P.n, P.b_rs, P.b_cs);
  if (!lb) P.set(P.a, contig(P.b)), lb = blas_layout(P.k, P.n, P.b_rs, P.b_cs);
  int64_t m = P.m, nbatch = P.nbatch;
  if (auto frs = P.folded_row_stride()) {  // the whole batch as one product, as in matmul_blas
    la = BlasLayout{false, *frs};
    m *= nbatch, nbatch = 1;
  }
  sync_library_threads();
  const PrimKey key = prim_key(P, m, *la, *lb, t);
  const dnnl::matmul prim = *matmul_primitive(key);
  const dnnl::memory::desc amd = key.a_md(), bmd = key.b_md(), cmd = key.c_md();
  std::vector<int64_t> ao, bo;
  P.offsets(ao, bo);
  auto* A = static_cast<T*>(P.a.raw_data());
  auto* B = static_cast<T*>(P.b.raw_data());
  auto* C = static_cast<T*>(P.c->raw_data());
  dnnl::stream strm(dnnl_engine());
  for (int64_t g = 0; g < nbatch; ++g) {
    dnnl::memory am(amd, dnnl_engine(), A + ao[static_cast<size_t>(g)]);
    dnnl::memory bm(bmd, dnnl_engine(), B + bo[static_cast<size_t>(g)]);
    dnnl::memory cm(cmd, dnnl_engine(), C + g * m * P.n);
    prim.execute(strm, {{DNNL_ARG_SRC, am}, {DNNL_ARG_WEIGHTS, bm}, {DNNL_ARG_DST, cm}});
  }
  strm.wait();
}

// ---------------------------------------------------------------------- integers, bool
template <typename T, typename U>
void matmul_int(Problem& P) {
  if (P.n > 1 && P.b_cs != 1) P.set(P.a, contig(P.b));  // rows of B with unit stride
  std::vector<int64_t> ao, bo;
  P.offsets(ao, bo);
  const T* A = static_cast<const T*>(P.a.raw_data());
  const T* B = static_cast<const T*>(P.b.raw_data());
  T* C = static_cast<T*>(P.c->raw_data());
  int64_t m = P.m, n = P.n, k = P.k;
  int64_t grain = std::max<int64_t>(1, 16384 / std::max<int64_t>(1, n * k));
  parallel_for(0, P.nbatch * m, grain, [&](int64_t rb, int64_t re) {
    std::vector<U> acc(static_cast<size_t>(n));
    for (int64_t r = rb; r < re; ++r) {
      int64_t g = r / m, i = r % m;
      const T* arow = A + ao[static_cast<size_t>(g)] + i * P.a_rs;
      const T* bmat = B + bo[static_cast<size_t>(g)];
      std::fill(acc.begin(), acc.end(), U(0));
      for (int64_t p = 0; p < k; ++p) {
        U av = static_cast<U>(arow[p * P.a_cs]);
        if (av == 0) continue;
        const T* brow = bmat + p * P.b_rs;
        if constexpr (std::is_same_v<T, bool>) {
          for (int64_t j = 0; j < n; ++j) acc[static_cast<size_t>(j)] |= static_cast<U>(brow[j]);
        } else {
          for (int64_t j = 0; j < n; ++j) acc[static_cast<size_t>(j)] += av * static_cast<U>(brow[j]);
        }
      }
      T* crow = C + r * n;
      for (int64_t j = 0; j < n; ++j) crow[j] = static_cast<T>(acc[static_cast<size_t>(j)]);
    }
  });
}

// ------------------------------------------------------------------------ float16 etc.
// Computes in float32 and rounds into the output.
void matmul_via_float32(Problem& P);

// A x B^T with A row-major (the Linear-layer pattern): oneDNN's matmul primitive beats dnnl_sgemm
// with transb = 'T' from 256^3 multiply-adds up (~200 vs ~165 GFLOP/s at n = 256..512).
bool prefer_primitive_f32(const Problem& P) {
  if (P.m * P.n * P.k < (int64_t{1} << 24)) return false;
  auto la = blas_layout(P.m, P.k, P.a_rs, P.a_cs);
  auto lb = blas_layout(P.k, P.n, P.b_rs, P.b_cs);
  return la && lb && !la->trans && lb->trans && P.n > 1 && P.k > 1;
}

void run_problem(Problem& P) {
  switch (P.c->dtype()) {
    case DType::Float32:
      if (prefer_primitive_f32(P) && !structure_applies(P) && P.c_dense())
        matmul_dnnl<float>(P);
      else
        matmul_blas<float>(P);
      break;
    case DType::Float64:
      matmul_blas<double>(P);
      break;
    case DType::BFloat16:
      if (cpu_has_bf16() && P.m * P.n * P.k >= 32768)
        matmul_dnnl<BFloat16>(P);
      else
        matmul_via_float32(P);
      break;
    case DType::Float16:
      matmul_via_float32(P);
      break;
    case DType::Bool:
      matmul_int<bool, uint8_t>(P);
      break;
    case DType::UInt8:
      matmul_int<uint8_t, uint32_t>(P);
      break;
    case DType::Int8:
      matmul_int<int8_t, uint32_t>(P);
      break;
    case DType::Int32:
      matmul_int<int32_t, uint32_t>(P);
      break;
    case DType::Int64:
      matmul_int<int64_t, uint64_t>(P);
      break;
  }
}

Problem make_problem(const Tensor& a, const Tensor& b, const Tensor& c) {
  Problem P;
  P.c = &c;
  const Shape& cs = c.shape();
  P.batch.assign(cs.begin(), cs.end() - 2);
  P.m = cs[cs.size() - 2];
  P.n = cs.back();
  P.k = a.shape().back();
  P.nbatch = 1;
  for (int64_t d : P.batch) P.nbatch *= d;
  P.set(a, b);
  return P;
}

void matmul_via_float32(Problem& P) {
  Tensor c32 = detail::alloc_tensor(P.c->shape(), DType::Float32, P.c->device());
  Problem Q = make_problem(to_dtype(P.a, DType::Float32), to_dtype(P.b, DType::Float32), c32);
  matmul_blas<float>(Q);
  const float* src = c32.data<float>();
  visit_dtype(P.c->dtype(), [&](auto tag) {
    using T = decltype(tag);
    if constexpr (std::is_same_v<T, Half> || std::is_same_v<T, BFloat16>) {
      T* dst = static_cast<T*>(P.c->raw_data());
      parallel_for(0, c32.numel(), kElementwiseGrain, [&](int64_t b, int64_t e) {
        for (int64_t i = b; i < e; ++i) dst[i] = T(src[i]);
      });
    }
  });
}

void matmul_kernel(const KernelCall& call) {
  const Tensor& c = call.out[0];
  if (c.numel() == 0) return;
  const Tensor &a = call.in[0], &b = call.in[1];
  if (a.shape().back() == 0) {  // empty sum
    std::memset(c.raw_data(), 0, static_cast<size_t>(c.numel()) * c.itemsize());
    return;
  }
  Problem P = make_problem(a, b, c);
  if (const auto* ma = std::get_if<MatmulAttrs>(&call.attrs)) P.structure = ma->structure;
  const bool float_blas = c.dtype() == DType::Float32 || c.dtype() == DType::Float64;
  if (!c.is_contiguous() && (!float_blas || c.strides().back() != 1))
    raise<Error>("matmul", "a preallocated output with strides " + shape_str(c.strides()) + " for " +
                               std::string(dtype_name(c.dtype())) + shape_str(c.shape()) +
                               ": only float32/float64 outputs with contiguous rows may be strided");
  run_problem(P);
}

}  // namespace

// A float32 product whose batch folds into rows ([B, M, K] x [K, N]) or that has no batch, with
// a graph-mode epilogue as oneDNN post-ops (epilogue.h): returns the steps fused, or -1 when
// eager's kernel should run instead (tiny or unfoldable products, no step with a post-op).
int matmul_with_post_ops(const graph::Epilogue& e, std::span<const Tensor> in, const Tensor& out) {
  const Tensor &a = in[0], &b = in[1];
  if (a.dtype() != DType::Float32 || b.dtype() != DType::Float32 || a.shape().back() == 0) return -1;
  Problem P = make_problem(a, b, out);
  auto la = blas_layout(P.m, P.k, P.a_rs, P.a_cs);
  auto lb = blas_layout(P.k, P.n, P.b_rs, P.b_cs);
  if (!la || !lb) return -1;
  int64_t m = P.m;
  if (P.nbatch > 1) {
    auto frs = P.folded_row_stride();
    if (!frs) return -1;
    la = BlasLayout{false, *frs};
    m *= P.nbatch;
  }
  if (m * P.n * P.k <= kTinyFlops) return -1;  // eager's loop, then one fused pass: cheaper than a primitive
  const PostOps post = make_post_ops(e, in, {m, P.n}, 1, true, true);
  if (post.steps == 0) return -1;
  sync_library_threads();
  const PrimKey key = prim_key(P, m, *la, *lb, dnnl::memory::data_type::f32, post.key);
  const std::optional<dnnl::matmul> prim = matmul_primitive(key, &post);
  if (!prim) return -1;
  const dnnl::engine& eng = dnnl_engine();
  std::unordered_map<int, dnnl::memory> args{{DNNL_ARG_SRC, dnnl::memory(key.a_md(), eng, P.a.raw_data())},
                                             {DNNL_ARG_WEIGHTS, dnnl::memory(key.b_md(), eng, P.b.raw_data())},
                                             {DNNL_ARG_DST, dnnl::memory(key.c_md(), eng, out.raw_data())}};
  add_post_op_args(post, eng, args);
  dnnl::stream strm(eng);
  prim->execute(strm, args);
  strm.wait();
  return post.steps;
}

namespace {

// Graph mode's row pitch for matrices only matmuls read (pad_row_pitches). Rows a multiple of
// 4 KiB apart share the L1's sets (and a few of L2's), and dnnl_sgemm's packing of a panel that
// runs down such rows misses on every row. Measured on the 2-core Zen 4 (dnnl_sgemm, 2 threads,
// interleaved, operands in hugepages): [256,2048]^T x [2048,1024] 5.3-5.4 -> 4.7-4.8 ms with the
// [2048,1024] operand's rows 64 bytes longer, [1024,2048]^T x [2048,256] 5.3-5.4 -> 4.9 ms; while
// other tenants loaded the host the first fell to 7.0 ms unpadded and stayed at 5.1 padded.
// Padding the other operand or the result changed nothing (within 2%), nor did it for products
// that read the 4 KiB-pitch operand along its rows (dnnl_sgemm, "N" A). But oneDNN's matmul
// primitive, which runs x W^T and every epilogue (prefer_primitive_f32, matmul_with_post_ops),
// leaves its brgemm kernel for gemm:jit when A's rows are padded: [2048,1024] x [1024,256]^T +
// bias 5.1 -> 7.0 ms. So a matrix such a product reads as A keeps dense rows. Matrices under
// 256 rows stay in cache.
int64_t cpu_matmul_row_pitch(int64_t rows, int64_t cols, DType dtype, std::span<const graph::MatmulRead> reads) {
  const int64_t itemsize = static_cast<int64_t>(dtype_size(dtype));
  if (rows < 256 || cols * itemsize % 4096 != 0) return 0;
  bool down_rows = false;
  for (const graph::MatmulRead& r : reads) {
    if (r.operand == 0 && !r.reduces_down_rows && (r.other_transposed || r.epilogue)) return 0;  // the primitive's A
    down_rows |= r.reduces_down_rows;
  }
  return down_rows ? cols + 64 / itemsize : 0;
}

[[maybe_unused]] const bool kRowPitchRegistered =
    (graph::register_matmul_row_pitch("cpu", &cpu_matmul_row_pitch), true);

}  // namespace

void register_matmul_kernels(Backend& b) { b.set_kernel(OpId::Matmul, &matmul_kernel, kAllDTypes); }

std::string linalg_info() {
  const dnnl_version_t* v = dnnl_version();
  std::string s = "linalg: oneDNN " + std::to_string(v->major) + "." + std::to_string(v->minor) + "." +
                  std::to_string(v->patch) + " (float32/bfloat16 GEMM, convolution";
  s += cpu_has_bf16() ? ", native bf16)" : ")";
  s += ", " + std::string(openblas_get_config()) + " (float64 GEMM, core " + openblas_get_corename() + ")";
  return s;
}

}  // namespace tessera::cpu
