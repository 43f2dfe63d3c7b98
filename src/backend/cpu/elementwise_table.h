// Inner loops of the elementwise primitives, one table per instruction set.
// elementwise_impl.inc is compiled once per ISA (baseline x86-64-v2, AVX2 = v3,
// AVX-512 = v4); the CPU backend picks the best table the CPU supports at load time.
#pragma once

#include <atomic>

#include "elementwise.h"
#include "tessera/primitives.h"

namespace tessera::cpu {

struct ElementwiseTable {
  const char* isa = "";
  // Unary, binary and where loops, by op and input dtype (nullptr: unsupported).
  InnerLoop loops[kNumOps][kNumDTypes] = {};
  // cast[from][to]
  InnerLoop cast[kNumDTypes][kNumDTypes] = {};
};

namespace baseline { void fill_elementwise_table(ElementwiseTable& t); }
namespace avx2 { void fill_elementwise_table(ElementwiseTable& t); }
namespace avx512 { void fill_elementwise_table(ElementwiseTable& t); }

/// The table for the best ISA this CPU supports (chosen once).
const ElementwiseTable& elementwise_table();

/// Set by integer remainder loops when a divisor is zero (ctx points to it).
struct ElementwiseFlags {
  std::atomic<bool> int_div_by_zero{false};
};

}  // namespace tessera::cpu
