// PENDING: kernels not written yet.
#include <string>

#include "cpu_backend.h"

namespace tessera::cpu {

void register_conv_kernels(Backend&) {}

}  // namespace tessera::cpu
