// Elementwise fusion: the pass (fuse_elementwise) and the backend-neutral part of the evaluator.
//
// The pass walks the nodes once, in order, growing groups of elementwise nodes (category Unary,
// Binary or Ternary in ops.def, Cast included) that share one output shape and device:
// - a node joins (and merges) the open groups that produce its operands, so groups are DAGs
//   (Adam's p, g, m, v -> m', v', p' is one group with three outputs);
// - a group is closed as soon as a node outside it reads one of its values: the fused node is
//   placed at its last member, and nothing before that point may need a value it produces. This
//   one rule also keeps the graph acyclic (a path leaving the group and coming back passes
//   through such a reader);
// - operands from outside are node inputs, broadcast to the group's shape (Expand views are
//   looked through, so bias[N] over [B,N] is read with stride 0, never materialized); 0-d
//   constants and 0-d full nodes become immediates;
// - values read outside the group, or returned, become the fused node's outputs;
// - a floating-point sum whose operand the group computes (or reads at full shape) joins as a
//   terminal step when its axes form a trailing or leading run (ReduceLayout): the group's pass
//   over memory also produces the sum, and the summed value is never written when nothing else
//   reads it. A row sum kept as [..., 1] is complete once its rows are (the evaluator's blocks
//   hold whole rows), so it may also start a group, and what reads it joins: elementwise nodes of
//   its [..., 1] shape whose operands are the group's row values or scalars (row steps: layer
//   norm's mean, variance and rstd), and nodes of the group's shape reading it broadcast along
//   the row. Other sums (column sums, sums over middle axes) are complete only after the whole
//   pass: a node reading one closes the group.
// Extending: a new elementwise primitive fuses as soon as its ops.def category is Unary, Binary
// or Ternary; a backend runs it fused once its evaluator knows the primitive's inner loop.
//
// Backend boundary: run_fused validates, allocates outputs and calls the block evaluator that the
// device's backend registered with register_fused_evaluator (the CPU one is in
// src/backend/cpu/fused_kernels.cpp: each block of a few thousand elements goes through every
// step on per-thread scratch that stays in L1/L2). A backend without one, or an evaluator that
// declines a program, gets the steps evaluated one by one with detail::execute, so every backend
// runs fused graphs correctly, and unsupported dtypes raise eager mode's errors.
#include "fuse.h"

#include <algorithm>
#include <cstring>
#include <map>
#include <numeric>
#include <sstream>
#include <utility>

#include "../core/dispatch.h"
#include "backend_registry.h"
#include "rewrite.h"
#include "tessera/error.h"

namespace tessera::graph {

namespace {

bool elementwise(const GraphNode& n) {
  if (n.fused || n.outputs.size() != 1) return false;
  OpCategory c = op_info(n.op).category;
  return c == OpCategory::Unary || c == OpCategory::Binary || c == OpCategory::Ternary;
}

// A sum the group evaluator can compute in the group's pass: float32/float64, dtype kept, axes
// with a ReduceLayout over a run of at most kMaxFusedReduceRun elements (float32 columns: at
// least kMinFusedColumns; float64 ones any number, fuse.h), and an output smaller than the
// operand (a sum over size-1 axes only is a reshape, left to simplify).
bool fusible_reduction(const Graph& g, const GraphNode& n, ReduceLayout& layout) {
  if (n.fused || n.epilogue || n.op != OpId::Sum || n.inputs.size() != 1 || n.outputs.size() != 1) return false;
  const Value& in = g.values[static_cast<size_t>(n.inputs[0])];
  const Value& out = g.values[static_cast<size_t>(n.outputs[0])];
  if ((in.dtype != DType::Float32 && in.dtype != DType::Float64) || in.dtype != out.dtype ||
      shape_numel(out.shape) >= shape_numel(in.shape))
    return false;
  if (!reduce_layout(in.shape, std::get<ReduceAttrs>(n.attrs).axes, layout)) return false;
  if (layout.kind == ReduceLayout::Kind::Columns && layout.inner < kMinFusedColumns && in.dtype != DType::Float64)
    return false;
  return layout.unit() <= kMaxFusedReduceRun;
}

// Whether `rows` is `shape` with a trailing run of axes set to 1 (a keepdims row sum's shape) over
// rows of at least kMinRowReadLen elements.
bool row_shape_of(const Shape& shape, const Shape& rows) {
  if (rows.size() != shape.size()) return false;
  size_t t = shape.size();
  while (t > 0 && rows[t - 1] == 1) --t;
  int64_t len = 1;
  for (size_t d = 0; d < shape.size(); ++d) {
    if (d < t && rows[d] != shape[d]) return false;
    if (d >= t) len *= shape[d];
  }
  return len >= kMinRowReadLen;
}

struct Group {
  std::vector<int> members;  // node indices
  Shape shape;
  Device device;
  bool closed = false;  // a non-member has read one of its values: it can grow no further
  int64_t unit = 1;     // least common multiple of its reductions' runs (ReduceLayout::unit)
  Shape row_shape;      // of its row sums that later members may read (row_value), once it has one
};

// Follows Expand views back to the value they broadcast (reading that value broadcast to the
// group's shape gives the same elements).
int through_expands(const Graph& g, int id) {
  for (;;) {
    const Value& v = g.values[static_cast<size_t>(id)];
    if (v.kind != Value::Kind::NodeOutput) return id;
    const GraphNode& p = g.nodes[static_cast<size_t>(v.node)];
    if (p.fused || p.op != OpId::Expand) return id;
    id = p.inputs[0];
  }
}

// The 0-d tensor an operand stands for when it is a scalar constant or a 0-d full node.
Tensor immediate_of(const Graph& g, int id) {
  const Value& v = g.values[static_cast<size_t>(id)];
  if (!v.shape.empty()) return {};
  if (v.kind == Value::Kind::Constant) return v.constant;
  if (v.kind != Value::Kind::NodeOutput) return {};
  const GraphNode& p = g.nodes[static_cast<size_t>(v.node)];
  if (p.fused || p.op != OpId::Full) return {};
  Tensor t;
  detail::execute(OpId::Full, {}, p.attrs, std::span<Tensor>(&t, 1));  // one element, once at compile time
  return t;
}

// Scratch slots: a step's slot is taken before its operands' slots are released (the inner
// loops' pointers are __restrict, so a step never writes the slot it reads); node outputs keep
// their slots to the end of the block, where they are copied out.
int assign_slots(FusedProgram& p) {
  const int n = static_cast<int>(p.steps.size());
  std::vector<int> last_read(static_cast<size_t>(n), -1);
  for (int s = 0; s < n; ++s)
    for (const FusedRef& r : p.steps[static_cast<size_t>(s)].args)
      if (r.kind == FusedRef::Kind::Step) last_read[static_cast<size_t>(r.index)] = s;
  std::vector<char> read_by_step(static_cast<size_t>(n), 0);
  for (int s = 0; s < n; ++s) read_by_step[static_cast<size_t>(s)] = last_read[static_cast<size_t>(s)] >= 0;
  for (int o : p.outputs) last_read[static_cast<size_t>(o)] = n;
  std::vector<int> free_slots;
  int slots = 0;
  for (int s = 0; s < n; ++s) {
    FusedStep& st = p.steps[static_cast<size_t>(s)];
    if (st.reduction() && !read_by_step[static_cast<size_t>(s)]) {
      st.slot = -1;  // writes its node output directly (a row sum other steps read has a slot)
    } else if (free_slots.empty()) {
      st.slot = slots++;
    } else {
      st.slot = free_slots.back();
      free_slots.pop_back();
    }
    for (size_t k = 0; k < st.args.size(); ++k) {
      const FusedRef& r = st.args[k];
      if (r.kind != FusedRef::Kind::Step || last_read[static_cast<size_t>(r.index)] != s) continue;
      bool seen = false;  // x * x releases its slot once
      for (size_t j = 0; j < k; ++j) seen |= st.args[j] == r;
      if (!seen) free_slots.push_back(p.steps[static_cast<size_t>(r.index)].slot);
    }
    if (last_read[static_cast<size_t>(s)] < 0 && st.slot >= 0) free_slots.push_back(st.slot);  // never read
  }
  return slots;
}

}  // namespace

bool reduce_layout(const Shape& shape, const Axes& axes, ReduceLayout& layout) {
  // Flags of the non-unit axes, in order; the reduced ones must be a trailing or leading run.
  std::vector<std::pair<bool, int64_t>> dims;  // (reduced, size)
  for (size_t d = 0; d < shape.size(); ++d) {
    if (shape[d] == 1) continue;
    const bool red = std::find(axes.begin(), axes.end(), static_cast<int64_t>(d)) != axes.end();
    dims.emplace_back(red, shape[d]);
  }
  size_t lead = 0, trail = 0;
  while (lead < dims.size() && dims[lead].first) ++lead;
  while (trail < dims.size() && dims[dims.size() - 1 - trail].first) ++trail;
  size_t reduced = 0;
  for (const auto& d : dims) reduced += d.first;
  int64_t kept = 1, summed = 1;
  for (const auto& d : dims) (d.first ? summed : kept) *= d.second;
  if (reduced == dims.size() && reduced > 0) {  // everything: one column
    layout = ReduceLayout{ReduceLayout::Kind::Columns, 1, 1};
    return true;
  }
  if (reduced == trail) {  // kept... reduced... (or nothing reduced: rows of one)
    layout = ReduceLayout{ReduceLayout::Kind::Rows, summed, 1};
    return true;
  }
  if (reduced == lead) {  // reduced... kept...
    layout = ReduceLayout{ReduceLayout::Kind::Columns, 1, kept};
    return true;
  }
  return false;
}

const Shape& fused_output_shape(const FusedProgram& p, size_t k) {
  const FusedStep& st = p.steps[static_cast<size_t>(p.outputs[k])];
  return st.reduction() || st.row ? st.reduced_shape : p.shape;
}

bool row_value(const FusedProgram& p, size_t s) {
  const FusedStep& st = p.steps[s];
  if (!st.row && !(st.reduction() && st.op == OpId::Sum)) return false;
  return row_shape_of(p.shape, st.reduced_shape);
}

int64_t padded_row_pitch(const Tensor& t) {
  const Shape& sh = t.shape();
  const Strides& st = t.strides();
  const size_t r = sh.size();
  if (r < 2 || sh[r - 1] < 1 || (sh[r - 1] > 1 && st[r - 1] != 1) || st[r - 2] <= sh[r - 1]) return 0;
  for (size_t d = r - 2; d-- > 0;)
    if (sh[d] != 1 && st[d] != st[d + 1] * sh[d + 1]) return 0;
  return st[r - 2];
}

void register_fused_evaluator(std::string_view backend_name, FusedEvaluator fn) {
  BackendRegistry<FusedEvaluator>::set(backend_name, fn);
}

FusedEvaluator fused_evaluator(std::string_view backend_name) {
  return BackendRegistry<FusedEvaluator>::get(backend_name);
}

int fuse_elementwise(Graph& g) {
  const size_t n = g.nodes.size();
  std::vector<int> group_of(n, -1);  // node -> group id (follow parent to the root)
  std::vector<int> parent;
  std::vector<Group> groups;
  auto root = [&](int x) {
    while (parent[static_cast<size_t>(x)] != x)
      x = parent[static_cast<size_t>(x)] = parent[static_cast<size_t>(parent[static_cast<size_t>(x)])];
    return x;
  };
  auto producer = [&](int id) {
    const Value& v = g.values[static_cast<size_t>(id)];
    return v.kind == Value::Kind::NodeOutput ? v.node : -1;
  };

  std::vector<char> is_reduction(n, 0);
  std::vector<char> is_row(n, 0);  // a row sum later members may read, or a row step
  // Open groups reading each value at their full shape (where a sum of that value may join).
  std::map<int, std::vector<int>> full_readers;
  for (size_t i = 0; i < n; ++i) {
    const GraphNode& node = g.nodes[i];
    std::vector<int> read;     // groups whose values this node reads
    std::vector<int> blocked;  // ... of which it reads a sum no member may read: it cannot join them
    for (int in : node.inputs) {
      int p = producer(in);
      if (p < 0 || group_of[static_cast<size_t>(p)] < 0) continue;
      int r = root(group_of[static_cast<size_t>(p)]);
      if (std::find(read.begin(), read.end(), r) == read.end()) read.push_back(r);
      if (is_reduction[static_cast<size_t>(p)] && !is_row[static_cast<size_t>(p)]) blocked.push_back(r);
    }
    int joined = -1;
    ReduceLayout layout;
    if (fusible_reduction(g, node, layout)) {
      // Joins the open group computing its operand, or else one reading it at full shape; a row
      // sum kept as [..., 1] with no such group starts one (what reads it may then join).
      const int in = node.inputs[0];
      const Value& v = g.values[static_cast<size_t>(in)];
      const Shape& rows = g.values[static_cast<size_t>(node.outputs[0])].shape;
      const bool readable = layout.kind == ReduceLayout::Kind::Rows && row_shape_of(v.shape, rows);
      std::vector<int> candidates;
      if (int p = producer(in);
          p >= 0 && group_of[static_cast<size_t>(p)] >= 0 && !is_reduction[static_cast<size_t>(p)])
        candidates.push_back(root(group_of[static_cast<size_t>(p)]));
      if (auto it = full_readers.find(in); it != full_readers.end())
        for (int r : it->second) candidates.push_back(root(r));
      for (int r : candidates) {
        Group& gr = groups[static_cast<size_t>(r)];
        const int64_t unit = std::lcm(gr.unit, layout.unit());
        if (gr.closed || gr.shape != v.shape || !(gr.device == v.device) || unit > kMaxFusedReduceRun) continue;
        gr.unit = unit;
        gr.members.push_back(static_cast<int>(i));
        group_of[i] = joined = r;
        is_reduction[i] = 1;
        if (readable && (gr.row_shape.empty() || gr.row_shape == rows)) {
          gr.row_shape = rows;
          is_row[i] = 1;
        }
        break;
      }
      if (joined < 0 && readable) {
        joined = static_cast<int>(groups.size());
        groups.push_back(Group{{static_cast<int>(i)}, v.shape, v.device, false, layout.unit(), rows});
        parent.push_back(joined);
        group_of[i] = joined;
        is_reduction[i] = is_row[i] = 1;
        full_readers[in].push_back(joined);
      }
    } else if (elementwise(node)) {
      const Value& out = g.values[static_cast<size_t>(node.outputs[0])];
      // A row step: one value per row of a group it reads, from that group's row values and
      // immediates only.
      for (int r : read) {
        const Group& gr = groups[static_cast<size_t>(r)];
        if (gr.closed || gr.row_shape.empty() || gr.row_shape != out.shape || !(gr.device == out.device)) continue;
        bool ok = std::find(blocked.begin(), blocked.end(), r) == blocked.end();
        for (int in : node.inputs) {  // a row value of group r, or a scalar
          const int p = producer(in);
          const bool row_member = p >= 0 && group_of[static_cast<size_t>(p)] >= 0 &&
                                  root(group_of[static_cast<size_t>(p)]) == r && is_row[static_cast<size_t>(p)];
          ok = ok && (row_member || immediate_of(g, in).defined());
        }
        if (!ok) continue;
        groups[static_cast<size_t>(r)].members.push_back(static_cast<int>(i));
        group_of[i] = joined = r;
        is_row[i] = 1;
        break;
      }
      for (int r : joined >= 0 ? std::vector<int>{} : read) {
        Group& gr = groups[static_cast<size_t>(r)];
        if (gr.closed || gr.shape != out.shape || !(gr.device == out.device)) continue;
        if (std::find(blocked.begin(), blocked.end(), r) != blocked.end()) continue;
        if (joined < 0) {
          joined = r;
          continue;
        }
        Group& into = groups[static_cast<size_t>(joined)];  // merge r into joined
        const int64_t unit = std::lcm(into.unit, gr.unit);
        if (unit > kMaxFusedReduceRun) continue;  // r stays a group of its own (closed below)
        if (!into.row_shape.empty() && !gr.row_shape.empty() && into.row_shape != gr.row_shape) continue;
        if (into.row_shape.empty()) into.row_shape = gr.row_shape;
        into.unit = unit;
        into.members.insert(into.members.end(), gr.members.begin(), gr.members.end());
        gr.members.clear();
        parent[static_cast<size_t>(r)] = joined;
      }
      if (joined < 0) {
        joined = static_cast<int>(groups.size());
        groups.push_back(Group{{}, out.shape, out.device, false, 1, {}});
        parent.push_back(joined);
      }
      if (!is_row[i]) {
        groups[static_cast<size_t>(joined)].members.push_back(static_cast<int>(i));
        group_of[i] = joined;
        for (int in : node.inputs)  // operands read at full shape (a later sum of them may join)
          if (g.values[static_cast<size_t>(in)].shape == out.shape) {
            auto& rs = full_readers[in];
            if (std::find(rs.begin(), rs.end(), joined) == rs.end()) rs.push_back(joined);
          }
      }
    }
    for (int r : read)
      if (root(r) != joined) groups[static_cast<size_t>(root(r))].closed = true;
  }

  // Who reads each value (for the outputs of each group).
  const std::vector<std::vector<int>> readers = readers_of(g);
  std::vector<char> returned(g.values.size(), 0);
  for (int o : g.outputs) returned[static_cast<size_t>(o)] = 1;

  std::vector<GraphNode> fused_at(n);  // the fused node emitted in place of its last member
  std::vector<char> emit_fused(n, 0), absorbed(n, 0);
  int fused_count = 0;
  for (size_t gid = 0; gid < groups.size(); ++gid) {
    Group& gr = groups[gid];
    if (root(static_cast<int>(gid)) != static_cast<int>(gid) || gr.members.size() < 2) continue;
    std::sort(gr.members.begin(), gr.members.end());
    auto member = [&](int node) {
      return node >= 0 && group_of[static_cast<size_t>(node)] >= 0 &&
             root(group_of[static_cast<size_t>(node)]) == static_cast<int>(gid);
    };
    auto prog = std::make_shared<FusedProgram>();
    prog->shape = gr.shape;
    prog->device = gr.device;
    GraphNode fused{OpId::Copy, NoAttrs{}, {}, {}, {}, {}};  // op/attrs unused: run_fused evaluates the program
    std::map<int, int> step_of, input_of, imm_of;            // value id -> step / node input / immediate
    for (int m : gr.members) {
      const GraphNode& node = g.nodes[static_cast<size_t>(m)];
      const Value& produced = g.values[static_cast<size_t>(node.outputs[0])];
      FusedStep st{node.op, node.attrs, {}, produced.dtype, 0, {}, false};
      if (is_reduction[static_cast<size_t>(m)]) st.reduced_shape = produced.shape;
      if (is_row[static_cast<size_t>(m)] && !is_reduction[static_cast<size_t>(m)]) {
        st.row = true;
        st.reduced_shape = produced.shape;
      }
      for (int in : node.inputs) {
        if (auto it = step_of.find(in); it != step_of.end()) {
          st.args.push_back({FusedRef::Kind::Step, it->second});
          continue;
        }
        int src = through_expands(g, in);
        if (auto it = step_of.find(src); it != step_of.end()) {
          st.args.push_back({FusedRef::Kind::Step, it->second});
          continue;
        }
        if (auto it = imm_of.find(src); it != imm_of.end()) {
          st.args.push_back({FusedRef::Kind::Immediate, it->second});
          continue;
        }
        if (Tensor imm = immediate_of(g, src); imm.defined()) {
          int k = static_cast<int>(prog->immediates.size());
          prog->immediates.push_back(imm);
          imm_of[src] = k;
          st.args.push_back({FusedRef::Kind::Immediate, k});
          continue;
        }
        auto [it, fresh] = input_of.emplace(src, static_cast<int>(fused.inputs.size()));
        if (fresh) {
          fused.inputs.push_back(src);
          prog->input_dtypes.push_back(g.values[static_cast<size_t>(src)].dtype);
        }
        st.args.push_back({FusedRef::Kind::Input, it->second});
      }
      step_of[node.outputs[0]] = static_cast<int>(prog->steps.size());
      prog->steps.push_back(std::move(st));
    }
    for (int m : gr.members) {
      int v = g.nodes[static_cast<size_t>(m)].outputs[0];
      bool outside = returned[static_cast<size_t>(v)] != 0;
      for (int r : readers[static_cast<size_t>(v)]) outside |= !member(r);
      if (!outside) continue;
      prog->outputs.push_back(step_of[v]);
      fused.outputs.push_back(v);
    }
    if (fused.outputs.empty()) continue;  // dead group: DCE drops it
    prog->num_slots = assign_slots(*prog);
    fused.fused = std::move(prog);
    const size_t last = static_cast<size_t>(gr.members.back());
    for (int m : gr.members) absorbed[static_cast<size_t>(m)] = 1;
    emit_fused[last] = 1;
    fused_at[last] = std::move(fused);
    fused_count += static_cast<int>(gr.members.size());
  }
  if (!fused_count) return 0;

  std::vector<GraphNode> nodes;
  for (size_t i = 0; i < n; ++i) {
    if (absorbed[i] && !emit_fused[i]) continue;
    GraphNode node = emit_fused[i] ? std::move(fused_at[i]) : std::move(g.nodes[i]);
    for (size_t k = 0; k < node.outputs.size(); ++k) {
      Value& v = g.values[static_cast<size_t>(node.outputs[k])];
      v.node = static_cast<int>(nodes.size());
      v.index = static_cast<int>(k);
    }
    nodes.push_back(std::move(node));
  }
  // Member values that are not outputs now have no producer; no node reads them, and DCE's
  // rebuild drops them together with Expand/full nodes only the group read.
  g.nodes = std::move(nodes);
  eliminate_dead_code(g);
  return fused_count;
}

namespace {

std::string ref_str(const FusedProgram& p, const FusedRef& r) {
  switch (r.kind) {
    case FusedRef::Kind::Input:
      return std::string(1, '$') += std::to_string(r.index);
    case FusedRef::Kind::Step:
      return std::string(1, 's') += std::to_string(r.index);
    case FusedRef::Kind::Immediate: {
      const Tensor& t = p.immediates[static_cast<size_t>(r.index)];
      if (!t.has_storage() || !backend_for(t.device()).host_accessible()) return "imm" + std::to_string(r.index);
      std::ostringstream os;
      os << t.item_scalar().to_double();
      return os.str();
    }
  }
  return "?";
}

// A device-independent copy of src (contiguous) into dst (same shape: contiguous, or padded
// rows on a host-accessible device).
void copy_into(const Tensor& dst, const Tensor& src) {
  size_t bytes = static_cast<size_t>(src.numel()) * src.itemsize();
  if (!bytes) return;
  Backend& be = backend_for(dst.device());
  if (const int64_t pitch = padded_row_pitch(dst)) {
    if (!be.host_accessible())
      raise<ValueError>("run_fused", "padded rows of " + shape_str(dst.shape()) + " on " + dst.device().str() +
                                         ", which the host cannot address");
    const size_t row = static_cast<size_t>(dst.shape().back()) * src.itemsize();
    const size_t pitch_bytes = static_cast<size_t>(pitch) * src.itemsize();
    auto* d = static_cast<char*>(dst.impl().data());
    const auto* s = static_cast<const char*>(src.impl().data());
    for (size_t r = 0; r < bytes / row; ++r) std::memmove(d + r * pitch_bytes, s + r * row, row);
    return;
  }
  if (be.host_accessible()) {
    std::memmove(dst.impl().data(), src.impl().data(), bytes);
    return;
  }
  // The backend interface has no device-to-device copy: stage through the host (this path only
  // serves backends without a fused evaluator writing into preallocated outputs).
  std::vector<unsigned char> host(bytes);
  be.copy_to_host(host.data(), src.impl().data(), bytes, src.device().index);
  be.copy_from_host(dst.impl().data(), host.data(), bytes, dst.device().index);
}

// Step by step with the eager kernels (any backend).
void run_steps(const FusedProgram& p, std::span<const Tensor> in, std::span<Tensor> out) {
  std::vector<Tensor> inputs(in.begin(), in.end());
  for (Tensor& t : inputs)  // unary steps need their operand at full shape; binary ones accept either
    if (t.shape() != p.shape) {
      Tensor v;
      detail::execute(OpId::Expand, std::span<const Tensor>(&t, 1), ShapeAttrs{p.shape}, std::span<Tensor>(&v, 1));
      t = v;
    }
  std::vector<Tensor> vals(p.steps.size()), args;
  for (size_t s = 0; s < p.steps.size(); ++s) {
    const FusedStep& st = p.steps[s];
    args.clear();
    for (const FusedRef& r : st.args)
      args.push_back(r.kind == FusedRef::Kind::Input  ? inputs[static_cast<size_t>(r.index)]
                     : r.kind == FusedRef::Kind::Step ? vals[static_cast<size_t>(r.index)]
                                                      : p.immediates[static_cast<size_t>(r.index)]);
    detail::execute(st.op, args, st.attrs, std::span<Tensor>(&vals[s], 1));
  }
  for (size_t k = 0; k < out.size(); ++k) {
    const Tensor& v = vals[static_cast<size_t>(p.outputs[k])];
    if (out[k].defined())
      copy_into(out[k], v);
    else
      out[k] = v;
  }
}

bool broadcastable(const Shape& from, const Shape& to) {
  if (from.size() > to.size()) return false;
  size_t off = to.size() - from.size();
  for (size_t d = 0; d < from.size(); ++d)
    if (from[d] != 1 && from[d] != to[d + off]) return false;
  return true;
}

}  // namespace

void run_fused(const GraphNode& node, std::span<const Tensor> in, std::span<Tensor> out) {
  if (!node.fused) raise<ValueError>("run_fused", "node (" + std::string(op_name(node.op)) + ") has no fused program");
  const FusedProgram& p = *node.fused;
  if (in.size() != p.input_dtypes.size() || out.size() != p.outputs.size())
    raise<ValueError>("run_fused", "program takes " + std::to_string(p.input_dtypes.size()) + " inputs and " +
                                       std::to_string(p.outputs.size()) + " outputs, got " + std::to_string(in.size()) +
                                       " and " + std::to_string(out.size()));
  for (size_t i = 0; i < in.size(); ++i) {
    const Tensor& t = in[i];
    if (!t.defined()) raise<ValueError>("run_fused", "input " + std::to_string(i) + " is undefined");
    if (t.dtype() != p.input_dtypes[i] || !broadcastable(t.shape(), p.shape) || !(t.device() == p.device))
      raise<ValueError>("run_fused", "input " + std::to_string(i) + " is " + std::string(dtype_name(t.dtype())) +
                                         shape_str(t.shape()) + " on " + t.device().str() + ", program expects " +
                                         std::string(dtype_name(p.input_dtypes[i])) + " broadcastable to " +
                                         shape_str(p.shape) + " on " + p.device.str());
  }
  for (size_t k = 0; k < out.size(); ++k) {
    const Tensor& t = out[k];
    if (!t.defined()) continue;
    DType want = p.steps[static_cast<size_t>(p.outputs[k])].dtype;
    const Shape& shape = fused_output_shape(p, k);
    const bool layout_ok = t.is_contiguous() || padded_row_pitch(t) > 0;
    if (t.dtype() != want || t.shape() != shape || !layout_ok || !(t.device() == p.device))
      raise<ValueError>("run_fused", "output " + std::to_string(k) + " is " + std::string(dtype_name(t.dtype())) +
                                         shape_str(t.shape()) + (layout_ok ? "" : " (strided)") +
                                         ", program writes contiguous or row-padded " + std::string(dtype_name(want)) +
                                         shape_str(shape) + " on " + p.device.str());
  }
  if (FusedEvaluator fn = fused_evaluator(backend_for(p.device).name())) {
    for (size_t k = 0; k < out.size(); ++k)
      if (!out[k].defined())
        out[k] =
            detail::alloc_tensor(fused_output_shape(p, k), p.steps[static_cast<size_t>(p.outputs[k])].dtype, p.device);
    if (fn(p, in, out)) return;
  }
  run_steps(p, in, out);
}

std::string fused_str(const FusedProgram& p) {
  std::ostringstream os;
  os << "fused[";
  for (size_t s = 0; s < p.steps.size(); ++s) {
    const FusedStep& st = p.steps[s];
    os << (s ? "; " : "") << "s" << s << "=" << op_name(st.op);
    if (st.op == OpId::Cast) os << "<" << dtype_name(st.dtype) << ">";
    os << "(";
    for (size_t k = 0; k < st.args.size(); ++k) os << (k ? "," : "") << ref_str(p, st.args[k]);
    os << ")";
    if (st.reduction()) {
      os << "{axes=[";
      const Axes& axes = std::get<ReduceAttrs>(st.attrs).axes;
      for (size_t k = 0; k < axes.size(); ++k) os << (k ? "," : "") << axes[k];
      os << "]}";
    }
  }
  os << " ->";
  for (size_t k = 0; k < p.outputs.size(); ++k) os << (k ? ", s" : " s") << p.outputs[k];
  os << "]";
  return os.str();
}

}  // namespace tessera::graph
