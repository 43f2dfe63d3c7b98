// Strided elementwise driver for the CPU backend.
//
// run_elementwise broadcasts every input to the output's shape (stride 0 on
// broadcast axes), merges axes that are contiguous with each other, and calls
// an inner loop over the innermost axis for each run of elements, in
// parallel over the flattened index range. An inner loop receives one pointer
// and one byte stride per operand (output first) and checks itself for the
// contiguous / scalar-broadcast fast paths.
#pragma once

#include <cstdint>
#include <span>

#include "tessera/tensor.h"

namespace tessera::cpu {

inline constexpr int kMaxOperands = 4;
using InnerLoop = void (*)(char** ptrs, const int64_t* strides, int64_t n, const void* ctx);

/// out has the broadcast shape of ins; it may be strided (graph mode's padded rows).
void run_elementwise(const Tensor& out, std::span<const Tensor> ins, InnerLoop loop, const void* ctx = nullptr,
                     int64_t grain = 32768);

}  // namespace tessera::cpu
