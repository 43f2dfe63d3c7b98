// The reduction body (reduce_impl.inc) for AVX-512, float32 only. reduce_common.h (every header the body
// uses) comes first, so that only the body's own functions are compiled for this instruction set.
#include "reduce_common.h"

// AVX-512 pays only where the data sits in cache (about 25% on float32 row sums), so this copy
// covers float32 alone; other dtypes fall back to the AVX2 copy.
#pragma GCC target("avx512f,avx512bw,avx512dq,avx512vl,avx2,fma,f16c,bmi,bmi2,lzcnt,popcnt,prefer-vector-width=512")
#define TS_REDUCE_F16C 1
#define TS_REDUCE_FLOAT32_ONLY 1
namespace tessera::cpu::reduce_avx512 {
#include "reduce_impl.inc"
}  // namespace tessera::cpu::reduce_avx512
