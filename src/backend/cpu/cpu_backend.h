// The CPU backend: the reference backend on which every primitive runs.
#pragma once

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

/// Names of the BLAS/oneDNN libraries in use, for runtime_info().
std::string linalg_info();
/// The elementwise ISA in use ("avx512", "avx2", "baseline").
const char* elementwise_isa();

}  // namespace tessera::cpu
