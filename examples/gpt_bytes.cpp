// A small GPT-style byte-level language model on the English fortunes of Debian's `fortunes`
// package: next-byte prediction with AdamW, warm-up + cosine learning rate, gradient clipping,
// then greedy generation. Run: build/examples/gpt_bytes [steps]
#include <tessera/tessera.h>

#include <cstdio>
#include <cstdlib>
#include <iostream>

namespace ts = tessera;
namespace nn = tessera::nn;

int main(int argc, char** argv) {
  int64_t steps = argc > 1 ? std::atoll(argv[1]) : 300;
  ts::manual_seed(0);
  nn::models::GptConfig cfg{
      .vocab_size = 256, .context = 128, .d_model = 256, .num_layers = 4, .num_heads = 4, .ff_dim = 1024};
  nn::models::Gpt gpt(cfg);
  std::cout << "GPT: " << gpt.num_parameters() << " parameters\n";
  auto [train, val] = ts::data::ByteCorpus::fortunes(cfg.context)->split(0.9);
  ts::data::DataLoader loader(train, {.batch_size = 16, .shuffle = true, .seed = 0});
  ts::data::DataLoader val_loader(val, {.batch_size = 16});
  ts::optim::AdamW opt(gpt.parameters(), {.lr = 1e-3, .weight_decay = 0.01});
  ts::optim::WarmupCosineLR sched(opt, {.warmup_steps = steps / 10, .total_steps = steps, .min_lr = 1e-4});

  ts::data::ProgressBar bar("gpt", steps);
  for (auto& [x, y] : loader) {
    auto [loss, grads] = nn::value_and_grad(gpt, [&] {
      ts::Tensor logits = gpt(x);  // [B, T, 256]
      return nn::cross_entropy(logits.reshape({-1, 256}), y.reshape({-1}));
    })();
    ts::optim::clip_grad_norm(grads, 1.0);
    opt.step(grads);
    sched.step();
    bar.update(x.shape()[0], {{"loss", loss.item<double>()}, {"lr", opt.lr()}});
    if (bar.step() >= steps) break;
  }
  bar.finish();
  auto ev = ts::train::evaluate(gpt, val_loader, 20);
  std::printf("validation: loss %.3f nats/byte, next-byte accuracy %.1f%%\n", ev.loss, 100 * ev.accuracy);
  std::string prompt = "The ";
  std::vector<int64_t> ids(prompt.begin(), prompt.end());
  ts::Tensor out = gpt.generate(ts::tensor<int64_t>(ids, {1, static_cast<int64_t>(ids.size())}), 80);
  std::string text;
  for (int64_t b : out.to_vector<int64_t>()) text += static_cast<char>(b);
  std::cout << "sample: " << text << "\n";
}
