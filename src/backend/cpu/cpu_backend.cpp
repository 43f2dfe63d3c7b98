#include "cpu_backend.h"

#include <cstdlib>
#include <cstring>

#include <sys/mman.h>

#include "elementwise_table.h"
#include "parallel.h"

namespace tessera::cpu {

namespace {
// Blocks of 2 MiB and more are 2 MiB-aligned and asked to be backed by transparent huge pages
// (where the kernel's THP mode is "madvise", as on Debian): activations and weights then need
// 512x fewer TLB entries, and a fresh block is faulted in 2 MiB at a time. Measured: eager GPT
// training step ~5% faster (docs/cpu_backend.md). The size classes above 8 MiB are multiples of
// 2 MiB already; smaller ones round up by at most 1.5 MiB.
constexpr size_t kHugePage = size_t{2} << 20;
void* raw_alloc(size_t n) {  // n is a multiple of 64 (size classes)
  if (n < kHugePage) return std::aligned_alloc(64, n);
  const size_t bytes = (n + kHugePage - 1) / kHugePage * kHugePage;
  void* p = std::aligned_alloc(kHugePage, bytes);
#ifdef MADV_HUGEPAGE
  if (p) ::madvise(p, bytes, MADV_HUGEPAGE);  // advice only: failure leaves normal pages
#endif
  return p;
}
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
