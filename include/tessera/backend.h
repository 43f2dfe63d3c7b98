// The backend interface. A backend is a library that registers one Backend
// object: an allocator per device, a stream/synchronization model, host
// copies, and a kernel table keyed by primitive. Core code only talks to this
// interface, so a CUDA or third-party accelerator backend is a separate
// library that calls register_backend from a static initializer (see
// docs/adding_a_backend.md).
#pragma once

#include <array>
#include <memory>
#include <span>
#include <string>
#include <string_view>

#include "tessera/allocator.h"
#include "tessera/primitives.h"

namespace tessera {

/// One kernel invocation. Outputs are freshly allocated, contiguous, and have the inferred
/// shapes/dtypes; inputs may be arbitrary strided views on the same device.
struct KernelCall {
  OpId op;
  std::span<const Tensor> in;
  std::span<Tensor> out;
  const Attrs& attrs;
};
using KernelFn = void (*)(const KernelCall& call);

/// Bit i set = dtype i accepted.
using DTypeMask = uint16_t;
inline constexpr DTypeMask kAllDTypes = (1u << kNumDTypes) - 1;
inline constexpr DTypeMask dtype_bit(DType t) { return static_cast<DTypeMask>(1u << static_cast<int>(t)); }
inline constexpr DTypeMask kFloatDTypes =
    dtype_bit(DType::Float16) | dtype_bit(DType::BFloat16) | dtype_bit(DType::Float32) | dtype_bit(DType::Float64);

class TESSERA_API Backend {
 public:
  explicit Backend(std::string name) : name_(std::move(name)) {}
  virtual ~Backend() = default;
  const std::string& name() const { return name_; }
  /// The device type id the registry assigned.
  uint8_t type_id() const { return type_id_; }

  // ---- devices and memory
  virtual int device_count() const { return 1; }
  virtual Allocator& allocator(int device_index) = 0;
  /// True when device memory is directly addressable by the host (CPU, unified memory).
  virtual bool host_accessible() const { return false; }
  virtual void copy_from_host(void* dst, const void* src, size_t nbytes, int device_index) = 0;
  virtual void copy_to_host(void* dst, const void* src, size_t nbytes, int device_index) = 0;

  // ---- streams: kernels run in issue order on the device's current stream; host reads
  // (copy_to_host, item) synchronize first. A synchronous backend leaves these as no-ops.
  virtual void synchronize(int device_index) { (void)device_index; }

  // ---- kernels
  void set_kernel(OpId op, KernelFn fn, DTypeMask dtypes = kAllDTypes) {
    kernels_[static_cast<size_t>(op)] = fn;
    dtype_masks_[static_cast<size_t>(op)] = dtypes;
  }
  KernelFn kernel(OpId op) const { return kernels_[static_cast<size_t>(op)]; }
  /// Whether this backend can run op on inputs whose (first) dtype is dtype.
  virtual bool supports(OpId op, DType dtype) const {
    return kernel(op) != nullptr && (dtype_masks_[static_cast<size_t>(op)] & dtype_bit(dtype)) != 0;
  }

  // ---- information for `tessera info`
  virtual std::string describe() const { return name_; }

 private:
  friend TESSERA_API uint8_t register_backend(std::unique_ptr<Backend> backend);
  std::string name_;
  uint8_t type_id_ = 0;
  std::array<KernelFn, kNumOps> kernels_{};
  std::array<DTypeMask, kNumOps> dtype_masks_{};
};

/// Adds a backend to the registry and returns its device type id. Names must be unique.
TESSERA_API uint8_t register_backend(std::unique_ptr<Backend> backend);
/// The backend of a device; throws ValueError for an unknown device type.
TESSERA_API Backend& backend_for(Device d);
/// A backend by name, or nullptr.
TESSERA_API Backend* find_backend(std::string_view name);
/// All registered backends in registration order.
TESSERA_API std::span<Backend* const> backends();

}  // namespace tessera
