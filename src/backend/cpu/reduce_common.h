// Shared by the reduction dispatcher (reduce_kernels.cpp) and its per-ISA bodies
// (reduce_baseline.cpp, reduce_avx2.cpp, reduce_avx512.cpp, each compiling reduce_impl.inc).
// It also includes everything the body needs, so that each ISA file includes it before its target
// pragma (library headers must not be compiled for the ISA).
#pragma once

#include <immintrin.h>

#include <algorithm>
#include <atomic>
#include <bit>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <memory>
#include <type_traits>
#include <vector>

#include "../../core/dispatch.h"
#include "cpu_backend.h"
#include "parallel.h"
#include "tessera/error.h"

namespace tessera::cpu::reduce_common {

/// An input seen as a contiguous [S, A, R, B] block: S and R reduced (or R scanned), A and B kept;
/// element (s, a, r, b) is at ((s * A + a) * R + r) * B + b and output (a, b) at a * B + b.
/// S > 1 only for a leading reduced run followed by another one (e.g. axes {0, 2} of [N, C, HW]).
struct Block {
  const void* data = nullptr;
  int64_t S = 1, A = 1, R = 1, B = 1;
  Tensor keep;  // owns the copy when one was made
};

/// Elements of work per task below which loops stay on one thread.
constexpr int64_t kGrain = 32768;

/// An uninitialized array (std::vector<bool> has no data()).
template <class T>
std::unique_ptr<T[]> scratch(int64_t n) {
  return std::unique_ptr<T[]>(new T[static_cast<size_t>(std::max<int64_t>(n, 1))]);
}

}  // namespace tessera::cpu::reduce_common

namespace tessera::cpu {
// The entry points of each body; they return false for a dtype that copy was not built for.
#define TS_REDUCE_DECLARE(ns)                                                             \
  namespace ns {                                                                          \
  bool reduce_run(OpId op, DType dt, const reduce_common::Block& blk, void* out);         \
  bool arg_run(bool is_max, DType dt, const reduce_common::Block& blk, int64_t* out);     \
  bool cumsum_run(DType dt, const reduce_common::Block& blk, void* out);                  \
  bool sum_leaves_run(DType dt, const void* leaves, int64_t count, int64_t n, void* out); \
  }
TS_REDUCE_DECLARE(reduce_baseline)
TS_REDUCE_DECLARE(reduce_avx2)
TS_REDUCE_DECLARE(reduce_avx512)
#undef TS_REDUCE_DECLARE
}  // namespace tessera::cpu
