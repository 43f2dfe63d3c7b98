// GEMM entry points shared by the CPU matmul and convolution kernels (implemented in
// matmul_kernels.cpp). Row-major: C[m, n] = A[m, k] B[k, n] + beta C, where A is stored as
// [k, m] when ta is set (element (i, p) at a[p * lda + i]) and likewise B as [n, k] when tb is set.
// float32 goes to oneDNN (or a direct loop for tiny products), float64 to OpenBLAS. The calls
// use get_num_threads() threads, or one thread inside a parallel region.
#pragma once

#include <cstdint>

namespace tessera::cpu {

void gemm(bool ta, bool tb, int64_t m, int64_t n, int64_t k, const float* a, int64_t lda, const float* b, int64_t ldb,
          float beta, float* c, int64_t ldc);
void gemm(bool ta, bool tb, int64_t m, int64_t n, int64_t k, const double* a, int64_t lda, const double* b, int64_t ldb,
          double beta, double* c, int64_t ldc);

/// Makes the OpenMP thread count of the calling thread (which oneDNN and OpenBLAS read)
/// equal to tessera::get_num_threads(). Call before any library call that may go parallel.
void sync_library_threads();

/// True when the CPU runs bfloat16 dot products natively (AVX512_BF16), so oneDNN's bf16
/// primitives are faster than converting to float32.
bool cpu_has_bf16();

}  // namespace tessera::cpu
