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

namespace tessera::nn::models {

/// ResNet-18 (He et al. 2015) as torchvision builds it, with torchvision's state_dict names
/// (conv1, bn1, layer1.0.conv1, ..., layer2.0.downsample.0, fc) and initialization (convolutions
/// kaiming_normal fan_out/ReLU, batch norms 1/0, fc PyTorch's Linear default).
/// x float [N, 3, H, W] (224x224 in the benchmarks) -> logits [N, num_classes].
class TESSERA_API ResNet18 : public Module {
 public:
  explicit ResNet18(int64_t num_classes = 1000);
  Tensor forward(const Tensor& x) override;
  Conv2d conv1;
  BatchNorm2d bn1;
  Sequential layer1, layer2, layer3, layer4;
  Linear fc;
};

/// MobileNet-V2 (Sandler et al. 2018, width 1.0) as torchvision builds it, with its state_dict
/// names (features.0.0 ..., features.N.conv.K ..., classifier.1) and initialization (convolutions
/// kaiming_normal fan_out, batch norms 1/0, classifier N(0, 0.01) weight and zero bias).
/// x float [N, 3, H, W] -> logits [N, num_classes]; dropout 0.2 before the classifier in training.
class TESSERA_API MobileNetV2 : public Module {
 public:
  explicit MobileNetV2(int64_t num_classes = 1000);
  Tensor forward(const Tensor& x) override;
  Sequential features, classifier;
};

struct EncoderConfig {
  int64_t d_model = 256;
  int64_t num_heads = 4;
  int64_t ff_dim = 1024;
  int64_t num_layers = 4;
  double dropout = 0.0;
};

/// A transformer encoder: num_layers pre-norm TransformerBlocks (GELU, no mask) named layers.0 ...
/// and a final LayerNorm `norm`; PyTorch's nn.TransformerEncoder(norm_first=True, activation
/// "gelu", batch_first=True, norm=LayerNorm) computes the same function. x [B, T, d_model] -> same.
class TESSERA_API TransformerEncoder : public Module {
 public:
  explicit TransformerEncoder(const EncoderConfig& config = {});
  Tensor forward(const Tensor& x) override;
  /// With a key padding mask (bool [B, T], true = padding).
  Tensor operator()(const Tensor& x, const AttentionMask& mask);
  using Module::operator();

  EncoderConfig config;
  Sequential layers;
  LayerNorm norm;
};

}  // namespace tessera::nn::models
