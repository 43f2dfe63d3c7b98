// Printing of attribute structs (IR dumps, error messages).
#include <sstream>

#include "tessera/primitives.h"

namespace tessera {

namespace {
std::string scalar_str(const Scalar& s) {
  std::ostringstream os;
  if (s.kind() == Scalar::Kind::Bool) os << (s.to_bool() ? "true" : "false");
  else if (s.kind() == Scalar::Kind::Int) os << s.to_int();
  else os << s.to_double();
  return os.str();
}
template <size_t N>
std::string arr(const std::array<int64_t, N>& a) {
  return shape_str(std::span<const int64_t>(a.data(), N));
}
const char* tf(bool b) { return b ? "true" : "false"; }
}  // namespace

std::string attrs_str(const Attrs& attrs) {
  std::ostringstream os;
  std::visit(
      [&](const auto& a) {
        using A = std::decay_t<decltype(a)>;
        if constexpr (std::is_same_v<A, FullAttrs>) {
          os << "shape=" << shape_str(a.shape) << ", value=" << scalar_str(a.value) << ", dtype=" << dtype_name(a.dtype);
        } else if constexpr (std::is_same_v<A, ArangeAttrs>) {
          os << "start=" << scalar_str(a.start) << ", step=" << scalar_str(a.step) << ", n=" << a.n << ", dtype=" << dtype_name(a.dtype);
        } else if constexpr (std::is_same_v<A, RandomAttrs>) {
          os << "shape=" << shape_str(a.shape) << ", dtype=" << dtype_name(a.dtype) << ", key=" << a.key
             << ", counter=" << a.counter << ", a=" << a.a << ", b=" << a.b;
        } else if constexpr (std::is_same_v<A, CastAttrs>) {
          os << "dtype=" << dtype_name(a.dtype);
        } else if constexpr (std::is_same_v<A, ReduceAttrs>) {
          os << "axes=" << shape_str(a.axes) << ", keepdims=" << tf(a.keepdims);
        } else if constexpr (std::is_same_v<A, ArgReduceAttrs>) {
          os << "axis=" << a.axis << ", keepdims=" << tf(a.keepdims);
        } else if constexpr (std::is_same_v<A, AxisAttrs>) {
          os << "axis=" << a.axis;
        } else if constexpr (std::is_same_v<A, AxesAttrs>) {
          os << "axes=" << shape_str(a.axes);
        } else if constexpr (std::is_same_v<A, ShapeAttrs>) {
          os << "shape=" << shape_str(a.shape);
        } else if constexpr (std::is_same_v<A, PermuteAttrs>) {
          os << "perm=" << shape_str(a.perm);
        } else if constexpr (std::is_same_v<A, SliceAttrs>) {
          os << "axis=" << a.axis << ", start=" << a.start << ", stop=" << a.stop << ", step=" << a.step;
        } else if constexpr (std::is_same_v<A, AsStridedAttrs>) {
          os << "shape=" << shape_str(a.shape) << ", strides=" << shape_str(a.strides) << ", offset=" << a.offset;
        } else if constexpr (std::is_same_v<A, PadAttrs>) {
          os << "pads=" << shape_str(a.pads) << ", mode=" << static_cast<int>(a.mode) << ", value=" << scalar_str(a.value);
        } else if constexpr (std::is_same_v<A, SortAttrs>) {
          os << "axis=" << a.axis << ", descending=" << tf(a.descending);
        } else if constexpr (std::is_same_v<A, TopKAttrs>) {
          os << "k=" << a.k << ", axis=" << a.axis << ", largest=" << tf(a.largest);
        } else if constexpr (std::is_same_v<A, NormAttrs>) {
          os << "normalized_ndim=" << a.normalized_ndim << ", eps=" << a.eps << ", weight=" << tf(a.has_weight)
             << ", bias=" << tf(a.has_bias);
        } else if constexpr (std::is_same_v<A, ConvAttrs>) {
          os << "stride=" << arr(a.stride) << ", padding=" << arr(a.padding) << ", dilation=" << arr(a.dilation)
             << ", output_padding=" << arr(a.output_padding) << ", groups=" << a.groups;
        } else if constexpr (std::is_same_v<A, PoolAttrs>) {
          os << "kernel=" << arr(a.kernel) << ", stride=" << arr(a.stride) << ", padding=" << arr(a.padding)
             << ", ceil_mode=" << tf(a.ceil_mode) << ", count_include_pad=" << tf(a.count_include_pad);
        } else if constexpr (std::is_same_v<A, AdaptivePoolAttrs>) {
          os << "output_size=" << arr(a.output_size);
        } else if constexpr (std::is_same_v<A, MatmulAttrs>) {  // dense products print no attributes
          static constexpr const char* kNames[] = {"", "lower_a", "upper_a", "lower_result"};
          if (a.structure != MatmulStructure::Dense) os << "structure=" << kNames[static_cast<int>(a.structure)];
        }
      },
      attrs);
  return os.str();
}

}  // namespace tessera
