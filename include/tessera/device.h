// Device tags. A device is (backend type, index). Backend types are assigned
// by the backend registry when a backend registers, so the core never names a
// concrete backend; "cpu" is simply the name the CPU backend registers under.
#pragma once

#include <cstdint>
#include <ostream>
#include <string>
#include <string_view>

#include "tessera/export.h"

namespace tessera {

struct TESSERA_API Device {
  uint8_t type = 0;   // index into the backend registry
  int16_t index = 0;  // device ordinal within that backend

  Device() = default;
  constexpr Device(uint8_t t, int16_t i) : type(t), index(i) {}
  /// Parses "cpu", "cuda:1", ...; throws ValueError for an unregistered backend.
  explicit Device(std::string_view spec);

  /// "cpu", "cuda:1"
  std::string str() const;
  friend bool operator==(Device a, Device b) { return a.type == b.type && a.index == b.index; }
};

TESSERA_API std::ostream& operator<<(std::ostream& os, Device d);

/// The device new tensors go to unless told otherwise (initially "cpu").
TESSERA_API Device default_device();
TESSERA_API void set_default_device(Device d);

}  // namespace tessera
