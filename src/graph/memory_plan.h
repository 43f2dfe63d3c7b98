// Memory planning for compiled graphs: buffer lifetimes over the final node order, in-place
// reuse where legal, and offsets in one arena (greedy best fit), with the planned peak.
//
// How an executor uses a plan (node k, output value v):
//  - view (a View op whose output is an alias: storage_of[v] != v and inplace_of[v] == -1):
//    make the view of its input as eager does; it allocates nothing.
//  - offset[v] >= 0: v is a contiguous tensor at byte offset[v] of the arena (in-place values
//    share their source's offset; a Reshape that must copy also gets a slot here), or a strided
//    one (Value::strided_output): a value placed in a concat's buffer sits at its slice's offset.
//  - elided[k]: node k (a concat whose parts are already in its buffer) is not run; its output
//    is the arena tensor at its offset.
//  - storage_of[v] is a graph input (then it was donated): v is written in place into that
//    input's buffer (same shape, contiguous).
//  - otherwise (offset -1, storage_of[v] == v): v escapes to the caller (a graph output, or the
//    base of a view that is one) and gets its own buffer.
// Buffers live from the producing node to the last node reading them or any view of them
// (inclusive: a node's inputs and outputs coexist while it runs, unless the output reuses the
// input in place); escaping buffers live to the end.
#pragma once

#include <cstdint>
#include <vector>

#include "ir.h"
#include "tessera/export.h"

namespace tessera::graph {

/// Every arena offset and slot size is a multiple of this (cache line; enough for any dtype and
/// for aligned vector loads).
inline constexpr int64_t kArenaAlignment = 64;

struct MemoryPlan {
  /// Per value id: the byte offset of its buffer in the arena, or -1 when the value does not
  /// live in the arena (graph inputs, constants, views of other values, escaping values: graph
  /// outputs and the bases of views that are outputs; values written into donated storage).
  /// Empty tensors sit at offset 0, also when arena_bytes is 0.
  std::vector<int64_t> offset;
  /// Per value id: the value whose buffer this value reuses in place (an input of its producer
  /// that dies at that node, same shape and element size, elementwise or fused producer, or the
  /// base of a scatter), or -1.
  std::vector<int> inplace_of;
  /// Per value id: the value that owns the storage it lives in (itself, the base of a view
  /// chain, or the in-place source's owner).
  std::vector<int> storage_of;
  /// Per node: 1 for a concat whose inputs were all written into its buffer by their producers
  /// (place_concat_inputs, Value::placed_in): the executor places its output and skips it.
  std::vector<char> elided;
  int64_t arena_bytes = 0;  // size of the arena the offsets fit in (a multiple of kArenaAlignment)
  /// Max over node steps k of the bytes of the buffers the plan allocates that are live while
  /// node k runs: arena buffers (exact, unaligned byte sizes; a buffer reused in place counts
  /// once) plus the own buffers of escaping values allocated so far (they live to the end).
  /// Graph inputs, constants and donated input storage are not counted: they exist anyway.
  int64_t planned_peak_bytes = 0;
  /// Every non-view node output (intermediates and escaping outputs) in its own buffer, none
  /// freed or reused: the sum of their byte sizes.
  int64_t naive_bytes = 0;
  int inplace_count = 0;
};

/// Plans g's intermediates. donated[i] (one per g.inputs entry, may be empty = none) marks graph
/// inputs whose buffers the caller hands over (state the plan updates: a parameter's buffer can
/// then take its new value in place). Sizes come from each Value's shape and dtype.
/// In place (v reuses input u's buffer) needs: an elementwise producer (Unary, Binary, Ternary or
/// a fused node without a reduction into v) or a scatter / scatter_add whose base input is u
/// (same dtype), u not a view, contiguous, of v's shape and element
/// size (fused: dtype), dead after this node (no later reader of u or of a view of u), no other
/// input of the node in u's storage, and u a node output or a donated input; a value that
/// escapes may only reuse donated storage (arena memory is not the caller's).
/// Runs in O(n log n) in the number of values (plus a best-fit search over pairs of overlapping
/// lifetimes when there are not too many of them). Throws ValueError when donated is not empty
/// and its length differs from g.inputs.size().
TESSERA_API MemoryPlan plan_memory(const Graph& g, const std::vector<bool>& donated = {});

/// How arena offsets are found. Smallest runs both (greedy only when the number of overlapping
/// lifetime pairs is moderate) and keeps the smaller arena; the others force one allocator
/// (tests, and comparing them): LinearScan walks node steps with a best-fit free list, O(n log n);
/// GreedyBySize places the largest buffers first at the tightest gap among the buffers live with
/// them, O(n log n + pairs * log).
enum class ArenaStrategy { Smallest, LinearScan, GreedyBySize };
/// plan_memory with a chosen arena allocator; liveness and in-place decisions are the same.
TESSERA_API MemoryPlan plan_memory(const Graph& g, const std::vector<bool>& donated, ArenaStrategy strategy);

}  // namespace tessera::graph
