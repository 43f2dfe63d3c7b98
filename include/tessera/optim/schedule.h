// Learning-rate schedules (tessera::optim). A scheduler reads the optimizer's lr at
// construction as base_lr, sets the optimizer's lr to lr_at(0) right away (as PyTorch's
// schedulers do), and each step() advances its count by one and sets lr_at(count):
//
//   optim::Adam opt(model.parameters(), {.lr = 3e-4});
//   optim::WarmupCosineLR sched(opt, {.warmup_steps = 100, .total_steps = 5000, .min_lr = 1e-5});
//   for (...) { opt.step(grads); sched.step(); }
//
// State: last_step() and base_lr(); state_dict() / load_state_dict() as a small TensorMap
// {"last_step": int64 0-d, "base_lr": float64 0-d}.
#pragma once

#include <cstdint>

#include "tessera/autodiff.h"
#include "tessera/export.h"
#include "tessera/optim/optimizer.h"

namespace tessera::optim {

class TESSERA_API LRScheduler {
 public:
  /// The optimizer must outlive the scheduler.
  explicit LRScheduler(Optimizer& opt);
  virtual ~LRScheduler() = default;
  /// Advances one step and sets the optimizer's learning rate.
  void step();
  /// The learning rate after `step` scheduler steps.
  virtual double lr_at(int64_t step) const = 0;
  int64_t last_step() const { return last_step_; }
  double base_lr() const { return base_lr_; }
  TensorMap state_dict() const;
  /// Restores last_step and base_lr and sets the optimizer's lr accordingly. Throws ValueError
  /// for missing entries, wrong dtypes or a negative step.
  void load_state_dict(const TensorMap& state);

 protected:
  /// Derived constructors call this after validating their options (lr_at is virtual).
  void init() { opt_.set_lr(lr_at(0)); }

 private:
  Optimizer& opt_;
  double base_lr_;
  int64_t last_step_ = 0;
};

/// torch.optim.lr_scheduler.StepLR: lr = base_lr * gamma^(step / step_size).
struct StepLROptions {
  int64_t step_size = 1;
  double gamma = 0.1;
};
class TESSERA_API StepLR : public LRScheduler {
 public:
  /// Throws ValueError for step_size < 1 or gamma < 0.
  StepLR(Optimizer& opt, const StepLROptions& options);
  double lr_at(int64_t step) const override;

 private:
  StepLROptions o_;
};

/// Linear warm-up, torch.optim.lr_scheduler.LinearLR(start_factor, end_factor=1, total_iters=warmup_steps):
/// lr = base_lr * (start_factor + (1 - start_factor) * min(step, warmup_steps) / warmup_steps).
struct LinearWarmupOptions {
  int64_t warmup_steps = 0;
  double start_factor = 0.0;
};
class TESSERA_API LinearWarmupLR : public LRScheduler {
 public:
  /// Throws ValueError for warmup_steps < 0 or start_factor outside [0, 1].
  LinearWarmupLR(Optimizer& opt, const LinearWarmupOptions& options);
  double lr_at(int64_t step) const override;

 private:
  LinearWarmupOptions o_;
};

/// Linear warm-up from 0 to base_lr over warmup_steps, then cosine decay to min_lr at total_steps,
/// min_lr afterwards (the schedule of transformers' get_cosine_schedule_with_warmup, with a floor):
///   step < warmup:  base_lr * step / warmup_steps
///   otherwise:      min_lr + (base_lr - min_lr) * (1 + cos(pi * min(1, (step - warmup) / (total - warmup)))) / 2
/// With warmup_steps = 0 this is torch's CosineAnnealingLR(T_max=total_steps, eta_min=min_lr)
/// for step <= total_steps.
struct WarmupCosineOptions {
  int64_t warmup_steps = 0;
  int64_t total_steps = 1;
  double min_lr = 0.0;
};
class TESSERA_API WarmupCosineLR : public LRScheduler {
 public:
  /// Throws ValueError unless 0 <= warmup_steps < total_steps and min_lr >= 0.
  WarmupCosineLR(Optimizer& opt, const WarmupCosineOptions& options);
  double lr_at(int64_t step) const override;

 private:
  WarmupCosineOptions o_;
};

}  // namespace tessera::optim
