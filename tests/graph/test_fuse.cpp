// Elementwise fusion (src/graph/fuse.h): graphs are built by hand with the nodes the ops API
// records (a 0-d full node for a Python-style scalar operand, binary ops broadcasting natively,
// Expand views), every value also evaluated eagerly with detail::execute as it is added; the
// fused graph then runs through a tiny executor (run_fused for fused nodes) and its outputs are
// compared with the eager values. The fused evaluator runs the same inner loops in the same
// order on every element as eager mode, so results are compared bit for bit.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>

#include "core/dispatch.h"
#include "graph/fuse.h"
#include "graph_builder.h"
#include "harness/harness.h"
#include "tessera/tessera.h"

namespace ts = tessera;
namespace graph = tessera::graph;
using ts::DType;
using ts::OpId;
using ts::Tensor;

namespace {

// A graph under construction (graph_builder.h), with the inputs and the expected outputs.
struct Builder : graph::testing::GraphBuilder {
  std::vector<Tensor> in, want;

  int input(const Tensor& t) {
    in.push_back(t);
    return GraphBuilder::input(t);
  }
  // What mul(x, 0.5) records for its scalar: a 0-d full node of x's dtype.
  int scalar(double v, DType t = DType::Float32) {
    return op(OpId::Full, {}, ts::FullAttrs{{}, v, t, ts::default_device()});
  }
  void ret(int id) {
    g.outputs.push_back(id);
    want.push_back(env[static_cast<size_t>(id)]);
  }
  std::vector<Tensor> expected() const { return want; }
  std::vector<Tensor> inputs() const { return in; }
};

using graph::testing::run_graph;

int count_fused(const graph::Graph& g) {
  return static_cast<int>(
      std::count_if(g.nodes.begin(), g.nodes.end(), [](const auto& n) { return n.fused != nullptr; }));
}

void expect_bitwise(const Tensor& got, const Tensor& want, const std::string& what) {
  ASSERT_EQ(got.dtype(), want.dtype()) << what;
  ASSERT_EQ(got.shape(), want.shape()) << what;
  Tensor a = got.contiguous(), b = want.contiguous();
  size_t bytes = static_cast<size_t>(a.numel()) * a.itemsize();
  EXPECT_EQ(bytes ? std::memcmp(a.raw_data(), b.raw_data(), bytes) : 0, 0) << what << ": fused differs from eager";
}

void expect_outputs_match(const Builder& b, const std::vector<Tensor>& got) {
  std::vector<Tensor> want = b.expected();
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < got.size(); ++i) expect_bitwise(got[i], want[i], "output " + std::to_string(i));
}

using graph::testing::rand;

// Runs f as on a backend without a fused evaluator (every fused node step by step), restoring
// the CPU evaluator afterwards.
template <typename F>
void without_evaluator(const F& f) {
  graph::FusedEvaluator cpu = graph::fused_evaluator("cpu");
  ASSERT_NE(cpu, nullptr);
  graph::register_fused_evaluator("cpu", nullptr);
  try {
    f();
  } catch (...) {
    graph::register_fused_evaluator("cpu", cpu);
    throw;
  }
  graph::register_fused_evaluator("cpu", cpu);
}

// x * w + b -> relu -> * 0.5 (b broadcast over rows by the binary op itself).
Builder chain(const Tensor& x, const Tensor& w, const Tensor& b) {
  Builder bl;
  int xi = bl.input(x), wi = bl.input(w), bi = bl.input(b);
  int y = bl.op(OpId::Mul, {xi, wi});
  y = bl.op(OpId::Add, {y, bi});
  y = bl.op(OpId::Relu, {y});
  y = bl.op(OpId::Mul, {y, bl.scalar(0.5, x.dtype())});
  bl.ret(y);
  return bl;
}

// Adam's update over p, g, m, v: 14 elementwise nodes (scalars are 0-d constants, as constant
// folding leaves them), three results.
Builder adam(const Tensor& p, const Tensor& g, const Tensor& m, const Tensor& v) {
  Builder bl;
  int pi = bl.input(p), gi = bl.input(g), mi = bl.input(m), vi = bl.input(v);
  auto c = [&](double x) { return bl.constant(ts::full({}, x, p.dtype())); };
  int m2 = bl.op(OpId::Add, {bl.op(OpId::Mul, {mi, c(0.9)}), bl.op(OpId::Mul, {gi, c(0.1)})});
  int gg = bl.op(OpId::Mul, {gi, gi});
  int v2 = bl.op(OpId::Add, {bl.op(OpId::Mul, {vi, c(0.999)}), bl.op(OpId::Mul, {gg, c(0.001)})});
  int mhat = bl.op(OpId::Div, {m2, c(1 - 0.9)});
  int vhat = bl.op(OpId::Div, {v2, c(1 - 0.999)});
  int den = bl.op(OpId::Add, {bl.op(OpId::Sqrt, {vhat}), c(1e-8)});
  int upd = bl.op(OpId::Mul, {bl.op(OpId::Div, {mhat, den}), c(1e-3)});
  int p2 = bl.op(OpId::Sub, {pi, upd});
  bl.ret(p2);
  bl.ret(m2);
  bl.ret(v2);
  return bl;
}

}  // namespace

TEST(Fuse, ChainFusesIntoOneNodeAndEqualsEagerBitForBit) {
  // 37 x 129 = 4773 elements: two full blocks and a partial one.
  Builder b = chain(rand({37, 129}, 1), rand({37, 129}, 2), rand({129}, 3));
  const size_t traced = b.g.nodes.size();
  EXPECT_EQ(graph::fuse_elementwise(b.g), 4);  // mul, add, relu, mul (the 0-d full is an immediate)
  b.g.verify();
  ASSERT_EQ(b.g.nodes.size(), 1u) << b.g.str();
  EXPECT_LT(b.g.nodes.size(), traced);
  const graph::FusedProgram& p = *b.g.nodes[0].fused;
  EXPECT_EQ(p.steps.size(), 4u);
  EXPECT_EQ(p.immediates.size(), 1u);
  EXPECT_EQ(b.g.nodes[0].inputs.size(), 3u);
  std::string text = b.g.str();
  EXPECT_NE(text.find("fused[s0=mul($0,$1); s1=add(s0,$2); s2=relu(s1); s3=mul(s2,0.5) -> s3]"), std::string::npos)
      << text;
  EXPECT_NE(graph::to_dot(b.g).find("fused["), std::string::npos);
  expect_outputs_match(b, run_graph(b.g, b.inputs()));
}

TEST(Fuse, BiasBroadcastThroughExpandIsReadInPlace) {
  Tensor x = rand({9, 300}, 4), bias = rand({300}, 5);
  Builder b;
  int xi = b.input(x), bi = b.input(bias);
  int e = b.op(OpId::Expand, {bi}, ts::ShapeAttrs{{9, 300}});
  int y = b.op(OpId::Tanh, {b.op(OpId::Add, {xi, e})});
  b.ret(y);
  EXPECT_EQ(graph::fuse_elementwise(b.g), 2);
  b.g.verify();
  ASSERT_EQ(b.g.nodes.size(), 1u) << b.g.str();  // the Expand view is gone: absorbed
  ASSERT_EQ(b.g.nodes[0].inputs.size(), 2u);
  EXPECT_EQ(b.g.values[static_cast<size_t>(b.g.nodes[0].inputs[1])].shape, ts::Shape({300}));
  expect_outputs_match(b, run_graph(b.g, b.inputs()));
}

TEST(Fuse, ColumnAndLeadingAxisBroadcastsAndStridedInputs) {
  // A [7,1] column, a [1,5,11] input with a leading size-1 axis, and a transposed input: every
  // input layout the evaluator gathers.
  Tensor x = rand({7, 5, 11}, 6), col = rand({5, 1}, 7), lead = rand({1, 5, 11}, 8), t = rand({11, 5, 7}, 9);
  Builder b;
  int xi = b.input(x), ci = b.input(col), li = b.input(lead), ti = b.input(t);
  int tt = b.op(OpId::Permute, {ti}, ts::PermuteAttrs{{2, 1, 0}});
  int y = b.op(OpId::Mul, {b.op(OpId::Add, {xi, ci}), li});
  y = b.op(OpId::Sub, {y, tt});
  b.ret(b.op(OpId::Exp, {y}));
  EXPECT_EQ(graph::fuse_elementwise(b.g), 4);
  b.g.verify();
  EXPECT_EQ(count_fused(b.g), 1) << b.g.str();
  expect_outputs_match(b, run_graph(b.g, b.inputs()));
}

TEST(Fuse, AdamShapedDagBecomesOneNodeWithThreeOutputs) {
  Tensor p = rand({1000, 3}, 10), g = rand({1000, 3}, 11), m = rand({1000, 3}, 12),
         v = rand({1000, 3}, 13, DType::Float32, 0, 1);
  Builder b = adam(p, g, m, v);
  EXPECT_EQ(graph::fuse_elementwise(b.g), 14);
  b.g.verify();
  ASSERT_EQ(b.g.nodes.size(), 1u) << b.g.str();
  EXPECT_EQ(b.g.nodes[0].outputs.size(), 3u);
  EXPECT_EQ(b.g.nodes[0].inputs.size(), 4u);  // p, g, m, v; the scalars are immediates
  // Intermediates share slots: fewer slots than steps.
  EXPECT_LT(b.g.nodes[0].fused->num_slots, 14);
  expect_outputs_match(b, run_graph(b.g, b.inputs()));
}

TEST(Fuse, InPlaceOutputsAliasingInputsGiveEagerResults) {
  const int64_t n = 5000;  // blocks of different threads and a partial block
  Tensor p = rand({n}, 14), g = rand({n}, 15), m = rand({n}, 16), v = rand({n}, 17, DType::Float32, 0, 1);
  Builder b = adam(p, g, m, v);
  graph::fuse_elementwise(b.g);
  ASSERT_EQ(b.g.nodes.size(), 1u);
  std::vector<Tensor> args = {p.clone(), g.clone(), m.clone(), v.clone()};  // graph input order
  // The node's inputs in its own order (first use in the program), as graph input positions.
  const graph::GraphNode& f = b.g.nodes[0];
  std::vector<Tensor> in;
  for (int id : f.inputs)
    in.push_back(args[static_cast<size_t>(std::find(b.g.inputs.begin(), b.g.inputs.end(), id) - b.g.inputs.begin())]);
  // p', m', v' (the graph's outputs 0, 1, 2) written over p, m, v, as an optimizer's memory plan
  // does; the node's outputs come in its own order.
  std::vector<Tensor> buffers = {args[0], args[2], args[3]}, out;
  std::vector<size_t> pos;
  for (int id : f.outputs) {
    pos.push_back(static_cast<size_t>(std::find(b.g.outputs.begin(), b.g.outputs.end(), id) - b.g.outputs.begin()));
    out.push_back(buffers[pos.back()]);
  }
  graph::run_fused(f, in, out);
  std::vector<Tensor> want = b.expected();
  for (size_t k = 0; k < 3; ++k) {
    EXPECT_TRUE(out[k].is_same(buffers[pos[k]]));
    expect_bitwise(buffers[pos[k]], want[pos[k]], "in-place output " + std::to_string(pos[k]));
  }
}

TEST(Fuse, InPlaceOutputWrittenBeforeItsInputIsReadAgain) {
  // a = exp(x) goes over x's buffer, then b = a + x still reads x: the block's writes must wait.
  Tensor x = rand({5000}, 46);
  Builder b;
  int xi = b.input(x);
  int a = b.op(OpId::Exp, {xi});
  b.ret(a);
  b.ret(b.op(OpId::Add, {a, xi}));
  graph::fuse_elementwise(b.g);
  ASSERT_EQ(b.g.nodes.size(), 1u);
  Tensor buf = x.clone();
  std::vector<Tensor> in = {buf}, out = {buf, Tensor()};
  graph::run_fused(b.g.nodes[0], in, out);
  expect_bitwise(buf, b.expected()[0], "exp(x) over x");
  expect_bitwise(out[1], b.expected()[1], "exp(x) + x");
}

TEST(Fuse, ValueUsedOutsideTheGroupBecomesAnOutput) {
  Tensor x = rand({6, 8}, 18), w = rand({8, 8}, 19);
  Builder b;
  int xi = b.input(x), wi = b.input(w);
  int y = b.op(OpId::Relu, {b.op(OpId::Mul, {xi, b.scalar(2.0)})});
  int z = b.op(OpId::Add, {y, b.scalar(1.0)});
  int mm = b.op(OpId::Matmul, {y, wi});  // reads y: y must leave the fused node
  b.ret(z);
  b.ret(mm);
  EXPECT_EQ(graph::fuse_elementwise(b.g), 3);
  b.g.verify();
  ASSERT_EQ(count_fused(b.g), 1) << b.g.str();
  const graph::GraphNode& f =
      *std::find_if(b.g.nodes.begin(), b.g.nodes.end(), [](const auto& n) { return n.fused != nullptr; });
  EXPECT_EQ(f.outputs.size(), 2u);  // y (for the matmul) and z (returned)
  expect_outputs_match(b, run_graph(b.g, b.inputs()));
}

TEST(Fuse, MatmulSplitsGroupsAndANodeAfterAnOutsideReaderStartsANewGroup) {
  Tensor x = rand({8, 8}, 20), w = rand({8, 8}, 21);
  Builder b;
  int xi = b.input(x), wi = b.input(w);
  int a = b.op(OpId::Add, {b.op(OpId::Tanh, {xi}), b.scalar(1.0)});
  int h = b.op(OpId::Matmul, {a, wi});
  // c reads a, but a's group was already read by the matmul (which c also needs): c cannot join
  // it without running before the matmul.
  int c = b.op(OpId::Mul, {b.op(OpId::Sigmoid, {h}), a});
  b.ret(b.op(OpId::Neg, {c}));
  EXPECT_EQ(graph::fuse_elementwise(b.g), 5);
  b.g.verify();
  EXPECT_EQ(count_fused(b.g), 2) << b.g.str();
  EXPECT_EQ(b.g.nodes.size(), 3u) << b.g.str();  // fused, matmul, fused
  EXPECT_EQ(b.g.nodes[1].op, OpId::Matmul);
  expect_outputs_match(b, run_graph(b.g, b.inputs()));
}

TEST(Fuse, SingleElementwiseNodesAndOtherShapesStayUnfused) {
  Tensor x = rand({4, 6}, 22);
  Builder b;
  int xi = b.input(x);
  int s = b.op(OpId::Max, {b.op(OpId::Exp, {xi})}, ts::ReduceAttrs{{1}, false});  // exp alone; max is not fused
  b.ret(b.op(OpId::Log, {s}));                                                    // [4]: another shape, alone
  EXPECT_EQ(graph::fuse_elementwise(b.g), 0);
  EXPECT_EQ(count_fused(b.g), 0);
  EXPECT_EQ(b.g.nodes.size(), 3u);
}

TEST(Fuse, WhereOverABoolComparisonAndCastsFuse) {
  Tensor x = rand({3000}, 23);
  Builder b;
  int xi = b.input(x);
  int pos = b.op(OpId::Gt, {xi, b.scalar(0.0)});
  int leaky = b.op(OpId::Where, {pos, xi, b.op(OpId::Mul, {xi, b.scalar(0.1)})});
  int d = b.op(OpId::Cast, {leaky}, ts::CastAttrs{DType::Float64});
  int e = b.op(OpId::Mul, {d, b.scalar(3.0, DType::Float64)});
  int i = b.op(OpId::Cast, {b.op(OpId::Floor, {e})}, ts::CastAttrs{DType::Int32});
  b.ret(e);
  b.ret(b.op(OpId::Mul, {i, i}));
  EXPECT_EQ(graph::fuse_elementwise(b.g), 8);
  b.g.verify();
  ASSERT_EQ(b.g.nodes.size(), 1u) << b.g.str();
  expect_outputs_match(b, run_graph(b.g, b.inputs()));
}

TEST(Fuse, EmptyZeroDimAndFloat64Tensors) {
  {
    Builder b = chain(rand({0, 5}, 24), rand({0, 5}, 25), rand({5}, 26));
    EXPECT_EQ(graph::fuse_elementwise(b.g), 4);
    std::vector<Tensor> got = run_graph(b.g, b.inputs());
    EXPECT_EQ(got[0].shape(), ts::Shape({0, 5}));
    expect_outputs_match(b, got);
  }
  {
    Builder b = chain(rand({}, 27), rand({}, 28), rand({}, 29));
    EXPECT_EQ(graph::fuse_elementwise(b.g), 4);
    expect_outputs_match(b, run_graph(b.g, b.inputs()));
  }
  {
    Builder b = chain(rand({3, 2049}, 30, DType::Float64), rand({3, 2049}, 31, DType::Float64),
                      rand({2049}, 32, DType::Float64));
    EXPECT_EQ(graph::fuse_elementwise(b.g), 4);
    expect_outputs_match(b, run_graph(b.g, b.inputs()));
  }
  for (DType t : {DType::Float16, DType::BFloat16}) {  // computed in float32 per step, as eager does
    Builder b = chain(rand({5, 700}, 47, t), rand({5, 700}, 48, t), rand({700}, 49, t));
    EXPECT_EQ(graph::fuse_elementwise(b.g), 4);
    expect_outputs_match(b, run_graph(b.g, b.inputs()));
  }
}

TEST(Fuse, MillionElementsRunInParallelBlocks) {
  const int saved = ts::get_num_threads();
  ts::set_num_threads(4);
  Tensor p = rand({1000, 1000}, 33), g = rand({1000, 1000}, 34), m = rand({1000, 1000}, 35),
         v = rand({1000, 1000}, 36, DType::Float32, 0, 1);
  Builder b = adam(p, g, m, v);
  graph::fuse_elementwise(b.g);
  ASSERT_EQ(b.g.nodes.size(), 1u);
  std::vector<Tensor> got = run_graph(b.g, b.inputs());
  ts::set_num_threads(saved);
  expect_outputs_match(b, got);
}

TEST(Fuse, BackendWithoutEvaluatorRunsStepByStep) {
  Tensor x = rand({20, 30}, 37), bias = rand({30}, 38);
  Builder b = chain(x, rand({20, 30}, 39), bias);
  graph::fuse_elementwise(b.g);
  std::vector<Tensor> got, pre;
  without_evaluator([&] {
    got = run_graph(b.g, b.inputs());
    pre = {ts::empty({20, 30})};
    graph::run_fused(b.g.nodes[0], b.inputs(), pre);  // preallocated output: copied into
  });
  expect_outputs_match(b, got);
  expect_outputs_match(b, pre);
}

TEST(Fuse, IntegerRemainderByZeroRaisesLikeEager) {
  Tensor a = ts::arange(0, 100, 1, DType::Int32), z = ts::zeros({100}, DType::Int32);
  Builder b;
  int ai = b.input(a), zi = b.input(ts::ones({100}, DType::Int32));
  b.ret(b.op(OpId::Remainder, {b.op(OpId::Add, {ai, b.scalar(1.0, DType::Int32)}), zi}));
  EXPECT_EQ(graph::fuse_elementwise(b.g), 2);
  expect_outputs_match(b, run_graph(b.g, b.inputs()));
  ts::testing::expect_error<ts::ValueError>([&] { run_graph(b.g, {a, z}); }, {"[remainder]", "division by zero"});
}

TEST(Fuse, RunFusedRejectsMismatchedArguments) {
  Builder b = chain(rand({4, 4}, 40), rand({4, 4}, 41), rand({4}, 42));
  graph::fuse_elementwise(b.g);
  const graph::GraphNode& f = b.g.nodes[0];
  std::vector<Tensor> out(1);
  std::vector<Tensor> two = {rand({4, 4}, 1), rand({4, 4}, 2)};
  ts::testing::expect_error<ts::ValueError>([&] { graph::run_fused(f, two, out); }, {"[run_fused]", "3 inputs"});
  std::vector<Tensor> bad = {rand({4, 4}, 1), rand({4, 4}, 2), rand({5}, 3)};
  ts::testing::expect_error<ts::ValueError>([&] { graph::run_fused(f, bad, out); }, {"[run_fused]", "[5]", "[4,4]"});
  std::vector<Tensor> wrong_out = {ts::empty({4, 4}, DType::Float64)};
  ts::testing::expect_error<ts::ValueError>([&] { graph::run_fused(f, b.inputs(), wrong_out); },
                                            {"[run_fused]", "output 0"});
  graph::GraphNode plain{OpId::Exp, ts::NoAttrs{}, {0}, {1}, {}, {}};
  ts::testing::expect_error<ts::ValueError>([&] { graph::run_fused(plain, two, out); },
                                            {"[run_fused]", "no fused program"});
}

TEST(Fuse, VerifyRejectsAProgramThatDisagreesWithItsNode) {
  Builder b = chain(rand({4, 4}, 43), rand({4, 4}, 44), rand({4}, 45));
  graph::fuse_elementwise(b.g);
  b.g.verify();
  b.g.nodes[0].inputs.pop_back();
  ts::testing::expect_error<ts::ValueError>([&] { b.g.verify(); }, {"[graph.verify]", "fused node 0"});
}

// ----------------------------------------------------------------------------- reductions
namespace {

int count_op(const graph::Graph& g, OpId op) {
  return static_cast<int>(
      std::count_if(g.nodes.begin(), g.nodes.end(), [&](const auto& n) { return !n.fused && n.op == op; }));
}

}  // namespace

TEST(FuseReduce, ReduceLayoutsOfTrailingLeadingAndMiddleAxes) {
  graph::ReduceLayout l;
  ASSERT_TRUE(graph::reduce_layout({16, 4, 128, 128}, {3}, l));  // softmax's row sum
  EXPECT_EQ(l.kind, graph::ReduceLayout::Kind::Rows);
  EXPECT_EQ(l.len, 128);
  ASSERT_TRUE(graph::reduce_layout({16, 128, 256}, {0, 1}, l));  // a bias gradient
  EXPECT_EQ(l.kind, graph::ReduceLayout::Kind::Columns);
  EXPECT_EQ(l.inner, 256);
  ASSERT_TRUE(graph::reduce_layout({8, 1, 5}, {0, 1, 2}, l));  // everything: one column
  EXPECT_EQ(l.kind, graph::ReduceLayout::Kind::Columns);
  EXPECT_EQ(l.inner, 1);
  ASSERT_TRUE(graph::reduce_layout({8, 5, 1}, {1, 2}, l));  // size-1 axes do not count
  EXPECT_EQ(l.kind, graph::ReduceLayout::Kind::Rows);
  EXPECT_EQ(l.len, 5);
  EXPECT_FALSE(graph::reduce_layout({4, 5, 6}, {1}, l));     // a middle axis
  EXPECT_FALSE(graph::reduce_layout({4, 5, 6}, {0, 2}, l));  // both ends
}

TEST(FuseReduce, RowSumsJoinTheirProducerAndTheirReaderStaysOutside) {
  // softmax's backward: y * (g - sum(g * y)). The product and its row sum make one pass; the
  // subtraction needs the finished sum, so it starts another group.
  Tensor y = rand({6, 7, 50}, 60), gr = rand({6, 7, 50}, 61);
  Builder b;
  int yi = b.input(y), gi = b.input(gr);
  int gy = b.op(OpId::Mul, {gi, yi});
  int s = b.op(OpId::Sum, {gy}, ts::ReduceAttrs{{2}, true});
  int d = b.op(OpId::Sub, {gi, b.op(OpId::Expand, {s}, ts::ShapeAttrs{{6, 7, 50}})});
  b.ret(b.op(OpId::Mul, {yi, d}));
  b.ret(s);
  EXPECT_EQ(graph::fuse_elementwise(b.g), 4);  // {mul, sum} and {sub, mul}
  b.g.verify();
  ASSERT_EQ(count_fused(b.g), 2) << b.g.str();
  const graph::FusedProgram& first = *b.g.nodes[0].fused;
  ASSERT_EQ(first.steps.size(), 2u) << b.g.str();
  EXPECT_TRUE(first.steps[1].reduction());
  EXPECT_EQ(first.outputs.size(), 1u) << "g * y is read by its sum only: never written";
  EXPECT_NE(b.g.str().find("sum(s0){axes=[2]}"), std::string::npos) << b.g.str();
  expect_outputs_match(b, run_graph(b.g, b.inputs()));  // row sums: bit for bit
}

TEST(FuseReduce, ColumnSumsOverManyLeavesEqualEagerWithAnyThreadCount) {
  // A bias gradient's column sum of a fused chain (2400 rows of 72: blocks of 28 rows, leaves of
  // 16 across them, a partial last leaf) and a sum of a group input, in float32 and float64:
  // bit for bit eager's sums, with one thread and with two.
  for (DType dt : {DType::Float32, DType::Float64}) {
    Tensor x = rand({8, 300, 72}, 62, dt), w = rand({8, 300, 72}, 63, dt);
    Builder b;
    int xi = b.input(x), wi = b.input(w);
    int prod = b.op(OpId::Mul, {b.op(OpId::Tanh, {xi}), wi});
    b.ret(b.op(OpId::Sum, {prod}, ts::ReduceAttrs{{0, 1}, false}));
    b.ret(b.op(OpId::Sum, {xi}, ts::ReduceAttrs{{0, 1}, true}));  // joins: the group reads x
    EXPECT_EQ(graph::fuse_elementwise(b.g), 4);
    b.g.verify();
    ASSERT_EQ(b.g.nodes.size(), 1u) << b.g.str();
    EXPECT_EQ(b.g.nodes[0].outputs.size(), 2u);
    const int saved = ts::get_num_threads();
    for (int threads : {1, 2, 3}) {
      ts::set_num_threads(threads);
      std::vector<Tensor> got = run_graph(b.g, b.inputs());
      ts::set_num_threads(saved);
      expect_outputs_match(b, got);
    }
  }
}

TEST(FuseReduce, SumsThatCannotFuseStayNodes) {
  Tensor x = rand({4, 5, 6}, 64), big = rand({2, graph::kMaxFusedReduceRun + 1}, 65);
  Builder b;
  int xi = b.input(x), bi = b.input(big);
  int e = b.op(OpId::Exp, {xi});
  b.ret(b.op(OpId::Sum, {e}, ts::ReduceAttrs{{1}, false}));  // a middle axis
  int i = b.op(OpId::Cast, {e}, ts::CastAttrs{DType::Int32});
  b.ret(b.op(OpId::Sum, {i}, ts::ReduceAttrs{{2}, false}));  // integers
  int eb = b.op(OpId::Exp, {bi});
  b.ret(b.op(OpId::Sum, {b.op(OpId::Neg, {eb})}, ts::ReduceAttrs{{1}, false}));  // a row too long
  int sq = b.op(OpId::Mul, {xi, xi});
  b.ret(b.op(OpId::Sum, {sq}, ts::ReduceAttrs{{0, 1, 2}, false}));  // a float32 full sum (one column)
  b.ret(b.op(OpId::Sum, {sq}, ts::ReduceAttrs{{0, 1}, false}));     // 6 float32 columns
  graph::fuse_elementwise(b.g);
  b.g.verify();
  EXPECT_EQ(count_op(b.g, OpId::Sum), 5) << b.g.str();
  expect_outputs_match(b, run_graph(b.g, b.inputs()));
}

TEST(FuseReduce, NarrowFloat64SumsFuseToFloat64AccuracyWithAnyThreadCount) {
  // A gradient norm's sum of squares in float64 (a full sum) and a 6-column float64 sum join
  // their chains: summed per block and the blocks pairwise, so they match eager to float64
  // rounding (not its order), and give the same bits with 1, 2 and 3 threads.
  Tensor g = rand({300, 1000}, 66), h = rand({1200, 6}, 67);
  Builder b;
  int gi = b.input(g), hi = b.input(h);
  int g64 = b.op(OpId::Cast, {gi}, ts::CastAttrs{DType::Float64});
  b.ret(b.op(OpId::Sum, {b.op(OpId::Mul, {g64, g64})}, ts::ReduceAttrs{{0, 1}, false}));
  int h64 = b.op(OpId::Cast, {hi}, ts::CastAttrs{DType::Float64});
  b.ret(b.op(OpId::Sum, {b.op(OpId::Exp, {h64})}, ts::ReduceAttrs{{0}, false}));
  EXPECT_EQ(graph::fuse_elementwise(b.g), 6);
  b.g.verify();
  EXPECT_EQ(count_op(b.g, OpId::Sum), 0) << b.g.str();
  ASSERT_EQ(count_fused(b.g), 2) << b.g.str();
  for (const auto& n : b.g.nodes) EXPECT_EQ(n.fused->outputs.size(), 1u) << "the float64 chain is never written";
  const std::vector<Tensor> want = b.expected();
  const int saved = ts::get_num_threads();
  std::vector<std::vector<Tensor>> got;
  for (int threads : {1, 2, 3}) {
    ts::set_num_threads(threads);
    got.push_back(run_graph(b.g, b.inputs()));
    ts::set_num_threads(saved);
  }
  for (size_t k = 0; k < want.size(); ++k) {
    EXPECT_TRUE(ts::allclose(got[0][k], want[k], 1e-14, 0)) << k;
    EXPECT_TRUE(ts::equal(got[1][k], got[0][k])) << k;
    EXPECT_TRUE(ts::equal(got[2][k], got[0][k])) << k;
  }
}

TEST(FuseReduce, AReaderOfASumStartsAnotherGroup) {
  // softmax-like: e2 / sum(e2) + exp(x). The division reads the finished sum, so it cannot join
  // the sum's group; it starts a new one, which the addition joins. No step reads a reduction.
  Tensor x = rand({30, 20}, 66);
  Builder b;
  int xi = b.input(x);
  int e = b.op(OpId::Exp, {xi});
  int e2 = b.op(OpId::Mul, {e, b.scalar(2.0)});
  int s = b.op(OpId::Sum, {e2}, ts::ReduceAttrs{{1}, true});
  int norm = b.op(OpId::Div, {e2, b.op(OpId::Expand, {s}, ts::ShapeAttrs{{30, 20}})});
  b.ret(b.op(OpId::Add, {norm, e}));
  graph::fuse_elementwise(b.g);
  b.g.verify();
  expect_outputs_match(b, run_graph(b.g, b.inputs()));
  for (const auto& n : b.g.nodes)
    if (n.fused)
      for (const auto& st : n.fused->steps)
        for (const auto& r : st.args)
          if (r.kind == graph::FusedRef::Kind::Step)
            EXPECT_FALSE(n.fused->steps[static_cast<size_t>(r.index)].reduction());
}

TEST(FuseReduce, StepByStepFallbackAndPreallocatedOutputs) {
  Tensor x = rand({64, 33}, 67), w = rand({64, 33}, 68);
  Builder b;
  int xi = b.input(x), wi = b.input(w);
  int prod = b.op(OpId::Mul, {xi, wi});
  b.ret(prod);
  b.ret(b.op(OpId::Sum, {prod}, ts::ReduceAttrs{{1}, false}));
  ASSERT_EQ(graph::fuse_elementwise(b.g), 2);
  ASSERT_EQ(b.g.nodes.size(), 1u);
  std::vector<Tensor> pre = {ts::empty({64, 33}), ts::empty({64})};
  graph::run_fused(b.g.nodes[0], b.inputs(), pre);
  expect_outputs_match(b, pre);
  std::vector<Tensor> wrong = {ts::empty({64, 33}), ts::empty({64, 33})};
  ts::testing::expect_error<ts::ValueError>([&] { graph::run_fused(b.g.nodes[0], b.inputs(), wrong); },
                                            {"[run_fused]", "output 1", "[64]"});
  std::vector<Tensor> got;
  without_evaluator([&] { got = run_graph(b.g, b.inputs()); });
  expect_outputs_match(b, got);
}

// Layer norm's statistics and normalization without Expand views (binary ops broadcast [R, 1]
// natively, as the ops API records them): sum, mean, centred values, variance, rstd, the scaled
// result, with rstd returned and a column sum of the result.
Builder layer_norm_rows(const Tensor& x, const Tensor& w) {
  Builder b;
  const int xi = b.input(x), wi = b.input(w);
  const double len = static_cast<double>(x.shape().back());
  const ts::ReduceAttrs rows{{1}, true};
  const int mean = b.op(OpId::Div, {b.op(OpId::Sum, {xi}, rows), b.scalar(len, x.dtype())});
  const int xc = b.op(OpId::Sub, {xi, mean});
  const int var = b.op(OpId::Div, {b.op(OpId::Sum, {b.op(OpId::Mul, {xc, xc})}, rows), b.scalar(len, x.dtype())});
  const int rstd = b.op(OpId::Rsqrt, {b.op(OpId::Add, {var, b.scalar(1e-5, x.dtype())})});
  const int y = b.op(OpId::Mul, {b.op(OpId::Mul, {xc, rstd}), wi});
  b.ret(y);
  b.ret(rstd);
  b.ret(b.op(OpId::Sum, {y}, ts::ReduceAttrs{{0}, false}));
  return b;
}

TEST(FuseRows, RowSumsFeedRowStepsAndBroadcastReadersInOnePass) {
  for (DType dt : {DType::Float32, DType::Float64}) {
    Builder b = layer_norm_rows(rand({300, 96}, 70, dt), rand({96}, 71, dt));
    EXPECT_EQ(graph::fuse_elementwise(b.g), 11) << b.g.str();
    b.g.verify();
    ASSERT_EQ(b.g.nodes.size(), 1u) << b.g.str();
    const graph::FusedProgram& p = *b.g.nodes[0].fused;
    int row_steps = 0;
    for (const auto& st : p.steps) row_steps += st.row;
    EXPECT_EQ(row_steps, 4) << graph::fused_str(p);  // two means' divisions, + eps, rsqrt
    int row_outputs = 0;
    for (size_t k = 0; k < p.outputs.size(); ++k) row_outputs += graph::fused_output_shape(p, k) == ts::Shape({300, 1});
    EXPECT_EQ(row_outputs, 1);
    const int saved = ts::get_num_threads();
    for (int threads : {1, 2, 3}) {  // blocks of whole rows; any thread count, bit for bit eager
      ts::set_num_threads(threads);
      std::vector<Tensor> got = run_graph(b.g, b.inputs());
      ts::set_num_threads(saved);
      expect_outputs_match(b, got);
    }
    std::vector<Tensor> got;  // the step-by-step fallback
    without_evaluator([&] { got = run_graph(b.g, b.inputs()); });
    expect_outputs_match(b, got);
  }
}

TEST(FuseRows, SumsAndRowValuesTheGroupCannotReadCloseIt) {
  Tensor x = rand({40, 32}, 72), other = rand({40, 1}, 73), narrow = rand({40, 8}, 74);
  Builder b;
  const int xi = b.input(x), oi = b.input(other), ni = b.input(narrow);
  const int e = b.op(OpId::Exp, {xi});
  // A row sum without keepdims ([40]): its reader must wait for the whole pass.
  const int flat = b.op(OpId::Sum, {e}, ts::ReduceAttrs{{1}, false});
  b.ret(b.op(OpId::Neg, {flat}));
  // A [40, 1] node with an operand from outside the group is no row step, so the product
  // reading it starts another group.
  const int s = b.op(OpId::Sum, {b.op(OpId::Mul, {e, e})}, ts::ReduceAttrs{{1}, true});
  b.ret(b.op(OpId::Mul, {e, b.op(OpId::Div, {s, oi})}));
  // Rows of 8 are too short to be read inside a group (kMinRowReadLen).
  const int sn = b.op(OpId::Sum, {b.op(OpId::Exp, {ni})}, ts::ReduceAttrs{{1}, true});
  b.ret(b.op(OpId::Sub, {b.op(OpId::Exp, {ni}), sn}));
  graph::fuse_elementwise(b.g);
  b.g.verify();
  for (const auto& n : b.g.nodes) {
    if (!n.fused) continue;
    for (size_t st = 0; st < n.fused->steps.size(); ++st)
      for (const auto& r : n.fused->steps[st].args)
        if (r.kind == graph::FusedRef::Kind::Step && n.fused->steps[static_cast<size_t>(r.index)].reduction())
          ADD_FAILURE() << "a step reads a sum: " << graph::fused_str(*n.fused);
  }
  expect_outputs_match(b, run_graph(b.g, b.inputs()));
}

TEST(FuseRows, VerifyRejectsRowStepsReadingFullValuesAndReadsOfColumnSums) {
  Builder b = layer_norm_rows(rand({20, 64}, 75), rand({64}, 76));
  graph::fuse_elementwise(b.g);
  ASSERT_EQ(b.g.nodes.size(), 1u);
  auto program = std::make_shared<graph::FusedProgram>(*b.g.nodes[0].fused);
  b.g.nodes[0].fused = program;
  b.g.verify();
  for (auto& st : program->steps)  // a row step reading the program input (full shape)
    if (st.row) {
      const auto saved = st.args[0];
      st.args[0] = {graph::FusedRef::Kind::Input, 0};
      ts::testing::expect_error<ts::ValueError>([&] { b.g.verify(); }, {"row step", "not one per row"});
      st.args[0] = saved;
      break;
    }
  b.g.verify();
  const int column = static_cast<int>(program->steps.size()) - 1;  // the column sum, last
  ASSERT_TRUE(program->steps.back().reduction());
  graph::FusedStep reader = program->steps[0];
  reader.op = OpId::Neg;
  reader.attrs = ts::NoAttrs{};
  reader.reduced_shape = {};
  reader.row = false;
  reader.args = {{graph::FusedRef::Kind::Step, column}};
  program->steps.push_back(reader);
  ts::testing::expect_error<ts::ValueError>([&] { b.g.verify(); }, {"reads a reduction step that is not a row sum"});
}

// Not a check: the timing for the report. Run with
//   tessera_tests --gtest_also_run_disabled_tests --gtest_filter='*AdamTiming*'
TEST(Fuse, DISABLED_AdamTiming) {
  const int saved = ts::get_num_threads();
  ts::set_num_threads(2);
  for (int64_t n : {int64_t{535000}, int64_t{3300000}}) {
    Tensor p = rand({n}, 1), g = rand({n}, 2), m = rand({n}, 3), v = rand({n}, 4, DType::Float32, 0, 1);
    Builder b = adam(p, g, m, v);
    graph::Graph eager = b.g;
    graph::fuse_elementwise(b.g);
    std::vector<Tensor> in = b.inputs();
    auto median_ms = [&](const graph::Graph& gr) {
      std::vector<double> t;
      for (int r = 0; r < 15; ++r) {
        auto t0 = std::chrono::steady_clock::now();
        run_graph(gr, in);
        t.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
      }
      std::sort(t.begin(), t.end());
      return t[t.size() / 2];
    };
    double e = median_ms(eager), f = median_ms(b.g);
    std::printf("adam %lld float32 elements, 2 threads: eager op-by-op %.3f ms, fused %.3f ms (%.2fx)\n",
                static_cast<long long>(n), e, f, e / f);
  }
  ts::set_num_threads(saved);
}

TEST(Fuse, PaddedRowOutputsAreWrittenAtTheirPitch) {
  // Graph mode's pad_row_pitches hands the evaluator outputs whose rows are padded: a step's
  // block is written row segment by row segment (a column sum of it then reads the padded
  // rows), or, when a later step other than such a sum reads it, computed in scratch and
  // copied out row by row. Rows of 64 elements padded to 80; 300 rows span several blocks.
  Tensor x = rand({300, 64}, 70);
  Builder b;
  int xi = b.input(x);
  int m = b.op(OpId::Mul, {xi, b.op(OpId::Exp, {xi})});
  b.ret(m);
  b.ret(b.op(OpId::Sum, {m}, ts::ReduceAttrs{{0}, false}));
  int t = b.op(OpId::Tanh, {xi});
  b.ret(t);
  b.ret(b.op(OpId::Mul, {t, b.scalar(2.0)}));
  graph::fuse_elementwise(b.g);
  ASSERT_EQ(count_fused(b.g), 2) << b.g.str();  // (exp, mul, column sum) and (tanh, mul)
  for (const graph::GraphNode& node : b.g.nodes) {
    std::vector<Tensor> out;
    for (int v : node.outputs) {
      const graph::Value& val = b.g.values[static_cast<size_t>(v)];
      out.push_back(val.shape == ts::Shape{300, 64} ? ts::slice(ts::full({300, 80}, 7.0), 1, 0, 64)  // padded rows
                                                    : ts::empty(val.shape));
    }
    graph::run_fused(node, b.inputs(), out);
    for (size_t k = 0; k < out.size(); ++k) {
      const auto at = std::find(b.g.outputs.begin(), b.g.outputs.end(), node.outputs[k]);
      ASSERT_NE(at, b.g.outputs.end());
      EXPECT_TRUE(ts::equal(out[k], b.expected()[static_cast<size_t>(at - b.g.outputs.begin())])) << k;
      if (out[k].shape() != ts::Shape{300, 64}) continue;
      EXPECT_EQ(graph::padded_row_pitch(out[k]), 80);
      const float* row = out[k].data<float>();  // the padding is left alone
      for (int64_t r = 0; r < 300; r += 37) EXPECT_EQ(row[r * 80 + 64], 7.0f) << r;
    }
  }
}
