// Epilogue fusion: the pass (fuse_epilogues) and the backend-neutral evaluator (run_epilogue),
// plus run_node, which runs any graph node (fused, epilogue or plain).
//
// The pass looks at every float32 Matmul with a 2-D right operand and every float32 Conv2d, and
// follows its result forward while it has exactly one reader: a unary activation, or a binary op
// whose other operand is a scalar, a per-channel vector or a full tensor of the result's shape,
// joins the epilogue. The chain stops at the first value read twice (a training graph keeps the
// pre-activation for the backward pass: there the bias add fuses, the activation does not).
// Extending: a new activation joins kUnary below and the backends' evaluators (the CPU one maps
// each step to a oneDNN post-op in src/backend/cpu/matmul_kernels.cpp and conv_kernels.cpp).
#include "epilogue.h"

#include <algorithm>
#include <utility>

#include "../core/dispatch.h"
#include "backend_registry.h"
#include "fuse.h"
#include "tessera/error.h"

namespace tessera::graph {

namespace {

bool unary_step(OpId op) {
  switch (op) {
    case OpId::Relu:
    case OpId::Gelu:
    case OpId::GeluTanh:
    case OpId::Tanh:
    case OpId::Sigmoid:
    case OpId::Silu:
      return true;
    default:
      return false;
  }
}
bool binary_step(OpId op) {
  switch (op) {
    case OpId::Add:
    case OpId::Sub:
    case OpId::Mul:
    case OpId::Div:
    case OpId::Maximum:
    case OpId::Minimum:
      return true;
    default:
      return false;
  }
}
bool commutative(OpId op) { return op == OpId::Add || op == OpId::Mul || op == OpId::Maximum || op == OpId::Minimum; }

// Whether operand x has one of the forms of epilogue.h relative to an output of shape out whose
// channel axis is `channel` (counted from the front).
bool operand_form(const Value& x, const Shape& out, size_t channel) {
  if (x.dtype != DType::Float32 || x.shape.size() > out.size()) return false;
  if (shape_numel(x.shape) == 1) return true;       // scalar
  if (x.shape == out) return true;                  // full
  const size_t lead = out.size() - x.shape.size();  // right-aligned broadcast
  for (size_t i = 0; i < x.shape.size(); ++i) {
    const size_t axis = lead + i;
    if (x.shape[i] != 1 && (axis != channel || x.shape[i] != out[axis])) return false;
  }
  return true;  // per-channel
}

// x W^T with W a row-major 2-D matrix: the Linear layer's forward product, the form libraries
// give epilogues (a backward product's result is rarely followed by anything but more GEMMs
// and elementwise chains that the elementwise fusion already merges).
bool linear_layer(const Graph& g, const GraphNode& mm) {
  const Value& a = g.values[static_cast<size_t>(mm.inputs[0])];
  const Value& w = g.values[static_cast<size_t>(mm.inputs[1])];
  if (w.shape.size() != 2 || w.strides.size() != 2 || a.strides.empty()) return false;
  const bool w_transposed = w.strides[0] == 1 && w.strides[1] >= w.shape[0];
  return w_transposed && a.strides.back() == 1;
}

}  // namespace

int fuse_epilogues(Graph& g) {
  const size_t nv = g.values.size();
  std::vector<int> uses(nv, 0), reader(nv, -1);
  for (size_t n = 0; n < g.nodes.size(); ++n)
    for (int in : g.nodes[n].inputs) {
      ++uses[static_cast<size_t>(in)];
      reader[static_cast<size_t>(in)] = static_cast<int>(n);
    }
  for (int o : g.outputs) uses[static_cast<size_t>(o)] += 2;  // never absorbed past a graph output
  std::vector<char> absorbed(g.nodes.size(), 0);
  int count = 0;
  for (size_t n = 0; n < g.nodes.size(); ++n) {
    const GraphNode& base = g.nodes[n];
    if (base.fused || base.epilogue || absorbed[n] || base.outputs.size() != 1) continue;
    const Value& out = g.values[static_cast<size_t>(base.outputs[0])];
    if (out.dtype != DType::Float32) continue;
    bool ok = base.op == OpId::Conv2d;
    if (base.op == OpId::Matmul) ok = linear_layer(g, base);
    for (int in : base.inputs) ok &= g.values[static_cast<size_t>(in)].dtype == DType::Float32;
    if (!ok || out.shape.size() < 2) continue;
    const size_t channel = base.op == OpId::Conv2d ? 1 : out.shape.size() - 1;
    auto e = std::make_shared<Epilogue>();
    GraphNode fusedn{base.op, base.attrs, base.inputs, {}, {}, {}};
    int cur = base.outputs[0], last = -1;
    while (uses[static_cast<size_t>(cur)] == 1) {
      const int r = reader[static_cast<size_t>(cur)];
      const GraphNode& c = g.nodes[static_cast<size_t>(r)];
      if (absorbed[static_cast<size_t>(r)] || c.fused || c.epilogue || c.outputs.size() != 1) break;
      const Value& cv = g.values[static_cast<size_t>(c.outputs[0])];
      if (cv.dtype != DType::Float32 || cv.shape != out.shape) break;
      EpilogueStep step{c.op, -1};
      if (binary_step(c.op)) {
        const bool left = c.inputs[0] == cur;
        const int other = left ? c.inputs[1] : c.inputs[0];
        if (other == cur || (!left && !commutative(c.op))) break;
        if (!operand_form(g.values[static_cast<size_t>(other)], out.shape, channel)) break;
        step.operand = static_cast<int>(fusedn.inputs.size());
        fusedn.inputs.push_back(other);
      } else if (!unary_step(c.op)) {
        break;
      }
      e->steps.push_back(step);
      absorbed[static_cast<size_t>(r)] = 1;
      last = r;
      cur = c.outputs[0];
    }
    if (last < 0) continue;
    // The fused node stands where the last absorbed op stood (every operand is defined by then)
    // and produces its value; the base node and the absorbed ops are left dead for DCE.
    fusedn.outputs = {cur};
    fusedn.epilogue = std::move(e);
    count += static_cast<int>(fusedn.epilogue->steps.size());
    g.nodes[static_cast<size_t>(last)] = std::move(fusedn);
  }
  if (count) eliminate_dead_code(g);
  return count;
}

std::string epilogue_str(const Epilogue& e) {
  std::string s;
  for (const EpilogueStep& st : e.steps) {
    s += "+";
    s += op_name(st.op);
    if (st.operand >= 0) s += "($" + std::to_string(st.operand) + ")";
  }
  return s;
}

void register_epilogue_evaluator(std::string_view backend_name, EpilogueEvaluator fn) {
  BackendRegistry<EpilogueEvaluator>::set(backend_name, fn);
}

void run_node(const Graph& g, const GraphNode& node, std::span<const Tensor> in, std::span<Tensor> out) {
  if (node.fused)
    run_fused(node, in, out);
  else if (node.epilogue)
    run_epilogue(node, g.values[static_cast<size_t>(node.outputs[0])], in, out);
  else if (!out.empty() && out[0].defined())
    detail::run_kernel(node.op, in, node.attrs, out);
  else
    detail::execute(node.op, in, node.attrs, out);
}

void run_epilogue(const GraphNode& node, const Value& like, std::span<const Tensor> in, std::span<Tensor> out) {
  if (!node.epilogue || out.size() != 1 || in.size() < 2)
    raise<ValueError>("run_epilogue", "expects a node with an epilogue and one output");
  const Epilogue& e = *node.epilogue;
  Tensor& result = out[0];
  if (!result.defined()) result = detail::alloc_tensor(like.shape, like.dtype, like.device);
  const EpilogueEvaluator eval = BackendRegistry<EpilogueEvaluator>::get(backend_for(result.device()).name());
  int done = eval ? eval(node.op, node.attrs, e, in, result) : -1;
  if (done < 0) {  // the base op alone, into the output
    detail::run_kernel(node.op, in.first(2), node.attrs, out);
    done = 0;
  }
  if (done >= static_cast<int>(e.steps.size())) return;
  // The remaining steps as one fused elementwise program, in place over the output.
  auto p = std::make_shared<FusedProgram>();
  p->shape = like.shape;
  p->device = like.device;
  std::vector<Tensor> pin{result};
  p->input_dtypes.push_back(like.dtype);
  for (size_t i = static_cast<size_t>(done); i < e.steps.size(); ++i) {
    const EpilogueStep& st = e.steps[i];
    FusedStep fs;
    fs.op = st.op;
    fs.attrs = NoAttrs{};
    fs.dtype = like.dtype;
    fs.slot = static_cast<int>(p->steps.size() % 2);
    fs.args.push_back(p->steps.empty() ? FusedRef{FusedRef::Kind::Input, 0}
                                       : FusedRef{FusedRef::Kind::Step, static_cast<int>(p->steps.size()) - 1});
    if (st.operand >= 0) {
      const Tensor& x = in[static_cast<size_t>(st.operand)];
      fs.args.push_back(FusedRef{FusedRef::Kind::Input, static_cast<int>(pin.size())});
      pin.push_back(x);
      p->input_dtypes.push_back(x.dtype());
    }
    p->steps.push_back(std::move(fs));
  }
  p->outputs = {static_cast<int>(p->steps.size()) - 1};
  p->num_slots = std::min<int>(2, static_cast<int>(p->steps.size()));
  GraphNode rest{OpId::Copy, NoAttrs{}, {}, {}, p, {}};
  run_fused(rest, pin, out);
}

}  // namespace tessera::graph
