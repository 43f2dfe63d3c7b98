// place_concat_inputs (ir.h): concatenation without a copy. The parts of a concat that matmuls
// compute are written by those matmuls into the concat's own buffer, each at its slice, so the
// concat node has nothing left to do; the memory planner gives the concat's buffer a lifetime
// from the first of those matmuls and tells the executor to skip the node (MemoryPlan::elided).
#include <algorithm>
#include <optional>

#include "../core/dispatch.h"
#include "ir.h"
#include "rewrite.h"

namespace tessera::graph {

namespace {

// The strides a view's input must have for the view to produce (out_shape, out_strides), or
// nullopt when no strided input gives them (a reshape that would have to copy).
std::optional<Strides> view_input_strides(const Graph& g, const GraphNode& view, const Strides& out_strides) {
  const Value& in = g.values[static_cast<size_t>(view.inputs[0])];
  const Value& out = g.values[static_cast<size_t>(view.outputs[0])];
  Strides st(in.shape.size(), 0);
  if (view.op == OpId::Permute) {
    const auto& perm = std::get<PermuteAttrs>(view.attrs).perm;
    for (size_t i = 0; i < perm.size(); ++i) st[static_cast<size_t>(perm[i])] = out_strides[i];
    return st;
  }
  // Reshape: the inverse reshape must be a view, and reshaping back must give out_strides.
  Strides back;
  if (!detail::viewable_reshape(out.shape, out_strides, in.shape, st) ||
      !detail::viewable_reshape(in.shape, st, out.shape, back))
    return std::nullopt;
  for (size_t d = 0; d < back.size(); ++d)
    if (out.shape[d] != 1 && back[d] != out_strides[d]) return std::nullopt;
  return st;
}

// A concat input x traced back to the matmul that computes it, through permute/reshape views,
// each value read only by the next: (value, strides) from the matmul's output to x, given the
// strides of x's slice of the concat's buffer; nullopt when x is not such a part.
std::optional<std::vector<std::pair<int, Strides>>> trace_part(const Graph& g, const std::vector<int>& uses, int x,
                                                               Strides st) {
  std::vector<std::pair<int, Strides>> chain{{x, st}};
  for (int v = x;;) {
    if (uses[static_cast<size_t>(v)] != 1) return std::nullopt;
    if (plain_producer(g, v, OpId::Matmul)) break;
    const GraphNode* p = producer_of(g, v);
    if (!p || p->fused || (p->op != OpId::Permute && p->op != OpId::Reshape)) return std::nullopt;
    auto in_st = view_input_strides(g, *p, st);
    if (!in_st) return std::nullopt;
    st = *in_st;
    v = p->inputs[0];
    chain.emplace_back(v, st);
  }
  std::reverse(chain.begin(), chain.end());
  return chain;
}

}  // namespace

int place_concat_inputs(Graph& g) {
  const std::vector<int> uses = use_counts(g);
  // Returned values and the values they are views of: a concat among them keeps its own buffer.
  std::vector<char> returned(g.values.size(), 0);
  for (int o : g.outputs)
    for (int v = o;;) {
      returned[static_cast<size_t>(v)] = 1;
      const GraphNode* p = producer_of(g, v);
      if (!p || p->fused || op_info(p->op).category != OpCategory::View) break;
      v = p->inputs[0];
    }
  int placed = 0;
  for (const GraphNode& node : g.nodes) {
    if (node.fused || node.op != OpId::Concat) continue;
    const int cv = node.outputs[0];
    const Value& c = g.values[static_cast<size_t>(cv)];
    if (returned[static_cast<size_t>(cv)] || (c.dtype != DType::Float32 && c.dtype != DType::Float64) ||
        shape_numel(c.shape) == 0 || c.strides != contiguous_strides(c.shape))
      continue;
    const size_t axis = static_cast<size_t>(std::get<AxisAttrs>(node.attrs).axis);
    // Per input: (value, strides) from its matmul's output to it, and its first element in c.
    std::vector<std::pair<std::vector<std::pair<int, Strides>>, int64_t>> parts;
    int64_t along = 0;
    for (int x : node.inputs) {
      const Value& xv = g.values[static_cast<size_t>(x)];
      const int64_t at = along * c.strides[axis];
      along += xv.shape[axis];
      if (shape_numel(xv.shape) == 0) break;  // nothing to write: the concat copies as before
      auto chain = trace_part(g, uses, x, c.strides);
      if (!chain) break;
      const auto& [m, st] = chain->front();
      const Value& mv = g.values[static_cast<size_t>(m)];
      // The kernels write C with unit column stride (matmul_kernels.cpp) and one output per node.
      if (mv.placed_in >= 0 || mv.dtype != c.dtype || st.back() != 1 || mv.shape.size() < 2) break;
      parts.emplace_back(std::move(*chain), at);
    }
    if (parts.size() != node.inputs.size()) continue;
    for (const auto& [chain, at] : parts) {
      for (const auto& [v, st] : chain) g.values[static_cast<size_t>(v)].strides = st;
      Value& m = g.values[static_cast<size_t>(chain.front().first)];
      m.strided_output = true;
      m.placed_in = cv;
      m.placed_at = at;
    }
    ++placed;
  }
  return placed;
}

}  // namespace tessera::graph
