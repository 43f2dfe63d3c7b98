// PENDING: kernels not written yet.
#include <string>

#include "cpu_backend.h"

namespace tessera::cpu {

void register_matmul_kernels(Backend&) {}

std::string linalg_info() { return "linalg: pending"; }

}  // namespace tessera::cpu
