// Normalization layers: BatchNorm (training statistics and running averages), LayerNorm, RMSNorm,
// GroupNorm.
#include "tessera/autodiff.h"
#include "tessera/error.h"
#include "tessera/nn/layers.h"

namespace tessera::nn {

namespace {
// [1, C, 1, ...] for a per-channel vector against x of rank ndim.
Shape channel_shape(int64_t c, int64_t ndim) {
  Shape s(static_cast<size_t>(ndim), 1);
  s[1] = c;
  return s;
}
}  // namespace

BatchNorm::BatchNorm(int64_t n, int lo, int hi, double eps_, double momentum_, bool affine, bool track)
    : num_features(n), eps(eps_), momentum(momentum_), track_running_stats(track), lo_(lo), hi_(hi) {
  if (n <= 0) raise<ValueError>("nn.BatchNorm", "num_features must be positive, got " + std::to_string(n));
  if (affine) {
    weight = ones({n});
    bias = zeros({n});
    register_parameter("weight", weight);
    register_parameter("bias", bias);
  }
  if (track) {
    running_mean = zeros({n});
    running_var = ones({n});
    num_batches_tracked = zeros({}, DType::Int64);
    register_buffer("running_mean", running_mean);
    register_buffer("running_var", running_var);
    register_buffer("num_batches_tracked", num_batches_tracked);
  }
}

Tensor BatchNorm::forward(const Tensor& x) {
  int64_t spatial = x.ndim() - 2;
  if (spatial < lo_ || spatial > hi_ || x.shape()[1] != num_features) {
    std::string want =
        lo_ == hi_ ? "[N, " + std::to_string(num_features) + ", H, W]"
                   : "[N, " + std::to_string(num_features) + "] or [N, " + std::to_string(num_features) + ", L]";
    raise<ShapeError>("nn.BatchNorm", "expects " + want + ", got " + shape_str(x.shape()));
  }
  Shape cshape = channel_shape(num_features, x.ndim());
  bool use_batch = is_training() || !track_running_stats;
  if (!use_batch) return batch_norm(x, running_mean, running_var, weight, bias, eps);

  std::vector<int64_t> axes{0};
  for (int64_t a = 2; a < x.ndim(); ++a) axes.push_back(a);
  int64_t count = x.numel() / num_features;
  if (is_training() && count <= 1)
    raise<ValueError>("nn.BatchNorm",
                      "expected more than 1 value per channel in training, got input " + shape_str(x.shape()));
  Tensor mean_ = mean(x, axes, true);
  Tensor centered = x - mean_;
  Tensor var_ = mean(centered * centered, axes, true);
  Tensor y = centered * rsqrt(var_ + eps);
  if (weight.defined()) y = y * weight.reshape(cshape) + bias.reshape(cshape);

  if (is_training() && track_running_stats) {
    // Running statistics are state, not part of the differentiated computation.
    double m = momentum;
    double unbias = static_cast<double>(count) / static_cast<double>(count - 1);
    Tensor bm = stop_gradient(mean_).reshape({num_features});
    Tensor bv = stop_gradient(var_).reshape({num_features});
    running_mean = running_mean * (1.0 - m) + bm * m;
    running_var = running_var * (1.0 - m) + bv * (m * unbias);
    num_batches_tracked = num_batches_tracked + 1;
  }
  return y;
}

LayerNorm::LayerNorm(std::vector<int64_t> shape, double eps_, bool affine, bool with_bias)
    : normalized_shape(std::move(shape)), eps(eps_) {
  if (normalized_shape.empty()) raise<ValueError>("nn.LayerNorm", "normalized_shape must not be empty");
  if (affine) {
    weight = ones(normalized_shape);
    register_parameter("weight", weight);
    if (with_bias) {
      bias = zeros(normalized_shape);
      register_parameter("bias", bias);
    }
  }
}

Tensor LayerNorm::forward(const Tensor& x) { return layer_norm(x, normalized_shape, weight, bias, eps); }

RMSNorm::RMSNorm(std::vector<int64_t> shape, double eps_, bool affine) : normalized_shape(std::move(shape)), eps(eps_) {
  if (normalized_shape.empty()) raise<ValueError>("nn.RMSNorm", "normalized_shape must not be empty");
  if (affine) {
    weight = ones(normalized_shape);
    register_parameter("weight", weight);
  }
}

Tensor RMSNorm::forward(const Tensor& x) { return rms_norm(x, normalized_shape, weight, eps); }

GroupNorm::GroupNorm(int64_t groups, int64_t channels, double eps_, bool affine)
    : num_groups(groups), num_channels(channels), eps(eps_) {
  if (groups <= 0 || channels <= 0 || channels % groups)
    raise<ValueError>("nn.GroupNorm",
                      "num_groups " + std::to_string(groups) + " must divide num_channels " + std::to_string(channels));
  if (affine) {
    weight = ones({channels});
    bias = zeros({channels});
    register_parameter("weight", weight);
    register_parameter("bias", bias);
  }
}

Tensor GroupNorm::forward(const Tensor& x) {
  if (x.ndim() < 2 || x.shape()[1] != num_channels)
    raise<ShapeError>("nn.GroupNorm",
                      "expects [N, " + std::to_string(num_channels) + ", ...], got " + shape_str(x.shape()));
  int64_t n = x.shape()[0];
  Tensor g = x.reshape({n, num_groups, -1});
  Tensor mu = mean(g, {2}, true);
  Tensor c = g - mu;
  Tensor var_ = mean(c * c, {2}, true);
  Tensor y = (c * rsqrt(var_ + eps)).reshape(x.shape());
  if (weight.defined()) {
    Shape cs = channel_shape(num_channels, x.ndim());
    y = y * weight.reshape(cs) + bias.reshape(cs);
  }
  return y;
}

}  // namespace tessera::nn
