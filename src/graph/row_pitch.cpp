// pad_row_pitches (ir.h): padded rows for matrices that GEMMs read down their rows.
//
// A GEMM that walks a matrix down its rows (the reduction axis of a weight gradient,
// dW = dY^T H, where H's rows are tokens) reads addresses one row pitch apart. When that pitch
// is a multiple of a cache's set stride (a float32 matrix of 1024 columns: 4 KiB on the CPU),
// those reads fall into the same few cache sets and the GEMM's packing misses on every element
// (src/backend/cpu/matmul_kernels.cpp, cpu_matmul_row_pitch, has the measurements).
//
// Graph mode owns the layout of its intermediates. For a matrix that only matmuls read, the pass
// tells the backend how each reads it (MatmulRead) and the backend answers with a row pitch
// (register_matmul_row_pitch): the CPU's pads when one product walks the matrix down its rows and
// none needs it dense. The producer then writes it with that pitch (a fused pass or an
// elementwise kernel: both write strided outputs), the views on the way to the GEMMs keep it, and
// the GEMMs take it as their leading dimension. Eager tensors stay contiguous.
#include <algorithm>
#include <optional>

#include "../core/dispatch.h"
#include "backend_registry.h"
#include "ir.h"
#include "rewrite.h"

namespace tessera::graph {

namespace {

// The producer writes any strided output: a fused pass (fused_kernels.cpp copies pitched
// blocks out) or a plain elementwise op (run_elementwise's general path).
bool writes_strided_output(const GraphNode& node) {
  if (node.fused) return true;
  if (node.epilogue) return false;
  const OpCategory c = op_info(node.op).category;
  return c == OpCategory::Unary || c == OpCategory::Binary || c == OpCategory::Ternary;
}

// The strides of a view's output given its input's, or nullopt when the view would have to copy.
std::optional<Strides> view_output_strides(const Graph& g, const GraphNode& view, const Strides& in_strides) {
  const Value& in = g.values[static_cast<size_t>(view.inputs[0])];
  const Value& out = g.values[static_cast<size_t>(view.outputs[0])];
  if (view.op == OpId::Permute) {
    const auto& perm = std::get<PermuteAttrs>(view.attrs).perm;
    Strides st(perm.size());
    for (size_t i = 0; i < perm.size(); ++i) st[i] = in_strides[static_cast<size_t>(perm[i])];
    return st;
  }
  Strides st;
  if (view.op != OpId::Reshape || !detail::viewable_reshape(in.shape, in_strides, out.shape, st)) return std::nullopt;
  return st;
}

// The strides a value's rows get with `pitch` elements per row (dense above the rows).
Strides padded_strides(const Shape& shape, int64_t pitch) {
  const size_t r = shape.size();
  Strides st(r);
  st[r - 1] = 1;
  st[r - 2] = pitch;
  for (size_t d = r - 2; d-- > 0;) st[d] = st[d + 1] * shape[d + 1];
  return st;
}

// Follows value v, laid out with strides st, through its permute/reshape readers: every value on
// the way with its strides (v first) into layouts, and how each matmul at the end reads it into
// reads. False when a reader is neither, a view would have to copy, or a value is returned.
bool follow_readers(const Graph& g, const std::vector<std::vector<int>>& readers, const std::vector<char>& returned,
                    int v, const Strides& st, std::vector<std::pair<int, Strides>>& layouts,
                    std::vector<MatmulRead>& reads) {
  layouts.assign(1, {v, st});
  reads.clear();
  for (size_t i = 0; i < layouts.size(); ++i) {
    const auto [x, xs] = layouts[i];
    if (returned[static_cast<size_t>(x)]) return false;
    for (int u : readers[static_cast<size_t>(x)]) {
      const GraphNode& rn = g.nodes[static_cast<size_t>(u)];
      if (!rn.fused && !rn.epilogue && (rn.op == OpId::Permute || rn.op == OpId::Reshape)) {
        auto os = view_output_strides(g, rn, xs);
        if (!os) return false;
        layouts.emplace_back(rn.outputs[0], *os);
        continue;
      }
      if (rn.fused || rn.op != OpId::Matmul || rn.inputs.size() < 2 || (rn.inputs[0] != x && rn.inputs[1] != x) ||
          std::count(rn.inputs.begin(), rn.inputs.end(), x) != 1)
        return false;
      MatmulRead read;
      read.operand = rn.inputs[0] == x ? 0 : 1;
      const size_t xr = xs.size();
      // A transposed, or B as stored: the reduction axis runs down the rows.
      read.reduces_down_rows = xr >= 2 && (read.operand == 0 ? xs[xr - 2] == 1 && xs[xr - 1] != 1 : xs[xr - 1] == 1);
      const Value& other = g.values[static_cast<size_t>(rn.inputs[read.operand == 0 ? 1 : 0])];
      const size_t orr = other.strides.size();
      read.other_transposed = orr >= 2 && other.shape[orr - 1] > 1 && other.strides[orr - 1] != 1;
      read.epilogue = rn.epilogue != nullptr;
      reads.push_back(read);
    }
  }
  return !reads.empty();
}

}  // namespace

void register_matmul_row_pitch(std::string_view backend_name, MatmulRowPitch fn) {
  BackendRegistry<MatmulRowPitch>::set(backend_name, fn);
}

int pad_row_pitches(Graph& g) {
  const std::vector<std::vector<int>> readers = readers_of(g);
  std::vector<char> returned(g.values.size(), 0);
  for (int o : g.outputs) returned[static_cast<size_t>(o)] = 1;
  std::vector<std::pair<int, Strides>> layouts;
  std::vector<MatmulRead> reads;
  int padded = 0;
  for (const GraphNode& node : g.nodes) {
    if (!writes_strided_output(node)) continue;
    for (int v : node.outputs) {
      const Value& val = g.values[static_cast<size_t>(v)];
      const size_t r = val.shape.size();
      if (val.kind != Value::Kind::NodeOutput || val.strided_output || val.placed_in >= 0 || r < 2 ||
          (val.dtype != DType::Float32 && val.dtype != DType::Float64) || val.strides != contiguous_strides(val.shape))
        continue;
      const MatmulRowPitch pitch_of = BackendRegistry<MatmulRowPitch>::get(backend_for(val.device).name());
      const int64_t cols = val.shape[r - 1];
      if (!pitch_of || cols == 0) continue;
      // First with a probe pitch (any pitch above the row length gives the same reads), then
      // with the backend's.
      if (!follow_readers(g, readers, returned, v, padded_strides(val.shape, cols + 1), layouts, reads)) continue;
      const int64_t pitch = pitch_of(shape_numel(val.shape) / cols, cols, val.dtype, reads);
      if (pitch <= cols || !follow_readers(g, readers, returned, v, padded_strides(val.shape, pitch), layouts, reads))
        continue;
      for (const auto& [x, xs] : layouts) g.values[static_cast<size_t>(x)].strides = xs;
      g.values[static_cast<size_t>(v)].strided_output = true;
      ++padded;
    }
  }
  return padded;
}

}  // namespace tessera::graph
