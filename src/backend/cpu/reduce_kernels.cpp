// CPU kernels of the reductions (sum, prod, max, min, any, all, argmax, argmin) and cumsum.
//
// Layout. Every reduction first views its input as one contiguous block [S, A, R, B] (plan_block):
// A and B are the kept axes before and after the reduced run R; S is a second reduced run in front
// (as in axes {0, 2} of [N, C, HW]). Size-1 axes are dropped and a permuted-but-dense input (e.g. a
// transpose) is read in memory order, so no copy is needed for contiguous inputs, transposes, or
// reduced axes forming at most those two runs. Other inputs are copied once (non-dense views), with
// the reduced axes moved last when they are more scattered.
//
// Loops.
//   B == 1 ("inner"): each output reduces contiguous rows. L independent lane accumulators (64 for
//     4-byte, 32 for 8-byte accumulators: 8 vector registers) run over leaves of 16 * L elements.
//   B < L, L % B == 0: the row of R * B elements is reduced with the same lanes; lane j holds column
//     j % B, and lanes of one column are folded at the end.
//   otherwise ("outer"): wide column tiles of whole input rows are accumulated with vector adds.
// cumsum scans rows in blocks of 8 (inner axis) or whole rows with vector adds (outer axes).
//
// Accuracy and determinism. Floating sums and products are pairwise: leaves (of 16 lane rows, or 16
// input rows) are combined by a binary cascade, so the rounding error grows with log(n) instead of n
// (a sum of 1e7 float32 values keeps a relative error near 1e-7). Long reductions that have few
// outputs are split into chunks of 2^c leaves for the threads; because the chunks are aligned to the
// cascade, combining their results in order gives bit-for-bit the same value as the serial cascade.
// Chunking depends only on the shape, so every result is independent of the thread count.
//
// Instruction sets. The templated body (reduce_impl.inc) is compiled in three translation units, so
// the two cores of a build share it: reduce_baseline.cpp (x86-64) and reduce_avx2.cpp (AVX2+FMA+F16C)
// with every dtype, reduce_avx512.cpp with float32 only (it gains on cache-resident data; a full copy
// would cost another third of the compile time). The best copy is picked at run time (this file).
#include "reduce_common.h"  // with every header this file needs

namespace tessera::cpu {

using namespace reduce_common;

namespace {

// ------------------------------------------------------------------ ISA choice
// Each body's entry points return false for a dtype that copy was not built for.
struct ReduceIsa {
  bool (*reduce)(OpId, DType, const Block&, void*);
  bool (*arg)(bool, DType, const Block&, int64_t*);
  bool (*cumsum)(DType, const Block&, void*);
  bool (*sum_leaves)(DType, const void*, int64_t, int64_t, void*);
};
#define TS_REDUCE_ISA(ns) \
  ReduceIsa { &ns::reduce_run, &ns::arg_run, &ns::cumsum_run, &ns::sum_leaves_run }

/// The bodies to try, best first; the last one handles every dtype.
struct IsaChain {
  ReduceIsa first, second;
};

const IsaChain& isa() {
  static const IsaChain chain = [] {
    __builtin_cpu_init();
    bool avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("f16c");
    bool avx512 = avx2 && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
                  __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl");
    if (avx512) return IsaChain{TS_REDUCE_ISA(reduce_avx512), TS_REDUCE_ISA(reduce_avx2)};
    if (avx2) return IsaChain{TS_REDUCE_ISA(reduce_avx2), TS_REDUCE_ISA(reduce_avx2)};
    return IsaChain{TS_REDUCE_ISA(reduce_baseline), TS_REDUCE_ISA(reduce_baseline)};
  }();
  return chain;
}
#undef TS_REDUCE_ISA

// ------------------------------------------------------------------ layout planning
Tensor copy_of(const Tensor& x) {
  Tensor c;
  detail::execute(OpId::Copy, std::span<const Tensor>(&x, 1), NoAttrs{}, std::span<Tensor>(&c, 1));
  return c;
}

enum class Fit { Ok, NotDense, Scattered };

/// Views x as [S, A, R, B] when its non-unit axes, read in memory order, are dense (no gaps, no
/// overlap, positive strides), the kept ones keep their logical order, and the runs of reduced and
/// kept axes follow the pattern [kept] reduced [kept] or reduced kept reduced [kept].
Fit try_block(const Tensor& x, const std::vector<bool>& red, Block& blk) {
  struct Dim {
    int64_t size, stride, axis;
    bool red;
  };
  std::vector<Dim> dims;
  for (int64_t d = 0; d < x.ndim(); ++d) {
    int64_t n = x.shape()[static_cast<size_t>(d)], s = x.strides()[static_cast<size_t>(d)];
    if (n == 1) continue;
    if (s <= 0) return Fit::NotDense;
    dims.push_back({n, s, d, red[static_cast<size_t>(d)]});
  }
  std::stable_sort(dims.begin(), dims.end(), [](const Dim& a, const Dim& b) { return a.stride > b.stride; });
  int64_t expect = 1;
  for (size_t i = dims.size(); i-- > 0;) {
    if (dims[i].stride != expect) return Fit::NotDense;
    expect *= dims[i].size;
  }
  // Runs of consecutive reduced / kept axes, in memory order.
  struct Run {
    bool red;
    int64_t size;
  };
  std::vector<Run> runs;
  int64_t last_kept = -1;
  for (const Dim& d : dims) {
    if (!d.red) {
      if (d.axis < last_kept) return Fit::Scattered;
      last_kept = d.axis;
    }
    if (!runs.empty() && runs.back().red == d.red)
      runs.back().size *= d.size;
    else
      runs.push_back({d.red, d.size});
  }
  int64_t S = 1, A = 1, R = 1, B = 1;
  size_t i = 0;
  int nred = 0;
  for (const Run& r : runs) nred += r.red;
  if (nred > 2) return Fit::Scattered;
  if (nred == 2) {
    if (!runs[0].red) return Fit::Scattered;
    S = runs[i++].size;
  }
  if (i < runs.size() && !runs[i].red) A = runs[i++].size;
  if (i < runs.size() && runs[i].red) R = runs[i++].size;
  if (i < runs.size() && !runs[i].red) B = runs[i++].size;
  if (i != runs.size()) return Fit::Scattered;
  blk.data = x.impl().data();
  blk.S = S, blk.A = A, blk.R = R, blk.B = B;
  return Fit::Ok;
}

/// The [S, A, R, B] view of x reduced over the axes flagged in red, copying x when needed.
Block plan_block(const Tensor& x, const std::vector<bool>& red) {
  Block blk;
  if (x.numel() == 0) {  // nothing to read: every output is the identity
    for (int64_t d = 0; d < x.ndim(); ++d)
      if (!red[static_cast<size_t>(d)]) blk.A *= x.shape()[static_cast<size_t>(d)];
    blk.R = 0;
    return blk;
  }
  Fit f = try_block(x, red, blk);
  if (f == Fit::Ok) return blk;
  Tensor c = x;
  if (f == Fit::NotDense) {
    c = copy_of(x);
    if (try_block(c, red, blk) == Fit::Ok) {
      blk.keep = c;
      return blk;
    }
  }
  // Scattered reduced axes: move them last and copy, giving [kept, reduced] = [A, R, 1].
  Axes perm;
  std::vector<bool> red2;
  for (int64_t d = 0; d < x.ndim(); ++d)
    if (!red[static_cast<size_t>(d)]) perm.push_back(d), red2.push_back(false);
  for (int64_t d = 0; d < x.ndim(); ++d)
    if (red[static_cast<size_t>(d)]) perm.push_back(d), red2.push_back(true);
  Tensor p = copy_of(detail::make_view(OpId::Permute, c, PermuteAttrs{perm}));
  Fit f2 = try_block(p, red2, blk);
  if (f2 != Fit::Ok) raise<Error>("reduce", "internal error: no block layout for shape " + shape_str(x.shape()));
  blk.keep = p;
  return blk;
}

// ------------------------------------------------------------------ kernels
void reduce_kernel(const KernelCall& c) {
  const auto& a = std::get<ReduceAttrs>(c.attrs);
  const Tensor& x = c.in[0];
  if (c.out[0].numel() == 0) return;
  std::vector<bool> red(static_cast<size_t>(x.ndim()), false);
  for (int64_t ax : a.axes) red[static_cast<size_t>(ax)] = true;
  Block blk = plan_block(x, red);
  void* out = c.out[0].impl().data();
  if (!isa().first.reduce(c.op, x.dtype(), blk, out)) isa().second.reduce(c.op, x.dtype(), blk, out);
}

void arg_kernel(const KernelCall& c) {
  const auto& a = std::get<ArgReduceAttrs>(c.attrs);
  const Tensor& x = c.in[0];
  if (c.out[0].numel() == 0) return;
  std::vector<bool> red(static_cast<size_t>(x.ndim()), false);
  red[static_cast<size_t>(a.axis)] = true;
  Block blk = plan_block(x, red);
  auto* out = static_cast<int64_t*>(c.out[0].impl().data());
  if (!isa().first.arg(c.op == OpId::ArgMax, x.dtype(), blk, out))
    isa().second.arg(c.op == OpId::ArgMax, x.dtype(), blk, out);
}

void cumsum_kernel(const KernelCall& c) {
  const auto& a = std::get<AxisAttrs>(c.attrs);
  const Tensor& x = c.in[0];
  if (x.numel() == 0) return;
  // The output is row-major in logical order, so the input must be too.
  Block blk;
  blk.keep = x.is_contiguous() ? x : copy_of(x);
  blk.data = blk.keep.impl().data();
  blk.A = blk.B = 1;
  for (int64_t d = 0; d < x.ndim(); ++d) {
    int64_t n = x.shape()[static_cast<size_t>(d)];
    if (d < a.axis)
      blk.A *= n;
    else if (d > a.axis)
      blk.B *= n;
  }
  blk.R = x.shape()[static_cast<size_t>(a.axis)];
  void* out = c.out[0].impl().data();
  if (!isa().first.cumsum(x.dtype(), blk, out)) isa().second.cumsum(x.dtype(), blk, out);
}

}  // namespace

void reduce_contiguous(OpId op, DType dt, const void* data, int64_t A, int64_t R, int64_t B, void* out) {
  Block blk;
  blk.data = data;
  blk.A = A;
  blk.R = R;
  blk.B = B;
  if (!isa().first.reduce(op, dt, blk, out)) isa().second.reduce(op, dt, blk, out);
}

void sum_leaf_rows(DType dt, const void* leaves, int64_t count, int64_t n, void* out) {
  if (!isa().first.sum_leaves(dt, leaves, count, n, out) && !isa().second.sum_leaves(dt, leaves, count, n, out))
    raise<DTypeError>("sum", "no pairwise leaf combination for " + std::string(dtype_name(dt)));
}

void register_reduce_kernels(Backend& b) {
  for (OpId op : {OpId::Sum, OpId::Prod, OpId::Max, OpId::Min, OpId::Any, OpId::All})
    b.set_kernel(op, &reduce_kernel, kAllDTypes);
  b.set_kernel(OpId::ArgMax, &arg_kernel, kAllDTypes);
  b.set_kernel(OpId::ArgMin, &arg_kernel, kAllDTypes);
  b.set_kernel(OpId::Cumsum, &cumsum_kernel, kAllDTypes);
}

}  // namespace tessera::cpu
