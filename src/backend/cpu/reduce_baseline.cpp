// The reduction body (reduce_impl.inc) for baseline x86-64, every dtype. Library headers come first, so that
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

namespace tessera::cpu::reduce_baseline {
#include "reduce_impl.inc"
}  // namespace tessera::cpu::reduce_baseline
