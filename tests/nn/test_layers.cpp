// Layers against naive references computed here in double precision, and their properties
// (initialization bounds, causal masking, running statistics).
#include <gtest/gtest.h>

#include <cmath>

#include "harness/gradcheck.h"
#include "tessera/tessera.h"

namespace ts = tessera;
namespace nn = tessera::nn;

namespace {
std::vector<double> values(const ts::Tensor& t) { return t.to(ts::DType::Float64).contiguous().to_vector<double>(); }
}  // namespace

TEST(Init, LinearAndConvMatchPyTorchDefaultBounds) {
  ts::manual_seed(0);
  nn::Linear lin(400, 300);
  double bound = 1.0 / std::sqrt(400.0);
  auto w = values(lin.weight);
  double mx = 0, sq = 0;
  for (double v : w) {
    mx = std::max(mx, std::abs(v));
    sq += v * v;
  }
  EXPECT_LE(mx, bound);
  EXPECT_GT(mx, 0.99 * bound);
  EXPECT_NEAR(std::sqrt(sq / w.size()), bound / std::sqrt(3.0), 0.01 * bound);  // std of U(-b, b)
  for (double v : values(lin.bias)) EXPECT_LE(std::abs(v), bound);
  nn::Conv2d conv(16, 32, 3);
  double cb = 1.0 / std::sqrt(16.0 * 9.0);
  for (double v : values(conv.weight)) EXPECT_LE(std::abs(v), cb);
  nn::ConvTranspose2d ct(16, 8, 3);  // fan_in from weight.shape[1] = 8 * 9
  EXPECT_EQ(ct.weight.shape(), ts::Shape({16, 8, 3, 3}));
  for (double v : values(ct.bias)) EXPECT_LE(std::abs(v), 1.0 / std::sqrt(72.0));
  auto [fi, fo] = nn::init::fans({32, 16, 3, 3});
  EXPECT_EQ(fi, 144);
  EXPECT_EQ(fo, 288);
  EXPECT_NEAR(nn::init::gain(nn::init::Nonlinearity::LeakyReLU, std::sqrt(5.0)), std::sqrt(1.0 / 3.0), 1e-12);
}

TEST(Init, SameSeedSameModel) {
  ts::manual_seed(42);
  nn::models::Mlp a;
  ts::manual_seed(42);
  nn::models::Mlp b;
  EXPECT_TRUE(ts::equal(a.fc2.weight, b.fc2.weight));
  nn::models::Mlp c;
  EXPECT_FALSE(ts::equal(a.fc2.weight, c.fc2.weight));
}

TEST(Linear, MatchesNaiveProduct) {
  ts::manual_seed(3);
  nn::Linear lin(5, 3);
  ts::Generator g(1);
  ts::Tensor x = ts::randn({2, 4, 5}, g);
  ts::Tensor y = lin(x);
  ASSERT_EQ(y.shape(), ts::Shape({2, 4, 3}));
  auto xv = values(x), wv = values(lin.weight), bv = values(lin.bias), yv = values(y);
  for (int r = 0; r < 8; ++r)
    for (int o = 0; o < 3; ++o) {
      double s = bv[o];
      for (int i = 0; i < 5; ++i) s += xv[r * 5 + i] * wv[o * 5 + i];
      EXPECT_NEAR(yv[r * 3 + o], s, 1e-5);
    }
  EXPECT_THROW(lin(ts::zeros({2, 4})), ts::ShapeError);
  EXPECT_THROW(nn::Linear(0, 3), ts::ValueError);
}

TEST(Conv, LayersValidateTheirArguments) {
  ts::Conv2dOptions grouped;
  grouped.groups = 2;
  EXPECT_THROW(nn::Conv2d(3, 4, 3, grouped), ts::ValueError);  // 2 does not divide 3
  EXPECT_THROW(nn::Conv2d(4, 4, 0), ts::ValueError);
  EXPECT_THROW(nn::Conv1d(0, 4, 3), ts::ValueError);
  ts::ConvTranspose2dOptions tgrouped;
  tgrouped.groups = 2;
  EXPECT_THROW(nn::ConvTranspose2d(4, 3, 2, tgrouped), ts::ValueError);
  nn::Conv2d ok(4, 6, 3, grouped);
  EXPECT_EQ(ok.weight.shape(), ts::Shape({6, 2, 3, 3}));
  EXPECT_EQ(ok(ts::zeros({1, 4, 5, 5})).shape(), ts::Shape({1, 6, 3, 3}));
  EXPECT_THROW(ok(ts::zeros({1, 3, 5, 5})), ts::ShapeError);  // error from the conv2d op, naming shapes
}

TEST(BatchNorm, TrainingNormalizesAndUpdatesRunningStatistics) {
  nn::BatchNorm2d bn(3);
  ts::Generator g(2);
  ts::Tensor x = ts::randn({4, 3, 5, 5}, g, ts::DType::Float32, 2.0, 3.0);
  ts::Tensor y = bn(x);
  ts::Tensor m = ts::mean(y, {0, 2, 3});
  ts::Tensor v = ts::var(y, {0, 2, 3}, /*correction=*/0);
  for (double a : values(m)) EXPECT_NEAR(a, 0.0, 1e-5);
  for (double a : values(v)) EXPECT_NEAR(a, 1.0, 1e-3);
  ts::Tensor bm = ts::mean(x, {0, 2, 3}), bv = ts::var(x, {0, 2, 3}, /*correction=*/1);
  EXPECT_TRUE(ts::allclose(bn.running_mean, bm * 0.1, 1e-5, 1e-6));
  EXPECT_TRUE(ts::allclose(bn.running_var, bv * 0.1 + 0.9, 1e-5, 1e-6));
  EXPECT_EQ(bn.num_batches_tracked.item<int64_t>(), 1);
  bn.eval();
  ts::Tensor ye = bn(x);  // running statistics now
  ts::Tensor ref = (x - bn.running_mean.reshape({1, 3, 1, 1})) / ts::sqrt(bn.running_var.reshape({1, 3, 1, 1}) + 1e-5);
  EXPECT_TRUE(ts::allclose(ye, ref, 1e-4, 1e-5));
  EXPECT_THROW(bn(ts::zeros({4, 3, 5})), ts::ShapeError);
  nn::BatchNorm1d bn1(3);
  EXPECT_NO_THROW(bn1(ts::ones({4, 3})));
  EXPECT_THROW(bn1(ts::ones({1, 3})), ts::ValueError);  // one value per channel in training
}

TEST(BatchNorm, TrainingModeGradientMatchesFiniteDifferences) {
  nn::BatchNorm1d bn(3);
  auto f = [&](const ts::TensorList& in) {
    ts::Tensor x = in[0];
    bn.weight = in[1];
    bn.bias = in[2];
    bn.running_mean = ts::zeros({3}, ts::DType::Float64);
    bn.running_var = ts::ones({3}, ts::DType::Float64);
    return bn(x);
  };
  ts::Tensor x = ts::testing::grad_input({5, 3, 2});
  ts::Tensor w = ts::testing::grad_input({3}, ts::testing::Layout::Contiguous, 2);
  ts::Tensor b = ts::testing::grad_input({3}, ts::testing::Layout::Contiguous, 3);
  EXPECT_VJP("BatchNorm1d.train", f, {x, w, b});
}

TEST(BatchNorm, RunningStatisticsUnderValueAndGradArePlainTensors) {
  struct Net : nn::Module {
    nn::Linear fc{4, 3};
    nn::BatchNorm1d bn{3};
    Net() { register_modules({{"fc", fc}, {"bn", bn}}); }
    ts::Tensor forward(const ts::Tensor& x) override { return bn(fc(x)); }
  } net;
  ts::Generator g(9);
  ts::Tensor x = ts::randn({8, 4}, g);
  auto [loss, grads] = nn::value_and_grad(net, [&] { return ts::sum(ts::tanh(net(x))); })();
  EXPECT_EQ(net.bn.running_mean.impl().node, nullptr);  // state, not a tracer of the finished transform
  EXPECT_EQ(net.bn.num_batches_tracked.item<int64_t>(), 1);
  EXPECT_EQ(grads.size(), 4u);  // fc.weight, fc.bias, bn.weight, bn.bias
  net.eval();
  ts::Tensor h = ts::matmul(x, net.fc.weight.transpose(0, 1)) + net.fc.bias;
  ts::Tensor want = (h - net.bn.running_mean) / ts::sqrt(net.bn.running_var + 1e-5);
  EXPECT_TRUE(ts::allclose(net(x), want, 1e-4, 1e-5));
}

TEST(GroupNorm, GradientMatchesFiniteDifferences) {
  nn::GroupNorm gn(2, 4);
  auto f = [&](const ts::TensorList& in) {
    gn.weight = in[1];
    gn.bias = in[2];
    return gn(in[0]);
  };
  EXPECT_VJP("GroupNorm", f,
             {ts::testing::grad_input({2, 4, 3}), ts::testing::grad_input({4}, ts::testing::Layout::Contiguous, 2),
              ts::testing::grad_input({4}, ts::testing::Layout::Contiguous, 3)});
}

TEST(Attention, GradientMatchesFiniteDifferencesWithMasks) {
  // Float64 parameters and inputs; causal and key-padding masks (their -inf entries must not leak
  // into the gradient).
  nn::MultiheadAttention mha(4, 2);
  ts::Tensor w = ts::testing::grad_input({12, 4}, ts::testing::Layout::Contiguous, 4, -0.5, 0.5);
  ts::Tensor wo = ts::testing::grad_input({4, 4}, ts::testing::Layout::Contiguous, 5, -0.5, 0.5);
  mha.in_proj_bias = ts::zeros({12}, ts::DType::Float64);
  mha.out_proj.bias = ts::zeros({4}, ts::DType::Float64);
  nn::AttentionMask mask;
  mask.causal = true;
  mask.key_padding_mask = ts::tensor<bool>({false, false, true, false, false, false}, {2, 3});
  auto f = [&](const ts::TensorList& in) {
    mha.in_proj_weight = in[1];
    mha.out_proj.weight = in[2];
    return mha.self_attention(in[0], mask);
  };
  EXPECT_VJP("MultiheadAttention", f, {ts::testing::grad_input({2, 3, 4}), w, wo});
}

TEST(GroupNorm, MatchesNaiveReference) {
  nn::GroupNorm gn(2, 4);
  ts::Generator g(4);
  ts::Tensor x = ts::randn({2, 4, 3}, g);
  auto y = values(gn(x));
  auto xv = values(x);
  for (int n = 0; n < 2; ++n)
    for (int grp = 0; grp < 2; ++grp) {
      double s = 0, s2 = 0;
      int base = n * 12 + grp * 6;
      for (int i = 0; i < 6; ++i) s += xv[base + i];
      double mu = s / 6;
      for (int i = 0; i < 6; ++i) s2 += (xv[base + i] - mu) * (xv[base + i] - mu);
      double inv = 1.0 / std::sqrt(s2 / 6 + 1e-5);
      for (int i = 0; i < 6; ++i) EXPECT_NEAR(y[base + i], (xv[base + i] - mu) * inv, 1e-4);
    }
  EXPECT_THROW(nn::GroupNorm(3, 4), ts::ValueError);
}

TEST(Norms, LayerNormAndRMSNormUseTheirOps) {
  nn::LayerNorm ln(6);
  nn::RMSNorm rn(6);
  ts::Generator g(5);
  ts::Tensor x = ts::randn({3, 6}, g);
  EXPECT_TRUE(ts::allclose(ln(x), ts::layer_norm(x, {6}), 1e-6, 1e-6));
  EXPECT_TRUE(ts::allclose(rn(x), ts::rms_norm(x, {6}), 1e-6, 1e-6));
  EXPECT_EQ(ln.parameters().size(), 2u);
  EXPECT_EQ(rn.parameters().size(), 1u);
}

TEST(Dropout, ZeroesAFractionInTrainingAndNothingInEval) {
  nn::Dropout d(0.25);
  ts::Tensor x = ts::ones({10000});
  auto v = values(d(x));
  int zeros = 0;
  for (double a : v) {
    if (a == 0.0)
      ++zeros;
    else
      EXPECT_NEAR(a, 1.0 / 0.75, 1e-6);
  }
  EXPECT_NEAR(zeros / 10000.0, 0.25, 0.02);
  d.eval();
  EXPECT_TRUE(d(x).is_same(x));
  EXPECT_THROW(nn::Dropout(1.0), ts::ValueError);
}

TEST(Attention, MatchesNaiveMultiHeadReference) {
  ts::manual_seed(11);
  const int B = 2, T = 3, E = 4, H = 2, D = 2;
  nn::MultiheadAttention mha(E, H);
  ts::Generator g(6);
  mha.in_proj_bias = ts::randn({3 * E}, g);  // non-zero biases exercise the bias path
  mha.out_proj.bias = ts::randn({E}, g);
  ts::Tensor x = ts::randn({B, T, E}, g);
  nn::AttentionMask causal;
  causal.causal = true;
  auto y = values(mha.self_attention(x, causal));
  auto xv = values(x), w = values(mha.in_proj_weight), bi = values(mha.in_proj_bias);
  auto wo = values(mha.out_proj.weight), bo = values(mha.out_proj.bias);
  for (int b = 0; b < B; ++b) {
    // q, k, v [T, 3E]
    std::vector<double> qkv(T * 3 * E);
    for (int t = 0; t < T; ++t)
      for (int o = 0; o < 3 * E; ++o) {
        double s = bi[o];
        for (int i = 0; i < E; ++i) s += xv[(b * T + t) * E + i] * w[o * E + i];
        qkv[t * 3 * E + o] = s;
      }
    std::vector<double> heads_out(T * E);
    for (int h = 0; h < H; ++h)
      for (int t = 0; t < T; ++t) {
        std::vector<double> sc(T, -INFINITY);
        double mx = -INFINITY;
        for (int s = 0; s <= t; ++s) {
          double d = 0;
          for (int j = 0; j < D; ++j) d += qkv[t * 3 * E + h * D + j] * qkv[s * 3 * E + E + h * D + j];
          sc[s] = d / std::sqrt(double(D));
          mx = std::max(mx, sc[s]);
        }
        double z = 0;
        for (int s = 0; s <= t; ++s) z += std::exp(sc[s] - mx);
        for (int j = 0; j < D; ++j) {
          double acc = 0;
          for (int s = 0; s <= t; ++s) acc += std::exp(sc[s] - mx) / z * qkv[s * 3 * E + 2 * E + h * D + j];
          heads_out[t * E + h * D + j] = acc;
        }
      }
    for (int t = 0; t < T; ++t)
      for (int o = 0; o < E; ++o) {
        double s = bo[o];
        for (int i = 0; i < E; ++i) s += heads_out[t * E + i] * wo[o * E + i];
        EXPECT_NEAR(y[(b * T + t) * E + o], s, 1e-4) << b << " " << t << " " << o;
      }
  }
}

TEST(Attention, CausalMaskHidesTheFutureAndPaddingMaskHidesKeys) {
  ts::manual_seed(12);
  nn::MultiheadAttention mha(8, 2);
  ts::Generator g(7);
  ts::Tensor x = ts::randn({1, 5, 8}, g);
  ts::Tensor x2 = ts::concat({ts::slice(x, 1, 0, 3), ts::randn({1, 2, 8}, g)}, 1);  // last two steps changed
  nn::AttentionMask causal;
  causal.causal = true;
  ts::Tensor a = mha.self_attention(x, causal), b = mha.self_attention(x2, causal);
  EXPECT_TRUE(ts::allclose(ts::slice(a, 1, 0, 3), ts::slice(b, 1, 0, 3), 1e-5, 1e-6));
  EXPECT_FALSE(ts::allclose(ts::slice(a, 1, 3, 5), ts::slice(b, 1, 3, 5)));
  nn::AttentionMask pad;
  pad.key_padding_mask = ts::tensor<bool>({false, false, false, true, true}, {1, 5});
  ts::Tensor q = ts::slice(x, 1, 0, 2);
  ts::Tensor pa = mha(q, x, x, pad), pb = mha(q, x2, x2, pad);
  EXPECT_TRUE(ts::allclose(pa, pb, 1e-5, 1e-6));
  pad.key_padding_mask = ts::zeros({1, 4}, ts::DType::Bool);
  EXPECT_THROW(mha(q, x, x, pad), ts::ShapeError);
  EXPECT_THROW(nn::MultiheadAttention(10, 3), ts::ValueError);
}

TEST(Gpt, ForwardIsCausalAndGenerateAppendsTokens) {
  ts::manual_seed(13);
  nn::models::GptConfig cfg{
      .vocab_size = 32, .context = 8, .d_model = 16, .num_layers = 2, .num_heads = 2, .ff_dim = 32};
  nn::models::Gpt gpt(cfg);
  ts::Tensor tok = ts::tensor<int64_t>({1, 2, 3, 4, 5, 6}, {1, 6});
  ts::Tensor tok2 = ts::tensor<int64_t>({1, 2, 3, 9, 9, 9}, {1, 6});
  ts::Tensor a = gpt(tok), b = gpt(tok2);
  ASSERT_EQ(a.shape(), ts::Shape({1, 6, 32}));
  EXPECT_TRUE(ts::allclose(ts::slice(a, 1, 0, 3), ts::slice(b, 1, 0, 3), 1e-5, 1e-5));
  ts::Tensor out = gpt.generate(tok, 5);  // grows past the 8-token context
  EXPECT_EQ(out.shape(), ts::Shape({1, 11}));
  EXPECT_TRUE(ts::equal(ts::slice(out, 1, 0, 6), tok));
  EXPECT_THROW(gpt(ts::zeros({1, 9}, ts::DType::Int64)), ts::ShapeError);
}
