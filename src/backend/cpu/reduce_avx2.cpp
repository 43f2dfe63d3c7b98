// The reduction body (reduce_impl.inc) for AVX2 + FMA + F16C, every dtype. Library headers come first, so that
// only the body's own functions are compiled for this instruction set.
#include <immintrin.h>

#include <algorithm>
#include <atomic>
#include <bit>
#include <cmath>
#include <cstring>
#include <limits>
#include <memory>
#include <type_traits>
#include <vector>

#include "../../core/dispatch.h"
#include "cpu_backend.h"
#include "parallel.h"
#include "reduce_common.h"
#include "tessera/error.h"

#pragma GCC target("avx2,fma,f16c,bmi,bmi2,lzcnt,popcnt")
#define TS_REDUCE_F16C 1
namespace tessera::cpu::reduce_avx2 {
#include "reduce_impl.inc"
}  // namespace tessera::cpu::reduce_avx2
