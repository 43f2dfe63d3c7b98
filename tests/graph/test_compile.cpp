// compile(): traced graphs give eager's results, retraces are counted per signature, dead code
// and common subexpressions are removed, data-dependent functions fall back to eager, and
// compile composes with grad.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "core/dispatch.h"
#include "graph/memory_plan.h"
#include "graph_builder.h"
#include "harness/harness.h"
#include "tessera/tessera.h"

namespace ts = tessera;
namespace graph = tessera::graph;
using ts::OpId;
using ts::TensorList;

namespace {

ts::Tensor rand(std::initializer_list<int64_t> shape, uint64_t seed) {
  ts::Generator g(seed);
  return ts::uniform(shape, -1.0, 1.0, g);
}

TensorList mlp(const TensorList& in) {
  const auto &x = in[0], &w1 = in[1], &w2 = in[2];
  ts::Tensor h = ts::relu(ts::matmul(x, w1));
  return {ts::sum(ts::tanh(ts::matmul(h, w2)) * 0.5, {1}), h.transpose(0, 1)};
}

size_t count(const std::string& text, const std::string& what) {
  size_t n = 0;
  for (size_t p = text.find(what); p != std::string::npos; p = text.find(what, p + 1)) ++n;
  return n;
}

}  // namespace

TEST(Compile, GivesEagerResultsBitForBit) {
  auto f = ts::compile(mlp);
  TensorList in = {rand({8, 16}, 1), rand({16, 32}, 2), rand({32, 4}, 3)};
  TensorList want = mlp(in);
  for (int call = 0; call < 2; ++call) {  // traced, then cached
    TensorList got = f(in);
    ASSERT_EQ(got.size(), 2u);
    EXPECT_TRUE(ts::equal(got[0], want[0]));
    EXPECT_TRUE(ts::equal(got[1], want[1]));
    EXPECT_EQ(got[1].shape(), (ts::Shape{32, 8}));
  }
  EXPECT_EQ(f.stats().traces, 1);
  EXPECT_EQ(f.stats().cache_hits, 1);
  EXPECT_NE(f.graph_text().find("matmul"), std::string::npos);
}

TEST(Compile, CountsRetracesPerSignatureAndEvictsBeyondTheLimit) {
  auto f = ts::compile([](const TensorList& in) { return TensorList{ts::exp(in[0]) + 1.0}; }, {.cache_limit = 2});
  auto a = rand({4, 4}, 1), b = rand({2, 3}, 2), c = rand({5}, 3);
  f({a});
  f({a});
  EXPECT_EQ(f.stats().traces, 1);
  f({b});  // new shape: retrace
  EXPECT_EQ(f.stats().traces, 2);
  f({a.to(ts::DType::Float64)});  // new dtype: retrace, evicts b (least recently used)
  EXPECT_EQ(f.stats().traces, 3);
  EXPECT_EQ(f.stats().evictions, 1);
  f({a.transpose(0, 1)});  // same shape, other strides: retrace
  EXPECT_EQ(f.stats().traces, 4);
  f({b});  // evicted earlier: traced again
  EXPECT_EQ(f.stats().traces, 5);
  auto got = f({c});
  EXPECT_TRUE(ts::allclose(got[0], ts::exp(c) + 1.0, 0, 0));
  EXPECT_EQ(f.stats().calls, 7);
  EXPECT_EQ(f.stats().cache_hits, 1);
}

TEST(Compile, RemovesDeadCodeAndCommonSubexpressions) {
  auto f = ts::compile(
      [](const TensorList& in) {
        ts::Tensor unused = ts::log(ts::abs(in[0]) + 1.0);  // never returned
        (void)unused;
        ts::Tensor s1 = ts::sin(in[0]), s2 = ts::sin(in[0]);  // the same value twice
        return TensorList{s1 * ts::cos(in[0]) + s2 * ts::cos(in[0])};
      },
      {.fuse = false});  // fusion would merge the elementwise nodes this test counts
  auto x = rand({3, 5}, 4);
  auto got = f({x});
  std::string ir = f.graph_text();
  EXPECT_EQ(count(ir, "= log("), 0u) << ir;
  EXPECT_EQ(count(ir, "= abs("), 0u) << ir;
  EXPECT_EQ(count(ir, "= sin("), 1u) << ir;
  EXPECT_EQ(count(ir, "= cos("), 1u) << ir;
  EXPECT_EQ(count(ir, "= mul("), 1u) << ir;  // s1*cos == s2*cos once sin is merged
  EXPECT_GE(f.stats().nodes_removed, 5);
  EXPECT_TRUE(ts::allclose(got[0], ts::sin(x) * ts::cos(x) * 2.0, 1e-6, 1e-6));
}

TEST(Compile, DataDependentFunctionsRunEagerly) {
  auto f = ts::compile([](const TensorList& in) {
    if (ts::sum(in[0]).item<float>() > 0) return TensorList{in[0] * 2.0};
    return TensorList{in[0] - 1.0};
  });
  auto pos = ts::ones({3}), neg = ts::full({3}, -1.0);
  EXPECT_TRUE(ts::equal(f({pos})[0], pos * 2.0));
  EXPECT_TRUE(ts::equal(f({neg})[0], neg - 1.0));  // same signature: still decided by the data
  EXPECT_EQ(f.stats().traces, 1);
  EXPECT_EQ(f.stats().eager_fallbacks, 2);
  EXPECT_EQ(f.graph_text(), "");
}

TEST(Compile, ComposesWithGradAndKeepsCapturedConstants) {
  auto w = rand({6, 3}, 7);  // captured, not an input: a constant of the graph
  auto loss = [w](const ts::Tensor& x) { return ts::sum(ts::tanh(ts::matmul(x, w))); };
  auto g = ts::compile([&](const TensorList& in) { return TensorList{ts::grad(loss)(in[0])}; });
  auto x = rand({4, 6}, 8);
  auto want = ts::grad(loss)(x);
  EXPECT_TRUE(ts::equal(g({x})[0], want));
  EXPECT_TRUE(ts::equal(g({x})[0], want));
  EXPECT_NE(g.graph_text().find("const %"), std::string::npos);
  // Under an outer transform the function runs eagerly (the transform needs its primitives).
  auto outer = ts::grad([&](const ts::Tensor& x2) { return ts::sum(g({x2})[0]); })(x);
  EXPECT_EQ(outer.shape(), x.shape());
  EXPECT_EQ(g.stats().eager_fallbacks, 1);
}

TEST(Compile, ShapeErrorsNameTheOpWhileTracing) {
  auto f = ts::compile([](const TensorList& in) { return TensorList{ts::matmul(in[0], in[1])}; });
  try {
    f({ts::ones({2, 3}), ts::ones({4, 5})});
    FAIL() << "expected ShapeError";
  } catch (const ts::ShapeError& e) {
    EXPECT_NE(std::string(e.what()).find("[matmul]"), std::string::npos) << e.what();
  }
}

TEST(GraphIR, NodesAreRecordedInExecutionOrder) {
  auto f = ts::compile([](const TensorList& in) { return TensorList{ts::exp(ts::neg(in[0]))}; }, {.fuse = false});
  f({ts::ones({2})});
  EXPECT_EQ(f.graph_nodes(), 2u);
  std::string ir = f.graph_text();
  EXPECT_LT(ir.find("= neg("), ir.find("= exp(")) << ir;
}

TEST(Compile, ViewsKeepTheirLayout) {
  // reshape of a transposed input cannot be a view (execution copies); slices and permutes are
  // views whose strides the trace must know for later ops.
  auto f = ts::compile([](const TensorList& in) {
    ts::Tensor t = in[0].transpose(0, 1);
    return TensorList{t.reshape({6}), ts::slice(t, 0, 1, 3) * 2.0, t};
  });
  auto x = rand({2, 3}, 9);
  for (int call = 0; call < 2; ++call) {
    auto got = f({x});
    EXPECT_TRUE(ts::equal(got[0], x.transpose(0, 1).reshape({6})));
    EXPECT_TRUE(ts::equal(got[1], ts::slice(x.transpose(0, 1), 0, 1, 3) * 2.0));
    EXPECT_TRUE(ts::equal(got[2], x.transpose(0, 1)));
  }
}

TEST(Compile, FoldsConstantsOnce) {
  auto w = rand({5, 3}, 11);  // captured: its transpose and scaling are computed at compile time
  auto f = ts::compile([w](const TensorList& in) {
    ts::Tensor wt = w.transpose(0, 1) * 2.0 + ts::ones({3, 5});
    return TensorList{ts::matmul(in[0], wt)};
  });
  auto x = rand({4, 3}, 12);
  auto want = ts::matmul(x, w.transpose(0, 1) * 2.0 + ts::ones({3, 5}));
  EXPECT_TRUE(ts::equal(f({x})[0], want));
  EXPECT_TRUE(ts::equal(f({x})[0], want));
  EXPECT_EQ(f.graph_nodes(), 1u) << f.graph_text();  // only the matmul runs per call
  EXPECT_EQ(f.stats().nodes_folded, 5);              // permute, the scalar 2 (a full), mul, ones (a full), add
}

TEST(Compile, DumpsEveryPass) {
  const std::string top = ::testing::TempDir() + "/tessera-compile-dump";
  const std::string dir = top + "/nested";  // created by compile
  std::filesystem::remove_all(top);
  auto f =
      ts::compile([](const TensorList& in) { return TensorList{ts::exp(in[0]) + ts::exp(in[0])}; }, {.dump_dir = dir});
  f({ts::ones({2, 2})});
  std::ifstream traced(dir + "/1-0-traced.txt"), cse(dir + "/1-2-cse.txt"), dot(dir + "/1-3-fold.dot");
  std::stringstream a, b, c;
  a << traced.rdbuf();
  b << cse.rdbuf();
  c << dot.rdbuf();
  EXPECT_EQ(count(a.str(), "= exp("), 2u) << a.str();
  EXPECT_EQ(count(b.str(), "= exp("), 1u) << b.str();
  EXPECT_NE(c.str().find("digraph tessera"), std::string::npos);
  EXPECT_NE(c.str().find("label=\"exp"), std::string::npos) << c.str();
  std::filesystem::remove_all(top);
}

TEST(Compile, UnwritableDumpDirectoryIsAClearError) {
  const std::string file = ::testing::TempDir() + "/tessera-dump-is-a-file";
  std::ofstream(file) << "x";
  auto f = ts::compile([](const TensorList& in) { return TensorList{ts::exp(in[0])}; }, {.dump_dir = file + "/sub"});
  try {
    f({ts::ones({2})});
    ADD_FAILURE() << "expected a ValueError";
  } catch (const ts::ValueError& e) {
    EXPECT_NE(std::string(e.what()).find("[compile] cannot create the graph dump directory"), std::string::npos)
        << e.what();
  }
  std::filesystem::remove(file);
}

TEST(Compile, SimplifiesAlgebraicIdentities) {
  auto f = ts::compile([](const TensorList& in) {
    ts::Tensor y = ts::neg(ts::neg(in[0] * 1.0 + 0.0)) / 1.0 - 0.0;
    y = y.transpose(0, 1).transpose(0, 1).reshape({6}).reshape({3, 2}).reshape({2, 3});
    ts::Tensor kept = in[0] * ts::ones({4, 2, 3});  // broadcasts: not an identity
    return TensorList{ts::exp(y), kept};
  });
  auto x = rand({2, 3}, 13);
  auto got = f({x});
  EXPECT_TRUE(ts::equal(got[0], ts::exp(x)));
  EXPECT_TRUE(ts::equal(got[1], x * ts::ones({4, 2, 3})));
  std::string ir = f.graph_text();
  EXPECT_EQ(count(ir, "= neg("), 0u) << ir;
  EXPECT_EQ(count(ir, "= permute("), 0u) << ir;
  EXPECT_EQ(count(ir, "= reshape("), 0u) << ir;
  EXPECT_EQ(count(ir, "= add("), 0u) << ir;
  EXPECT_EQ(count(ir, "= mul("), 1u) << ir;  // only the broadcasting one
  EXPECT_EQ(f.graph_nodes(), 2u) << ir;      // exp and that mul
  EXPECT_GE(f.stats().rewrites, 8);
}

TEST(Compile, TransposedMatmulResultIsComputedContiguously) {
  // permute(matmul(a, b)) -> matmul(permute(b), permute(a)): the weight-gradient pattern.
  auto body = [](const TensorList& in) { return TensorList{ts::matmul(in[0], in[1]).transpose(0, 1) * 2.0}; };
  auto f = ts::compile(body, {.fuse = false});
  TensorList in = {rand({5, 7}, 1), rand({7, 3}, 2)};
  TensorList got = f(in);
  EXPECT_TRUE(ts::allclose(got[0], body(in)[0], 1e-6, 1e-6));
  EXPECT_EQ(got[0].shape(), (ts::Shape{3, 5}));
  EXPECT_GE(f.stats().rewrites, 1);
  std::string ir = f.graph_text();
  // The matmul produces [3,5] itself (its result is no longer a transposed view).
  EXPECT_NE(ir.find("matmul("), std::string::npos) << ir;
  EXPECT_NE(ir.find(": float32[3,5]\n%"), std::string::npos) << ir;
}

TEST(Compile, HeadMergeMatmulWritesThePermutedLayout) {
  // reshape(permute(matmul)) merging attention heads: the matmul writes [B, T, H, D] order
  // itself, so the reshape is a view, and the values are eager's bit for bit.
  auto body = [](const TensorList& in) {
    ts::Tensor o = ts::matmul(in[0], in[1]).permute({0, 2, 1, 3}).reshape({2, 40, 72});
    return TensorList{o * 2.0, ts::sum(o)};
  };
  auto f = ts::compile(body);
  TensorList in = {rand({2, 3, 40, 16}, 4), rand({2, 3, 16, 24}, 5)};
  for (int call = 0; call < 2; ++call) {
    TensorList got = f(in), want = body(in);
    EXPECT_TRUE(ts::equal(got[0], want[0]));
    EXPECT_TRUE(ts::equal(got[1], want[1]));
  }
  EXPECT_GE(f.stats().rewrites, 1);
  // The merged heads returned as they are: the result is a view of the matmul's buffer, which
  // must not be arena memory the next call overwrites.
  auto merged = ts::compile([](const TensorList& x) {
    return TensorList{ts::matmul(x[0], x[1]).permute({0, 2, 1, 3}).reshape({2, 40, 72})};
  });
  TensorList other = {rand({2, 3, 40, 16}, 10), rand({2, 3, 16, 24}, 11)};
  ts::Tensor first = merged(in)[0];
  ts::Tensor second = merged(other)[0];
  EXPECT_TRUE(ts::equal(first, body(in)[0] / 2.0));
  EXPECT_TRUE(ts::equal(second, ts::matmul(other[0], other[1]).permute({0, 2, 1, 3}).reshape({2, 40, 72})));
  // Without a memory plan the pass does not run (the executor allocates outputs contiguously).
  auto unplanned = ts::compile(body, {.plan_memory = false});
  EXPECT_TRUE(ts::equal(unplanned(in)[0], body(in)[0]));
}

TEST(Compile, PermutedMatmulOutputLayoutIsSetOnlyWhereAReshapeReadsIt) {
  graph::testing::GraphBuilder b;
  const int a = b.input(rand({2, 3, 40, 16}, 6)), w = b.input(rand({2, 3, 16, 24}, 7));
  const int mm = b.op(OpId::Matmul, {a, w});
  const int p = b.permute(mm, {0, 2, 1, 3});
  const int r = b.reshape(p, {2, 40, 72});
  const int mm2 = b.op(OpId::Matmul, {a, w});
  const int p2 = b.permute(mm2, {0, 2, 1, 3});  // read by a sum: left as it is
  b.g.outputs = {r, b.op(OpId::Sum, {p2}, ts::ReduceAttrs{{1}, false})};
  EXPECT_EQ(graph::permute_matmul_outputs(b.g), 1);
  b.g.verify();
  const auto& v = b.g.values;
  EXPECT_TRUE(v[static_cast<size_t>(mm)].strided_output);
  EXPECT_EQ(v[static_cast<size_t>(mm)].strides, (ts::Strides{2880, 24, 72, 1}));
  EXPECT_EQ(v[static_cast<size_t>(p)].strides, ts::contiguous_strides(v[static_cast<size_t>(p)].shape));
  EXPECT_EQ(v[static_cast<size_t>(r)].strides, (ts::Strides{2880, 72, 1}));
  EXPECT_FALSE(v[static_cast<size_t>(mm2)].strided_output);
  EXPECT_EQ(graph::permute_matmul_outputs(b.g), 0);  // already placed
}

TEST(Compile, MatmulKernelWritesPermutedOutputsAndRejectsOtherLayouts) {
  ts::Tensor a = rand({2, 3, 40, 16}, 8), w = rand({2, 3, 16, 24}, 9);
  ts::Tensor out = ts::empty({2, 40, 3, 24}).permute({0, 2, 1, 3});
  ts::Tensor in[2] = {a, w};
  ts::detail::run_kernel(OpId::Matmul, in, ts::MatmulAttrs{}, std::span<ts::Tensor>(&out, 1));
  EXPECT_TRUE(ts::equal(out, ts::matmul(a, w)));
  ts::Tensor ints[2] = {ts::ones({2, 4, 4}, ts::DType::Int32), ts::ones({2, 4, 4}, ts::DType::Int32)};
  ts::Tensor bad = ts::empty({4, 2, 4}, ts::DType::Int32).permute({1, 0, 2});
  ts::testing::expect_error<ts::Error>(
      [&] { ts::detail::run_kernel(OpId::Matmul, ints, ts::MatmulAttrs{}, std::span<ts::Tensor>(&bad, 1)); },
      {"[matmul]", "strided"});
}

TEST(Compile, ConcatOfMatmulResultsIsWrittenInPlace) {
  // Parts of a concat computed by matmuls (one through the head-merge views) are written into
  // the concat's buffer; the concat node is skipped. Along the last and a middle axis.
  auto body = [](const TensorList& in) {
    ts::Tensor heads = ts::matmul(in[0], in[1]).permute({0, 2, 1, 3}).reshape({2, 40, 72});
    ts::Tensor plain = ts::matmul(in[2], in[3]);  // [2, 40, 24]
    ts::Tensor c = ts::concat({heads, plain}, 2);
    ts::Tensor rows = ts::concat({ts::matmul(in[2] * 2.0, in[3]), ts::matmul(in[4], in[3])}, 1);  // [2, 48, 24]
    return TensorList{ts::matmul(c, in[5]), ts::sum(rows * rows)};
  };
  TensorList in = {rand({2, 3, 40, 16}, 20), rand({2, 3, 16, 24}, 21), rand({2, 40, 16}, 22),
                   rand({16, 24}, 23),       rand({2, 8, 16}, 24),     rand({96, 8}, 25)};
  auto f = ts::compile(body);
  for (int call = 0; call < 2; ++call) {
    TensorList got = f(in), want = body(in);
    EXPECT_TRUE(ts::allclose(got[0], want[0], 1e-5, 1e-6));
    EXPECT_TRUE(ts::allclose(got[1], want[1], 1e-5, 1e-6));
  }
  auto placed = [](const std::string& text) {  // the dump marks "... : float32[...] in %c at k"
    int64_t n = 0;
    for (size_t at = text.find(" in %"); at != std::string::npos; at = text.find(" in %", at + 1)) ++n;
    return n;
  };
  EXPECT_EQ(placed(f.graph_text()), 4);
  auto unplanned = ts::compile(body, {.plan_memory = false});
  EXPECT_TRUE(ts::allclose(unplanned(in)[0], body(in)[0], 1e-5, 1e-6));
  EXPECT_EQ(placed(unplanned.graph_text()), 0);
}

TEST(Compile, ConcatPlacementNeedsEveryPartAMatmulReadOnlyThere) {
  auto build = [](int variant) {
    auto b = std::make_shared<graph::testing::GraphBuilder>();
    const int a = b->input(rand({2, 3, 40, 16}, 6)), w = b->input(rand({2, 3, 16, 24}, 7));
    const int x = b->input(rand({2, 40, 16}, 8)), v = b->input(rand({16, 24}, 9));
    const int mm = b->op(OpId::Matmul, {a, w});
    const int merged = b->reshape(b->permute(mm, {0, 2, 1, 3}), {2, 40, 72});
    const int mm2 = b->op(OpId::Matmul, {x, v});
    const int second = variant == 2 ? b->op(OpId::Add, {mm2, mm2}) : mm2;  // 2: not a matmul's
    const int c = b->op(OpId::Concat, {merged, second}, ts::AxisAttrs{2});
    const int s = b->op(OpId::Sum, {c}, ts::ReduceAttrs{{2}, false});
    b->g.outputs = {variant == 1 ? c : s};          // 1: the concat is returned
    if (variant == 3) b->g.outputs.push_back(mm2);  // 3: a part read elsewhere
    return std::make_tuple(b, mm, mm2, c);
  };
  auto [b, mm, mm2, c] = build(0);
  EXPECT_EQ(graph::place_concat_inputs(b->g), 1);
  b->g.verify();
  const auto& vals = b->g.values;
  EXPECT_EQ(vals[static_cast<size_t>(mm)].placed_in, c);
  EXPECT_EQ(vals[static_cast<size_t>(mm)].placed_at, 0);
  EXPECT_EQ(vals[static_cast<size_t>(mm)].strides, (ts::Strides{40 * 96, 24, 96, 1}));
  EXPECT_EQ(vals[static_cast<size_t>(mm2)].placed_at, 72);
  EXPECT_EQ(vals[static_cast<size_t>(mm2)].strides, (ts::Strides{40 * 96, 96, 1}));
  const graph::MemoryPlan plan = graph::plan_memory(b->g);
  const size_t concat_node = static_cast<size_t>(vals[static_cast<size_t>(c)].node);
  EXPECT_TRUE(plan.elided[concat_node]);
  EXPECT_EQ(std::count(plan.elided.begin(), plan.elided.end(), 1), 1);
  EXPECT_EQ(plan.offset[static_cast<size_t>(mm2)], plan.offset[static_cast<size_t>(c)] + 72 * 4);
  EXPECT_EQ(plan.offset[static_cast<size_t>(mm)], plan.offset[static_cast<size_t>(c)]);
  EXPECT_EQ(plan.planned_peak_bytes, 2 * 40 * 96 * 4 + 2 * 40 * 4);  // the concat and the sum
  EXPECT_EQ(graph::place_concat_inputs(b->g), 0);                    // already placed
  {  // an empty part (here the last one, along axis 0): nothing to place, the concat copies
    graph::testing::GraphBuilder e;
    const int w = e.input(rand({8, 6}, 10));
    const int full = e.op(OpId::Matmul, {e.input(rand({2, 4, 8}, 11)), w});
    const int empty = e.op(OpId::Matmul, {e.input(rand({0, 4, 8}, 12)), w});
    e.g.outputs = {e.op(OpId::Sum, {e.op(OpId::Concat, {full, empty}, ts::AxisAttrs{0})}, ts::ReduceAttrs{{0}, false})};
    EXPECT_EQ(graph::place_concat_inputs(e.g), 0);
    e.g.verify();
  }
  b->g.values[static_cast<size_t>(mm2)].placed_in = mm;  // not a concat's output: verify says so
  ts::testing::expect_error<ts::ValueError>([&] { b->g.verify(); }, {"[graph.verify]", "not a slice of a concat"});
  for (int variant : {1, 2, 3}) {
    SCOPED_TRACE(variant);
    auto [other, m1, m2, cc] = build(variant);
    EXPECT_EQ(graph::place_concat_inputs(other->g), 0);
    EXPECT_EQ(other->g.values[static_cast<size_t>(m1)].placed_in, -1);
    EXPECT_FALSE(
        graph::plan_memory(other->g).elided[static_cast<size_t>(other->g.values[static_cast<size_t>(cc)].node)]);
  }
}

TEST(Compile, MatricesReadDownTheirRowsByMatmulsGetPaddedRows) {
  // A weight-gradient-like product walks its operand down the rows: 1024 float32 columns put
  // those rows 4 KiB apart, and the CPU backend asks for 16 more elements per row. An
  // elementwise op's output and a fused pass's output (also summed in the same pass) get them;
  // results stay eager's, on the traced call and on replays.
  auto body = [](const TensorList& in) {
    ts::Tensor h = ts::gelu(in[0]);                                      // [2, 256, 1024]
    ts::Tensor y = ts::matmul(h, in[1]);                                 // reads h along its rows
    ts::Tensor dw = ts::matmul(h.reshape({512, 1024}).transpose(0, 1), in[2]);  // down the rows
    ts::Tensor dz = in[0] * ts::exp(in[0]);  // a fused pass, which also sums dz's columns
    ts::Tensor colsum = ts::sum(dz, {0, 1});
    ts::Tensor dw2 = ts::matmul(in[2].transpose(0, 1), dz.reshape({512, 1024}));
    return TensorList{y, dw, dw2, colsum};
  };
  TensorList in = {rand({2, 256, 1024}, 30), rand({1024, 8}, 31), rand({512, 8}, 32)};
  auto f = ts::compile(body);
  for (int call = 0; call < 2; ++call) {
    TensorList got = f(in), want = body(in);
    for (size_t k = 0; k < got.size(); ++k) {
      SCOPED_TRACE(k);
      EXPECT_TRUE(ts::allclose(got[k], want[k], 1e-5, 1e-5));
    }
  }
  const std::string ir = f.graph_text();
  EXPECT_EQ(count(ir, "strides [266240,1040,1]"), 2u) << ir;  // h and dz, each 256 * 1040 per batch
  auto unplanned = ts::compile(body, {.plan_memory = false});
  EXPECT_TRUE(ts::allclose(unplanned(in)[2], body(in)[2], 1e-5, 1e-5));
  EXPECT_EQ(count(unplanned.graph_text(), "strides [266240,1040,1]"), 0u);
}

TEST(Compile, RowPaddingNeedsMatmulReadersOnlyOneOfThemDownTheRows) {
  // variant 0 pads; each other variant breaks one condition (of the pass or of the CPU
  // backend's cpu_matmul_row_pitch) and pads nothing.
  auto build = [](int variant) {
    auto b = std::make_shared<graph::testing::GraphBuilder>();
    const int64_t rows = variant == 3 ? 128 : 512, cols = variant == 4 ? 1000 : 1024;
    const int a = b->input(rand({rows, cols}, 40)), w = b->input(rand({rows, 8}, 41));
    // exp(exp(a)): the outer exp could reuse the inner one's buffer if its layout were the same.
    const int x = variant == 6 ? b->op(OpId::Matmul, {a, b->input(rand({cols, cols}, 42))})
                               : b->op(OpId::Exp, {b->op(OpId::Exp, {a})});
    const int xt = b->permute(x, {1, 0});
    const int dw = variant == 5 ? b->op(OpId::Matmul, {x, b->input(rand({cols, 8}, 43))})  // along the rows only
                                : b->op(OpId::Matmul, {xt, w});
    b->g.outputs = {dw};
    if (variant == 1) b->g.outputs.push_back(b->op(OpId::Add, {x, x}));  // 1: a reader that is no matmul
    if (variant == 2) b->g.outputs.push_back(x);                           // 2: returned
    if (variant == 7) {  // 7: also read as A of x W^T, which oneDNN's primitive wants dense
      const int wt = b->permute(b->input(rand({8, cols}, 44)), {1, 0});
      b->g.outputs.push_back(b->op(OpId::Matmul, {x, wt}));
    }
    return std::make_tuple(b, x, xt);
  };
  auto [b, x, xt] = build(0);
  EXPECT_EQ(graph::pad_row_pitches(b->g), 1);
  b->g.verify();
  const auto& vals = b->g.values;
  EXPECT_TRUE(vals[static_cast<size_t>(x)].strided_output);
  EXPECT_EQ(vals[static_cast<size_t>(x)].strides, (ts::Strides{1040, 1}));
  EXPECT_EQ(vals[static_cast<size_t>(xt)].strides, (ts::Strides{1, 1040}));  // the view follows
  EXPECT_EQ(graph::value_extent(vals[static_cast<size_t>(x)]), 511 * 1040 + 1024);
  const graph::MemoryPlan plan = graph::plan_memory(b->g);
  EXPECT_EQ(plan.inplace_of[static_cast<size_t>(x)], -1);  // not over the inner exp: other layout
  EXPECT_GE(plan.planned_peak_bytes, (511 * 1040 + 1024) * 4);
  EXPECT_EQ(graph::pad_row_pitches(b->g), 0);  // already padded
  for (int variant : {1, 2, 3, 4, 5, 6, 7}) {
    SCOPED_TRACE(variant);
    auto [other, v, vt] = build(variant);
    EXPECT_EQ(graph::pad_row_pitches(other->g), 0);
    EXPECT_FALSE(other->g.values[static_cast<size_t>(v)].strided_output);
  }
}

TEST(Compile, GradientOfSplitIsOneConcat) {
  // d/dx of a function of x's parts: zero pads of each part's gradient summed -> concat.
  auto loss = [](const ts::Tensor& x) {
    return ts::sum(ts::sin(ts::slice(x, 1, 0, 2)) * 2.0) + ts::sum(ts::tanh(ts::slice(x, 1, 2, 5)) * 3.0);
  };
  auto f = ts::compile([&](const TensorList& in) { return TensorList{ts::grad(loss)(in[0])}; }, {.fuse = false});
  ts::Tensor x = rand({4, 5}, 3);
  ts::Tensor got = f({x})[0];
  EXPECT_TRUE(ts::allclose(got, ts::grad(loss)(x), 1e-6, 1e-6));
  std::string ir = f.graph_text();
  EXPECT_EQ(count(ir, "= pad("), 0u) << ir;
  EXPECT_EQ(count(ir, "= concat("), 1u) << ir;
}

TEST(Compile, MaxPoolValuesComeFromTheGradientsIndices) {
  // Forward max_pool2d and the backward's max_pool2d_indices of the same windows: one pass.
  auto loss = [](const ts::Tensor& x) { return ts::sum(ts::tanh(ts::max_pool2d(x, {2, 2}))); };
  auto f = ts::compile(
      [&](const TensorList& in) {
        auto [v, g] = ts::value_and_grad(loss)(in[0]);
        return TensorList{v, g};
      },
      {.fuse = false});
  ts::Tensor x = rand({2, 3, 6, 8}, 5);
  TensorList got = f({x});
  auto [v, g] = ts::value_and_grad(loss)(x);
  EXPECT_TRUE(ts::equal(got[0], v));
  EXPECT_TRUE(ts::equal(got[1], g));
  std::string ir = f.graph_text();
  EXPECT_EQ(count(ir, "= max_pool2d("), 0u) << ir;
  EXPECT_EQ(count(ir, "= max_pool2d_indices("), 1u) << ir;
  EXPECT_EQ(count(ir, "= gather("), 1u) << ir;
}

TEST(Compile, ReluMaskOfAMaxPoolGradientIsReadAtTheIndices) {
  // relu before a max pool: relu's 0/1 derivative multiplies the pool's scattered gradient. The
  // mask moves onto the scattered sources, read through the forward pass's gather, so no
  // comparison runs over the full-size activation and the results stay bit for bit.
  ts::Tensor x = rand({2, 4, 64, 40}, 7), w = rand({2, 4, 64, 40}, 8);
  auto loss = [w](const ts::Tensor& x) { return ts::sum(ts::tanh(ts::max_pool2d(ts::relu(x * w), {2, 2}))); };
  auto f = ts::compile(
      [&](const TensorList& in) {
        auto [v, g] = ts::value_and_grad(loss)(in[0]);
        return TensorList{v, g};
      },
      {.fuse = false});
  TensorList got = f({x});
  auto [v, g] = ts::value_and_grad(loss)(x);
  EXPECT_TRUE(ts::equal(got[0], v));
  EXPECT_TRUE(ts::equal(got[1], g));
  std::string ir = f.graph_text();
  EXPECT_EQ(count(ir, "= gather("), 1u) << ir;  // the forward gather serves the mask too
  EXPECT_EQ(count(ir, "= gt("), 1u) << ir;
  EXPECT_EQ(count(ir, ": bool[8,640]"), 1u) << ir;  // the comparison at the pooled positions only
  EXPECT_EQ(count(ir, "= scatter_add("), 1u) << ir;
  EXPECT_EQ(count(ir, "= full() {shape=[8,2560]"), 1u) << ir;  // a large zero fill is not folded
}

TEST(Compile, SoftmaxAndBiasGradientSumsFuseAndStayBitForBit) {
  // The gradient of sum(softmax(x W + b) * t) through the planned executor: softmax's backward
  // row sum and the bias gradient's column sum (over 96 rows of 80) join the fused passes that
  // compute what they sum, and the results equal eager mode's bit for bit.
  ts::Tensor x = rand({96, 48}, 11), w = rand({48, 80}, 12), b = rand({80}, 13), t = rand({96, 80}, 14);
  auto loss = [&](const ts::Tensor& w, const ts::Tensor& b) {
    return ts::sum(ts::softmax(ts::matmul(x, w) + b, -1) * t);
  };
  auto f = ts::compile([&](const TensorList& in) {
    auto [v, g] = ts::value_and_grad<0, 1>(loss)(in[0], in[1]);
    return TensorList{v, std::get<0>(g), std::get<1>(g)};
  });
  TensorList got = f({w, b});
  auto [v, g] = ts::value_and_grad<0, 1>(loss)(w, b);
  EXPECT_TRUE(ts::equal(got[0], v));
  EXPECT_TRUE(ts::equal(got[1], std::get<0>(g)));
  EXPECT_TRUE(ts::equal(got[2], std::get<1>(g)));
  std::string ir = f.graph_text();
  EXPECT_EQ(count(ir, "= sum("), 1u) << ir;  // the loss's full sum; the other two are fused steps
  EXPECT_EQ(count(ir, "{axes=[1]}"), 1u) << ir;
  EXPECT_EQ(count(ir, "{axes=[0]}"), 1u) << ir;
}

TEST(Compile, ConvolutionOperandViewsAreCopiedInsideThePlan) {
  // A transposed (strided) input: an explicit copy node, planned like any buffer, then the conv.
  auto body = [](const TensorList& in) { return TensorList{ts::conv2d(in[0].transpose(2, 3), in[1])}; };
  auto f = ts::compile(body, {.fuse = false});
  TensorList in = {rand({2, 3, 7, 5}, 1), rand({4, 3, 3, 3}, 2)};
  TensorList got = f(in);
  EXPECT_TRUE(ts::allclose(got[0], body(in)[0], 1e-5, 1e-6));
  std::string ir = f.graph_text();
  EXPECT_EQ(count(ir, "= copy("), 1u) << ir;
  EXPECT_LT(ir.find("= copy("), ir.find("= conv2d(")) << ir;
}

TEST(Compile, ProfileTimesEveryNodeOfEveryReplay) {
  TensorList in = {rand({8, 16}, 1), rand({16, 32}, 2), rand({32, 4}, 3)};
  auto plain = ts::compile(mlp);
  plain(in);
  EXPECT_TRUE(plain.profile().empty());  // off by default

  auto f = ts::compile(mlp, {.profile = true});
  f(in);
  EXPECT_TRUE(f.profile().empty());  // the traced call (one-time costs) is not timed
  for (int call = 0; call < 3; ++call) f(in);
  std::vector<ts::OpProfile> p = f.profile();
  ASSERT_FALSE(p.empty());
  int64_t nodes = 0;
  bool saw_matmul = false;
  for (size_t i = 0; i < p.size(); ++i) {
    EXPECT_EQ(p[i].runs, 3 * p[i].nodes) << p[i].op;
    EXPECT_GE(p[i].seconds, 0.0);
    if (i > 0) EXPECT_LE(p[i].seconds, p[i - 1].seconds);  // most expensive first
    nodes += p[i].nodes;
    saw_matmul |= p[i].op.starts_with("matmul") && p[i].shapes == "[8,16] x [16,32]";
  }
  EXPECT_TRUE(saw_matmul);
  EXPECT_EQ(nodes, static_cast<int64_t>(f.graph_nodes()));
  std::string table = ts::format_profile(p);
  EXPECT_NE(table.find("3 call(s)"), std::string::npos) << table;
  EXPECT_NE(table.find("  [8,16] x [16,32]\n"), std::string::npos) << table;
}
