// Graph mode, first part: compile(f) traces f symbolically into a graph IR once per input
// signature, removes dead code and common subexpressions, and replays the cached graph on later
// calls with the same signature. docs/graph_mode_plan.md has the rest of the plan (fusion, memory
// planning, parameter/optimizer state, the set_mode switch).
//
//   auto f = ts::compile([](const ts::TensorList& in) { return ts::TensorList{ts::tanh(in[0]) * in[1]}; });
//   ts::TensorList y = f({x, w});          // first call: trace, optimize, run
//   f({x2, w2});                            // same shapes/dtypes/strides: cached graph
//   f.stats().traces;                       // retraces are counted
//
// Semantics and limits of this part:
// - Tensors the function captures from outside (not passed as inputs) become constants of the
//   cached graph: a later call sees the tensors captured at trace time. Pass values that change
//   between calls (parameters an optimizer rebinds) as inputs.
// - A function that reads a traced value on the host (item(), to_vector(), data()) depends on
//   data: that call and later calls with its signature run eagerly (stats().eager_fallbacks).
// - Called while a transform (grad, vjp, jvp) is active, the function runs eagerly under that
//   transform; compile(grad(f)) is the composing order.
// - Random draws inside f (randn, dropout) are recorded with the generator position of the trace,
//   so every replay repeats them; generator state joins the planned state slots.
// Passes, in order: dead-code elimination, common-subexpression elimination, constant folding
// (nodes whose inputs are all constants, e.g. transposes of captured weights, run once),
// algebraic simplification (x*1, x+0, x-0, x/1, neg(neg x), permutes composing to the identity,
// reshape chains).
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "tessera/tensor.h"

namespace tessera {

struct CompileOptions {
  size_t cache_limit = 8;  // cached signatures; the least recently used is evicted beyond it
  /// When set, every trace writes its IR before and after each pass into this directory:
  /// <trace>-<step>-<pass>.txt (readable dump) and .dot (Graphviz). The directory must exist.
  std::string dump_dir;
};

struct CompileStats {
  int64_t calls = 0;
  int64_t traces = 0;  // one per signature seen (and again after an eviction)
  int64_t cache_hits = 0;
  int64_t evictions = 0;
  int64_t eager_fallbacks = 0;  // calls run eagerly (data-dependent function or active transform)
  int64_t nodes_traced = 0;     // primitive calls recorded, over all traces
  int64_t nodes_removed = 0;    // by dead-code and common-subexpression elimination
  int64_t nodes_folded = 0;     // evaluated once at compile time (constant folding)
  int64_t rewrites = 0;         // algebraic simplifications (x*1, x+0, neg(neg x), permute pairs, ...)
};

class TESSERA_API CompiledFunction {
 public:
  using Fn = std::function<std::vector<Tensor>(const std::vector<Tensor>&)>;
  CompiledFunction(Fn f, CompileOptions options);
  /// Runs f on inputs through the graph cached for their signature (tracing it first when new).
  /// Results equal f(inputs) evaluated eagerly (the same kernels run).
  std::vector<Tensor> operator()(const std::vector<Tensor>& inputs);
  const CompileStats& stats() const;
  /// The IR of the graph used by the most recent call ("" before the first traced call).
  std::string graph_text() const;
  /// Number of primitive nodes in that graph.
  size_t graph_nodes() const;

 private:
  struct Impl;
  std::shared_ptr<Impl> impl_;
};

/// Wraps f (tensors in, tensors out) in a CompiledFunction; see the header comment.
TESSERA_API CompiledFunction compile(CompiledFunction::Fn f, CompileOptions options = {});

}  // namespace tessera
