#include "tessera/data/dataset.h"

#include <cstring>
#include <string>

#include "tessera/ops.h"

namespace tessera::data {

Dataset::~Dataset() = default;

namespace {
void check_host_rows(const Tensor& t, const char* op, const char* what) {
  if (t.ndim() < 1) raise<ShapeError>(op, std::string(what) + " must have at least one axis, got a scalar");
}
}  // namespace

Tensor gather_rows(const Tensor& t, std::span<const int64_t> indices, const char* op) {
  check_host_rows(t, op, "tensor");
  if (!t.is_contiguous()) raise<ValueError>(op, "tensor of shape " + shape_str(t.shape()) + " is not contiguous");
  const int64_t n = t.size(0);
  Shape shape = t.shape();
  shape[0] = static_cast<int64_t>(indices.size());
  Tensor out = empty(shape, t.dtype(), t.device());
  const size_t row_bytes = static_cast<size_t>(n == 0 ? 0 : t.numel() / n) * t.itemsize();
  const auto* src = static_cast<const uint8_t*>(t.raw_data());
  auto* dst = static_cast<uint8_t*>(out.raw_data());
  for (size_t i = 0; i < indices.size(); ++i) {
    int64_t r = indices[i];
    if (r < 0 || r >= n)
      raise<IndexError>(op, "index " + std::to_string(r) + " is out of range for " + std::to_string(n) + " rows");
    if (row_bytes) std::memcpy(dst + i * row_bytes, src + static_cast<size_t>(r) * row_bytes, row_bytes);
  }
  return out;
}

TensorDataset::TensorDataset(Tensor inputs, Tensor targets) {
  check_host_rows(inputs, "TensorDataset", "inputs");
  check_host_rows(targets, "TensorDataset", "targets");
  if (inputs.size(0) != targets.size(0))
    raise<ShapeError>("TensorDataset", "inputs " + shape_str(inputs.shape()) + " and targets " +
                                           shape_str(targets.shape()) + " have different numbers of rows");
  // Contiguous copies made once here, on the calling thread, so workers only memcpy.
  inputs_ = inputs.contiguous();
  targets_ = targets.contiguous();
}

Batch TensorDataset::get_batch(std::span<const int64_t> indices) const {
  return {gather_rows(inputs_, indices, "TensorDataset"), gather_rows(targets_, indices, "TensorDataset")};
}

ImageDataset::ImageDataset(Tensor images, Tensor labels) {
  if (images.dtype() != DType::UInt8)
    raise<DTypeError>("ImageDataset", "images must be uint8, got " + std::string(dtype_name(images.dtype())));
  if (images.ndim() != 4)
    raise<ShapeError>("ImageDataset", "images must be [N, C, H, W], got " + shape_str(images.shape()));
  if (!is_integral(labels.dtype()))
    raise<DTypeError>("ImageDataset", "labels must be integers, got " + std::string(dtype_name(labels.dtype())));
  if (labels.ndim() != 1 || labels.size(0) != images.size(0))
    raise<ShapeError>("ImageDataset", "labels " + shape_str(labels.shape()) + " do not match images " +
                                          shape_str(images.shape()) + " (expected [N])");
  images_ = images.contiguous();
  labels_ = labels.to(DType::Int64).contiguous();
}

Batch ImageDataset::get_batch(std::span<const int64_t> indices) const {
  const int64_t n = images_.size(0);
  const int64_t row = n == 0 ? 0 : images_.numel() / n;
  Shape shape = images_.shape();
  shape[0] = static_cast<int64_t>(indices.size());
  Tensor x = empty(shape, DType::Float32, images_.device());
  const uint8_t* src = images_.data<uint8_t>();
  float* dst = x.data<float>();
  for (size_t i = 0; i < indices.size(); ++i) {
    int64_t r = indices[i];
    if (r < 0 || r >= n)
      raise<IndexError>("ImageDataset",
                        "index " + std::to_string(r) + " is out of range for " + std::to_string(n) + " images");
    const uint8_t* s = src + r * row;
    float* d = dst + static_cast<int64_t>(i) * row;
    for (int64_t j = 0; j < row; ++j)
      d[j] = static_cast<float>(s[j]) / 255.0f;  // divide (not * 1/255) to match torchvision exactly
  }
  return {x, gather_rows(labels_, indices, "ImageDataset")};
}

}  // namespace tessera::data
