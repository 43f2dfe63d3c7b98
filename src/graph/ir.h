// The graph IR of compile(): SSA values and nodes over the primitives of ops.def.
//
// A Graph is what tracing records: every value is a graph input, a captured constant tensor, or
// output `index` of a node; nodes are in a valid execution order (inputs before uses). Passes
// rewrite a Graph and must leave verify() passing; str() is the readable dump.
#pragma once

#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "tessera/primitives.h"
#include "tessera/tensor.h"

namespace tessera::graph {

struct Value {
  enum class Kind { Input, Constant, NodeOutput };
  Kind kind = Kind::NodeOutput;
  Shape shape;
  Strides strides;  // of the tensor execution will produce (views keep their layout)
  DType dtype = DType::Float32;
  Device device;
  int node = -1;    // NodeOutput: the producing node
  int index = 0;    // NodeOutput: which output; Input: position in the argument list
  Tensor constant;  // Constant: the captured tensor
  /// Set by a layout pass (permute_matmul_outputs, place_concat_inputs) on a node output: the
  /// kernel writes it with `strides` (a permutation of a dense layout, or a slice of the buffer
  /// named by placed_in), and the executor allocates it that way.
  bool strided_output = false;
  /// Set by place_concat_inputs: the value is written straight into the buffer of value
  /// placed_in (a concat's output), starting placed_at elements into it, with `strides`.
  int placed_in = -1;
  int64_t placed_at = 0;
};

/// Elements of the buffer a value owns: its element count, or for a strided_output not placed in
/// another value's buffer the span of its strides (more than the count for padded rows,
/// pad_row_pitches).
TESSERA_API int64_t value_extent(const Value& v);

struct FusedProgram;  // fuse.h
struct Epilogue;      // epilogue.h

struct GraphNode {
  OpId op;
  Attrs attrs;
  std::vector<int> inputs;   // value ids
  std::vector<int> outputs;  // value ids
  /// Set by fuse_elementwise (fuse.h): the node evaluates this program of elementwise (and
  /// trailing reduction) steps in one pass over memory; op/attrs are then meaningless.
  std::shared_ptr<const FusedProgram> fused;
  /// Set by fuse_epilogues (epilogue.h): op (Matmul or Conv2d) is followed by these elementwise
  /// steps, whose extra operands are appended to inputs; the output is the last step's.
  std::shared_ptr<const Epilogue> epilogue;
};

struct TESSERA_API Graph {  // exported for the graph tests (tests/graph)
  std::vector<Value> values;
  std::vector<GraphNode> nodes;
  std::vector<int> inputs;   // value ids, in argument order
  std::vector<int> outputs;  // value ids, in result order (may repeat, may be inputs or constants)

  /// Throws ValueError when a node uses a value not yet defined, ids are out of range, or a
  /// value's producer link is inconsistent.
  void verify() const;
  /// One line per input, constant and node: "%3 = exp(%1) : f32[4,8]" (the readable dump).
  std::string str() const;
};

/// Removes nodes none of whose outputs reach a graph output (dead code), and constants no node
/// or output uses; renumbers values. Returns the number of nodes removed.
TESSERA_API int eliminate_dead_code(Graph& g);
/// Merges nodes with the same op, attributes and inputs (common subexpressions), in order, so
/// chains of duplicates collapse in one pass. Returns the number of nodes merged.
int eliminate_common_subexpressions(Graph& g);

}  // namespace tessera::graph

namespace tessera::graph {

/// Creation nodes without inputs (full, arange) fold only up to this many elements per output.
inline constexpr int64_t kFoldCreationElements = int64_t{1} << 14;

/// Evaluates, once at compile time, every node whose inputs are all constants and whose outputs
/// hold at most max_elements elements each (kFoldCreationElements for nodes without inputs), and
/// turns its outputs into constants (DCE then drops the folded nodes). Returns the number of
/// nodes folded.
int fold_constants(Graph& g, int64_t max_elements = int64_t{1} << 20);

/// Graphviz text of g: inputs and constants as boxes, nodes as ellipses labelled with the op.
TESSERA_API std::string to_dot(const Graph& g);

}  // namespace tessera::graph

namespace tessera::graph {

/// Algebraic simplification: x*1, 1*x, x/1, x+0, 0+x, x-0 (when the result has x's shape and
/// dtype, so no broadcast or promotion is lost), neg(neg(x)), permutes that compose to the
/// identity, and reshape chains collapsed to one reshape. Run after constant folding (scalars
/// are then constants). Returns the number of rewrites; DCE afterwards drops what they orphan.
int simplify(Graph& g);

/// permute(matmul(a, b)) that swaps the last two axes (the matmul's only use) becomes
/// matmul(permute(b), permute(a)), which writes the transposed result contiguously. Returns the
/// number of rewrites.
int swap_transposed_matmuls(Graph& g);

/// permute(matmul(a, b)) that keeps the last axis last (attention's head merge [B,H,T,D] ->
/// [B,T,H,D]): the matmul writes its result in the permuted order (Value::strided_output), so
/// the permute is a contiguous view and a reshape after it needs no copy. Float matmuls without
/// an epilogue whose only reader is the permute, whose other readers are reshapes. Run last, on
/// the final graph. Returns the number of matmuls changed.
TESSERA_API int permute_matmul_outputs(Graph& g);

/// concat(x1, ..., xn) whose every input is a float matmul's result, directly or through
/// permute/reshape views, read by nothing else: each matmul writes its part straight into the
/// concat's buffer (Value::placed_in, strides of that slice), and the memory plan elides the
/// concat (MemoryPlan::elided; attention's q/k/v gradients). The concat's output must not be
/// returned (its buffer is an arena slot that lives from the first matmul on). Run last, after
/// permute_matmul_outputs, on the final graph. Returns the number of concats placed.
TESSERA_API int place_concat_inputs(Graph& g);

/// How one matmul reads a matrix (pad_row_pitches asks the backend with every reader's).
struct MatmulRead {
  int operand = 0;                // 0: the left factor A ([.., M, K]), 1: the right one B ([.., K, N])
  bool reduces_down_rows = false;  // the product's reduction axis runs down the matrix's rows
  bool other_transposed = false;   // the other factor is read transposed (e.g. x W^T)
  bool epilogue = false;           // the product carries fused epilogue steps
};
/// The row pitch (in elements) a backend wants for a [rows, cols] matrix of dtype that only
/// matmuls read, as `reads` says, or 0 for the dense pitch (row_pitch.cpp).
using MatmulRowPitch = int64_t (*)(int64_t rows, int64_t cols, DType dtype, std::span<const MatmulRead> reads);
TESSERA_API void register_matmul_row_pitch(std::string_view backend_name, MatmulRowPitch fn);

/// Float node outputs of a fused pass or elementwise op, read (through permute/reshape views)
/// only by matmuls: where the device's backend asks for it given how those matmuls read them
/// (register_matmul_row_pitch; the CPU's asks when one walks them down their rows, a transposed
/// A or B as stored), the rows get a padded pitch (Value::strided_output; the views' strides
/// follow). Not for returned values. Run with the other layout passes, on the final graph.
/// Returns the number of values padded.
TESSERA_API int pad_row_pitches(Graph& g);

/// add(pad(a), pad(b), ...) whose zero pads along one axis tile it exactly (each pad and inner
/// add used once) becomes concat(a, b, ...) along that axis: the gradient of splitting a tensor
/// into parts. Returns the number of rewrites.
int pads_to_concat(Graph& g);

/// max_pool2d(x) with a later max_pool2d_indices(x) of the same window (a pooling layer and its
/// gradient): the indices move to the forward position and the values are gathered from x with
/// them (one pass over the windows instead of two). Returns the number of rewrites.
int max_pool_values_from_indices(Graph& g);

/// mul(scatter_add(zeros, idx, src), cast(cmp(x, c))) (through reshapes; x of the product's
/// shape, c a scalar constant, the cast from bool: relu's derivative times a max pool's gradient)
/// becomes scatter_add(zeros, idx, src * cast(cmp(gather(x, idx), c))): the mask is evaluated at
/// the scattered positions only, bit for bit the same. Run CSE after it: the gather then merges
/// with the forward pass's gather of x (max_pool_values_from_indices), and x's buffer dies in
/// the forward pass. Returns the number of rewrites.
int mask_scatter_sources(Graph& g);

/// Causal attention: float matmuls that read a value known to be zero above (below) the diagonal
/// of a causal mask's [T, T] axes as their left operand, or whose square result is read only on
/// and below the diagonal, get MatmulAttrs{LowerA, UpperA or LowerResult}, so the kernel skips the
/// masked triangle (causal.cpp explains the analysis). Returns the number of matmuls marked.
TESSERA_API int mark_triangular_matmuls(Graph& g);

/// Float32 convolutions whose input or weight is a strided view get an explicit copy node before
/// them (the kernel would copy it anyway, outside the memory plan). Returns the number of
/// convolutions changed.
int materialize_conv_operands(Graph& g);

}  // namespace tessera::graph
