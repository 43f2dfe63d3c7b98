// Memory planning for compiled graphs: buffer lifetimes over the final node order, in-place
// reuse where legal, and offsets in one arena (greedy best fit), with the planned peak.
#pragma once

#include <cstdint>
#include <vector>

#include "ir.h"

namespace tessera::graph {

struct MemoryPlan {
  /// Per value id: the byte offset of its buffer in the arena, or -1 when the value does not
  /// live in the arena (graph inputs, constants, views of other values, graph outputs).
  std::vector<int64_t> offset;
  /// Per value id: the value whose buffer this value reuses in place (an input of its producer
  /// that dies at that node, same byte size, elementwise or fused producer), or -1.
  std::vector<int> inplace_of;
  /// Per value id: the value that owns the storage it lives in (itself, the base of a view
  /// chain, or the in-place source's owner).
  std::vector<int> storage_of;
  int64_t arena_bytes = 0;         // size of the arena the offsets fit in
  int64_t planned_peak_bytes = 0;  // max over nodes of the bytes live at once (arena + outputs)
  int64_t naive_bytes = 0;         // every intermediate in its own buffer, none freed
  int inplace_count = 0;
};

/// Plans g's intermediates. donated[i] (one per g.inputs entry, may be empty = none) marks graph
/// inputs whose buffers the caller hands over (state the plan updates: a parameter's buffer can
/// then take its new value in place). Sizes come from each Value's shape and dtype.
MemoryPlan plan_memory(const Graph& g, const std::vector<bool>& donated = {});

}  // namespace tessera::graph
