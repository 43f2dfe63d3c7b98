// The reference models of the examples, the `tessera train` command and the benchmarks, defined
// once so that all of them (and their PyTorch twins in bench/peers) train the same architecture.
#pragma once

#include <memory>
#include <vector>

#include "tessera/nn/attention.h"
#include "tessera/nn/layers.h"

namespace tessera::nn::models {

/// 784-512-256-10 with ReLU; input [N, 784] or [N, 1, 28, 28] (flattened).
class TESSERA_API Mlp : public Module {
 public:
  Mlp(int64_t in = 784, int64_t hidden1 = 512, int64_t hidden2 = 256, int64_t classes = 10);
  Tensor forward(const Tensor& x) override;
  Linear fc1, fc2, fc3;
};

/// conv3x3(1->32, pad 1) ReLU maxpool2 conv3x3(32->64, pad 1) ReLU maxpool2 fc(64*7*7 -> 128) ReLU fc(128 -> 10);
/// input [N, 1, 28, 28].
class TESSERA_API Cnn : public Module {
 public:
  Cnn(int64_t in_channels = 1, int64_t classes = 10);
  Tensor forward(const Tensor& x) override;
  Conv2d conv1, conv2;
  Linear fc1, fc2;
};

struct GptConfig {
  int64_t vocab_size = 256;  // bytes
  int64_t context = 128;
  int64_t d_model = 256;
  int64_t num_layers = 4;
  int64_t num_heads = 4;
  int64_t ff_dim = 1024;  // 4 * d_model
  double dropout = 0.0;
};

/// A GPT-style decoder: token + learned position embeddings, num_layers pre-norm TransformerBlocks
/// with a causal mask, a final LayerNorm and a linear head (no bias) to vocab_size logits.
/// tokens int64 [B, T] with T <= context -> logits [B, T, vocab_size].
class TESSERA_API Gpt : public Module {
 public:
  explicit Gpt(const GptConfig& config = {});
  Tensor forward(const Tensor& tokens) override;
  /// Greedy decoding: appends n_new tokens to prompt [B, T0] (the context window slides when the
  /// sequence grows past config.context). Returns [B, T0 + n_new].
  Tensor generate(const Tensor& prompt, int64_t n_new);

  GptConfig config;
  Embedding tok_emb, pos_emb;
  std::vector<std::shared_ptr<TransformerBlock>> blocks;
  LayerNorm ln_f;
  Linear head;
};

}  // namespace tessera::nn::models
