// Process-wide runtime settings.
#pragma once

#include <string>

#include "tessera/export.h"

namespace tessera {

/// Threads the CPU backend (and the BLAS/oneDNN calls it makes) use. Default: the
/// TESSERA_NUM_THREADS environment variable if set, else the number of cores.
/// n < 1 throws ValueError.
TESSERA_API void set_num_threads(int n);
TESSERA_API int get_num_threads();

/// A multi-line description of the build and runtime: version, backends, CPU features,
/// BLAS/oneDNN versions and thread count (what `tessera info` prints).
TESSERA_API std::string runtime_info();

/// Library version, e.g. "0.1.0".
TESSERA_API const char* version();

}  // namespace tessera
