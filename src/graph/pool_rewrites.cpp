// Rewrites of pooling layers and their gradients (declared in ir.h):
//  - max_pool_values_from_indices: the forward max_pool2d reads its values through the indices
//    the backward pass needs anyway (one pass over the windows);
//  - mask_scatter_sources: an activation's 0/1 derivative mask that multiplies a scattered
//    gradient (relu before a max pool) moves onto the scattered sources, so the mask is read at
//    the indices only and the full-size activation need not live until the backward pass.
// Extending: match on GraphNode ops (skip fused and epilogue nodes), collect the stand-in nodes
// per position in `instead`, map replaced values in `replace`, then splice() (rewrite.h).
#include <algorithm>
#include <limits>

#include "ir.h"
#include "rewrite.h"

namespace tessera::graph {

// max_pool2d(x) next to max_pool2d_indices(x) (the forward pass and its gradient's argmax):
// the indices are computed once, in the forward position, and the values gathered from x with
// them, instead of a second pass over every window.
int max_pool_values_from_indices(Graph& g) {
  std::vector<int> replace = identity(g.values.size());
  std::vector<char> drop(g.nodes.size(), 0);
  std::vector<std::vector<GraphNode>> instead(g.nodes.size());
  auto add_value = [&](Value v) { return new_value(g, std::move(v), replace); };
  int rewrites = 0;
  for (size_t m = 0; m < g.nodes.size(); ++m) {
    if (g.nodes[m].fused || g.nodes[m].op != OpId::MaxPool2d) continue;
    const int x = g.nodes[m].inputs[0];
    size_t i = m + 1;
    for (; i < g.nodes.size(); ++i)
      if (!g.nodes[i].fused && g.nodes[i].op == OpId::MaxPool2dIndices && g.nodes[i].inputs[0] == x &&
          g.nodes[i].attrs == g.nodes[m].attrs && !drop[i])
        break;
    const Value xv = g.values[static_cast<size_t>(x)];
    if (i == g.nodes.size() || xv.shape.size() != 4 || xv.strides != contiguous_strides(xv.shape)) continue;
    const GraphNode pool = g.nodes[m], indices = g.nodes[i];
    const Value out = g.values[static_cast<size_t>(pool.outputs[0])];
    const int64_t nc = xv.shape[0] * xv.shape[1], hw = xv.shape[2] * xv.shape[3];
    const int64_t ohw = out.shape[2] * out.shape[3];
    Value v = xv;
    v.shape = {nc, hw};
    const int xr = add_value(v);
    v = g.values[static_cast<size_t>(indices.outputs[0])];
    v.shape = {nc, ohw};
    const int ir = add_value(v);
    v = out;
    v.shape = {nc, ohw};
    const int gathered = add_value(v);
    const int values = add_value(out);
    instead[m].push_back(indices);  // moved up from the backward pass
    instead[m].push_back(GraphNode{OpId::Reshape, ShapeAttrs{Shape{nc, hw}}, {x}, {xr}, {}, {}});
    instead[m].push_back(GraphNode{OpId::Reshape, ShapeAttrs{Shape{nc, ohw}}, {indices.outputs[0]}, {ir}, {}, {}});
    instead[m].push_back(GraphNode{OpId::Gather, AxisAttrs{1}, {xr, ir}, {gathered}, {}, {}});
    instead[m].push_back(GraphNode{OpId::Reshape, ShapeAttrs{out.shape}, {gathered}, {values}, {}, {}});
    replace[static_cast<size_t>(pool.outputs[0])] = values;
    drop[i] = 1;
    ++rewrites;
  }
  if (rewrites) splice(g, drop, instead, replace);
  return rewrites;
}

namespace {

bool is_comparison(OpId op) {
  return op == OpId::Eq || op == OpId::Ne || op == OpId::Lt || op == OpId::Le || op == OpId::Gt || op == OpId::Ge;
}

// A zero fill: full(0) or a (non-bool) constant of any size whose elements are all zero.
bool all_zeros(const Graph& g, int id) {
  const Value& v = g.values[static_cast<size_t>(id)];
  if (v.kind == Value::Kind::Constant)
    return v.dtype != DType::Bool &&
           (v.constant.numel() == 0 || constant_all(g, id, 0.0, std::numeric_limits<int64_t>::max()));
  const GraphNode* fill = plain_producer(g, id, OpId::Full);
  return fill && std::get<FullAttrs>(fill->attrs).value.to_double() == 0.0;
}

bool is_scalar_constant(const Value& v) { return v.kind == Value::Kind::Constant && shape_numel(v.shape) == 1; }

}  // namespace

// mul(reshape...(scatter_add(zeros, idx, src)), cast(cmp(x, c))) -- in either operand order, with
// x of the product's shape, c a scalar constant and the cast from bool -- becomes
//   reshape(scatter_add(zeros, idx, src * cast(cmp(gather(reshape(x), idx), c)))).
// At a destination d both sides are mask(x[d]) times the sum of the sources scattered to d; the
// mask is 0 or 1, so multiplying each source first rounds exactly alike. Placed at the product,
// the new gather repeats a forward gather(reshape(x), idx) when there is one (a max pool's
// values), and the CSE pass after this one merges them: x is then last read in the forward pass.
int mask_scatter_sources(Graph& g) {
  const std::vector<int> uses = use_counts(g);
  std::vector<int> replace = identity(g.values.size());
  std::vector<char> drop(g.nodes.size(), 0);
  std::vector<std::vector<GraphNode>> instead(g.nodes.size());
  int rewrites = 0;
  for (size_t m = 0; m < g.nodes.size(); ++m) {
    const GraphNode& mul = g.nodes[m];
    if (mul.fused || mul.epilogue || mul.op != OpId::Mul) continue;
    const Value& prod = g.values[static_cast<size_t>(mul.outputs[0])];
    for (int side = 0; side < 2; ++side) {
      // The mask: cast(cmp(x, c)) from bool to the product's dtype.
      const GraphNode* cast = plain_producer(g, mul.inputs[static_cast<size_t>(1 - side)], OpId::Cast);
      if (!cast || std::get<CastAttrs>(cast->attrs).dtype != prod.dtype) continue;
      const Value& cmp_out = g.values[static_cast<size_t>(cast->inputs[0])];
      if (cmp_out.dtype != DType::Bool || cmp_out.kind != Value::Kind::NodeOutput) continue;
      const GraphNode& cmp = g.nodes[static_cast<size_t>(cmp_out.node)];
      if (cmp.fused || !is_comparison(cmp.op)) continue;
      const int xs = is_scalar_constant(g.values[static_cast<size_t>(cmp.inputs[1])]) ? 0 : 1;
      const int x = cmp.inputs[static_cast<size_t>(xs)];
      const Value xv = g.values[static_cast<size_t>(x)];
      const Value& cv = g.values[static_cast<size_t>(cmp.inputs[static_cast<size_t>(1 - xs)])];
      if (!is_scalar_constant(cv) || xv.kind == Value::Kind::Constant || xv.shape != prod.shape ||
          cmp_out.shape != prod.shape || xv.strides != contiguous_strides(xv.shape))
        continue;
      // The scattered gradient, through reshapes each read only on this path.
      int r = mul.inputs[static_cast<size_t>(side)];
      if (g.values[static_cast<size_t>(r)].dtype != prod.dtype || g.values[static_cast<size_t>(r)].shape != prod.shape)
        continue;
      while (uses[static_cast<size_t>(r)] == 1 && plain_producer(g, r, OpId::Reshape))
        r = plain_producer(g, r, OpId::Reshape)->inputs[0];
      const GraphNode* scatter = plain_producer(g, r, OpId::ScatterAdd);
      if (!scatter || uses[static_cast<size_t>(r)] != 1 || !all_zeros(g, scatter->inputs[0])) continue;
      const int idx = scatter->inputs[1], src = scatter->inputs[2];
      const Value zv = g.values[static_cast<size_t>(scatter->inputs[0])];
      const Value iv = g.values[static_cast<size_t>(idx)], sv = g.values[static_cast<size_t>(src)];
      if (sv.shape != iv.shape || sv.dtype != prod.dtype || cv.shape.size() > iv.shape.size()) continue;

      std::vector<GraphNode>& out = instead[m];
      auto add = [&](OpId op, Attrs attrs, std::vector<int> ins, Value like) {
        const int v = new_value(g, std::move(like), replace);
        out.push_back(GraphNode{op, std::move(attrs), std::move(ins), {v}, {}, {}});
        return v;
      };
      int xr = x;
      if (xv.shape != zv.shape) {
        Value like = xv;
        like.shape = zv.shape;
        xr = add(OpId::Reshape, ShapeAttrs{zv.shape}, {x}, like);
      }
      Value like = xv;
      like.shape = iv.shape;
      const int at = add(OpId::Gather, scatter->attrs, {xr, idx}, like);
      std::vector<int> cmp_in = cmp.inputs;
      cmp_in[static_cast<size_t>(xs)] = at;
      like.dtype = DType::Bool;
      const int b = add(cmp.op, cmp.attrs, cmp_in, like);
      like.dtype = prod.dtype;
      const int mask = add(OpId::Cast, cast->attrs, {b}, like);
      const int masked =
          add(OpId::Mul, NoAttrs{}, side == 0 ? std::vector<int>{src, mask} : std::vector<int>{mask, src}, like);
      like.shape = zv.shape;
      int result = add(OpId::ScatterAdd, scatter->attrs, {scatter->inputs[0], idx, masked}, like);
      if (zv.shape != prod.shape) result = add(OpId::Reshape, ShapeAttrs{prod.shape}, {result}, prod);
      replace[static_cast<size_t>(mul.outputs[0])] = result;
      ++rewrites;
      break;
    }
  }
  if (rewrites) {
    splice(g, drop, instead, replace);
    eliminate_dead_code(g);  // the old scatter, and the mask when nothing else reads it
  }
  return rewrites;
}

}  // namespace tessera::graph
