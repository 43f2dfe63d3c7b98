// Epilogue fusion (src/graph/epilogue.h): hand-built graphs of a Linear layer's product or a
// convolution followed by elementwise chains. The pass must absorb exactly the chain it claims
// (single-use values, supported ops and operand forms), and the fused node must compute what
// the ops computed one by one: oneDNN's post-ops round like the unfused kernels up to a few
// ulps (its activations use their own approximations), so values are compared with a float32
// tolerance; paths that run eager's kernels (tiny products) are compared bit for bit.
#include <gtest/gtest.h>

#include "core/dispatch.h"
#include "graph/epilogue.h"
#include "graph/fuse.h"
#include "graph_builder.h"
#include "tessera/tessera.h"

namespace ts = tessera;
namespace graph = tessera::graph;
using ts::OpId;
using ts::Tensor;

namespace {

struct Builder : graph::testing::GraphBuilder {
  std::vector<Tensor> in;
  int input(const Tensor& t) {
    in.push_back(t);
    return GraphBuilder::input(t);
  }
  int ret(int id) {
    g.outputs.push_back(id);
    return id;
  }
};

using graph::testing::rand;
using graph::testing::run_graph;

const graph::GraphNode* fused_node(const graph::Graph& g) {
  for (const auto& n : g.nodes)
    if (n.epilogue) return &n;
  return nullptr;
}

std::vector<OpId> step_ops(const graph::GraphNode& n) {
  std::vector<OpId> r;
  for (const auto& s : n.epilogue->steps) r.push_back(s.op);
  return r;
}

// y = act(x W^T + b), the Linear layer's forward (big enough for the library path).
struct Linear {
  Builder b;
  int x, w, bias, mm, pre;
  Linear(int64_t m = 96, int64_t k = 128, int64_t n = 160) {
    x = b.input(rand({m, k}, 1));
    w = b.input(rand({n, k}, 2));
    bias = b.input(rand({n}, 3));
    mm = b.op(OpId::Matmul, {x, b.permute(w, {1, 0})});
    pre = b.op(OpId::Add, {mm, bias});
  }
};

}  // namespace

TEST(Epilogue, LinearBiasAndActivationBecomeOneNode) {
  for (OpId act : {OpId::Relu, OpId::Gelu, OpId::GeluTanh, OpId::Tanh, OpId::Sigmoid, OpId::Silu}) {
    Linear l;
    const int y = l.b.ret(l.b.op(act, {l.pre}));
    const Tensor want = l.b.env[static_cast<size_t>(y)];
    EXPECT_EQ(graph::fuse_epilogues(l.b.g), 2) << ts::op_name(act);
    l.b.g.verify();
    const graph::GraphNode* n = fused_node(l.b.g);
    ASSERT_NE(n, nullptr);
    EXPECT_EQ(n->op, OpId::Matmul);
    EXPECT_EQ(step_ops(*n), (std::vector<OpId>{OpId::Add, act}));
    EXPECT_EQ(l.b.g.nodes.size(), 2u);  // the weight's permute view and the fused product
    EXPECT_NE(l.b.g.str().find("matmul+add($2)+" + std::string(ts::op_name(act))), std::string::npos) << l.b.g.str();
    EXPECT_TRUE(ts::allclose(run_graph(l.b.g, l.b.in)[0], want, 1e-5, 1e-5)) << ts::op_name(act);
  }
}

TEST(Epilogue, ChainStopsAtAValueReadTwice) {
  // Training keeps the pre-activation for the backward pass: the bias add fuses, gelu does not.
  Linear l;
  const int y = l.b.ret(l.b.op(OpId::Gelu, {l.pre}));
  const int keep = l.b.ret(l.b.op(OpId::Mul, {l.pre, l.pre}));
  const Tensor want_y = l.b.env[static_cast<size_t>(y)], want_keep = l.b.env[static_cast<size_t>(keep)];
  EXPECT_EQ(graph::fuse_epilogues(l.b.g), 1);
  const graph::GraphNode* n = fused_node(l.b.g);
  ASSERT_NE(n, nullptr);
  EXPECT_EQ(step_ops(*n), (std::vector<OpId>{OpId::Add}));
  auto got = run_graph(l.b.g, l.b.in);
  EXPECT_TRUE(ts::allclose(got[0], want_y, 1e-5, 1e-5));
  EXPECT_TRUE(ts::allclose(got[1], want_keep, 1e-5, 1e-5));
}

TEST(Epilogue, OnlyTheResultMayBeTheLeftOperandOfNonCommutativeOps) {
  {  // bias - (x W^T): the product is the right operand of sub: not fused
    Builder b;
    const int x = b.input(rand({96, 128}, 1)), w = b.input(rand({160, 128}, 2)), c = b.input(rand({160}, 3));
    const int mm = b.op(OpId::Matmul, {x, b.permute(w, {1, 0})});
    b.ret(b.op(OpId::Sub, {c, mm}));
    EXPECT_EQ(graph::fuse_epilogues(b.g), 0);
  }
  {  // (x W^T) / c and 2 * (x W^T) (commutative, product on the right) fuse
    Builder b;
    const int x = b.input(rand({96, 128}, 1)), w = b.input(rand({160, 128}, 2)), c = b.input(rand({160}, 3));
    const int two = b.constant(ts::full({}, 2.0));
    const int mm = b.op(OpId::Matmul, {x, b.permute(w, {1, 0})});
    const int y =
        b.ret(b.op(OpId::Mul, {two, b.op(OpId::Div, {mm, b.op(OpId::Add, {c, b.constant(ts::full({}, 3.0))})})}));
    const Tensor want = b.env[static_cast<size_t>(y)];
    EXPECT_EQ(graph::fuse_epilogues(b.g), 2);
    const graph::GraphNode* n = fused_node(b.g);
    ASSERT_NE(n, nullptr);
    EXPECT_EQ(step_ops(*n), (std::vector<OpId>{OpId::Div, OpId::Mul}));
    EXPECT_TRUE(ts::allclose(run_graph(b.g, b.in)[0], want, 1e-5, 1e-6));
  }
}

TEST(Epilogue, OperandsMustBeScalarPerChannelOrFull) {
  Builder b;
  const int x = b.input(rand({96, 128}, 1)), w = b.input(rand({160, 128}, 2));
  const int per_row = b.input(rand({96, 1}, 3));  // varies along rows, not channels
  const int mm = b.op(OpId::Matmul, {x, b.permute(w, {1, 0})});
  b.ret(b.op(OpId::Add, {mm, per_row}));
  EXPECT_EQ(graph::fuse_epilogues(b.g), 0);
}

TEST(Epilogue, OnlyTheLinearLayersProductFuses) {
  // x W with W row-major is a backward product (dY W): left to the elementwise fusion.
  Builder b;
  const int x = b.input(rand({96, 128}, 1)), w = b.input(rand({128, 160}, 2)), c = b.input(rand({160}, 3));
  b.ret(b.op(OpId::Relu, {b.op(OpId::Add, {b.op(OpId::Matmul, {x, w}), c})}));
  EXPECT_EQ(graph::fuse_epilogues(b.g), 0);
}

TEST(Epilogue, ResidualAddOnABatchedLinearLayer) {
  // [B, T, K] x W^T + b + residual, the transformer block's output projection.
  Builder b;
  const int x = b.input(rand({4, 32, 128}, 1)), w = b.input(rand({64, 128}, 2));
  const int c = b.input(rand({64}, 3)), r = b.input(rand({4, 32, 64}, 4));
  const int mm = b.op(OpId::Matmul, {x, b.permute(w, {1, 0})});
  const int y = b.ret(b.op(OpId::Add, {r, b.op(OpId::Add, {mm, c})}));
  const Tensor want = b.env[static_cast<size_t>(y)];
  EXPECT_EQ(graph::fuse_epilogues(b.g), 2);
  EXPECT_TRUE(ts::allclose(run_graph(b.g, b.in)[0], want, 1e-5, 1e-5));
}

TEST(Epilogue, ConvolutionBatchNormResidualRelu) {
  // conv -> batch norm (eval: x * scale + shift, per channel) -> + identity -> relu, as in a
  // ResNet block. The convolution library fuses the per-channel steps; the residual and relu
  // run as one fused pass over its output.
  Builder b;
  const int x = b.input(rand({2, 16, 14, 14}, 1)), w = b.input(rand({16, 16, 3, 3}, 2));
  const int scale = b.input(rand({16, 1, 1}, 3)), shift = b.input(rand({16, 1, 1}, 4));
  const int identity = b.input(rand({2, 16, 14, 14}, 5));
  ts::ConvAttrs attrs;
  attrs.padding = {1, 1};
  const int conv = b.op(OpId::Conv2d, {x, w}, attrs);
  const int bn = b.op(OpId::Add, {b.op(OpId::Mul, {conv, scale}), shift});
  const int y = b.ret(b.op(OpId::Relu, {b.op(OpId::Add, {bn, identity})}));
  const Tensor want = b.env[static_cast<size_t>(y)];
  EXPECT_EQ(graph::fuse_epilogues(b.g), 4);
  const graph::GraphNode* n = fused_node(b.g);
  ASSERT_NE(n, nullptr);
  EXPECT_EQ(n->op, OpId::Conv2d);
  EXPECT_EQ(step_ops(*n), (std::vector<OpId>{OpId::Mul, OpId::Add, OpId::Add, OpId::Relu}));
  EXPECT_TRUE(ts::allclose(run_graph(b.g, b.in)[0], want, 1e-5, 1e-5));
}

TEST(Epilogue, DepthwiseConvolutionRunsItsEpiloguePerPlane) {
  // MobileNet's depthwise block: conv (groups = channels) -> batch norm -> relu6 (two clamps),
  // then a residual add and a relu or a gelu; the depthwise loop applies every step to each
  // output plane with the fused pass's own inner loops. Exact steps give eager's bits; gelu's
  // erf may take the scalar path for a plane's last few elements where eager's vector loop ran,
  // so it agrees to float32 rounding. Strides 1 and 2: planes of 400 and 100 elements (runs of
  // several planes per thread).
  for (int64_t stride : {1, 2}) {
    for (OpId act : {OpId::Relu, OpId::Gelu}) {
      SCOPED_TRACE(std::to_string(stride) + " " + std::string(ts::op_name(act)));
      Builder b;
      const int64_t c = 24, side = 20, out_side = stride == 1 ? 20 : 10;
      const int x = b.input(rand({2, c, side, side}, 1)), w = b.input(rand({c, 1, 3, 3}, 2));
      const int scale = b.input(rand({c, 1, 1}, 3)), shift = b.input(rand({c, 1, 1}, 4));
      const int lo = b.input(ts::full({}, 0.0)), hi = b.input(ts::full({}, 0.5));
      const int identity = b.input(rand({2, c, out_side, out_side}, 5));
      ts::ConvAttrs attrs;
      attrs.padding = {1, 1};
      attrs.stride = {stride, stride};
      attrs.groups = c;
      const int conv = b.op(OpId::Conv2d, {x, w}, attrs);
      const int bn = b.op(OpId::Add, {b.op(OpId::Mul, {conv, scale}), shift});
      const int clamped = b.op(OpId::Minimum, {b.op(OpId::Maximum, {bn, lo}), hi});
      const int y = b.ret(b.op(act, {b.op(OpId::Add, {clamped, identity})}));
      const Tensor want = b.env[static_cast<size_t>(y)];
      EXPECT_EQ(graph::fuse_epilogues(b.g), 6);
      const graph::GraphNode* n = fused_node(b.g);
      ASSERT_NE(n, nullptr);
      EXPECT_EQ(step_ops(*n), (std::vector<OpId>{OpId::Mul, OpId::Add, OpId::Maximum, OpId::Minimum, OpId::Add, act}));
      const Tensor got = run_graph(b.g, b.in)[0];
      if (act == OpId::Relu)
        EXPECT_TRUE(ts::equal(got, want));
      else
        EXPECT_TRUE(ts::allclose(got, want, 1e-6, 1e-7));
    }
  }
}

TEST(Epilogue, PointwiseConvolutionRunsItsEpiloguePerColumnBlock) {
  // A 1x1 convolution whose output per image is larger than the L2 cache (64 x 4096 floats) runs
  // its GEMM in column blocks and the epilogue (batch norm, relu6, residual add) on each block
  // right after; a smaller one (16 channels) runs one GEMM and a fused pass. Both agree with the
  // ops run one by one to float32 rounding.
  for (int64_t out_channels : {64, 16}) {
    SCOPED_TRACE(out_channels);
    Builder b;
    const int x = b.input(rand({2, 24, 64, 64}, 1)), w = b.input(rand({out_channels, 24, 1, 1}, 2));
    const int scale = b.input(rand({out_channels, 1, 1}, 3)), shift = b.input(rand({out_channels, 1, 1}, 4));
    const int lo = b.input(ts::full({}, 0.0)), hi = b.input(ts::full({}, 0.5));
    const int identity = b.input(rand({2, out_channels, 64, 64}, 5));
    const int conv = b.op(OpId::Conv2d, {x, w}, ts::ConvAttrs{});
    const int bn = b.op(OpId::Add, {b.op(OpId::Mul, {conv, scale}), shift});
    const int clamped = b.op(OpId::Minimum, {b.op(OpId::Maximum, {bn, lo}), hi});
    const int y = b.ret(b.op(OpId::Add, {clamped, identity}));
    const Tensor want = b.env[static_cast<size_t>(y)];
    EXPECT_EQ(graph::fuse_epilogues(b.g), 5);
    ASSERT_NE(fused_node(b.g), nullptr);
    EXPECT_TRUE(ts::allclose(run_graph(b.g, b.in)[0], want, 1e-5, 1e-6));
  }
}

TEST(Epilogue, TinyProductsRunEagersKernelsBitForBit) {
  Linear l(8, 16, 12);
  const int y = l.b.ret(l.b.op(OpId::Relu, {l.pre}));
  const Tensor want = l.b.env[static_cast<size_t>(y)];
  EXPECT_EQ(graph::fuse_epilogues(l.b.g), 2);
  EXPECT_TRUE(ts::equal(run_graph(l.b.g, l.b.in)[0], want));
}

TEST(Epilogue, GraphOutputsAreNeverAbsorbed) {
  Linear l;
  l.b.ret(l.b.op(OpId::Relu, {l.pre}));
  l.b.ret(l.pre);  // returned: the relu cannot be fused past it
  EXPECT_EQ(graph::fuse_epilogues(l.b.g), 1);
  EXPECT_EQ(step_ops(*fused_node(l.b.g)), (std::vector<OpId>{OpId::Add}));
}

TEST(Epilogue, CompiledModulesMatchEagerInEvalMode) {
  ts::manual_seed(0);
  ts::nn::Sequential net;
  net.add(std::make_shared<ts::nn::Linear>(128, 256)).add(std::make_shared<ts::nn::GELU>());
  net.add(std::make_shared<ts::nn::Linear>(256, 64));
  net.eval();
  Tensor x = rand({64, 128}, 7);
  Tensor want = net(x);
  auto f = ts::compile([&](const ts::TensorList& in) { return ts::TensorList{net(in[0])}; });
  Tensor got = f({x})[0];
  EXPECT_TRUE(ts::allclose(got, want, 1e-5, 1e-5));
  EXPECT_NE(f.graph_text().find("matmul+add($2)+gelu("), std::string::npos) << f.graph_text();
}
