// The CNN of the demo (two 3x3 conv + ReLU + 2x2 max-pool stages, fc 128, fc 10) on Fashion-MNIST,
// with the library's training loop, a metrics file and checkpoints that resume exactly.
// Run: build/examples/cnn_fashion_mnist [epochs] [checkpoint to resume from]
#include <tessera/tessera.h>

#include <cstdio>
#include <cstdlib>

namespace ts = tessera;
namespace nn = tessera::nn;

struct Cnn : nn::Module {
  nn::Conv2d conv1{1, 32, 3, {.padding = {1, 1}}}, conv2{32, 64, 3, {.padding = {1, 1}}};
  nn::Linear fc1{64 * 7 * 7, 128}, fc2{128, 10};
  Cnn() { register_modules({{"conv1", conv1}, {"conv2", conv2}, {"fc1", fc1}, {"fc2", fc2}}); }
  ts::Tensor forward(const ts::Tensor& x) override {
    ts::Pool2dOptions pool;  // 2x2, stride 2
    ts::Tensor h = ts::max_pool2d(ts::relu(conv1(x)), pool);
    h = ts::max_pool2d(ts::relu(conv2(h)), pool);
    return fc2(ts::relu(fc1(ts::flatten(h, 1))));
  }
};

int main(int argc, char** argv) {
  int epochs = argc > 1 ? std::atoi(argv[1]) : 2;
  ts::manual_seed(0);
  Cnn model;
  ts::optim::Adam opt(model.parameters(), {.lr = 1e-3});
  ts::data::DataLoader loader(ts::data::FashionMnist::train(), {.batch_size = 64, .shuffle = true, .seed = 0});
  ts::data::DataLoader test_loader(ts::data::FashionMnist::test(), {.batch_size = 1000});
  if (argc > 2) {  // resume: weights, Adam moments, random state and the loader's position
    auto st = ts::train::load_checkpoint(argv[2], model, &opt);
    loader.set_position(st.position);
    std::printf("resumed at step %lld\n", static_cast<long long>(st.step));
  }
  ts::data::MetricsLogger metrics("cnn_metrics.csv");
  while (loader.epoch() < epochs) {
    int64_t epoch = loader.epoch();
    ts::train::EpochOptions eo;
    eo.desc = "epoch " + std::to_string(epoch + 1) + "/" + std::to_string(epochs);
    auto tr = ts::train::train_epoch(model, opt, loader, eo);
    auto te = ts::train::evaluate(model, test_loader);
    metrics.log({{"epoch", double(epoch + 1)}, {"train_loss", tr.loss}, {"test_acc", te.accuracy}});
    std::printf("epoch %lld: train loss %.4f, test accuracy %.2f%% (%.1f s)\n", static_cast<long long>(epoch + 1),
                tr.loss, 100 * te.accuracy, tr.seconds);
    ts::train::save_checkpoint("cnn.ckpt.safetensors", model, &opt,
                               {.step = opt.steps(), .position = loader.position()});
  }
}
