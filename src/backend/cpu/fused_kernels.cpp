// The CPU block evaluator for fused elementwise programs (src/graph/fuse.h), registered with
// graph::register_fused_evaluator at load time.
//
// The output index space is cut into blocks of kBlock elements; a thread takes a contiguous
// range of blocks and, for each block, runs every step's inner loop from the elementwise ISA
// table (the same loops eager mode runs, so results are bit-identical) over the block: operands
// are read straight from contiguous inputs, at stride 0 for one-element inputs and immediates,
// or from a per-block gather (one strided copy per row segment) for broadcast or strided
// inputs; intermediates live in per-thread scratch slots (FusedStep::slot) that stay in cache.
// Outputs are written directly by their step, except an output whose buffer overlaps an input
// (in-place execution): its block is computed in scratch and copied after the block's steps,
// so every read of a block happens before its writes.
#include <algorithm>
#include <atomic>
#include <cstring>
#include <new>
#include <string>
#include <vector>

#include "../../graph/fuse.h"
#include "elementwise_table.h"
#include "parallel.h"
#include "tessera/error.h"

namespace tessera::cpu {

namespace {

// 2048 elements: a float32 slot is 8 KiB, so a dozen-step program's live slots and input rows
// stay within L2 (and mostly L1) per thread.
constexpr int64_t kBlock = 2048;
constexpr int64_t kSlotBytes = kBlock * 8;  // widest dtype

using graph::FusedProgram;
using graph::FusedRef;

// How one node input is read for a block.
struct InputPlan {
  enum class Mode { Flat, Scalar, Gather } mode = Mode::Flat;
  char* base = nullptr;
  int64_t itemsize = 0;
  // Gather: the input broadcast to the output shape, with axes merged where contiguous; byte strides.
  SmallVector<int64_t, 8> shape, strides;
  InnerLoop copy = nullptr;
  int scratch = 0;  // gather slot, after the program's slots
};

InputPlan plan_input(const Tensor& x, const Shape& oshape) {
  InputPlan pl;
  pl.base = static_cast<char*>(x.impl().data());
  pl.itemsize = static_cast<int64_t>(x.itemsize());
  if (x.numel() == 1) {
    pl.mode = InputPlan::Mode::Scalar;
    return pl;
  }
  // Broadcastable with the same element count means equal up to leading size-1 axes.
  if (x.numel() == shape_numel(oshape) && x.is_contiguous()) return pl;
  pl.mode = InputPlan::Mode::Gather;
  const size_t nd = oshape.size(), off = nd - x.shape().size();
  for (size_t d = 0; d < nd; ++d) {
    if (oshape[d] == 1) continue;
    int64_t s = 0;
    if (d >= off && x.shape()[d - off] != 1) s = x.strides()[d - off] * pl.itemsize;
    pl.shape.push_back(oshape[d]);
    pl.strides.push_back(s);
  }
  for (size_t d = pl.shape.size(); d-- > 1;) {  // merge axis d-1 into d when contiguous across them
    if (pl.strides[d - 1] != pl.strides[d] * pl.shape[d]) continue;
    pl.shape[d] *= pl.shape[d - 1];
    pl.shape.erase(pl.shape.begin() + static_cast<std::ptrdiff_t>(d - 1));
    pl.strides.erase(pl.strides.begin() + static_cast<std::ptrdiff_t>(d - 1));
  }
  if (pl.shape.empty()) {
    pl.shape.push_back(1);
    pl.strides.push_back(0);
  }
  return pl;
}

// Copies elements [b, b + n) of the broadcast input into dst (contiguous).
void gather(const InputPlan& pl, int64_t b, int64_t n, char* dst) {
  const size_t r = pl.shape.size();
  SmallVector<int64_t, 8> idx(r, 0);
  int64_t rem = b;
  for (size_t d = r; d-- > 0;) {
    idx[d] = rem % pl.shape[d];
    rem /= pl.shape[d];
  }
  const int64_t inner = pl.shape[r - 1];
  int64_t done = 0;
  while (done < n) {
    int64_t off = 0;
    for (size_t d = 0; d < r; ++d) off += idx[d] * pl.strides[d];
    int64_t m = std::min(inner - idx[r - 1], n - done);
    char* out = dst + done * pl.itemsize;
    const char* src = pl.base + off;
    const int64_t stride = pl.strides[r - 1];
    // The common broadcasts are runs of one value (a per-channel parameter over H*W) or
    // contiguous rows (a bias over a batch): fill or memcpy them; the strided loop does the rest.
    if (stride == 0 && pl.itemsize == 4) {
      uint32_t v;
      std::memcpy(&v, src, 4);
      std::fill_n(reinterpret_cast<uint32_t*>(out), m, v);
    } else if (stride == 0 && pl.itemsize == 8) {
      uint64_t v;
      std::memcpy(&v, src, 8);
      std::fill_n(reinterpret_cast<uint64_t*>(out), m, v);
    } else if (stride == pl.itemsize) {
      std::memcpy(out, src, static_cast<size_t>(m * pl.itemsize));
    } else {
      char* p[2] = {out, const_cast<char*>(src)};
      const int64_t s[2] = {pl.itemsize, stride};
      pl.copy(p, s, m, nullptr);
    }
    done += m;
    idx[r - 1] += m;
    for (size_t d = r - 1; d > 0 && idx[d] >= pl.shape[d]; --d) {
      idx[d] = 0;
      ++idx[d - 1];
    }
  }
}

// [lo, hi) bytes a tensor's elements span.
std::pair<const char*, const char*> byte_range(const Tensor& t) {
  const char* p = static_cast<const char*>(t.impl().data());
  int64_t lo = 0, hi = static_cast<int64_t>(t.itemsize());
  for (size_t d = 0; d < t.shape().size(); ++d) {
    int64_t span = (t.shape()[d] - 1) * t.strides()[d] * static_cast<int64_t>(t.itemsize());
    (span < 0 ? lo : hi) += span;
  }
  return {p + lo, p + hi};
}

struct AlignedFree {
  void operator()(char* p) const { ::operator delete[](p, std::align_val_t{64}, std::nothrow); }
};

bool evaluate(const FusedProgram& p, std::span<const Tensor> in, std::span<const Tensor> out) {
  const ElementwiseTable& table = elementwise_table();
  const size_t nsteps = p.steps.size();
  auto dtype_of = [&](const FusedRef& r) {
    switch (r.kind) {
      case FusedRef::Kind::Input:
        return p.input_dtypes[static_cast<size_t>(r.index)];
      case FusedRef::Kind::Step:
        return p.steps[static_cast<size_t>(r.index)].dtype;
      default:
        return p.immediates[static_cast<size_t>(r.index)].dtype();
    }
  };
  // Every step's loop, or decline (the step-by-step fallback then raises eager mode's error).
  std::vector<InnerLoop> loops(nsteps);
  for (size_t s = 0; s < nsteps; ++s) {
    const graph::FusedStep& st = p.steps[s];
    if (st.args.empty() || st.args.size() + 1 > static_cast<size_t>(kMaxOperands)) return false;
    if (st.op == OpId::Cast)
      loops[s] = table.cast[static_cast<int>(dtype_of(st.args[0]))][static_cast<int>(st.dtype)];
    else if (st.op == OpId::Where)
      loops[s] =
          st.args.size() == 3 ? table.loops[static_cast<int>(st.op)][static_cast<int>(dtype_of(st.args[1]))] : nullptr;
    else
      loops[s] = table.loops[static_cast<int>(st.op)][static_cast<int>(dtype_of(st.args[0]))];
    if (!loops[s]) return false;
  }
  for (const Tensor& t : p.immediates)
    if (!t.has_storage() || !(t.device() == p.device)) return false;
  InnerLoop copy_loops[kNumDTypes];
  for (int d = 0; d < kNumDTypes; ++d) copy_loops[d] = table.loops[static_cast<int>(OpId::Copy)][d];

  const int64_t numel = shape_numel(p.shape);
  if (numel == 0) return true;

  std::vector<InputPlan> plans;
  int gathers = 0;
  for (const Tensor& t : in) {
    InputPlan pl = plan_input(t, p.shape);
    if (pl.mode == InputPlan::Mode::Gather) {
      pl.copy = copy_loops[static_cast<int>(t.dtype())];
      if (!pl.copy) return false;
      pl.scratch = p.num_slots + gathers++;
    }
    plans.push_back(std::move(pl));
  }
  // Per step: the output it writes directly (-1: its scratch slot).
  std::vector<int> direct(nsteps, -1);
  std::vector<int> copied_outputs;
  // The last step reading each input directly (gathered inputs are copied at the block start).
  std::vector<int> last_read(in.size(), -1);
  for (size_t s = 0; s < nsteps; ++s)
    for (const FusedRef& r : p.steps[s].args)
      if (r.kind == FusedRef::Kind::Input) last_read[static_cast<size_t>(r.index)] = static_cast<int>(s);
  for (size_t k = 0; k < out.size(); ++k) {
    auto [olo, ohi] = byte_range(out[k]);
    const int s = p.outputs[k];
    bool overlaps = false;
    for (size_t i = 0; i < in.size(); ++i) {
      auto [ilo, ihi] = byte_range(in[i]);
      if (!(olo < ihi && ilo < ohi)) continue;
      // In place over an input with the same layout that no later step reads: write directly
      // (step s reads element j before writing it); otherwise compute in scratch and copy.
      const bool same = plans[i].mode == InputPlan::Mode::Flat && in[i].impl().data() == out[k].impl().data() &&
                        in[i].itemsize() == out[k].itemsize() && last_read[i] <= s;
      overlaps |= !same;
    }
    if (overlaps || direct[static_cast<size_t>(s)] >= 0)
      copied_outputs.push_back(static_cast<int>(k));
    else
      direct[static_cast<size_t>(s)] = static_cast<int>(k);
  }

  const int nslots = p.num_slots + gathers;
  const int64_t nblocks = (numel + kBlock - 1) / kBlock;
  // More work per element than one elementwise op: threads pay off on smaller tensors.
  const int64_t grain = std::max<int64_t>(1, kElementwiseGrain / static_cast<int64_t>(nsteps) / kBlock);
  ElementwiseFlags flags;
  std::atomic<bool> out_of_memory{false};
  parallel_for(0, nblocks, grain, [&](int64_t b0, int64_t b1) {
    // Nothing may throw inside the parallel region: an allocation failure is recorded and raised after.
    std::unique_ptr<char[], AlignedFree> scratch(static_cast<char*>(
        ::operator new[](static_cast<size_t>(nslots * kSlotBytes), std::align_val_t{64}, std::nothrow)));
    if (!scratch) {
      out_of_memory.store(true);
      return;
    }
    auto slot = [&](int i) { return scratch.get() + i * kSlotBytes; };
    std::vector<char*> result(nsteps);  // where each step's block is, this block
    for (int64_t blk = b0; blk < b1; ++blk) {
      const int64_t b = blk * kBlock, n = std::min(kBlock, numel - b);
      for (const InputPlan& pl : plans)
        if (pl.mode == InputPlan::Mode::Gather) gather(pl, b, n, slot(pl.scratch));
      for (size_t s = 0; s < nsteps; ++s) {
        const graph::FusedStep& st = p.steps[s];
        char* ptrs[kMaxOperands];
        int64_t strides[kMaxOperands];
        const int64_t osize = static_cast<int64_t>(dtype_size(st.dtype));
        int k = direct[s];
        ptrs[0] = k >= 0 ? static_cast<char*>(out[static_cast<size_t>(k)].impl().data()) + b * osize : slot(st.slot);
        strides[0] = osize;
        for (size_t a = 0; a < st.args.size(); ++a) {
          const FusedRef& r = st.args[a];
          char*& ptr = ptrs[a + 1];
          int64_t& stride = strides[a + 1];
          if (r.kind == FusedRef::Kind::Step) {
            ptr = result[static_cast<size_t>(r.index)];
            stride = static_cast<int64_t>(dtype_size(p.steps[static_cast<size_t>(r.index)].dtype));
          } else if (r.kind == FusedRef::Kind::Immediate) {
            ptr = static_cast<char*>(p.immediates[static_cast<size_t>(r.index)].impl().data());
            stride = 0;
          } else {
            const InputPlan& pl = plans[static_cast<size_t>(r.index)];
            stride = pl.mode == InputPlan::Mode::Scalar ? 0 : pl.itemsize;
            ptr = pl.mode == InputPlan::Mode::Flat     ? pl.base + b * pl.itemsize
                  : pl.mode == InputPlan::Mode::Scalar ? pl.base
                                                       : slot(pl.scratch);
          }
        }
        loops[s](ptrs, strides, n, &flags);
        result[s] = ptrs[0];
      }
      for (int k : copied_outputs) {
        const int s = p.outputs[static_cast<size_t>(k)];
        const int64_t osize = static_cast<int64_t>(dtype_size(p.steps[static_cast<size_t>(s)].dtype));
        std::memcpy(static_cast<char*>(out[static_cast<size_t>(k)].impl().data()) + b * osize,
                    result[static_cast<size_t>(s)], static_cast<size_t>(n * osize));
      }
    }
  });
  if (out_of_memory.load())
    raise<OutOfMemoryError>("run_fused", "no memory for " + std::to_string(nslots) + " scratch blocks per thread");
  if (flags.int_div_by_zero.load()) raise<ValueError>("remainder", "integer division by zero");
  return true;
}

[[maybe_unused]] const bool kRegistered = (graph::register_fused_evaluator("cpu", &evaluate), true);

}  // namespace

}  // namespace tessera::cpu
