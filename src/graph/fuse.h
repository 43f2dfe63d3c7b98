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
  /// step's last reader has run; steps that are node outputs keep theirs to the end). -1 for a
  /// reduction step no other step reads, which writes its node output directly.
  int slot = 0;
  /// The output shape of a reduction step (its node output's) or of a row step; empty for the
  /// other elementwise steps, whose output has the program's shape.
  Shape reduced_shape;
  /// An elementwise step on one value per row: its operands are row sums and row steps of the
  /// program (and immediates), and its shape is theirs (reduced_shape). Layer norm's mean and
  /// rstd from its row sums; see FusedProgram.
  bool row = false;
  bool reduction() const { return op_info(op).category == OpCategory::Reduce; }
};

/// Where a reduction step's reduced axes lie in the program shape once size-1 axes are dropped:
/// - Rows: a trailing run; output r sums the contiguous elements [r * len, (r + 1) * len).
/// - Columns: a leading run (or every axis); output j sums elements j, j + inner, j + 2 inner, ...
/// Other patterns (reduced axes between kept ones) are not fused.
struct ReduceLayout {
  enum class Kind : uint8_t { Rows, Columns } kind = Kind::Rows;
  int64_t len = 1;    // Rows: elements per output
  int64_t inner = 1;  // Columns: number of outputs (elements per input row)
  /// Element count a block of the evaluator must be a multiple of (len or inner).
  int64_t unit() const { return kind == Kind::Rows ? len : inner; }
};

/// The layout of a reduction over `axes` (normalized) of `shape`, or false when the reduced axes
/// form neither a trailing nor a leading run.
TESSERA_API bool reduce_layout(const Shape& shape, const Axes& axes, ReduceLayout& layout);

/// What a fused node evaluates: every elementwise step's output has `shape` (row steps aside);
/// inputs are broadcast to it (NumPy rules: right-aligned, size-1 axes repeat), which is how Expand
/// views are absorbed. Reduction steps (sum) read a full-shape operand, so one pass over memory
/// computes an elementwise chain and the sums of its values (softmax's and layer norm's row sums,
/// a bias gradient's column sum). A row sum kept as [..., 1] (row_value) is complete once the
/// rows it sums are, so later steps may read it: row steps compute on one value per row, and
/// full-shape steps read row values broadcast along the row. The evaluator's blocks hold whole
/// rows, so a block sums its rows and goes on using the sums while the rows are in cache (layer
/// norm's backward, softmax's backward: the two-phase row kernels). Column sums are complete only
/// after the whole pass: no step reads them.
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
/// A float32/float64 sum joins a group when it reduces a value the group computes or reads at
/// the group's shape, its axes have a ReduceLayout, its run (len or inner) is at most
/// kMaxFusedReduceRun elements and a float32 column sum has at least kMinFusedColumns columns. A row
/// sum kept as [..., 1] may also start a group, and its readers join it as row steps or
/// broadcast readers (FusedProgram); what reads any other sum stays outside the group. Fused
/// sums add in the order of eager mode's reduction kernels, so their results are eager's bit
/// for bit. Values used outside a group, or returned, become its outputs. Only groups of two or
/// more nodes are formed. Ends with dead-code elimination (drops absorbed Expand/full nodes), so
/// value ids are renumbered; leaves verify() passing. Returns the number of primitive nodes
/// absorbed into fused nodes.
TESSERA_API int fuse_elementwise(Graph& g);

/// The longest row (Rows) or column count (Columns) of a fused reduction: a block of the
/// evaluator holds whole rows.
inline constexpr int64_t kMaxFusedReduceRun = 16384;
/// The fewest columns of a fused float32 column sum. Narrower float32 ones (a full sum, a few
/// columns) stay reduction nodes: the reduction kernels sum them in vector lanes, faster than row
/// by row, in an order a row-by-row pass would not reproduce. Narrow float64 sums (a gradient
/// norm's sum of squares) do fuse: the evaluator sums each block with the reduction kernels'
/// loops and combines the blocks' sums pairwise, to float64 accuracy but not in eager mode's
/// order (not bit for bit; float32 values computed from them almost always agree).
inline constexpr int64_t kMinFusedColumns = 64;

/// The shortest row whose sum steps of the same group may read: full-shape steps reading a row
/// value run their inner loop once per row.
inline constexpr int64_t kMinRowReadLen = 16;

/// The shape of a fused node's output k (the program's shape, or a reduction's or row step's).
TESSERA_API const Shape& fused_output_shape(const FusedProgram& p, size_t k);

/// Whether step s of p produces one value per row that later steps may read: a row step, or a sum
/// whose reduced_shape is the program's shape with a trailing run of axes (not all of size 1) set
/// to 1, over rows of at least kMinRowReadLen elements.
TESSERA_API bool row_value(const FusedProgram& p, size_t s);

/// Evaluates node.fused on in (the node's input values, in node.inputs order). out has one
/// entry per node output: an undefined entry is allocated here (contiguous); a defined entry
/// is a preallocated tensor of the output's shape and dtype, contiguous or with padded rows
/// (padded_row_pitch), which may share its buffer with an input of the same shape, dtype and
/// contiguous layout (in-place execution).
/// Throws ValueError when in/out do not match the program (count, shape, dtype, device).
TESSERA_API void run_fused(const GraphNode& node, std::span<const Tensor> in, std::span<Tensor> out);

/// One-line description of a fused node's program for the IR dumps, e.g.
/// "fused[s0=mul($0,$1); s1=add(s0,$2); s2=relu(s1) -> s2]" ($k: node input k).
TESSERA_API std::string fused_str(const FusedProgram& p);

/// The row pitch of t when it is laid out as rows of its last axis with padding after each row
/// (strides [.., pitch, 1] with pitch > the row length, dense above: pad_row_pitches), else 0.
TESSERA_API int64_t padded_row_pitch(const Tensor& t);

/// A backend's block evaluator for fused programs. It receives inputs already checked against
/// the program and every output allocated (contiguous, or padded rows: padded_row_pitch); it
/// returns false, before writing
/// anything, when it cannot run this program (e.g. a missing inner loop), and run_fused then
/// evaluates the steps one by one with detail::execute (which raises eager mode's error).
using FusedEvaluator = bool (*)(const FusedProgram& p, std::span<const Tensor> in, std::span<const Tensor> out);
/// Registers fn for the backend named backend_name (Backend::name()); safe from static
/// initializers. A later registration for the same name replaces the earlier one.
TESSERA_API void register_fused_evaluator(std::string_view backend_name, FusedEvaluator fn);
/// The evaluator registered for backend_name, or nullptr.
TESSERA_API FusedEvaluator fused_evaluator(std::string_view backend_name);

}  // namespace tessera::graph
