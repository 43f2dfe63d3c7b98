#include "ir.h"

#include <algorithm>
#include <functional>
#include <map>
#include <sstream>

#include "../core/dispatch.h"
#include "epilogue.h"
#include "fuse.h"
#include "rewrite.h"
#include "tessera/error.h"

namespace tessera::graph {

int64_t value_extent(const Value& v) {
  const int64_t n = shape_numel(v.shape);
  if (!v.strided_output || v.placed_in >= 0 || n == 0 || v.strides.size() != v.shape.size()) return n;
  int64_t last = 0;
  for (size_t d = 0; d < v.shape.size(); ++d) last += (v.shape[d] - 1) * v.strides[d];
  return std::max(n, last + 1);
}

namespace {

// A node's name in the dumps: its op (with its epilogue), or its fused program.
std::string node_label(const GraphNode& n) {
  if (n.fused) return fused_str(*n.fused);
  return std::string(op_name(n.op)) + (n.epilogue ? epilogue_str(*n.epilogue) : "");
}
std::string meta_of(const Value& v) { return std::string(dtype_name(v.dtype)) + shape_str(v.shape); }
}  // namespace

void Graph::verify() const {
  // A fused node's program must agree with the node's inputs and outputs (fuse.h).
  auto verify_fused = [&](size_t n, const GraphNode& node) {
    const FusedProgram& p = *node.fused;
    auto fail = [&](const std::string& why) {
      raise<ValueError>("graph.verify", "fused node " + std::to_string(n) + " " + why + ": " + fused_str(p));
    };
    if (node.inputs.size() != p.input_dtypes.size() || node.outputs.size() != p.outputs.size() || node.outputs.empty())
      fail("has " + std::to_string(node.inputs.size()) + " inputs and " + std::to_string(node.outputs.size()) +
           " outputs for a program of " + std::to_string(p.input_dtypes.size()) + " and " +
           std::to_string(p.outputs.size()));
    for (size_t k = 0; k < node.inputs.size(); ++k)
      if (values[static_cast<size_t>(node.inputs[k])].dtype != p.input_dtypes[k])
        fail("input " + std::to_string(k) + " has another dtype");
    for (size_t k = 0; k < node.outputs.size(); ++k) {
      const Value& v = values[static_cast<size_t>(node.outputs[k])];
      int s = p.outputs[k];
      if (s < 0 || static_cast<size_t>(s) >= p.steps.size()) fail("output " + std::to_string(k) + " names no step");
      if (v.shape != fused_output_shape(p, k) || v.dtype != p.steps[static_cast<size_t>(s)].dtype)
        fail("output " + std::to_string(k) + " is " + meta_of(v) + ", not what its step produces");
    }
    for (size_t s = 0; s < p.steps.size(); ++s)
      for (const FusedRef& r : p.steps[s].args) {
        size_t limit = r.kind == FusedRef::Kind::Input  ? p.input_dtypes.size()
                       : r.kind == FusedRef::Kind::Step ? s
                                                        : p.immediates.size();
        if (r.index < 0 || static_cast<size_t>(r.index) >= limit)
          fail("step " + std::to_string(s) + " reads an undefined operand");
        const bool reads_row = r.kind == FusedRef::Kind::Step && row_value(p, static_cast<size_t>(r.index));
        if (r.kind == FusedRef::Kind::Step && p.steps[static_cast<size_t>(r.index)].reduction() && !reads_row)
          fail("step " + std::to_string(s) + " reads a reduction step that is not a row sum");
        if (p.steps[s].row && !reads_row && r.kind != FusedRef::Kind::Immediate)
          fail("row step " + std::to_string(s) + " reads a value that is not one per row");
      }
  };
  std::vector<char> defined(values.size(), 0);
  auto check_id = [&](int id, const char* what) {
    if (id < 0 || static_cast<size_t>(id) >= values.size())
      raise<ValueError>("graph.verify", std::string(what) + " refers to value %" + std::to_string(id) + " of " +
                                            std::to_string(values.size()));
  };
  for (size_t i = 0; i < values.size(); ++i)
    if (values[i].kind != Value::Kind::NodeOutput) defined[i] = 1;
  for (size_t n = 0; n < nodes.size(); ++n) {
    for (int in : nodes[n].inputs) {
      check_id(in, "a node input");
      if (!defined[static_cast<size_t>(in)])
        raise<ValueError>("graph.verify", "node " + std::to_string(n) + " (" + op_name(nodes[n].op) + ") uses %" +
                                              std::to_string(in) + " before it is defined");
    }
    for (size_t k = 0; k < nodes[n].outputs.size(); ++k) {
      int out = nodes[n].outputs[k];
      check_id(out, "a node output");
      const Value& v = values[static_cast<size_t>(out)];
      if (v.kind != Value::Kind::NodeOutput || v.node != static_cast<int>(n) || v.index != static_cast<int>(k))
        raise<ValueError>("graph.verify", "value %" + std::to_string(out) + " does not name node " + std::to_string(n) +
                                              " output " + std::to_string(k) + " as producer");
      defined[static_cast<size_t>(out)] = 1;
    }
    if (nodes[n].fused) verify_fused(n, nodes[n]);
    if (nodes[n].epilogue) {
      const GraphNode& node = nodes[n];
      if (node.fused || node.outputs.size() != 1 || node.inputs.size() < 2)
        raise<ValueError>("graph.verify", "node " + std::to_string(n) + " has a malformed epilogue");
      for (const EpilogueStep& st : node.epilogue->steps)
        if (st.operand >= static_cast<int>(node.inputs.size()) || (st.operand >= 0 && st.operand < 2))
          raise<ValueError>("graph.verify", "node " + std::to_string(n) + "'s epilogue names input $" +
                                                std::to_string(st.operand) + " of " +
                                                std::to_string(node.inputs.size()));
    }
  }
  for (int in : inputs) check_id(in, "a graph input");
  for (int out : outputs) check_id(out, "a graph output");
  // A value placed in a concat's buffer (place_concat_inputs) is a strided node output inside it.
  for (size_t i = 0; i < values.size(); ++i) {
    const Value& v = values[i];
    if (v.placed_in < 0) continue;
    check_id(v.placed_in, "a placed value");
    const Value& c = values[static_cast<size_t>(v.placed_in)];
    const bool concat = c.kind == Value::Kind::NodeOutput && nodes[static_cast<size_t>(c.node)].op == OpId::Concat &&
                        !nodes[static_cast<size_t>(c.node)].fused;
    if (v.kind != Value::Kind::NodeOutput || !v.strided_output || !concat || v.placed_at < 0 ||
        v.placed_at >= shape_numel(c.shape))
      raise<ValueError>("graph.verify", "value %" + std::to_string(i) + " is placed in %" +
                                            std::to_string(v.placed_in) + " at " + std::to_string(v.placed_at) +
                                            ", which is not a slice of a concat's output");
  }
}

namespace {
std::string meta(const Value& v) { return meta_of(v); }
}  // namespace

std::string Graph::str() const {
  std::ostringstream os;
  for (size_t i = 0; i < inputs.size(); ++i)
    os << "input %" << inputs[i] << " : " << meta(values[static_cast<size_t>(inputs[i])]) << "\n";
  for (size_t i = 0; i < values.size(); ++i)
    if (values[i].kind == Value::Kind::Constant) os << "const %" << i << " : " << meta(values[i]) << "\n";
  for (const GraphNode& n : nodes) {
    os << "%" << n.outputs[0];
    for (size_t k = 1; k < n.outputs.size(); ++k) os << ", %" << n.outputs[k];
    os << " = " << node_label(n) << "(";
    for (size_t k = 0; k < n.inputs.size(); ++k) os << (k ? ", " : "") << "%" << n.inputs[k];
    std::string a = n.fused ? "" : attrs_str(n.attrs);
    const Value& v = values[static_cast<size_t>(n.outputs[0])];
    os << ")" << (a.empty() ? "" : " {" + a + "}") << " : " << meta(v);
    if (v.placed_in >= 0) os << " in %" << v.placed_in << " at " << v.placed_at;
    for (int o : n.outputs)  // layouts chosen by a layout pass (permuted or padded)
      if (const Value& w = values[static_cast<size_t>(o)]; w.strided_output && w.placed_in < 0)
        os << " %" << o << " strides " << shape_str(w.strides);
    os << "\n";
  }
  os << "return";
  for (size_t i = 0; i < outputs.size(); ++i) os << (i ? ", " : " ") << "%" << outputs[i];
  os << "\n";
  return os.str();
}

namespace {

// Rebuilds g keeping the nodes flagged in `keep` and the values they, the inputs and the outputs
// use, with values renumbered in order; `replace` maps a value id to the id that stands for it.
void rebuild(Graph& g, const std::vector<char>& keep, const std::vector<int>& replace) {
  auto rep = [&](int id) {
    while (replace[static_cast<size_t>(id)] != id) id = replace[static_cast<size_t>(id)];
    return id;
  };
  std::vector<char> used(g.values.size(), 0);
  for (int in : g.inputs) used[static_cast<size_t>(in)] = 1;
  for (int out : g.outputs) used[static_cast<size_t>(rep(out))] = 1;
  for (size_t n = 0; n < g.nodes.size(); ++n)
    if (keep[n]) {
      for (int in : g.nodes[n].inputs) used[static_cast<size_t>(rep(in))] = 1;
      for (int out : g.nodes[n].outputs) used[static_cast<size_t>(out)] = 1;
    }
  std::vector<int> id(g.values.size(), -1);
  Graph out;
  for (size_t i = 0; i < g.values.size(); ++i)
    if (used[i] && g.values[i].kind != Value::Kind::NodeOutput) {
      id[i] = static_cast<int>(out.values.size());
      out.values.push_back(g.values[i]);
    }
  for (size_t n = 0; n < g.nodes.size(); ++n) {
    if (!keep[n]) continue;
    GraphNode node = g.nodes[n];
    for (int& in : node.inputs) in = id[static_cast<size_t>(rep(in))];
    for (size_t k = 0; k < node.outputs.size(); ++k) {
      size_t old = static_cast<size_t>(node.outputs[k]);
      id[old] = static_cast<int>(out.values.size());
      Value v = g.values[old];
      v.node = static_cast<int>(out.nodes.size());
      out.values.push_back(v);
      node.outputs[k] = id[old];
    }
    out.nodes.push_back(std::move(node));
  }
  for (int in : g.inputs) out.inputs.push_back(id[static_cast<size_t>(in)]);
  for (int o : g.outputs) out.outputs.push_back(id[static_cast<size_t>(rep(o))]);
  g = std::move(out);
}

}  // namespace

std::vector<int> identity(size_t n) {
  std::vector<int> r(n);
  for (size_t i = 0; i < n; ++i) r[i] = static_cast<int>(i);
  return r;
}

std::vector<int> use_counts(const Graph& g) {
  std::vector<int> uses(g.values.size(), 0);
  for (const GraphNode& n : g.nodes)
    for (int in : n.inputs) ++uses[static_cast<size_t>(in)];
  for (int o : g.outputs) ++uses[static_cast<size_t>(o)];
  return uses;
}

std::vector<std::vector<int>> readers_of(const Graph& g) {
  std::vector<std::vector<int>> readers(g.values.size());
  for (size_t n = 0; n < g.nodes.size(); ++n)
    for (int in : g.nodes[n].inputs) readers[static_cast<size_t>(in)].push_back(static_cast<int>(n));
  return readers;
}

bool swaps_last_two_axes(const Axes& perm) {
  const size_t r = perm.size();
  if (r < 2) return false;
  for (size_t i = 0; i + 2 < r; ++i)
    if (perm[i] != static_cast<int64_t>(i)) return false;
  return perm[r - 1] == static_cast<int64_t>(r - 2) && perm[r - 2] == static_cast<int64_t>(r - 1);
}

const GraphNode* producer_of(const Graph& g, int id) {
  const Value& v = g.values[static_cast<size_t>(id)];
  return v.kind == Value::Kind::NodeOutput ? &g.nodes[static_cast<size_t>(v.node)] : nullptr;
}

const GraphNode* plain_producer(const Graph& g, int id, OpId op) {
  const GraphNode* n = producer_of(g, id);
  return n && !n->fused && !n->epilogue && n->op == op ? n : nullptr;
}

bool constant_all(const Graph& g, int id, double v, int64_t max_elements) {
  const Value& c = g.values[static_cast<size_t>(id)];
  if (c.kind != Value::Kind::Constant || c.constant.numel() == 0 || c.constant.numel() > max_elements) return false;
  if (c.dtype == DType::Bool) return false;
  for (double x : c.constant.to_vector<double>())
    if (x != v) return false;
  return true;
}

int new_value(Graph& g, Value like, std::vector<int>& replace, bool contiguous) {
  like.kind = Value::Kind::NodeOutput;
  like.index = 0;
  like.constant = Tensor();
  if (contiguous) like.strides = contiguous_strides(like.shape);
  g.values.push_back(std::move(like));
  const int id = static_cast<int>(g.values.size()) - 1;
  replace.push_back(id);
  return id;
}

void splice(Graph& g, const std::vector<char>& drop, std::vector<std::vector<GraphNode>>& instead,
            const std::vector<int>& replace) {
  std::vector<GraphNode> nodes;
  for (size_t n = 0; n < g.nodes.size(); ++n) {
    if (drop[n]) continue;
    if (instead[n].empty())
      nodes.push_back(std::move(g.nodes[n]));
    else
      for (auto& x : instead[n]) nodes.push_back(std::move(x));
  }
  g.nodes = std::move(nodes);
  for (size_t n = 0; n < g.nodes.size(); ++n)
    for (int o : g.nodes[n].outputs) g.values[static_cast<size_t>(o)].node = static_cast<int>(n);
  rebuild(g, std::vector<char>(g.nodes.size(), 1), replace);
}

int eliminate_dead_code(Graph& g) {
  std::vector<char> live(g.values.size(), 0), keep(g.nodes.size(), 0);
  for (int out : g.outputs) live[static_cast<size_t>(out)] = 1;
  int removed = 0;
  for (size_t n = g.nodes.size(); n-- > 0;) {
    bool needed = false;
    for (int out : g.nodes[n].outputs) needed |= live[static_cast<size_t>(out)] != 0;
    if (!needed) {
      ++removed;
      continue;
    }
    keep[n] = 1;
    for (int in : g.nodes[n].inputs) live[static_cast<size_t>(in)] = 1;
  }
  rebuild(g, keep, identity(g.values.size()));
  return removed;
}

int eliminate_common_subexpressions(Graph& g) {
  std::vector<int> replace = identity(g.values.size());
  std::vector<char> keep(g.nodes.size(), 1);
  std::map<std::string, size_t> seen;  // op, attributes and (replaced) inputs -> first node
  int merged = 0;
  for (size_t n = 0; n < g.nodes.size(); ++n) {
    GraphNode& node = g.nodes[n];
    for (int& in : node.inputs) in = replace[static_cast<size_t>(in)];
    if (node.fused || node.epilogue) continue;  // op/attrs do not describe a fused node: never merged
    std::string key = std::to_string(static_cast<int>(node.op)) + "|" + attrs_str(node.attrs) + "|";
    for (int in : node.inputs) key += std::to_string(in) + ",";
    auto [it, fresh] = seen.emplace(key, n);
    if (fresh) continue;
    const GraphNode& first = g.nodes[it->second];
    if (!(first.attrs == node.attrs)) continue;  // attrs_str collision: keep both
    for (size_t k = 0; k < node.outputs.size(); ++k) replace[static_cast<size_t>(node.outputs[k])] = first.outputs[k];
    keep[n] = 0;
    ++merged;
  }
  rebuild(g, keep, replace);
  return merged;
}

int fold_constants(Graph& g, int64_t max_elements) {
  int folded = 0;
  std::vector<char> keep(g.nodes.size(), 1);
  for (size_t n = 0; n < g.nodes.size(); ++n) {
    GraphNode& node = g.nodes[n];
    if (node.fused || node.epilogue) continue;  // fusion runs after folding; its nodes are never folded again
    bool all_const = true;
    for (int in : node.inputs) all_const &= g.values[static_cast<size_t>(in)].kind == Value::Kind::Constant;
    // Nodes without inputs (full, arange) fold too; random draws never do: a plan redraws them at
    // every call from the generator's current position.
    if (!all_const || op_info(node.op).category == OpCategory::Random) continue;
    // A creation node (no inputs: a fill, a range) costs one write per call, while its folded
    // constant holds memory for the plan's lifetime and cannot be updated in place: only small
    // ones fold (a large zero fill stays a node the memory plan can reuse).
    const int64_t limit = node.inputs.empty() ? std::min(max_elements, kFoldCreationElements) : max_elements;
    bool small = true;
    for (int out : node.outputs) small &= shape_numel(g.values[static_cast<size_t>(out)].shape, "fold") <= limit;
    if (!small) continue;
    std::vector<Tensor> in, out(node.outputs.size());
    for (int id : node.inputs) in.push_back(g.values[static_cast<size_t>(id)].constant);
    detail::execute(node.op, in, node.attrs, out);
    for (size_t k = 0; k < out.size(); ++k) {
      Value& v = g.values[static_cast<size_t>(node.outputs[k])];
      v.kind = Value::Kind::Constant;
      v.constant = out[k];
      v.strides = out[k].strides();
      v.node = -1;
    }
    node.outputs.clear();  // no longer produces anything
    keep[n] = 0;
    ++folded;
  }
  // Drops the folded nodes, and the constants only they used.
  if (folded) rebuild(g, keep, identity(g.values.size()));
  return folded;
}

namespace {
std::string dot_escape(const std::string& s) {
  std::string r;
  for (char c : s) {
    if (c == '"' || c == '\\') r += '\\';
    r += c;
  }
  return r;
}
}  // namespace

std::string to_dot(const Graph& g) {
  std::ostringstream os;
  os << "digraph tessera {\n  rankdir=TB;\n  node [fontname=\"monospace\", fontsize=10];\n";
  for (size_t i = 0; i < g.values.size(); ++i) {
    const Value& v = g.values[i];
    if (v.kind == Value::Kind::NodeOutput) continue;
    os << "  v" << i << " [shape=box, label=\"" << (v.kind == Value::Kind::Input ? "input" : "const") << " %" << i
       << "\\n"
       << dtype_name(v.dtype) << shape_str(v.shape) << "\"];\n";
  }
  for (size_t n = 0; n < g.nodes.size(); ++n) {
    const GraphNode& node = g.nodes[n];
    const Value& v = g.values[static_cast<size_t>(node.outputs[0])];
    os << "  n" << n << " [label=\"" << dot_escape(node_label(node)) << "\\n"
       << dtype_name(v.dtype) << shape_str(v.shape) << "\"];\n";
    for (int in : node.inputs) {
      const Value& src = g.values[static_cast<size_t>(in)];
      os << "  "
         << (src.kind == Value::Kind::NodeOutput ? std::string(1, 'n') += std::to_string(src.node)
                                                 : std::string(1, 'v') += std::to_string(in))
         << " -> n" << n << ";\n";
    }
  }
  for (size_t i = 0; i < g.outputs.size(); ++i) {
    const Value& v = g.values[static_cast<size_t>(g.outputs[i])];
    os << "  out" << i << " [shape=box, style=bold, label=\"output " << i << "\"];\n  "
       << (v.kind == Value::Kind::NodeOutput ? "n" + std::to_string(v.node) : "v" + std::to_string(g.outputs[i]))
       << " -> out" << i << ";\n";
  }
  os << "}\n";
  return os.str();
}

namespace {

bool same_meta(const Value& a, const Value& b) { return a.shape == b.shape && a.dtype == b.dtype; }

}  // namespace

int simplify(Graph& g) {
  std::vector<int> replace(g.values.size());
  for (size_t i = 0; i < replace.size(); ++i) replace[i] = static_cast<int>(i);
  auto rep = [&](int id) {
    while (replace[static_cast<size_t>(id)] != id) id = replace[static_cast<size_t>(id)];
    return id;
  };
  int rewrites = 0;
  for (GraphNode& node : g.nodes) {
    for (int& in : node.inputs) in = rep(in);
    if (node.fused || node.epilogue) continue;
    const int out = node.outputs[0];
    const Value& ov = g.values[static_cast<size_t>(out)];
    int forward = -1;  // the value the output equals
    auto identity_operand = [&](int x, int c, double unit) {
      if (forward < 0 && constant_all(g, c, unit) && same_meta(g.values[static_cast<size_t>(x)], ov)) forward = x;
    };
    switch (node.op) {
      case OpId::Mul:
        identity_operand(node.inputs[0], node.inputs[1], 1.0);
        identity_operand(node.inputs[1], node.inputs[0], 1.0);
        break;
      case OpId::Add:
        identity_operand(node.inputs[0], node.inputs[1], 0.0);
        identity_operand(node.inputs[1], node.inputs[0], 0.0);
        break;
      case OpId::Sub:
        identity_operand(node.inputs[0], node.inputs[1], 0.0);
        break;
      case OpId::Div:
        identity_operand(node.inputs[0], node.inputs[1], 1.0);
        break;
      case OpId::Neg:
        if (const GraphNode* p = plain_producer(g, node.inputs[0], OpId::Neg)) forward = p->inputs[0];
        break;
      case OpId::Permute:
        if (const GraphNode* p = plain_producer(g, node.inputs[0], OpId::Permute)) {
          const auto& inner = std::get<PermuteAttrs>(p->attrs).perm;
          const auto& outer = std::get<PermuteAttrs>(node.attrs).perm;
          bool id = true;
          for (size_t i = 0; i < outer.size(); ++i)
            id &= inner[static_cast<size_t>(outer[i])] == static_cast<int64_t>(i);
          if (id) forward = p->inputs[0];
        }
        break;
      case OpId::Reshape:
        if (const GraphNode* p = plain_producer(g, node.inputs[0], OpId::Reshape)) {
          node.inputs[0] = p->inputs[0];  // reshape(reshape(x, a), b) = reshape(x, b)
          ++rewrites;
        }
        if (same_meta(g.values[static_cast<size_t>(node.inputs[0])], ov)) forward = node.inputs[0];
        break;
      default:
        break;
    }
    if (forward >= 0) {
      replace[static_cast<size_t>(out)] = forward;
      ++rewrites;
    }
  }
  for (int& o : g.outputs) o = rep(o);
  if (rewrites) eliminate_dead_code(g);
  return rewrites;
}

}  // namespace tessera::graph

namespace tessera::graph {

// permute(matmul(a, b)) swapping the last two axes = matmul(permute(b), permute(a)): the GEMM
// then writes the transposed result directly (the permutes are free views for the BLAS), instead
// of a transposed view that every consumer reads with strides (a weight gradient read by the
// optimizer, element by element across rows).
int swap_transposed_matmuls(Graph& g) {
  const std::vector<int> uses = use_counts(g);
  std::vector<int> replace = identity(g.values.size());
  std::vector<char> drop(g.nodes.size(), 0);
  std::vector<std::vector<GraphNode>> instead(g.nodes.size());  // replacement nodes for a matmul
  int rewrites = 0;
  for (size_t n = 0; n < g.nodes.size(); ++n) {
    const GraphNode p = g.nodes[n];
    if (p.fused || p.op != OpId::Permute) continue;
    const Value pin = g.values[static_cast<size_t>(p.inputs[0])];
    if (pin.kind != Value::Kind::NodeOutput || uses[static_cast<size_t>(p.inputs[0])] != 1) continue;
    const size_t m = static_cast<size_t>(pin.node);
    const GraphNode mm = g.nodes[m];
    if (mm.fused || mm.epilogue || mm.op != OpId::Matmul || !instead[m].empty()) continue;
    const auto& perm = std::get<PermuteAttrs>(p.attrs).perm;
    const size_t r = perm.size();
    const int a = mm.inputs[0], b = mm.inputs[1];
    if (!swaps_last_two_axes(perm) || g.values[static_cast<size_t>(a)].shape.size() != r ||
        g.values[static_cast<size_t>(b)].shape.size() != r)
      continue;
    auto transposed = [&](int x) {  // the permute view of x: its layout, last two axes swapped
      Value v = g.values[static_cast<size_t>(x)];
      std::swap(v.shape[r - 2], v.shape[r - 1]);
      std::swap(v.strides[r - 2], v.strides[r - 1]);
      return new_value(g, std::move(v), replace, false);
    };
    const int tb = transposed(b), ta = transposed(a);
    Value& out = g.values[static_cast<size_t>(mm.outputs[0])];
    out.shape = g.values[static_cast<size_t>(p.outputs[0])].shape;
    out.strides = contiguous_strides(out.shape);
    instead[m].push_back(GraphNode{OpId::Permute, p.attrs, {b}, {tb}, {}, {}});
    instead[m].push_back(GraphNode{OpId::Permute, p.attrs, {a}, {ta}, {}, {}});
    instead[m].push_back(GraphNode{OpId::Matmul, mm.attrs, {tb, ta}, {mm.outputs[0]}, {}, {}});
    drop[n] = 1;
    replace[static_cast<size_t>(p.outputs[0])] = mm.outputs[0];
    ++rewrites;
  }
  if (rewrites) splice(g, drop, instead, replace);
  return rewrites;
}

// The matmul writes C[b, h, t, :] where the permute puts it, so the permute's output is dense.
int permute_matmul_outputs(Graph& g) {
  const std::vector<int> uses = use_counts(g);
  const std::vector<std::vector<int>> readers = readers_of(g);
  int changed = 0;
  for (GraphNode& p : g.nodes) {
    if (p.fused || p.op != OpId::Permute) continue;
    const int mv = p.inputs[0], pv = p.outputs[0];
    Value& out = g.values[static_cast<size_t>(mv)];
    if (!plain_producer(g, mv, OpId::Matmul) || uses[static_cast<size_t>(mv)] != 1 || out.strided_output ||
        uses[static_cast<size_t>(pv)] == 0)
      continue;
    if (out.dtype != DType::Float32 && out.dtype != DType::Float64) continue;
    const auto& perm = std::get<PermuteAttrs>(p.attrs).perm;
    const size_t r = perm.size();
    bool identity_perm = true;
    for (size_t i = 0; i < r; ++i) identity_perm &= perm[i] == static_cast<int64_t>(i);
    if (r < 3 || identity_perm || perm[r - 1] != static_cast<int64_t>(r - 1) ||
        out.strides != contiguous_strides(out.shape))
      continue;
    Value& pval = g.values[static_cast<size_t>(pv)];
    const Strides dense = contiguous_strides(pval.shape);
    // Readers of the permute: reshapes only (their strides follow from the new layout).
    bool ok = true;
    std::vector<std::pair<int, Strides>> reshaped;
    for (int u : readers[static_cast<size_t>(pv)]) {
      const GraphNode& rn = g.nodes[static_cast<size_t>(u)];
      Strides st;
      if (rn.fused || rn.op != OpId::Reshape ||
          !detail::viewable_reshape(pval.shape, dense, g.values[static_cast<size_t>(rn.outputs[0])].shape, st)) {
        ok = false;
        break;
      }
      reshaped.emplace_back(rn.outputs[0], st);
    }
    if (!ok) continue;
    for (size_t i = 0; i < r; ++i) out.strides[static_cast<size_t>(perm[i])] = dense[i];
    out.strided_output = true;
    pval.strides = dense;
    for (auto& [v, st] : reshaped) g.values[static_cast<size_t>(v)].strides = st;
    ++changed;
  }
  return changed;
}

}  // namespace tessera::graph

namespace tessera::graph {

// add(pad(a), pad(b), ...) where zero pads along one axis tile it exactly = concat(a, b, ...):
// the gradient of slicing a tensor into parts (attention's q, k, v) comes back as one copy
// instead of a zero-filled buffer per part and the adds that sum them.
int pads_to_concat(Graph& g) {
  const std::vector<int> uses = use_counts(g);
  // The zero pads an add tree rooted at v sums (each used once), as (offset, input) along `axis`.
  std::function<bool(int, int&, std::vector<std::pair<int64_t, int>>&)> leaves =
      [&](int v, int& axis, std::vector<std::pair<int64_t, int>>& out) {
        const GraphNode* p = producer_of(g, v);
        if (!p || p->fused) return false;
        if (p->op == OpId::Add) {
          for (int in : p->inputs)
            if (uses[static_cast<size_t>(in)] != 1 || !leaves(in, axis, out)) return false;
          return true;
        }
        if (p->op != OpId::Pad) return false;
        const auto& a = std::get<PadAttrs>(p->attrs);
        if (a.mode != 0 || a.value.to_double() != 0.0) return false;
        int ax = -1;
        for (size_t i = 0; i < a.pads.size() / 2; ++i)
          if (a.pads[2 * i] != 0 || a.pads[2 * i + 1] != 0) {
            if (ax >= 0 || a.pads[2 * i] < 0 || a.pads[2 * i + 1] < 0) return false;
            ax = static_cast<int>(i);
          }
        if (ax < 0 || (axis >= 0 && ax != axis)) return false;
        axis = ax;
        out.emplace_back(a.pads[2 * static_cast<size_t>(ax)], p->inputs[0]);
        return true;
      };
  std::vector<int> replace = identity(g.values.size());
  std::vector<std::pair<size_t, GraphNode>> concats;  // (position of the root add, concat node)
  std::vector<char> rooted(g.nodes.size(), 0);
  int rewrites = 0;
  for (size_t n = g.nodes.size(); n-- > 0;) {  // from the end: the largest tree first
    const GraphNode& node = g.nodes[n];
    if (node.fused || node.op != OpId::Add || rooted[n]) continue;
    int axis = -1;
    std::vector<std::pair<int64_t, int>> parts;
    if (!leaves(node.outputs[0], axis, parts) || parts.size() < 2) continue;
    const Value& out = g.values[static_cast<size_t>(node.outputs[0])];
    std::sort(parts.begin(), parts.end());
    int64_t at = 0;
    bool tiles = true;
    for (const auto& [off, v] : parts) {
      const Value& pv = g.values[static_cast<size_t>(v)];
      tiles &= off == at && pv.dtype == out.dtype && pv.shape.size() == out.shape.size();
      if (tiles) at += pv.shape[static_cast<size_t>(axis)];
    }
    if (!tiles || at != out.shape[static_cast<size_t>(axis)]) continue;
    GraphNode c{OpId::Concat, AxisAttrs{axis}, {}, {}, {}, {}};
    for (const auto& part : parts) c.inputs.push_back(part.second);
    c.outputs.push_back(new_value(g, out, replace));
    replace[static_cast<size_t>(node.outputs[0])] = c.outputs[0];
    concats.emplace_back(n, std::move(c));
    // Inner adds of this tree are not roots of their own rewrite.
    std::function<void(int)> mark = [&](int val) {
      const GraphNode* p = producer_of(g, val);
      if (!p || p->op != OpId::Add) return;
      rooted[static_cast<size_t>(g.values[static_cast<size_t>(val)].node)] = 1;
      for (int in : p->inputs) mark(in);
    };
    mark(node.outputs[0]);
    ++rewrites;
  }
  if (!rewrites) return 0;
  // Each concat goes right after its root add (all its inputs are defined before the pads).
  std::vector<std::vector<GraphNode>> instead(g.nodes.size());
  for (auto& [n, c] : concats) {
    instead[n].push_back(g.nodes[n]);
    instead[n].push_back(std::move(c));
  }
  splice(g, std::vector<char>(g.nodes.size(), 0), instead, replace);
  eliminate_dead_code(g);  // the pads and adds nobody reads now
  return rewrites;
}

}  // namespace tessera::graph

namespace tessera::graph {

// A convolution whose input or weight is a strided view (the weight gradient's batch-as-channel
// operands) copies it inside the kernel, outside the memory plan. An explicit copy node right
// before the convolution does the same work inside the plan: its buffer gets an arena slot and
// a lifetime, and the kernel reads a contiguous operand.
int materialize_conv_operands(Graph& g) {
  std::vector<int> replace = identity(g.values.size());
  std::vector<std::vector<GraphNode>> instead(g.nodes.size());
  int rewrites = 0;
  for (size_t n = 0; n < g.nodes.size(); ++n) {
    const GraphNode& node = g.nodes[n];
    if (node.fused || (node.op != OpId::Conv2d && node.op != OpId::ConvTranspose2d)) continue;
    GraphNode conv = node;
    for (int& in : conv.inputs) {
      const Value v = g.values[static_cast<size_t>(in)];
      if (v.strides == contiguous_strides(v.shape) || v.dtype != DType::Float32) continue;
      const int copy = new_value(g, v, replace);
      instead[n].push_back(GraphNode{OpId::Copy, NoAttrs{}, {in}, {copy}, {}, {}});
      in = copy;
    }
    if (instead[n].empty()) continue;
    instead[n].push_back(std::move(conv));
    ++rewrites;
  }
  if (rewrites) splice(g, std::vector<char>(g.nodes.size(), 0), instead, replace);
  return rewrites;
}

}  // namespace tessera::graph
