// The reduction body (reduce_impl.inc) for AVX2 + FMA + F16C, every dtype. reduce_common.h (every header the body
// uses) comes first, so that only the body's own functions are compiled for this instruction set.
#include "reduce_common.h"

#pragma GCC target("avx2,fma,f16c,bmi,bmi2,lzcnt,popcnt")
#define TS_REDUCE_F16C 1
namespace tessera::cpu::reduce_avx2 {
#include "reduce_impl.inc"
}  // namespace tessera::cpu::reduce_avx2
