// Linear, convolution, embedding and dropout layers.
#include "tessera/nn/layers.h"

#include <cmath>

#include "tessera/autodiff.h"
#include "tessera/error.h"
#include "tessera/nn/init.h"

namespace tessera::nn {

namespace {
const double kSqrt5 = std::sqrt(5.0);

// PyTorch's reset_parameters for Linear/Conv: weight kaiming_uniform(a=sqrt(5)), bias U(+-1/sqrt(fan_in)).
void init_weight_bias(Tensor& weight, Tensor& bias, IntList wshape, int64_t bias_size, bool with_bias) {
  weight = init::kaiming_uniform(wshape, kSqrt5);
  if (with_bias) {
    int64_t fan_in = init::fans(wshape).first;
    double bound = fan_in > 0 ? 1.0 / std::sqrt(static_cast<double>(fan_in)) : 0.0;
    bias = init::uniform({bias_size}, -bound, bound);
  }
}

void check_positive(const char* layer, const char* what, int64_t v) {
  if (v <= 0) raise<ValueError>(layer, std::string(what) + " must be positive, got " + std::to_string(v));
}

// Channel counts, kernel sizes and groups of a convolution layer.
void check_conv(const char* layer, int64_t in, int64_t out, std::initializer_list<int64_t> kernel, int64_t groups) {
  check_positive(layer, "in_channels", in);
  check_positive(layer, "out_channels", out);
  for (int64_t k : kernel) check_positive(layer, "kernel_size", k);
  check_positive(layer, "groups", groups);
  if (in % groups || out % groups)
    raise<ValueError>(layer, "groups " + std::to_string(groups) + " must divide in_channels " + std::to_string(in) +
                                 " and out_channels " + std::to_string(out));
}
}  // namespace

Linear::Linear(int64_t in, int64_t out, bool with_bias) : in_features(in), out_features(out) {
  check_positive("nn.Linear", "in_features", in);
  check_positive("nn.Linear", "out_features", out);
  init_weight_bias(weight, bias, {out, in}, out, with_bias);
  register_parameter("weight", weight);
  if (with_bias) register_parameter("bias", bias);
}

Tensor Linear::forward(const Tensor& x) {
  if (x.ndim() == 0 || x.shape().back() != in_features)
    raise<ShapeError>("nn.Linear",
                      "expects input [..., " + std::to_string(in_features) + "], got " + shape_str(x.shape()));
  Tensor y = matmul(x, weight.transpose(0, 1));
  return bias.defined() ? y + bias : y;
}

Conv1d::Conv1d(int64_t in, int64_t out, int64_t k, const Conv1dOptions& opt, bool with_bias) : options(opt) {
  check_conv("nn.Conv1d", in, out, {k}, opt.groups);
  init_weight_bias(weight, bias, {out, in / opt.groups, k}, out, with_bias);
  register_parameter("weight", weight);
  if (with_bias) register_parameter("bias", bias);
}

Tensor Conv1d::forward(const Tensor& x) { return conv1d(x, weight, bias, options); }

Conv2d::Conv2d(int64_t in, int64_t out, std::array<int64_t, 2> k, const Conv2dOptions& opt, bool with_bias)
    : options(opt) {
  check_conv("nn.Conv2d", in, out, {k[0], k[1]}, opt.groups);
  init_weight_bias(weight, bias, {out, in / opt.groups, k[0], k[1]}, out, with_bias);
  register_parameter("weight", weight);
  if (with_bias) register_parameter("bias", bias);
}

Tensor Conv2d::forward(const Tensor& x) { return conv2d(x, weight, bias, options); }

ConvTranspose2d::ConvTranspose2d(int64_t in, int64_t out, std::array<int64_t, 2> k, const ConvTranspose2dOptions& opt,
                                 bool with_bias)
    : options(opt) {
  check_conv("nn.ConvTranspose2d", in, out, {k[0], k[1]}, opt.groups);
  init_weight_bias(weight, bias, {in, out / opt.groups, k[0], k[1]}, out, with_bias);
  register_parameter("weight", weight);
  if (with_bias) register_parameter("bias", bias);
}

Tensor ConvTranspose2d::forward(const Tensor& x) { return conv_transpose2d(x, weight, bias, options); }

Embedding::Embedding(int64_t num, int64_t dim) {
  check_positive("nn.Embedding", "num_embeddings", num);
  check_positive("nn.Embedding", "embedding_dim", dim);
  weight = init::normal({num, dim});
  register_parameter("weight", weight);
}

Dropout::Dropout(double prob) : p(prob) {
  if (!(p >= 0.0 && p < 1.0)) raise<ValueError>("nn.Dropout", "p must be in [0, 1), got " + std::to_string(p));
}

Tensor Dropout::forward(const Tensor& x) {
  if (!is_training() || p == 0.0) return x;
  return dropout(x, p, default_generator(), true);
}

}  // namespace tessera::nn
