// Caching allocator: requests are rounded to size classes (64-byte multiples
// up to 1 KiB, then 4 per power of two) and freed blocks are kept per class.
#include "tessera/allocator.h"

#include <algorithm>
#include <bit>
#include <string>

#include "tessera/backend.h"
#include "tessera/error.h"

namespace tessera {

namespace {
constexpr size_t kAlign = 64;
constexpr int kSmallBins = 16;  // 64 .. 1024 in steps of 64
constexpr int kMaxLog = 62;  // requests above 2^62 bytes are refused before binning
constexpr int kNumBins = kSmallBins + 4 * (kMaxLog - 10 + 1);
}  // namespace

CachingAllocator::CachingAllocator(RawAlloc raw_alloc, RawFree raw_free, const char* device_name)
    : raw_alloc_(raw_alloc), raw_free_(raw_free), device_name_(device_name), bins_(kNumBins) {}

CachingAllocator::~CachingAllocator() { empty_cache(); }

size_t CachingAllocator::round_size(size_t n) {
  if (n <= 1024) return std::max<size_t>(kAlign, (n + kAlign - 1) / kAlign * kAlign);
  // Four classes per power of two: 1024, 1280, 1536, 1792, 2048, ...
  size_t p = std::bit_floor(n);
  size_t step = p / 4;
  return (n + step - 1) / step * step;
}

int CachingAllocator::bin_of(size_t r) {
  if (r <= 1024) return static_cast<int>(r / kAlign) - 1;
  int lg = std::bit_width(r) - 1;  // r in [2^lg, 2^(lg+1)]
  size_t p = size_t{1} << lg;
  int q = static_cast<int>((r - p) / (p / 4));  // 0..3
  return kSmallBins + (lg - 10) * 4 + q;
}

void* CachingAllocator::allocate(size_t nbytes) {
  if (nbytes > (size_t{1} << kMaxLog))
    raise<OutOfMemoryError>("alloc", "request of " + std::to_string(nbytes) + " bytes is too large");
  size_t r = round_size(nbytes);
  int b = bin_of(r);
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto& bin = bins_[static_cast<size_t>(b)];
    if (!bin.empty()) {
      void* p = bin.back();
      bin.pop_back();
      stats_.bytes_cached -= static_cast<int64_t>(r);
      stats_.bytes_in_use += static_cast<int64_t>(r);
      stats_.peak_bytes_in_use = std::max(stats_.peak_bytes_in_use, stats_.bytes_in_use);
      ++stats_.num_allocs;
      return p;
    }
  }
  void* p = raw_alloc_(r);
  if (!p) {
    empty_cache();  // give cached blocks back and retry once
    p = raw_alloc_(r);
  }
  if (!p)
    raise<OutOfMemoryError>("alloc", "out of memory on " + std::string(device_name_) + ": could not allocate " +
                                         std::to_string(nbytes) + " bytes");
  std::lock_guard<std::mutex> lock(mu_);
  stats_.bytes_in_use += static_cast<int64_t>(r);
  stats_.peak_bytes_in_use = std::max(stats_.peak_bytes_in_use, stats_.bytes_in_use);
  ++stats_.num_allocs;
  ++stats_.num_system_allocs;
  return p;
}

void CachingAllocator::deallocate(void* p, size_t nbytes) {
  if (!p) return;
  size_t r = round_size(nbytes);
  std::lock_guard<std::mutex> lock(mu_);
  bins_[static_cast<size_t>(bin_of(r))].push_back(p);
  stats_.bytes_in_use -= static_cast<int64_t>(r);
  stats_.bytes_cached += static_cast<int64_t>(r);
}

MemoryStats CachingAllocator::stats() const {
  std::lock_guard<std::mutex> lock(mu_);
  return stats_;
}

void CachingAllocator::reset_peak() {
  std::lock_guard<std::mutex> lock(mu_);
  stats_.peak_bytes_in_use = stats_.bytes_in_use;
}

void CachingAllocator::empty_cache() {
  std::lock_guard<std::mutex> lock(mu_);
  for (int b = 0; b < kNumBins; ++b) {
    if (bins_[static_cast<size_t>(b)].empty()) continue;
    size_t r;
    if (b < kSmallBins) {
      r = static_cast<size_t>(b + 1) * kAlign;
    } else {
      int lg = (b - kSmallBins) / 4 + 10;
      size_t p = size_t{1} << lg;
      r = p + static_cast<size_t>((b - kSmallBins) % 4) * (p / 4);
    }
    for (void* p : bins_[static_cast<size_t>(b)]) raw_free_(p, r);
    stats_.bytes_cached -= static_cast<int64_t>(r * bins_[static_cast<size_t>(b)].size());
    bins_[static_cast<size_t>(b)].clear();
  }
}

Storage::Storage(size_t nbytes, Device device, Allocator* allocator)
    : data_(allocator->allocate(nbytes)), nbytes_(nbytes), device_(device), allocator_(allocator) {}

Storage::Storage(void* data, size_t nbytes, Device device, void (*deleter)(void*, void*), void* ctx)
    : data_(data), nbytes_(nbytes), device_(device), deleter_(deleter), deleter_ctx_(ctx) {}

Storage::~Storage() {
  if (allocator_) allocator_->deallocate(data_, nbytes_);
  else if (deleter_) deleter_(deleter_ctx_, data_);
}

MemoryStats memory_stats(Device d) { return backend_for(d).allocator(d.index).stats(); }
void reset_peak_memory(Device d) { backend_for(d).allocator(d.index).reset_peak(); }
void empty_cache(Device d) { backend_for(d).allocator(d.index).empty_cache(); }

}  // namespace tessera
