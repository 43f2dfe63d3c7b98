// TensorImpl: what a Tensor handle points to. Public so that backends can
// reach the data; user code goes through Tensor.
#pragma once

#include <memory>

#include "tessera/allocator.h"
#include "tessera/dtype.h"
#include "tessera/shape.h"

namespace tessera {

struct Node;  // graph/autodiff record of the op that produced a tensor (later layers)

struct TensorImpl {
  Shape shape;
  Strides strides;   // in elements
  int64_t offset = 0;  // in elements, from storage->data()
  DType dtype = DType::Float32;
  Device device;
  std::shared_ptr<Storage> storage;  // null for a tensor that is traced but not computed
  std::shared_ptr<Node> node;        // set only while a transform or graph trace is recording

  int64_t numel() const {
    int64_t n = 1;
    for (int64_t d : shape) n *= d;
    return n;
  }
  void* data() const {
    return static_cast<char*>(storage->data()) + offset * static_cast<int64_t>(dtype_size(dtype));
  }
};

}  // namespace tessera
