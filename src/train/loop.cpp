#include "tessera/train/loop.h"

#include <chrono>

#include "tessera/compile.h"
#include "tessera/error.h"
#include "tessera/nn/losses.h"

namespace tessera::train {

namespace {
double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}
}  // namespace

Tensor classification_loss(const Tensor& outputs, const Tensor& targets) {
  if (outputs.ndim() < 2)
    raise<ShapeError>("classification_loss",
                      "outputs must be [N, C] or [N, ..., C], got " + shape_str(outputs.shape()));
  int64_t c = outputs.shape().back();
  return nn::cross_entropy(outputs.reshape({-1, c}), targets.reshape({-1}));
}

Tensor correct_predictions(const Tensor& outputs, const Tensor& targets) {
  Tensor pred = argmax(outputs, -1);
  return sum(eq(pred, targets.to(pred.dtype())));
}

int64_t count_correct(const Tensor& outputs, const Tensor& targets) {
  return correct_predictions(outputs, targets).item<int64_t>();
}

namespace {

// The step itself, tensors in and out (no host reads), so that graph mode compiles all of it:
// {inputs, targets} -> {loss, correct predictions}.
std::vector<Tensor> step_body(nn::Module& model, optim::Optimizer& optimizer, double clip_norm,
                              const std::vector<Tensor>& batch) {
  auto [value, grads] = nn::value_and_grad(model, [&] {
    Tensor out = model(batch[0]);
    return std::make_pair(classification_loss(out, batch[1]), out);
  })();
  if (clip_norm > 0.0) optim::clip_grad_norm_(grads, clip_norm);
  optimizer.step(grads);
  return {value.first, correct_predictions(value.second, batch[1])};
}

// Graph mode's plans, one compiled step per (model, optimizer, clip norm); a few at most (ids
// are never reused, so an entry of a destroyed model is never called again; it just ages out).
struct StepEntry {
  uint64_t model, optimizer;
  double clip;
  std::shared_ptr<CompiledFunction> fn;
};
std::vector<StepEntry>& step_cache() {
  thread_local std::vector<StepEntry> cache;
  return cache;
}

CompiledFunction& compiled_step(nn::Module& model, optim::Optimizer& optimizer, double clip_norm) {
  auto& cache = step_cache();
  for (auto& e : cache)
    if (e.model == model.state_id() && e.optimizer == optimizer.state_id() && e.clip == clip_norm) return *e.fn;
  if (cache.size() >= 4) cache.erase(cache.begin());
  auto fn = std::make_shared<CompiledFunction>(compile([&model, &optimizer, clip_norm](const std::vector<Tensor>& b) {
    return step_body(model, optimizer, clip_norm, b);
  }));
  cache.push_back(StepEntry{model.state_id(), optimizer.state_id(), clip_norm, fn});
  return *fn;
}

}  // namespace

const CompiledFunction* graph_step(const nn::Module& model, const optim::Optimizer& optimizer) {
  for (auto it = step_cache().rbegin(); it != step_cache().rend(); ++it)
    if (it->model == model.state_id() && it->optimizer == optimizer.state_id()) return it->fn.get();
  return nullptr;
}

StepStats train_step(nn::Module& model, optim::Optimizer& optimizer, const data::Batch& batch, double clip_norm) {
  std::vector<Tensor> in{batch.inputs, batch.targets};
  std::vector<Tensor> r = get_mode() == Mode::Graph && !trace::active() ? compiled_step(model, optimizer, clip_norm)(in)
                                                                        : step_body(model, optimizer, clip_norm, in);
  StepStats s;
  s.loss = r[0].item<double>();
  s.correct = r[1].item<int64_t>();
  s.count = batch.targets.numel();
  return s;
}

EpochStats train_epoch(nn::Module& model, optim::Optimizer& optimizer, data::DataLoader& loader,
                       const EpochOptions& options) {
  auto t0 = std::chrono::steady_clock::now();
  model.train();
  int64_t remaining = loader.num_batches() - loader.position().batch;
  int64_t total = options.max_steps >= 0 ? std::min(options.max_steps, remaining) : remaining;
  data::ProgressBar bar(options.desc, loader.position().batch + total, options.progress);
  bar.start_at(loader.position().batch);
  EpochStats e;
  double loss_sum = 0;
  int64_t correct = 0, count = 0;
  if (total > 0) {
    for (auto it = loader.begin(); it != loader.end(); ++it) {
      StepStats s = train_step(model, optimizer, *it, options.clip_norm);
      if (options.scheduler) options.scheduler->step();
      loss_sum += s.loss;
      correct += s.correct;
      count += s.count;
      ++e.steps;
      e.samples += it->inputs.shape()[0];
      bar.update(it->inputs.shape()[0],
                 {{"loss", loss_sum / e.steps}, {"acc", static_cast<double>(correct) / static_cast<double>(count)}});
      if (options.on_step) options.on_step(s);
      if (e.steps >= total) break;
    }
  }
  bar.finish();
  e.loss = e.steps ? loss_sum / e.steps : 0.0;
  e.accuracy = count ? static_cast<double>(correct) / static_cast<double>(count) : 0.0;
  e.seconds = seconds_since(t0);
  return e;
}

EpochStats evaluate(nn::Module& model, data::DataLoader& loader, int64_t max_batches,
                    const data::ProgressOptions& progress) {
  auto t0 = std::chrono::steady_clock::now();
  // Restores the model's mode and the loader's position on every exit, exceptions included.
  struct Restore {
    nn::Module& model;
    data::DataLoader& loader;
    bool was_training;
    data::LoaderPosition position;
    ~Restore() {
      model.train(was_training);
      loader.set_position(position);
    }
  } restore{model, loader, model.is_training(), loader.position()};
  model.eval();
  loader.set_position(restore.position.epoch, 0);
  EpochStats e;
  double loss_sum = 0;  // weighted by predictions, so a short last batch counts for what it holds
  int64_t correct = 0, count = 0;
  int64_t total = max_batches >= 0 ? std::min(max_batches, loader.num_batches()) : loader.num_batches();
  data::ProgressBar bar("eval", total, progress);
  for (auto& batch : loader) {
    if (e.steps >= total) break;
    Tensor out = model(batch.inputs);
    int64_t n = batch.targets.numel();
    loss_sum += classification_loss(out, batch.targets).item<double>() * static_cast<double>(n);
    correct += count_correct(out, batch.targets);
    count += n;
    ++e.steps;
    e.samples += batch.inputs.shape()[0];
    bar.update(batch.inputs.shape()[0]);
  }
  bar.finish();
  e.loss = count ? loss_sum / static_cast<double>(count) : 0.0;
  e.accuracy = count ? static_cast<double>(correct) / static_cast<double>(count) : 0.0;
  e.seconds = seconds_since(t0);
  return e;
}

}  // namespace tessera::train
