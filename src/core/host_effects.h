// Host-side effects of ops that a compiled plan must redo at every call. compile()'s trace
// installs a receiver; eager code pays one thread-local load per random draw.
#pragma once

#include <cstdint>

#include "tessera/random.h"

namespace tessera::detail {

class HostEffects {
 public:
  virtual ~HostEffects() = default;
  /// A random op reserved `words` 32-bit draws of gen starting at counter, under key.
  virtual void random_draw(Generator& gen, uint64_t key, uint64_t counter, uint64_t words) = 0;
};
/// The receiver of this thread (nullptr unless compile() is tracing).
HostEffects*& current_host_effects();

}  // namespace tessera::detail
