// Standalone measurement of Tessera's float32 convolution algorithms through the public API:
// im2col/col2im + GEMM, oneDNN with plain NCHW memory, and oneDNN with its blocked layouts plus
// reorders (src/backend/cpu/conv_kernels.cpp). Used to pick the automatic choice; figures in
// docs/cpu_backend.md. Not part of the CMake build; build by hand against a Release build:
//
//   g++ -O2 -std=c++20 bench/conv_algorithms.cpp -Iinclude -Lbuild-linalg -ltessera \
//       -Wl,-rpath,$PWD/build-linalg -o /tmp/conv_algorithms
//   /tmp/conv_algorithms [reps]
//
// Each configuration is timed once per repetition, interleaved; medians are printed.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <string>
#include <vector>

#include "tessera/tessera.h"

namespace tessera::cpu {
void conv_force_algorithm(int algo);  // exported by the CPU backend for this measurement
}

namespace ts = tessera;

namespace {

double now() { return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count(); }

double time_call(const std::function<void()>& fn, double min_time) {
  fn();
  int iters = 1;
  double t = 0;
  for (;;) {
    double t0 = now();
    for (int i = 0; i < iters; ++i) fn();
    t = (now() - t0) / iters;
    if (t * iters > min_time || iters > 100000) break;
    iters *= 2;
  }
  return t;
}

struct Case {
  std::string name;
  int64_t N, C, H, W, O, k, s, p, d, g;
  bool transposed;
};

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  int reps = argc > 1 ? std::atoi(argv[1]) : 5;
  std::vector<Case> cases = {
      {"3x3 64->64 56x56 N=8", 8, 64, 56, 56, 64, 3, 1, 1, 1, 1, false},
      {"1x1 128->128 28x28 N=8", 8, 128, 28, 28, 128, 1, 1, 0, 1, 1, false},
      {"3x3 s2 64->128 56x56 N=8", 8, 64, 56, 56, 128, 3, 2, 1, 1, 1, false},
      {"3x3 depthwise 128 56x56 N=8", 8, 128, 56, 56, 128, 3, 1, 1, 1, 128, false},
      {"3x3 groups=8 128->128 28x28 N=8", 8, 128, 28, 28, 128, 3, 1, 1, 1, 8, false},
      {"3x3 dilation 2 64->64 28x28 N=8", 8, 64, 28, 28, 64, 3, 1, 2, 2, 1, false},
      {"7x7 s2 3->64 224x224 N=2", 2, 3, 224, 224, 64, 7, 2, 3, 1, 1, false},
      {"3x3 16->16 14x14 N=1", 1, 16, 14, 14, 16, 3, 1, 1, 1, 1, false},
      {"3x3 256->256 14x14 N=1", 1, 256, 14, 14, 256, 3, 1, 1, 1, 1, false},
      {"T 4x4 s2 64->32 28x28 N=8", 8, 64, 28, 28, 32, 4, 2, 1, 1, 1, true},
      {"T 3x3 64->64 28x28 N=4", 4, 64, 28, 28, 64, 3, 1, 1, 1, 1, true},
      {"T 2x2 s2 128->64 14x14 N=8", 8, 128, 14, 14, 64, 2, 2, 0, 1, 1, true},
  };
  const char* algo_names[] = {"", "im2col+GEMM", "oneDNN NCHW", "oneDNN blocked"};
  ts::Generator gen(1);
  std::vector<std::vector<std::vector<double>>> res(cases.size(), std::vector<std::vector<double>>(4));
  std::vector<double> flops(cases.size());
  for (int r = 0; r < reps; ++r) {
    for (size_t ci = 0; ci < cases.size(); ++ci) {
      const Case& c = cases[ci];
      ts::Tensor x = ts::randn({c.N, c.C, c.H, c.W}, gen);
      ts::Tensor w =
          c.transposed ? ts::randn({c.C, c.O / c.g, c.k, c.k}, gen) : ts::randn({c.O, c.C / c.g, c.k, c.k}, gen);
      std::function<ts::Tensor()> f;
      if (c.transposed)
        f = [&] { return ts::conv_transpose2d(x, w, {}, {{c.s, c.s}, {c.p, c.p}, {0, 0}, {c.d, c.d}, c.g}); };
      else
        f = [&] { return ts::conv2d(x, w, {}, {{c.s, c.s}, {c.p, c.p}, {c.d, c.d}, c.g}); };
      ts::Tensor y = f();
      // multiply-adds: every (input, weight) pair of the forward convolution counts once
      int64_t out_plane = y.shape()[2] * y.shape()[3];
      flops[ci] = c.transposed ? 2.0 * c.N * c.C * c.H * c.W * (c.O / c.g) * c.k * c.k
                               : 2.0 * c.N * c.O * out_plane * (c.C / c.g) * c.k * c.k;
      for (int a = 1; a <= 3; ++a) {
        ts::cpu::conv_force_algorithm(a);
        double t = time_call([&] { f(); }, 0.15);
        res[ci][static_cast<size_t>(a)].push_back(t);
      }
      ts::cpu::conv_force_algorithm(0);
    }
  }
  std::printf("float32 convolution, %d threads, median of %d interleaved repetitions: ms per call (GFLOP/s)\n",
              ts::get_num_threads(), reps);
  std::printf("%-34s %22s %22s %22s\n", "case", algo_names[1], algo_names[2], algo_names[3]);
  for (size_t ci = 0; ci < cases.size(); ++ci) {
    std::printf("%-34s", cases[ci].name.c_str());
    for (int a = 1; a <= 3; ++a) {
      double t = median(res[ci][static_cast<size_t>(a)]);
      std::printf(" %12.3f (%6.1f)", t * 1e3, flops[ci] / t * 1e-9);
    }
    std::printf("\n");
  }
  return 0;
}
