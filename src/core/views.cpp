// View primitives: metadata-only results sharing the input's storage.
#include <algorithm>

#include "dispatch.h"
#include "tessera/error.h"

namespace tessera::detail {

namespace {

std::shared_ptr<TensorImpl> view_of(const Tensor& x) {
  auto impl = std::make_shared<TensorImpl>();
  impl->dtype = x.dtype();
  impl->device = x.device();
  impl->storage = x.impl().storage;
  impl->offset = x.offset();
  return impl;
}

// Strides for viewing (shape, strides) as new_shape without copying, if possible
// (the same rule as PyTorch's computeStride: merge runs of dims that are contiguous
// with each other and split them again).
bool reshape_strides(const Shape& shape, const Strides& strides, const Shape& new_shape, Strides& out) {
  out.assign(new_shape.size(), 0);
  int64_t numel = 1;
  for (int64_t d : shape) numel *= d;
  // Empty tensors and 0-d tensors (one element, no strides to follow) view as any shape.
  if (numel == 0 || shape.empty()) {
    out = contiguous_strides(new_shape);
    return true;
  }
  int64_t view_d = static_cast<int64_t>(new_shape.size()) - 1;
  int64_t chunk_base_stride = strides.empty() ? 1 : strides.back();
  int64_t tensor_numel = 1, view_numel = 1;
  for (int64_t tensor_d = static_cast<int64_t>(shape.size()) - 1; tensor_d >= 0; --tensor_d) {
    tensor_numel *= shape[static_cast<size_t>(tensor_d)];
    if (tensor_d == 0 || (shape[static_cast<size_t>(tensor_d - 1)] != 1 &&
                          strides[static_cast<size_t>(tensor_d - 1)] != tensor_numel * chunk_base_stride)) {
      while (view_d >= 0 && (view_numel < tensor_numel || new_shape[static_cast<size_t>(view_d)] == 1)) {
        out[static_cast<size_t>(view_d)] = view_numel * chunk_base_stride;
        view_numel *= new_shape[static_cast<size_t>(view_d)];
        --view_d;
      }
      if (view_numel != tensor_numel) return false;
      if (tensor_d > 0) {
        chunk_base_stride = strides[static_cast<size_t>(tensor_d - 1)];
        tensor_numel = 1;
        view_numel = 1;
      }
    }
  }
  return view_d == -1;
}

}  // namespace

bool viewable_reshape(const Shape& shape, const Strides& strides, const Shape& new_shape, Strides& out) {
  return reshape_strides(shape, strides, new_shape, out);
}

Tensor make_view(OpId op, const Tensor& x, const Attrs& attrs) {
  switch (op) {
    case OpId::Reshape: {
      const auto& a = std::get<ShapeAttrs>(attrs);
      Strides st;
      if (!reshape_strides(x.shape(), x.strides(), a.shape, st)) {
        // Not expressible as a view: copy to contiguous memory first.
        Tensor c;
        execute(OpId::Copy, std::span<const Tensor>(&x, 1), NoAttrs{}, std::span<Tensor>(&c, 1));
        return make_view(op, c, attrs);
      }
      auto v = view_of(x);
      v->shape = a.shape;
      v->strides = std::move(st);
      return Tensor(std::move(v));
    }
    case OpId::Permute: {
      const auto& a = std::get<PermuteAttrs>(attrs);
      auto v = view_of(x);
      v->shape.resize(a.perm.size());
      v->strides.resize(a.perm.size());
      for (size_t i = 0; i < a.perm.size(); ++i) {
        v->shape[i] = x.shape()[static_cast<size_t>(a.perm[i])];
        v->strides[i] = x.strides()[static_cast<size_t>(a.perm[i])];
      }
      return Tensor(std::move(v));
    }
    case OpId::Slice: {
      const auto& a = std::get<SliceAttrs>(attrs);
      auto v = view_of(x);
      v->shape = x.shape();
      v->strides = x.strides();
      size_t ax = static_cast<size_t>(a.axis);
      int64_t n = a.stop > a.start ? (a.stop - a.start + a.step - 1) / a.step : 0;
      v->shape[ax] = n;
      if (n > 0) v->offset += a.start * x.strides()[ax];
      v->strides[ax] = x.strides()[ax] * a.step;
      return Tensor(std::move(v));
    }
    case OpId::Expand: {
      const auto& a = std::get<ShapeAttrs>(attrs);
      auto v = view_of(x);
      size_t nd = a.shape.size(), xd = x.shape().size();
      v->shape = a.shape;
      v->strides.assign(nd, 0);
      for (size_t i = 0; i < xd; ++i) {
        size_t j = nd - xd + i;
        v->strides[j] = x.shape()[i] == a.shape[j] ? x.strides()[i] : 0;
      }
      return Tensor(std::move(v));
    }
    case OpId::AsStrided: {
      const auto& a = std::get<AsStridedAttrs>(attrs);
      auto v = view_of(x);
      v->shape = a.shape;
      v->strides = a.strides;
      v->offset = a.offset;
      return Tensor(std::move(v));
    }
    default:
      raise<Error>(op_name(op), "is not a view op");
  }
}

}  // namespace tessera::detail
