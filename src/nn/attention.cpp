#include "tessera/nn/attention.h"

#include <cmath>
#include <limits>

#include "tessera/error.h"
#include "tessera/nn/init.h"

namespace tessera::nn {

Tensor scaled_dot_product_attention(const Tensor& q, const Tensor& k, const Tensor& v, const AttentionMask& mask,
                                    double dropout_p, bool training) {
  if (q.ndim() != 4 || k.ndim() != 4 || v.ndim() != 4 || k.shape() != v.shape() || q.shape()[0] != k.shape()[0] ||
      q.shape()[1] != k.shape()[1] || q.shape()[3] != k.shape()[3])
    raise<ShapeError>("scaled_dot_product_attention", "expects q [B,H,T,D], k and v [B,H,S,D], got q " +
                                                          shape_str(q.shape()) + ", k " + shape_str(k.shape()) +
                                                          ", v " + shape_str(v.shape()));
  int64_t B = q.shape()[0], T = q.shape()[2], S = k.shape()[2], D = q.shape()[3];
  Tensor scores = matmul(q, k.transpose(-2, -1)) * (1.0 / std::sqrt(static_cast<double>(D)));  // [B,H,T,S]
  const double neg_inf = -std::numeric_limits<double>::infinity();
  if (mask.causal) {
    // Query t sees keys s <= t + (S - T).
    Tensor rows = arange(T, DType::Int64).reshape({T, 1}) + (S - T);
    Tensor cols = arange(S, DType::Int64).reshape({1, S});
    scores = where(gt(cols, rows), neg_inf, scores);
  }
  if (mask.key_padding_mask.defined()) {
    const Tensor& kpm = mask.key_padding_mask;
    if (kpm.dtype() != DType::Bool || kpm.ndim() != 2 || kpm.shape()[0] != B || kpm.shape()[1] != S)
      raise<ShapeError>("scaled_dot_product_attention",
                        "key_padding_mask must be bool [" + std::to_string(B) + ", " + std::to_string(S) + "], got " +
                            std::string(dtype_name(kpm.dtype())) + " " + shape_str(kpm.shape()));
    scores = where(kpm.reshape({B, 1, 1, S}), neg_inf, scores);
  }
  Tensor p = softmax(scores, -1);
  if (training && dropout_p > 0.0) p = tessera::dropout(p, dropout_p, default_generator(), true);
  return matmul(p, v);
}

MultiheadAttention::MultiheadAttention(int64_t e, int64_t h, double drop, bool bias)
    : out_proj(e, e, bias), embed_dim(e), num_heads(h), dropout(drop) {
  if (e <= 0 || h <= 0 || e % h)
    raise<ValueError>("nn.MultiheadAttention",
                      "num_heads " + std::to_string(h) + " must divide embed_dim " + std::to_string(e));
  in_proj_weight = init::xavier_uniform({3 * e, e});
  register_parameter("in_proj_weight", in_proj_weight);
  if (bias) {
    in_proj_bias = zeros({3 * e});
    register_parameter("in_proj_bias", in_proj_bias);
    out_proj.bias = zeros({e});
  }
  register_module("out_proj", out_proj);
}

Tensor MultiheadAttention::heads(const Tensor& x) const {
  int64_t B = x.shape()[0], T = x.shape()[1];
  return x.reshape({B, T, num_heads, embed_dim / num_heads}).permute({0, 2, 1, 3});
}

Tensor MultiheadAttention::attend(const Tensor& q, const Tensor& k, const Tensor& v, const AttentionMask& mask) {
  Tensor o = scaled_dot_product_attention(heads(q), heads(k), heads(v), mask, dropout, is_training());
  int64_t B = q.shape()[0], T = q.shape()[1];
  return out_proj(o.permute({0, 2, 1, 3}).reshape({B, T, embed_dim}));
}

namespace {
void check_input(const char* what, const Tensor& x, int64_t e) {
  if (x.ndim() != 3 || x.shape()[2] != e)
    raise<ShapeError>("nn.MultiheadAttention",
                      std::string(what) + " must be [B, T, " + std::to_string(e) + "], got " + shape_str(x.shape()));
}
}  // namespace

Tensor MultiheadAttention::self_attention(const Tensor& x, const AttentionMask& mask) {
  check_input("input", x, embed_dim);
  // One [B,T,E] x [E,3E] product for q, k and v together.
  Tensor qkv = matmul(x, in_proj_weight.transpose(0, 1));
  if (in_proj_bias.defined()) qkv = qkv + in_proj_bias;
  std::vector<Tensor> parts = chunk(qkv, 3, -1);
  return attend(parts[0], parts[1], parts[2], mask);
}

Tensor MultiheadAttention::operator()(const Tensor& query, const Tensor& key, const Tensor& value,
                                      const AttentionMask& mask) {
  check_input("query", query, embed_dim);
  check_input("key", key, embed_dim);
  check_input("value", value, embed_dim);
  if (key.shape() != value.shape() || key.shape()[0] != query.shape()[0])
    raise<ShapeError>("nn.MultiheadAttention", "key " + shape_str(key.shape()) + " and value " +
                                                   shape_str(value.shape()) + " must match, with the batch of query " +
                                                   shape_str(query.shape()));
  std::vector<Tensor> w = chunk(in_proj_weight, 3, 0);
  std::vector<Tensor> b = in_proj_bias.defined() ? chunk(in_proj_bias, 3, 0) : std::vector<Tensor>(3);
  auto proj = [&](const Tensor& x, int i) {
    Tensor y = matmul(x, w[i].transpose(0, 1));
    return b[i].defined() ? y + b[i] : y;
  };
  return attend(proj(query, 0), proj(key, 1), proj(value, 2), mask);
}

TransformerBlock::TransformerBlock(int64_t d, int64_t h, int64_t ff, double p)
    : ln1(d), ln2(d), attn(d, h, p), fc1(d, ff), fc2(ff, d), drop(p) {
  register_modules({{"ln1", ln1}, {"attn", attn}, {"ln2", ln2}, {"fc1", fc1}, {"fc2", fc2}, {"drop", drop}});
}

Tensor TransformerBlock::operator()(const Tensor& x, const AttentionMask& mask) {
  Tensor y = x + drop(attn.self_attention(ln1(x), mask));
  return y + drop(fc2(gelu(fc1(ln2(y)))));
}

}  // namespace tessera::nn
