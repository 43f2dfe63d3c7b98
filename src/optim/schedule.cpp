// Learning-rate schedules: closed forms of the PyTorch / transformers schedules.
#include "tessera/optim/schedule.h"

#include <algorithm>
#include <cmath>
#include <numbers>

#include "tessera/ops.h"

namespace tessera::optim {

LRScheduler::LRScheduler(Optimizer& opt) : opt_(opt), base_lr_(opt.lr()) {}

void LRScheduler::step() {
  ++last_step_;
  opt_.set_lr(lr_at(last_step_));
}

TensorMap LRScheduler::state_dict() const {
  return {{"last_step", scalar_tensor(last_step_, DType::Int64)}, {"base_lr", scalar_tensor(base_lr_, DType::Float64)}};
}

void LRScheduler::load_state_dict(const TensorMap& state) {
  const char* op = "lr_scheduler.load_state_dict";
  auto get = [&](const char* key, DType dt) -> const Tensor& {
    auto it = state.find(key);
    if (it == state.end()) raise<ValueError>(op, std::string("missing entry '") + key + "'");
    if (!it->second.defined() || it->second.ndim() != 0 || it->second.dtype() != dt)
      raise<ValueError>(op,
                        std::string("entry '") + key + "' must be a 0-d " + std::string(dtype_name(dt)) + " tensor");
    return it->second;
  };
  int64_t s = get("last_step", DType::Int64).item<int64_t>();
  double b = get("base_lr", DType::Float64).item<double>();
  if (s < 0) raise<ValueError>(op, "'last_step' is negative: " + std::to_string(s));
  if (!(b >= 0)) raise<ValueError>(op, "'base_lr' must be >= 0, got " + std::to_string(b));
  if (state.size() != 2) raise<ValueError>(op, "expected exactly the entries 'last_step' and 'base_lr'");
  last_step_ = s;
  base_lr_ = b;
  opt_.set_lr(lr_at(last_step_));
}

StepLR::StepLR(Optimizer& opt, const StepLROptions& o) : LRScheduler(opt), o_(o) {
  if (o.step_size < 1) raise<ValueError>("StepLR", "step_size must be >= 1, got " + std::to_string(o.step_size));
  if (!(o.gamma >= 0)) raise<ValueError>("StepLR", "gamma must be >= 0, got " + std::to_string(o.gamma));
  init();
}

double StepLR::lr_at(int64_t step) const {
  return base_lr() * std::pow(o_.gamma, static_cast<double>(step / o_.step_size));
}

LinearWarmupLR::LinearWarmupLR(Optimizer& opt, const LinearWarmupOptions& o) : LRScheduler(opt), o_(o) {
  if (o.warmup_steps < 0)
    raise<ValueError>("LinearWarmupLR", "warmup_steps must be >= 0, got " + std::to_string(o.warmup_steps));
  if (!(o.start_factor >= 0 && o.start_factor <= 1))
    raise<ValueError>("LinearWarmupLR", "start_factor must be in [0, 1], got " + std::to_string(o.start_factor));
  init();
}

double LinearWarmupLR::lr_at(int64_t step) const {
  if (o_.warmup_steps == 0 || step >= o_.warmup_steps) return base_lr();
  double f =
      o_.start_factor + (1.0 - o_.start_factor) * static_cast<double>(step) / static_cast<double>(o_.warmup_steps);
  return base_lr() * f;
}

WarmupCosineLR::WarmupCosineLR(Optimizer& opt, const WarmupCosineOptions& o) : LRScheduler(opt), o_(o) {
  if (o.warmup_steps < 0 || o.warmup_steps >= o.total_steps)
    raise<ValueError>("WarmupCosineLR",
                      "need 0 <= warmup_steps < total_steps, got warmup_steps=" + std::to_string(o.warmup_steps) +
                          " total_steps=" + std::to_string(o.total_steps));
  if (!(o.min_lr >= 0)) raise<ValueError>("WarmupCosineLR", "min_lr must be >= 0, got " + std::to_string(o.min_lr));
  init();
}

double WarmupCosineLR::lr_at(int64_t step) const {
  if (step < o_.warmup_steps) return base_lr() * static_cast<double>(step) / static_cast<double>(o_.warmup_steps);
  double progress = std::min(
      1.0, static_cast<double>(step - o_.warmup_steps) / static_cast<double>(o_.total_steps - o_.warmup_steps));
  return o_.min_lr + (base_lr() - o_.min_lr) * (1.0 + std::cos(std::numbers::pi * progress)) / 2.0;
}

}  // namespace tessera::optim
