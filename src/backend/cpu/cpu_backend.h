// The CPU backend: the reference backend on which every primitive runs.
#pragma once

#include <cstddef>
#include <cstdint>

#include "tessera/backend.h"

namespace tessera::cpu {

class CpuBackend : public Backend {
 public:
  CpuBackend();
  Allocator& allocator(int) override { return *allocator_; }
  bool host_accessible() const override { return true; }
  void copy_from_host(void* dst, const void* src, size_t nbytes, int) override;
  void copy_to_host(void* dst, const void* src, size_t nbytes, int) override;
  std::string describe() const override;

 private:
  std::unique_ptr<Allocator> allocator_;
};

// Kernel registration, one function per op family (src/backend/cpu/<family>_kernels.cpp).
void register_elementwise_kernels(Backend& b);
void register_creation_kernels(Backend& b);
void register_reduce_kernels(Backend& b);
void register_matmul_kernels(Backend& b);
void register_movement_kernels(Backend& b);
void register_index_kernels(Backend& b);
void register_sort_kernels(Backend& b);
void register_nn_kernels(Backend& b);
void register_conv_kernels(Backend& b);

/// Calls fn with an unsigned integer of the given element size (1, 2, 4 or 8 bytes): kernels that only
/// move elements (copies, gathers, scatters) need one instantiation per size, not per dtype.
template <typename Fn>
decltype(auto) visit_elem_size(size_t es, Fn&& fn) {
  switch (es) {
    case 1:
      return fn(uint8_t{});
    case 2:
      return fn(uint16_t{});
    case 4:
      return fn(uint32_t{});
    default:
      return fn(uint64_t{});
  }
}

/// Reduces the contiguous block [A, R, B] of dtype dt over R into out [A, B] with the reduction
/// kernels' loops (pairwise for floats; op: Sum, Prod, Max, Min, Any, All). Inside a parallel
/// region it runs on the calling thread. Used by the fused evaluator for the sums it fuses.
void reduce_contiguous(OpId op, DType dt, const void* data, int64_t A, int64_t R, int64_t B, void* out);

/// out[0, n) = the sum of `count` rows of n partial sums at `leaves` (float32/float64), combined
/// pairwise exactly as the reduction kernels combine the 16-row leaves of a column sum. With
/// leaves summed in that kernel's way, the result is its column sum bit for bit.
void sum_leaf_rows(DType dt, const void* leaves, int64_t count, int64_t n, void* out);

/// Names of the BLAS/oneDNN libraries in use, for runtime_info().
std::string linalg_info();
/// The elementwise ISA in use ("avx512", "avx2", "baseline").
const char* elementwise_isa();

}  // namespace tessera::cpu
