// Node: the base of what a transform or a graph trace attaches to a tensor (TensorImpl::node).
#pragma once

#include "tessera/tensor_impl.h"

namespace tessera {

struct Node {
  virtual ~Node() = default;
};

}  // namespace tessera
