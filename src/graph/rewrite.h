// Helpers of the rewrite passes (ir.cpp, pool_rewrites.cpp, causal.cpp, fuse.cpp): a pass collects, per node, the
// nodes that stand in for it and a map from old value ids to their replacements, then splices.
#pragma once

#include <vector>

#include "ir.h"

namespace tessera::graph {

/// The map {0, 1, ..., n-1}: every value stands for itself.
std::vector<int> identity(size_t n);

/// How many times each value is read: once per node input slot naming it, once per graph output.
std::vector<int> use_counts(const Graph& g);

/// The nodes reading each value, once per input slot naming it, in node order (graph outputs
/// are not listed).
std::vector<std::vector<int>> readers_of(const Graph& g);

/// Whether perm swaps the last two axes and keeps the others in place (a matrix transpose).
bool swaps_last_two_axes(const Axes& perm);

/// The node producing value id, or nullptr for graph inputs and constants.
const GraphNode* producer_of(const Graph& g, int id);

/// The node producing value id when it is a plain node (not fused, no epilogue) of op `op`.
const GraphNode* plain_producer(const Graph& g, int id, OpId op);

/// Whether value id is a non-bool constant with 1..max_elements elements, every one equal to v.
bool constant_all(const Graph& g, int id, double v, int64_t max_elements = 64);

/// Appends a node output shaped like `like` (its node link is set by splice), contiguous unless
/// asked to keep like's strides, with its identity entry in replace. Returns its id.
int new_value(Graph& g, Value like, std::vector<int>& replace, bool contiguous = true);

/// Replaces node n by the nodes instead[n] (when not empty), drops the nodes flagged in drop,
/// and rebuilds g with `replace` (value id -> the id that stands for it). New values are
/// appended to g.values (new_value) before the call.
void splice(Graph& g, const std::vector<char>& drop, std::vector<std::vector<GraphNode>>& instead,
            const std::vector<int>& replace);

}  // namespace tessera::graph
