// The CPU backend's thread pool is OpenMP's (libgomp), shared with oneDNN and
// OpenBLAS so that library calls and Tessera's own loops never oversubscribe
// the cores. parallel_for splits [begin, end) into one contiguous chunk per
// thread; chunks are deterministic for a given thread count.
#pragma once

#include <omp.h>

#include <algorithm>
#include <cstdint>

namespace tessera::cpu {

/// Threads used by Tessera's CPU kernels (set through tessera::set_num_threads).
int num_threads();

/// Runs fn(b, e) over chunks of [begin, end). Runs inline when the range is smaller
/// than grain per thread, or when already inside a parallel region.
template <typename Fn>
void parallel_for(int64_t begin, int64_t end, int64_t grain, const Fn& fn) {
  int64_t n = end - begin;
  if (n <= 0) return;
  int nt = num_threads();
  int64_t max_chunks = std::max<int64_t>(1, n / std::max<int64_t>(grain, 1));
  nt = static_cast<int>(std::min<int64_t>(nt, max_chunks));
  if (nt <= 1 || omp_in_parallel()) {
    fn(begin, end);
    return;
  }
#pragma omp parallel num_threads(nt)
  {
    int t = omp_get_thread_num();
    int T = omp_get_num_threads();
    int64_t chunk = (n + T - 1) / T;
    int64_t b = begin + t * chunk;
    int64_t e = std::min(end, b + chunk);
    if (b < e) fn(b, e);
  }
}

/// Elements per thread below which elementwise loops stay single-threaded.
inline constexpr int64_t kElementwiseGrain = 32768;

}  // namespace tessera::cpu
