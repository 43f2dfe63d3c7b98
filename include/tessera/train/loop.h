// The training loop pieces shared by the examples, `tessera train` and the tests: one step, one
// epoch with a progress bar, evaluation. Classification and next-token models alike: outputs
// [N, C] or [N, T, C] (classes on the last axis) against integer targets [N] or [N, T].
#pragma once

#include <functional>
#include <string>

#include "tessera/data/dataloader.h"
#include "tessera/data/progress.h"
#include "tessera/nn/module.h"
#include "tessera/optim/optimizer.h"
#include "tessera/optim/schedule.h"

namespace tessera::train {

/// Mean cross-entropy with the classes on the last axis of outputs.
TESSERA_API Tensor classification_loss(const Tensor& outputs, const Tensor& targets);
/// How many argmax(outputs, -1) equal targets.
TESSERA_API int64_t count_correct(const Tensor& outputs, const Tensor& targets);
/// The same as a 0-d int64 tensor (no host read).
TESSERA_API Tensor correct_predictions(const Tensor& outputs, const Tensor& targets);

struct StepStats {
  double loss = 0.0;
  int64_t correct = 0;  // argmax hits in this batch
  int64_t count = 0;    // predictions in this batch
};

/// One optimization step on a batch: loss and gradients of classification_loss(model(inputs),
/// targets) with respect to the model's trainable parameters (nn::value_and_grad), optional
/// clipping of the global gradient norm (clip_norm > 0), then optimizer.step. In graph mode
/// (set_mode(Mode::Graph)) all of it runs as one compiled plan, cached per model and optimizer.
TESSERA_API StepStats train_step(nn::Module& model, optim::Optimizer& optimizer, const data::Batch& batch,
                                 double clip_norm = 0.0);

/// Graph mode's compiled step for (model, optimizer) on this thread (its stats(): traces, fused
/// nodes, planned peak memory, ...; its profile()), or nullptr when none was compiled.
TESSERA_API const CompiledFunction* graph_step(const nn::Module& model, const optim::Optimizer& optimizer);

struct EpochOptions {
  std::string desc = "train";
  int64_t max_steps = -1;                         // stop after this many steps (-1: to the end of the epoch)
  double clip_norm = 0.0;                         // > 0: clip the global gradient norm
  optim::LRScheduler* scheduler = nullptr;        // stepped after every optimizer step
  data::ProgressOptions progress;                 // the bar (Auto: a bar on a terminal, log lines otherwise)
  std::function<void(const StepStats&)> on_step;  // after each step (checkpoints, metrics); the loader's
                                                  // position() is then the next batch to run
};

struct EpochStats {
  double loss = 0.0;      // mean over the steps run
  double accuracy = 0.0;  // argmax hits / predictions
  int64_t samples = 0;
  int64_t steps = 0;
  double seconds = 0.0;
};

/// Trains (model in training mode) on the loader's batches from its current position to the end
/// of its epoch, or for max_steps steps.
TESSERA_API EpochStats train_epoch(nn::Module& model, optim::Optimizer& optimizer, data::DataLoader& loader,
                                   const EpochOptions& options = {});

/// Mean loss and accuracy in eval mode over the loader's batches from the start of its current
/// epoch (all of them, or the first max_batches). The previous mode and the loader's position are
/// restored afterwards.
TESSERA_API EpochStats evaluate(nn::Module& model, data::DataLoader& loader, int64_t max_batches = -1,
                                const data::ProgressOptions& progress = {.mode = data::ProgressMode::Off});

}  // namespace tessera::train
