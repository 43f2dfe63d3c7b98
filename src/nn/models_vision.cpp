// ResNet-18, MobileNet-V2 and the transformer encoder of the inference benchmarks, laid out module
// for module like torchvision / torch.nn so that their state_dicts load into each other.
#include <cmath>

#include "tessera/error.h"
#include "tessera/nn/init.h"
#include "tessera/nn/models.h"

namespace tessera::nn::models {

namespace {

// torchvision's convolution init: kaiming_normal_(mode="fan_out", nonlinearity="relu").
std::shared_ptr<Conv2d> conv(int64_t in, int64_t out, int64_t k, int64_t stride, int64_t groups = 1) {
  auto c = std::make_shared<Conv2d>(
      in, out, k, Conv2dOptions{.stride = {stride, stride}, .padding = {k / 2, k / 2}, .groups = groups},
      /*bias=*/false);
  c->weight = init::kaiming_normal(c->weight.shape(), 0.0, init::FanMode::FanOut, init::Nonlinearity::ReLU);
  return c;
}

// ------------------------------------------------------------------ ResNet-18
class BasicBlock : public Module {
 public:
  BasicBlock(int64_t in, int64_t out, int64_t stride)
      : conv1_(conv(in, out, 3, stride)), bn1(out), conv2_(conv(out, out, 3, 1)), bn2(out) {
    register_module("conv1", conv1_);
    register_module("bn1", bn1);
    register_module("conv2", conv2_);
    register_module("bn2", bn2);
    if (stride != 1 || in != out) {
      downsample.add(conv(in, out, 1, stride)).add<BatchNorm2d>(out);
      register_module("downsample", downsample);
    }
  }
  Tensor forward(const Tensor& x) override {
    Tensor y = relu(bn1((*conv1_)(x)));
    y = bn2((*conv2_)(y));
    return relu(y + (downsample.size() ? downsample(x) : x));
  }

 private:
  std::shared_ptr<Conv2d> conv1_;
  BatchNorm2d bn1;
  std::shared_ptr<Conv2d> conv2_;
  BatchNorm2d bn2;
  Sequential downsample;
};

void add_stage(Sequential& stage, int64_t in, int64_t out, int64_t stride) {
  stage.add<BasicBlock>(in, out, stride).add<BasicBlock>(out, out, 1);
}

// ------------------------------------------------------------------ MobileNet-V2
// torchvision's Conv2dNormActivation: conv (no bias), batch norm, ReLU6 as children 0, 1, 2.
std::shared_ptr<Sequential> conv_bn_relu6(int64_t in, int64_t out, int64_t k, int64_t stride, int64_t groups = 1) {
  auto s = std::make_shared<Sequential>();
  s->add(conv(in, out, k, stride, groups)).add<BatchNorm2d>(out).add<ReLU6>();
  return s;
}

class InvertedResidual : public Module {
 public:
  InvertedResidual(int64_t in, int64_t out, int64_t stride, int64_t expand) : residual_(stride == 1 && in == out) {
    int64_t hidden = in * expand;
    if (expand != 1) conv_.add(conv_bn_relu6(in, hidden, 1, 1));
    conv_
        .add(conv_bn_relu6(hidden, hidden, 3, stride, hidden))  // depthwise
        .add(conv(hidden, out, 1, 1))                           // linear projection
        .add<BatchNorm2d>(out);
    register_module("conv", conv_);
  }
  Tensor forward(const Tensor& x) override { return residual_ ? x + conv_(x) : conv_(x); }

 private:
  bool residual_;
  Sequential conv_;
};

}  // namespace

ResNet18::ResNet18(int64_t num_classes)
    : conv1(3, 64, 7, {.stride = {2, 2}, .padding = {3, 3}}, false), bn1(64), fc(512, num_classes) {
  conv1.weight = init::kaiming_normal(conv1.weight.shape(), 0.0, init::FanMode::FanOut, init::Nonlinearity::ReLU);
  add_stage(layer1, 64, 64, 1);
  add_stage(layer2, 64, 128, 2);
  add_stage(layer3, 128, 256, 2);
  add_stage(layer4, 256, 512, 2);
  register_modules({{"conv1", conv1},
                    {"bn1", bn1},
                    {"layer1", layer1},
                    {"layer2", layer2},
                    {"layer3", layer3},
                    {"layer4", layer4},
                    {"fc", fc}});
}

Tensor ResNet18::forward(const Tensor& x) {
  if (x.ndim() != 4 || x.shape()[1] != 3)
    raise<ShapeError>("ResNet18", "expects images [N, 3, H, W], got " + shape_str(x.shape()));
  Tensor h = relu(bn1(conv1(x)));
  h = max_pool2d(h, {.kernel = {3, 3}, .stride = std::array<int64_t, 2>{2, 2}, .padding = {1, 1}});
  h = layer4(layer3(layer2(layer1(h))));
  return fc(flatten(adaptive_avg_pool2d(h, {1, 1}), 1));
}

MobileNetV2::MobileNetV2(int64_t num_classes) {
  // (expansion t, output channels c, repeats n, first stride s), the paper's Table 2.
  const int64_t settings[7][4] = {{1, 16, 1, 1}, {6, 24, 2, 2},  {6, 32, 3, 2}, {6, 64, 4, 2},
                                  {6, 96, 3, 1}, {6, 160, 3, 2}, {6, 320, 1, 1}};
  int64_t in = 32;
  features.add(conv_bn_relu6(3, in, 3, 2));
  for (const auto& [t, c, n, s] : settings)
    for (int64_t i = 0; i < n; ++i) {
      features.add<InvertedResidual>(in, c, i == 0 ? s : 1, t);
      in = c;
    }
  features.add(conv_bn_relu6(in, 1280, 1, 1));
  auto head = std::make_shared<Linear>(1280, num_classes);
  head->weight = init::normal(head->weight.shape(), 0.0, 0.01);
  head->bias = init::zeros(head->bias.shape());
  classifier.add<Dropout>(0.2).add(head);
  register_modules({{"features", features}, {"classifier", classifier}});
}

Tensor MobileNetV2::forward(const Tensor& x) {
  if (x.ndim() != 4 || x.shape()[1] != 3)
    raise<ShapeError>("MobileNetV2", "expects images [N, 3, H, W], got " + shape_str(x.shape()));
  return classifier(flatten(adaptive_avg_pool2d(features(x), {1, 1}), 1));
}

// ------------------------------------------------------------------ transformer encoder
TransformerEncoder::TransformerEncoder(const EncoderConfig& c) : config(c), norm(c.d_model) {
  for (int64_t i = 0; i < c.num_layers; ++i) layers.add<TransformerBlock>(c.d_model, c.num_heads, c.ff_dim, c.dropout);
  register_modules({{"layers", layers}, {"norm", norm}});
}

Tensor TransformerEncoder::forward(const Tensor& x) { return (*this)(x, AttentionMask{}); }

Tensor TransformerEncoder::operator()(const Tensor& x, const AttentionMask& mask) {
  if (x.ndim() != 3 || x.shape()[2] != config.d_model)
    raise<ShapeError>("TransformerEncoder",
                      "expects x [B, T, " + std::to_string(config.d_model) + "], got " + shape_str(x.shape()));
  Tensor h = x;
  for (size_t i = 0; i < layers.size(); ++i) h = static_cast<TransformerBlock&>(layers[i])(h, mask);
  return norm(h);
}

}  // namespace tessera::nn::models
