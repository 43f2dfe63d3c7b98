// The CPU block evaluator for fused elementwise programs (src/graph/fuse.h), registered with
// graph::register_fused_evaluator at load time.
//
// The output index space is cut into blocks of kBlock elements; a thread takes a contiguous
// range of blocks and, for each block, runs every step's inner loop from the elementwise ISA
// table (the same loops eager mode runs, so results are bit-identical) over the block: operands
// are read straight from contiguous inputs, at stride 0 for one-element inputs and immediates,
// or from a per-block gather (one strided copy per row segment) for broadcast or strided
// inputs; intermediates live in per-thread scratch slots (FusedStep::slot) that stay in cache.
// The next block's flat inputs are prefetched while a block computes.
// Outputs are written directly by their step, except an output whose buffer overlaps an input
// (in-place execution): its block is computed in scratch and copied after the block's steps,
// so every read of a block happens before its writes. An output with padded rows (graph mode's
// pad_row_pitches) is written row segment by row segment, or, when a later step other than a
// column sum over those rows reads it, computed in scratch and copied out row by row.
//
// Reduction steps (sums, fuse.h) make blocks hold whole rows: a block is a multiple of every
// reduction's run. Steps run in program order. A row sum reduces the block's rows with the
// reduction kernels' loops (reduce_contiguous), into its output or, when later steps read it,
// into a slot: row steps then run their inner loop over one value per row, and full-shape steps
// read the row values at stride 0 with one call per row (row outputs are copied out after the
// block). A column sum adds rows into leaves of 16 and combines the leaves pairwise after the
// pass, in the order of the reduction kernels' column path. Either way the result is eager
// mode's bit for bit, whatever the thread count. A narrow float64 column sum (a full sum) is
// instead summed per block by the reduction kernels' loops, and the blocks' sums pairwise after
// the pass: the same for any thread count, but not eager's order.
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

// Asks for the n elements from b of every flat input (the next block's) to be brought into L2
// while this block computes. On the hardware prefetchers alone the GPT step's fused passes took
// ~10% longer, Adam's updates (seven streams from memory) ~14%; two blocks ahead or into L1
// gained nothing more.
void prefetch_block(const std::vector<InputPlan>& plans, int64_t b, int64_t n) {
  for (const InputPlan& pl : plans) {
    if (pl.mode != InputPlan::Mode::Flat) continue;
    const char* at = pl.base + b * pl.itemsize;
    for (int64_t o = 0, bytes = n * pl.itemsize; o < bytes; o += 64) __builtin_prefetch(at + o, 0, 2);
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

// Calls fn(i, len) for each piece [i, i + len) of elements [b, b + n) that lies in one row of
// `cols` elements (an output with padded rows is written piece by piece).
template <typename Fn>
void for_row_segments(int64_t b, int64_t n, int64_t cols, Fn&& fn) {
  for (int64_t i = b, end = b + n; i < end;) {
    const int64_t len = std::min(cols - i % cols, end - i);
    fn(i, len);
    i += len;
  }
}

// Copies elements [b, b + n) of an output (in index order, contiguous at src) to its rows of
// `pitch` elements of which the first `cols` are the row's.
void copy_to_rows(char* dst, const char* src, int64_t b, int64_t n, int64_t cols, int64_t pitch, int64_t itemsize) {
  for_row_segments(b, n, cols, [&](int64_t i, int64_t len) {
    std::memcpy(dst + (i / cols * pitch + i % cols) * itemsize, src + (i - b) * itemsize,
                static_cast<size_t>(len * itemsize));
  });
}

struct AlignedFree {
  void operator()(char* p) const { ::operator delete[](p, std::align_val_t{64}, std::nothrow); }
};

// Column sums add in eager mode's order (reduce_impl.inc, its path for 64 or more columns): rows
// in leaves of kLeafRows, each leaf from zero and in row order, then the leaves pairwise by the
// reduction kernels' own cascade (sum_leaf_rows). The result is eager's bit for bit.
constexpr int64_t kLeafRows = 16;

// dst = a + b over n elements with the elementwise table's add loop (dst may not alias a or b).
void add_row(InnerLoop add, char* dst, const char* a, const char* b, int64_t n, int64_t itemsize) {
  char* ptrs[3] = {dst, const_cast<char*>(a), const_cast<char*>(b)};
  const int64_t strides[3] = {itemsize, itemsize, itemsize};
  add(ptrs, strides, n, nullptr);
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
  // Row values (fuse.h row_value): rlen[s] elements per row of a row step or a row sum other
  // steps read; reads_rows[s] the row length of the row values a full-shape step reads (0: none).
  std::vector<int64_t> rlen(nsteps, 0), reads_rows(nsteps, 0);
  for (size_t s = 0; s < nsteps; ++s) {
    const graph::FusedStep& st = p.steps[s];
    if (st.row || (st.reduction() && st.slot >= 0)) {
      if (!graph::row_value(p, s)) return false;
      rlen[s] = shape_numel(p.shape) / std::max<int64_t>(1, shape_numel(st.reduced_shape));
      unit = std::lcm(unit, rlen[s]);
    }
    for (const FusedRef& r : st.args) {
      if (r.kind == FusedRef::Kind::Input && st.row) return false;  // row steps read row values only
      if (r.kind != FusedRef::Kind::Step || !rlen[static_cast<size_t>(r.index)] || st.row) continue;
      const int64_t len = rlen[static_cast<size_t>(r.index)];
      if (reads_rows[s] && reads_rows[s] != len) return false;
      reads_rows[s] = len;
    }
  }
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
  std::vector<int64_t> pitch(out.size(), 0);  // padded rows (elements per row), else 0
  // The last step reading each input directly (gathered inputs are copied at the block start).
  std::vector<int> last_read(in.size(), -1);
  for (size_t s = 0; s < nsteps; ++s)
    for (const FusedRef& r : p.steps[s].args)
      if (r.kind == FusedRef::Kind::Input) last_read[static_cast<size_t>(r.index)] = static_cast<int>(s);
  std::vector<int> reduced_outputs;  // sums written directly
  std::vector<int> row_outputs;      // row values: copied from their slot after each block
  std::vector<int> output_of(nsteps, -1);
  for (size_t k = 0; k < out.size(); ++k) {
    auto [olo, ohi] = byte_range(out[k]);
    const int s = p.outputs[k];
    const graph::FusedStep& st = p.steps[static_cast<size_t>(s)];
    if (st.reduction() || st.row) {
      if (st.reduction()) {
        const FusedRef& src = st.args[0];
        if (src.kind == FusedRef::Kind::Input && plans[static_cast<size_t>(src.index)].mode == InputPlan::Mode::Scalar)
          return false;
      }
      for (const Tensor& t : in) {  // written while its block's inputs are still read
        auto [ilo, ihi] = byte_range(t);
        if (olo < ihi && ilo < ohi) return false;
      }
      if (output_of[static_cast<size_t>(s)] >= 0) return false;  // one output per step
      output_of[static_cast<size_t>(s)] = static_cast<int>(k);
      (st.slot >= 0 ? row_outputs : reduced_outputs).push_back(static_cast<int>(k));
      continue;
    }
    if (!out[k].is_contiguous()) {
      pitch[k] = graph::padded_row_pitch(out[k]);
      if (!pitch[k]) return false;
    }
    // Padded rows are written row segment by row segment when the step's only later readers
    // are column sums over those rows (they then read the padded rows); otherwise the step
    // computes in scratch and its block is copied out row by row.
    bool overlaps = false;
    if (pitch[k]) {
      const int64_t cols = out[k].shape().back();
      for (size_t t = static_cast<size_t>(s) + 1; t < nsteps && !overlaps; ++t)
        for (const FusedRef& r : p.steps[t].args)
          if (r.kind == FusedRef::Kind::Step && r.index == s)
            overlaps |= !p.steps[t].reduction() || layouts[t].kind != graph::ReduceLayout::Kind::Columns ||
                        layouts[t].inner != cols || layouts[t].inner < graph::kMinFusedColumns;
      overlaps |= reads_rows[static_cast<size_t>(s)] != 0;  // one loop call per row already
      // Another output of the same step is copied from the step's block, which must be dense.
      overlaps |= std::count(p.outputs.begin(), p.outputs.end(), s) > 1;
    }
    for (size_t i = 0; i < in.size(); ++i) {
      auto [ilo, ihi] = byte_range(in[i]);
      if (!(olo < ihi && ilo < ohi)) continue;
      // In place over an input with the same layout that no later step reads: write directly
      // (step s reads element j before writing it); otherwise compute in scratch and copy.
      const bool same = !pitch[k] && plans[i].mode == InputPlan::Mode::Flat &&
                        in[i].impl().data() == out[k].impl().data() && in[i].itemsize() == out[k].itemsize() &&
                        last_read[i] <= s;
      overlaps |= !same;
    }
    if (overlaps || direct[static_cast<size_t>(s)] >= 0)
      copied_outputs.push_back(static_cast<int>(k));
    else
      direct[static_cast<size_t>(s)] = static_cast<int>(k);
  }

  const int nslots = p.num_slots + gathers;
  const int64_t nblocks = (numel + block - 1) / block;
  // Column sums: blocks are taken in chunks of `span` whose rows are a multiple of kLeafRows for
  // every column sum, so no leaf straddles two threads. A thread adds a leaf's rows into a running
  // row (two buffers in turn, starting from a row of zeros) and stores the finished leaf; the
  // leaves are combined after the pass.
  // Narrow float64 column sums (fewer than kMinFusedColumns columns, fuse.h) instead sum each
  // block with the reduction kernels' loops into one leaf per block.
  struct ColumnSum {
    int64_t inner = 0, leaves = 0, at = 0;  // at: its running rows' offset in a thread's scratch
    bool per_block = false;
    std::unique_ptr<char[], AlignedFree> leaf_sums;
  };
  std::vector<ColumnSum> columns(out.size());
  int64_t span = 1, column_bytes = 0, widest = 0;
  for (int k : reduced_outputs) {
    const graph::ReduceLayout& l = layouts[static_cast<size_t>(p.outputs[static_cast<size_t>(k)])];
    if (l.kind != graph::ReduceLayout::Kind::Columns) continue;
    ColumnSum& c = columns[static_cast<size_t>(k)];
    const int64_t osize = static_cast<int64_t>(out[static_cast<size_t>(k)].itemsize());
    c.inner = l.inner;
    c.per_block = l.inner < graph::kMinFusedColumns;
    if (c.per_block) {
      if (out[static_cast<size_t>(k)].dtype() != DType::Float64) return false;
      c.leaves = nblocks;
    } else {
      c.leaves = (numel / l.inner + kLeafRows - 1) / kLeafRows;
      c.at = column_bytes;
      column_bytes += 2 * ((l.inner * osize + 63) / 64 * 64);
      widest = std::max(widest, l.inner * osize);
      span = std::max(span, kLeafRows / std::gcd(kLeafRows, block / l.inner));
    }
    c.leaf_sums.reset(static_cast<char*>(
        ::operator new[](static_cast<size_t>(c.leaves * l.inner * osize), std::align_val_t{64}, std::nothrow)));
    if (!c.leaf_sums)
      raise<OutOfMemoryError>("run_fused", "no memory for the partial sums of " + std::to_string(c.leaves) + " leaves");
  }
  const int64_t zeros_at = column_bytes;
  column_bytes += (widest + 63) / 64 * 64;
  const int64_t nchunks = (nblocks + span - 1) / span;
  // More work per element than one elementwise op: threads pay off on smaller tensors.
  const int64_t grain = std::max<int64_t>(1, kElementwiseGrain / static_cast<int64_t>(nsteps) / block / span);
  ElementwiseFlags flags;
  std::atomic<bool> out_of_memory{false};
  parallel_for(0, nchunks, grain, [&](int64_t c0, int64_t c1) {
    // Nothing may throw inside the parallel region: an allocation failure is recorded and raised after.
    std::unique_ptr<char[], AlignedFree> scratch(static_cast<char*>(::operator new[](
        static_cast<size_t>(std::max(nslots, 1) * slot_bytes + column_bytes), std::align_val_t{64}, std::nothrow)));
    if (!scratch) {
      out_of_memory.store(true);
      return;
    }
    auto slot = [&](int i) { return scratch.get() + i * slot_bytes; };
    char* column_scratch = scratch.get() + std::max(nslots, 1) * slot_bytes;
    std::memset(column_scratch + zeros_at, 0, static_cast<size_t>(widest));
    std::vector<char*> running(out.size(), nullptr);  // a column sum's running leaf row
    // Adds rows [g, g + rows) of a column sum (k) at src into its leaves.
    auto add_leaf_rows = [&](int k, const char* src, int64_t src_row_bytes, int64_t g, int64_t rows, int64_t osize,
                             DType dt) {
      ColumnSum& c = columns[static_cast<size_t>(k)];
      const int64_t pitch = (c.inner * osize + 63) / 64 * 64, bytes = c.inner * osize;
      char* pair = column_scratch + c.at;
      char*& run = running[static_cast<size_t>(k)];
      for (int64_t r = 0; r < rows; ++r, ++g) {
        const char* prev = g % kLeafRows == 0 ? column_scratch + zeros_at : run;
        char* dst = run == pair ? pair + pitch : pair;
        add_row(table.loops[static_cast<int>(OpId::Add)][static_cast<int>(dt)], dst, prev, src + r * src_row_bytes,
                c.inner, osize);
        run = dst;
        if (g % kLeafRows == kLeafRows - 1 || g == numel / c.inner - 1)
          std::memcpy(c.leaf_sums.get() + g / kLeafRows * bytes, run, static_cast<size_t>(bytes));
      }
    };
    std::vector<char*> result(nsteps);             // where each step's block is, this block
    std::vector<int64_t> result_pitch(nsteps, 0);  // bytes between its rows when in padded rows
    for (int64_t c = c0; c < c1; ++c) {
      const int64_t first = c * span, last = std::min(nblocks, first + span);
      for (int64_t blk = first; blk < last; ++blk) {
        const int64_t b = blk * block, n = std::min(block, numel - b);
        if (blk + 1 < nblocks) prefetch_block(plans, b + block, std::min(block, numel - b - block));
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
          char* ptrs[kMaxOperands];
          int64_t strides[kMaxOperands];
          const int64_t osize = static_cast<int64_t>(dtype_size(st.dtype));
          if (st.reduction()) {  // in step order: a row sum's readers come after it
            const graph::ReduceLayout& l = layouts[s];
            char* src = nullptr;
            int64_t stride = 0;
            operand(st.args[0], src, stride);
            const int k = output_of[s];
            if (l.kind == graph::ReduceLayout::Kind::Rows) {
              char* dst = st.slot >= 0
                              ? slot(st.slot)
                              : static_cast<char*>(out[static_cast<size_t>(k)].impl().data()) + b / l.len * osize;
              reduce_contiguous(OpId::Sum, st.dtype, src, n / l.len, l.len, 1, dst);
              result[s] = dst;
            } else if (const ColumnSum& cs = columns[static_cast<size_t>(k)]; cs.per_block) {
              reduce_contiguous(OpId::Sum, st.dtype, src, 1, n / l.inner, l.inner,
                                cs.leaf_sums.get() + blk * l.inner * osize);
            } else {
              const int64_t rp =
                  st.args[0].kind == FusedRef::Kind::Step ? result_pitch[static_cast<size_t>(st.args[0].index)] : 0;
              add_leaf_rows(k, src, rp ? rp : l.inner * osize, b / l.inner, n / l.inner, osize, st.dtype);
            }
            continue;
          }
          ptrs[0] = st.row || direct[s] < 0
                        ? slot(st.slot)
                        : static_cast<char*>(out[static_cast<size_t>(direct[s])].impl().data()) + b * osize;
          strides[0] = osize;
          for (size_t a = 0; a < st.args.size(); ++a) operand(st.args[a], ptrs[a + 1], strides[a + 1]);
          result[s] = ptrs[0];
          if (st.row) {  // one value per row of the block
            loops[s](ptrs, strides, n / rlen[s], &flags);
            continue;
          }
          if (const int64_t rp = direct[s] < 0 ? 0 : pitch[static_cast<size_t>(direct[s])]) {
            // Padded rows: one call per row segment, at its place; column sums read them there.
            const Tensor& o = out[static_cast<size_t>(direct[s])];
            const int64_t cols = o.shape().back();
            char* base = static_cast<char*>(o.impl().data());
            for_row_segments(b, n, cols, [&](int64_t i, int64_t len) {
              char* seg[kMaxOperands];
              seg[0] = base + (i / cols * rp + i % cols) * osize;
              for (size_t a = 1; a <= st.args.size(); ++a) seg[a] = ptrs[a] + (i - b) * strides[a];
              loops[s](seg, strides, len, &flags);
            });
            result[s] = base + b / cols * rp * osize;  // a block of whole rows when a column sum reads it
            result_pitch[s] = rp * osize;
            continue;
          }
          const int64_t len = reads_rows[s];
          if (!len) {
            loops[s](ptrs, strides, n, &flags);
            continue;
          }
          // Row values are read at stride 0, advancing one element per row: one call per row.
          int64_t advance[kMaxOperands];
          for (size_t a = 0; a <= st.args.size(); ++a) {
            advance[a] = len * strides[a];
            if (a == 0) continue;
            const FusedRef& r = st.args[a - 1];
            if (r.kind != FusedRef::Kind::Step || !rlen[static_cast<size_t>(r.index)]) continue;
            advance[a] = strides[a];
            strides[a] = 0;
          }
          char* row_ptrs[kMaxOperands];
          for (int64_t r = 0; r < n / len; ++r) {
            for (size_t a = 0; a <= st.args.size(); ++a) row_ptrs[a] = ptrs[a] + r * advance[a];
            loops[s](row_ptrs, strides, len, &flags);
          }
        }
        for (int k : row_outputs) {
          const int s = p.outputs[static_cast<size_t>(k)];
          const int64_t osize = static_cast<int64_t>(dtype_size(p.steps[static_cast<size_t>(s)].dtype));
          const int64_t len = rlen[static_cast<size_t>(s)];
          std::memcpy(static_cast<char*>(out[static_cast<size_t>(k)].impl().data()) + b / len * osize,
                      result[static_cast<size_t>(s)], static_cast<size_t>(n / len * osize));
        }
        for (int k : copied_outputs) {
          const int s = p.outputs[static_cast<size_t>(k)];
          const int64_t osize = static_cast<int64_t>(dtype_size(p.steps[static_cast<size_t>(s)].dtype));
          char* dst = static_cast<char*>(out[static_cast<size_t>(k)].impl().data());
          if (const int64_t rp = pitch[static_cast<size_t>(k)])
            copy_to_rows(dst, result[static_cast<size_t>(s)], b, n, out[static_cast<size_t>(k)].shape().back(), rp,
                         osize);
          else
            std::memcpy(dst + b * osize, result[static_cast<size_t>(s)], static_cast<size_t>(n * osize));
        }
      }
    }
  });
  if (out_of_memory.load())
    raise<OutOfMemoryError>("run_fused", "no memory for " + std::to_string(nslots) + " scratch blocks per thread");
  for (int k : reduced_outputs) {
    const ColumnSum& c = columns[static_cast<size_t>(k)];
    if (!c.leaf_sums) continue;
    const Tensor& o = out[static_cast<size_t>(k)];
    sum_leaf_rows(o.dtype(), c.leaf_sums.get(), c.leaves, c.inner, o.impl().data());
  }
  if (flags.int_div_by_zero.load()) raise<ValueError>("remainder", "integer division by zero");
  return true;
}

[[maybe_unused]] const bool kRegistered = (graph::register_fused_evaluator("cpu", &evaluate), true);

}  // namespace

}  // namespace tessera::cpu
