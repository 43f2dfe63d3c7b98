// Elementwise/reduction fusion: the pass that groups chains of elementwise primitives into one
// fused node, and the evaluator that runs a fused node block by block (each block of a few
// thousand elements stays in L1 across the whole chain; no run-time compiler).
#pragma once

#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "ir.h"

namespace tessera::graph {

/// One operand of a fused step: a fused node input (by position in GraphNode::inputs), the
/// result of an earlier step, or an immediate 0-d constant (FusedProgram::immediates).
struct FusedRef {
  enum class Kind : uint8_t { Input, Step, Immediate };
  Kind kind = Kind::Input;
  int index = 0;
  friend bool operator==(const FusedRef&, const FusedRef&) = default;
};

/// One primitive of the program, as the graph recorded it (op and attrs unchanged, so a backend
/// without a block evaluator can run it with detail::execute).
struct FusedStep {
  OpId op = OpId::Copy;
  Attrs attrs;
  std::vector<FusedRef> args;    // op's inputs, in order
  DType dtype = DType::Float32;  // output dtype
  /// Scratch slot of the block evaluator holding this step's block (slots are reused once a
  /// step's last reader has run; steps that are node outputs keep theirs to the end).
  int slot = 0;
};

/// What a fused node evaluates: every step's output has `shape`; inputs are broadcast to it
/// (NumPy rules: right-aligned, size-1 axes repeat), which is how Expand views are absorbed.
struct FusedProgram {
  Shape shape;
  Device device;
  std::vector<DType> input_dtypes;  // one per node input
  std::vector<Tensor> immediates;   // 0-d tensors (absorbed scalar constants and 0-d full nodes)
  std::vector<FusedStep> steps;     // in a valid evaluation order
  std::vector<int> outputs;         // the step of each node output
  int num_slots = 0;
};

/// Groups maximal DAGs of elementwise nodes (unary, binary, where, casts) of one output shape and
/// device into single nodes carrying a FusedProgram (GraphNode::fused); operands may be scalars
/// (0-d constants and 0-d full nodes become immediates) or smaller values broadcast to the
/// shape, directly or through an Expand view (absorbed: read with stride 0, never materialized).
/// Values used outside a group, or returned, become its outputs. Only groups of two or more
/// nodes are formed. Ends with dead-code elimination (drops absorbed Expand/full nodes), so
/// value ids are renumbered; leaves verify() passing. Returns the number of primitive nodes
/// absorbed into fused nodes. Reductions are not fused (yet).
TESSERA_API int fuse_elementwise(Graph& g);

/// Evaluates node.fused on in (the node's input values, in node.inputs order). out has one
/// entry per node output: an undefined entry is allocated here (contiguous); a defined entry
/// is a preallocated contiguous tensor of the output's shape and dtype, which may share its
/// buffer with an input of the same shape, dtype and contiguous layout (in-place execution).
/// Throws ValueError when in/out do not match the program (count, shape, dtype, device).
TESSERA_API void run_fused(const GraphNode& node, std::span<const Tensor> in, std::span<Tensor> out);

/// One-line description of a fused node's program for the IR dumps, e.g.
/// "fused[s0=mul($0,$1); s1=add(s0,$2); s2=relu(s1) -> s2]" ($k: node input k).
TESSERA_API std::string fused_str(const FusedProgram& p);

/// A backend's block evaluator for fused programs. It receives inputs already checked against
/// the program and every output allocated (contiguous); it returns false, before writing
/// anything, when it cannot run this program (e.g. a missing inner loop), and run_fused then
/// evaluates the steps one by one with detail::execute (which raises eager mode's error).
using FusedEvaluator = bool (*)(const FusedProgram& p, std::span<const Tensor> in, std::span<const Tensor> out);
/// Registers fn for the backend named backend_name (Backend::name()); safe from static
/// initializers. A later registration for the same name replaces the earlier one.
TESSERA_API void register_fused_evaluator(std::string_view backend_name, FusedEvaluator fn);
/// The evaluator registered for backend_name, or nullptr.
TESSERA_API FusedEvaluator fused_evaluator(std::string_view backend_name);

}  // namespace tessera::graph
