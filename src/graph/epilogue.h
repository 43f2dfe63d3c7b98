// Epilogue fusion: a matmul or convolution followed by a chain of elementwise ops (bias add,
// batch-norm scale and shift, activation, residual add) becomes one node, which a backend runs
// as one library call with post-ops (oneDNN on the CPU) instead of a pass over memory per op.
#pragma once

#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "ir.h"

namespace tessera::graph {

/// One op applied to the running result r of a fused matmul/convolution.
struct EpilogueStep {
  OpId op = OpId::Relu;  // unary: Relu Gelu GeluTanh Tanh Sigmoid Silu; binary: Add Sub Mul Div Maximum Minimum
  /// Binary ops: the other operand, as a position in GraphNode::inputs; r is always the left
  /// operand (r - x, r / x), so a commutative op absorbed with r on the right is stored swapped.
  int operand = -1;
};

/// The epilogue of a fused node: GraphNode::inputs holds the base op's inputs first, then the
/// operands of the binary steps. Each operand is, relative to the base op's output shape, a
/// scalar (one element), a per-channel vector (only the channel axis larger than 1: the last
/// axis of a matmul, axis 1 of a convolution) or a full tensor of the output's shape.
struct Epilogue {
  std::vector<EpilogueStep> steps;
};

/// Fuses float32 matmuls x W^T whose right operand is the transposed view of a row-major 2-D
/// matrix (a Linear layer's weight) and float32 convolutions with the elementwise chain that follows them: while the
/// running result has exactly one use (and is not a graph output), the op using it is absorbed when it is one of the
/// steps above and its other operand has one of the operand forms above. The fused node takes the position of the last
/// absorbed op and produces its value. Ends with dead-code elimination. Returns the number of elementwise nodes
/// absorbed.
TESSERA_API int fuse_epilogues(Graph& g);

/// Evaluates a node carrying an epilogue: in are the node's inputs; out[0] is a preallocated
/// contiguous tensor of the output's shape and dtype, or undefined (then allocated here as
/// `like` describes). The backend's evaluator runs the base op with as many leading steps as its
/// library fuses; the steps left run as one fused elementwise pass (fuse.h) in place over the
/// output, so a backend without an evaluator still makes one pass for the whole chain.
TESSERA_API void run_epilogue(const GraphNode& node, const Value& like, std::span<const Tensor> in,
                              std::span<Tensor> out);

/// Runs any graph node on its inputs: a fused program through run_fused, an epilogue node
/// through run_epilogue, another op through its backend kernel. Outputs may be preallocated
/// (the memory plan's buffers: written in place) or all undefined (allocated, as eager does).
TESSERA_API void run_node(const Graph& g, const GraphNode& node, std::span<const Tensor> in, std::span<Tensor> out);

/// "+add($2)+relu": a node's epilogue for the IR dumps ($k: node input k).
std::string epilogue_str(const Epilogue& e);

/// A backend's evaluator for fused nodes: base op (Matmul or Conv2d) and its attributes, the
/// epilogue, the node's inputs and the allocated contiguous output. Runs the base op and the
/// first k steps into the output and returns k (0 <= k <= steps), or returns -1, before writing
/// anything, when it does not run this base op (run_epilogue then runs its kernel).
using EpilogueEvaluator = int (*)(OpId op, const Attrs& attrs, const Epilogue& e, std::span<const Tensor> in,
                                  const Tensor& out);
/// Registers fn for the backend named backend_name (Backend::name()); safe from static
/// initializers. A later registration for the same name replaces the earlier one.
TESSERA_API void register_epilogue_evaluator(std::string_view backend_name, EpilogueEvaluator fn);

}  // namespace tessera::graph
