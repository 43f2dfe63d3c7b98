#include "tessera/tensor.h"

#include <cstring>

#include "dispatch.h"
#include "tessera/backend.h"
#include "tessera/ops.h"

namespace tessera {

int64_t Tensor::size(int64_t axis) const {
  int64_t a = normalize_axis("size", axis, ndim());
  return ndim() == 0 ? 1 : shape()[static_cast<size_t>(a)];
}

bool Tensor::is_contiguous() const {
  const TensorImpl& t = impl();
  int64_t expected = 1;
  for (size_t i = t.shape.size(); i-- > 0;) {
    if (t.shape[i] == 1) continue;
    if (t.shape[i] == 0) return true;
    if (t.strides[i] != expected) return false;
    expected *= t.shape[i];
  }
  return true;
}

void* Tensor::raw_data() const {
  const TensorImpl& t = impl();
  if (!t.storage) raise<TraceError>("data", "tensor has no data (it is being traced by compile)");
  if (!backend_for(t.device).host_accessible())
    raise<ValueError>("data", "tensor lives on " + t.device.str() + ", which the host cannot address; use to_vector()");
  return t.data();
}

namespace {
// A contiguous host copy of x converted to dtype, as raw bytes.
std::vector<char> host_bytes(const Tensor& x, DType dtype) {
  Tensor c = x.dtype() == dtype ? tessera::contiguous(x) : cast(x, dtype);
  if (!c.is_contiguous()) c = tessera::contiguous(c);
  if (!c.impl().storage)
    raise<TraceError>("item", "reads the value of a tensor that compile is tracing (data-dependent behaviour)");
  std::vector<char> bytes(static_cast<size_t>(c.numel()) * dtype_size(dtype));
  if (bytes.empty()) return bytes;
  Backend& be = backend_for(c.device());
  be.synchronize(c.device().index);
  be.copy_to_host(bytes.data(), c.impl().data(), bytes.size(), c.device().index);
  return bytes;
}
}  // namespace

template <typename T>
std::vector<T> Tensor::to_vector() const {
  if constexpr (std::is_same_v<T, bool>) {
    std::vector<char> b = host_bytes(*this, DType::Bool);
    return std::vector<bool>(b.begin(), b.end());
  } else {
    std::vector<char> b = host_bytes(*this, dtype_v<T>);
    std::vector<T> v(b.size() / sizeof(T));
    if (!b.empty()) std::memcpy(v.data(), b.data(), b.size());
    return v;
  }
}

template std::vector<float> Tensor::to_vector<float>() const;
template std::vector<double> Tensor::to_vector<double>() const;
template std::vector<int64_t> Tensor::to_vector<int64_t>() const;
template std::vector<int32_t> Tensor::to_vector<int32_t>() const;
template std::vector<uint8_t> Tensor::to_vector<uint8_t>() const;
template std::vector<int8_t> Tensor::to_vector<int8_t>() const;
template std::vector<bool> Tensor::to_vector<bool>() const;

Scalar Tensor::item_scalar() const {
  if (numel() != 1) raise<ValueError>("item", "needs a tensor with one element, got shape " + shape_str(shape()));
  if (dtype() == DType::Bool) return Scalar(to_vector<bool>()[0]);
  if (is_floating(dtype())) return Scalar(to_vector<double>()[0]);
  return Scalar(to_vector<int64_t>()[0]);
}

Tensor Tensor::reshape(IntList s) const { return tessera::reshape(*this, s); }
Tensor Tensor::permute(IntList p) const { return tessera::permute(*this, p); }
Tensor Tensor::transpose(int64_t a, int64_t b) const { return tessera::transpose(*this, a, b); }
Tensor Tensor::contiguous() const { return tessera::contiguous(*this); }
Tensor Tensor::to(DType dtype) const { return dtype == this->dtype() ? *this : cast(*this, dtype); }
Tensor Tensor::clone() const { return detail::dispatch1(OpId::Copy, {*this}); }

Tensor Tensor::to(Device device) const {
  if (device == this->device()) return *this;
  Tensor c = tessera::contiguous(*this);
  size_t n = static_cast<size_t>(c.numel()) * itemsize();
  std::vector<char> buf(n);
  Backend& src = backend_for(c.device());
  src.synchronize(c.device().index);
  if (n) src.copy_to_host(buf.data(), c.impl().data(), n, c.device().index);
  Tensor out = detail::alloc_tensor(c.shape(), c.dtype(), device);
  if (n) backend_for(device).copy_from_host(out.impl().data(), buf.data(), n, device.index);
  return out;
}

}  // namespace tessera
