#include "tessera/dtype.h"

#include <string>

#include "tessera/error.h"

namespace tessera {

std::string_view dtype_name(DType t) {
  switch (t) {
    case DType::Bool: return "bool";
    case DType::UInt8: return "uint8";
    case DType::Int8: return "int8";
    case DType::Int32: return "int32";
    case DType::Int64: return "int64";
    case DType::Float16: return "float16";
    case DType::BFloat16: return "bfloat16";
    case DType::Float32: return "float32";
    case DType::Float64: return "float64";
  }
  return "?";
}

DType dtype_from_name(std::string_view name) {
  for (int i = 0; i < kNumDTypes; ++i) {
    if (dtype_name(static_cast<DType>(i)) == name) return static_cast<DType>(i);
  }
  raise<ValueError>("dtype", "unknown dtype '" + std::string(name) + "'");
}

DType promote_types(DType a, DType b) {
  if (a == b) return a;
  auto rank = [](DType t) {  // category: 0 bool, 1 integer, 2 float
    return t == DType::Bool ? 0 : (is_integral(t) ? 1 : 2);
  };
  int ra = rank(a), rb = rank(b);
  if (ra != rb) return ra > rb ? a : b;
  if (ra == 2) {
    if ((a == DType::Float16 && b == DType::BFloat16) || (a == DType::BFloat16 && b == DType::Float16)) return DType::Float32;
    return dtype_size(a) >= dtype_size(b) ? a : b;
  }
  // integers: uint8 with a signed type needs a wider signed type
  if ((a == DType::UInt8 && b == DType::Int8) || (a == DType::Int8 && b == DType::UInt8)) return DType::Int32;
  return dtype_size(a) >= dtype_size(b) ? a : b;
}

std::ostream& operator<<(std::ostream& os, DType t) { return os << dtype_name(t); }

}  // namespace tessera
