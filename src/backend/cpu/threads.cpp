#include "parallel.h"
#include "tessera/runtime.h"

namespace tessera::cpu {

int num_threads() { return get_num_threads(); }

}  // namespace tessera::cpu
