#include "cpu_backend.h"

#include <cstdlib>
#include <cstring>

#include "elementwise_table.h"
#include "parallel.h"

namespace tessera::cpu {

namespace {
void* raw_alloc(size_t n) { return std::aligned_alloc(64, n); }  // n is a multiple of 64 (size classes)
void raw_free(void* p, size_t) { std::free(p); }
}  // namespace

CpuBackend::CpuBackend() : Backend("cpu"), allocator_(std::make_unique<CachingAllocator>(&raw_alloc, &raw_free, "cpu")) {
  register_creation_kernels(*this);
  register_elementwise_kernels(*this);
  register_reduce_kernels(*this);
  register_matmul_kernels(*this);
  register_movement_kernels(*this);
  register_index_kernels(*this);
  register_sort_kernels(*this);
  register_nn_kernels(*this);
  register_conv_kernels(*this);
}

void CpuBackend::copy_from_host(void* dst, const void* src, size_t n, int) {
  if (n) std::memcpy(dst, src, n);
}
void CpuBackend::copy_to_host(void* dst, const void* src, size_t n, int) {
  if (n) std::memcpy(dst, src, n);
}

std::string CpuBackend::describe() const {
  return "cpu (elementwise: " + std::string(elementwise_isa()) + ", threads: " + std::to_string(num_threads()) +
         ", " + linalg_info() + ")";
}

namespace {
// Registered when libtessera is loaded; the first host backend is the default device.
[[maybe_unused]] const uint8_t kCpuType = register_backend(std::make_unique<CpuBackend>());
}  // namespace

}  // namespace tessera::cpu
