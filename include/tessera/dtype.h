// Element types and type promotion.
//
// Promotion follows PyTorch: bool < integers < floating types, and within a
// category the wider type wins. Differences from PyTorch/NumPy, because
// Tessera has no int16/uint16/uint32:
//   - uint8 with int8 promotes to int32 (PyTorch: int16).
//   - float16 with bfloat16 promotes to float32 (same as PyTorch).
// Scalars (C++ numbers) are "weak": tensor(int32) + 2.5 is float32,
// tensor(float16) * 2.0 stays float16, tensor(int8) + 1000 stays int8.
#pragma once

#include <cstdint>
#include <cstring>
#include <ostream>
#include <string_view>

#include "tessera/export.h"

namespace tessera {

enum class DType : uint8_t { Bool, UInt8, Int8, Int32, Int64, Float16, BFloat16, Float32, Float64 };
inline constexpr int kNumDTypes = 9;

/// Bytes per element.
constexpr size_t dtype_size(DType t) {
  constexpr size_t sizes[] = {1, 1, 1, 4, 8, 2, 2, 4, 8};
  return sizes[static_cast<int>(t)];
}
/// "float32", "int64", ...
TESSERA_API std::string_view dtype_name(DType t);
/// Parses a name produced by dtype_name; throws ValueError otherwise.
TESSERA_API DType dtype_from_name(std::string_view name);
inline bool is_floating(DType t) {
  return t == DType::Float16 || t == DType::BFloat16 || t == DType::Float32 || t == DType::Float64;
}
inline bool is_integral(DType t) { return t == DType::UInt8 || t == DType::Int8 || t == DType::Int32 || t == DType::Int64; }
/// Result type of a binary op on tensors of types a and b.
TESSERA_API DType promote_types(DType a, DType b);
/// The float type an op on integral or bool input computes in (float32), or t itself.
inline DType to_floating(DType t) { return is_floating(t) ? t : DType::Float32; }
TESSERA_API std::ostream& operator<<(std::ostream& os, DType t);

/// IEEE half precision, storage only; arithmetic converts to float.
struct Half {
  uint16_t bits = 0;
  Half() = default;
  Half(float f) : bits(from_float(f)) {}  // NOLINT: implicit like a built-in float
  operator float() const { return to_float(bits); }  // NOLINT
  static uint16_t from_float(float f) {
    uint32_t x;
    std::memcpy(&x, &f, 4);
    uint32_t sign = (x >> 16) & 0x8000u;
    uint32_t mant = x & 0x007fffffu;
    int32_t exp = static_cast<int32_t>((x >> 23) & 0xff);
    if (exp == 0xff) return static_cast<uint16_t>(sign | 0x7c00u | (mant ? 0x200u : 0u));  // inf / nan
    exp = exp - 127 + 15;
    if (exp >= 0x1f) return static_cast<uint16_t>(sign | 0x7c00u);  // overflow -> inf
    if (exp <= 0) {                                                  // subnormal or zero
      if (exp < -10) return static_cast<uint16_t>(sign);
      mant |= 0x00800000u;
      uint32_t shift = static_cast<uint32_t>(14 - exp);
      uint32_t half_mant = mant >> shift;
      uint32_t rem = mant & ((1u << shift) - 1);
      uint32_t halfway = 1u << (shift - 1);
      if (rem > halfway || (rem == halfway && (half_mant & 1u))) ++half_mant;
      return static_cast<uint16_t>(sign | half_mant);
    }
    uint32_t h = sign | (static_cast<uint32_t>(exp) << 10) | (mant >> 13);
    uint32_t rem = mant & 0x1fffu;
    if (rem > 0x1000u || (rem == 0x1000u && (h & 1u))) ++h;  // round to nearest even (may carry into exp)
    return static_cast<uint16_t>(h);
  }
  static float to_float(uint16_t h) {
    uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
    uint32_t exp = (h >> 10) & 0x1fu;
    uint32_t mant = h & 0x3ffu;
    uint32_t x;
    if (exp == 0x1f) {
      x = sign | 0x7f800000u | (mant << 13);
    } else if (exp == 0) {
      if (mant == 0) {
        x = sign;
      } else {  // normalize the subnormal
        int e = -1;
        do {
          mant <<= 1;
          ++e;
        } while (!(mant & 0x400u));
        x = sign | (static_cast<uint32_t>(127 - 15 - e) << 23) | ((mant & 0x3ffu) << 13);
      }
    } else {
      x = sign | ((exp + 127 - 15) << 23) | (mant << 13);
    }
    float f;
    std::memcpy(&f, &x, 4);
    return f;
  }
};

/// bfloat16 (the upper half of a float32), storage only.
struct BFloat16 {
  uint16_t bits = 0;
  BFloat16() = default;
  BFloat16(float f) : bits(from_float(f)) {}  // NOLINT
  operator float() const { return to_float(bits); }  // NOLINT
  static uint16_t from_float(float f) {
    uint32_t x;
    std::memcpy(&x, &f, 4);
    if ((x & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((x >> 16) | 0x40u);  // quiet nan
    x += 0x7fffu + ((x >> 16) & 1u);  // round to nearest even
    return static_cast<uint16_t>(x >> 16);
  }
  static float to_float(uint16_t b) {
    uint32_t x = static_cast<uint32_t>(b) << 16;
    float f;
    std::memcpy(&f, &x, 4);
    return f;
  }
};

/// Maps a C++ type to its DType.
template <typename T>
struct dtype_of;
template <> struct dtype_of<bool> { static constexpr DType value = DType::Bool; };
template <> struct dtype_of<uint8_t> { static constexpr DType value = DType::UInt8; };
template <> struct dtype_of<int8_t> { static constexpr DType value = DType::Int8; };
template <> struct dtype_of<int32_t> { static constexpr DType value = DType::Int32; };
template <> struct dtype_of<int64_t> { static constexpr DType value = DType::Int64; };
template <> struct dtype_of<Half> { static constexpr DType value = DType::Float16; };
template <> struct dtype_of<BFloat16> { static constexpr DType value = DType::BFloat16; };
template <> struct dtype_of<float> { static constexpr DType value = DType::Float32; };
template <> struct dtype_of<double> { static constexpr DType value = DType::Float64; };
template <typename T>
inline constexpr DType dtype_v = dtype_of<T>::value;

/// Calls fn(T{}) with the C++ type T for dtype t (a dtype switch written once).
template <typename Fn>
decltype(auto) visit_dtype(DType t, Fn&& fn) {
  switch (t) {
    case DType::Bool: return fn(bool{});
    case DType::UInt8: return fn(uint8_t{});
    case DType::Int8: return fn(int8_t{});
    case DType::Int32: return fn(int32_t{});
    case DType::Int64: return fn(int64_t{});
    case DType::Float16: return fn(Half{});
    case DType::BFloat16: return fn(BFloat16{});
    case DType::Float32: return fn(float{});
    case DType::Float64: return fn(double{});
  }
  return fn(float{});
}

}  // namespace tessera
