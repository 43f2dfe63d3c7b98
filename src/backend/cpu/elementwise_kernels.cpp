// Kernels of the unary, binary, where and cast primitives: pick the inner loop
// for (op, dtype) from the ISA table and run it with the strided driver.
#include <string>

#include "cpu_backend.h"
#include "elementwise_table.h"
#include "tessera/error.h"

namespace tessera::cpu {

const ElementwiseTable& elementwise_table() {
  static const ElementwiseTable table = [] {
    ElementwiseTable t;
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512dq") &&
        __builtin_cpu_supports("avx512vl")) {
      avx512::fill_elementwise_table(t);
      t.isa = "avx512";
    } else if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) {
      avx2::fill_elementwise_table(t);
      t.isa = "avx2";
    } else {
      baseline::fill_elementwise_table(t);
      t.isa = "baseline";
    }
    return t;
  }();
  return table;
}

const char* elementwise_isa() { return elementwise_table().isa; }

namespace {

void elementwise_kernel(const KernelCall& c) {
  // Where is keyed by the branch dtype, everything else by the first input's.
  DType key = c.op == OpId::Where ? c.in[1].dtype() : c.in[0].dtype();
  InnerLoop loop = elementwise_table().loops[static_cast<int>(c.op)][static_cast<int>(key)];
  if (!loop) raise<NotImplementedError>(op_name(c.op), "no CPU kernel for " + std::string(dtype_name(key)));
  ElementwiseFlags flags;
  run_elementwise(c.out[0], c.in, loop, &flags);
  if (flags.int_div_by_zero.load()) raise<ValueError>(op_name(c.op), "integer division by zero");
}

void cast_kernel(const KernelCall& c) {
  InnerLoop loop = elementwise_table().cast[static_cast<int>(c.in[0].dtype())][static_cast<int>(c.out[0].dtype())];
  run_elementwise(c.out[0], c.in, loop);
}

}  // namespace

void register_elementwise_kernels(Backend& b) {
  const ElementwiseTable& t = elementwise_table();
  for (int op = 0; op < kNumOps; ++op) {
    OpCategory cat = op_info(static_cast<OpId>(op)).category;
    if (cat != OpCategory::Unary && cat != OpCategory::Binary && cat != OpCategory::Ternary) continue;
    DTypeMask mask = 0;
    for (int d = 0; d < kNumDTypes; ++d)
      if (t.loops[op][d]) mask |= static_cast<DTypeMask>(1u << d);
    if (mask) b.set_kernel(static_cast<OpId>(op), &elementwise_kernel, mask);
  }
  b.set_kernel(OpId::Cast, &cast_kernel);
  // Where is keyed by the condition's dtype (bool) in dispatch; accept it.
  b.set_kernel(OpId::Where, &elementwise_kernel, kAllDTypes);
}

}  // namespace tessera::cpu
