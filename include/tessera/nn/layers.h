// Layers: PyTorch's names, argument order and default initialization, so a model written here and
// its PyTorch twin start from the same distributions. Parameters are public Tensor members
// (layer.weight), registered under PyTorch's state_dict names. Shapes follow PyTorch (batch
// first, channels second for images); shape and dtype errors come from the underlying ops and
// name them.
#pragma once

#include <array>
#include <optional>

#include "tessera/nn/module.h"
#include "tessera/ops.h"

namespace tessera::nn {

// ------------------------------------------------------------------ linear and convolution
/// y = x W^T + b over the last axis: x [..., in] -> [..., out]. weight [out, in], bias [out];
/// both U(-1/sqrt(in), 1/sqrt(in)) (PyTorch's default).
class TESSERA_API Linear : public Module {
 public:
  Linear(int64_t in_features, int64_t out_features, bool bias = true);
  Tensor forward(const Tensor& x) override;
  Tensor weight, bias;
  int64_t in_features, out_features;
};

/// x [N, C, L] -> [N, out, L']; weight [out, C/groups, k]; init as PyTorch (bound 1/sqrt(fan_in)).
class TESSERA_API Conv1d : public Module {
 public:
  Conv1d(int64_t in_channels, int64_t out_channels, int64_t kernel_size, const Conv1dOptions& opt = {},
         bool bias = true);
  Tensor forward(const Tensor& x) override;
  Tensor weight, bias;
  Conv1dOptions options;
};

/// x [N, C, H, W] -> [N, out, H', W']; weight [out, C/groups, kH, kW]; init as PyTorch.
///   nn::Conv2d conv{1, 32, 3, {.padding = {1, 1}}};
class TESSERA_API Conv2d : public Module {
 public:
  Conv2d(int64_t in_channels, int64_t out_channels, std::array<int64_t, 2> kernel_size, const Conv2dOptions& opt = {},
         bool bias = true);
  Conv2d(int64_t in_channels, int64_t out_channels, int64_t kernel_size, const Conv2dOptions& opt = {},
         bool bias = true)
      : Conv2d(in_channels, out_channels, {kernel_size, kernel_size}, opt, bias) {}
  Tensor forward(const Tensor& x) override;
  Tensor weight, bias;
  Conv2dOptions options;
};

/// Transposed convolution: weight [C, out/groups, kH, kW] (PyTorch's layout and init: fan_in is
/// computed from weight.shape[1], i.e. out/groups * kH * kW).
class TESSERA_API ConvTranspose2d : public Module {
 public:
  ConvTranspose2d(int64_t in_channels, int64_t out_channels, std::array<int64_t, 2> kernel_size,
                  const ConvTranspose2dOptions& opt = {}, bool bias = true);
  ConvTranspose2d(int64_t in_channels, int64_t out_channels, int64_t kernel_size,
                  const ConvTranspose2dOptions& opt = {}, bool bias = true)
      : ConvTranspose2d(in_channels, out_channels, {kernel_size, kernel_size}, opt, bias) {}
  Tensor forward(const Tensor& x) override;
  Tensor weight, bias;
  ConvTranspose2dOptions options;
};

// ------------------------------------------------------------------ pooling
class TESSERA_API MaxPool2d : public Module {
 public:
  explicit MaxPool2d(const Pool2dOptions& opt) : options(opt) {}
  explicit MaxPool2d(int64_t kernel) { options.kernel = {kernel, kernel}; }
  Tensor forward(const Tensor& x) override { return max_pool2d(x, options); }
  Pool2dOptions options;
};

class TESSERA_API AvgPool2d : public Module {
 public:
  explicit AvgPool2d(const Pool2dOptions& opt) : options(opt) {}
  explicit AvgPool2d(int64_t kernel) { options.kernel = {kernel, kernel}; }
  Tensor forward(const Tensor& x) override { return avg_pool2d(x, options); }
  Pool2dOptions options;
};

class TESSERA_API AdaptiveAvgPool2d : public Module {
 public:
  explicit AdaptiveAvgPool2d(std::array<int64_t, 2> output_size) : output_size(output_size) {}
  explicit AdaptiveAvgPool2d(int64_t size) : output_size{size, size} {}
  Tensor forward(const Tensor& x) override { return adaptive_avg_pool2d(x, output_size); }
  std::array<int64_t, 2> output_size;
};

// ------------------------------------------------------------------ normalization
/// Batch normalization over axis 1 of x [N, C, ...]. Training mode normalizes with the batch
/// statistics (biased variance) and updates running_mean/running_var (unbiased variance) with
/// `momentum`, as PyTorch does; eval mode uses the running statistics. Buffers: running_mean,
/// running_var (float32 [C]) and num_batches_tracked (int64 scalar). BatchNorm1d takes [N, C] or
/// [N, C, L], BatchNorm2d [N, C, H, W]; other ranks throw ShapeError.
class TESSERA_API BatchNorm : public Module {
 public:
  BatchNorm(int64_t num_features, int spatial_dims_lo, int spatial_dims_hi, double eps, double momentum, bool affine,
            bool track_running_stats);
  Tensor forward(const Tensor& x) override;
  Tensor weight, bias, running_mean, running_var, num_batches_tracked;
  int64_t num_features;
  double eps, momentum;
  bool track_running_stats;

 private:
  int lo_, hi_;
};
class TESSERA_API BatchNorm1d : public BatchNorm {
 public:
  explicit BatchNorm1d(int64_t num_features, double eps = 1e-5, double momentum = 0.1, bool affine = true,
                       bool track_running_stats = true)
      : BatchNorm(num_features, 0, 1, eps, momentum, affine, track_running_stats) {}
};
class TESSERA_API BatchNorm2d : public BatchNorm {
 public:
  explicit BatchNorm2d(int64_t num_features, double eps = 1e-5, double momentum = 0.1, bool affine = true,
                       bool track_running_stats = true)
      : BatchNorm(num_features, 2, 2, eps, momentum, affine, track_running_stats) {}
};

/// Over the trailing axes given by normalized_shape; weight ones, bias zeros.
class TESSERA_API LayerNorm : public Module {
 public:
  explicit LayerNorm(std::vector<int64_t> normalized_shape, double eps = 1e-5, bool elementwise_affine = true,
                     bool bias = true);
  explicit LayerNorm(int64_t size, double eps = 1e-5, bool elementwise_affine = true, bool bias = true)
      : LayerNorm(std::vector<int64_t>{size}, eps, elementwise_affine, bias) {}
  Tensor forward(const Tensor& x) override;
  Tensor weight, bias;
  std::vector<int64_t> normalized_shape;
  double eps;
};

/// x * rsqrt(mean(x^2) + eps) * weight; eps default 1e-6.
class TESSERA_API RMSNorm : public Module {
 public:
  explicit RMSNorm(std::vector<int64_t> normalized_shape, double eps = 1e-6, bool elementwise_affine = true);
  explicit RMSNorm(int64_t size, double eps = 1e-6, bool elementwise_affine = true)
      : RMSNorm(std::vector<int64_t>{size}, eps, elementwise_affine) {}
  Tensor forward(const Tensor& x) override;
  Tensor weight;
  std::vector<int64_t> normalized_shape;
  double eps;
};

/// x [N, C, ...]: channels split into num_groups groups, each normalized over its channels and
/// the spatial axes; per-channel affine. ValueError when num_groups does not divide num_channels.
class TESSERA_API GroupNorm : public Module {
 public:
  GroupNorm(int64_t num_groups, int64_t num_channels, double eps = 1e-5, bool affine = true);
  Tensor forward(const Tensor& x) override;
  Tensor weight, bias;
  int64_t num_groups, num_channels;
  double eps;
};

// ------------------------------------------------------------------ embedding, dropout
/// indices (int32/int64, any shape) -> [..., embedding_dim]; weight [num, dim] ~ N(0, 1).
class TESSERA_API Embedding : public Module {
 public:
  Embedding(int64_t num_embeddings, int64_t embedding_dim);
  Tensor forward(const Tensor& indices) override { return embedding(weight, indices); }
  Tensor weight;
};

/// Zeroes elements with probability p and scales the rest by 1/(1-p) in training mode, using
/// ts::default_generator() (so checkpoints that save the generator resume identically); identity
/// in eval mode or for p = 0.
class TESSERA_API Dropout : public Module {
 public:
  explicit Dropout(double p = 0.5);
  Tensor forward(const Tensor& x) override;
  double p;
};

// ------------------------------------------------------------------ stateless layers
class TESSERA_API ReLU : public Module {
 public:
  Tensor forward(const Tensor& x) override { return relu(x); }
};
/// min(max(x, 0), 6) (MobileNet's activation).
class TESSERA_API ReLU6 : public Module {
 public:
  Tensor forward(const Tensor& x) override { return clamp(x, Scalar(0.0), Scalar(6.0)); }
};
class TESSERA_API GELU : public Module {
 public:
  explicit GELU(bool approximate_tanh = false) : approximate(approximate_tanh) {}
  Tensor forward(const Tensor& x) override { return gelu(x, approximate); }
  bool approximate;
};
class TESSERA_API SiLU : public Module {
 public:
  Tensor forward(const Tensor& x) override { return silu(x); }
};
class TESSERA_API Tanh : public Module {
 public:
  Tensor forward(const Tensor& x) override { return tanh(x); }
};
class TESSERA_API Sigmoid : public Module {
 public:
  Tensor forward(const Tensor& x) override { return sigmoid(x); }
};
class TESSERA_API Softmax : public Module {
 public:
  explicit Softmax(int64_t axis = -1) : axis(axis) {}
  Tensor forward(const Tensor& x) override { return softmax(x, axis); }
  int64_t axis;
};
class TESSERA_API LogSoftmax : public Module {
 public:
  explicit LogSoftmax(int64_t axis = -1) : axis(axis) {}
  Tensor forward(const Tensor& x) override { return log_softmax(x, axis); }
  int64_t axis;
};
/// Flattens axes start..end (default: all but the batch axis), like torch.nn.Flatten.
class TESSERA_API Flatten : public Module {
 public:
  explicit Flatten(int64_t start_axis = 1, int64_t end_axis = -1) : start(start_axis), end(end_axis) {}
  Tensor forward(const Tensor& x) override { return flatten(x, start, end); }
  int64_t start, end;
};
class TESSERA_API Identity : public Module {
 public:
  Tensor forward(const Tensor& x) override { return x; }
};

}  // namespace tessera::nn
