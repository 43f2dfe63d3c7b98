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
//
// Reduction steps (sums, fuse.h) make blocks hold whole rows: a block is a multiple of every
// reduction's run. A row sum reduces the block's rows straight into its output; a column sum
// reduces each block to a row, each chunk of blocks (fixed by the shape) to a partial row, and
// the partial rows after the pass. All of it uses the reduction kernels' pairwise loops
// (reduce_contiguous): a row sum is bit for bit eager mode's, a column sum differs only in how
// its pairwise tree is cut, and neither depends on the thread count.
#include <algorithm>
#include <atomic>
#include <cstring>
#include <new>
#include <numeric>
#include <string>
#include <vector>

#include "../../graph/fuse.h"
#include "cpu_backend.h"
#include "elementwise_table.h"
#include "parallel.h"
#include "tessera/error.h"

namespace tessera::cpu {

namespace {

// 2048 elements: a float32 slot is 8 KiB, so a dozen-step program's live slots and input rows
// stay within L2 (and mostly L1) per thread.
constexpr int64_t kBlock = 2048;

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

// Rows narrower than this are first summed per block (reduce_contiguous) into one row, which is
// then added: one add call per short row would cost more than the sum.
constexpr int64_t kNarrowRow = 256;

// Adds `rows` contiguous rows of `row_bytes` at src, in order, into a column sum's running row.
// The row alternates between the two buffers at pair (each pitch bytes): add(dst, cur, row)
// writes the one `running` does not point at. A null `running` starts a new sum with src's
// first row. Narrow rows are summed into `tmp` (one row) first.
void accumulate_rows(InnerLoop add, DType dt, const char* src, int64_t rows, int64_t row_bytes, int64_t itemsize,
                     char* pair, int64_t pitch, char* tmp, char*& running) {
  const int64_t n = row_bytes / itemsize;
  if (n < kNarrowRow && rows > 1) {
    reduce_contiguous(OpId::Sum, dt, src, 1, rows, n, tmp);
    src = tmp;
    rows = 1;
  }
  for (int64_t r = 0; r < rows; ++r) {
    const char* row = src + r * row_bytes;
    char* dst = running == pair ? pair + pitch : pair;
    if (!running) {
      std::memcpy(dst, row, static_cast<size_t>(row_bytes));
    } else {
      char* ptrs[3] = {dst, running, const_cast<char*>(row)};
      const int64_t strides[3] = {itemsize, itemsize, itemsize};
      add(ptrs, strides, n, nullptr);
    }
    running = dst;
  }
}

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
  std::vector<graph::ReduceLayout> layouts(nsteps);
  int64_t unit = 1;  // blocks are a multiple of every reduction's run
  for (size_t s = 0; s < nsteps; ++s) {
    const graph::FusedStep& st = p.steps[s];
    if (st.reduction()) {
      if (st.op != OpId::Sum || st.args.size() != 1 || (st.dtype != DType::Float32 && st.dtype != DType::Float64) ||
          dtype_of(st.args[0]) != st.dtype || st.args[0].kind == FusedRef::Kind::Immediate ||
          !graph::reduce_layout(p.shape, std::get<ReduceAttrs>(st.attrs).axes, layouts[s]))
        return false;
      unit = std::lcm(unit, layouts[s].unit());
      continue;
    }
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

  if (unit > graph::kMaxFusedReduceRun) return false;
  const int64_t block = unit >= kBlock ? unit : kBlock / unit * unit;
  const int64_t slot_bytes = block * 8;  // widest dtype

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
  std::vector<int> reduced_outputs;
  for (size_t k = 0; k < out.size(); ++k) {
    auto [olo, ohi] = byte_range(out[k]);
    const int s = p.outputs[k];
    if (p.steps[static_cast<size_t>(s)].reduction()) {
      const FusedRef& src = p.steps[static_cast<size_t>(s)].args[0];
      if (src.kind == FusedRef::Kind::Input && plans[static_cast<size_t>(src.index)].mode == InputPlan::Mode::Scalar)
        return false;
      for (const Tensor& t : in) {  // a sum is written while its block's inputs are still read
        auto [ilo, ihi] = byte_range(t);
        if (olo < ihi && ilo < ohi) return false;
      }
      reduced_outputs.push_back(static_cast<int>(k));
      continue;
    }
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
  const int64_t nblocks = (numel + block - 1) / block;
  InnerLoop add_loops[kNumDTypes];
  for (int d = 0; d < kNumDTypes; ++d) add_loops[d] = table.loops[static_cast<int>(OpId::Add)][d];
  // Column sums: blocks are taken in chunks of `span` (fixed by the shape, so results do not depend
  // on the thread count). A chunk's rows are added in order into a running row (two buffers in
  // turn: the add loop's operands may not alias its output), that row becomes the chunk's partial
  // row, and the partial rows are summed pairwise into the output after the pass. A chunk covers
  // about 64 rows of the widest column sum.
  int64_t widest = 0;
  for (int k : reduced_outputs) {
    const graph::ReduceLayout& l = layouts[static_cast<size_t>(p.outputs[static_cast<size_t>(k)])];
    if (l.kind == graph::ReduceLayout::Kind::Columns) widest = std::max(widest, l.inner);
  }
  const int64_t span = widest == 0 ? 1 : std::max<int64_t>(1, (64 * widest + block - 1) / block);
  const int64_t nchunks = (nblocks + span - 1) / span;
  std::vector<std::unique_ptr<char[], AlignedFree>> partials(out.size());
  std::vector<int64_t> chunk_rows_at(out.size(), 0);  // offset of each column sum in a thread's chunk buffer
  int64_t chunk_bytes = 0;
  for (int k : reduced_outputs) {
    const graph::ReduceLayout& l = layouts[static_cast<size_t>(p.outputs[static_cast<size_t>(k)])];
    if (l.kind != graph::ReduceLayout::Kind::Columns) continue;
    const int64_t osize = static_cast<int64_t>(out[static_cast<size_t>(k)].itemsize());
    chunk_rows_at[static_cast<size_t>(k)] = chunk_bytes;
    chunk_bytes += 3 * ((l.inner * osize + 63) / 64 * 64);  // the running pair and a block's row
    partials[static_cast<size_t>(k)].reset(static_cast<char*>(
        ::operator new[](static_cast<size_t>(nchunks * l.inner * osize), std::align_val_t{64}, std::nothrow)));
    if (!partials[static_cast<size_t>(k)])
      raise<OutOfMemoryError>("run_fused", "no memory for the partial sums of " + std::to_string(nchunks) + " chunks");
  }
  // More work per element than one elementwise op: threads pay off on smaller tensors.
  const int64_t grain = std::max<int64_t>(1, kElementwiseGrain / static_cast<int64_t>(nsteps) / block / span);
  ElementwiseFlags flags;
  std::atomic<bool> out_of_memory{false};
  parallel_for(0, nchunks, grain, [&](int64_t c0, int64_t c1) {
    // Nothing may throw inside the parallel region: an allocation failure is recorded and raised after.
    std::unique_ptr<char[], AlignedFree> scratch(static_cast<char*>(::operator new[](
        static_cast<size_t>(std::max(nslots, 1) * slot_bytes + chunk_bytes), std::align_val_t{64}, std::nothrow)));
    if (!scratch) {
      out_of_memory.store(true);
      return;
    }
    auto slot = [&](int i) { return scratch.get() + i * slot_bytes; };
    char* chunk_rows = scratch.get() + std::max(nslots, 1) * slot_bytes;
    std::vector<char*> result(nsteps);                // where each step's block is, this block
    std::vector<char*> running(out.size(), nullptr);  // a column sum's running row in this chunk
    for (int64_t c = c0; c < c1; ++c) {
      const int64_t first = c * span, last = std::min(nblocks, first + span);
      std::fill(running.begin(), running.end(), nullptr);
      for (int64_t blk = first; blk < last; ++blk) {
        const int64_t b = blk * block, n = std::min(block, numel - b);
        for (const InputPlan& pl : plans)
          if (pl.mode == InputPlan::Mode::Gather) gather(pl, b, n, slot(pl.scratch));
        auto operand = [&](const FusedRef& r, char*& ptr, int64_t& stride) {
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
        };
        for (size_t s = 0; s < nsteps; ++s) {
          const graph::FusedStep& st = p.steps[s];
          if (st.reduction()) continue;  // after the block's elementwise steps
          char* ptrs[kMaxOperands];
          int64_t strides[kMaxOperands];
          const int64_t osize = static_cast<int64_t>(dtype_size(st.dtype));
          int k = direct[s];
          ptrs[0] = k >= 0 ? static_cast<char*>(out[static_cast<size_t>(k)].impl().data()) + b * osize : slot(st.slot);
          strides[0] = osize;
          for (size_t a = 0; a < st.args.size(); ++a) operand(st.args[a], ptrs[a + 1], strides[a + 1]);
          loops[s](ptrs, strides, n, &flags);
          result[s] = ptrs[0];
        }
        for (int k : reduced_outputs) {
          const graph::FusedStep& st = p.steps[static_cast<size_t>(p.outputs[static_cast<size_t>(k)])];
          const graph::ReduceLayout& l = layouts[static_cast<size_t>(p.outputs[static_cast<size_t>(k)])];
          char* src = nullptr;
          int64_t stride = 0;
          operand(st.args[0], src, stride);
          const int64_t osize = static_cast<int64_t>(dtype_size(st.dtype));
          if (l.kind == graph::ReduceLayout::Kind::Rows)
            reduce_contiguous(OpId::Sum, st.dtype, src, n / l.len, l.len, 1,
                              static_cast<char*>(out[static_cast<size_t>(k)].impl().data()) + b / l.len * osize);
          else {
            const int64_t pitch = (l.inner * osize + 63) / 64 * 64;
            char* pair = chunk_rows + chunk_rows_at[static_cast<size_t>(k)];
            accumulate_rows(add_loops[static_cast<int>(st.dtype)], st.dtype, src, n / l.inner, l.inner * osize, osize,
                            pair, pitch, pair + 2 * pitch, running[static_cast<size_t>(k)]);
          }
        }
        for (int k : copied_outputs) {
          const int s = p.outputs[static_cast<size_t>(k)];
          const int64_t osize = static_cast<int64_t>(dtype_size(p.steps[static_cast<size_t>(s)].dtype));
          std::memcpy(static_cast<char*>(out[static_cast<size_t>(k)].impl().data()) + b * osize,
                      result[static_cast<size_t>(s)], static_cast<size_t>(n * osize));
        }
      }
      for (int k : reduced_outputs) {  // the chunk's running row -> its partial row
        if (!running[static_cast<size_t>(k)]) continue;
        const int64_t bytes = layouts[static_cast<size_t>(p.outputs[static_cast<size_t>(k)])].inner *
                              static_cast<int64_t>(out[static_cast<size_t>(k)].itemsize());
        std::memcpy(partials[static_cast<size_t>(k)].get() + c * bytes, running[static_cast<size_t>(k)],
                    static_cast<size_t>(bytes));
      }
    }
  });
  if (out_of_memory.load())
    raise<OutOfMemoryError>("run_fused", "no memory for " + std::to_string(nslots) + " scratch blocks per thread");
  for (int k : reduced_outputs)
    if (partials[static_cast<size_t>(k)]) {
      const graph::ReduceLayout& l = layouts[static_cast<size_t>(p.outputs[static_cast<size_t>(k)])];
      const Tensor& o = out[static_cast<size_t>(k)];
      reduce_contiguous(OpId::Sum, o.dtype(), partials[static_cast<size_t>(k)].get(), 1, nchunks, l.inner,
                        o.impl().data());
    }
  if (flags.int_div_by_zero.load()) raise<ValueError>("remainder", "integer division by zero");
  return true;
}

[[maybe_unused]] const bool kRegistered = (graph::register_fused_evaluator("cpu", &evaluate), true);

}  // namespace

}  // namespace tessera::cpu
