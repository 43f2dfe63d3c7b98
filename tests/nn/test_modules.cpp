// nn::Module: registration, names, state_dict, freezing, modes, value_and_grad over parameters.
#include <gtest/gtest.h>

#include <cmath>

#include "tessera/tessera.h"

namespace ts = tessera;
namespace nn = tessera::nn;

namespace {

struct TwoLayer : nn::Module {
  nn::Linear fc1{4, 3}, fc2{3, 2};
  nn::BatchNorm1d bn{3};
  TwoLayer() { register_modules({{"fc1", fc1}, {"bn", bn}, {"fc2", fc2}}); }
  ts::Tensor forward(const ts::Tensor& x) override { return fc2(ts::relu(bn(fc1(x)))); }
};

std::vector<std::string> names(const nn::ParameterList& ps) {
  std::vector<std::string> v;
  for (auto& p : ps) v.push_back(p.name);
  return v;
}

}  // namespace

TEST(Module, ParametersHaveDottedNamesInRegistrationOrder) {
  TwoLayer m;
  EXPECT_EQ(names(m.parameters()),
            (std::vector<std::string>{"fc1.weight", "fc1.bias", "bn.weight", "bn.bias", "fc2.weight", "fc2.bias"}));
  EXPECT_EQ(names(m.buffers()),
            (std::vector<std::string>{"bn.running_mean", "bn.running_var", "bn.num_batches_tracked"}));
  EXPECT_EQ(m.num_parameters(), 4 * 3 + 3 + 3 + 3 + 3 * 2 + 2);
  EXPECT_EQ(m.parameters()[0].value->shape(), ts::Shape({3, 4}));
}

TEST(Module, ReferenceModelsHaveTheExpectedParameterCounts) {
  nn::models::Mlp mlp;
  EXPECT_EQ(mlp.num_parameters(), 784 * 512 + 512 + 512 * 256 + 256 + 256 * 10 + 10);  // 535,818
  nn::models::Cnn cnn;
  EXPECT_EQ(cnn.num_parameters(), 32 * 9 + 32 + 64 * 32 * 9 + 64 + 3136 * 128 + 128 + 128 * 10 + 10);
  nn::models::Gpt gpt;
  // per block: 2 LayerNorms (2*2*256), in_proj 3*256*256+768, out_proj 256*256+256, fc1 256*1024+1024, fc2 1024*256+256
  int64_t block = 4 * 256 + 3 * 256 * 256 + 768 + 256 * 256 + 256 + 256 * 1024 + 1024 + 1024 * 256 + 256;
  EXPECT_EQ(gpt.num_parameters(), 256 * 256 + 128 * 256 + 4 * block + 2 * 256 + 256 * 256);
}

TEST(Module, StateDictRoundTripsIntoAFreshModel) {
  ts::manual_seed(1);
  TwoLayer a;
  ts::manual_seed(2);
  TwoLayer b;
  ts::Generator gx(3);
  ts::Tensor x = ts::randn({5, 4}, gx);
  a.eval();
  b.eval();
  EXPECT_FALSE(ts::allclose(a(x), b(x)));
  ts::TensorMap sd = a.state_dict();
  EXPECT_EQ(sd.size(), 9u);
  b.load_state_dict(sd);
  EXPECT_TRUE(ts::equal(a(x), b(x)));
}

TEST(Module, LoadStateDictRejectsMissingUnexpectedAndMisshapedEntries) {
  TwoLayer m;
  ts::TensorMap sd = m.state_dict();
  ts::Tensor before = m.fc1.weight;
  ts::TensorMap missing = sd;
  missing.erase("fc2.bias");
  EXPECT_THROW(m.load_state_dict(missing), ts::ValueError);
  m.load_state_dict(missing, /*strict=*/false);  // allowed when not strict
  ts::TensorMap extra = sd;
  extra["fc3.weight"] = ts::zeros({1});
  try {
    m.load_state_dict(extra);
    FAIL() << "no error";
  } catch (const ts::ValueError& e) {
    EXPECT_NE(std::string(e.what()).find("unexpected: fc3.weight"), std::string::npos) << e.what();
  }
  ts::TensorMap bad = sd;
  bad["fc1.weight"] = ts::zeros({4, 3});
  try {
    m.load_state_dict(bad);
    FAIL() << "no error";
  } catch (const ts::ShapeError& e) {
    EXPECT_NE(std::string(e.what()).find("fc1.weight"), std::string::npos) << e.what();
  }
  EXPECT_TRUE(m.fc1.weight.is_same(before));  // a failed load changes nothing
  bad["fc1.weight"] = ts::zeros({3, 4}, ts::DType::Float64);
  EXPECT_THROW(m.load_state_dict(bad), ts::DTypeError);
}

TEST(Module, FreezeRemovesParametersFromTraining) {
  TwoLayer m;
  m.freeze("fc1");
  EXPECT_EQ(names(m.parameters()), (std::vector<std::string>{"bn.weight", "bn.bias", "fc2.weight", "fc2.bias"}));
  EXPECT_EQ(m.all_parameters().size(), 6u);
  EXPECT_EQ(m.num_parameters(true), 3 + 3 + 6 + 2);
  ts::Generator gx(3);
  ts::Tensor x = ts::randn({5, 4}, gx);
  auto [loss, grads] = nn::value_and_grad(m, [&] { return ts::sum(m(x)); })();
  EXPECT_EQ(grads.count("fc1.weight"), 0u);
  EXPECT_EQ(grads.count("fc2.weight"), 1u);
  m.unfreeze();
  EXPECT_EQ(m.parameters().size(), 6u);
  EXPECT_THROW(m.freeze("fc"), ts::ValueError);  // prefixes match whole name segments
  EXPECT_NE(m.summary().find("fc1.weight"), std::string::npos);
}

TEST(Module, TrainAndEvalPropagateToChildren) {
  TwoLayer m;
  EXPECT_TRUE(m.bn.is_training());
  m.eval();
  EXPECT_FALSE(m.bn.is_training());
  m.train();
  EXPECT_TRUE(m.fc2.is_training());
}

TEST(Module, RegistrationErrorsAreTyped) {
  struct Bad : nn::Module {
    ts::Tensor w;
    Bad(int mode) {
      register_parameter("w", w);
      if (mode == 0) register_buffer("w", w);
      if (mode == 1) register_parameter("a.b", w);
    }
  };
  EXPECT_THROW(Bad(0), ts::ValueError);
  EXPECT_THROW(Bad(1), ts::ValueError);
  nn::MultiheadAttention mha(8, 2);
  EXPECT_NO_THROW(mha.forward(ts::zeros({1, 3, 8})));
  nn::Module plain;
  EXPECT_THROW(plain(ts::zeros({1})), ts::NotImplementedError);
}

TEST(Module, ValueAndGradMatchesTheFunctionalGradient) {
  ts::manual_seed(7);
  nn::Linear lin(4, 3);
  ts::Generator g(5);
  ts::Tensor x = ts::randn({6, 4}, g);
  auto [loss, grads] = nn::value_and_grad(lin, [&] { return ts::sum(ts::tanh(lin(x))); })();
  auto f = [&](const ts::Tensor& w, const ts::Tensor& b) {
    return ts::sum(ts::tanh(ts::matmul(x, w.transpose(0, 1)) + b));
  };
  auto [gw, gb] = ts::grad<0, 1>(f)(lin.weight, lin.bias);
  EXPECT_TRUE(ts::allclose(grads.at("weight"), gw, 1e-5, 1e-6));
  EXPECT_TRUE(ts::allclose(grads.at("bias"), gb, 1e-5, 1e-6));
  EXPECT_NEAR(loss.item<float>(), f(lin.weight, lin.bias).item<float>(), 1e-5);
  // The parameters are the original tensors again after the call.
  EXPECT_EQ(lin.weight.impl().node, nullptr);
}

TEST(Module, ValueAndGradRestoresParametersWhenTheLossThrows) {
  nn::Linear lin(2, 2);
  ts::Tensor w = lin.weight;
  EXPECT_THROW(nn::value_and_grad(lin, [&] { return ts::sum(lin(ts::zeros({1, 5}))); })(), ts::ShapeError);
  EXPECT_TRUE(lin.weight.is_same(w));
}

TEST(Module, ValueAndGradPassesAuxiliaryOutputs) {
  nn::Linear lin(3, 2);
  ts::Tensor x = ts::ones({4, 3});
  auto [value, grads] = nn::value_and_grad(lin, [&] {
    ts::Tensor logits = lin(x);
    return std::make_pair(ts::mean(logits), logits);
  })();
  EXPECT_EQ(value.second.shape(), ts::Shape({4, 2}));
  EXPECT_EQ(value.second.impl().node, nullptr);  // aux comes back as a plain tensor
  EXPECT_TRUE(ts::allclose(grads.at("bias"), ts::full({2}, 0.5)));
}

TEST(Sequential, ChainsLayersAndNamesThemByIndex) {
  nn::Sequential net;
  net.add<nn::Linear>(4, 8).add<nn::ReLU>().add<nn::Dropout>(0.0).add<nn::Linear>(8, 2);
  EXPECT_EQ(net.size(), 4u);
  EXPECT_EQ(names(net.parameters()), (std::vector<std::string>{"0.weight", "0.bias", "3.weight", "3.bias"}));
  EXPECT_EQ(net(ts::zeros({5, 4})).shape(), ts::Shape({5, 2}));
}
