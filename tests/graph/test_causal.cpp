// Causal attention's triangular products (src/graph/causal.cpp, MatmulStructure): the analysis
// marks exactly the products a causal mask makes triangular, the CPU kernel's blocks give the
// dense product's values, and a hand-built attention layer (forward and backward) computes what
// it computed op by op.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "core/dispatch.h"
#include "graph_builder.h"
#include "tessera/tessera.h"

namespace ts = tessera;
namespace graph = tessera::graph;
using graph::testing::rand;
using ts::MatmulStructure;
using ts::OpId;
using ts::Tensor;

namespace {

Tensor run_matmul(const Tensor& a, const Tensor& b, MatmulStructure s) {
  Tensor in[2] = {a, b};
  Tensor out[1];
  ts::detail::execute(OpId::Matmul, in, ts::MatmulAttrs{s}, out);
  return out[0];
}

// M[i, j] = (j > i) + offset (offset 0: the causal mask).
Tensor mask(int64_t t, int64_t offset = 0) {
  Tensor rows = ts::arange(t, ts::DType::Int64).reshape({t, 1}) + offset;
  return ts::gt(ts::arange(t, ts::DType::Int64).reshape({1, t}), rows);
}

void expect_close(const Tensor& got, const Tensor& want, double tol) {
  ASSERT_EQ(got.shape(), want.shape());
  auto g = got.to_vector<double>(), w = want.to_vector<double>();
  double worst = 0;
  for (size_t i = 0; i < g.size(); ++i) worst = std::max(worst, std::abs(g[i] - w[i]) / (1 + std::abs(w[i])));
  EXPECT_LE(worst, tol);
}

MatmulStructure structure_of(const graph::GraphNode& n) {
  const auto* a = std::get_if<ts::MatmulAttrs>(&n.attrs);
  return a ? a->structure : MatmulStructure::Dense;
}

}  // namespace

TEST(TriangularMatmul, BlocksGiveTheDenseProduct) {
  // float32 runs 8-row register blocks (B read in place when its rows are contiguous and a multiple
  // of 16 wide, else packed; 100 and 33 rows leave single-row tails); float64 library row blocks.
  for (ts::DType dt : {ts::DType::Float32, ts::DType::Float64}) {
    for (int64_t t : {int64_t{33}, int64_t{100}, int64_t{128}}) {
      const Tensor m = mask(t);
      const Tensor lower = ts::where(m, 0.0, rand({3, t, t}, 1, dt));  // zero above the diagonal
      const double tol = dt == ts::DType::Float32 ? 1e-5 : 1e-12;
      for (int64_t width : {int64_t{24}, int64_t{64}}) {
        SCOPED_TRACE(std::to_string(t) + " x " + std::to_string(width) + " " + std::string(ts::dtype_name(dt)));
        const Tensor b = rand({3, t, width}, 2, dt);
        // A lower, A upper (a transposed view), A upper broadcast over the batch, B transposed.
        expect_close(run_matmul(lower, b, MatmulStructure::LowerA), run_matmul(lower, b, MatmulStructure::Dense), tol);
        const Tensor upper = lower.transpose(-2, -1);
        expect_close(run_matmul(upper, b, MatmulStructure::UpperA), run_matmul(upper, b, MatmulStructure::Dense), tol);
        const Tensor shared = ts::slice(upper, 0, 0, 1);
        expect_close(run_matmul(shared, b, MatmulStructure::UpperA), run_matmul(shared, b, MatmulStructure::Dense),
                     tol);
        const Tensor bt = rand({3, width, t}, 7, dt).transpose(-2, -1);
        expect_close(run_matmul(lower, bt, MatmulStructure::LowerA), run_matmul(lower, bt, MatmulStructure::Dense),
                     tol);
      }
      // Lower result: q k^T with k a transposed view (packed: by transposed 16 x 16 tiles and a
      // 40 % 16 row tail when t is a multiple of 16) and with a row-major B (in place when t is a
      // multiple of 16). On and below the diagonal as dense; above it each entry is the dense value
      // or zero (never garbage), and rows far from the last column have zeros.
      const Tensor q = rand({3, t, 40}, 3, dt), k = rand({3, t, 40}, 4, dt), kt = rand({3, 40, t}, 8, dt);
      for (const Tensor& right : {k.transpose(-2, -1), kt}) {
        SCOPED_TRACE(std::to_string(t) + " lower result " + std::string(ts::dtype_name(dt)));
        const Tensor got = run_matmul(q, right, MatmulStructure::LowerResult);
        const Tensor dense = run_matmul(q, right, MatmulStructure::Dense);
        expect_close(ts::where(m, 0.0, got), ts::where(m, 0.0, dense), tol);
        const auto g = got.to_vector<double>(), d = dense.to_vector<double>();
        int64_t zeros = 0, bad = 0;
        for (size_t i = 0; i < g.size(); ++i) {
          zeros += g[i] == 0;
          bad += g[i] != 0 && std::abs(g[i] - d[i]) > tol * (1 + std::abs(d[i]));
        }
        EXPECT_EQ(bad, 0);
        if (t > 64) EXPECT_GT(zeros, 3 * t * t / 4 / 4);  // most of the upper triangle is skipped
      }
    }
  }
}

TEST(TriangularMatmul, ShapesTheStructureDoesNotFitRunDense) {
  const Tensor a = rand({80, 96}, 5), b = rand({96, 80}, 6);  // m != k: not triangular
  const Tensor dense = run_matmul(a, b, MatmulStructure::Dense);
  for (MatmulStructure s : {MatmulStructure::LowerA, MatmulStructure::UpperA})
    EXPECT_TRUE(ts::equal(run_matmul(a, b, s), dense));
  const Tensor c = rand({96, 80}, 7), d = rand({80, 40}, 8);  // m != n: every entry is computed
  EXPECT_TRUE(ts::equal(run_matmul(c, d, MatmulStructure::LowerResult), run_matmul(c, d, MatmulStructure::Dense)));
}

namespace {

// One causal attention layer and its gradient, recorded op by op as autodiff writes them:
//   s = (q k^T) * c; p = softmax(where(M, -inf, s)); o = p v
//   dP = dO v^T; dS = where(M, 0, p * (dP - sum(dP * p))) * c
//   dq = dS k; dk = dS^T q; dv = p^T dO
struct Attention {
  graph::testing::GraphBuilder b;
  std::vector<Tensor> in;
  int scores, o, dp, dq, dk, dv;

  explicit Attention(int64_t t, const Tensor& m, bool mask_in_false_slot = false, bool return_scores = false) {
    const std::vector<int64_t> qs{2, 3, t, 16};
    auto input = [&](const Tensor& x) {
      in.push_back(x);
      return b.input(x);
    };
    const int q = input(rand(qs, 11)), k = input(rand(qs, 12)), v = input(rand(qs, 13)), dout = input(rand(qs, 14));
    const int mk = b.constant(m);
    const int scale = b.constant(ts::scalar_tensor(0.25));
    const int ninf = b.constant(ts::scalar_tensor(-std::numeric_limits<double>::infinity()));
    const int zero = b.constant(ts::scalar_tensor(0.0));
    const ts::Axes swap{0, 1, 3, 2};
    scores = b.op(OpId::Matmul, {q, b.permute(k, swap)});
    const int s = b.op(OpId::Mul, {scores, scale});
    const int masked = mask_in_false_slot ? b.op(OpId::Where, {mk, s, ninf}) : b.op(OpId::Where, {mk, ninf, s});
    const int p = b.op(OpId::Softmax, {masked}, ts::AxisAttrs{3});
    o = b.op(OpId::Matmul, {p, v});
    dp = b.op(OpId::Matmul, {dout, b.permute(v, swap)});
    const int rowsum = b.op(OpId::Sum, {b.op(OpId::Mul, {dp, p})}, ts::ReduceAttrs{{3}, true});
    const int ds0 = b.op(OpId::Mul, {p, b.op(OpId::Sub, {dp, rowsum})});
    const int ds = b.op(OpId::Mul, {b.op(OpId::Where, {mk, zero, ds0}), scale});
    dq = b.op(OpId::Matmul, {ds, k});
    dk = b.op(OpId::Matmul, {b.permute(ds, swap), q});
    dv = b.op(OpId::Matmul, {b.permute(p, swap), dout});
    for (int out : {o, dq, dk, dv}) b.g.outputs.push_back(out);
    if (return_scores) b.g.outputs.push_back(scores);
  }
  MatmulStructure structure(int value) const {
    return structure_of(b.g.nodes[static_cast<size_t>(b.g.values[static_cast<size_t>(value)].node)]);
  }
  // The structures of q k^T, P v, dO v^T, dS k, dS^T q and P^T dO, in that order.
  void expect_structures(std::initializer_list<MatmulStructure> want) const {
    const int products[] = {scores, o, dp, dq, dk, dv};
    const char* names[] = {"q k^T", "P v", "dO v^T", "dS k", "dS^T q", "P^T dO"};
    size_t i = 0;
    for (MatmulStructure s : want) {
      EXPECT_EQ(structure(products[i]), s) << names[i];
      ++i;
    }
  }
};

}  // namespace

TEST(TriangularMatmul, CausalAttentionMarksAllSixProductsAndKeepsItsValues) {
  for (int64_t t : {int64_t{70}, int64_t{128}}) {
    Attention a(t, mask(t));
    EXPECT_EQ(graph::mark_triangular_matmuls(a.b.g), 6);
    a.b.g.verify();
    a.expect_structures({MatmulStructure::LowerResult, MatmulStructure::LowerA, MatmulStructure::LowerResult,
                         MatmulStructure::LowerA, MatmulStructure::UpperA, MatmulStructure::UpperA});
    EXPECT_NE(a.b.g.str().find("structure=upper_a"), std::string::npos);
    const auto got = graph::testing::run_graph(a.b.g, a.in);
    const int outs[] = {a.o, a.dq, a.dk, a.dv};
    for (size_t i = 0; i < got.size(); ++i) expect_close(got[i], a.b.env[static_cast<size_t>(outs[i])], 1e-5);
    EXPECT_EQ(graph::mark_triangular_matmuls(a.b.g), 0);  // marked products stay as they are
  }
}

TEST(TriangularMatmul, OtherMasksAndReadersKeepProductsDense) {
  const int64_t t = 70;
  {  // the diagonal masked too (j >= i): not the causal mask
    Attention a(t, mask(t, -1));
    EXPECT_EQ(graph::mark_triangular_matmuls(a.b.g), 0);
  }
  {  // the mask selecting the scores rather than -inf: p and dP are dense; only the gradient's
     // where(M, 0, .) still makes dS lower, so dq and dk skip its zeros
    Attention a(t, mask(t), /*mask_in_false_slot=*/true);
    EXPECT_EQ(graph::mark_triangular_matmuls(a.b.g), 2);
    a.expect_structures({MatmulStructure::Dense, MatmulStructure::Dense, MatmulStructure::Dense,
                         MatmulStructure::LowerA, MatmulStructure::UpperA, MatmulStructure::Dense});
    const auto got = graph::testing::run_graph(a.b.g, a.in);
    expect_close(got[1], a.b.env[static_cast<size_t>(a.dq)], 1e-5);
    expect_close(got[2], a.b.env[static_cast<size_t>(a.dk)], 1e-5);
  }
  {  // the raw scores are a graph output: computed in full; the other five still skip
    Attention a(t, mask(t), false, /*return_scores=*/true);
    EXPECT_EQ(graph::mark_triangular_matmuls(a.b.g), 5);
    EXPECT_EQ(a.structure(a.scores), MatmulStructure::Dense);
    EXPECT_EQ(a.structure(a.dp), MatmulStructure::LowerResult);
  }
}

TEST(TriangularMatmul, CompiledCausalAttentionMatchesEager) {
  // nn::scaled_dot_product_attention with a causal mask, differentiated and compiled.
  ts::Generator gen(3);
  const Tensor q = ts::randn({2, 2, 80, 16}, gen), k = ts::randn({2, 2, 80, 16}, gen),
               v = ts::randn({2, 2, 80, 16}, gen);
  ts::nn::AttentionMask causal;
  causal.causal = true;
  auto loss = [&](const Tensor& x, const Tensor& y, const Tensor& z) {
    Tensor o = ts::nn::scaled_dot_product_attention(x, y, z, causal);
    return ts::sum(o * o);
  };
  auto step = [&](const ts::TensorList& x) {
    auto [value, grads] = ts::value_and_grad<0, 1, 2>(loss)(x[0], x[1], x[2]);
    auto [gq, gk, gv] = grads;
    return ts::TensorList{value, gq, gk, gv};
  };
  ts::CompiledFunction f = ts::compile(step);
  const auto got = f({q, k, v});
  const auto want = step({q, k, v});
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < got.size(); ++i) expect_close(got[i], want[i], 1e-5);
  EXPECT_GE(f.stats().rewrites, 6);
  const std::string text = f.graph_text();
  EXPECT_NE(text.find("structure=lower_result"), std::string::npos);
  EXPECT_NE(text.find("structure=lower_a"), std::string::npos);
  EXPECT_NE(text.find("structure=upper_a"), std::string::npos);
}
