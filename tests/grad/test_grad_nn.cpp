// Gradient checks of the linear-algebra and neural-network ops against central differences in
// float64: matmul (batched, broadcast, 1-d), conv1d/conv2d/conv_transpose2d (stride, padding,
// dilation, groups, bias: data and weight gradients), max/avg pooling 1-d and 2-d (ceil_mode,
// count_include_pad=false), adaptive_avg_pool2d, softmax, log_softmax, layer_norm and rms_norm
// (with and without weight/bias), batch_norm (inference form, and training form written with
// mean/var), gelu (both forms), silu and softplus.
#include "harness/gradcheck.h"

namespace ts = tessera;
using namespace tessera::testing;
using ts::Shape;
using ts::Tensor;
using ts::TensorList;

namespace {

GradFn matmul_fn() {
  return [](const TensorList& in) { return ts::matmul(in[0], in[1]); };
}

TEST(GradMatmul, MatricesInEveryLayout) {
  uint64_t seed = 1;
  for (Layout la : all_layouts()) {
    for (Layout lb : {Layout::Contiguous, Layout::Transposed, Layout::Sliced}) {
      Tensor a = grad_input({3, 4}, la, seed++);
      Tensor b = grad_input({4, 2}, lb, seed++);
      SCOPED_TRACE(layout_name(la) + " x " + layout_name(lb));
      EXPECT_GRADS("matmul 2-d", matmul_fn(), {a, b});
    }
  }
}

TEST(GradMatmul, OneDimensionalOperands) {
  EXPECT_GRADS("matmul vec x mat", matmul_fn(),
               {grad_input({4}, Layout::Sliced, 20), grad_input({4, 3}, Layout::Transposed, 21)});
  EXPECT_GRADS("matmul mat x vec", matmul_fn(),
               {grad_input({3, 4}, Layout::Contiguous, 22), grad_input({4}, Layout::Offset, 23)});
  EXPECT_GRADS("matmul vec x vec (0-d result)", matmul_fn(),
               {grad_input({5}, Layout::Contiguous, 24), grad_input({5}, Layout::Sliced, 25)});
  EXPECT_GRADS("matmul batched x vec", matmul_fn(),
               {grad_input({2, 3, 4}, Layout::Transposed, 26), grad_input({4}, Layout::Contiguous, 27)});
  EXPECT_GRADS("matmul vec x batched", matmul_fn(),
               {grad_input({3}, Layout::Contiguous, 28), grad_input({2, 3, 4}, Layout::Contiguous, 29)});
}

TEST(GradMatmul, BatchedAndBroadcastBatchAxes) {
  EXPECT_GRADS("matmul batched", matmul_fn(),
               {grad_input({2, 3, 4}, Layout::Transposed, 40), grad_input({2, 4, 2}, Layout::Contiguous, 41)});
  EXPECT_GRADS("matmul broadcast rhs", matmul_fn(),
               {grad_input({2, 3, 4}, Layout::Contiguous, 42), grad_input({4, 2}, Layout::Sliced, 43)});
  EXPECT_GRADS("matmul broadcast lhs", matmul_fn(),
               {grad_input({3, 4}, Layout::Transposed, 44), grad_input({2, 4, 2}, Layout::Contiguous, 45)});
  EXPECT_GRADS("matmul broadcast both", matmul_fn(),
               {grad_input({2, 1, 2, 3}, Layout::Contiguous, 46), grad_input({3, 3, 2}, Layout::Transposed, 47)});
  EXPECT_GRADS("matmul expanded batch", matmul_fn(),
               {grad_input({2, 2, 3}, Layout::Expanded, 48), grad_input({2, 3, 2}, Layout::Contiguous, 49)});
  EXPECT_GRADS("matmul inner size 1", matmul_fn(),
               {grad_input({3, 1}, Layout::Contiguous, 50), grad_input({1, 4}, Layout::Contiguous, 51)});
  EXPECT_GRADS("matmul empty inner axis (zeros)", matmul_fn(),
               {grad_input({2, 0}, Layout::Contiguous, 53), grad_input({0, 3}, Layout::Contiguous, 54)});
  EXPECT_GRADS("matmul empty batch", matmul_fn(),
               {grad_input({0, 2, 3}, Layout::Contiguous, 55), grad_input({3, 2}, Layout::Contiguous, 56)});
  EXPECT_GRADS("matmul same input", [](const TensorList& in) { return ts::matmul(in[0], ts::transpose(in[0], 0, 1)); },
               {grad_input({3, 2}, Layout::Sliced, 52)});
}

TEST(GradConv, Conv2dStridePaddingDilationGroupsBias) {
  struct Case {
    const char* name;
    Shape x, w;
    bool bias;
    ts::Conv2dOptions opt;
  };
  const std::vector<Case> cases{
      {"plain", {1, 2, 4, 4}, {3, 2, 2, 2}, false, {}},
      {"bias", {2, 2, 4, 3}, {2, 2, 2, 2}, true, {}},
      {"stride 2", {1, 1, 5, 5}, {2, 1, 3, 3}, true, {{2, 2}, {0, 0}, {1, 1}, 1}},
      {"padding", {1, 2, 3, 3}, {2, 2, 3, 3}, false, {{1, 1}, {1, 1}, {1, 1}, 1}},
      {"asymmetric stride and padding", {1, 1, 5, 4}, {1, 1, 2, 3}, true, {{2, 1}, {1, 0}, {1, 1}, 1}},
      {"dilation", {1, 1, 5, 5}, {2, 1, 2, 2}, false, {{1, 1}, {0, 1}, {2, 2}, 1}},
      {"groups", {1, 4, 3, 3}, {4, 2, 2, 2}, true, {{1, 1}, {1, 1}, {1, 1}, 2}},
      {"depthwise", {2, 3, 3, 3}, {3, 1, 2, 2}, false, {{1, 1}, {0, 0}, {1, 1}, 3}},
      {"1x1 kernel", {1, 3, 2, 2}, {2, 3, 1, 1}, true, {}},
  };
  uint64_t seed = 100;
  for (const Case& c : cases) {
    for (Layout l : {Layout::Contiguous, Layout::Transposed}) {
      TensorList in{grad_input(c.x, l, seed++), grad_input(c.w, Layout::Contiguous, seed++, -1, 1)};
      if (c.bias) in.push_back(grad_input({c.w[0]}, Layout::Sliced, seed++));
      GradFn f = [opt = c.opt](const TensorList& v) {
        return ts::conv2d(v[0], v[1], v.size() > 2 ? v[2] : Tensor(), opt);
      };
      SCOPED_TRACE(std::string(c.name) + " " + layout_name(l));
      EXPECT_GRADS(std::string("conv2d ") + c.name, f, in, GradCheckOptions{.max_jac_elems = 2048});
    }
  }
  // Unbatched input [C, H, W].
  EXPECT_GRADS("conv2d unbatched", [](const TensorList& v) { return ts::conv2d(v[0], v[1]); },
               {grad_input({2, 3, 3}, Layout::Contiguous, 190), grad_input({2, 2, 2, 2}, Layout::Contiguous, 191)});
}

TEST(GradConv, Conv1d) {
  uint64_t seed = 200;
  const std::vector<std::pair<ts::Conv1dOptions, Shape>> cases{
      {{}, {3, 2, 2}}, {{2, 1, 1, 1}, {3, 2, 3}}, {{1, 2, 2, 1}, {2, 2, 2}}, {{1, 0, 1, 2}, {4, 1, 2}}};
  for (const auto& [opt, wshape] : cases) {
    TensorList in{grad_input({2, 2, 6}, Layout::Transposed, seed++),
                  grad_input(wshape, Layout::Contiguous, seed++, -1, 1),
                  grad_input({wshape[0]}, Layout::Contiguous, seed++)};
    SCOPED_TRACE("stride " + std::to_string(opt.stride) + " padding " + std::to_string(opt.padding) + " dilation " +
                 std::to_string(opt.dilation) + " groups " + std::to_string(opt.groups));
    EXPECT_GRADS(
        "conv1d", [opt = opt](const TensorList& v) { return ts::conv1d(v[0], v[1], v[2], opt); }, in);
    EXPECT_GRADS("conv1d no bias", [opt = opt](const TensorList& v) { return ts::conv1d(v[0], v[1], Tensor(), opt); },
                 {in[0], in[1]});
  }
}

TEST(GradConv, ConvTranspose2d) {
  struct Case {
    const char* name;
    Shape x, w;
    bool bias;
    ts::ConvTranspose2dOptions opt;
  };
  const std::vector<Case> cases{
      {"plain", {1, 2, 3, 3}, {2, 3, 2, 2}, false, {}},
      {"stride 2 bias", {2, 1, 2, 3}, {1, 2, 3, 3}, true, {{2, 2}, {0, 0}, {0, 0}, {1, 1}, 1}},
      {"padding", {1, 2, 3, 3}, {2, 1, 3, 3}, true, {{1, 1}, {1, 1}, {0, 0}, {1, 1}, 1}},
      {"output_padding", {1, 1, 3, 2}, {1, 2, 3, 3}, false, {{2, 2}, {1, 1}, {1, 1}, {1, 1}, 1}},
      {"dilation", {1, 1, 3, 3}, {1, 1, 2, 2}, false, {{1, 1}, {0, 0}, {0, 0}, {2, 2}, 1}},
      {"groups", {1, 4, 2, 2}, {4, 1, 2, 2}, true, {{2, 1}, {0, 0}, {0, 0}, {1, 1}, 2}},
  };
  uint64_t seed = 300;
  for (const Case& c : cases) {
    TensorList in{grad_input(c.x, Layout::Transposed, seed++), grad_input(c.w, Layout::Contiguous, seed++, -1, 1)};
    if (c.bias) in.push_back(grad_input({c.w[1] * c.opt.groups}, Layout::Contiguous, seed++));
    GradFn f = [opt = c.opt](const TensorList& v) {
      return ts::conv_transpose2d(v[0], v[1], v.size() > 2 ? v[2] : Tensor(), opt);
    };
    SCOPED_TRACE(c.name);
    EXPECT_GRADS(std::string("conv_transpose2d ") + c.name, f, in, GradCheckOptions{.max_jac_elems = 2048});
  }
}

TEST(GradPool, MaxPool2d) {
  uint64_t seed = 400;
  std::vector<ts::Pool2dOptions> opts(5);
  opts[1].stride = std::array<int64_t, 2>{1, 1};  // overlapping windows
  opts[2].kernel = {3, 3};
  opts[2].stride = std::array<int64_t, 2>{2, 2};
  opts[2].padding = {1, 1};
  opts[3].kernel = {2, 3};
  opts[3].ceil_mode = true;  // ragged last window
  opts[4].kernel = {3, 2};
  opts[4].stride = std::array<int64_t, 2>{2, 1};
  opts[4].padding = {1, 0};
  opts[4].ceil_mode = true;
  for (size_t i = 0; i < opts.size(); ++i) {
    for (Layout l : {Layout::Contiguous, Layout::Transposed}) {
      SCOPED_TRACE("options " + std::to_string(i) + " " + layout_name(l));
      EXPECT_GRADS(
          "max_pool2d", [o = opts[i]](const TensorList& v) { return ts::max_pool2d(v[0], o); },
          {grad_input({2, 2, 5, 5}, l, seed++)}, GradCheckOptions{.max_jac_elems = 2048});
    }
  }
  EXPECT_GRADS("max_pool2d unbatched", [](const TensorList& v) { return ts::max_pool2d(v[0], {}); },
               {grad_input({2, 4, 4}, Layout::Sliced, 450)});
}

TEST(GradPool, AvgPool2dWithAndWithoutPadCounting) {
  uint64_t seed = 500;
  for (bool include : {true, false}) {
    for (bool ceil : {false, true}) {
      std::vector<ts::Pool2dOptions> opts(3);
      opts[1].kernel = {3, 3};
      opts[1].stride = std::array<int64_t, 2>{2, 2};
      opts[1].padding = {1, 1};
      opts[2].kernel = {2, 3};
      opts[2].stride = std::array<int64_t, 2>{1, 2};
      opts[2].padding = {1, 1};
      for (size_t i = 0; i < opts.size(); ++i) {
        opts[i].ceil_mode = ceil;
        opts[i].count_include_pad = include;
        SCOPED_TRACE("options " + std::to_string(i) + " count_include_pad " + std::to_string(include) + " ceil " +
                     std::to_string(ceil));
        EXPECT_GRADS("avg_pool2d", [o = opts[i]](const TensorList& v) { return ts::avg_pool2d(v[0], o); },
                     {grad_input({1, 2, 5, 5}, Layout::Transposed, seed++)});
      }
    }
  }
}

TEST(GradPool, Pool1d) {
  uint64_t seed = 600;
  std::vector<ts::Pool1dOptions> opts(4);
  opts[1].kernel = 3;
  opts[1].stride = 2;
  opts[1].padding = 1;
  opts[2].kernel = 3;
  opts[2].stride = 2;
  opts[2].ceil_mode = true;
  opts[3].kernel = 2;
  opts[3].stride = 1;
  opts[3].padding = 1;
  opts[3].count_include_pad = false;
  for (size_t i = 0; i < opts.size(); ++i) {
    SCOPED_TRACE("options " + std::to_string(i));
    Tensor x = grad_input({2, 2, 7}, Layout::Transposed, seed++);
    EXPECT_GRADS("max_pool1d", [o = opts[i]](const TensorList& v) { return ts::max_pool1d(v[0], o); }, {x});
    EXPECT_GRADS("avg_pool1d", [o = opts[i]](const TensorList& v) { return ts::avg_pool1d(v[0], o); }, {x});
  }
}

TEST(GradPool, AdaptiveAvgPool2d) {
  uint64_t seed = 700;
  for (std::array<int64_t, 2> out : {std::array<int64_t, 2>{1, 1}, {2, 3}, {3, 2}, {5, 4}}) {
    SCOPED_TRACE(std::to_string(out[0]) + "x" + std::to_string(out[1]));
    EXPECT_GRADS("adaptive_avg_pool2d", [out](const TensorList& v) { return ts::adaptive_avg_pool2d(v[0], out); },
                 {grad_input({1, 2, 5, 4}, Layout::Transposed, seed++)});
  }
  EXPECT_GRADS("adaptive_avg_pool2d unbatched",
               [](const TensorList& v) {
                 return ts::adaptive_avg_pool2d(v[0], {2, 2});
               },
               {grad_input({2, 3, 3}, Layout::Sliced, seed++)});
}

TEST(GradNormalization, SoftmaxAndLogSoftmaxOverEveryAxis) {
  uint64_t seed = 800;
  for (int64_t axis : {0, 1, -1}) {
    for (Layout l : all_layouts()) {
      Tensor x = grad_input({3, 4}, l, seed++, -3, 3);
      SCOPED_TRACE("axis " + std::to_string(axis) + " " + layout_name(l));
      EXPECT_GRADS("softmax", [axis](const TensorList& v) { return ts::softmax(v[0], axis); }, {x});
      EXPECT_GRADS("log_softmax", [axis](const TensorList& v) { return ts::log_softmax(v[0], axis); }, {x});
    }
  }
  EXPECT_GRADS("softmax rank 3 middle", [](const TensorList& v) { return ts::softmax(v[0], 1); },
               {grad_input({2, 3, 2}, Layout::Transposed, 850)});
  EXPECT_GRADS("log_softmax large logits", [](const TensorList& v) { return ts::log_softmax(v[0] * 100.0, -1); },
               {grad_input({2, 3}, Layout::Contiguous, 851)});
  EXPECT_GRADS("softmax 0-d", [](const TensorList& v) { return ts::softmax(v[0], 0); },
               {grad_input({}, Layout::Contiguous, 852)});
  EXPECT_GRADS("softmax size-1 axis", [](const TensorList& v) { return ts::log_softmax(v[0], 1); },
               {grad_input({3, 1}, Layout::Contiguous, 853)});
}

TEST(GradNormalization, LayerNormWithAndWithoutAffine) {
  uint64_t seed = 900;
  for (Layout l : {Layout::Contiguous, Layout::Transposed, Layout::Sliced, Layout::Offset}) {
    Tensor x = grad_input({3, 4}, l, seed++);
    Tensor w = grad_input({4}, Layout::Contiguous, seed++);
    Tensor b = grad_input({4}, Layout::Sliced, seed++);
    SCOPED_TRACE(layout_name(l));
    EXPECT_GRADS("layer_norm", [](const TensorList& v) { return ts::layer_norm(v[0], {4}); }, {x});
    EXPECT_GRADS("layer_norm weight", [](const TensorList& v) { return ts::layer_norm(v[0], {4}, v[1]); }, {x, w});
    EXPECT_GRADS("layer_norm weight bias", [](const TensorList& v) { return ts::layer_norm(v[0], {4}, v[1], v[2]); },
                 {x, w, b});
    EXPECT_GRADS("layer_norm bias only",
                 [](const TensorList& v) { return ts::layer_norm(v[0], {4}, Tensor(), v[1], 1e-3); }, {x, b});
  }
  Tensor x3 = grad_input({2, 2, 3}, Layout::Transposed, 950);
  EXPECT_GRADS("layer_norm over two axes",
               [](const TensorList& v) {
                 return ts::layer_norm(v[0], {2, 3}, v[1], v[2]);
               },
               {x3, grad_input({2, 3}, Layout::Contiguous, 951), grad_input({2, 3}, Layout::Contiguous, 952)});
}

TEST(GradNormalization, RmsNormWithAndWithoutWeight) {
  uint64_t seed = 1000;
  for (Layout l : {Layout::Contiguous, Layout::Transposed, Layout::Sliced, Layout::Expanded}) {
    Tensor x = grad_input({3, 4}, l, seed++);
    Tensor w = grad_input({4}, Layout::Contiguous, seed++);
    SCOPED_TRACE(layout_name(l));
    EXPECT_GRADS("rms_norm", [](const TensorList& v) { return ts::rms_norm(v[0], {4}); }, {x});
    EXPECT_GRADS("rms_norm weight", [](const TensorList& v) { return ts::rms_norm(v[0], {4}, v[1]); }, {x, w});
  }
  EXPECT_GRADS("rms_norm over two axes",
               [](const TensorList& v) {
                 return ts::rms_norm(v[0], {2, 3}, v[1], 1e-3);
               },
               {grad_input({2, 2, 3}, Layout::Transposed, 1050), grad_input({2, 3}, Layout::Contiguous, 1051)});
}

TEST(GradNormalization, BatchNormInferenceForm) {
  Tensor x = grad_input({2, 3, 2, 2}, Layout::Transposed, 1100);
  Tensor mean = grad_input({3}, Layout::Contiguous, 1101, -0.5, 0.5);
  Tensor var = grad_input({3}, Layout::Contiguous, 1102, 0.5, 1.5);
  Tensor w = grad_input({3}, Layout::Contiguous, 1103);
  Tensor b = grad_input({3}, Layout::Sliced, 1104);
  EXPECT_GRADS("batch_norm all inputs",
               [](const TensorList& v) { return ts::batch_norm(v[0], v[1], v[2], v[3], v[4]); }, {x, mean, var, w, b});
  EXPECT_GRADS("batch_norm no affine", [](const TensorList& v) { return ts::batch_norm(v[0], v[1], v[2]); },
               {x, mean, var});
  EXPECT_GRADS("batch_norm rank 2", [](const TensorList& v) { return ts::batch_norm(v[0], v[1], v[2], v[3]); },
               {grad_input({4, 3}, Layout::Sliced, 1105), mean, var, w});
}

// Training mode: statistics of the batch itself, so the gradient flows through mean and var too.
TEST(GradNormalization, BatchNormTrainingFormThroughBatchStatistics) {
  GradFn train = [](const TensorList& v) {
    Tensor m = ts::mean(v[0], {0, 2, 3}, true);
    Tensor s = ts::var(v[0], {0, 2, 3}, 0, true);
    Tensor w = ts::reshape(v[1], {1, -1, 1, 1}), b = ts::reshape(v[2], {1, -1, 1, 1});
    return (v[0] - m) * ts::rsqrt(s + 1e-5) * w + b;
  };
  EXPECT_GRADS("batch_norm training composite", train,
               {grad_input({2, 3, 2, 2}, Layout::Transposed, 1200), grad_input({3}, Layout::Contiguous, 1201),
                grad_input({3}, Layout::Contiguous, 1202)});
  // The same through the primitive, with the batch statistics passed in as running statistics.
  GradFn via_primitive = [](const TensorList& v) {
    Tensor m = ts::mean(v[0], {0, 2, 3});
    Tensor s = ts::var(v[0], {0, 2, 3}, 0);
    return ts::batch_norm(v[0], m, s, v[1], v[2]);
  };
  EXPECT_GRADS("batch_norm primitive with batch statistics", via_primitive,
               {grad_input({2, 3, 2, 2}, Layout::Contiguous, 1203), grad_input({3}, Layout::Contiguous, 1204),
                grad_input({3}, Layout::Contiguous, 1205)});
}

TEST(GradActivations, GeluSiluSoftplus) {
  uint64_t seed = 1300;
  for (Layout l : all_layouts()) {
    Tensor x = grad_input({3, 4}, l, seed++, -4, 4);
    SCOPED_TRACE(layout_name(l));
    EXPECT_GRADS("gelu", [](const TensorList& v) { return ts::gelu(v[0]); }, {x});
    EXPECT_GRADS("gelu tanh", [](const TensorList& v) { return ts::gelu(v[0], true); }, {x});
    EXPECT_GRADS("silu", [](const TensorList& v) { return ts::silu(v[0]); }, {x});
    EXPECT_GRADS("softplus", [](const TensorList& v) { return ts::softplus(v[0]); }, {x});
  }
  EXPECT_GRADS("softplus large", [](const TensorList& v) { return ts::softplus(v[0] * 30.0); },
               {grad_input({5}, Layout::Contiguous, 1350)});
  EXPECT_GRADS("gelu 0-d", [](const TensorList& v) { return ts::gelu(v[0]); },
               {grad_input({}, Layout::Contiguous, 1351)});
}

// A small end-to-end model: the gradient of a loss with respect to every parameter at once.
TEST(GradComposite, TwoLayerMlpWithCrossEntropy) {
  Tensor x = grad_input({4, 3}, Layout::Contiguous, 1400);
  Tensor onehot = ts::one_hot(ts::tensor(std::vector<int64_t>{0, 2, 1, 2}, {4}), 3, ts::DType::Float64);
  GradFn loss = [onehot](const TensorList& p) {
    Tensor h = ts::gelu(ts::matmul(p[0], p[1]) + p[2]);
    Tensor logits = ts::matmul(ts::layer_norm(h, {5}), p[3]);
    return -ts::mean(ts::sum(onehot * ts::log_softmax(logits, -1), {-1}));
  };
  EXPECT_GRADS("mlp loss", loss,
               {x, grad_input({3, 5}, Layout::Transposed, 1401), grad_input({5}, Layout::Contiguous, 1402),
                grad_input({5, 3}, Layout::Contiguous, 1403)});
}

}  // namespace
