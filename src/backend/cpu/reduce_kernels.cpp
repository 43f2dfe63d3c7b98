// PENDING: kernels not written yet.
#include <string>

#include "cpu_backend.h"

namespace tessera::cpu {

void register_reduce_kernels(Backend&) {}

}  // namespace tessera::cpu
