// Standalone measurement of the GEMM libraries Tessera can use on the CPU: oneDNN (dnnl_sgemm and
// the matmul primitive), OpenBLAS (OpenMP build) and BLIS (OpenMP build), plus a direct loop for
// tiny products. Used to pick the libraries in src/backend/cpu/matmul_kernels.cpp; the figures are
// recorded in docs/cpu_backend.md. Not part of the CMake build (bench/CMakeLists.txt is owned by the
// benchmark runner); build by hand:
//
//   g++ -O3 -march=native -fopenmp -std=c++20 bench/gemm_libraries.cpp -o /tmp/gemm_libraries -ldnnl -ldl
//   /tmp/gemm_libraries [reps] [threads]
//
// OpenBLAS and BLIS are dlopen()ed with RTLD_DEEPBIND so that their identically named BLAS symbols
// do not collide. Every configuration is timed once per repetition, interleaved, and the median over
// repetitions is printed (the machine is shared, so interleaving spreads the noise evenly).
#include <dlfcn.h>
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "oneapi/dnnl/dnnl.hpp"

namespace {

enum { RowMajor = 101, NoTrans = 111, Trans = 112 };
using cblas_sgemm_t = void (*)(int, int, int, int, int, int, float, const float*, int, const float*, int, float, float*,
                               int);
using cblas_dgemm_t = void (*)(int, int, int, int, int, int, double, const double*, int, const double*, int, double,
                               double*, int);

struct Blas {
  std::string name;
  cblas_sgemm_t sgemm = nullptr;
  cblas_dgemm_t dgemm = nullptr;
};

Blas load(const char* name, const char* path, int threads) {
  Blas b{name};
  void* h = dlopen(path, RTLD_NOW | RTLD_LOCAL | RTLD_DEEPBIND);
  if (!h) {
    std::fprintf(stderr, "cannot load %s: %s\n", path, dlerror());
    return b;
  }
  b.sgemm = reinterpret_cast<cblas_sgemm_t>(dlsym(h, "cblas_sgemm"));
  b.dgemm = reinterpret_cast<cblas_dgemm_t>(dlsym(h, "cblas_dgemm"));
  if (auto set = reinterpret_cast<void (*)(long)>(dlsym(h, "bli_thread_set_num_threads"))) set(threads);
  return b;
}

double now() { return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count(); }

// Seconds per call: enough calls to fill ~min_time, best of 3 batches.
double time_call(const std::function<void()>& fn, double min_time = 0.03) {
  fn();
  int iters = 1;
  for (;;) {
    double t0 = now();
    for (int i = 0; i < iters; ++i) fn();
    double t = now() - t0;
    if (t > min_time / 3 || iters > (1 << 22)) break;
    iters *= 4;
  }
  double best = 1e30;
  for (int r = 0; r < 3; ++r) {
    double t0 = now();
    for (int i = 0; i < iters; ++i) fn();
    best = std::min(best, (now() - t0) / iters);
  }
  return best;
}

// A copy of the register-blocked loop Tessera uses for tiny float32 products
// (src/backend/cpu/matmul_kernels.cpp, tiny_sgemm); single-threaded.
constexpr int kNR = 16;
typedef float VecNR __attribute__((vector_size(kNR * sizeof(float)), aligned(4)));
template <int MR>
[[gnu::always_inline]] inline void tiny_block(int64_t k, const float* a, int64_t a_rs, int64_t a_cs, const float* bp,
                                              int64_t bstride, float beta, float* c, int64_t ldc, int64_t nc) {
  VecNR acc[MR];
#pragma GCC unroll 8
  for (int r = 0; r < MR; ++r) acc[r] = VecNR{};
  for (int64_t p = 0; p < k; ++p) {
    VecNR bv;
    std::memcpy(&bv, bp + p * bstride, sizeof(bv));
#pragma GCC unroll 8
    for (int r = 0; r < MR; ++r) acc[r] += a[r * a_rs + p * a_cs] * bv;
  }
#pragma GCC unroll 8
  for (int r = 0; r < MR; ++r) {
    float* cr = c + r * ldc;
    if (nc == kNR && beta == 0) {
      std::memcpy(cr, &acc[r], sizeof(VecNR));
      continue;
    }
    for (int64_t j = 0; j < nc; ++j) cr[j] = acc[r][j] + (beta == 0 ? 0.f : beta * cr[j]);
  }
}
void tiny_sgemm(int64_t m, int64_t n, int64_t k, const float* a, int64_t a_rs, int64_t a_cs, const float* b,
                int64_t b_rs, int64_t b_cs, float beta, float* c, int64_t ldc) {
  float stack_buf[2048];
  std::vector<float> heap_buf;
  float* buf = stack_buf;
  if (k * kNR > 2048) {
    heap_buf.resize(k * kNR);
    buf = heap_buf.data();
  }
  for (int64_t j0 = 0; j0 < n; j0 += kNR) {
    int64_t nc = std::min<int64_t>(kNR, n - j0);
    const float* bp;
    int64_t bstride;
    if (nc == kNR && b_cs == 1) {
      bp = b + j0;
      bstride = b_rs;
    } else {
      for (int64_t p = 0; p < k; ++p) {
        const float* br = b + p * b_rs + j0 * b_cs;
        float* d = buf + p * kNR;
        int64_t j = 0;
        for (; j < nc; ++j) d[j] = br[j * b_cs];
        for (; j < kNR; ++j) d[j] = 0;
      }
      bp = buf;
      bstride = kNR;
    }
    int64_t i = 0;
    for (; i + 8 <= m; i += 8) tiny_block<8>(k, a + i * a_rs, a_rs, a_cs, bp, bstride, beta, c + i * ldc + j0, ldc, nc);
    const float* ai = a + i * a_rs;
    float* ci = c + i * ldc + j0;
    switch (m - i) {
      case 7:
        tiny_block<7>(k, ai, a_rs, a_cs, bp, bstride, beta, ci, ldc, nc);
        break;
      case 6:
        tiny_block<6>(k, ai, a_rs, a_cs, bp, bstride, beta, ci, ldc, nc);
        break;
      case 5:
        tiny_block<5>(k, ai, a_rs, a_cs, bp, bstride, beta, ci, ldc, nc);
        break;
      case 4:
        tiny_block<4>(k, ai, a_rs, a_cs, bp, bstride, beta, ci, ldc, nc);
        break;
      case 3:
        tiny_block<3>(k, ai, a_rs, a_cs, bp, bstride, beta, ci, ldc, nc);
        break;
      case 2:
        tiny_block<2>(k, ai, a_rs, a_cs, bp, bstride, beta, ci, ldc, nc);
        break;
      case 1:
        tiny_block<1>(k, ai, a_rs, a_cs, bp, bstride, beta, ci, ldc, nc);
        break;
    }
  }
}
struct DnnlMatmul {
  dnnl::engine eng{dnnl::engine::kind::cpu, 0};
  dnnl::stream strm{eng};
  std::map<std::tuple<int64_t, int64_t, int64_t, int, bool>, dnnl::matmul> cache;
  dnnl::matmul get(int64_t m, int64_t n, int64_t k, dnnl::memory::data_type dt, bool cached, bool bt = false) {
    auto key = std::make_tuple(m, n, k, static_cast<int>(dt), bt);
    if (cached) {
      auto it = cache.find(key);
      if (it != cache.end()) return it->second;
    }
    using tag = dnnl::memory::format_tag;
    dnnl::memory::desc a({m, k}, dt, tag::ab), b({k, n}, dt, bt ? tag::ba : tag::ab), c({m, n}, dt, tag::ab);
    dnnl::matmul p(dnnl::matmul::primitive_desc(dnnl::matmul::desc(a, b, c), eng));
    if (cached) cache.emplace(key, p);
    return p;
  }
  void run(int64_t m, int64_t n, int64_t k, dnnl::memory::data_type dt, const void* A, const void* B, void* C,
           bool cached, bool bt = false) {
    dnnl::matmul p = get(m, n, k, dt, cached, bt);
    using tag = dnnl::memory::format_tag;
    dnnl::memory a({{m, k}, dt, tag::ab}, eng, const_cast<void*>(A)),
        b({{k, n}, dt, bt ? tag::ba : tag::ab}, eng, const_cast<void*>(B)), c({{m, n}, dt, tag::ab}, eng, C);
    p.execute(strm, {{DNNL_ARG_SRC, a}, {DNNL_ARG_WEIGHTS, b}, {DNNL_ARG_DST, c}});
  }
};

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  int reps = argc > 1 ? std::atoi(argv[1]) : 5;
  int threads = argc > 2 ? std::atoi(argv[2]) : 2;
  omp_set_num_threads(threads);
  Blas openblas = load("openblas", "/usr/lib/x86_64-linux-gnu/openblas-openmp/libopenblas.so.0", threads);
  Blas blis = load("blis", "/usr/lib/x86_64-linux-gnu/blis-openmp/libblis.so.4", threads);
  DnnlMatmul mm;

  std::vector<int64_t> sizes{8, 16, 32, 64, 128, 256, 512, 1024, 2048};
  if (const char* s = std::getenv("GEMM_SIZES")) {
    sizes.clear();
    for (char* p = const_cast<char*>(s); *p;) {
      sizes.push_back(std::strtol(p, &p, 10));
      if (*p == ',') ++p;
    }
  }
  struct Cfg {
    std::string name;
    std::function<void(int64_t, const float*, const float*, float*, const double*, const double*, double*,
                       const uint16_t*, const uint16_t*, uint16_t*)>
        fn;
  };
  using dt = dnnl::memory::data_type;
  std::vector<Cfg> cfgs = {
      {"f32 dnnl_sgemm", [](int64_t n, auto a, auto b, auto c, auto, auto, auto, auto, auto,
                            auto) { dnnl_sgemm('N', 'N', n, n, n, 1.f, a, n, b, n, 0.f, c, n); }},
      {"f32 dnnl_sgemm B^T", [](int64_t n, auto a, auto b, auto c, auto, auto, auto, auto, auto,
                                auto) { dnnl_sgemm('N', 'T', n, n, n, 1.f, a, n, b, n, 0.f, c, n); }},
      {"f32 dnnl matmul (cached)", [&](int64_t n, auto a, auto b, auto c, auto, auto, auto, auto, auto,
                                       auto) { mm.run(n, n, n, dt::f32, a, b, c, true); }},
      {"f32 dnnl matmul B^T (cached)", [&](int64_t n, auto a, auto b, auto c, auto, auto, auto, auto, auto,
                                           auto) { mm.run(n, n, n, dt::f32, a, b, c, true, true); }},
      {"f32 openblas B^T",
       [&](int64_t n, auto a, auto b, auto c, auto, auto, auto, auto, auto, auto) {
         openblas.sgemm(RowMajor, NoTrans, Trans, n, n, n, 1.f, a, n, b, n, 0.f, c, n);
       }},
      {"f32 dnnl matmul (new pd)", [&](int64_t n, auto a, auto b, auto c, auto, auto, auto, auto, auto,
                                       auto) { mm.run(n, n, n, dt::f32, a, b, c, false); }},
      {"f32 openblas", [&](int64_t n, auto a, auto b, auto c, auto, auto, auto, auto, auto,
                           auto) { openblas.sgemm(RowMajor, NoTrans, NoTrans, n, n, n, 1.f, a, n, b, n, 0.f, c, n); }},
      {"f32 blis", [&](int64_t n, auto a, auto b, auto c, auto, auto, auto, auto, auto,
                       auto) { blis.sgemm(RowMajor, NoTrans, NoTrans, n, n, n, 1.f, a, n, b, n, 0.f, c, n); }},
      {"f32 tiny loop (1 thread)",
       [](int64_t n, auto a, auto b, auto c, auto, auto, auto, auto, auto, auto) {
         if (n <= 128) tiny_sgemm(n, n, n, a, n, 1, b, n, 1, 0.f, c, n);
       }},
      {"bf16 dnnl matmul (cached)", [&](int64_t n, auto, auto, auto, auto, auto, auto, auto a, auto b,
                                        auto c) { mm.run(n, n, n, dt::bf16, a, b, c, true); }},
      {"f64 openblas", [&](int64_t n, auto, auto, auto, auto a, auto b, auto c, auto, auto,
                           auto) { openblas.dgemm(RowMajor, NoTrans, NoTrans, n, n, n, 1.0, a, n, b, n, 0.0, c, n); }},
      {"f64 blis", [&](int64_t n, auto, auto, auto, auto a, auto b, auto c, auto, auto,
                       auto) { blis.dgemm(RowMajor, NoTrans, NoTrans, n, n, n, 1.0, a, n, b, n, 0.0, c, n); }},
  };
  if (const char* only = std::getenv("GEMM_ONLY")) {
    std::vector<Cfg> keep;
    for (auto& c : cfgs)
      if (std::strstr(c.name.c_str(), only)) keep.push_back(c);
    cfgs = keep;
  }
  // results[cfg][size] = list of GFLOP/s
  std::vector<std::vector<std::vector<double>>> res(cfgs.size(), std::vector<std::vector<double>>(sizes.size()));
  for (int r = 0; r < reps; ++r) {
    for (size_t si = 0; si < sizes.size(); ++si) {
      int64_t n = sizes[si];
      size_t nn = static_cast<size_t>(n * n);
      std::vector<float> a(nn), b(nn), c(nn);
      std::vector<double> ad(nn), bd(nn), cd(nn);
      std::vector<uint16_t> ah(nn), bh(nn), ch(nn);
      for (size_t i = 0; i < nn; ++i) {
        a[i] = static_cast<float>((i * 7 % 13) - 6) / 8.f;
        b[i] = static_cast<float>((i * 5 % 11) - 5) / 8.f;
        ad[i] = a[i], bd[i] = b[i];
        uint32_t x;
        std::memcpy(&x, &a[i], 4);
        ah[i] = static_cast<uint16_t>(x >> 16);
        std::memcpy(&x, &b[i], 4);
        bh[i] = static_cast<uint16_t>(x >> 16);
      }
      for (size_t ci = 0; ci < cfgs.size(); ++ci) {
        if (cfgs[ci].name.find("tiny") != std::string::npos && n > 128) continue;
        double min_time = n >= 1024 ? 0.3 : 0.05;
        double t = time_call(
            [&] {
              cfgs[ci].fn(n, a.data(), b.data(), c.data(), ad.data(), bd.data(), cd.data(), ah.data(), bh.data(),
                          ch.data());
            },
            min_time);
        res[ci][si].push_back(2.0 * n * n * n / t * 1e-9);
      }
    }
  }
  std::printf("GFLOP/s, square n x n x n, %d threads, median of %d interleaved repetitions\n%-28s", threads, reps,
              "library");
  for (int64_t n : sizes) std::printf("%8lld", static_cast<long long>(n));
  std::printf("\n");
  for (size_t ci = 0; ci < cfgs.size(); ++ci) {
    std::printf("%-28s", cfgs[ci].name.c_str());
    for (size_t si = 0; si < sizes.size(); ++si)
      if (res[ci][si].empty())
        std::printf("%8s", "-");
      else
        std::printf("%8.1f", median(res[ci][si]));
    std::printf("\n");
  }
  return 0;
}
