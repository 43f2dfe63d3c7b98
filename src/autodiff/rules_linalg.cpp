// Rules for matmul (NumPy semantics: 1-d operands are promoted to matrices, batch dims broadcast).
#include "rules.h"

namespace tessera::autodiff {

namespace {

using S = std::span<Tensor>;

// With A = a (or a as [1,k] if 1-d), B = b (or [k,1]) and G the cotangent of A @ B (the
// removed axes put back): dA = G @ B^T, dB = A^T @ G; the engine sums broadcast batch dims.
void matmul_vjp(const VjpArgs& a, S g) {
  const Tensor& x = a.in[0];
  const Tensor& y = a.in[1];
  bool x1 = x.ndim() == 1, y1 = y.ndim() == 1;
  Tensor A = x1 ? x.reshape({1, x.shape()[0]}) : x;
  Tensor B = y1 ? y.reshape({y.shape()[0], 1}) : y;
  Tensor G = a.ct[0];
  if (x1) G = unsqueeze(G, G.ndim() - (y1 ? 0 : 1));  // [.., m] -> [.., 1, m]
  if (y1) G = unsqueeze(G, G.ndim());                 // [.., n] -> [.., n, 1]
  if (a.need[0]) {
    Tensor gA = matmul(G, transpose(B, -2, -1));
    g[0] = x1 ? unbroadcast(gA, A.shape()).reshape(x.shape()) : gA;
  }
  if (a.need[1]) {
    if (!y1 && B.ndim() == 2 && A.ndim() >= 3) {
      // A weight shared by every batch element (x [.., m, k] @ w [k, n]): dB = sum_b A_b^T G_b is one
      // GEMM over the flattened batch, [k, b*m] @ [b*m, n], instead of b small products and a sum.
      const int64_t k = A.shape().back(), n = G.shape().back();
      g[1] = matmul(transpose(A.reshape({-1, k}), 0, 1), G.reshape({-1, n}));
    } else {
      Tensor gB = matmul(transpose(A, -2, -1), G);
      g[1] = y1 ? unbroadcast(gB, B.shape()).reshape(y.shape()) : gB;
    }
  }
}
void matmul_jvp(const JvpArgs& a, S t) {
  Tensor r;
  if (a.tan[0].defined()) r = matmul(a.tan[0], a.in[1]);
  if (a.tan[1].defined()) r = acc(r, matmul(a.in[0], a.tan[1]));
  t[0] = r;
}

}  // namespace

void register_linalg_rules(RuleTable& t) { set_rule(t, OpId::Matmul, matmul_vjp, matmul_jvp, kSaveAll, kSaveNone); }

}  // namespace tessera::autodiff
