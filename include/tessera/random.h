// Counter-based random numbers (Philox 4x32-10).
//
// A Generator is (seed, offset). Each random op draws numel values at
// counters offset .. offset+numel and advances the offset, so the values of
// element i depend only on (seed, offset, i): never on the thread count or
// the order in which threads run.
#pragma once

#include <cstdint>

#include "tessera/export.h"

namespace tessera {

class TESSERA_API Generator {
 public:
  explicit Generator(uint64_t seed = 0) : seed_(seed) {}
  uint64_t seed() const { return seed_; }
  /// Number of 32-bit words consumed so far (rounded to blocks of 4).
  uint64_t offset() const { return offset_; }
  void set_state(uint64_t seed, uint64_t offset) {
    seed_ = seed;
    offset_ = offset;
  }
  /// Reserves n 32-bit draws; returns the first counter of the reservation.
  uint64_t advance(uint64_t n) {
    uint64_t start = offset_;
    offset_ += (n + 3) / 4 * 4;
    return start;
  }

 private:
  uint64_t seed_;
  uint64_t offset_ = 0;
};

/// The process-wide generator used where no Generator is passed: parameter initialization of
/// nn modules and dropout. Not synchronized: use it from one thread (the training loop), or
/// pass explicit Generators. Its state (seed, offset) goes into training checkpoints.
TESSERA_API Generator& default_generator();
/// Reseeds default_generator() (offset back to 0), like torch.manual_seed.
TESSERA_API void manual_seed(uint64_t seed);

/// Philox4x32-10: four 32-bit random words for a 128-bit counter and a 64-bit key.
struct PhiloxOutput {
  uint32_t v[4];
};
TESSERA_API PhiloxOutput philox4x32(uint64_t counter_lo, uint64_t counter_hi, uint64_t key);

/// The i-th 32-bit draw of the stream starting at counter `start` (a multiple of 4).
inline uint32_t philox_draw(uint64_t key, uint64_t start, uint64_t i) {
  uint64_t c = start / 4 + i / 4;
  return philox4x32(c, 0, key).v[i % 4];
}

}  // namespace tessera
