// Tessera's workloads for `tessera bench`. Each kind mirrors the peers' definition in
// docs/benchmarks.md: same shapes, same models, inputs drawn once at setup.
#include "tessera_workloads.h"

#include <functional>

#include "tessera/data/idx.h"
#include "tessera/io/safetensors.h"
#include "tessera/tessera.h"
#include "tessera/train/loop.h"

namespace tessera::cli::bench {

namespace nn = tessera::nn;
namespace models = tessera::nn::models;

namespace {

int64_t geti(const json& p, const char* key, int64_t fallback) {
  return p.contains(key) ? p.at(key).get<int64_t>() : fallback;
}
double getd(const json& p, const char* key, double fallback) {
  return p.contains(key) ? p.at(key).get<double>() : fallback;
}
std::string gets(const json& p, const char* key) {
  if (!p.contains(key)) raise<ValueError>("bench", std::string("workload params lack '") + key + "'");
  return p.at(key).get<std::string>();
}

// A call that recomputes `out` from fixed inputs (kernels).
class FnWorkload : public Workload {
 public:
  explicit FnWorkload(std::function<Tensor()> fn) : fn_(std::move(fn)) {}
  void call() override { out_ = fn_(); }

 private:
  std::function<Tensor()> fn_;
  Tensor out_;
};

std::unique_ptr<Workload> kernel(const std::string& kind, const json& p) {
  Generator g(0);
  auto u = [&](IntList shape) { return uniform(shape, -1.0, 1.0, g); };
  if (kind == "matmul") {
    int64_t n = geti(p, "n", 512);
    Tensor a = u({n, n}), b = u({n, n});
    return std::make_unique<FnWorkload>([a, b] { return matmul(a, b); });
  }
  if (kind == "add" || kind == "exp") {
    int64_t n = geti(p, "numel", 1 << 24);
    Tensor a = u({n}), b = u({n});
    if (kind == "add") return std::make_unique<FnWorkload>([a, b] { return a + b; });
    return std::make_unique<FnWorkload>([a] { return exp(a); });
  }
  if (kind == "softmax") {
    Tensor x = u({geti(p, "rows", 4096), geti(p, "cols", 4096)});
    return std::make_unique<FnWorkload>([x] { return softmax(x, -1); });
  }
  if (kind == "layer_norm") {
    int64_t cols = geti(p, "cols", 1024);
    Tensor x = u({geti(p, "rows", 8192), cols}), w = u({cols}), b = u({cols});
    return std::make_unique<FnWorkload>([x, w, b, cols] { return layer_norm(x, {cols}, w, b, 1e-5); });
  }
  if (kind == "conv2d") {
    int64_t k = geti(p, "kernel", 3), pad = geti(p, "padding", 1);
    Tensor x = u({geti(p, "batch", 8), geti(p, "in_channels", 64), geti(p, "height", 56), geti(p, "width", 56)});
    Tensor w = u({geti(p, "out_channels", 64), geti(p, "in_channels", 64), k, k});
    Conv2dOptions opt{.padding = {pad, pad}};
    return std::make_unique<FnWorkload>([x, w, opt] { return conv2d(x, w, {}, opt); });
  }
  return nullptr;
}

// `inner` eager additions of two one-element tensors: the per-operation cost of dispatch.
class EagerAdd : public Workload {
 public:
  explicit EagerAdd(int64_t inner) : inner_(inner), a_(ones({1})), b_(ones({1})) { per_call = double(inner); }
  void call() override {
    Tensor c;
    for (int64_t i = 0; i < inner_; ++i) c = a_ + b_;
    sink_ = c;
  }

 private:
  int64_t inner_;
  Tensor a_, b_, sink_;
};

// The transformer sizes shared by the GPT's and the encoder's configurations.
template <class Config>
Config transformer_config(const json& p) {
  Config c;
  c.d_model = geti(p, "d_model", c.d_model);
  c.num_layers = geti(p, "layers", c.num_layers);
  c.num_heads = geti(p, "heads", c.num_heads);
  c.ff_dim = geti(p, "ff", c.ff_dim);
  return c;
}

std::shared_ptr<nn::Module> make_model(const std::string& name, const json& p) {
  if (name == "mlp") return std::make_shared<models::Mlp>();
  if (name == "cnn") return std::make_shared<models::Cnn>();
  if (name == "gpt") {
    auto c = transformer_config<models::GptConfig>(p);
    c.context = geti(p, "context", c.context);
    return std::make_shared<models::Gpt>(c);
  }
  if (name == "resnet18") return std::make_shared<models::ResNet18>();
  if (name == "mobilenet_v2") return std::make_shared<models::MobileNetV2>();
  if (name == "encoder")
    return std::make_shared<models::TransformerEncoder>(transformer_config<models::EncoderConfig>(p));
  raise<ValueError>("bench", "unknown model '" + name + "'");
}

std::unique_ptr<optim::Optimizer> make_optimizer(const json& p, nn::Module& m) {
  std::string name = gets(p, "optimizer");
  double lr = getd(p, "lr", 1e-3);
  if (name == "adam") return std::make_unique<optim::Adam>(m.parameters(), optim::AdamOptions{.lr = lr});
  if (name == "adamw") return std::make_unique<optim::AdamW>(m.parameters(), optim::AdamWOptions{.lr = lr});
  raise<ValueError>("bench", "unknown optimizer '" + name + "'");
}

// The 8 training batches of the contract: the first Fashion-MNIST batches in file order, or
// random bytes for the GPT.
std::vector<data::Batch> training_batches(const std::string& model, const json& p) {
  int64_t bs = geti(p, "batch", 64);
  std::vector<data::Batch> out;
  if (model == "gpt") {
    Generator g(1);
    int64_t ctx = geti(p, "context", 128);
    for (int i = 0; i < 8; ++i) {
      Tensor win = clamp(floor(uniform({bs, ctx + 1}, 0.0, 256.0, g)), Scalar(0.0), Scalar(255.0)).to(DType::Int64);
      out.push_back({slice(win, 1, 0, ctx), slice(win, 1, 1, ctx + 1)});
    }
    return out;
  }
  data::DataLoader loader(data::FashionMnist::train(), {.batch_size = bs});
  for (auto& b : loader) {
    out.push_back(b);
    if (out.size() == 8) break;
  }
  return out;
}

class TrainStep : public Workload {
 public:
  TrainStep(const json& p) : p_(p), model_name_(gets(p, "model")) {
    manual_seed(0);
    model_ = make_model(model_name_, p);
    opt_ = make_optimizer(p, *model_);
    batches_ = training_batches(model_name_, p);
    clip_ = getd(p, "clip", 0.0);
  }
  void call() override { train::train_step(*model_, *opt_, batches_[next_++ % batches_.size()], clip_); }

 private:
  json p_;
  std::string model_name_;
  std::shared_ptr<nn::Module> model_;
  std::unique_ptr<optim::Optimizer> opt_;
  std::vector<data::Batch> batches_;
  double clip_ = 0;
  size_t next_ = 0;
};

// One shuffled Fashion-MNIST epoch, then test accuracy; the first call only warms up.
class Epoch : public Workload {
 public:
  explicit Epoch(const json& p) : p_(p), model_name_(gets(p, "model")) {
    train_ = data::FashionMnist::train();
    test_ = data::FashionMnist::test();
  }
  void first_call() override {
    reset();
    data::DataLoader warm(train_, {.batch_size = geti(p_, "batch", 64)});
    train::train_step(*model_, *opt_, *warm.begin(), 0.0);
    reset();
  }
  void call() override {
    reset();
    uint64_t seed = static_cast<uint64_t>(geti(p_, "seed", 0));
    data::DataLoader loader(train_, {.batch_size = geti(p_, "batch", 64), .shuffle = true, .seed = seed});
    train::EpochOptions eo;
    eo.progress.mode = data::ProgressMode::Off;
    train::train_epoch(*model_, *opt_, loader, eo);
    trained_ = true;
  }
  json metric() override {
    if (!trained_) return nullptr;
    data::DataLoader test_loader(test_, {.batch_size = 256});
    return json{{"test_accuracy", train::evaluate(*model_, test_loader).accuracy}};
  }

 private:
  void reset() {
    manual_seed(static_cast<uint64_t>(geti(p_, "seed", 0)));
    model_ = make_model(model_name_, p_);
    opt_ = make_optimizer(p_, *model_);
    trained_ = false;
  }
  json p_;
  std::string model_name_;
  std::shared_ptr<const data::Dataset> train_, test_;
  std::shared_ptr<nn::Module> model_;
  std::unique_ptr<optim::Optimizer> opt_;
  bool trained_ = false;
};

// Eval-mode forward of a model on a fixed input; writes the peers' reference file.
class Inference : public Workload {
 public:
  Inference(const std::string& id, const json& p, const std::string& workdir) {
    std::string name = gets(p, "model");
    manual_seed(0);
    model_ = make_model(name, p);
    model_->eval();
    Generator g(7);
    int64_t b = geti(p, "batch", 1);
    input_ = name == "encoder" ? normal({b, geti(p, "seq", 128), geti(p, "d_model", 256)}, 0.0, 1.0, g)
                               : uniform({b, 3, geti(p, "size", 224), geti(p, "size", 224)}, -1.0, 1.0, g);
    TensorMap ref = model_->state_dict();
    ref["__input__"] = input_;
    ref["__output__"] = (*model_)(input_);
    reference = workdir + "/" + id + ".safetensors";
    io::save_safetensors(reference, ref);
  }
  void call() override { out_ = (*model_)(input_); }

 private:
  std::shared_ptr<nn::Module> model_;
  Tensor input_, out_;
};

class Generate : public Workload {
 public:
  Generate(const std::string& id, const json& p, const std::string& workdir) : new_tokens_(geti(p, "new_tokens", 128)) {
    manual_seed(0);
    auto m = make_model("gpt", p);
    model_ = std::static_pointer_cast<models::Gpt>(m);
    model_->eval();
    std::string text = "The meaning of life is not";
    int64_t n = std::min<int64_t>(geti(p, "prompt", 16), static_cast<int64_t>(text.size()));
    std::vector<int64_t> ids(text.begin(), text.begin() + n);
    prompt_ = tensor<int64_t>(ids, {1, n});
    TensorMap ref = model_->state_dict();
    ref["__prompt__"] = prompt_;
    ref["__tokens__"] = model_->generate(prompt_, new_tokens_);
    reference = workdir + "/" + id + ".safetensors";
    io::save_safetensors(reference, ref);
  }
  void call() override { out_ = model_->generate(prompt_, new_tokens_); }

 private:
  std::shared_ptr<models::Gpt> model_;
  int64_t new_tokens_;
  Tensor prompt_, out_;
};

}  // namespace

std::unique_ptr<Workload> make_tessera_workload(const std::string& id, const std::string& kind, const json& params,
                                                const std::string& workdir) {
  if (auto k = kernel(kind, params)) return k;
  if (kind == "eager_add") return std::make_unique<EagerAdd>(geti(params, "inner", 10000));
  if (kind == "train_step") return std::make_unique<TrainStep>(params);
  if (kind == "epoch") return std::make_unique<Epoch>(params);
  if (kind == "inference") return std::make_unique<Inference>(id, params, workdir);
  if (kind == "generate") return std::make_unique<Generate>(id, params, workdir);
  raise<ValueError>("bench", "unknown workload kind '" + kind + "'");
}

}  // namespace tessera::cli::bench
