// compile(): trace on a new signature (GraphTrace, a detail::Interpreter that records instead of
// executing), run the passes of ir.h, cache, and replay with execute().
#include "tessera/compile.h"

#include <fstream>
#include <list>
#include <map>
#include <sstream>

#include "../core/dispatch.h"
#include "../core/node.h"
#include "ir.h"
#include "tessera/error.h"

namespace tessera {

namespace graph {

namespace {

// Identifies one trace: symbolic tensors of another (finished or nested) trace are not its values.
struct TraceState {};

// What a symbolic tensor carries: the trace it belongs to and its value id.
struct GraphValue : Node {
  std::shared_ptr<TraceState> trace;
  int id = -1;
};

Tensor symbolic(const Value& v, const std::shared_ptr<TraceState>& trace, int id) {
  auto impl = std::make_shared<TensorImpl>();
  impl->shape = v.shape;
  impl->strides = v.strides;
  impl->dtype = v.dtype;
  impl->device = v.device;
  auto node = std::make_shared<GraphValue>();
  node->trace = trace;
  node->id = id;
  impl->node = std::move(node);
  return Tensor(std::move(impl));
}

// Records every primitive call into a Graph while it is the current interpreter.
class GraphTrace : public detail::Interpreter {
 public:
  GraphTrace() : state_(std::make_shared<TraceState>()), saved_(detail::current_interpreter()) {
    detail::current_interpreter() = this;
  }
  ~GraphTrace() override { detail::current_interpreter() = saved_; }
  GraphTrace(const GraphTrace&) = delete;
  GraphTrace& operator=(const GraphTrace&) = delete;

  Tensor input(const Tensor& t) {
    Value v{
        Value::Kind::Input, t.shape(), t.strides(), t.dtype(), t.device(), -1, static_cast<int>(g.inputs.size()), {}};
    int id = add_value(v);
    g.inputs.push_back(id);
    return symbolic(v, state_, id);
  }

  // The value id of t: one of this trace's values, or a captured constant.
  int value_of(const Tensor& t) {
    if (t.impl().node)
      if (auto* gv = dynamic_cast<GraphValue*>(t.impl().node.get()); gv && gv->trace == state_) return gv->id;
    if (!t.impl().storage)
      raise<ValueError>("compile", "a tensor traced by another (finished or nested) compile reached this trace");
    auto it = constants_.find(&t.impl());
    if (it != constants_.end()) return it->second;
    Value v{Value::Kind::Constant, t.shape(), t.strides(), t.dtype(), t.device(), -1, 0, t};
    int id = add_value(v);
    constants_[&t.impl()] = id;
    return id;
  }

  void process(OpId op, std::span<const Tensor> in, const Attrs& attrs, std::span<Tensor> out) override {
    MetaList m = detail::infer(op, in, attrs);  // validates: errors name the op and shapes as in eager mode
    GraphNode node{op, attrs, {}, {}, {}};
    for (const Tensor& t : in) node.inputs.push_back(value_of(t));
    int n = static_cast<int>(g.nodes.size());
    const bool view = op_info(op).category == OpCategory::View;
    const Device device = detail::op_device(op, in, attrs);
    for (int k = 0; k < m.n; ++k) {
      const auto& meta = m.m[static_cast<size_t>(k)];
      Value v{Value::Kind::NodeOutput, meta.shape, {}, meta.dtype, {}, n, k, {}};
      v.device = device;
      v.strides = contiguous_strides(v.shape);
      // A view keeps the layout execution will give it: make_view only computes metadata (a
      // reshape that needs a copy, where it would execute, is contiguous either way).
      if (view && (op != OpId::Reshape || viewable_reshape(in[0], attrs)))
        v.strides = detail::make_view(op, in[0], attrs).strides();
      int id = add_value(v);
      node.outputs.push_back(id);
      out[static_cast<size_t>(k)] = symbolic(v, state_, id);
    }
    g.nodes.push_back(std::move(node));
  }

  Graph g;

 private:
  int add_value(const Value& v) {
    g.values.push_back(v);
    return static_cast<int>(g.values.size()) - 1;
  }
  static bool viewable_reshape(const Tensor& x, const Attrs& attrs) {
    Strides st;
    return detail::viewable_reshape(x.shape(), x.strides(), std::get<ShapeAttrs>(attrs).shape, st);
  }
  std::shared_ptr<TraceState> state_;
  detail::Interpreter* saved_;
  std::map<const TensorImpl*, int> constants_;
};

// For each value, the index of the last node that reads it (nodes.size() for graph outputs).
std::vector<int> last_uses(const Graph& g) {
  std::vector<int> last_use(g.values.size(), -1);
  for (size_t n = 0; n < g.nodes.size(); ++n)
    for (int in : g.nodes[n].inputs) last_use[static_cast<size_t>(in)] = static_cast<int>(n);
  for (int o : g.outputs) last_use[static_cast<size_t>(o)] = static_cast<int>(g.nodes.size());
  return last_use;
}

// Runs g on concrete inputs, releasing each intermediate after its last use (last_uses(g)).
std::vector<Tensor> run(const Graph& g, const std::vector<int>& last_use, const std::vector<Tensor>& inputs) {
  std::vector<Tensor> env(g.values.size());
  for (size_t i = 0; i < g.inputs.size(); ++i) env[static_cast<size_t>(g.inputs[i])] = inputs[i];
  for (size_t i = 0; i < g.values.size(); ++i)
    if (g.values[i].kind == Value::Kind::Constant) env[i] = g.values[i].constant;
  std::vector<Tensor> in, out;
  for (size_t n = 0; n < g.nodes.size(); ++n) {
    const GraphNode& node = g.nodes[n];
    in.clear();
    for (int id : node.inputs) in.push_back(env[static_cast<size_t>(id)]);
    out.assign(node.outputs.size(), Tensor());
    detail::execute(node.op, in, node.attrs, out);
    for (size_t k = 0; k < out.size(); ++k) env[static_cast<size_t>(node.outputs[k])] = std::move(out[k]);
    for (int id : node.inputs)
      if (last_use[static_cast<size_t>(id)] == static_cast<int>(n) &&
          g.values[static_cast<size_t>(id)].kind == Value::Kind::NodeOutput)
        env[static_cast<size_t>(id)] = Tensor();
  }
  std::vector<Tensor> result;
  for (int o : g.outputs) result.push_back(env[static_cast<size_t>(o)]);
  return result;
}

}  // namespace

}  // namespace graph

struct CompiledFunction::Impl {
  Fn fn;
  CompileOptions options;
  CompileStats stats;
  struct Entry {
    bool eager = false;  // the function depends on data: run it eagerly
    graph::Graph graph;
    std::vector<int> last_use;  // graph::last_uses(graph), computed once per trace
  };
  std::list<std::pair<std::string, std::shared_ptr<Entry>>> lru;  // most recent first
  std::shared_ptr<Entry> last;

  static std::string signature(const std::vector<Tensor>& inputs) {
    std::ostringstream os;
    for (const Tensor& t : inputs) {
      if (!t.defined()) raise<ValueError>("compile", "an input tensor is undefined");
      os << dtype_name(t.dtype()) << shape_str(t.shape()) << "s" << shape_str(t.strides()) << "@" << t.device().str()
         << ";";
    }
    return os.str();
  }

  std::shared_ptr<Entry> trace(const std::vector<Tensor>& inputs) {
    auto e = std::make_shared<Entry>();
    ++stats.traces;
    try {
      graph::GraphTrace tr;
      std::vector<Tensor> sym;
      for (const Tensor& t : inputs) sym.push_back(tr.input(t));
      std::vector<Tensor> outs = fn(sym);
      for (const Tensor& o : outs) {
        if (!o.defined()) raise<ValueError>("compile", "the function returned an undefined tensor");
        tr.g.outputs.push_back(tr.value_of(o));
      }
      e->graph = std::move(tr.g);
    } catch (const TraceError&) {
      e->eager = true;
      return e;
    }
    stats.nodes_traced += static_cast<int64_t>(e->graph.nodes.size());
    graph::Graph& g = e->graph;
    int step = 0;
    auto after = [&](const char* pass) {
      g.verify();
      if (options.dump_dir.empty()) return;
      std::string base =
          options.dump_dir + "/" + std::to_string(stats.traces) + "-" + std::to_string(step++) + "-" + pass;
      std::ofstream(base + ".txt") << g.str();
      std::ofstream(base + ".dot") << graph::to_dot(g);
    };
    after("traced");
    stats.nodes_removed += graph::eliminate_dead_code(g);
    after("dce");
    stats.nodes_removed += graph::eliminate_common_subexpressions(g);
    after("cse");
    stats.nodes_folded += graph::fold_constants(g);
    after("fold");
    stats.rewrites += graph::simplify(g);
    after("simplify");
    e->last_use = graph::last_uses(g);
    return e;
  }

  std::vector<Tensor> call(const std::vector<Tensor>& inputs) {
    ++stats.calls;
    if (detail::current_interpreter()) {  // under grad/vjp/jvp: the transform needs the primitives
      ++stats.eager_fallbacks;
      return fn(inputs);
    }
    std::string key = signature(inputs);
    std::shared_ptr<Entry> e;
    for (auto it = lru.begin(); it != lru.end(); ++it)
      if (it->first == key) {
        e = it->second;
        lru.splice(lru.begin(), lru, it);
        ++stats.cache_hits;
        break;
      }
    if (!e) {
      e = trace(inputs);
      lru.emplace_front(key, e);
      while (lru.size() > std::max<size_t>(options.cache_limit, 1)) {
        lru.pop_back();
        ++stats.evictions;
      }
    }
    last = e;
    if (e->eager) {
      ++stats.eager_fallbacks;
      return fn(inputs);
    }
    return graph::run(e->graph, e->last_use, inputs);
  }
};

CompiledFunction::CompiledFunction(Fn f, CompileOptions options) : impl_(std::make_shared<Impl>()) {
  if (!f) raise<ValueError>("compile", "needs a function");
  impl_->fn = std::move(f);
  impl_->options = options;
}

std::vector<Tensor> CompiledFunction::operator()(const std::vector<Tensor>& inputs) { return impl_->call(inputs); }
const CompileStats& CompiledFunction::stats() const { return impl_->stats; }
std::string CompiledFunction::graph_text() const {
  return impl_->last && !impl_->last->eager ? impl_->last->graph.str() : "";
}
size_t CompiledFunction::graph_nodes() const {
  return impl_->last && !impl_->last->eager ? impl_->last->graph.nodes.size() : 0;
}

CompiledFunction compile(CompiledFunction::Fn f, CompileOptions options) {
  return CompiledFunction(std::move(f), options);
}

}  // namespace tessera
