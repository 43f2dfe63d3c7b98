// nn::Module: the base of every layer and model.
//
// A module owns Tensor members for its parameters and buffers and registers them by name in its
// constructor, together with its child modules; names compose with dots ("fc1.weight"). Tensors
// are immutable handles, so "updating a parameter" means assigning a new tensor to the member: the
// optimizers do that through the pointers parameters() returns, and nn::value_and_grad swaps
// traced tensors in for the duration of one call. Modules are therefore neither copyable nor
// movable (the registry points into the object); hold them by value as members or by
// std::shared_ptr.
//
//   struct Mlp : ts::nn::Module {
//     ts::nn::Linear fc1{784, 512}, fc2{512, 10};
//     Mlp() { register_modules({{"fc1", fc1}, {"fc2", fc2}}); }
//     ts::Tensor forward(const ts::Tensor& x) override { return fc2(ts::relu(fc1(x))); }
//   };
#pragma once

#include <functional>
#include <initializer_list>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "tessera/autodiff.h"
#include "tessera/compile.h"
#include "tessera/nn/parameter.h"

namespace tessera::nn {

class TESSERA_API Module : public StatefulObject {
 public:
  Module() = default;
  ~Module() override = default;
  Module(const Module&) = delete;
  Module& operator=(const Module&) = delete;

  /// The computation of a single-input module. Modules with other signatures (attention) define
  /// their own call operators; calling forward on them throws NotImplementedError.
  virtual Tensor forward(const Tensor& x);
  /// forward(x); in graph mode (set_mode(Mode::Graph)) an outermost call, made with no transform
  /// active, runs through this module's compiled plan cache instead (same results).
  Tensor operator()(const Tensor& x);

  /// Trainable parameters (not frozen), with dotted names, in registration order (depth first).
  ParameterList parameters();
  /// Every parameter, frozen ones included.
  ParameterList all_parameters();
  /// Buffers: non-trainable state saved with the model (BatchNorm's running statistics).
  ParameterList buffers();
  /// Parameters (frozen included) and buffers by dotted name: what checkpoints store.
  TensorMap state_dict();
  /// Assigns tensors by name. Shapes and dtypes must match the current values (ShapeError /
  /// DTypeError naming the entry). strict: every entry of the module must be present and no
  /// unknown name may appear (ValueError listing them).
  void load_state_dict(const TensorMap& state, bool strict = true);
  /// Number of parameter elements (all, or only the trainable ones).
  int64_t num_parameters(bool trainable_only = false);

  /// Training mode (the default) affects Dropout and BatchNorm; applies to all children.
  void train(bool on = true);
  void eval() { train(false); }
  bool is_training() const { return training_; }

  /// Freezes (excludes from parameters()) every parameter whose dotted name is `prefix` or starts
  /// with `prefix` + "." ("" = all). Throws ValueError when nothing matches.
  void freeze(const std::string& prefix = "");
  void unfreeze(const std::string& prefix = "");

  /// Direct children with their names.
  std::vector<std::pair<std::string, Module*>> children() const;
  /// A readable table: one line per parameter/buffer (name, shape, dtype, trainable), then totals.
  std::string summary();

  /// StatefulObject: this module's own parameter and buffer tensors; flags: training mode and
  /// which parameters are frozen.
  void state_slots(std::vector<Tensor*>& out) override;
  uint64_t state_flags() const override;

 protected:
  /// Registers a Tensor member as a parameter (trainable) or buffer. The member must outlive the
  /// module's use (it is a member of *this). Names must be unique within the module and may not
  /// contain dots.
  void register_parameter(const std::string& name, Tensor& slot);
  void register_buffer(const std::string& name, Tensor& slot);
  /// Registers a child module held as a member, or shared (kept alive by this module).
  void register_module(const std::string& name, Module& child);
  void register_module(const std::string& name, std::shared_ptr<Module> child);
  void register_modules(std::initializer_list<std::pair<std::string, std::reference_wrapper<Module>>> children);

 private:
  struct Slot {
    std::string name;
    Tensor* tensor;
    bool frozen = false;
  };
  void check_new_name(const std::string& name) const;
  void collect(const std::string& prefix, bool params, bool include_frozen, ParameterList& out);
  int set_frozen(const std::string& prefix, const std::string& here, bool frozen);

  std::vector<Slot> params_;
  std::vector<Slot> buffers_;
  std::vector<std::pair<std::string, Module*>> children_;
  std::vector<std::shared_ptr<Module>> owned_;
  bool training_ = true;
  std::shared_ptr<CompiledFunction> compiled_;  // graph mode's plans for operator()
};

/// A chain of single-input modules applied in order; children are named "0", "1", ...
///   nn::Sequential net;
///   net.add<nn::Linear>(784, 128).add<nn::ReLU>().add<nn::Linear>(128, 10);
class TESSERA_API Sequential : public Module {
 public:
  Sequential() = default;
  Sequential& add(std::shared_ptr<Module> m);
  template <class M, class... Args>
  Sequential& add(Args&&... args) {
    return add(std::make_shared<M>(std::forward<Args>(args)...));
  }
  Tensor forward(const Tensor& x) override;
  size_t size() const { return layers_.size(); }
  Module& operator[](size_t i) const { return *layers_.at(i); }

 private:
  std::vector<std::shared_ptr<Module>> layers_;
};

namespace detail {
/// Puts `values` into the parameter slots for its lifetime and restores the previous tensors
/// afterwards (also when the call throws).
class TESSERA_API ParameterSwap {
 public:
  ParameterSwap(const ParameterList& params, const TensorMap& values);
  ~ParameterSwap();
  ParameterSwap(const ParameterSwap&) = delete;
  ParameterSwap& operator=(const ParameterSwap&) = delete;

 private:
  ParameterList params_;
  std::vector<Tensor> saved_;
};
TESSERA_API TensorMap parameter_values(const ParameterList& params);
}  // namespace detail

/// value_and_grad over a model's trainable parameters: nn::value_and_grad(model, f)(args...)
/// calls f(args...) with the model's parameters traced and returns std::pair(value, grads), where
/// grads is a TensorMap keyed by parameter name (what optimizers take). f returns a scalar loss, or
/// std::pair<Tensor, Aux> (aux comes back with the value, as in tessera::value_and_grad).
template <class F>
auto value_and_grad(Module& model, F f) {
  return [&model, f](const auto&... args) mutable {
    ParameterList params = model.parameters();
    auto traced = [&](const TensorMap& values) {
      detail::ParameterSwap swap(params, values);
      return f(args...);
    };
    return tessera::value_and_grad(traced)(detail::parameter_values(params));
  };
}

/// The gradient alone (TensorMap keyed by parameter name).
template <class F>
auto grad(Module& model, F f) {
  return [&model, f](const auto&... args) mutable { return value_and_grad(model, f)(args...).second; };
}

}  // namespace tessera::nn
