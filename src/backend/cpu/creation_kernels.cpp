// Kernels of full, arange and the random primitives.
#include <cmath>

#include "cpu_backend.h"
#include "parallel.h"
#include "tessera/random.h"

namespace tessera::cpu {

namespace {

template <typename T>
void fill(T* p, int64_t n, T v) {
  parallel_for(0, n, kElementwiseGrain, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) p[i] = v;
  });
}

void full_kernel(const KernelCall& c) {
  const auto& a = std::get<FullAttrs>(c.attrs);
  visit_dtype(a.dtype, [&](auto tag) {
    using T = decltype(tag);
    fill(static_cast<T*>(c.out[0].impl().data()), c.out[0].numel(), a.value.to<T>());
  });
}

void arange_kernel(const KernelCall& c) {
  const auto& a = std::get<ArangeAttrs>(c.attrs);
  visit_dtype(a.dtype, [&](auto tag) {
    using T = decltype(tag);
    T* p = static_cast<T*>(c.out[0].impl().data());
    if constexpr (std::is_integral_v<T>) {
      int64_t s = a.start.to_int(), st = a.step.to_int();
      bool exact = !a.start.is_floating() && !a.step.is_floating();
      double ds = a.start.to_double(), dst = a.step.to_double();
      for (int64_t i = 0; i < a.n; ++i)
        p[i] = exact ? static_cast<T>(s + i * st) : static_cast<T>(ds + static_cast<double>(i) * dst);
    } else {
      double s = a.start.to_double(), st = a.step.to_double();
      for (int64_t i = 0; i < a.n; ++i) {
        double v = s + static_cast<double>(i) * st;
        if constexpr (std::is_same_v<T, double> || std::is_same_v<T, bool>)
          p[i] = static_cast<T>(v);
        else
          p[i] = T(static_cast<float>(v));
      }
    }
  });
}

// 24 random bits -> [0, 1) in float; 53 bits for double.
inline double unit_double(uint32_t hi, uint32_t lo) {
  uint64_t bits = (static_cast<uint64_t>(hi) << 21) ^ (lo >> 11);
  return static_cast<double>(bits & ((uint64_t{1} << 53) - 1)) * 0x1.0p-53;
}

void uniform_kernel(const KernelCall& c) {
  const auto& a = std::get<RandomAttrs>(c.attrs);
  int64_t n = c.out[0].numel();
  visit_dtype(a.dtype, [&](auto tag) {
    using T = decltype(tag);
    if constexpr (!std::is_integral_v<T>) {
      T* p = static_cast<T*>(c.out[0].impl().data());
      double lo = a.a, span = a.b - a.a;
      // float64 value i uses words 2i and 2i+1 of the stream (53 bits), the others word i (24 bits).
      constexpr int64_t per_block = std::is_same_v<T, double> ? 2 : 4;
      using S = std::conditional_t<std::is_same_v<T, double>, double, float>;
      parallel_for(0, (n + per_block - 1) / per_block, 4096, [&](int64_t b, int64_t e) {
        for (int64_t blk = b; blk < e; ++blk) {
          PhiloxOutput r = philox4x32(a.counter / 4 + static_cast<uint64_t>(blk), 0, a.key);
          for (int64_t j = 0; j < per_block; ++j) {
            int64_t i = blk * per_block + j;
            if (i >= n) break;
            double u;
            if constexpr (per_block == 2)
              u = unit_double(r.v[2 * j], r.v[2 * j + 1]);
            else
              u = static_cast<double>(r.v[j] >> 8) * 0x1.0p-24;
            double v = lo + span * u;
            if (v >= a.b && span > 0) v = std::nextafter(a.b, a.a);  // rounding must not reach high
            p[i] = T(static_cast<S>(v));
          }
        }
      });
    }
  });
}

void normal_kernel(const KernelCall& c) {
  const auto& a = std::get<RandomAttrs>(c.attrs);
  int64_t n = c.out[0].numel();
  visit_dtype(a.dtype, [&](auto tag) {
    using T = decltype(tag);
    if constexpr (!std::is_integral_v<T>) {
      T* p = static_cast<T*>(c.out[0].impl().data());
      // Box-Muller: one Philox block (4 words) gives two normals.
      parallel_for(0, (n + 1) / 2, 4096, [&](int64_t b, int64_t e) {
        for (int64_t pair = b; pair < e; ++pair) {
          PhiloxOutput r = philox4x32(a.counter / 4 + static_cast<uint64_t>(pair), 0, a.key);
          double u1 = (static_cast<double>(((static_cast<uint64_t>(r.v[0]) << 21) ^ (r.v[1] >> 11)) &
                                           ((uint64_t{1} << 53) - 1)) +
                       1.0) *
                      0x1.0p-53;
          double u2 = static_cast<double>(((static_cast<uint64_t>(r.v[2]) << 21) ^ (r.v[3] >> 11)) &
                                          ((uint64_t{1} << 53) - 1)) *
                      0x1.0p-53;
          double rad = std::sqrt(-2.0 * std::log(u1));
          double z0 = rad * std::cos(2.0 * M_PI * u2), z1 = rad * std::sin(2.0 * M_PI * u2);
          using S = std::conditional_t<std::is_same_v<T, double>, double, float>;
          p[2 * pair] = T(static_cast<S>(a.a + a.b * z0));
          if (2 * pair + 1 < n) p[2 * pair + 1] = T(static_cast<S>(a.a + a.b * z1));
        }
      });
    }
  });
}

}  // namespace

void register_creation_kernels(Backend& b) {
  b.set_kernel(OpId::Full, &full_kernel);
  b.set_kernel(OpId::Arange, &arange_kernel);
  b.set_kernel(OpId::RandomUniform, &uniform_kernel, kFloatDTypes);
  b.set_kernel(OpId::RandomNormal, &normal_kernel, kFloatDTypes);
}

}  // namespace tessera::cpu
