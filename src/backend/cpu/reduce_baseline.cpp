// The reduction body (reduce_impl.inc) for baseline x86-64, every dtype. reduce_common.h (every header the body
// uses) comes first, so that only the body's own functions are compiled for this instruction set.
#include "reduce_common.h"

namespace tessera::cpu::reduce_baseline {
#include "reduce_impl.inc"
}  // namespace tessera::cpu::reduce_baseline
