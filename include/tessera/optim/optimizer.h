// Optimizers: SGD, Adam, AdamW, RMSprop (tessera::optim).
//
// An optimizer holds references to a model's parameters (nn::ParameterList) and, for each,
// its state buffers. step(grads) takes the gradients keyed by parameter name - exactly what
// value_and_grad over a TensorMap of parameters returns - computes each new parameter with
// ordinary Tessera ops (so it runs on whatever backend holds the tensors) and rebinds the
// parameter: *p.value = new_value. The formulas are PyTorch's (torch.optim, single-tensor
// path), including the first step, bias correction and the placement of eps.
//
//   optim::Adam opt(model.parameters(), {.lr = 1e-3});
//   auto [loss, grads] = value_and_grad(loss_fn)(params);
//   opt.step(grads);
//
// State: state_dict() gives a TensorMap with one entry per buffer, "<param>.<buffer>"
// (e.g. "fc1.weight.exp_avg"), the per-parameter step counts "<param>.step" (int64 0-d), the
// optimizer's step count "step" (int64 0-d) and its current learning rate "lr" (float64 0-d).
// load_state_dict() validates names, shapes and dtypes, so that a restored optimizer continues
// bit-identically (save it with io::save_safetensors).
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "tessera/autodiff.h"
#include "tessera/compile.h"
#include "tessera/export.h"
#include "tessera/nn/parameter.h"
#include "tessera/tensor.h"

namespace tessera::optim {

/// Base class: parameter bookkeeping, gradient validation, state save/restore.
class TESSERA_API Optimizer : public StatefulObject {
 public:
  /// params: the parameters to update (names must be unique; each value must point at a
  /// defined floating-point tensor). Throws ValueError otherwise, or for lr < 0.
  Optimizer(nn::ParameterList params, double lr);
  ~Optimizer() override = default;
  Optimizer(const Optimizer&) = delete;
  Optimizer& operator=(const Optimizer&) = delete;

  /// One update of every parameter that has an entry in grads (the others are skipped).
  /// Throws ValueError for a name that is not a parameter, ShapeError / DTypeError for a
  /// gradient whose shape / dtype differs from its parameter's (naming both); on any error
  /// no parameter is changed.
  void step(const TensorMap& grads);

  double lr() const { return lr_; }
  /// Sets the learning rate used by the next step (schedulers call this). Throws ValueError for lr < 0.
  void set_lr(double lr);
  /// Number of step() calls so far.
  int64_t steps() const { return steps_; }
  const nn::ParameterList& parameters() const { return params_; }

  /// The optimizer state (see the file comment for the keys). Tensors are shared, not copied
  /// (they are immutable).
  TensorMap state_dict() const;
  /// Replaces the state with one produced by state_dict() of an optimizer of the same kind and
  /// options over parameters with the same names and shapes. Throws ValueError for an unknown,
  /// missing or malformed key, ShapeError / DTypeError for a buffer that does not match its
  /// parameter; on error the current state is left unchanged.
  void load_state_dict(const TensorMap& state);

  /// StatefulObject: the buffers (moments) of every parameter updated so far. Compiled training
  /// steps read and rebind them; the step counts and the learning rate are fed to the plan at
  /// every call (trace::host_scalar), so schedules and bias corrections stay exact.
  void state_slots(std::vector<Tensor*>& out) override;

 protected:
  /// Per-parameter state: the number of updates it received and its named buffers.
  struct ParamState {
    int64_t step = 0;
    std::map<std::string, Tensor> buffers;
  };
  /// The buffers this optimizer keeps for a parameter that has been updated at least once.
  virtual std::vector<std::string> buffer_names() const = 0;
  /// Computes the updated parameter from param and grad, updating st (st.step is already
  /// incremented). Must not modify anything else.
  virtual Tensor update(const Tensor& param, const Tensor& grad, ParamState& st) = 0;
  /// A 0-d tensor (like's dtype and device) of f(t, lr), t = st.step the step being taken and lr
  /// the current learning rate: for numbers that change from step to step (bias corrections,
  /// the learning rate). Under compile() it is re-evaluated at every call of the plan.
  Tensor step_scalar(const Tensor& like, const ParamState& st, std::function<double(double t, double lr)> f);

 private:
  nn::ParameterList params_;
  std::map<std::string, size_t> index_;  // name -> position in params_
  std::map<std::string, ParamState> state_;
  double lr_;
  int64_t steps_ = 0;
  std::string current_;  // the parameter update() is computing (for step_scalar)
};

/// SGD with momentum (torch.optim.SGD):
///   g = grad + weight_decay * p;  b = g (first step) or momentum * b + (1 - dampening) * g;
///   g = nesterov ? g + momentum * b : b   (when momentum != 0);   p = p - lr * g.
struct SGDOptions {
  double lr = 1e-3;
  double momentum = 0.0;
  double dampening = 0.0;
  bool nesterov = false;
  double weight_decay = 0.0;
};
class TESSERA_API SGD : public Optimizer {
 public:
  /// Throws ValueError for negative values or nesterov without momentum / with dampening.
  SGD(nn::ParameterList params, const SGDOptions& options = {});
  const SGDOptions& options() const { return opt_; }

 protected:
  std::vector<std::string> buffer_names() const override;
  Tensor update(const Tensor& param, const Tensor& grad, ParamState& st) override;

 private:
  SGDOptions opt_;
};

/// Adam (torch.optim.Adam), weight_decay as L2 added to the gradient:
///   m = b1 m + (1-b1) g;  v = b2 v + (1-b2) g^2;  vmax = max(vmax, v) (amsgrad)
///   p = p - lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)
struct AdamOptions {
  double lr = 1e-3;
  double beta1 = 0.9;
  double beta2 = 0.999;
  double eps = 1e-8;
  double weight_decay = 0.0;
  bool amsgrad = false;
};
class TESSERA_API Adam : public Optimizer {
 public:
  /// Throws ValueError for betas outside [0, 1), eps < 0 or weight_decay < 0.
  Adam(nn::ParameterList params, const AdamOptions& options = {});
  const AdamOptions& options() const { return opt_; }

 protected:
  Adam(nn::ParameterList params, const AdamOptions& options, bool decoupled);
  std::vector<std::string> buffer_names() const override;
  Tensor update(const Tensor& param, const Tensor& grad, ParamState& st) override;

 private:
  AdamOptions opt_;
  bool decoupled_ = false;
};

/// AdamW (torch.optim.AdamW): Adam with decoupled weight decay, p = p * (1 - lr * weight_decay)
/// before the Adam update. Same options as Adam with weight_decay defaulting to 1e-2.
struct AdamWOptions {
  double lr = 1e-3;
  double beta1 = 0.9;
  double beta2 = 0.999;
  double eps = 1e-8;
  double weight_decay = 1e-2;
  bool amsgrad = false;
};
class TESSERA_API AdamW : public Adam {
 public:
  AdamW(nn::ParameterList params, const AdamWOptions& options = {});
};

/// RMSprop (torch.optim.RMSprop):
///   g = grad + weight_decay p;  s = alpha s + (1-alpha) g^2;
///   centered: ga = alpha ga + (1-alpha) g, avg = sqrt(s - ga^2) + eps; else avg = sqrt(s) + eps
///   momentum > 0: b = momentum b + g / avg, p = p - lr b;  else p = p - lr g / avg.
struct RMSpropOptions {
  double lr = 1e-2;
  double alpha = 0.99;
  double eps = 1e-8;
  double weight_decay = 0.0;
  double momentum = 0.0;
  bool centered = false;
};
class TESSERA_API RMSprop : public Optimizer {
 public:
  /// Throws ValueError for negative values.
  RMSprop(nn::ParameterList params, const RMSpropOptions& options = {});
  const RMSpropOptions& options() const { return opt_; }

 protected:
  std::vector<std::string> buffer_names() const override;
  Tensor update(const Tensor& param, const Tensor& grad, ParamState& st) override;

 private:
  RMSpropOptions opt_;
};

/// Scales all gradients in place (in the map) so that their global L2 norm is at most max_norm,
/// like torch.nn.utils.clip_grad_norm_: coef = max_norm / (total_norm + 1e-6), applied when < 1.
/// Returns the total norm before clipping (inf / nan when a gradient is not finite).
/// Throws ValueError for max_norm < 0 or an undefined / non-floating gradient.
TESSERA_API double clip_grad_norm(TensorMap& grads, double max_norm);
/// The same without reading the norm on the host (so it compiles into a training step): returns
/// the total norm as a 0-d float64 tensor, and scales every gradient by min(1, coef) (an exact
/// no-op when coef >= 1).
TESSERA_API Tensor clip_grad_norm_(TensorMap& grads, double max_norm);

}  // namespace tessera::optim
