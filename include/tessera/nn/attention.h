// Attention: scaled dot-product attention, multi-head attention (PyTorch's MultiheadAttention with
// batch_first=True and its parameter names) and a pre-norm transformer block.
#pragma once

#include <memory>

#include "tessera/nn/layers.h"

namespace tessera::nn {

/// Masks for attention. causal: query t may attend to keys s <= t + (S - T) (the usual decoder mask,
/// aligned at the end when S > T). key_padding_mask: bool [B, S], true = this key is padding and is
/// ignored. A query row whose keys are all masked gives NaN, as in PyTorch.
struct AttentionMask {
  bool causal = false;
  Tensor key_padding_mask;
};

/// softmax(q k^T / sqrt(D) + mask) v for q [B, H, T, D], k and v [B, H, S, D] -> [B, H, T, D];
/// dropout (training only, default generator) on the attention weights. ShapeError on mismatch.
TESSERA_API Tensor scaled_dot_product_attention(const Tensor& q, const Tensor& k, const Tensor& v,
                                                const AttentionMask& mask = {}, double dropout_p = 0.0,
                                                bool training = false);

/// Multi-head attention over [B, T, E] inputs (batch first). Parameters as PyTorch:
/// in_proj_weight [3E, E] (Xavier uniform), in_proj_bias [3E] (zeros), out_proj (Linear E -> E,
/// bias zeros). ValueError when num_heads does not divide embed_dim.
class TESSERA_API MultiheadAttention : public Module {
 public:
  MultiheadAttention(int64_t embed_dim, int64_t num_heads, double dropout = 0.0, bool bias = true);
  /// query [B, T, E], key/value [B, S, E] -> [B, T, E].
  Tensor operator()(const Tensor& query, const Tensor& key, const Tensor& value, const AttentionMask& mask = {});
  /// Self-attention: x [B, T, E] with an optional mask.
  Tensor self_attention(const Tensor& x, const AttentionMask& mask = {});
  Tensor forward(const Tensor& x) override { return self_attention(x); }
  using Module::operator();

  Tensor in_proj_weight, in_proj_bias;
  Linear out_proj;
  int64_t embed_dim, num_heads;
  double dropout;

 private:
  Tensor heads(const Tensor& x) const;  // [B, T, E] -> [B, H, T, D]
  Tensor attend(const Tensor& q, const Tensor& k, const Tensor& v, const AttentionMask& mask);
};

/// Pre-norm transformer block (GPT-2 style):
///   x = x + dropout(attn(ln1(x), mask));  x = x + dropout(fc2(gelu(fc1(ln2(x)))))
/// with fc1: d_model -> ff_dim, fc2: ff_dim -> d_model.
class TESSERA_API TransformerBlock : public Module {
 public:
  TransformerBlock(int64_t d_model, int64_t num_heads, int64_t ff_dim, double dropout = 0.0);
  Tensor operator()(const Tensor& x, const AttentionMask& mask);
  Tensor forward(const Tensor& x) override { return (*this)(x, AttentionMask{}); }
  using Module::operator();

  LayerNorm ln1, ln2;
  MultiheadAttention attn;
  Linear fc1, fc2;
  Dropout drop;
};

}  // namespace tessera::nn
