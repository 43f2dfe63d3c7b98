// Elementwise/reduction fusion: the pass that groups chains of elementwise primitives into one
// fused node, and the evaluator that runs a fused node block by block (each block of a few
// thousand elements stays in L1 across the whole chain; no run-time compiler).
#pragma once

#include <span>
#include <string>

#include "ir.h"

namespace tessera::graph {

/// Groups maximal chains of elementwise nodes (unary, binary, where, casts; with broadcast and
/// scalar operands) and, where legal, a trailing reduction into single nodes carrying a
/// FusedProgram (GraphNode::fused). Values used outside a group become its outputs. Leaves
/// verify() passing. Returns the number of primitive nodes absorbed into fused nodes.
int fuse_elementwise(Graph& g);

/// Evaluates node.fused on in (the node's input values, in node.inputs order). out has one
/// entry per node output: an undefined entry is allocated here (contiguous); a defined entry
/// is a preallocated contiguous tensor of the output's shape and dtype, which may share its
/// buffer with an input of the same shape, dtype and contiguous layout (in-place execution).
void run_fused(const GraphNode& node, std::span<const Tensor> in, std::span<Tensor> out);

/// One-line description of a fused node's program for the IR dumps, e.g.
/// "fused[add(%0,%1) -> relu -> mul(.,%2)]".
std::string fused_str(const FusedProgram& p);

}  // namespace tessera::graph
