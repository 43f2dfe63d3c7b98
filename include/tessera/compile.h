// Graph mode: compile(f) traces f symbolically into a graph IR once per input signature,
// optimizes it (dead code, common subexpressions, constant folding, algebraic simplification,
// matmul/convolution epilogue fusion, elementwise fusion, memory planning) and replays the cached
// plan on later calls with the same signature. set_mode(Mode::Graph) makes the library's own entry points (a module's
// call, train::train_step / train_epoch / evaluate) run compiled without code changes. docs/graph_mode.md describes the
// IR, the passes and the limits.
//
//   auto f = ts::compile([](const ts::TensorList& in) { return ts::TensorList{ts::tanh(in[0]) * in[1]}; });
//   ts::TensorList y = f({x, w});          // first call: trace, optimize, run
//   f({x2, w2});                            // same shapes/dtypes/strides: cached plan
//   f.stats().traces;                       // retraces are counted
//
//   // A whole training step: the model's parameters and the optimizer's moments are state
//   // (found automatically: modules and optimizers are StatefulObjects), updated by the plan.
//   auto step = ts::compile([&](const ts::TensorList& b) {
//     auto [loss, grads] = ts::nn::value_and_grad(model, [&] { return loss_fn(model(b[0]), b[1]); })();
//     opt.step(grads);
//     return ts::TensorList{loss};
//   });
//
// Semantics:
// - Inputs are the tensors passed in. State is every tensor held by a live StatefulObject
//   (nn::Module parameters and buffers, optimizer moments): read from its slot at each call,
//   written back when the function rebinds it. Any other tensor the function captures becomes
//   a constant of the cached graph (a later call sees the tensor captured at trace time).
// - The signature that selects a cached plan: each input's dtype, shape, strides and device, plus
//   the state (which slots exist, their shapes and dtypes, each object's flags such as a module's
//   training mode). A change retraces; beyond cache_limit the least recently used plan is evicted.
// - Host values that change from call to call without changing the graph (an optimizer's step
//   count and learning rate, a generator's position for dropout) are fed to the plan at every
//   call through the hooks in namespace trace below; the library's optimizers and random ops use them.
// - A function that reads a traced value on the host (item(), to_vector(), data()) depends on
//   data: that call and later calls with its signature run eagerly (stats().eager_fallbacks),
//   unless it already updated state, which cannot be undone: then ValueError says to move the
//   read out of the compiled function. C++ loops whose trip counts do not depend on tensor data
//   simply unroll into the graph.
// - Called while a transform (grad, vjp, jvp) is active, the function runs eagerly under that
//   transform; compile(grad(f)) is the composing order.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "tessera/dtype.h"
#include "tessera/tensor.h"

namespace tessera {

struct CompileOptions {
  size_t cache_limit = 8;  // cached signatures; the least recently used is evicted beyond it
  /// When set, every trace writes its IR before and after each pass into this directory:
  /// <trace>-<step>-<pass>.txt (readable dump) and .dot (Graphviz). The directory is
  /// created when missing; a trace throws ValueError when it cannot be.
  /// Empty: the directory set by set_graph_dump_dir() (the CLI sets it from TESSERA_GRAPH_DUMP).
  std::string dump_dir;
  bool fuse = true;         // epilogue and elementwise fusion passes
  bool plan_memory = true;  // memory planner (in-place reuse, planned peak)
  /// Times every node of every replay, i.e. every call after the one that traced the plan, whose
  /// first kernel runs include one-time costs (a steady_clock read per node, about 50 ns);
  /// profile() reports the totals. Off: the setting of set_graph_profiling() (the CLI's --profile).
  bool profile = false;
};

/// Time spent in the nodes of one kind, over every call of a compiled function (profile()).
struct OpProfile {
  std::string op;      // primitive name, or "fused" for a fused elementwise kernel
  std::string shapes;  // input shapes ("[2048,256] x [256,1024]^T": ^T marks a transposed view)
  int64_t nodes = 0;   // nodes of this kind in the graph
  int64_t runs = 0;    // node executions timed
  double seconds = 0;  // their total wall time
};

struct CompileStats {
  int64_t calls = 0;
  int64_t traces = 0;  // one per signature seen (and again after an eviction)
  int64_t cache_hits = 0;
  int64_t evictions = 0;
  int64_t eager_fallbacks = 0;     // calls run eagerly (data-dependent function or active transform)
  int64_t nodes_traced = 0;        // primitive calls recorded, over all traces
  int64_t nodes_removed = 0;       // by dead-code and common-subexpression elimination
  int64_t nodes_folded = 0;        // evaluated once at compile time (constant folding)
  int64_t rewrites = 0;            // algebraic simplifications (x*1, x+0, neg(neg x), permute pairs, ...)
  int64_t nodes_fused = 0;         // primitive nodes absorbed into fused elementwise kernels and epilogues
  int64_t state_inputs = 0;        // state slots the most recent plan reads
  int64_t state_outputs = 0;       // state slots it writes back
  int64_t inplace_buffers = 0;     // outputs the most recent plan writes into a dying input's buffer
  int64_t planned_peak_bytes = 0;  // the memory planner's peak for the most recent plan (intermediates and outputs)
  int64_t naive_bytes = 0;         // the same graph with every intermediate in its own buffer
};

class TESSERA_API CompiledFunction {
 public:
  using Fn = std::function<std::vector<Tensor>(const std::vector<Tensor>&)>;
  CompiledFunction(Fn f, CompileOptions options);
  /// Runs f on inputs through the graph cached for their signature (tracing it first when new).
  /// Results equal f(inputs) evaluated eagerly up to float32 rounding (the same kernels run,
  /// except where fused matmul/convolution epilogues use the library's activations).
  std::vector<Tensor> operator()(const std::vector<Tensor>& inputs);
  const CompileStats& stats() const;
  /// The IR of the graph used by the most recent call ("" before the first traced call).
  std::string graph_text() const;
  /// Number of nodes in that graph (a fused kernel counts once).
  size_t graph_nodes() const;
  /// With CompileOptions::profile: the time per (op, input shapes) in the graph of the most
  /// recent call, summed over its replays (not the call that traced it), most expensive first
  /// (empty when not profiling or before the first replay).
  std::vector<OpProfile> profile() const;

 private:
  struct Impl;
  std::shared_ptr<Impl> impl_;
};

/// Wraps f (tensors in, tensors out) in a CompiledFunction; see the header comment.
TESSERA_API CompiledFunction compile(CompiledFunction::Fn f, CompileOptions options = {});

// ---------------------------------------------------------------------------------------------
// The mode switch

enum class Mode {
  Eager,  // every op runs when called (the default)
  Graph,  // module calls and the train:: loop run through compiled, cached plans
};
/// Sets the mode of this thread. In Graph mode nn::Module::operator() (outermost calls, no
/// transform active), train::train_step, train_epoch and evaluate compile what they run (one
/// plan cache per model/optimizer); everything else is unchanged. Results equal eager mode's
/// within float32 rounding (docs/graph_mode.md says where they can differ).
TESSERA_API void set_mode(Mode mode);
TESSERA_API Mode get_mode();
/// Sets the mode for its lifetime and restores the previous one.
class TESSERA_API ModeGuard {
 public:
  explicit ModeGuard(Mode mode) : saved_(get_mode()) { set_mode(mode); }
  ~ModeGuard() { set_mode(saved_); }
  ModeGuard(const ModeGuard&) = delete;
  ModeGuard& operator=(const ModeGuard&) = delete;

 private:
  Mode saved_;
};
/// Directory for IR dumps of every compile whose options leave dump_dir empty ("" = none).
TESSERA_API void set_graph_dump_dir(const std::string& dir);
/// Turns node timing on for every compile created afterwards (see CompileOptions::profile).
TESSERA_API void set_graph_profiling(bool on);
/// profile() as a table: one line per (op, shapes) with total ms, ms per call, share and node
/// count, the `top` most expensive first, then the rest summed per op.
TESSERA_API std::string format_profile(const std::vector<OpProfile>& profile, size_t top = 25);

// ---------------------------------------------------------------------------------------------
// State: objects whose tensors persist across calls

/// Base of every object holding tensors that a compiled function may read and rebind across
/// calls (nn::Module, optim::Optimizer). Live objects are registered per process; compile()
/// treats their slots as state (see the header comment). Not copyable (slots are addresses).
class TESSERA_API StatefulObject {
 public:
  StatefulObject();
  virtual ~StatefulObject();
  StatefulObject(const StatefulObject&) = delete;
  StatefulObject& operator=(const StatefulObject&) = delete;
  /// Appends the addresses of the tensors this object holds across calls (not its children's).
  virtual void state_slots(std::vector<Tensor*>& out) = 0;
  /// Host flags that change what the object's code computes (a module's training mode).
  virtual uint64_t state_flags() const { return 0; }
  /// A number unique to this object in this process (never reused).
  uint64_t state_id() const { return state_id_; }

 private:
  uint64_t state_id_;
};

// ---------------------------------------------------------------------------------------------
// Hooks for library code with host-side state (optimizers, random draws, checks)

namespace trace {
/// True while compile() traces a function on this thread.
TESSERA_API bool active();
/// A 0-d tensor of dtype on device holding `value`. Under a trace it is an input of the plan
/// whose value at every later call is replay_value() (evaluated after the on_replay hooks
/// registered before it), so host numbers such as an optimizer's bias correction stay current.
TESSERA_API Tensor host_scalar(double value, std::function<double()> replay_value, DType dtype, Device device = {});
/// Under a trace: redo runs at every later call of the plan, before it executes (host
/// bookkeeping such as step counters; the traced call did it already); undo reverses it when
/// that call fails (and when the trace itself is abandoned). Eagerly: does nothing.
TESSERA_API void on_replay(std::function<void()> redo, std::function<void()> undo);
/// A check that eager code does on the host: eagerly, calls raise_error() when the bool tensor
/// `failed` (0-d) is true. Under a trace the plan computes `failed` and calls raise_error()
/// after that node at every call (before any state is written back).
TESSERA_API void check(const Tensor& failed, std::function<void()> raise_error);
}  // namespace trace

}  // namespace tessera
