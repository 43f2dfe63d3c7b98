// The inference-benchmark models: torchvision's parameter counts and state_dict names (so weights
// move between Tessera and PyTorch by name), output shapes, eval-mode determinism.
#include <gtest/gtest.h>

#include <cmath>

#include "tessera/tessera.h"

namespace ts = tessera;
namespace models = tessera::nn::models;

namespace {

std::vector<int64_t> shape_of(const ts::TensorMap& m, const std::string& k) {
  auto it = m.find(k);
  if (it == m.end()) return {};
  auto s = it->second.shape();
  return {s.begin(), s.end()};
}

}  // namespace

TEST(VisionModels, ResNet18HasTorchvisionsParametersAndNames) {
  ts::manual_seed(0);
  models::ResNet18 net;
  EXPECT_EQ(net.num_parameters(), 11689512);  // torchvision.models.resnet18()
  auto sd = net.state_dict();
  EXPECT_EQ(sd.size(), 122u);  // 62 parameters + 60 batch-norm buffers
  EXPECT_EQ(shape_of(sd, "conv1.weight"), (std::vector<int64_t>{64, 3, 7, 7}));
  EXPECT_EQ(shape_of(sd, "layer2.0.downsample.0.weight"), (std::vector<int64_t>{128, 64, 1, 1}));
  EXPECT_EQ(shape_of(sd, "layer2.0.downsample.1.running_var"), (std::vector<int64_t>{128}));
  EXPECT_EQ(shape_of(sd, "layer4.1.bn2.num_batches_tracked"), (std::vector<int64_t>{}));
  EXPECT_EQ(sd.count("layer4.1.bn2.num_batches_tracked"), 1u);
  EXPECT_EQ(sd.count("layer1.0.downsample.0.weight"), 0u);  // no projection where shapes agree
  EXPECT_EQ(shape_of(sd, "fc.weight"), (std::vector<int64_t>{1000, 512}));
}

TEST(VisionModels, MobileNetV2HasTorchvisionsParametersAndNames) {
  ts::manual_seed(0);
  models::MobileNetV2 net;
  EXPECT_EQ(net.num_parameters(), 3504872);  // torchvision.models.mobilenet_v2()
  auto sd = net.state_dict();
  EXPECT_EQ(shape_of(sd, "features.0.0.weight"), (std::vector<int64_t>{32, 3, 3, 3}));
  EXPECT_EQ(shape_of(sd, "features.1.conv.0.0.weight"), (std::vector<int64_t>{32, 1, 3, 3}));  // t = 1: depthwise first
  EXPECT_EQ(shape_of(sd, "features.1.conv.1.weight"), (std::vector<int64_t>{16, 32, 1, 1}));
  EXPECT_EQ(shape_of(sd, "features.2.conv.0.0.weight"), (std::vector<int64_t>{96, 16, 1, 1}));
  EXPECT_EQ(shape_of(sd, "features.2.conv.3.running_mean"), (std::vector<int64_t>{24}));
  EXPECT_EQ(shape_of(sd, "features.18.0.weight"), (std::vector<int64_t>{1280, 320, 1, 1}));
  EXPECT_EQ(shape_of(sd, "classifier.1.weight"), (std::vector<int64_t>{1000, 1280}));
  // torchvision's classifier init: N(0, 0.01), zero bias.
  auto w = sd.at("classifier.1.weight");
  double sd_w = ts::std(w).item<float>();
  EXPECT_NEAR(sd_w, 0.01, 0.0005);
  EXPECT_EQ(ts::max(ts::abs(sd.at("classifier.1.bias"))).item<float>(), 0.0f);
}

TEST(VisionModels, ForwardShapesAndEvalDeterminism) {
  ts::manual_seed(1);
  models::ResNet18 r(10);
  models::MobileNetV2 m(7);
  r.eval();
  m.eval();
  ts::Generator g(3);
  auto x = ts::uniform({2, 3, 32, 32}, -1, 1, g);
  auto yr = r(x), ym = m(x);
  EXPECT_EQ(yr.shape(), (ts::Shape{2, 10}));
  EXPECT_EQ(ym.shape(), (ts::Shape{2, 7}));
  EXPECT_TRUE(std::isfinite(ts::sum(ts::abs(yr)).item<float>()));
  EXPECT_TRUE(std::isfinite(ts::sum(ts::abs(ym)).item<float>()));
  EXPECT_TRUE(ts::equal(yr, r(x)));  // eval mode: no dropout, running statistics
  EXPECT_TRUE(ts::equal(ym, m(x)));
  // Each image is classified independently of the other images in the batch in eval mode.
  auto y0 = r(ts::slice(x, 0, 0, 1));
  EXPECT_LT(ts::max(ts::abs(y0 - ts::slice(yr, 0, 0, 1))).item<float>(), 1e-4f);
  EXPECT_THROW(r(ts::zeros({2, 1, 32, 32})), ts::ShapeError);
}

TEST(VisionModels, EncoderIsItsBlocksThenLayerNorm) {
  ts::manual_seed(2);
  models::TransformerEncoder enc({.d_model = 32, .num_heads = 4, .ff_dim = 64, .num_layers = 3});
  auto sd = enc.state_dict();
  EXPECT_EQ(shape_of(sd, "layers.2.attn.in_proj_weight"), (std::vector<int64_t>{96, 32}));
  EXPECT_EQ(shape_of(sd, "layers.0.fc1.weight"), (std::vector<int64_t>{64, 32}));
  EXPECT_EQ(shape_of(sd, "norm.weight"), (std::vector<int64_t>{32}));
  ts::Generator g(5);
  auto x = ts::normal({2, 9, 32}, 0, 1, g);
  auto y = enc(x);
  ts::Tensor h = x;
  for (size_t i = 0; i < enc.layers.size(); ++i) h = enc.layers[i](h);
  EXPECT_TRUE(ts::allclose(y, enc.norm(h), 1e-6, 1e-6));
  // Without a mask every position sees every other: changing the last token changes the first output.
  auto x2 = ts::concat({ts::slice(x, 1, 0, 8), ts::zeros({2, 1, 32})}, 1);
  EXPECT_GT(ts::max(ts::abs(ts::slice(enc(x2), 1, 0, 1) - ts::slice(y, 1, 0, 1))).item<float>(), 1e-4f);
  EXPECT_THROW(enc(ts::zeros({2, 9, 16})), ts::ShapeError);
}
