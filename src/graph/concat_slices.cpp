// place_concat_inputs (ir.h): concatenation without a copy. The parts of a concat that matmuls
// compute are written by those matmuls into the concat's own buffer, each at its slice, so the
// concat node has nothing left to do; the memory planner gives the concat's buffer a lifetime
// from the first of those matmuls and tells the executor to skip the node (MemoryPlan::elided).
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
    // Per input: the matmul output, the views from it to the concat (in order), and all strides.
    struct Part {
      int matmul_out;
      std::vector<std::pair<int, Strides>> strides;  // (value, strides), matmul output first
      int64_t at;
    };
    std::vector<Part> parts;
    int64_t along = 0;
    bool ok = true;
    for (int x : node.inputs) {
      Part part{-1, {}, along * c.strides[axis]};
      along += g.values[static_cast<size_t>(x)].shape[axis];
      if (shape_numel(g.values[static_cast<size_t>(x)].shape) == 0) {  // nothing to write: copy as before
        ok = false;
        break;
      }
      Strides st = c.strides;  // the slice of the concat's buffer that x is
      int v = x;
      std::vector<std::pair<int, Strides>> chain{{v, st}};
      while (ok) {
        if (uses[static_cast<size_t>(v)] != 1) ok = false;
        if (!ok) break;
        if (plain_producer(g, v, OpId::Matmul)) break;
        const GraphNode* p = producer_of(g, v);
        if (!p || p->fused || (p->op != OpId::Permute && p->op != OpId::Reshape)) {
          ok = false;
          break;
        }
        auto in_st = view_input_strides(g, *p, st);
        if (!in_st) {
          ok = false;
          break;
        }
        st = *in_st;
        v = p->inputs[0];
        chain.emplace_back(v, st);
      }
      if (!ok) break;
      const Value& m = g.values[static_cast<size_t>(v)];
      // The kernels write C with unit column stride (matmul_kernels.cpp) and one output per node.
      if (m.placed_in >= 0 || m.dtype != c.dtype || st.back() != 1 || m.shape.size() < 2) {
        ok = false;
        break;
      }
      part.matmul_out = v;
      part.strides.assign(chain.rbegin(), chain.rend());
      parts.push_back(std::move(part));
    }
    if (!ok || parts.empty()) continue;
    for (const Part& part : parts) {
      for (const auto& [v, st] : part.strides) g.values[static_cast<size_t>(v)].strides = st;
      Value& m = g.values[static_cast<size_t>(part.matmul_out)];
      m.strided_output = true;
      m.placed_in = cv;
      m.placed_at = part.at;
    }
    ++placed;
  }
  return placed;
}

}  // namespace tessera::graph
