// mark_triangular_matmuls (ir.h): the products of causal attention skip the masked triangle.
//
// A causal mask is a boolean constant M[i, j] = (j > i) over square trailing axes [T, T]
// (leading axes of size 1). From it the pass derives, per value of trailing shape [T, T]:
//   lower  exactly zero above the diagonal: where(M, 0, x); softmax over the last axis of a value
//          that is -inf above the diagonal (where(M, -inf, x)); mul with a lower operand; neg of
//          one; the swap of the last two axes of an upper value. Attention's probabilities and
//          their masked gradient are lower.
//   upper  zero below the diagonal: the swap of the last two axes of a lower value (P^T, dS^T).
//   free   its entries above the diagonal never reach a graph output as long as they are finite:
//          every use is the third operand of where(M, c, x), a product with a lower value, or
//          an add, sub, mul or neg whose result is free itself. The scores q k^T (masked by the
//          where) and the probabilities' gradient dP = dO V^T (only read through P * dP and
//          P * (dP - s)) are free.
// A float matmul whose left operand is lower (upper) and square skips A's zero triangle; one whose
// square result is free computes only the lower triangle (and writes zeros above it, keeping every
// entry finite). So all six products of a causal attention layer (q k^T, P V, dO V^T, P^T dO,
// dS K, dS^T q) do about 5/8 of their work in 32-row blocks (cpu/matmul_kernels.cpp).
//
// What this assumes: the values multiplied by a structural zero are finite. Eager mode's dense
// product turns 0 * inf into NaN where the triangular one never reads the inf; the kernels of
// fused attention (FlashAttention's causal mode) behave the same way.
//
// Extending it: a new op that keeps a property gets a line in forward() (lower/upper) or in
// ignores_upper() (free); the kernel side is MatmulStructure (primitives.h).
#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "ir.h"
#include "rewrite.h"

namespace tessera::graph {

namespace {

// Trailing extent T of a [..., T, T] value, or 0.
int64_t square_extent(const Value& v) {
  const Shape& s = v.shape;
  if (s.size() < 2 || s[s.size() - 1] != s[s.size() - 2]) return 0;
  return s.back();
}

// Whether value id is a causal mask: bool constant [1, ..., 1, T, T] with M[i, j] = (j > i), T >= 2.
bool is_causal_mask(const Graph& g, int id) {
  const Value& v = g.values[static_cast<size_t>(id)];
  if (v.kind != Value::Kind::Constant || v.dtype != DType::Bool) return false;
  const int64_t t = square_extent(v);
  if (t < 2) return false;
  for (size_t d = 0; d + 2 < v.shape.size(); ++d)
    if (v.shape[d] != 1) return false;
  const std::vector<bool> m = v.constant.to_vector<bool>();
  for (int64_t i = 0; i < t; ++i)
    for (int64_t j = 0; j < t; ++j)
      if (m[static_cast<size_t>(i * t + j)] != (j > i)) return false;
  return true;
}

bool is_float(DType t) { return t == DType::Float32 || t == DType::Float64; }

struct Analysis {
  const Graph& g;
  std::vector<char> mask, lower, upper, neg_inf_upper, free;
  std::vector<int64_t> extents;  // T of each causal mask found

  explicit Analysis(const Graph& graph) : g(graph) {
    const size_t n = g.values.size();
    mask.assign(n, 0), lower.assign(n, 0), upper.assign(n, 0), neg_inf_upper.assign(n, 0), free.assign(n, 0);
    for (size_t v = 0; v < n; ++v)
      if ((mask[v] = is_causal_mask(g, static_cast<int>(v)))) extents.push_back(g.values[v].shape.back());
  }

  // Whether value v is [..., T, T] for the extent of some mask (the analysis tracks only those).
  bool tracked(int v) const {
    const Value& x = g.values[static_cast<size_t>(v)];
    const int64_t t = square_extent(x);
    return is_float(x.dtype) && t >= 2 && std::find(extents.begin(), extents.end(), t) != extents.end();
  }

  // lower / upper / -inf above the diagonal, in execution order.
  void forward() {
    for (const GraphNode& n : g.nodes) {
      if (n.fused || n.epilogue || n.outputs.size() != 1) continue;
      const int out = n.outputs[0];
      if (!tracked(out)) continue;
      auto in = [&](size_t i) { return n.inputs[i]; };
      auto& L = lower[static_cast<size_t>(out)];
      auto& U = upper[static_cast<size_t>(out)];
      switch (n.op) {
        case OpId::Where:
          if (mask[static_cast<size_t>(in(0))]) {
            if (constant_all(g, in(1), 0.0)) L = 1;
            if (constant_all(g, in(1), -std::numeric_limits<double>::infinity()))
              neg_inf_upper[static_cast<size_t>(out)] = 1;
          }
          break;
        case OpId::Softmax: {
          const auto* a = std::get_if<AxisAttrs>(&n.attrs);
          if (a && a->axis == static_cast<int64_t>(g.values[static_cast<size_t>(out)].shape.size()) - 1 &&
              neg_inf_upper[static_cast<size_t>(in(0))])
            L = 1;
          break;
        }
        case OpId::Mul:
          L = lower[static_cast<size_t>(in(0))] || lower[static_cast<size_t>(in(1))];
          U = upper[static_cast<size_t>(in(0))] || upper[static_cast<size_t>(in(1))];
          break;
        case OpId::Neg:
          L = lower[static_cast<size_t>(in(0))], U = upper[static_cast<size_t>(in(0))];
          break;
        case OpId::Permute:
          if (swaps_last_two_axes(std::get<PermuteAttrs>(n.attrs).perm))
            L = upper[static_cast<size_t>(in(0))], U = lower[static_cast<size_t>(in(0))];
          break;
        default:
          break;
      }
    }
  }

  // Whether node u reads value v's entries above the diagonal only in ways that cannot matter.
  bool ignores_upper(const GraphNode& u, int v) const {
    if (u.fused || u.epilogue || u.outputs.size() != 1) return false;
    const int out = u.outputs[0];
    const Shape& vs = g.values[static_cast<size_t>(v)].shape;
    switch (u.op) {
      case OpId::Where:  // where(M, c, v): the mask replaces v above the diagonal
        return mask[static_cast<size_t>(u.inputs[0])] && u.inputs[2] == v && u.inputs[0] != v && u.inputs[1] != v;
      case OpId::Mul:
        for (int i = 0; i < 2; ++i)
          if (u.inputs[static_cast<size_t>(i)] == v && lower[static_cast<size_t>(u.inputs[static_cast<size_t>(1 - i)])])
            return true;
        [[fallthrough]];
      case OpId::Add:
      case OpId::Sub:
      case OpId::Neg:  // elementwise and finite for finite operands: free when its result is
        return g.values[static_cast<size_t>(out)].shape == vs && free[static_cast<size_t>(out)];
      default:
        return false;
    }
  }

  // free, from the last node back (every use of a value comes after its definition).
  void backward() {
    const std::vector<std::vector<int>> users = readers_of(g);
    std::vector<char> is_output(g.values.size(), 0);
    for (int v : g.outputs) is_output[static_cast<size_t>(v)] = 1;
    for (size_t i = g.nodes.size(); i-- > 0;) {
      for (int v : g.nodes[i].outputs) {
        if (is_output[static_cast<size_t>(v)] || !tracked(v) || users[static_cast<size_t>(v)].empty()) continue;
        bool all = true;
        for (int u : users[static_cast<size_t>(v)]) all = all && ignores_upper(g.nodes[static_cast<size_t>(u)], v);
        free[static_cast<size_t>(v)] = all;
      }
    }
  }
};

}  // namespace

int mark_triangular_matmuls(Graph& g) {
  bool any_mask = false;
  for (size_t v = 0; v < g.values.size() && !any_mask; ++v)
    any_mask = g.values[v].kind == Value::Kind::Constant && g.values[v].dtype == DType::Bool;
  if (!any_mask) return 0;
  Analysis a(g);
  a.forward();
  a.backward();
  int marked = 0;
  for (GraphNode& n : g.nodes) {
    if (n.op != OpId::Matmul || n.fused || n.epilogue) continue;
    const auto* attrs = std::get_if<MatmulAttrs>(&n.attrs);  // else NoAttrs: a dense product
    if (attrs && attrs->structure != MatmulStructure::Dense) continue;
    const int lhs = n.inputs[0], out = n.outputs[0];
    const Shape& as = g.values[static_cast<size_t>(lhs)].shape;
    if (!is_float(g.values[static_cast<size_t>(out)].dtype) || as.size() < 2) continue;
    MatmulStructure s = MatmulStructure::Dense;
    const bool square_lhs = as[as.size() - 1] == as[as.size() - 2];
    if (a.lower[static_cast<size_t>(lhs)] && square_lhs)
      s = MatmulStructure::LowerA;
    else if (a.upper[static_cast<size_t>(lhs)] && square_lhs)
      s = MatmulStructure::UpperA;
    else if (a.free[static_cast<size_t>(out)])
      s = MatmulStructure::LowerResult;
    if (s == MatmulStructure::Dense) continue;
    n.attrs = MatmulAttrs{s};
    ++marked;
  }
  return marked;
}

}  // namespace tessera::graph
