// The memory planner (memory_plan.h). Three passes over the final node order:
//  1. views map to their base value; each base value's last use (over all its views) is found;
//  2. walking nodes in order, each new non-view output either reuses a dying input's buffer in
//     place or opens a new buffer; buffers then get [birth, death] intervals;
//  3. arena buffers get offsets from two offline allocators, keeping the smaller arena:
//     a linear-scan best-fit allocator over node steps (O(n log n) always), and greedy-by-size
//     best fit over overlapping lifetimes (better packing; run only when the number of
//     overlapping pairs is moderate, since its cost grows with that number).
// Extending: a new op category that is safe in place goes into elementwise_producer(); a new
// kind of alias (an op whose output shares its input's storage) must map to its base in pass 1.
#include "memory_plan.h"

#include <algorithm>
#include <map>
#include <numeric>
#include <set>

#include "../core/dispatch.h"
#include "tessera/error.h"

namespace tessera::graph {

namespace {

// Bytes of a value's buffer (padded rows included, pad_row_pitches).
int64_t value_bytes(const Value& v) { return value_extent(v) * static_cast<int64_t>(dtype_size(v.dtype)); }

int64_t align_up(int64_t bytes) { return (bytes + kArenaAlignment - 1) / kArenaAlignment * kArenaAlignment; }

// Dense row-major layout; strides of size-1 dims do not matter (they never step).
bool is_contiguous(const Value& v) {
  if (v.strides.size() != v.shape.size()) return false;  // layout unknown: never reuse it
  int64_t expect = 1;
  for (size_t d = v.shape.size(); d-- > 0;) {
    if (v.shape[d] == 1) continue;
    if (v.strides[d] != expect) return false;
    expect *= v.shape[d];
  }
  return true;
}

// Whether node output v aliases its input's storage. Reshape of strides that cannot be viewed
// copies at execution (detail::make_view), so its output owns a buffer.
bool is_alias(const Graph& g, const GraphNode& node, const Value& v) {
  if (node.fused || op_info(node.op).category != OpCategory::View) return false;
  if (node.op != OpId::Reshape) return true;
  const Value& in = g.values[static_cast<size_t>(node.inputs[0])];
  Strides st;
  return detail::viewable_reshape(in.shape, in.strides, v.shape, st);
}

bool elementwise_producer(const GraphNode& node) {
  if (node.fused) return true;
  OpCategory c = op_info(node.op).category;
  return c == OpCategory::Unary || c == OpCategory::Binary || c == OpCategory::Ternary;
}

// scatter(x, index, src) and scatter_add copy x into the output, then write the sources: the
// output may take x's own buffer (the copy is then skipped). Only input 0 qualifies.
bool scatter_producer(const GraphNode& node) {
  return !node.fused && (node.op == OpId::Scatter || node.op == OpId::ScatterAdd);
}

struct Buffer {
  int root;       // the value that owns it
  int birth;      // producing node
  int death;      // last node it is live at (n: escapes to the caller)
  int64_t bytes;  // exact
  int64_t size;   // aligned slot size
};

// Linear scan over node steps with a best-fit free list (coalescing). At step k buffers born at
// k are allocated before those dying at k are freed: a node's inputs and outputs coexist.
int64_t allocate_linear_scan(const std::vector<Buffer>& bufs, int num_steps, std::vector<int64_t>& offset) {
  std::vector<std::vector<int>> born(static_cast<size_t>(num_steps) + 1), dies(static_cast<size_t>(num_steps) + 1);
  for (size_t i = 0; i < bufs.size(); ++i) {
    born[static_cast<size_t>(bufs[i].birth)].push_back(static_cast<int>(i));
    dies[static_cast<size_t>(bufs[i].death)].push_back(static_cast<int>(i));
  }
  std::map<int64_t, int64_t> by_off;              // free block offset -> size
  std::set<std::pair<int64_t, int64_t>> by_size;  // (size, offset): best fit = lower_bound
  int64_t top = 0;
  auto release = [&](int64_t off, int64_t size) {
    auto next = by_off.lower_bound(off);
    if (next != by_off.end() && next->first == off + size) {  // merge with the block after
      size += next->second;
      by_size.erase({next->second, next->first});
      next = by_off.erase(next);
    }
    if (next != by_off.begin()) {  // merge with the block before
      auto prev = std::prev(next);
      if (prev->first + prev->second == off) {
        off = prev->first;
        size += prev->second;
        by_size.erase({prev->second, prev->first});
        by_off.erase(prev);
      }
    }
    by_off[off] = size;
    by_size.insert({size, off});
  };
  auto acquire = [&](int64_t size) -> int64_t {
    auto it = by_size.lower_bound({size, INT64_MIN});
    if (it != by_size.end()) {
      auto [bsize, off] = *it;
      by_size.erase(it);
      by_off.erase(off);
      if (bsize > size) {
        by_off[off + size] = bsize - size;
        by_size.insert({bsize - size, off + size});
      }
      return off;
    }
    // No block fits: a free block at the top grows into new space instead of leaving a hole.
    if (!by_off.empty()) {
      auto last = std::prev(by_off.end());
      if (last->first + last->second == top) {
        int64_t off = last->first;
        by_size.erase({last->second, last->first});
        by_off.erase(last);
        top = off + size;
        return off;
      }
    }
    int64_t off = top;
    top += size;
    return off;
  };
  for (int k = 0; k <= num_steps; ++k) {
    auto& b = born[static_cast<size_t>(k)];
    // Larger first: they are the hardest to fit in the holes.
    std::sort(b.begin(), b.end(),
              [&](int x, int y) { return bufs[static_cast<size_t>(x)].size > bufs[static_cast<size_t>(y)].size; });
    for (int i : b) offset[static_cast<size_t>(i)] = acquire(bufs[static_cast<size_t>(i)].size);
    for (int i : dies[static_cast<size_t>(k)])
      release(offset[static_cast<size_t>(i)], bufs[static_cast<size_t>(i)].size);
  }
  return top;
}

// The pairs of buffers whose lifetimes overlap (inclusive intervals), as adjacency lists, or
// false when there are more than max_pairs of them. Sweep by birth: two intervals overlap iff
// the later-born one starts while the other is live.
bool overlapping_pairs(const std::vector<Buffer>& bufs, int num_steps, int64_t max_pairs,
                       std::vector<std::vector<int>>& adj) {
  std::vector<std::vector<int>> born(static_cast<size_t>(num_steps) + 1), dies(static_cast<size_t>(num_steps) + 1);
  for (size_t i = 0; i < bufs.size(); ++i) {
    born[static_cast<size_t>(bufs[i].birth)].push_back(static_cast<int>(i));
    dies[static_cast<size_t>(bufs[i].death)].push_back(static_cast<int>(i));
  }
  // Count first (cheap), so a huge graph never builds a quadratic list.
  int64_t pairs = 0, live = 0;
  for (int k = 0; k <= num_steps; ++k) {
    for (size_t j = 0; j < born[static_cast<size_t>(k)].size(); ++j) pairs += live++;
    live -= static_cast<int64_t>(dies[static_cast<size_t>(k)].size());
    if (pairs > max_pairs) return false;
  }
  adj.assign(bufs.size(), {});
  std::vector<int> active, pos(bufs.size(), -1);
  for (int k = 0; k <= num_steps; ++k) {
    for (int i : born[static_cast<size_t>(k)]) {
      for (int j : active) {
        adj[static_cast<size_t>(i)].push_back(j);
        adj[static_cast<size_t>(j)].push_back(i);
      }
      pos[static_cast<size_t>(i)] = static_cast<int>(active.size());
      active.push_back(i);
    }
    for (int i : dies[static_cast<size_t>(k)]) {  // swap-remove
      int p = pos[static_cast<size_t>(i)];
      active[static_cast<size_t>(p)] = active.back();
      pos[static_cast<size_t>(active.back())] = p;
      active.pop_back();
    }
  }
  return true;
}

// Greedy by size (largest first), each at the lowest-waste gap among the already placed buffers
// whose lifetimes overlap its own (the offline heuristic of TFLite's and MNN's planners).
int64_t allocate_greedy_by_size(const std::vector<Buffer>& bufs, const std::vector<std::vector<int>>& adj,
                                std::vector<int64_t>& offset) {
  std::vector<int> order(bufs.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](int x, int y) {
    const Buffer &a = bufs[static_cast<size_t>(x)], &b = bufs[static_cast<size_t>(y)];
    return a.size != b.size ? a.size > b.size : a.birth < b.birth;
  });
  std::vector<char> placed(bufs.size(), 0);
  std::vector<std::pair<int64_t, int64_t>> taken;  // (offset, end) of placed overlapping buffers
  int64_t top = 0;
  for (int i : order) {
    const int64_t size = bufs[static_cast<size_t>(i)].size;
    taken.clear();
    for (int j : adj[static_cast<size_t>(i)])
      if (placed[static_cast<size_t>(j)])
        taken.push_back(
            {offset[static_cast<size_t>(j)], offset[static_cast<size_t>(j)] + bufs[static_cast<size_t>(j)].size});
    std::sort(taken.begin(), taken.end());
    int64_t best = -1, best_gap = INT64_MAX, prev_end = 0;
    for (auto [off, end] : taken) {
      int64_t gap = off - prev_end;
      if (gap >= size && gap < best_gap) {
        best = prev_end;
        best_gap = gap;
      }
      prev_end = std::max(prev_end, end);
    }
    if (best < 0) best = prev_end;  // above everything it overlaps
    offset[static_cast<size_t>(i)] = best;
    placed[static_cast<size_t>(i)] = 1;
    top = std::max(top, best + size);
  }
  return top;
}

// The greedy search costs about 80 ns per overlapping pair; beyond this many pairs per buffer
// (on average) only the linear scan runs, which keeps planning O(n log n) (a few ms for 10k
// values) while ordinary graphs, whose live sets are small, still get the tighter packing.
constexpr int64_t kGreedyPairsPerBuffer = 32;
constexpr int64_t kGreedyMinPairs = int64_t{1} << 16;

}  // namespace

MemoryPlan plan_memory(const Graph& g, const std::vector<bool>& donated) {
  return plan_memory(g, donated, ArenaStrategy::Smallest);
}

MemoryPlan plan_memory(const Graph& g, const std::vector<bool>& donated, ArenaStrategy strategy) {
  if (!donated.empty() && donated.size() != g.inputs.size())
    raise<ValueError>("plan_memory", "donated has " + std::to_string(donated.size()) + " entries for " +
                                         std::to_string(g.inputs.size()) + " graph inputs");
  const size_t nv = g.values.size();
  const int n = static_cast<int>(g.nodes.size());
  MemoryPlan plan;
  plan.offset.assign(nv, -1);
  plan.elided.assign(static_cast<size_t>(g.nodes.size()), 0);
  plan.inplace_of.assign(nv, -1);
  plan.storage_of.resize(nv);
  std::iota(plan.storage_of.begin(), plan.storage_of.end(), 0);

  std::vector<char> is_donated(nv, 0);
  for (size_t i = 0; i < donated.size(); ++i)
    if (donated[i]) is_donated[static_cast<size_t>(g.inputs[i])] = 1;

  // Pass 1: the base of every view chain, and each base's last use through any of its views.
  std::vector<int> base(nv);
  std::iota(base.begin(), base.end(), 0);
  std::vector<char> alias(nv, 0);
  for (const GraphNode& node : g.nodes)
    for (int v : node.outputs)
      if (is_alias(g, node, g.values[static_cast<size_t>(v)])) {
        alias[static_cast<size_t>(v)] = 1;
        base[static_cast<size_t>(v)] = base[static_cast<size_t>(node.inputs[0])];
      }
  std::vector<int> last_use(nv, -1);
  for (int k = 0; k < n; ++k)
    for (int in : g.nodes[static_cast<size_t>(k)].inputs)
      last_use[static_cast<size_t>(base[static_cast<size_t>(in)])] = k;
  std::vector<char> escapes(nv, 0);  // the value (or a view of it) is returned to the caller
  for (int o : g.outputs) {
    escapes[static_cast<size_t>(base[static_cast<size_t>(o)])] = 1;
    last_use[static_cast<size_t>(base[static_cast<size_t>(o)])] = n;
  }

  // Pass 2: in place or a new buffer, node by node.
  std::vector<Buffer> bufs;
  std::vector<int> buffer_of(nv, -1);  // root value -> index in bufs
  std::vector<int> taken_inputs;
  for (int k = 0; k < n; ++k) {
    const GraphNode& node = g.nodes[static_cast<size_t>(k)];
    taken_inputs.clear();
    for (int v : node.outputs) {
      const Value& out = g.values[static_cast<size_t>(v)];
      plan.naive_bytes += alias[static_cast<size_t>(v)] ? 0 : value_bytes(out);
      if (alias[static_cast<size_t>(v)]) {
        plan.storage_of[static_cast<size_t>(v)] = plan.storage_of[static_cast<size_t>(node.inputs[0])];
        continue;
      }
      // Written into a concat's buffer (place_concat_inputs): the buffer opens with its first part.
      if (const int c = out.placed_in; c >= 0) {
        if (escapes[static_cast<size_t>(c)] || g.values[static_cast<size_t>(c)].kind != Value::Kind::NodeOutput)
          raise<ValueError>("plan_memory", "value %" + std::to_string(v) + " is placed in %" + std::to_string(c) +
                                               ", which is not an intermediate node output");
        if (buffer_of[static_cast<size_t>(c)] < 0) {
          buffer_of[static_cast<size_t>(c)] = static_cast<int>(bufs.size());
          const int64_t bytes = value_bytes(g.values[static_cast<size_t>(c)]);
          bufs.push_back({c, k, k, bytes, align_up(bytes)});
        }
        plan.storage_of[static_cast<size_t>(v)] = c;
        continue;
      }
      if (buffer_of[static_cast<size_t>(v)] >= 0) {  // a concat whose parts are already in place
        for (int in : node.inputs)
          if (g.values[static_cast<size_t>(base[static_cast<size_t>(in)])].placed_in != v)
            raise<ValueError>("plan_memory", "concat %" + std::to_string(v) + " has an input not placed in it");
        plan.elided[static_cast<size_t>(k)] = 1;
        continue;
      }
      int source = -1;
      const bool scatter = scatter_producer(node);
      if (elementwise_producer(node) || scatter) {
        int64_t max_in_numel = 0;
        for (int u : node.inputs)
          max_in_numel = std::max(max_in_numel, shape_numel(g.values[static_cast<size_t>(u)].shape));
        const int64_t out_numel = shape_numel(out.shape);
        // A fused node may end in a reduction (fuse.h): its reduced output is written while
        // inputs of the same shape may still be read, so only full-size outputs go in place.
        const bool fused_ok = !node.fused || out_numel >= max_in_numel;
        for (size_t j = 0; j < (scatter ? 1 : node.inputs.size()); ++j) {
          const int u = node.inputs[j];
          const Value& in = g.values[static_cast<size_t>(u)];
          const size_t su = static_cast<size_t>(u);
          if (!fused_ok || alias[su] || last_use[su] != k || in.shape != out.shape) continue;
          // Element i must land on element i's bytes; run_fused's contract asks for one dtype.
          if (node.fused || scatter ? in.dtype != out.dtype : dtype_size(in.dtype) != dtype_size(out.dtype)) continue;
          if (in.kind == Value::Kind::Constant || (in.kind == Value::Kind::Input && !is_donated[su])) continue;
          if (!is_contiguous(in) || !is_contiguous(out)) continue;
          const int root = plan.storage_of[su];
          // Arena memory is not the caller's: an escaping value may only reuse donated storage.
          if (escapes[static_cast<size_t>(v)] && g.values[static_cast<size_t>(root)].kind != Value::Kind::Input)
            continue;
          if (std::find(taken_inputs.begin(), taken_inputs.end(), root) != taken_inputs.end()) continue;
          // Another operand in the same storage (a transposed view of u, say) would be read
          // after its elements were overwritten.
          bool shared = false;
          for (int w : node.inputs)
            if (w != u && plan.storage_of[static_cast<size_t>(w)] == root) shared = true;
          if (shared) continue;
          source = u;
          break;
        }
      }
      if (source >= 0) {
        const int root = plan.storage_of[static_cast<size_t>(source)];
        taken_inputs.push_back(root);
        plan.inplace_of[static_cast<size_t>(v)] = source;
        plan.storage_of[static_cast<size_t>(v)] = root;
        ++plan.inplace_count;
      } else {
        buffer_of[static_cast<size_t>(v)] = static_cast<int>(bufs.size());
        const int64_t bytes = value_bytes(out);
        bufs.push_back({v, k, k, bytes, align_up(bytes)});
      }
    }
  }
  // A buffer dies with the last use of any value living in it (an unread output still needs
  // its slot while its producer runs: death >= birth).
  for (size_t v = 0; v < nv; ++v) {
    if (g.values[v].kind != Value::Kind::NodeOutput || alias[v]) continue;
    const int b = buffer_of[static_cast<size_t>(plan.storage_of[v])];
    if (b >= 0) bufs[static_cast<size_t>(b)].death = std::max(bufs[static_cast<size_t>(b)].death, last_use[v]);
  }

  // Peak: a difference array over steps 0..n-1 of every buffer the plan allocates.
  std::vector<int64_t> delta(static_cast<size_t>(n) + 2, 0);
  for (const Buffer& b : bufs) {
    delta[static_cast<size_t>(b.birth)] += b.bytes;
    delta[static_cast<size_t>(b.death) + 1] -= b.bytes;
  }
  int64_t live = 0;
  for (int k = 0; k < n; ++k)
    plan.planned_peak_bytes = std::max(plan.planned_peak_bytes, live += delta[static_cast<size_t>(k)]);

  // Pass 3: offsets for the arena buffers (non-escaping, non-empty ones; empty tensors sit at 0).
  std::vector<Buffer> arena;
  std::vector<int> arena_root;
  for (const Buffer& b : bufs) {
    if (b.death == n) continue;  // escapes: its own buffer
    if (b.size == 0) {
      plan.offset[static_cast<size_t>(b.root)] = 0;
      continue;
    }
    arena.push_back(b);
    arena_root.push_back(b.root);
  }
  std::vector<int64_t> off(arena.size(), 0);
  plan.arena_bytes = -1;
  if (strategy != ArenaStrategy::GreedyBySize) plan.arena_bytes = allocate_linear_scan(arena, n, off);
  std::vector<std::vector<int>> adj;
  if (strategy != ArenaStrategy::LinearScan &&
      overlapping_pairs(arena, n,
                        strategy == ArenaStrategy::GreedyBySize
                            ? INT64_MAX
                            : std::max(kGreedyMinPairs, kGreedyPairsPerBuffer * static_cast<int64_t>(arena.size())),
                        adj)) {
    std::vector<int64_t> greedy(arena.size(), 0);
    int64_t bytes = allocate_greedy_by_size(arena, adj, greedy);
    if (plan.arena_bytes < 0 || bytes < plan.arena_bytes) {
      plan.arena_bytes = bytes;
      off = std::move(greedy);
    }
  }
  for (size_t i = 0; i < arena.size(); ++i) plan.offset[static_cast<size_t>(arena_root[i])] = off[i];
  // In-place values sit where their storage's owner does, placed ones at their slice of it.
  for (size_t v = 0; v < nv; ++v) {
    if (plan.inplace_of[v] >= 0) plan.offset[v] = plan.offset[static_cast<size_t>(plan.storage_of[v])];
    if (const int c = g.values[v].placed_in; c >= 0 && !alias[v])
      plan.offset[v] = plan.offset[static_cast<size_t>(c)] +
                       g.values[v].placed_at * static_cast<int64_t>(dtype_size(g.values[v].dtype));
  }
  return plan;
}

}  // namespace tessera::graph
