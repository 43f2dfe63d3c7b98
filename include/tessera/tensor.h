// Tensor: a reference-counted handle to a (possibly strided) view of storage.
//
// Copying a Tensor copies the handle, not the data. There is no
// requires_grad flag: gradients come from function transforms (transforms.h).
// Ops are free functions in ops.h; the members here are metadata access,
// host read-back and the most common view shorthands.
#pragma once

#include <memory>
#include <ostream>
#include <span>
#include <string>
#include <vector>

#include "tessera/dtype.h"
#include "tessera/error.h"
#include "tessera/export.h"
#include "tessera/scalar.h"
#include "tessera/shape.h"
#include "tessera/tensor_impl.h"

namespace tessera {

class TESSERA_API Tensor {
 public:
  /// An undefined tensor (defined() is false); most ops reject it.
  Tensor() = default;
  explicit Tensor(std::shared_ptr<TensorImpl> impl) : impl_(std::move(impl)) {}

  bool defined() const { return impl_ != nullptr; }
  const Shape& shape() const { return impl().shape; }
  const Strides& strides() const { return impl().strides; }
  int64_t offset() const { return impl().offset; }
  int64_t ndim() const { return static_cast<int64_t>(impl().shape.size()); }
  /// Size of axis i (negative counts from the end); throws IndexError.
  int64_t size(int64_t axis) const;
  int64_t numel() const { return impl().numel(); }
  DType dtype() const { return impl().dtype; }
  Device device() const { return impl().device; }
  size_t itemsize() const { return dtype_size(impl().dtype); }
  /// Row-major contiguous (size-1 axes may have any stride).
  bool is_contiguous() const;
  /// True when the tensor has computed data (false only inside graph tracing).
  bool has_storage() const { return impl().storage != nullptr; }

  /// Pointer to the first element; the tensor must live on a host-accessible device.
  void* raw_data() const;
  template <typename T>
  T* data() const {
    if (dtype_v<T> != dtype()) raise<DTypeError>("data", "tensor is " + std::string(dtype_name(dtype())) + ", asked for " + std::string(dtype_name(dtype_v<T>)));
    return static_cast<T*>(raw_data());
  }
  /// The single element of a one-element tensor, converted to T.
  template <typename T>
  T item() const {
    return item_scalar().to<T>();
  }
  Scalar item_scalar() const;
  /// All elements in row-major order, converted to T, copied to the host.
  template <typename T>
  std::vector<T> to_vector() const;

  // View shorthands (see ops.h for the full set and their rules).
  Tensor reshape(IntList shape) const;
  Tensor permute(IntList perm) const;
  Tensor transpose(int64_t a = -2, int64_t b = -1) const;
  Tensor contiguous() const;
  Tensor to(DType dtype) const;
  Tensor to(Device device) const;
  /// A tensor with its own copy of the data.
  Tensor clone() const;

  /// NumPy-style text, e.g. "tensor([[1., 2.],\n        [3., 4.]], dtype=float32)".
  std::string str() const;

  TensorImpl& impl() const {
    if (!impl_) throw Error("[tensor] use of an undefined tensor");
    return *impl_;
  }
  const std::shared_ptr<TensorImpl>& impl_ptr() const { return impl_; }
  /// Whether two handles refer to the same tensor object.
  bool is_same(const Tensor& o) const { return impl_ == o.impl_; }

 private:
  std::shared_ptr<TensorImpl> impl_;
};

TESSERA_API std::ostream& operator<<(std::ostream& os, const Tensor& t);

extern template TESSERA_API std::vector<float> Tensor::to_vector<float>() const;
extern template TESSERA_API std::vector<double> Tensor::to_vector<double>() const;
extern template TESSERA_API std::vector<int64_t> Tensor::to_vector<int64_t>() const;
extern template TESSERA_API std::vector<int32_t> Tensor::to_vector<int32_t>() const;
extern template TESSERA_API std::vector<uint8_t> Tensor::to_vector<uint8_t>() const;
extern template TESSERA_API std::vector<int8_t> Tensor::to_vector<int8_t>() const;
extern template TESSERA_API std::vector<bool> Tensor::to_vector<bool>() const;

}  // namespace tessera
