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
// Instruction sets. The templated body at the end of this file is compiled by including the file
// into itself: for baseline x86-64 and AVX2+FMA+F16C with every dtype, and for AVX-512 with float32
// only (it gains on cache-resident data; a full copy would cost another third of the compile
// time). The best copy is picked at run time.
#ifndef TS_REDUCE_ISA_BODY

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
#include "tessera/error.h"

namespace tessera::cpu {

namespace {

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

}  // namespace

// The per-ISA bodies (see the end of this file).
#define TS_REDUCE_ISA_BODY
namespace reduce_baseline {
#include "reduce_kernels.cpp"
}  // namespace reduce_baseline
#pragma GCC push_options
#pragma GCC target("avx2,fma,f16c,bmi,bmi2,lzcnt,popcnt")
#define TS_REDUCE_F16C 1
namespace reduce_avx2 {
#include "reduce_kernels.cpp"
}  // namespace reduce_avx2
#pragma GCC pop_options
// AVX-512 pays only where the data sits in cache (about 25% on float32 row sums), so that copy
// covers float32 alone; other dtypes fall back to the AVX2 copy.
#pragma GCC push_options
#pragma GCC target("avx512f,avx512bw,avx512dq,avx512vl,avx2,fma,f16c,bmi,bmi2,lzcnt,popcnt,prefer-vector-width=512")
#define TS_REDUCE_FLOAT32_ONLY 1
namespace reduce_avx512 {
#include "reduce_kernels.cpp"
}  // namespace reduce_avx512
#undef TS_REDUCE_FLOAT32_ONLY
#pragma GCC pop_options
#undef TS_REDUCE_F16C
#undef TS_REDUCE_ISA_BODY

namespace {

// ------------------------------------------------------------------ ISA choice
// Each body's entry points return false for a dtype that copy was not built for.
struct ReduceIsa {
  bool (*reduce)(OpId, DType, const Block&, void*);
  bool (*arg)(bool, DType, const Block&, int64_t*);
  bool (*cumsum)(DType, const Block&, void*);
};
#define TS_REDUCE_ISA(ns) \
  ReduceIsa { &ns::reduce_run, &ns::arg_run, &ns::cumsum_run }

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

void register_reduce_kernels(Backend& b) {
  for (OpId op : {OpId::Sum, OpId::Prod, OpId::Max, OpId::Min, OpId::Any, OpId::All})
    b.set_kernel(op, &reduce_kernel, kAllDTypes);
  b.set_kernel(OpId::ArgMax, &arg_kernel, kAllDTypes);
  b.set_kernel(OpId::ArgMin, &arg_kernel, kAllDTypes);
  b.set_kernel(OpId::Cumsum, &cumsum_kernel, kAllDTypes);
}

}  // namespace tessera::cpu

#else  // ================================================ TS_REDUCE_ISA_BODY: compiled once per ISA
// No #include here: this text is pasted into a namespace.

namespace {

template <class T>
inline constexpr bool kIsHalf = std::is_same_v<T, Half> || std::is_same_v<T, BFloat16>;
template <class T>
inline constexpr bool kIsFloat = kIsHalf<T> || std::is_floating_point_v<T>;
/// The type max/min/argmax compare in: float for the 16-bit floats, else the type itself.
template <class T>
using CmpT = std::conditional_t<kIsHalf<T>, float, T>;

// Sum, prod: float32 accumulates in float32 (pairwise), float16/bfloat16 in float32, float64 in
// float64; integers and bool in int64 (as uint64, so that overflow wraps instead of being UB).
template <class In>
using SumAcc =
    std::conditional_t<std::is_same_v<In, double>, double, std::conditional_t<kIsFloat<In>, float, uint64_t> >;
template <class In>
using SumOut = std::conditional_t<kIsFloat<In>, In, int64_t>;

template <class Acc, class In>
inline Acc to_acc(In x) {
  if constexpr (std::is_same_v<Acc, uint64_t>)
    return static_cast<uint64_t>(static_cast<int64_t>(x));
  else if constexpr (kIsHalf<In>)
    return static_cast<Acc>(static_cast<float>(x));
  else
    return static_cast<Acc>(x);
}
template <class Out, class Acc>
inline Out from_acc(Acc a) {
  if constexpr (std::is_same_v<Acc, uint64_t>)
    return static_cast<Out>(static_cast<int64_t>(a));
  else if constexpr (kIsHalf<Out>)
    return Out(static_cast<float>(a));
  else
    return static_cast<Out>(a);
}

// ---- the reduction operators: accumulator type, identity, element load, combine, output.
template <class In>
struct SumOp {
  using Acc = SumAcc<In>;
  using Out = SumOut<In>;
  static constexpr bool kPairwise = std::is_floating_point_v<Acc>;
  static constexpr bool kPlainLoad = true;  // load is a value conversion
  static Acc init() { return Acc(0); }
  static Acc load(In x) { return to_acc<Acc>(x); }
  static Acc comb(Acc a, Acc b) { return a + b; }
  static Out out(Acc a) { return from_acc<Out>(a); }
};
template <class In>
struct ProdOp : SumOp<In> {
  using Acc = SumAcc<In>;
  static Acc init() { return Acc(1); }
  static Acc comb(Acc a, Acc b) { return a * b; }
};
// NaN-propagating (like PyTorch): once a NaN is seen it stays.
template <class In>
struct MaxOp {
  using Acc = CmpT<In>;
  using Out = In;
  static constexpr bool kPairwise = false;
  static constexpr bool kPlainLoad = true;
  static Acc init() {
    if constexpr (std::is_floating_point_v<Acc>)
      return -std::numeric_limits<Acc>::infinity();
    else
      return std::numeric_limits<Acc>::lowest();
  }
  static Acc load(In x) { return static_cast<Acc>(x); }
  static Acc comb(Acc a, Acc b) {
    if constexpr (std::is_floating_point_v<Acc>)
      return (b != b || b > a) ? b : a;
    else
      return b > a ? b : a;
  }
  static Out out(Acc a) { return Out(a); }
};
template <class In>
struct MinOp : MaxOp<In> {
  using Acc = CmpT<In>;
  static Acc init() {
    if constexpr (std::is_floating_point_v<Acc>)
      return std::numeric_limits<Acc>::infinity();
    else
      return std::numeric_limits<Acc>::max();
  }
  static Acc comb(Acc a, Acc b) {
    if constexpr (std::is_floating_point_v<Acc>)
      return (b != b || b < a) ? b : a;
    else
      return b < a ? b : a;
  }
};
template <class In>
inline uint8_t nonzero(In x) {
  if constexpr (kIsHalf<In>)
    return (x.bits & 0x7fffu) != 0;  // +-0 are the only zeros; NaN is true
  else
    return static_cast<uint8_t>(x != In(0));
}
template <class In>
struct AnyOp {
  using Acc = uint8_t;
  using Out = bool;
  static constexpr bool kPairwise = false;
  static constexpr bool kPlainLoad = false;
  static Acc init() { return 0; }
  static Acc load(In x) { return nonzero(x); }
  static Acc comb(Acc a, Acc b) { return a | b; }
  static Out out(Acc a) { return a != 0; }
};
template <class In>
struct AllOp : AnyOp<In> {
  using Acc = uint8_t;
  static Acc init() { return 1; }
  static Acc comb(Acc a, Acc b) { return a & b; }
};

/// dst[i] = Op::load(p[i]), with vector conversions for the 16-bit floats.
template <class Op, class In>
inline void load_block(const In* p, int64_t n, typename Op::Acc* dst) {
  using Acc = typename Op::Acc;
#ifdef TS_REDUCE_F16C
  if constexpr (std::is_same_v<In, Half> && std::is_same_v<Acc, float> && Op::kPlainLoad) {
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
      _mm256_storeu_ps(dst + i, _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p + i))));
    for (; i < n; ++i) dst[i] = static_cast<float>(p[i]);
    return;
  }
#endif
  if constexpr (std::is_same_v<In, BFloat16> && std::is_same_v<Acc, float> && Op::kPlainLoad) {
    for (int64_t i = 0; i < n; ++i) {
      uint32_t u = static_cast<uint32_t>(p[i].bits) << 16;
      std::memcpy(dst + i, &u, 4);
    }
    return;
  }
  for (int64_t i = 0; i < n; ++i) dst[i] = Op::load(p[i]);
}

/// Binary-counter pairwise combination of equal-width vectors: push(v, l) adds a value covering
/// 2^l leaves; finish() combines what is left from the lowest level up.
template <class Op>
struct Cascade {
  using Acc = typename Op::Acc;
  Acc* store;  // 64 levels of w values
  int64_t w;
  uint64_t occupied = 0;
  void push(Acc* v, int level) {  // v is clobbered
    while (occupied >> level & 1u) {
      combine_into(v, store + level * w, w);
      occupied &= ~(uint64_t{1} << level);
      ++level;
    }
    std::copy(v, v + w, store + level * w);
    occupied |= uint64_t{1} << level;
  }
  void finish(Acc* dst) const {  // needs at least one push
    bool have = false;
    for (int l = 0; l < 64; ++l) {
      if (!(occupied >> l & 1u)) continue;
      const Acc* s = store + l * w;
      if (!have) {
        std::copy(s, s + w, dst);
        have = true;
      } else {
        combine_into(dst, s, w);
      }
    }
  }
  /// v[j] = comb(s[j], v[j]): the earlier (higher-level) value on the left.
  [[gnu::noinline]] static void combine_into(Acc* __restrict v, const Acc* __restrict s, int64_t w) {
    for (int64_t j = 0; j < w; ++j) v[j] = Op::comb(s[j], v[j]);
  }
};

/// parallel_for whose body may allocate: an exception inside is recorded and rethrown after the
/// parallel region (never thrown across it).
template <class Fn>
void parallel_tasks(int64_t n, int64_t grain, const Fn& fn) {
  std::atomic<bool> failed{false};
  parallel_for(0, n, grain, [&](int64_t b, int64_t e) {
    try {
      fn(b, e);
    } catch (...) {
      failed = true;
    }
  });
  if (failed) raise<OutOfMemoryError>("reduce", "out of memory for a reduction's scratch buffers");
}

/// Cascade levels needed for n leaves.
inline int64_t cascade_levels(int64_t n) { return static_cast<int64_t>(std::bit_width(static_cast<uint64_t>(n))) + 1; }

template <class Op, class In>
struct Engine {
  using Acc = typename Op::Acc;
  using Out = typename Op::Out;
  static constexpr int L = sizeof(Acc) >= 8 ? 32 : 64;  // lanes
  static constexpr int64_t kLeaf = 16 * int64_t{L};     // elements per leaf
  // Columns per outer tile (64 KiB of accumulators): rows are read in long sequential runs, which
  // matters more than keeping the accumulators in L1 (short runs separated by jumps read slowly).
  static constexpr int64_t kTile = 65536 / int64_t{sizeof(Acc)};
  static constexpr int64_t kRowLeaf = 16;  // rows per outer leaf
  static constexpr bool kDirect = std::is_same_v<In, Acc> && Op::kPlainLoad;

  static void fill_init(Acc* v, int64_t n) {
    for (int64_t i = 0; i < n; ++i) v[i] = Op::init();
  }

  /// lanes[j] accumulates the leaf's elements i == j (mod L); n <= kLeaf.
  static void leaf(const In* p, int64_t n, Acc* lanes) {
    const Acc* b;
    [[maybe_unused]] Acc buf[kDirect ? 1 : kLeaf];
    if constexpr (kDirect) {
      b = p;
    } else {
      load_block<Op>(p, n, buf);
      b = buf;
    }
    Acc acc[L];  // a local copy so that the accumulators live in registers
    for (int j = 0; j < L; ++j) acc[j] = lanes[j];
    const int64_t q = n / L * L;
    for (int64_t i = 0; i < q; i += L)
      for (int j = 0; j < L; ++j) acc[j] = Op::comb(acc[j], b[i + j]);
    for (int j = 0; j < L; ++j) lanes[j] = acc[j];
    for (int64_t j = 0; j < n - q; ++j) lanes[j] = Op::comb(lanes[j], b[q + j]);
  }

  /// The L lanes of a contiguous run of n elements (pairwise over leaves when Op::kPairwise).
  static void run_lanes(const In* p, int64_t n, Acc* lanes) {
    fill_init(lanes, L);
    if (!Op::kPairwise || n <= kLeaf) {
      for (int64_t s = 0; s < n; s += kLeaf) leaf(p + s, std::min(kLeaf, n - s), lanes);
      return;
    }
    Acc store[64 * L];
    Cascade<Op> c{store, L};
    Acc v[L];
    for (int64_t s = 0; s < n; s += kLeaf) {
      fill_init(v, L);
      leaf(p + s, std::min(kLeaf, n - s), v);
      c.push(v, 0);
    }
    c.finish(lanes);
  }

  /// Pairwise fold of the lanes down to `width` values (1, or a column count dividing L).
  static void fold(Acc* lanes, int width) {
    for (int w = L / 2; w >= width; w /= 2)
      for (int j = 0; j < w; ++j) lanes[j] = Op::comb(lanes[j], lanes[j + w]);
  }

  /// out[a * F + j], a < A: the reduction over s < S of the runs of n contiguous elements at
  /// x + (s * A + a) * n. F = 1, or the column count of the lane trick (lane j holds column j % F).
  static void inner(const In* x, int64_t S, int64_t A, int64_t n, int F, Out* out) {
    if (S == 1 && F == 1 && n < L) {  // short rows: one sequential loop each
      parallel_for(0, A, std::max<int64_t>(1, kGrain / n), [&](int64_t b, int64_t e) {
        for (int64_t a = b; a < e; ++a) {
          const In* p = x + a * n;
          Acc acc = Op::load(p[0]);
          for (int64_t i = 1; i < n; ++i) acc = Op::comb(acc, Op::load(p[i]));
          out[a] = Op::out(acc);
        }
      });
      return;
    }
    if (S > 1) {
      // Segments combine pairwise too. Outputs go in groups of G whose segments are adjacent in
      // memory, looping over s outside, so that memory is read in runs of about 64 KiB.
      const int64_t G = std::clamp<int64_t>(16384 / n, 1, 64), nblk = (A + G - 1) / G;
      const int64_t levels = Op::kPairwise ? cascade_levels(S) : 0;
      parallel_tasks(nblk, std::max<int64_t>(1, kGrain / (S * n * G)), [&](int64_t bb, int64_t be) {
        auto lanes = scratch<Acc>(G * L);
        auto store = scratch<Acc>(G * levels * L);
        std::vector<Cascade<Op> > cas(static_cast<size_t>(G));
        Acc v[L];
        for (int64_t blk = bb; blk < be; ++blk) {
          const int64_t a0 = blk * G, g_n = std::min(G, A - a0);
          for (int64_t g = 0; g < g_n; ++g) {
            cas[static_cast<size_t>(g)] = Cascade<Op>{store.get() + g * levels * L, L};
            fill_init(lanes.get() + g * L, L);
          }
          for (int64_t s = 0; s < S; ++s) {
            for (int64_t g = 0; g < g_n; ++g) {
              run_lanes(x + (s * A + a0 + g) * n, n, v);
              if constexpr (Op::kPairwise) {
                cas[static_cast<size_t>(g)].push(v, 0);
              } else {
                Acc* l = lanes.get() + g * L;
                for (int j = 0; j < L; ++j) l[j] = Op::comb(l[j], v[j]);
              }
            }
          }
          for (int64_t g = 0; g < g_n; ++g) {
            Acc* l = lanes.get() + g * L;
            if constexpr (Op::kPairwise) cas[static_cast<size_t>(g)].finish(l);
            fold(l, F);
            for (int j = 0; j < F; ++j) out[(a0 + g) * F + j] = Op::out(l[j]);
          }
        }
      });
      return;
    }
    // Few long rows: split each into chunks of 2^c leaves (at most 64 chunks), aligned with the cascade.
    int c = 0;
    int64_t chunk = n;
    if (A < 64 && n > (kLeaf << 6)) {
      c = 5;
      while ((n + (kLeaf << c) - 1) / (kLeaf << c) > 64) ++c;
      chunk = kLeaf << c;
    }
    const int64_t nch = (n + chunk - 1) / chunk;
    if (nch == 1) {
      parallel_for(0, A, std::max<int64_t>(1, kGrain / n), [&](int64_t b, int64_t e) {
        Acc lanes[L];
        for (int64_t a = b; a < e; ++a) {
          run_lanes(x + a * n, n, lanes);
          fold(lanes, F);
          for (int j = 0; j < F; ++j) out[a * F + j] = Op::out(lanes[j]);
        }
      });
      return;
    }
    auto part = scratch<Acc>(A * nch * L);
    parallel_for(0, A * nch, 1, [&](int64_t b, int64_t e) {
      for (int64_t t = b; t < e; ++t) {
        int64_t a = t / nch, s = (t % nch) * chunk;
        run_lanes(x + a * n + s, std::min(chunk, n - s), part.get() + t * L);
      }
    });
    parallel_for(0, A, 1, [&](int64_t b, int64_t e) {
      for (int64_t a = b; a < e; ++a) {
        Acc lanes[L];
        Acc* first = part.get() + a * nch * L;
        if constexpr (Op::kPairwise) {
          Acc store[64 * L];
          Cascade<Op> cas{store, L};
          for (int64_t k = 0; k < nch; ++k) cas.push(first + k * L, c);
          cas.finish(lanes);
        } else {
          std::copy(first, first + L, lanes);
          for (int64_t k = 1; k < nch; ++k)
            for (int j = 0; j < L; ++j) lanes[j] = Op::comb(lanes[j], first[k * L + j]);
        }
        fold(lanes, F);
        for (int j = 0; j < F; ++j) out[a * F + j] = Op::out(lanes[j]);
      }
    });
  }

  /// acc[j] = comb(acc[j], v[j]) for j < w. Not inlined: inside the row loop GCC's unroll-and-jam
  /// fuses rows and the fused loop no longer vectorizes.
  [[gnu::noinline]] static void accumulate(Acc* __restrict acc, const Acc* __restrict v, int64_t w) {
    for (int64_t j = 0; j < w; ++j) acc[j] = Op::comb(acc[j], v[j]);
  }

  /// acc[0, w) accumulates the reduced rows q in [qa, qb) (q = s * R + r) of columns [b0, b0 + w)
  /// of output row a.
  static void add_rows(const Block& k, const In* x, int64_t a, int64_t b0, int64_t w, int64_t qa, int64_t qb,
                       Acc* __restrict acc, Acc* __restrict rowbuf) {
    const int64_t A = k.A, R = k.R, B = k.B;
    int64_t s = qa / R, r = qa % R;
    const In* row = x + ((s * A + a) * R + r) * B + b0;
    // A tile narrower than the row is a short run followed by a jump: prefetch the next row's run
    // while this one is added, since the hardware streams restart at every jump.
    const bool gaps = w < B;
    for (int64_t q = qa; q < qb; ++q) {
      const In* next;
      if (++r == R) {
        r = 0;
        ++s;
        next = x + (s * A + a) * R * B + b0;
      } else {
        next = row + B;
      }
      if (gaps && q + 1 < qb) {
        const char* np = reinterpret_cast<const char*>(next);
        for (int64_t off = 0; off < w * static_cast<int64_t>(sizeof(In)); off += 64) __builtin_prefetch(np + off);
      }
      if constexpr (kDirect) {
        accumulate(acc, row, w);
      } else {
        load_block<Op>(row, w, rowbuf);
        accumulate(acc, rowbuf, w);
      }
      row = next;
    }
  }

  /// dst[0, w) = reduction over the reduced rows [q0, q1) of columns [b0, b0 + w) of output row a,
  /// pairwise over leaves of kRowLeaf rows. scr holds (2 + levels) * tile values.
  static void tile_rows(const Block& k, const In* x, int64_t a, int64_t b0, int64_t w, int64_t tile, int64_t q0,
                        int64_t q1, Acc* dst, Acc* scr) {
    Acc* rowbuf = scr;
    Acc* leafv = scr + tile;
    fill_init(dst, w);
    if (!Op::kPairwise || q1 - q0 <= kRowLeaf) {
      add_rows(k, x, a, b0, w, q0, q1, dst, rowbuf);
      return;
    }
    Cascade<Op> cas{scr + 2 * tile, w};
    for (int64_t q = q0; q < q1; q += kRowLeaf) {
      fill_init(leafv, w);
      add_rows(k, x, a, b0, w, q, std::min(q + kRowLeaf, q1), leafv, rowbuf);
      cas.push(leafv, 0);
    }
    cas.finish(dst);
  }

  /// Wide B: whole input rows accumulate into column tiles of the output row.
  static void outer(const Block& k, const In* x, Out* out) {
    const int64_t A = k.A, B = k.B, Q = k.S * k.R;
    const int64_t tile = std::min(B, kTile), ntiles = (B + tile - 1) / tile, tasks = A * ntiles;
    // Few tiles and many rows: split the rows into chunks of 2^c row leaves (at most 64 tasks).
    int c = 0;
    int64_t qchunk = Q;
    if (tasks < 32 && Q > (kRowLeaf << 5)) {
      c = 4;
      while (tasks * ((Q + (kRowLeaf << c) - 1) / (kRowLeaf << c)) > 64) ++c;
      qchunk = kRowLeaf << c;
    }
    const int64_t nq = (Q + qchunk - 1) / qchunk;
    const int64_t nscr = (2 + cascade_levels((qchunk + kRowLeaf - 1) / kRowLeaf)) * tile;
    auto cols = [&](int64_t t, int64_t& a, int64_t& b0, int64_t& w) {
      a = t / ntiles;
      b0 = (t % ntiles) * tile;
      w = std::min(tile, B - b0);
    };
    if (nq == 1) {
      parallel_tasks(tasks, std::max<int64_t>(1, kGrain / (Q * tile)), [&](int64_t tb, int64_t te) {
        auto scr = scratch<Acc>(nscr + tile);
        Acc* acc = scr.get() + nscr;
        for (int64_t t = tb; t < te; ++t) {
          int64_t a, b0, w;
          cols(t, a, b0, w);
          tile_rows(k, x, a, b0, w, tile, 0, Q, acc, scr.get());
          for (int64_t j = 0; j < w; ++j) out[a * B + b0 + j] = Op::out(acc[j]);
        }
      });
      return;
    }
    auto part = scratch<Acc>(tasks * nq * tile);
    parallel_tasks(tasks * nq, 1, [&](int64_t ub, int64_t ue) {
      auto scr = scratch<Acc>(nscr);
      for (int64_t u = ub; u < ue; ++u) {
        int64_t t = u / nq, kq = u % nq, a, b0, w;
        cols(t, a, b0, w);
        tile_rows(k, x, a, b0, w, tile, kq * qchunk, std::min(Q, (kq + 1) * qchunk), part.get() + u * tile, scr.get());
      }
    });
    const int64_t levels = c + cascade_levels(nq);
    parallel_tasks(tasks, 1, [&](int64_t tb, int64_t te) {
      auto scr = scratch<Acc>((levels + 1) * tile);
      Acc* acc = scr.get();
      for (int64_t t = tb; t < te; ++t) {
        int64_t a, b0, w;
        cols(t, a, b0, w);
        Acc* first = part.get() + t * nq * tile;
        if constexpr (Op::kPairwise) {
          Cascade<Op> cas{scr.get() + tile, w};
          for (int64_t kq = 0; kq < nq; ++kq) cas.push(first + kq * tile, c);
          cas.finish(acc);
        } else {
          std::copy(first, first + w, acc);
          for (int64_t kq = 1; kq < nq; ++kq)
            for (int64_t j = 0; j < w; ++j) acc[j] = Op::comb(acc[j], first[kq * tile + j]);
        }
        for (int64_t j = 0; j < w; ++j) out[a * B + b0 + j] = Op::out(acc[j]);
      }
    });
  }

  static void run(const Block& k, void* outp) {
    Out* out = static_cast<Out*>(outp);
    const int64_t S = k.S, A = k.A, R = k.R, B = k.B;
    if (S * R == 0) {
      const Out v = Op::out(Op::init());
      parallel_for(0, A * B, kGrain, [&](int64_t b, int64_t e) { std::fill(out + b, out + e, v); });
      return;
    }
    const In* x = static_cast<const In*>(k.data);
    if (S * R == 1) {
      parallel_for(0, A * B, kGrain, [&](int64_t b, int64_t e) {
        for (int64_t i = b; i < e; ++i) out[i] = Op::out(Op::load(x[i]));
      });
    } else if (B == 1) {
      inner(x, S, A, R, 1, out);
    } else if (B < L && L % B == 0 && R * B >= L) {
      inner(x, S, A, R * B, static_cast<int>(B), out);
    } else {
      outer(k, x, out);
    }
  }
};

// ---- argmax / argmin: the first index of the extreme; NaN counts as the extreme (like PyTorch).
template <class In, bool kMax>
struct ArgEngine {
  using V = CmpT<In>;
  using Ext = std::conditional_t<kMax, MaxOp<In>, MinOp<In> >;
  using E = Engine<Ext, In>;
  static constexpr int64_t kTile = 8192;  // columns per outer tile (long sequential row runs)
  static constexpr int64_t kChunk = int64_t{1} << 16;

  static bool is_nan(V v) {
    if constexpr (std::is_floating_point_v<V>)
      return v != v;
    else
      return false;
  }
  static bool better(V x, V best) {
    if constexpr (std::is_floating_point_v<V>)
      return (kMax ? x > best : x < best) || (x != x && best == best);
    else
      return kMax ? x > best : x < best;
  }
  static V extreme(const In* p, int64_t n) {
    typename E::Acc lanes[E::L];
    E::run_lanes(p, n, lanes);
    E::fold(lanes, 1);
    return lanes[0];
  }
  /// First i in [0, n) with p[i] == m (NaN matches NaN), or n. Blocks of 64 are tested with
  /// vector compares before the scalar search.
  static int64_t find_first(const In* p, int64_t n, V m) {
    const bool nan = is_nan(m);
    constexpr int64_t K = 64;
    [[maybe_unused]] V buf[K];
    for (int64_t s = 0; s < n; s += K) {
      const int64_t k = std::min(K, n - s);
      const V* v;
      if constexpr (std::is_same_v<In, V>) {
        v = p + s;
      } else {
        load_block<Ext>(p + s, k, buf);
        v = buf;
      }
      unsigned hit = 0;
      if (nan) {
        for (int64_t i = 0; i < k; ++i) hit |= static_cast<unsigned>(is_nan(v[i]));
      } else {
        for (int64_t i = 0; i < k; ++i) hit |= static_cast<unsigned>(v[i] == m);
      }
      if (hit)
        for (int64_t i = 0; i < k; ++i)
          if (nan ? is_nan(v[i]) : v[i] == m) return s + i;
    }
    return n;
  }

  static void inner(const In* x, int64_t A, int64_t R, int64_t* out) {
    if (A >= 64 || R <= 2 * kChunk) {
      parallel_for(0, A, std::max<int64_t>(1, kGrain / R), [&](int64_t b, int64_t e) {
        for (int64_t a = b; a < e; ++a) out[a] = find_first(x + a * R, R, extreme(x + a * R, R));
      });
      return;
    }
    // Few long rows: both passes over chunks in parallel.
    const int64_t nch = (R + kChunk - 1) / kChunk;
    auto ext = scratch<V>(A * nch), m = scratch<V>(A);
    auto pos = scratch<int64_t>(A * nch);
    parallel_for(0, A * nch, 1, [&](int64_t b, int64_t e) {
      for (int64_t t = b; t < e; ++t) {
        int64_t a = t / nch, s = (t % nch) * kChunk;
        ext[t] = extreme(x + a * R + s, std::min(kChunk, R - s));
      }
    });
    for (int64_t a = 0; a < A; ++a) {
      V v = ext[a * nch];
      for (int64_t k = 1; k < nch; ++k) v = Ext::comb(v, ext[a * nch + k]);
      m[a] = v;
    }
    parallel_for(0, A * nch, 1, [&](int64_t b, int64_t e) {
      for (int64_t t = b; t < e; ++t) {
        int64_t a = t / nch, s = (t % nch) * kChunk, n = std::min(kChunk, R - s);
        int64_t i = find_first(x + a * R + s, n, m[a]);
        pos[t] = i < n ? s + i : R;
      }
    });
    for (int64_t a = 0; a < A; ++a) {
      int64_t best = R;
      for (int64_t k = 0; k < nch && best == R; ++k) best = pos[a * nch + k];
      out[a] = best;
    }
  }

  /// Folds row r into the running extremes (kept out of line so that it vectorizes on its own).
  [[gnu::noinline]] static void step(V* __restrict best, int64_t* __restrict idx, const V* __restrict v, int64_t w,
                                     int64_t r) {
    for (int64_t j = 0; j < w; ++j) {
      bool bt = better(v[j], best[j]);
      best[j] = bt ? v[j] : best[j];
      idx[j] = bt ? r : idx[j];
    }
  }

  static void outer(const In* x, int64_t A, int64_t R, int64_t B, int64_t* out) {
    const int64_t tile = std::min(B, kTile), ntiles = (B + tile - 1) / tile;
    parallel_tasks(A * ntiles, std::max<int64_t>(1, kGrain / (R * tile)), [&](int64_t tb, int64_t te) {
      auto best = scratch<V>(tile), rowbuf = scratch<V>(tile);
      auto idx = scratch<int64_t>(tile);
      for (int64_t t = tb; t < te; ++t) {
        const int64_t a = t / ntiles, b0 = (t % ntiles) * tile, w = std::min(tile, B - b0);
        auto row = [&](int64_t r) -> const V* {
          const In* p = x + (a * R + r) * B + b0;
          if constexpr (std::is_same_v<In, V>) {
            return p;
          } else {
            load_block<Ext>(p, w, rowbuf.get());
            return rowbuf.get();
          }
        };
        const V* v0 = row(0);
        for (int64_t j = 0; j < w; ++j) best[j] = v0[j], idx[j] = 0;
        for (int64_t r = 1; r < R; ++r) step(best.get(), idx.get(), row(r), w, r);
        for (int64_t j = 0; j < w; ++j) out[a * B + b0 + j] = idx[j];
      }
    });
  }

  static void run(const Block& blk, int64_t* out) {
    const In* x = static_cast<const In*>(blk.data);
    if (blk.R <= 1) {
      parallel_for(0, blk.A * blk.B, kGrain, [&](int64_t b, int64_t e) { std::fill(out + b, out + e, int64_t{0}); });
    } else if (blk.B == 1) {
      inner(x, blk.A, blk.R, out);
    } else {
      outer(x, blk.A, blk.R, blk.B, out);
    }
  }
};

// ---- cumsum along the axis. float32 accumulates in float64 (like PyTorch on CPU), float16/bfloat16
// in float32, integers and bool in int64.
template <class In>
struct Cumsum {
  using Acc = std::conditional_t<std::is_same_v<In, float> || std::is_same_v<In, double>, double,
                                 std::conditional_t<kIsHalf<In>, float, uint64_t> >;
  using Out = SumOut<In>;
  static constexpr int64_t kTile = 8192;  // columns per outer tile (long sequential row runs)

  /// Inclusive scan of one contiguous row. Blocks of 8 are summed locally first, so that the running
  /// total (the only serial dependency) advances once per block instead of once per element; the
  /// rounding differs from a strictly sequential loop only in the accumulator's last bits.
  static void scan_contiguous(const In* p, Out* o, int64_t n) {
    constexpr int64_t K = 8;
    Acc carry = 0;
    int64_t i = 0;
    for (; i + K <= n; i += K) {
      Acc t[K];
      t[0] = to_acc<Acc>(p[i]);
      for (int64_t j = 1; j < K; ++j) t[j] = t[j - 1] + to_acc<Acc>(p[i + j]);
      for (int64_t j = 0; j < K; ++j) o[i + j] = from_acc<Out>(carry + t[j]);
      carry += t[K - 1];
    }
    for (; i < n; ++i) {
      carry += to_acc<Acc>(p[i]);
      o[i] = from_acc<Out>(carry);
    }
  }

  [[gnu::noinline]] static void scan_row(Acc* __restrict acc, const In* __restrict p, Out* __restrict o, int64_t w) {
    for (int64_t j = 0; j < w; ++j) {
      acc[j] += to_acc<Acc>(p[j]);
      o[j] = from_acc<Out>(acc[j]);
    }
  }

  static void run(const Block& blk, void* outp) {
    const In* x = static_cast<const In*>(blk.data);
    Out* out = static_cast<Out*>(outp);
    const int64_t A = blk.A, R = blk.R, B = blk.B;
    if (B == 1) {
      parallel_for(0, A, std::max<int64_t>(1, kGrain / std::max<int64_t>(R, 1)), [&](int64_t b, int64_t e) {
        for (int64_t a = b; a < e; ++a) scan_contiguous(x + a * R, out + a * R, R);
      });
      return;
    }
    const int64_t tile = std::min(B, kTile), ntiles = (B + tile - 1) / tile;
    parallel_tasks(A * ntiles, std::max<int64_t>(1, kGrain / (R * tile)), [&](int64_t tb, int64_t te) {
      auto acc = scratch<Acc>(tile);
      for (int64_t t = tb; t < te; ++t) {
        const int64_t a = t / ntiles, b0 = (t % ntiles) * tile, w = std::min(tile, B - b0);
        std::fill(acc.get(), acc.get() + w, Acc(0));
        for (int64_t r = 0; r < R; ++r) scan_row(acc.get(), x + (a * R + r) * B + b0, out + (a * R + r) * B + b0, w);
      }
    });
  }
};
}  // namespace

// Dtypes this copy is built for.
inline bool built_for([[maybe_unused]] DType dt) {
#ifdef TS_REDUCE_FLOAT32_ONLY
  return dt == DType::Float32;
#else
  return true;
#endif
}
/// visit_dtype over the dtypes this copy is built for.
template <class Fn>
void visit_built([[maybe_unused]] DType dt, Fn&& fn) {
#ifdef TS_REDUCE_FLOAT32_ONLY
  fn(float{});
#else
  visit_dtype(dt, fn);
#endif
}

bool reduce_run(OpId op, DType dt, const Block& blk, void* out) {
  if (!built_for(dt)) return false;
  visit_built(dt, [&](auto tag) {
    using In = decltype(tag);
    switch (op) {
      case OpId::Sum:
        Engine<SumOp<In>, In>::run(blk, out);
        break;
      case OpId::Prod:
        Engine<ProdOp<In>, In>::run(blk, out);
        break;
      case OpId::Max:
        Engine<MaxOp<In>, In>::run(blk, out);
        break;
      case OpId::Min:
        Engine<MinOp<In>, In>::run(blk, out);
        break;
      case OpId::Any:
        Engine<AnyOp<In>, In>::run(blk, out);
        break;
      case OpId::All:
        Engine<AllOp<In>, In>::run(blk, out);
        break;
      default:
        break;
    }
  });
  return true;
}

bool arg_run(bool is_max, DType dt, const Block& blk, int64_t* out) {
  if (!built_for(dt)) return false;
  visit_built(dt, [&](auto tag) {
    using In = decltype(tag);
    if (is_max)
      ArgEngine<In, true>::run(blk, out);
    else
      ArgEngine<In, false>::run(blk, out);
  });
  return true;
}

bool cumsum_run(DType dt, const Block& blk, void* out) {
  if (!built_for(dt)) return false;
  visit_built(dt, [&](auto tag) {
    using In = decltype(tag);
    Cumsum<In>::run(blk, out);
  });
  return true;
}

#endif  // TS_REDUCE_ISA_BODY
