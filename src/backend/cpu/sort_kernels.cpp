// CPU kernels of sort and topk.
//
// Every line along the axis is ordered by an unsigned key whose plain integer order is the wanted
// order: floats have their IEEE bits flipped (negative values complemented, positive ones given the
// sign bit), -0.0 is folded onto +0.0 (they compare equal) and every NaN maps above +inf; signed
// integers have the sign bit flipped; descending order complements the key. The element's index is
// packed below the key (key << 32 | index in a uint64, or key << 64 | index in a 128-bit word), so
// ascending order of the packed words is exactly the stable order (equal keys keep index order) and
// no two packed words are equal.
//   sort: LSD radix sort of the key bits (8-bit digits, stable, so equal keys keep index order) for
//         long lines, std::sort for short ones.
//   topk: for k <= n / 128, one pass keeping a heap of the k best packed words (blocks of keys that
//         cannot enter it are skipped with vector compares); otherwise an MSD radix select of the k
//         best (kept in index order), then a sort of those. Either way the result is the first k entries of the stable
//         sort.
#include <algorithm>
#include <atomic>
#include <cstring>
#include <type_traits>
#include <vector>

#include "../../core/dispatch.h"
#include "cpu_backend.h"
#include "parallel.h"
#include "tessera/error.h"

namespace tessera::cpu {

namespace {

template <class T>
inline constexpr bool kWideKey = std::is_same_v<T, int64_t> || std::is_same_v<T, double>;
template <class T>
using KeyOf = std::conditional_t<kWideKey<T>, uint64_t, uint32_t>;

/// The order-preserving unsigned key of a value (ascending). Written with selects rather than
/// branches so that loops over keys vectorize.
template <class T>
inline KeyOf<T> sort_key(T v) {
  if constexpr (std::is_same_v<T, bool> || std::is_same_v<T, uint8_t>) {
    return static_cast<uint32_t>(v);
  } else if constexpr (std::is_same_v<T, int8_t> || std::is_same_v<T, int32_t>) {
    return static_cast<uint32_t>(static_cast<int32_t>(v)) ^ 0x80000000u;
  } else if constexpr (std::is_same_v<T, int64_t>) {
    return static_cast<uint64_t>(v) ^ (uint64_t{1} << 63);
  } else if constexpr (std::is_same_v<T, double>) {
    uint64_t u;
    std::memcpy(&u, &v, 8);
    uint64_t k = (u >> 63) ? ~u : (u | (uint64_t{1} << 63));
    k = v == 0 ? (uint64_t{1} << 63) : k;  // -0.0 ties with +0.0
    return v != v ? ~uint64_t{0} : k;      // NaN above +inf
  } else {                                 // float, Half, BFloat16
    float f = static_cast<float>(v);
    uint32_t u;
    std::memcpy(&u, &f, 4);
    uint32_t k = (u >> 31) ? ~u : (u | 0x80000000u);
    k = f == 0 ? 0x80000000u : k;
    return f != f ? ~uint32_t{0} : k;
  }
}

/// Sorting and selecting packed (key, index) words of one line.
template <class In, class Packed>
struct LineSorter {
  using Key = KeyOf<In>;
  static constexpr int kIdxBits = sizeof(Packed) == 8 ? 32 : 64;
  static constexpr int kKeyBits = 8 * sizeof(Key);
  static constexpr int64_t kRadixMin = 256;  // shorter lines use std::sort

  static Packed pack(In v, int64_t idx, bool flip) {
    Key k = sort_key(v);
    if (flip) k = ~k;
    return (static_cast<Packed>(k) << kIdxBits) | static_cast<Packed>(static_cast<uint64_t>(idx));
  }
  static int64_t index_of(Packed p) {
    return static_cast<int64_t>(static_cast<uint64_t>(p & ((static_cast<Packed>(1) << kIdxBits) - 1)));
  }

  /// Stable LSD radix sort on the key bits (8-bit digits, all histograms in one pass, passes whose
  /// digit is the same for every key skipped); the result ends in buf.
  static void radix(Packed* buf, Packed* tmp, int64_t n) {
    constexpr int kPasses = kKeyBits / 8;
    std::vector<int64_t> count(static_cast<size_t>(kPasses) * 256, 0);
    for (int64_t i = 0; i < n; ++i) {
      const uint64_t key = static_cast<uint64_t>(buf[i] >> kIdxBits);
      for (int p = 0; p < kPasses; ++p) ++count[static_cast<size_t>(p * 256 + ((key >> (8 * p)) & 255))];
    }
    Packed* src = buf;
    Packed* dst = tmp;
    for (int p = 0; p < kPasses; ++p) {
      int64_t* c = count.data() + p * 256;
      const int s = kIdxBits + 8 * p;
      if (c[static_cast<uint64_t>(src[0] >> s) & 255] == n) continue;  // nothing moves
      int64_t sum = 0;
      for (int b = 0; b < 256; ++b) {
        int64_t t = c[b];
        c[b] = sum;
        sum += t;
      }
      for (int64_t i = 0; i < n; ++i) dst[c[static_cast<uint64_t>(src[i] >> s) & 255]++] = src[i];
      std::swap(src, dst);
    }
    if (src != buf) std::copy(src, src + n, buf);
  }

  /// Copies the k smallest packed words of buf[0, n) to dst[0, k) in index order (dst, n long, is
  /// also the work space). MSD radix select: each pass histograms the next key digit of the elements
  /// that still tie with the boundary and keeps only the boundary digit's group, until that group is
  /// taken whole or the key is resolved; then one pass over buf gathers everything below the boundary
  /// and the lowest indices of the boundary group.
  static void select_smallest(const Packed* buf, int64_t n, int64_t k, Packed* dst) {
    Key prefix = 0, mask = 0;
    int64_t need = k;  // still to take among the elements with (key & mask) == prefix
    const Packed* cand = buf;
    int64_t nc = n;
    for (int shift = kKeyBits - 8; shift >= 0; shift -= 8) {
      auto digit = [shift](Packed p) { return static_cast<unsigned>(static_cast<Key>(p >> kIdxBits) >> shift) & 255u; };
      int64_t count[256] = {};
      for (int64_t i = 0; i < nc; ++i) ++count[digit(cand[i])];
      int64_t below = 0;
      unsigned d = 0;
      while (below + count[d] < need) below += count[d++];
      need -= below;
      prefix |= static_cast<Key>(d) << shift;
      mask |= static_cast<Key>(255u) << shift;
      if (count[d] == need) break;  // the whole boundary group is taken
      int64_t ne = 0;
      for (int64_t i = 0; i < nc; ++i)
        if (digit(cand[i]) == d) dst[ne++] = cand[i];  // in place once cand is dst: ne <= i
      cand = dst;
      nc = ne;
    }
    int64_t j = 0;
    for (int64_t i = 0; i < n; ++i) {
      const Key km = static_cast<Key>(buf[i] >> kIdxBits) & mask;
      if (km < prefix || (km == prefix && need-- > 0)) dst[j++] = buf[i];
    }
  }

  /// Sorts (k == n) or selects the first k of the stable order of line x[0, n) (stride xs), writing
  /// values and indices with stride os.
  static void line(const In* x, int64_t n, int64_t xs, int64_t k, bool flip, In* vo, int64_t* io, int64_t os,
                   std::vector<Packed>& buf, std::vector<Packed>& tmp) {
    if (k == 0) return;
    if (k * 128 <= n) {
      // Bounded max-heap of the k best packed words. Later elements have larger indices, so one
      // beats the heap's worst only when its key is strictly smaller: blocks of keys are computed
      // and tested with vector compares, and most blocks are skipped whole.
      buf.resize(static_cast<size_t>(k));
      for (int64_t r = 0; r < k; ++r) buf[static_cast<size_t>(r)] = pack(x[r * xs], r, flip);
      std::make_heap(buf.begin(), buf.end());
      const Key mask = flip ? ~Key{0} : Key{0};
      Key worst = static_cast<Key>(buf.front() >> kIdxBits);
      constexpr int64_t K = 64;
      Key keys[K];
      for (int64_t s = k; s < n; s += K) {
        const int64_t m = std::min(K, n - s);
        const In* p = x + s * xs;
        if (xs == 1) {
          for (int64_t i = 0; i < m; ++i) keys[i] = sort_key(p[i]) ^ mask;
        } else {
          for (int64_t i = 0; i < m; ++i) keys[i] = sort_key(p[i * xs]) ^ mask;
        }
        unsigned any = 0;
        for (int64_t i = 0; i < m; ++i) any |= static_cast<unsigned>(keys[i] < worst);
        if (!any) continue;
        for (int64_t i = 0; i < m; ++i) {
          if (keys[i] < worst) {
            std::pop_heap(buf.begin(), buf.end());
            buf.back() = (static_cast<Packed>(keys[i]) << kIdxBits) | static_cast<Packed>(static_cast<uint64_t>(s + i));
            std::push_heap(buf.begin(), buf.end());
            worst = static_cast<Key>(buf.front() >> kIdxBits);
          }
        }
      }
      std::sort_heap(buf.begin(), buf.end());
    } else {
      buf.resize(static_cast<size_t>(n));
      tmp.resize(static_cast<size_t>(n));
      for (int64_t r = 0; r < n; ++r) buf[static_cast<size_t>(r)] = pack(x[r * xs], r, flip);
      if (k < n) {
        select_smallest(buf.data(), n, k, tmp.data());  // in index order, so the radix sort stays stable
        std::copy(tmp.begin(), tmp.begin() + k, buf.begin());
      }
      if (k >= kRadixMin)
        radix(buf.data(), tmp.data(), k);
      else
        std::sort(buf.begin(), buf.begin() + k);
    }
    for (int64_t i = 0; i < k; ++i) {
      int64_t idx = index_of(buf[static_cast<size_t>(i)]);
      vo[i * os] = x[idx * xs];
      io[i * os] = idx;
    }
  }
};

Tensor contiguous_input(const Tensor& x) {
  if (x.is_contiguous()) return x;
  Tensor c;
  detail::execute(OpId::Copy, std::span<const Tensor>(&x, 1), NoAttrs{}, std::span<Tensor>(&c, 1));
  return c;
}

/// Sorts or selects along axis of x into values/indices (k entries per line).
void sort_lines(const Tensor& x_in, int64_t axis, int64_t k, bool flip, const Tensor& values, const Tensor& indices) {
  if (values.numel() == 0) return;
  Tensor x = contiguous_input(x_in);
  int64_t A = 1, B = 1, n = x.shape()[static_cast<size_t>(axis)];
  for (int64_t d = 0; d < x.ndim(); ++d) {
    if (d < axis)
      A *= x.shape()[static_cast<size_t>(d)];
    else if (d > axis)
      B *= x.shape()[static_cast<size_t>(d)];
  }
  std::atomic<bool> failed{false};
  visit_dtype(x.dtype(), [&](auto tag) {
    using In = decltype(tag);
    const In* xp = static_cast<const In*>(x.impl().data());
    In* vp = static_cast<In*>(values.impl().data());
    int64_t* ip = static_cast<int64_t*>(indices.impl().data());
    auto run = [&](auto packed_tag) {
      using Packed = decltype(packed_tag);
      parallel_for(0, A * B, std::max<int64_t>(1, 32768 / std::max<int64_t>(n, 1)), [&](int64_t b, int64_t e) {
        try {
          std::vector<Packed> buf, tmp;
          for (int64_t t = b; t < e; ++t) {
            int64_t a = t / B, c = t % B;
            LineSorter<In, Packed>::line(xp + a * n * B + c, n, B, k, flip, vp + a * k * B + c, ip + a * k * B + c, B,
                                         buf, tmp);
          }
        } catch (...) {
          failed = true;  // never throw inside a parallel region
        }
      });
    };
    if (!kWideKey<In> && n < (int64_t{1} << 32))
      run(uint64_t{});
    else
      run(static_cast<unsigned __int128>(0));
  });
  if (failed)
    raise<OutOfMemoryError>(op_name(OpId::Sort), "out of memory sorting a tensor of shape " + shape_str(x.shape()));
}

void sort_kernel(const KernelCall& c) {
  const auto& a = std::get<SortAttrs>(c.attrs);
  int64_t n = c.in[0].shape()[static_cast<size_t>(a.axis)];
  sort_lines(c.in[0], a.axis, n, a.descending, c.out[0], c.out[1]);
}

void topk_kernel(const KernelCall& c) {
  const auto& a = std::get<TopKAttrs>(c.attrs);
  sort_lines(c.in[0], a.axis, a.k, a.largest, c.out[0], c.out[1]);
}

}  // namespace

void register_sort_kernels(Backend& b) {
  b.set_kernel(OpId::Sort, &sort_kernel, kAllDTypes);
  b.set_kernel(OpId::TopK, &topk_kernel, kAllDTypes);
}

}  // namespace tessera::cpu
