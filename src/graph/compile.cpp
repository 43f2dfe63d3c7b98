// compile(): trace on a new signature (GraphTrace, a detail::Interpreter that records instead of
// executing), run the passes of ir.h / fuse.h / memory_plan.h, cache the plan, and replay it.
//
// State: at trace start every slot of every live StatefulObject is indexed by the tensor it
// holds; a traced op reading such a tensor makes it a state input (re-read from the slot at each
// call), and a slot holding something else when the trace ends is a state output (written back
// after each call). Host work (optimizer counters, scalar feeds, random draws) is recorded as
// HostActions and redone, in trace order, before each replay.
#include "tessera/compile.h"

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <list>
#include <map>
#include <sstream>
#include <unordered_map>

#include "../autodiff/tracer.h"
#include "../core/dispatch.h"
#include "../core/host_effects.h"
#include "../core/node.h"
#include "epilogue.h"
#include "fuse.h"
#include "ir.h"
#include "memory_plan.h"
#include "state.h"
#include "tessera/error.h"
#include "tessera/ops.h"

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

// Where a graph input's tensor comes from at each call.
struct InputSource {
  enum class Kind { Argument, State, Feed };
  Kind kind = Kind::Argument;
  int index = 0;  // argument position, state slot position or feed position
};

// Host work a plan redoes at every call, in the order the trace met it.
struct HostAction {
  enum class Kind { Hook, Feed, Draw };
  Kind kind = Kind::Hook;
  std::function<void()> redo, undo;  // Hook
  std::function<double()> value;     // Feed: the value of feed input `feed`
  DType dtype = DType::Float32;
  Device device;
  int feed = -1;
  Generator* gen = nullptr;  // Draw: reserve `words` of gen; the traced key/counter find its node
  uint64_t words = 0, key = 0, counter = 0;
  int node = -1;  // the random node after the passes (-1: removed, the draw still advances gen)
};

class GraphTrace;
thread_local GraphTrace* active_trace = nullptr;

// Records every primitive call into a Graph while it is the current interpreter.
class GraphTrace : public detail::Interpreter, public detail::HostEffects {
 public:
  explicit GraphTrace(const std::vector<StatefulObject*>& objects)
      : state_(std::make_shared<TraceState>()),
        saved_(detail::current_interpreter()),
        saved_fx_(detail::current_host_effects()),
        saved_trace_(active_trace) {
    std::vector<Tensor*> slots;
    for (StatefulObject* obj : objects) obj->state_slots(slots);
    for (Tensor* s : slots) {
      snapshot.emplace_back(s, *s);
      if (s->defined() && s->impl().storage) slot_of_.emplace(&s->impl(), s);
    }
    detail::current_interpreter() = this;
    detail::current_host_effects() = this;
    active_trace = this;
  }
  ~GraphTrace() override { uninstall(); }
  /// Stops recording (idempotent): later ops execute normally.
  void uninstall() {
    if (!installed_) return;
    installed_ = false;
    detail::current_interpreter() = saved_;
    detail::current_host_effects() = saved_fx_;
    active_trace = saved_trace_;
  }
  GraphTrace(const GraphTrace&) = delete;
  GraphTrace& operator=(const GraphTrace&) = delete;

  Tensor argument(const Tensor& t) {
    return new_input(t, {InputSource::Kind::Argument, static_cast<int>(g.inputs.size())});
  }

  // The value id of t: one of this trace's values, a state input or a captured constant.
  int value_of(Tensor t) {
    while (auto* tr = autodiff::tracer_of(t)) t = tr->primal;  // an autodiff level's view of our value
    if (t.impl().node)
      if (auto* gv = dynamic_cast<GraphValue*>(t.impl().node.get()); gv && gv->trace == state_) return gv->id;
    if (!t.impl().storage)
      raise<ValueError>("compile", "a tensor traced by another (finished or nested) compile reached this trace");
    auto it = known_.find(&t.impl());
    if (it != known_.end()) return it->second;
    int id;
    if (auto s = slot_of_.find(&t.impl()); s != slot_of_.end()) {
      new_input(t, {InputSource::Kind::State, static_cast<int>(state_slots.size())});
      id = g.inputs.back();
      state_slots.push_back(s->second);
      state_values.push_back(t);
    } else {
      id = add_value(Value{Value::Kind::Constant, t.shape(), t.strides(), t.dtype(), t.device(), -1, 0, t});
    }
    known_[&t.impl()] = id;
    return id;
  }

  void process(OpId op, std::span<const Tensor> in, const Attrs& attrs, std::span<Tensor> out) override {
    MetaList m = detail::infer(op, in, attrs);  // validates: errors name the op and shapes as in eager mode
    GraphNode node{op, attrs, {}, {}, {}, {}};
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

  void random_draw(Generator& gen, uint64_t key, uint64_t counter, uint64_t words) override {
    HostAction a;
    a.kind = HostAction::Kind::Draw;
    a.gen = &gen;
    a.key = key;
    a.counter = counter;
    a.words = words;
    actions.push_back(std::move(a));
  }

  Tensor feed(double value, std::function<double()> replay_value, DType dtype, Device device) {
    Tensor now;
    {  // a concrete tensor, not a traced one: no interpreter sees this op
      autodiff::ScopedInterpreter none(nullptr);
      now = full({}, value, dtype, device);
    }
    HostAction a;
    a.kind = HostAction::Kind::Feed;
    a.value = std::move(replay_value);
    a.dtype = dtype;
    a.device = now.device();
    a.feed = static_cast<int>(feed_values.size());
    actions.push_back(std::move(a));
    Tensor sym = new_input(now, {InputSource::Kind::Feed, static_cast<int>(feed_values.size())});
    feed_values.push_back(now);
    return sym;
  }

  void hook(std::function<void()> redo, std::function<void()> undo) {
    HostAction a;
    a.kind = HostAction::Kind::Hook;
    a.redo = std::move(redo);
    a.undo = std::move(undo);
    actions.push_back(std::move(a));
  }

  void check(const Tensor& failed, std::function<void()> raise_error) {
    checks.emplace_back(value_of(failed), std::move(raise_error));
  }

  /// Undoes what tracing did to host state: hooks' undo in reverse order, slots restored.
  void roll_back() {
    for (size_t i = actions.size(); i-- > 0;)
      if (actions[i].kind == HostAction::Kind::Hook && actions[i].undo) actions[i].undo();
    for (auto& [slot, t] : snapshot) *slot = t;
  }

  Graph g;
  std::vector<InputSource> sources;  // per g.inputs entry
  std::vector<Tensor*> state_slots;  // per State source
  std::vector<Tensor> state_values;  // their tensors at trace time
  std::vector<Tensor> feed_values;   // per Feed source, the traced call's values
  std::vector<HostAction> actions;
  std::vector<std::pair<int, std::function<void()>>> checks;  // (value id, raise)
  std::vector<std::pair<Tensor*, Tensor>> snapshot;           // every slot before the trace

 private:
  Tensor new_input(const Tensor& t, InputSource src) {
    Value v{
        Value::Kind::Input, t.shape(), t.strides(), t.dtype(), t.device(), -1, static_cast<int>(g.inputs.size()), {}};
    int id = add_value(v);
    g.inputs.push_back(id);
    sources.push_back(src);
    return symbolic(v, state_, id);
  }
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
  detail::HostEffects* saved_fx_;
  GraphTrace* saved_trace_;
  bool installed_ = true;
  std::unordered_map<const TensorImpl*, Tensor*> slot_of_;
  std::unordered_map<const TensorImpl*, int> known_;
};

// For each value, the index of the last node that reads it (nodes.size() for graph outputs).
std::vector<int> last_uses(const Graph& g) {
  std::vector<int> last_use(g.values.size(), -1);
  for (size_t n = 0; n < g.nodes.size(); ++n)
    for (int in : g.nodes[n].inputs) last_use[static_cast<size_t>(in)] = static_cast<int>(n);
  for (int o : g.outputs) last_use[static_cast<size_t>(o)] = static_cast<int>(g.nodes.size());
  return last_use;
}

// FNV-1a over the state that selects a plan: each live object's id and flags, and each of its
// slots' address, definedness, dtype, shape and strides.
struct Hasher {
  uint64_t h = 1469598103934665603ull;
  void add(uint64_t v) {
    for (int i = 0; i < 8; ++i) {
      h ^= (v >> (8 * i)) & 0xff;
      h *= 1099511628211ull;
    }
  }
};
uint64_t state_signature(const std::vector<StatefulObject*>& objects) {
  Hasher hs;
  std::vector<Tensor*> slots;
  for (StatefulObject* obj : objects) {
    hs.add(obj->state_id());
    hs.add(obj->state_flags());
    slots.clear();
    obj->state_slots(slots);
    for (Tensor* s : slots) {
      hs.add(reinterpret_cast<uintptr_t>(s));
      if (!s->defined()) {
        hs.add(0xdead);
        continue;
      }
      hs.add(static_cast<uint64_t>(s->dtype()) + 1);
      for (int64_t d : s->shape()) hs.add(static_cast<uint64_t>(d));
      hs.add(0xffff);
      for (int64_t d : s->strides()) hs.add(static_cast<uint64_t>(d));
    }
  }
  return hs.h;
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
    std::vector<graph::InputSource> sources;
    std::vector<Tensor*> state_slots;
    std::vector<std::pair<Tensor*, int>> state_out;  // slot, position in graph.outputs
    size_t num_results = 0;                          // the function's own outputs come first
    std::vector<graph::HostAction> actions;
    size_t num_feeds = 0;
    std::vector<std::pair<int, std::function<void()>>> checks;  // (value id, raise)
    bool planned = false;
    graph::MemoryPlan plan;
    std::vector<bool> donated;   // per graph input: a state slot the plan rebinds (its buffer may be reused)
    std::vector<int> input_pos;  // per value id: its position in graph.inputs, or -1
    int after_checks = 0;        // donated buffers are written only from this node on
    // CompileOptions::profile: wall time per node over every call, and the calls timed.
    mutable std::vector<double> node_seconds;
    mutable int64_t profiled_calls = 0;
  };
  std::list<std::pair<std::string, std::shared_ptr<Entry>>> lru;  // most recent first
  std::shared_ptr<Entry> last;

  static std::string signature(const std::vector<Tensor>& inputs, uint64_t state) {
    std::ostringstream os;
    for (const Tensor& t : inputs) {
      if (!t.defined()) raise<ValueError>("compile", "an input tensor is undefined");
      os << dtype_name(t.dtype()) << shape_str(t.shape()) << "s" << shape_str(t.strides()) << "@" << t.device().str()
         << ";";
    }
    os << "state:" << std::hex << state;
    return os.str();
  }

  // Runs the passes on a freshly traced graph, dumping before/after each when asked.
  void optimize(graph::Graph& g) {
    const std::string dir = options.dump_dir.empty() ? graph::graph_dump_dir() : options.dump_dir;
    if (!dir.empty()) {
      std::error_code ec;
      std::filesystem::create_directories(dir, ec);
      if (ec) raise<ValueError>("compile", "cannot create the graph dump directory '" + dir + "': " + ec.message());
    }
    int step = 0;
    auto after = [&](const char* pass) {
      g.verify();
      if (dir.empty()) return;
      std::string base = dir + "/" + std::to_string(stats.traces) + "-" + std::to_string(step++) + "-" + pass;
      std::ofstream(base + ".txt") << g.str();
      std::ofstream(base + ".dot") << graph::to_dot(g);
    };
    after("traced");
    // Each pass, its counter, and a dump after it (the IR as each pass leaves it).
    struct Pass {
      const char* name;
      int (*run)(graph::Graph&);
      int64_t CompileStats::*counter;
    };
    static const Pass passes[] = {
        {"dce", graph::eliminate_dead_code, &CompileStats::nodes_removed},
        {"cse", graph::eliminate_common_subexpressions, &CompileStats::nodes_removed},
        {"fold", [](graph::Graph& x) { return graph::fold_constants(x); }, &CompileStats::nodes_folded},
        {"simplify", graph::simplify, &CompileStats::rewrites},
        {"swap_transposed_matmuls", graph::swap_transposed_matmuls, &CompileStats::rewrites},
        {"pads_to_concat", graph::pads_to_concat, &CompileStats::rewrites},
        {"max_pool_values_from_indices", graph::max_pool_values_from_indices, &CompileStats::rewrites},
        {"mask_scatter_sources", graph::mask_scatter_sources, &CompileStats::rewrites},
        {"cse", graph::eliminate_common_subexpressions, &CompileStats::nodes_removed},
        {"mark_triangular_matmuls", graph::mark_triangular_matmuls, &CompileStats::rewrites},
        {"materialize_conv_operands", graph::materialize_conv_operands, &CompileStats::rewrites},
        {"dce", graph::eliminate_dead_code, &CompileStats::nodes_removed},
    };
    for (const Pass& p : passes) {
      stats.*p.counter += p.run(g);
      after(p.name);
    }
    if (options.fuse) {
      stats.nodes_fused += graph::fuse_epilogues(g);
      after("fuse_epilogues");
      stats.nodes_fused += graph::fuse_elementwise(g);
      after("fuse");
    }
    if (options.plan_memory) {  // layouts the planned executor allocates (Value::strided_output)
      stats.rewrites += graph::permute_matmul_outputs(g);
      after("permute_matmul_outputs");
      stats.rewrites += graph::place_concat_inputs(g);
      after("place_concat_inputs");
      stats.rewrites += graph::pad_row_pitches(g);
      after("pad_row_pitches");
    }
  }

  // Traces fn on inputs; the traced call's results (computed by running the new plan) go to out.
  std::shared_ptr<Entry> trace(const std::vector<Tensor>& inputs, const std::vector<StatefulObject*>& objects,
                               std::vector<Tensor>& out) {
    auto e = std::make_shared<Entry>();
    ++stats.traces;
    graph::GraphTrace tr(objects);
    try {
      std::vector<Tensor> sym;
      for (const Tensor& t : inputs) sym.push_back(tr.argument(t));
      std::vector<Tensor> outs = fn(sym);
      for (const Tensor& o : outs) {
        if (!o.defined()) raise<ValueError>("compile", "the function returned an undefined tensor");
        tr.g.outputs.push_back(tr.value_of(o));
      }
      e->num_results = outs.size();
      // Slots the function rebound are state outputs (written back after every call).
      std::vector<Tensor*> slots;
      for (StatefulObject* obj : objects) obj->state_slots(slots);
      std::unordered_map<Tensor*, const Tensor*> before;
      for (auto& [slot, t] : tr.snapshot) before[slot] = &t;
      for (Tensor* s : slots) {
        auto b = before.find(s);
        const bool same = b != before.end() && b->second->defined() == s->defined() &&
                          (!s->defined() || &b->second->impl() == &s->impl());
        if (same || !s->defined()) continue;
        e->state_out.emplace_back(s, static_cast<int>(tr.g.outputs.size()));
        tr.g.outputs.push_back(tr.value_of(*s));
      }
      for (auto& [id, raise_error] : tr.checks) {
        tr.g.outputs.push_back(id);  // keeps the check alive through dead-code elimination
        e->checks.emplace_back(static_cast<int>(tr.g.outputs.size()) - 1, std::move(raise_error));
      }
    } catch (const TraceError&) {
      tr.uninstall();
      tr.roll_back();
      e->eager = true;
      return e;
    } catch (...) {
      tr.uninstall();
      tr.roll_back();
      throw;
    }
    tr.uninstall();
    e->graph = std::move(tr.g);
    e->sources = std::move(tr.sources);
    e->state_slots = std::move(tr.state_slots);
    e->num_feeds = tr.feed_values.size();
    stats.nodes_traced += static_cast<int64_t>(e->graph.nodes.size());
    optimize(e->graph);
    // Checks are graph outputs by position; map them to value ids after the passes renumbered.
    for (auto& c : e->checks) c.first = e->graph.outputs[static_cast<size_t>(c.first)];
    // Random draws find their nodes by the traced (key, counter), unique per draw.
    std::map<std::pair<uint64_t, uint64_t>, int> random_nodes;
    for (size_t n = 0; n < e->graph.nodes.size(); ++n)
      if (op_info(e->graph.nodes[n].op).category == OpCategory::Random) {
        const auto& a = std::get<RandomAttrs>(e->graph.nodes[n].attrs);
        random_nodes[{a.key, a.counter}] = static_cast<int>(n);
      }
    e->actions = std::move(tr.actions);
    for (auto& a : e->actions)
      if (a.kind == graph::HostAction::Kind::Draw)
        if (auto it = random_nodes.find({a.key, a.counter}); it != random_nodes.end()) a.node = it->second;
    e->last_use = graph::last_uses(e->graph);
    e->input_pos.assign(e->graph.values.size(), -1);
    for (size_t i = 0; i < e->graph.inputs.size(); ++i)
      e->input_pos[static_cast<size_t>(e->graph.inputs[i])] = static_cast<int>(i);
    for (const auto& c : e->checks)
      e->after_checks = std::max(e->after_checks, e->graph.values[static_cast<size_t>(c.first)].node + 1);
    if (options.plan_memory) {
      // Donated: state inputs whose slot the plan rebinds; their old buffers may take new values.
      std::vector<char> rebound(e->state_slots.size(), 0);
      for (size_t i = 0; i < e->state_slots.size(); ++i)
        for (const auto& so : e->state_out) rebound[i] |= so.first == e->state_slots[i];
      e->donated.assign(e->graph.inputs.size(), false);
      for (size_t i = 0; i < e->sources.size(); ++i)
        if (e->sources[i].kind == graph::InputSource::Kind::State)
          e->donated[i] = rebound[static_cast<size_t>(e->sources[i].index)] != 0;
      e->plan = graph::plan_memory(e->graph, e->donated);
      e->planned = true;
    }
    // The traced call itself: host work is done; run the plan on the traced inputs.
    std::vector<Tensor> plan_inputs = gather_inputs(*e, inputs, tr.state_values, tr.feed_values);
    try {
      out = execute(*e, plan_inputs, false);
    } catch (...) {
      tr.roll_back();
      throw;
    }
    return e;
  }

  // The plan's inputs in graph.inputs order, from the call's arguments, the state tensors (one
  // per state slot) and the scalar feeds. State and feeds are moved out: a state tensor held
  // only by its slot and the plan can be donated (execute's use_count test).
  static std::vector<Tensor> gather_inputs(const Entry& e, const std::vector<Tensor>& arguments,
                                           std::vector<Tensor>& state, std::vector<Tensor>& feeds) {
    std::vector<Tensor> r;
    r.reserve(e.sources.size());
    for (const auto& src : e.sources) {
      const auto i = static_cast<size_t>(src.index);
      using K = graph::InputSource::Kind;
      r.push_back(src.kind == K::Argument ? arguments[i]
                  : src.kind == K::State  ? std::move(state[i])
                                          : std::move(feeds[i]));
    }
    return r;
  }

  // Runs the plan on its inputs (in graph.inputs order); raises a failed check right after the
  // node computing it; writes state back and returns the function's own results.
  //
  // With a memory plan, intermediates live at their planned offsets in one arena per call (the
  // caching allocator hands the same block back every call), and values the plan computes in
  // place reuse their dying operand's buffer. A donated input (a state tensor the plan rebinds)
  // is reused only when nothing else holds it (a user's copy of a parameter keeps its value), and
  // only after the last check, so a failed check never leaves state half-written.
  // timed: node timing for the profile, on replays only (the traced call's first run of each
  // kernel includes one-time costs: oneDNN primitive creation, the arena's first page faults).
  std::vector<Tensor> execute(const Entry& e, std::vector<Tensor>& plan_inputs, bool timed) {
    const graph::Graph& g = e.graph;
    const graph::MemoryPlan& plan = e.plan;
    std::vector<Tensor> env(g.values.size());
    std::vector<char> own(g.inputs.size(), 0);  // donated and held only by env and its slot
    for (size_t i = 0; i < g.inputs.size(); ++i) {
      env[static_cast<size_t>(g.inputs[i])] = std::move(plan_inputs[i]);
      const Tensor& t = env[static_cast<size_t>(g.inputs[i])];
      own[i] = e.planned && e.donated[i] && t.impl_ptr().use_count() <= 2 && t.impl().storage.use_count() == 1;
    }
    for (size_t i = 0; i < g.values.size(); ++i)
      if (g.values[i].kind == graph::Value::Kind::Constant) env[i] = g.values[i].constant;
    auto run_checks = [&](int produced_by) {
      for (const auto& [id, raise_error] : e.checks)
        if (g.values[static_cast<size_t>(id)].node == produced_by && env[static_cast<size_t>(id)].item<bool>())
          raise_error();
    };
    run_checks(-1);
    if (timed) {
      e.node_seconds.resize(g.nodes.size(), 0.0);
      ++e.profiled_calls;
    }
    Tensor arena;
    if (e.planned && plan.arena_bytes > 0)
      arena = detail::alloc_tensor(
          std::vector<int64_t>{plan.arena_bytes}, DType::UInt8,
          g.nodes.empty() ? Device{} : g.values[static_cast<size_t>(g.nodes[0].outputs[0])].device);
    std::vector<Tensor> in, out;
    for (size_t n = 0; n < g.nodes.size(); ++n) {
      const graph::GraphNode& node = g.nodes[n];
      const auto t0 = timed ? std::chrono::steady_clock::now() : std::chrono::steady_clock::time_point{};
      in.clear();
      for (int id : node.inputs) in.push_back(env[static_cast<size_t>(id)]);
      const bool view = !node.fused && op_info(node.op).category == OpCategory::View;
      if (!e.planned || view) {
        out.assign(node.outputs.size(), Tensor());
        graph::run_node(g, node, in, out);
      } else if (plan.elided[n]) {  // a concat whose parts their producers wrote in place
        const int v = node.outputs[0];
        out.assign(
            1, at_bytes(g.values[static_cast<size_t>(v)], arena.impl().storage, plan.offset[static_cast<size_t>(v)]));
      } else {
        out.clear();
        for (int v : node.outputs) {
          const graph::Value& val = g.values[static_cast<size_t>(v)];
          const int root = plan.storage_of[static_cast<size_t>(v)];
          const int pos = root >= 0 ? e.input_pos[static_cast<size_t>(root)] : -1;
          if (plan.offset[static_cast<size_t>(v)] >= 0) {
            out.push_back(at_bytes(val, arena.impl().storage, plan.offset[static_cast<size_t>(v)]));
          } else if (pos >= 0 && own[static_cast<size_t>(pos)] && static_cast<int>(n) >= e.after_checks) {
            const Tensor& donor = env[static_cast<size_t>(root)];
            out.push_back(at_bytes(val, donor.impl().storage, donor.offset() * static_cast<int64_t>(donor.itemsize())));
          } else if (val.strided_output) {
            Tensor buf = detail::alloc_tensor(std::vector<int64_t>{graph::value_extent(val)}, val.dtype, val.device);
            out.push_back(at_bytes(val, buf.impl().storage, buf.offset() * static_cast<int64_t>(buf.itemsize())));
          } else {
            out.push_back(detail::alloc_tensor(val.shape, val.dtype, val.device));
          }
        }
        graph::run_node(g, node, in, out);
      }
      for (size_t k = 0; k < out.size(); ++k) env[static_cast<size_t>(node.outputs[k])] = std::move(out[k]);
      if (timed) e.node_seconds[n] += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      if (!e.checks.empty()) run_checks(static_cast<int>(n));
      for (int id : node.inputs)
        if (e.last_use[static_cast<size_t>(id)] == static_cast<int>(n) &&
            g.values[static_cast<size_t>(id)].kind == graph::Value::Kind::NodeOutput)
          env[static_cast<size_t>(id)] = Tensor();
    }
    for (const auto& [slot, pos] : e.state_out) *slot = env[static_cast<size_t>(g.outputs[static_cast<size_t>(pos)])];
    std::vector<Tensor> result;
    for (size_t i = 0; i < e.num_results; ++i) result.push_back(env[static_cast<size_t>(g.outputs[i])]);
    return result;
  }

  // A tensor of v's shape and dtype at byte offset `bytes` of storage: contiguous, or with the
  // strides a layout pass chose (Value::strided_output: a permutation of a dense layout, or a
  // slice of a concat's buffer).
  static Tensor at_bytes(const graph::Value& v, const std::shared_ptr<Storage>& storage, int64_t bytes) {
    auto impl = std::make_shared<TensorImpl>();
    impl->shape = v.shape;
    impl->strides = v.strided_output ? v.strides : contiguous_strides(v.shape);
    impl->dtype = v.dtype;
    impl->device = v.device;
    impl->offset = bytes / static_cast<int64_t>(dtype_size(v.dtype));
    impl->storage = storage;
    return Tensor(std::move(impl));
  }

  // A cached plan's call: redo the host work, gather inputs, execute; undo the host work when
  // the plan fails (a check raised) so that state stays as it was.
  std::vector<Tensor> replay(Entry& e, const std::vector<Tensor>& inputs) {
    std::vector<Tensor> feeds(e.num_feeds);
    std::vector<uint64_t> drawn_from(e.actions.size());  // a draw's generator offset before it
    size_t done = 0;
    try {
      for (; done < e.actions.size(); ++done) {
        auto& a = e.actions[done];
        switch (a.kind) {
          case graph::HostAction::Kind::Hook:
            if (a.redo) a.redo();
            break;
          case graph::HostAction::Kind::Feed:
            feeds[static_cast<size_t>(a.feed)] = full({}, a.value(), a.dtype, a.device);
            break;
          case graph::HostAction::Kind::Draw: {
            const uint64_t counter = a.gen->advance(a.words);
            drawn_from[done] = counter;
            if (a.node >= 0) {
              auto& attrs = std::get<RandomAttrs>(e.graph.nodes[static_cast<size_t>(a.node)].attrs);
              attrs.key = a.gen->seed();
              attrs.counter = counter;
            }
            break;
          }
        }
      }
      std::vector<Tensor> state;
      state.reserve(e.state_slots.size());
      for (Tensor* slot : e.state_slots) {
        if (!slot->impl().storage)
          raise<ValueError>("compile", "a state tensor holds a traced value outside its trace");
        state.push_back(*slot);
      }
      std::vector<Tensor> plan_inputs = gather_inputs(e, inputs, state, feeds);
      return execute(e, plan_inputs, options.profile);
    } catch (...) {
      for (size_t i = std::min(done, e.actions.size()); i-- > 0;) {
        auto& a = e.actions[i];
        if (a.kind == graph::HostAction::Kind::Hook && a.undo) a.undo();
        if (a.kind == graph::HostAction::Kind::Draw) a.gen->set_state(a.gen->seed(), drawn_from[i]);
      }
      throw;
    }
  }

  std::vector<Tensor> call(const std::vector<Tensor>& inputs) {
    ++stats.calls;
    if (detail::current_interpreter() || graph::active_trace) {  // under a transform or another trace
      ++stats.eager_fallbacks;
      return fn(inputs);
    }
    const std::vector<StatefulObject*> objects = graph::live_state_objects();
    std::string key = signature(inputs, graph::state_signature(objects));
    std::shared_ptr<Entry> e;
    for (auto it = lru.begin(); it != lru.end(); ++it)
      if (it->first == key) {
        e = it->second;
        lru.splice(lru.begin(), lru, it);
        ++stats.cache_hits;
        break;
      }
    std::vector<Tensor> result;
    bool traced_now = false;
    if (!e) {
      e = trace(inputs, objects, result);
      traced_now = !e->eager;
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
    stats.state_inputs = static_cast<int64_t>(e->state_slots.size());
    stats.planned_peak_bytes = e->plan.planned_peak_bytes;
    stats.naive_bytes = e->plan.naive_bytes;
    stats.inplace_buffers = e->plan.inplace_count;
    stats.state_outputs = static_cast<int64_t>(e->state_out.size());
    if (traced_now) return result;
    return replay(*e, inputs);
  }
};

namespace {

// "[2048,256]^T": a value's shape, marked ^T when it is a view with its last two axes swapped
// and * when otherwise strided.
std::string layout_str(const graph::Value& v) {
  std::string s = shape_str(v.shape);
  const size_t nd = v.shape.size();
  if (v.strides.size() != nd || v.strides == contiguous_strides(v.shape)) return s;
  if (nd >= 2 && v.strides[nd - 2] == 1 && v.shape[nd - 1] > 1) return s + "^T";
  return s + "*";
}

}  // namespace

std::vector<OpProfile> CompiledFunction::profile() const {
  std::vector<OpProfile> r;
  const auto& e = impl_->last;
  if (!e || e->node_seconds.empty()) return r;
  const graph::Graph& g = e->graph;
  std::map<std::pair<std::string, std::string>, size_t> index;
  for (size_t n = 0; n < g.nodes.size(); ++n) {
    const graph::GraphNode& node = g.nodes[n];
    std::string op = node.fused ? "fused" : std::string(op_name(node.op)), shapes;
    if (node.epilogue) op += graph::epilogue_str(*node.epilogue);
    if (node.fused) {
      shapes = std::to_string(node.fused->steps.size()) + " steps " + shape_str(node.fused->shape);
    } else {
      for (size_t i = 0; i < node.inputs.size(); ++i)
        shapes += (i ? " x " : "") + layout_str(g.values[static_cast<size_t>(node.inputs[i])]);
    }
    auto [it, fresh] = index.try_emplace({op, shapes}, r.size());
    if (fresh) r.push_back(OpProfile{op, shapes});
    OpProfile& p = r[it->second];
    ++p.nodes;
    p.runs += e->profiled_calls;
    p.seconds += e->node_seconds[n];
  }
  std::stable_sort(r.begin(), r.end(), [](const OpProfile& a, const OpProfile& b) { return a.seconds > b.seconds; });
  return r;
}

std::string format_profile(const std::vector<OpProfile>& profile, size_t top) {
  const int64_t calls = profile.empty() || profile[0].nodes == 0 ? 0 : profile[0].runs / profile[0].nodes;
  double total = 0;
  for (const auto& p : profile) total += p.seconds;
  std::ostringstream os;
  const double per = calls > 0 ? 1e3 / static_cast<double>(calls) : 0.0;
  os << std::fixed << std::setprecision(3);
  os << "graph profile: " << calls << " call(s), " << total * per << " ms per call in nodes\n";
  os << "  ms/call   share  nodes  op  inputs\n";
  auto row = [&](double seconds, int64_t nodes, const std::string& op, const std::string& inputs) {
    os << std::setw(9) << seconds * per << std::setw(7) << std::setprecision(1)
       << (total > 0 ? 100.0 * seconds / total : 0.0) << "%" << std::setprecision(3) << std::setw(7) << nodes << "  "
       << op << "  " << inputs << "\n";
  };
  std::map<std::string, std::pair<double, int64_t>> rest;  // per op, beyond the top rows
  for (size_t i = 0; i < profile.size(); ++i) {
    const OpProfile& p = profile[i];
    if (i < top) {
      row(p.seconds, p.nodes, p.op, p.shapes);
    } else {
      rest[p.op].first += p.seconds;
      rest[p.op].second += p.nodes;
    }
  }
  for (const auto& [op, t] : rest) row(t.first, t.second, op, "(other shapes)");
  return os.str();
}

CompiledFunction::CompiledFunction(Fn f, CompileOptions options) : impl_(std::make_shared<Impl>()) {
  if (!f) raise<ValueError>("compile", "needs a function");
  impl_->fn = std::move(f);
  impl_->options = options;
  impl_->options.profile = options.profile || graph::graph_profiling();
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

namespace trace {

bool active() { return graph::active_trace != nullptr; }

Tensor host_scalar(double value, std::function<double()> replay_value, DType dtype, Device device) {
  if (!graph::active_trace) return full({}, value, dtype, device);
  return graph::active_trace->feed(value, std::move(replay_value), dtype, device);
}

void on_replay(std::function<void()> redo, std::function<void()> undo) {
  if (graph::active_trace) graph::active_trace->hook(std::move(redo), std::move(undo));
}

void check(const Tensor& failed, std::function<void()> raise_error) {
  if (failed.dtype() != DType::Bool || failed.ndim() != 0)
    raise<ValueError>("trace.check", "expects a 0-d bool tensor, got " + std::string(dtype_name(failed.dtype())) +
                                         shape_str(failed.shape()));
  if (graph::active_trace) {
    graph::active_trace->check(failed, std::move(raise_error));
    return;
  }
  if (failed.item<bool>()) raise_error();
}

}  // namespace trace

}  // namespace tessera
