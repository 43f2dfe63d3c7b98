// Device memory: allocators, reference-counted storage, memory statistics.
//
// Every backend owns one Allocator per device. CachingAllocator is the
// reusable policy: it keeps freed blocks in size classes and hands them out
// again, so steady-state training loops do not call the system allocator.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <vector>

#include "tessera/device.h"
#include "tessera/export.h"

namespace tessera {

struct MemoryStats {
  int64_t bytes_in_use = 0;      // bytes held by live tensors
  int64_t peak_bytes_in_use = 0; // high-water mark of bytes_in_use since the last reset
  int64_t bytes_cached = 0;      // freed bytes kept for reuse
  int64_t num_allocs = 0;        // allocations served (cache hits included)
  int64_t num_system_allocs = 0; // allocations that reached the system allocator
};

class TESSERA_API Allocator {
 public:
  virtual ~Allocator() = default;
  /// Returns at least nbytes of device memory, 64-byte aligned; throws
  /// OutOfMemoryError when the device cannot provide it. nbytes may be 0.
  virtual void* allocate(size_t nbytes) = 0;
  virtual void deallocate(void* p, size_t nbytes) = 0;
  virtual MemoryStats stats() const = 0;
  virtual void reset_peak() = 0;
  /// Returns cached blocks to the system.
  virtual void empty_cache() = 0;
};

/// Size-class caching on top of raw allocate/free functions.
class TESSERA_API CachingAllocator : public Allocator {
 public:
  using RawAlloc = void* (*)(size_t nbytes);  // returns nullptr on failure
  using RawFree = void (*)(void* p, size_t nbytes);
  CachingAllocator(RawAlloc raw_alloc, RawFree raw_free, const char* device_name);
  ~CachingAllocator() override;

  void* allocate(size_t nbytes) override;
  void deallocate(void* p, size_t nbytes) override;
  MemoryStats stats() const override;
  void reset_peak() override;
  void empty_cache() override;

  /// The size actually reserved for a request (its size class).
  static size_t round_size(size_t nbytes);

 private:
  static int bin_of(size_t rounded);
  RawAlloc raw_alloc_;
  RawFree raw_free_;
  const char* device_name_;
  mutable std::mutex mu_;
  std::vector<std::vector<void*>> bins_;
  MemoryStats stats_;
};

/// A reference-counted block of device memory. Tensors share Storage; views
/// add an offset and strides on top.
class TESSERA_API Storage {
 public:
  /// Allocates nbytes with allocator (which must outlive the storage).
  Storage(size_t nbytes, Device device, Allocator* allocator);
  /// Wraps external memory; deleter is called with data when the storage dies.
  Storage(void* data, size_t nbytes, Device device, void (*deleter)(void*, void*), void* deleter_ctx);
  ~Storage();
  Storage(const Storage&) = delete;
  Storage& operator=(const Storage&) = delete;

  void* data() const { return data_; }
  size_t nbytes() const { return nbytes_; }
  Device device() const { return device_; }

 private:
  void* data_;
  size_t nbytes_;
  Device device_;
  Allocator* allocator_ = nullptr;
  void (*deleter_)(void*, void*) = nullptr;
  void* deleter_ctx_ = nullptr;
};

/// Memory statistics of a device's allocator.
TESSERA_API MemoryStats memory_stats(Device d = default_device());
TESSERA_API void reset_peak_memory(Device d = default_device());
TESSERA_API void empty_cache(Device d = default_device());

}  // namespace tessera
