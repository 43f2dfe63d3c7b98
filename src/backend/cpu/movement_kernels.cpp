// PENDING: kernels not written yet.
#include <string>

#include "cpu_backend.h"

namespace tessera::cpu {

void register_movement_kernels(Backend&) {}

}  // namespace tessera::cpu
