// plan_memory (src/graph/memory_plan.h): exact plans for small hand-built graphs, plan invariants
// on random DAGs (no two live buffers overlap, in place only where legal), and the proof that
// counts: executing every graph with its intermediates placed at the planned arena offsets gives
// eager's results and leaves non-donated inputs untouched.
//
// Graphs are built by Recorder, which runs each node eagerly (detail::execute) while recording
// it, so values carry the shapes and strides execution really produces and the eager results
// are the reference. To add a case: record the graph, plan it, check numbers, then
// expect_plan_valid + expect_runs_like_eager.
#include <gtest/gtest.h>

#include <array>
#include <cmath>
#include <random>

#include "core/dispatch.h"
#include "graph/fuse.h"
#include "graph/memory_plan.h"
#include "graph_builder.h"
#include "tessera/tensor_impl.h"
#include "tessera/tessera.h"

namespace ts = tessera;
namespace tg = tessera::graph;
using ts::OpId;
using ts::Shape;
using ts::Tensor;

namespace {

// The shared recorder (graph_builder.h) plus random inputs by shape and seed.
struct Recorder : tg::testing::GraphBuilder {
  using GraphBuilder::input;
  int input(Shape shape, uint64_t seed) { return input(tg::testing::rand({shape.begin(), shape.end()}, seed)); }
};

size_t sz(int v) { return static_cast<size_t>(v); }

int64_t bytes_of(const tg::Value& v) {
  int64_t n = 1;
  for (int64_t d : v.shape) n *= d;
  return n * static_cast<int64_t>(ts::dtype_size(v.dtype));
}

// A tensor of v's shape and dtype, contiguous, on `storage` at byte offset byte_off.
Tensor tensor_at(const tg::Value& v, const std::shared_ptr<ts::Storage>& storage, int64_t byte_off) {
  auto impl = std::make_shared<ts::TensorImpl>();
  impl->shape = v.shape;
  impl->strides = ts::contiguous_strides(v.shape);
  impl->dtype = v.dtype;
  impl->device = v.device;
  impl->offset = byte_off / static_cast<int64_t>(ts::dtype_size(v.dtype));
  impl->storage = storage;
  return Tensor(std::move(impl));
}

// The executor the plan is written for: one arena (poisoned with NaN, so reading a slot before
// it is written shows), every non-view output at its planned offset or in its donated input's
// buffer, escaping values in their own buffers. inputs are the caller's tensors (donated ones
// get overwritten). Returns the graph outputs.
std::vector<Tensor> run_planned(const tg::Graph& g, const tg::MemoryPlan& plan, const std::vector<Tensor>& inputs) {
  Tensor arena = ts::full({std::max<int64_t>(plan.arena_bytes / 4, 1)}, std::nan(""), ts::DType::Float32);
  const auto& arena_storage = arena.impl().storage;
  std::vector<Tensor> env(g.values.size());
  for (size_t i = 0; i < g.inputs.size(); ++i) env[sz(g.inputs[i])] = inputs[i];
  for (size_t i = 0; i < g.values.size(); ++i)
    if (g.values[i].kind == tg::Value::Kind::Constant) env[i] = g.values[i].constant;
  for (const tg::GraphNode& node : g.nodes) {
    std::vector<Tensor> in;
    for (int id : node.inputs) in.push_back(env[sz(id)]);
    const int v0 = node.outputs[0];
    const bool view_op = ts::op_info(node.op).category == ts::OpCategory::View;
    if (view_op && plan.storage_of[sz(v0)] != v0) {  // an alias: make the view, as eager does
      std::vector<Tensor> out(1);
      ts::detail::execute(node.op, in, node.attrs, out);
      EXPECT_EQ(out[0].impl().storage, in[0].impl().storage) << "the plan calls %" << v0 << " a view";
      env[sz(v0)] = out[0];
      continue;
    }
    std::vector<Tensor> out;
    for (int v : node.outputs) {
      const tg::Value& val = g.values[sz(v)];
      const int root = plan.storage_of[sz(v)];
      if (plan.offset[sz(v)] >= 0) {
        out.push_back(tensor_at(val, arena_storage, plan.offset[sz(v)]));
      } else if (g.values[sz(root)].kind == tg::Value::Kind::Input) {
        const Tensor& donor = env[sz(root)];
        out.push_back(tensor_at(val, donor.impl().storage, donor.offset() * static_cast<int64_t>(donor.itemsize())));
      } else {
        out.push_back(ts::detail::alloc_tensor(val.shape, val.dtype, val.device));
      }
    }
    ts::Backend& be = ts::backend_for(out[0].device());
    if (node.fused) {
      tg::run_fused(node, in, out);
    } else if (view_op) {  // a reshape that copies: eager's copy, then into the planned slot
      std::vector<Tensor> tmp(1);
      ts::detail::execute(node.op, in, node.attrs, tmp);
      EXPECT_NE(tmp[0].impl().storage, in[0].impl().storage) << "the plan gives view %" << v0 << " a buffer";
      ts::Attrs none = ts::NoAttrs{};
      be.kernel(OpId::Copy)(ts::KernelCall{OpId::Copy, tmp, out, none});
    } else {
      be.kernel(node.op)(ts::KernelCall{node.op, in, out, node.attrs});
    }
    for (size_t k = 0; k < out.size(); ++k) env[sz(node.outputs[k])] = out[k];
  }
  std::vector<Tensor> result;
  for (int o : g.outputs) result.push_back(env[sz(o)]);
  return result;
}

// Runs the planned executor on copies of `inputs` and compares with `want`; non-donated inputs
// must come back unchanged.
void expect_runs_like(const tg::Graph& g, const tg::MemoryPlan& plan, const std::vector<Tensor>& inputs0,
                      const std::vector<Tensor>& want, const std::vector<bool>& donated = {}) {
  std::vector<Tensor> inputs;
  for (const Tensor& t : inputs0) inputs.push_back(t.clone());
  std::vector<Tensor> got = run_planned(g, plan, inputs);
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < got.size(); ++i)
    EXPECT_TRUE(ts::allclose(got[i], want[i], 1e-6, 1e-6)) << "output " << i << " (%" << g.outputs[i] << ")";
  for (size_t i = 0; i < inputs.size(); ++i)
    if (donated.empty() || !donated[i])
      EXPECT_TRUE(ts::equal(inputs[i], inputs0[i])) << "non-donated input " << i << " was written";
}

std::vector<Tensor> recorded(const Recorder& r, const std::vector<int>& ids) {
  std::vector<Tensor> out;
  for (int id : ids) out.push_back(r.env[sz(id)]);
  return out;
}

void expect_runs_like_eager(const Recorder& r, const tg::MemoryPlan& plan, const std::vector<bool>& donated = {}) {
  expect_runs_like(r.g, plan, recorded(r, r.g.inputs), recorded(r, r.g.outputs), donated);
}

// Invariants checked against liveness computed here, independently of the planner: views are
// found from the eager tensors (they share their input's storage).
void expect_plan_valid(const Recorder& r, const tg::MemoryPlan& plan, const std::vector<bool>& donated = {}) {
  const tg::Graph& g = r.g;
  const size_t nv = g.values.size();
  const int n = static_cast<int>(g.nodes.size());
  ASSERT_EQ(plan.offset.size(), nv);
  ASSERT_EQ(plan.inplace_of.size(), nv);
  ASSERT_EQ(plan.storage_of.size(), nv);
  std::vector<int> base(nv), birth(nv, -1), last(nv, -1);
  for (size_t v = 0; v < nv; ++v) base[v] = static_cast<int>(v);
  for (int k = 0; k < n; ++k) {
    const tg::GraphNode& node = g.nodes[sz(k)];
    for (int v : node.outputs) {
      birth[sz(v)] = k;
      last[sz(v)] = k;
      if (!node.inputs.empty() && r.env[sz(v)].impl().storage == r.env[sz(node.inputs[0])].impl().storage)
        base[sz(v)] = base[sz(node.inputs[0])];
    }
    for (int in : node.inputs) last[sz(base[sz(in)])] = k;
  }
  std::vector<char> escapes(nv, 0);
  for (int o : g.outputs) {
    escapes[sz(base[sz(o)])] = 1;
    last[sz(base[sz(o)])] = n;
  }
  std::vector<char> is_donated(nv, 0);
  for (size_t i = 0; i < donated.size(); ++i) is_donated[sz(g.inputs[i])] = donated[i];

  std::vector<int> arena;
  for (size_t v = 0; v < nv; ++v) {
    const tg::Value& val = g.values[v];
    const bool view = base[v] != static_cast<int>(v);
    if (view) {
      EXPECT_EQ(plan.offset[v], -1) << "view %" << v;
      EXPECT_EQ(plan.storage_of[v], plan.storage_of[sz(base[v])]) << "view %" << v;
    }
    if (val.kind != tg::Value::Kind::NodeOutput || escapes[v]) EXPECT_EQ(plan.offset[v], -1) << "%" << v;
    if (val.kind != tg::Value::Kind::NodeOutput) {
      EXPECT_EQ(plan.storage_of[v], static_cast<int>(v));
      EXPECT_EQ(plan.inplace_of[v], -1);
    }
    const int root = plan.storage_of[v];
    // Only a donated input's buffer may be written (views of any input only read it).
    if (!view && g.values[sz(root)].kind != tg::Value::Kind::NodeOutput && root != static_cast<int>(v))
      EXPECT_TRUE(is_donated[sz(root)]) << "%" << v << " is written into non-donated input %" << root;
    if (const int u = plan.inplace_of[v]; u >= 0) {
      const tg::GraphNode& node = g.nodes[sz(val.node)];
      const ts::OpCategory c = ts::op_info(node.op).category;
      const bool scatter_base = (node.op == OpId::ScatterAdd || node.op == OpId::Scatter) && node.inputs[0] == u;
      EXPECT_TRUE(c == ts::OpCategory::Unary || c == ts::OpCategory::Binary || c == ts::OpCategory::Ternary ||
                  scatter_base)
          << "%" << v << " in place from a " << ts::op_name(node.op);
      EXPECT_NE(std::find(node.inputs.begin(), node.inputs.end(), u), node.inputs.end());
      EXPECT_EQ(last[sz(u)], val.node) << "%" << v << " overwrites %" << u << " that is read later";
      EXPECT_EQ(base[sz(u)], u);
      EXPECT_EQ(g.values[sz(u)].shape, val.shape);
      EXPECT_EQ(root, plan.storage_of[sz(u)]);
      if (escapes[v]) EXPECT_EQ(g.values[sz(root)].kind, tg::Value::Kind::Input);
    }
    if (plan.offset[v] >= 0) {
      EXPECT_EQ(plan.offset[v] % tg::kArenaAlignment, 0);
      EXPECT_LE(plan.offset[v] + bytes_of(val), plan.arena_bytes) << "%" << v;
      if (!view) arena.push_back(static_cast<int>(v));
    }
  }
  EXPECT_EQ(plan.arena_bytes % tg::kArenaAlignment, 0);
  // No two values whose lifetimes overlap share bytes, unless one reuses the other in place at
  // the node where the source dies.
  for (size_t i = 0; i < arena.size(); ++i)
    for (size_t j = i + 1; j < arena.size(); ++j) {
      const int a = arena[i], b = arena[j];
      const bool live_together =
          birth[sz(a)] <= std::max(last[sz(b)], birth[sz(b)]) && birth[sz(b)] <= std::max(last[sz(a)], birth[sz(a)]);
      const int64_t ba = bytes_of(g.values[sz(a)]), bb = bytes_of(g.values[sz(b)]);
      const bool share_bytes = ba > 0 && bb > 0 && plan.offset[sz(a)] < plan.offset[sz(b)] + bb &&
                               plan.offset[sz(b)] < plan.offset[sz(a)] + ba;
      const bool handover = (plan.inplace_of[sz(b)] == a && last[sz(a)] == birth[sz(b)]) ||
                            (plan.inplace_of[sz(a)] == b && last[sz(b)] == birth[sz(a)]);
      if (live_together && share_bytes) EXPECT_TRUE(handover) << "%" << a << " and %" << b << " overlap";
    }
  int64_t naive = 0;
  for (size_t v = 0; v < nv; ++v)
    if (g.values[v].kind == tg::Value::Kind::NodeOutput && base[v] == static_cast<int>(v))
      naive += bytes_of(g.values[v]);
  EXPECT_EQ(plan.naive_bytes, naive);
  EXPECT_LE(plan.planned_peak_bytes, plan.naive_bytes);
}

void expect_all(const Recorder& r, const tg::MemoryPlan& plan, const std::vector<bool>& donated = {}) {
  expect_plan_valid(r, plan, donated);
  expect_runs_like_eager(r, plan, donated);
}

}  // namespace

// x [1024] -> exp -> relu -> neg -> sin (returned): the input and the four values.
std::array<int, 5> chain_of_four(Recorder& r) {
  int x = r.input({1024}, 1);
  int a = r.op(OpId::Exp, {x});
  int b = r.op(OpId::Relu, {a});
  int c = r.op(OpId::Neg, {b});
  int d = r.op(OpId::Sin, {c});
  r.g.outputs = {d};
  return {x, a, b, c, d};
}

TEST(MemoryPlan, ChainOfElementwiseOpsReusesOneBuffer) {
  Recorder r;
  auto [x, a, b, c, d] = chain_of_four(r);
  tg::MemoryPlan p = tg::plan_memory(r.g);
  EXPECT_EQ(p.inplace_of[sz(a)], -1);  // x is the caller's
  EXPECT_EQ(p.inplace_of[sz(b)], a);
  EXPECT_EQ(p.inplace_of[sz(c)], b);
  EXPECT_EQ(p.inplace_of[sz(d)], -1);  // the output may not live in the arena
  EXPECT_EQ(p.storage_of[sz(c)], a);
  EXPECT_EQ(p.storage_of[sz(d)], d);
  EXPECT_EQ(p.offset[sz(a)], 0);
  EXPECT_EQ(p.offset[sz(c)], 0);
  EXPECT_EQ(p.offset[sz(d)], -1);
  EXPECT_EQ(p.inplace_count, 2);
  EXPECT_EQ(p.arena_bytes, 4096);
  EXPECT_EQ(p.planned_peak_bytes, 4096 + 4096);  // the arena buffer + the output at the last node
  EXPECT_EQ(p.naive_bytes, 4 * 4096);
  expect_all(r, p);
}

TEST(MemoryPlan, DonatedInputIsUpdatedInPlace) {
  Recorder r;
  auto [x, a, b, c, d] = chain_of_four(r);
  tg::MemoryPlan p = tg::plan_memory(r.g, {true});
  for (int v : {a, b, c, d}) {
    EXPECT_EQ(p.storage_of[sz(v)], x);
    EXPECT_EQ(p.offset[sz(v)], -1);
  }
  EXPECT_EQ(p.inplace_of[sz(a)], x);
  EXPECT_EQ(p.inplace_of[sz(d)], c);  // an output may take donated storage
  EXPECT_EQ(p.inplace_count, 4);
  EXPECT_EQ(p.arena_bytes, 0);
  EXPECT_EQ(p.planned_peak_bytes, 0);  // donated memory exists anyway
  expect_all(r, p, {true});
}

TEST(MemoryPlan, ParameterUpdateWritesIntoTheDonatedParameter) {
  Recorder r;
  int w = r.input({16}, 1), grad = r.input({16}, 2);
  int lr = r.constant(ts::full({16}, 0.1));
  int step = r.op(OpId::Mul, {grad, lr});  // neither the caller's grad nor a constant is reused
  int w_new = r.op(OpId::Sub, {w, step});
  r.g.outputs = {w_new};
  std::vector<bool> donated = {true, false};
  tg::MemoryPlan p = tg::plan_memory(r.g, donated);
  EXPECT_EQ(p.inplace_of[sz(step)], -1);
  EXPECT_EQ(p.offset[sz(step)], 0);
  EXPECT_EQ(p.inplace_of[sz(w_new)], w);
  EXPECT_EQ(p.storage_of[sz(w_new)], w);
  EXPECT_EQ(p.arena_bytes, 64);
  EXPECT_EQ(p.planned_peak_bytes, 64);
  expect_all(r, p, donated);
}

TEST(MemoryPlan, NonDonatedInputIsNeverOverwritten) {
  Recorder r;
  int x = r.input({16}, 1);
  int y = r.op(OpId::Neg, {x});
  r.g.outputs = {y};
  tg::MemoryPlan p = tg::plan_memory(r.g, {false});
  EXPECT_EQ(p.inplace_of[sz(y)], -1);
  EXPECT_EQ(p.storage_of[sz(y)], y);
  EXPECT_EQ(p.inplace_count, 0);
  EXPECT_EQ(p.planned_peak_bytes, 64);
  expect_all(r, p, {false});
  // Donated but also returned: the caller gets it back, so it must survive.
  r.g.outputs = {y, x};
  p = tg::plan_memory(r.g, {true});
  EXPECT_EQ(p.inplace_of[sz(y)], -1);
  expect_all(r, p, {false});
}

TEST(MemoryPlan, ConstantsAreNeverOverwritten) {
  Recorder r;
  int c = r.constant(ts::full({8}, 2.0));
  int y = r.op(OpId::Exp, {c});
  int z = r.op(OpId::Neg, {y});
  r.g.outputs = {z};
  tg::MemoryPlan p = tg::plan_memory(r.g);
  EXPECT_EQ(p.inplace_of[sz(y)], -1);
  EXPECT_EQ(p.storage_of[sz(y)], y);
  expect_all(r, p);
}

TEST(MemoryPlan, ScatterAddWritesIntoItsDyingBase) {
  // A max pool's gradient: a zero fill, then the sources added at the indices (duplicates add).
  Recorder r;
  int src = r.input({4, 3}, 1);
  int idx = r.constant(ts::tensor<int64_t>({0, 5, 2, 7, 1, 1, 3, 3, 6, 0, 4, 2}, {4, 3}));
  int zeros = r.op(OpId::Full, {}, ts::FullAttrs{{4, 8}, 0.0});
  int s = r.op(OpId::ScatterAdd, {zeros, idx, src}, ts::AxisAttrs{1});
  int y = r.op(OpId::Exp, {s});
  r.g.outputs = {y};
  tg::MemoryPlan p = tg::plan_memory(r.g);
  EXPECT_EQ(p.inplace_of[sz(s)], zeros);
  EXPECT_EQ(p.planned_peak_bytes, 2 * 4 * 8 * 4);  // the fill/scatter buffer and exp's output
  expect_all(r, p);
}

TEST(MemoryPlan, ScatterKeepsABaseThatIsReadLaterOrConstant) {
  Recorder r;
  int src = r.input({2, 3}, 1);
  int idx = r.constant(ts::tensor<int64_t>({0, 2, 4, 1, 1, 3}, {2, 3}));
  int base = r.op(OpId::Exp, {r.input({2, 5}, 2)});
  int s = r.op(OpId::Scatter, {base, idx, src}, ts::AxisAttrs{1});
  int later = r.op(OpId::Add, {s, base});  // base is read after the scatter
  int c = r.constant(ts::zeros({2, 5}));
  int t = r.op(OpId::ScatterAdd, {c, idx, src}, ts::AxisAttrs{1});
  r.g.outputs = {later, t};
  tg::MemoryPlan p = tg::plan_memory(r.g);
  EXPECT_EQ(p.inplace_of[sz(s)], -1);
  EXPECT_EQ(p.inplace_of[sz(t)], -1);
  expect_all(r, p);
}

TEST(MemoryPlan, ViewKeepsItsBaseAlive) {
  Recorder r;
  int x = r.input({4, 8}, 1);
  int a = r.op(OpId::Exp, {x});                        // node 0
  int t = r.permute(a, {1, 0});                        // node 1: a view of a
  int b = r.op(OpId::Neg, {a});                        // node 2: a is read later through t: not in place
  int c = r.op(OpId::Relu, {t});                       // node 3
  int d = r.op(OpId::Add, {b, r.permute(c, {1, 0})});  // nodes 4-5
  r.g.outputs = {d};
  tg::MemoryPlan p = tg::plan_memory(r.g);
  EXPECT_EQ(p.storage_of[sz(t)], a);
  EXPECT_EQ(p.offset[sz(t)], -1);
  EXPECT_EQ(p.inplace_of[sz(b)], -1);
  EXPECT_EQ(p.inplace_of[sz(c)], -1);  // t is a view (strided): never reused
  // a (until node 3), b (nodes 2-5) and c (nodes 3-5) are live together at node 3.
  EXPECT_EQ(p.arena_bytes, 3 * 128);
  EXPECT_EQ(p.planned_peak_bytes, 3 * 128);  // at node 5 a has died and d is born
  expect_all(r, p);
}

TEST(MemoryPlan, OperandReadThroughAnotherViewIsNotReused) {
  // s = a + a^T: writing s over a would clobber a[j][i] before it is read for s[j][i].
  Recorder r;
  int x = r.input({8, 8}, 1);
  int a = r.op(OpId::Exp, {x});
  int s = r.op(OpId::Add, {a, r.permute(a, {1, 0})});
  int o = r.op(OpId::Neg, {s});
  r.g.outputs = {o};
  tg::MemoryPlan p = tg::plan_memory(r.g);
  EXPECT_EQ(p.inplace_of[sz(s)], -1);
  expect_all(r, p);
}

TEST(MemoryPlan, OutputsAndTheBasesOfOutputViewsAreNotInTheArena) {
  Recorder r;
  int x = r.input({16}, 1);
  int a = r.op(OpId::Exp, {x});
  int b = r.op(OpId::Neg, {a});  // in place over a would put the output's base in the arena
  int v = r.reshape(b, {2, 8});
  r.g.outputs = {v, b};
  tg::MemoryPlan p = tg::plan_memory(r.g);
  EXPECT_EQ(p.offset[sz(b)], -1);
  EXPECT_EQ(p.inplace_of[sz(b)], -1);
  EXPECT_EQ(p.storage_of[sz(v)], b);
  EXPECT_EQ(p.offset[sz(a)], 0);
  EXPECT_EQ(p.arena_bytes, 64);
  EXPECT_EQ(p.planned_peak_bytes, 128);  // output b counted once although returned twice
  expect_all(r, p);
}

TEST(MemoryPlan, MatmulOutputsAreNotInPlace) {
  Recorder r;
  int x = r.input({8, 8}, 1), w = r.input({8, 8}, 2);
  int a = r.op(OpId::Exp, {x});
  int m = r.op(OpId::Matmul, {a, w});  // a dies here, same shape, but a matmul reads all of a
  int o = r.op(OpId::Tanh, {m});
  r.g.outputs = {o};
  tg::MemoryPlan p = tg::plan_memory(r.g);
  EXPECT_EQ(p.inplace_of[sz(m)], -1);
  EXPECT_NE(p.offset[sz(a)], p.offset[sz(m)]);
  EXPECT_EQ(p.arena_bytes, 2 * 256);
  expect_all(r, p);
}

TEST(MemoryPlan, ReshapeThatCopiesOwnsABuffer) {
  Recorder r;
  int x = r.input({4, 8}, 1);
  int a = r.op(OpId::Exp, {x});
  int t = r.permute(a, {1, 0});
  int flat = r.reshape(t, {32});  // transposed data cannot be viewed flat: a copy
  int o = r.op(OpId::Neg, {flat});
  r.g.outputs = {o};
  tg::MemoryPlan p = tg::plan_memory(r.g);
  EXPECT_EQ(p.storage_of[sz(flat)], flat);
  EXPECT_GE(p.offset[sz(flat)], 0);
  EXPECT_EQ(p.arena_bytes, 256);  // a and flat coexist while the copy runs
  EXPECT_EQ(p.naive_bytes, 3 * 128);
  expect_all(r, p);
}

TEST(MemoryPlan, ReusesOnlyOperandsWithTheOutputsShapeAndElementSize) {
  Recorder r;
  int x = r.input({1, 8}, 1), y = r.input({4, 8}, 2);
  int a = r.op(OpId::Exp, {x});
  int s = r.op(OpId::Add, {a, y});  // a is broadcast: [1,8] -> [4,8]
  int e = r.op(OpId::Exp, {s});
  int gt = r.op(OpId::Gt, {e, r.op(OpId::Exp, {y})});              // bool output: 1 byte per element
  int i = r.op(OpId::Cast, {e}, ts::CastAttrs{ts::DType::Int32});  // 4 bytes: same slots
  int o = r.op(OpId::Where, {gt, r.op(OpId::Cast, {i}, ts::CastAttrs{ts::DType::Float32}), y});
  r.g.outputs = {o};
  tg::MemoryPlan p = tg::plan_memory(r.g);
  EXPECT_EQ(p.inplace_of[sz(s)], -1);
  EXPECT_EQ(p.inplace_of[sz(e)], s);
  EXPECT_EQ(p.inplace_of[sz(gt)], -1);
  EXPECT_EQ(p.inplace_of[sz(i)], e);
  expect_all(r, p);
}

TEST(MemoryPlan, EmptyGraph) {
  tg::Graph g;
  tg::MemoryPlan p = tg::plan_memory(g);
  EXPECT_TRUE(p.offset.empty());
  EXPECT_EQ(p.arena_bytes, 0);
  EXPECT_EQ(p.planned_peak_bytes, 0);
  EXPECT_EQ(p.naive_bytes, 0);
  EXPECT_EQ(p.inplace_count, 0);
  Recorder r;  // inputs returned as they are: nothing to plan
  int x = r.input({4}, 1);
  r.g.outputs = {x, x};
  p = tg::plan_memory(r.g, {true});
  EXPECT_EQ(p.offset[sz(x)], -1);
  EXPECT_EQ(p.planned_peak_bytes, 0);
  expect_all(r, p, {true});
}

TEST(MemoryPlan, ZeroSizeTensors) {
  Recorder r;
  int x = r.input({0, 4}, 1), y = r.input({3}, 2);
  int a = r.op(OpId::Exp, {x});
  int b = r.op(OpId::Neg, {a});
  int c = r.op(OpId::Exp, {y});
  int s = r.op(OpId::Sum, {b}, ts::ReduceAttrs{{0}, false});  // [4] of zeros
  int o = r.op(OpId::Add, {r.op(OpId::Tanh, {c}), r.op(OpId::Sum, {s}, ts::ReduceAttrs{{0}, true})});
  r.g.outputs = {o};
  tg::MemoryPlan p = tg::plan_memory(r.g);
  EXPECT_EQ(p.offset[sz(a)], 0);
  EXPECT_EQ(p.inplace_of[sz(b)], a);
  EXPECT_EQ(p.naive_bytes, 0 + 0 + 12 + 16 + 12 + 4 + 12);
  expect_all(r, p);
}

TEST(MemoryPlan, RejectsDonatedFlagsOfTheWrongLength) {
  Recorder r;
  int x = r.input({4}, 1);
  r.g.outputs = {r.op(OpId::Neg, {x})};
  EXPECT_THROW(tg::plan_memory(r.g, {true, false}), ts::ValueError);
}

namespace {

// A random DAG of `nodes` primitives over 2-D float32 values of random sizes: unary and binary
// elementwise ops (with broadcast operands), comparisons, casts, where, transposes, slices,
// reshapes (viewing or copying), matmuls and reductions. Some inputs are donated, a few values
// (views among them) are returned.
Recorder random_dag(uint32_t seed, int nodes, std::vector<bool>& donated) {
  std::mt19937 rng(seed);
  auto pick = [&](int n) { return static_cast<int>(rng() % static_cast<uint32_t>(n)); };
  const int64_t dims[] = {1, 2, 3, 8, 16, 24, 33};
  auto dim = [&] { return dims[pick(7)]; };
  Recorder r;
  std::vector<int> pool;  // float32 values the generator may use
  auto new_input = [&](Shape s) {
    int id = r.input(s, rng());
    donated.push_back(pick(2) == 0);
    pool.push_back(id);
    return id;
  };
  for (int i = 0; i < 4; ++i) new_input({dim(), dim()});
  auto shape = [&](int v) { return r.g.values[sz(v)].shape; };
  auto partner = [&](Shape s) {  // a pool value of shape s, else a new input
    std::vector<int> same;
    for (int v : pool)
      if (shape(v) == s) same.push_back(v);
    return same.empty() || pick(4) == 0 ? new_input(s) : same[sz(pick(static_cast<int>(same.size())))];
  };
  const OpId unary[] = {OpId::Tanh, OpId::Neg, OpId::Sin, OpId::Sigmoid, OpId::Abs, OpId::Relu};
  const OpId binary[] = {OpId::Add, OpId::Mul, OpId::Sub, OpId::Maximum};
  // Recent values are used more: long chains and values that die soon, as in real graphs.
  auto operand = [&] {
    int n = static_cast<int>(pool.size());
    return pool[sz(pick(3) == 0 ? pick(n) : std::max(0, n - 1 - pick(std::min(n, 6))))];
  };
  while (static_cast<int>(r.g.nodes.size()) < nodes) {
    int a = operand();
    Shape s = shape(a);
    int v = -1;
    switch (pick(11)) {
      case 0:
      case 1:
      case 2:
        v = r.op(unary[pick(6)], {a});
        break;
      case 3:
      case 4:
        v = r.op(binary[pick(4)], {a, partner(s)});
        break;
      case 5:
        v = r.op(binary[pick(4)], {a, partner({1, s[1]})});  // broadcast operand
        break;
      case 6:
        v = r.permute(a, {1, 0});
        break;
      case 7:
        v = s[0] > 1 ? r.op(OpId::Slice, {a}, ts::SliceAttrs{0, 1, s[0], 1}) : r.reshape(a, {s[1], s[0]});
        break;
      case 8:
        v = r.op(OpId::Matmul, {a, partner({s[1], dim()})});
        break;
      case 9:
        v = r.op(OpId::Sum, {a}, ts::ReduceAttrs{{1}, true});
        break;
      case 10: {
        int b = partner(s);
        int mask = r.op(OpId::Gt, {a, b});
        int as_int = r.op(OpId::Cast, {a}, ts::CastAttrs{ts::DType::Int32});
        int back = r.op(OpId::Cast, {as_int}, ts::CastAttrs{ts::DType::Float32});
        v = r.op(OpId::Where, {mask, back, b});
        break;
      }
    }
    pool.push_back(v);
  }
  for (int i = 0; i < 5; ++i) r.g.outputs.push_back(pool[sz(pick(static_cast<int>(pool.size())))]);
  r.g.outputs.push_back(pool.back());
  return r;
}

}  // namespace

TEST(MemoryPlan, RandomDagsPlanDisjointLiveBuffersAndRunLikeEager) {
  for (uint32_t seed = 1; seed <= 6; ++seed) {
    SCOPED_TRACE("seed " + std::to_string(seed));
    std::vector<bool> donated;
    Recorder r = random_dag(seed, 200, donated);
    tg::MemoryPlan p = tg::plan_memory(r.g, donated);
    EXPECT_GT(p.inplace_count, 0);
    EXPECT_GT(p.arena_bytes, 0);
    EXPECT_LT(p.arena_bytes, p.naive_bytes);
    expect_all(r, p, donated);
    // Each allocator on its own gives a valid plan (same decisions, other offsets); the default
    // keeps the smaller arena.
    for (auto strategy : {tg::ArenaStrategy::LinearScan, tg::ArenaStrategy::GreedyBySize}) {
      tg::MemoryPlan q = tg::plan_memory(r.g, donated, strategy);
      EXPECT_EQ(q.inplace_of, p.inplace_of);
      EXPECT_EQ(q.planned_peak_bytes, p.planned_peak_bytes);
      EXPECT_LE(p.arena_bytes, q.arena_bytes);
      expect_all(r, q, donated);
    }
    // Without donations every input survives, and the plan is still valid.
    std::vector<bool> none(donated.size(), false);
    tg::MemoryPlan q = tg::plan_memory(r.g, none);
    expect_all(r, q, none);
  }
}

TEST(MemoryPlan, FusedNodesRunInPlaceOverDyingOperands) {
  Recorder r;
  int x = r.input({32, 32}, 1), y = r.input({32, 32}, 2), w = r.input({32, 32}, 3);
  int c = r.op(OpId::Relu, {r.op(OpId::Mul, {r.op(OpId::Exp, {x}), y})});  // fused: x, y -> c
  int m = r.op(OpId::Matmul, {c, w});
  int e = r.op(OpId::Neg, {r.op(OpId::Tanh, {m})});  // fused: m -> e, m dies there
  int o = r.op(OpId::Matmul, {e, w});
  r.g.outputs = {o};
  std::vector<Tensor> inputs = recorded(r, r.g.inputs), want = recorded(r, r.g.outputs);
  ASSERT_GT(tg::fuse_elementwise(r.g), 0);
  std::vector<bool> donated = {true, false, false};
  tg::MemoryPlan p = tg::plan_memory(r.g, donated);
  int fused_inplace = 0, fused_from_donated = 0;
  for (const tg::GraphNode& node : r.g.nodes)
    if (node.fused)
      for (int v : node.outputs)
        if (int u = p.inplace_of[sz(v)]; u >= 0) {
          ++fused_inplace;
          fused_from_donated += r.g.values[sz(u)].kind == tg::Value::Kind::Input;
          EXPECT_EQ(r.g.values[sz(u)].shape, r.g.values[sz(v)].shape);
        }
  EXPECT_EQ(fused_inplace, 2);  // c over the donated x, e over m
  EXPECT_EQ(fused_from_donated, 1);
  EXPECT_EQ(p.arena_bytes, 4096);  // c lives in x's donated buffer; m and e share one slot
  expect_runs_like(r.g, p, inputs, want, donated);
}
