#include "tessera/nn/models.h"

#include "tessera/error.h"

namespace tessera::nn::models {

Mlp::Mlp(int64_t in, int64_t h1, int64_t h2, int64_t classes) : fc1(in, h1), fc2(h1, h2), fc3(h2, classes) {
  register_modules({{"fc1", fc1}, {"fc2", fc2}, {"fc3", fc3}});
}

Tensor Mlp::forward(const Tensor& x) {
  Tensor h = x.ndim() > 2 ? flatten(x, 1) : x;
  return fc3(relu(fc2(relu(fc1(h)))));
}

Cnn::Cnn(int64_t in_channels, int64_t classes)
    : conv1(in_channels, 32, 3, {.padding = {1, 1}}),
      conv2(32, 64, 3, {.padding = {1, 1}}),
      fc1(64 * 7 * 7, 128),
      fc2(128, classes) {
  register_modules({{"conv1", conv1}, {"conv2", conv2}, {"fc1", fc1}, {"fc2", fc2}});
}

Tensor Cnn::forward(const Tensor& x) {
  Pool2dOptions pool;  // 2x2, stride 2
  Tensor h = max_pool2d(relu(conv1(x)), pool);
  h = max_pool2d(relu(conv2(h)), pool);
  return fc2(relu(fc1(flatten(h, 1))));
}

Gpt::Gpt(const GptConfig& c)
    : config(c),
      tok_emb(c.vocab_size, c.d_model),
      pos_emb(c.context, c.d_model),
      ln_f(c.d_model),
      head(c.d_model, c.vocab_size, /*bias=*/false) {
  register_modules({{"tok_emb", tok_emb}, {"pos_emb", pos_emb}});
  for (int64_t i = 0; i < c.num_layers; ++i) {
    blocks.push_back(std::make_shared<TransformerBlock>(c.d_model, c.num_heads, c.ff_dim, c.dropout));
    register_module("block" + std::to_string(i), blocks.back());
  }
  register_modules({{"ln_f", ln_f}, {"head", head}});
}

Tensor Gpt::forward(const Tensor& tokens) {
  if (tokens.ndim() != 2 || tokens.shape()[1] > config.context || tokens.shape()[1] == 0)
    raise<ShapeError>("Gpt", "expects tokens [B, T] with 1 <= T <= " + std::to_string(config.context) + ", got " +
                                 shape_str(tokens.shape()));
  int64_t T = tokens.shape()[1];
  Tensor x = tok_emb(tokens) + pos_emb(arange(T, DType::Int64));
  AttentionMask causal;
  causal.causal = true;
  for (auto& b : blocks) x = (*b)(x, causal);
  return head(ln_f(x));
}

Tensor Gpt::generate(const Tensor& prompt, int64_t n_new) {
  if (prompt.ndim() != 2 || prompt.shape()[1] == 0)
    raise<ShapeError>("Gpt.generate", "expects a prompt [B, T0] with T0 >= 1, got " + shape_str(prompt.shape()));
  Tensor seq = prompt.to(DType::Int64);
  for (int64_t i = 0; i < n_new; ++i) {
    int64_t T = seq.shape()[1];
    Tensor window = T > config.context ? slice(seq, 1, T - config.context, T) : seq;
    Tensor logits = forward(window);                                    // [B, T', V]
    Tensor last = select(logits, 1, window.shape()[1] - 1);             // [B, V]
    Tensor next = argmax(last, 1, /*keepdims=*/true).to(DType::Int64);  // [B, 1]
    seq = concat({seq, next}, 1);
  }
  return seq;
}

}  // namespace tessera::nn::models
