// An MLP (784-512-256-10) on Fashion-MNIST, written out step by step: the model, Adam, a shuffled
// data loader, value_and_grad over the model's parameters, a progress bar, evaluation and a
// checkpoint. Run: build/examples/mlp_fashion_mnist [epochs]
#include <tessera/tessera.h>

#include <cstdio>
#include <cstdlib>
#include <iostream>

namespace ts = tessera;
namespace nn = tessera::nn;

struct Mlp : nn::Module {
  nn::Linear fc1{784, 512}, fc2{512, 256}, fc3{256, 10};
  Mlp() { register_modules({{"fc1", fc1}, {"fc2", fc2}, {"fc3", fc3}}); }
  ts::Tensor forward(const ts::Tensor& x) override { return fc3(ts::relu(fc2(ts::relu(fc1(ts::flatten(x, 1)))))); }
};

int main(int argc, char** argv) {
  int epochs = argc > 1 ? std::atoi(argv[1]) : 5;
  ts::manual_seed(0);
  Mlp model;
  ts::optim::Adam opt(model.parameters(), {.lr = 1e-3});
  auto train = ts::data::FashionMnist::train();  // images scaled to [0, 1]
  auto test = ts::data::FashionMnist::test();
  ts::data::DataLoader loader(train, {.batch_size = 128, .shuffle = true, .seed = 0});
  ts::data::DataLoader test_loader(test, {.batch_size = 1000});

  for (int epoch = 0; epoch < epochs; ++epoch) {
    auto bar = ts::progress(loader, "epoch " + std::to_string(epoch + 1));
    for (auto& [images, labels] : bar) {
      auto [loss, grads] = nn::value_and_grad(model, [&] { return nn::cross_entropy(model(images), labels); })();
      opt.step(grads);
      bar.set_metrics({{"loss", loss.item<double>()}});
    }
    auto eval = ts::train::evaluate(model, test_loader);
    std::printf("epoch %d: test accuracy %.2f%%\n", epoch + 1, 100 * eval.accuracy);
  }
  ts::io::save_safetensors("mlp.safetensors", model.state_dict());  // atomic; readable by other tools
  std::cout << "saved mlp.safetensors\n";
}
