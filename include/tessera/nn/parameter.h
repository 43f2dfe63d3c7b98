// Named references to a model's parameters: what optimizers and checkpoints work on.
#pragma once

#include <string>
#include <vector>

#include "tessera/tensor.h"

namespace tessera::nn {

/// A parameter (or buffer) of a module, by its dotted name ("fc1.weight"). `value` points at the
/// Tensor member inside the module; updating a parameter means assigning a new tensor to *value
/// (tensors are immutable handles; an optimizer rebinds each parameter to its updated value).
struct NamedParameter {
  std::string name;
  Tensor* value = nullptr;
};
using ParameterList = std::vector<NamedParameter>;

}  // namespace tessera::nn
