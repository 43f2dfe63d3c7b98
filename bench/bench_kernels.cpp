// Kernel benchmarks: Tessera's CPU kernels side by side with the fastest peer available for each
// (raw oneDNN/OpenBLAS sgemm, plain OpenMP loops), all on the same thread count.
//
//   build/bench/tessera_bench [--threads=N] [Google Benchmark flags, e.g. --benchmark_filter=matmul]
//
// Each benchmark reports the median of 5 repetitions (the machine may be shared) as custom
// counters: GFLOP/s, GB/s (bytes read + written by the op), ms or ns per op; the label names the
// implementation. A summary with the ratios Tessera / peer is printed at the end. Benchmarks of ops
// that are not implemented yet are skipped with the library's error message.
//
// Adding a benchmark: register it in register_benchmarks() with add(), giving it counters with
// the helpers below, and add a line to print_summary() if it has a peer.
#include <benchmark/benchmark.h>
#include <cblas.h>
#include <omp.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "oneapi/dnnl/dnnl.h"
#include "tessera/tessera.h"

// libmvec's vector expf, so that the plain loop baselines vectorize like Tessera's kernels do.
extern "C" {
#pragma omp declare simd notinbranch
float expf(float) noexcept;
}

namespace ts = tessera;

namespace {

int g_threads = 2;

// ------------------------------------------------------------------ helpers
// Counters are computed from our own wall-clock timing of the measured loop (the work runs on
// several OpenMP threads, so the main thread's CPU time would be meaningless), as plain numbers so
// that the console shows them without rate suffixes.
class LoopTimer {
 public:
  LoopTimer() : t0_(std::chrono::steady_clock::now()) {}
  double seconds() const { return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0_).count(); }

 private:
  std::chrono::steady_clock::time_point t0_;
};

struct Work {
  double flop = 0;   // floating-point operations per iteration (GFLOP/s when > 0)
  double bytes = 0;  // bytes read + written per iteration (GB/s when > 0)
  bool ms = false;   // report milliseconds per op
  bool ns = false;   // report nanoseconds per op
};

void set_counters(benchmark::State& st, double seconds, const Work& w) {
  if (st.iterations() == 0 || seconds <= 0) return;
  const double per_op = seconds / static_cast<double>(st.iterations());
  if (w.flop > 0) st.counters["GFLOP/s"] = w.flop / per_op * 1e-9;
  if (w.bytes > 0) st.counters["GB/s"] = w.bytes / per_op * 1e-9;
  if (w.ms) st.counters["ms"] = per_op * 1e3;
  if (w.ns) st.counters["ns/op"] = per_op * 1e9;
}

float* raw(const ts::Tensor& t) { return static_cast<float*>(t.raw_data()); }

ts::Tensor random_tensor(std::initializer_list<int64_t> shape, uint64_t seed, double lo = -1, double hi = 1) {
  ts::Generator g(seed);
  return ts::uniform(shape, lo, hi, g);
}

/// Runs fn once outside the timing loop; on a Tessera error (e.g. NotImplementedError while an op
/// is being written) the benchmark is skipped with the message instead of aborting the run.
template <typename Fn>
bool try_first(benchmark::State& st, Fn&& fn) {
  try {
    fn();
    return true;
  } catch (const std::exception& e) {
    st.SkipWithError(e.what());
    return false;
  }
}

/// An implementation must not lose to its peer by computing something else: compares the first
/// min(n, 4096) elements (relative tolerance rtol) and skips the benchmark with a message otherwise.
bool check_same(benchmark::State& st, const float* got, const float* want, int64_t n, double rtol) {
  for (int64_t i = 0; i < std::min<int64_t>(n, 4096); ++i) {
    if (!(std::fabs(got[i] - want[i]) <= rtol * (1 + std::fabs(want[i])))) {
      std::string msg = "result differs from the reference at element " + std::to_string(i);
      st.SkipWithError(msg.c_str());
      return false;
    }
  }
  return true;
}

// ------------------------------------------------------------------ matmul
enum class Gemm { Tessera, Dnnl, Cblas };

void bm_matmul(benchmark::State& st, int64_t n, Gemm impl) {
  ts::Tensor a = random_tensor({n, n}, 1), b = random_tensor({n, n}, 2);
  ts::Tensor c = ts::zeros({n, n});
  const float *pa = raw(a), *pb = raw(b);
  float* pc = raw(c);
  Work w;
  w.flop = 2.0 * static_cast<double>(n) * static_cast<double>(n) * static_cast<double>(n);
  switch (impl) {
    case Gemm::Tessera: {
      st.SetLabel("tessera::matmul");
      ts::Tensor r;
      if (!try_first(st, [&] { r = ts::matmul(a, b); })) return;
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, static_cast<int>(n), static_cast<int>(n),
                  static_cast<int>(n), 1.0f, pa, static_cast<int>(n), pb, static_cast<int>(n), 0.0f, pc,
                  static_cast<int>(n));
      if (!check_same(st, raw(r), pc, n * n, 1e-3)) return;
      LoopTimer t;
      for (auto _ : st) {
        r = ts::matmul(a, b);
        benchmark::DoNotOptimize(r.raw_data());
      }
      set_counters(st, t.seconds(), w);
      break;
    }
    case Gemm::Dnnl: {
      st.SetLabel("raw dnnl_sgemm (oneDNN)");
      LoopTimer t;
      for (auto _ : st) {
        dnnl_sgemm('N', 'N', n, n, n, 1.0f, pa, n, pb, n, 0.0f, pc, n);
        benchmark::ClobberMemory();
      }
      set_counters(st, t.seconds(), w);
      break;
    }
    case Gemm::Cblas: {
      st.SetLabel("raw cblas_sgemm (OpenBLAS-openmp)");
      LoopTimer t;
      for (auto _ : st) {
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, static_cast<int>(n), static_cast<int>(n),
                    static_cast<int>(n), 1.0f, pa, static_cast<int>(n), pb, static_cast<int>(n), 0.0f, pc,
                    static_cast<int>(n));
        benchmark::ClobberMemory();
      }
      set_counters(st, t.seconds(), w);
      break;
    }
  }
}

// ------------------------------------------------------------- elementwise
constexpr int64_t kElems = int64_t{1} << 24;  // 16M float32 = 64 MiB per operand
enum class Ew { Add, Mul, Exp };

void bm_elementwise(benchmark::State& st, Ew op, bool tessera) {
  ts::Tensor a = random_tensor({kElems}, 3, -4, 4), b = random_tensor({kElems}, 4, -4, 4);
  const int nin = op == Ew::Exp ? 1 : 2;
  Work w;
  w.bytes = static_cast<double>((nin + 1) * kElems) * 4.0;
  w.ms = true;
  if (tessera) {
    st.SetLabel("tessera");
    ts::Tensor r;
    auto run = [&] { r = op == Ew::Add ? ts::add(a, b) : op == Ew::Mul ? ts::mul(a, b) : ts::exp(a); };
    if (!try_first(st, run)) return;
    LoopTimer t;
    for (auto _ : st) {
      run();
      benchmark::DoNotOptimize(r.raw_data());
    }
    set_counters(st, t.seconds(), w);
  } else {
    st.SetLabel("plain OpenMP loop");
    ts::Tensor r = ts::empty({kElems});
    const float *pa = raw(a), *pb = raw(b);
    float* pr = raw(r);
    LoopTimer t;
    for (auto _ : st) {
      switch (op) {
        case Ew::Add:
#pragma omp parallel for simd num_threads(g_threads)
          for (int64_t i = 0; i < kElems; ++i) pr[i] = pa[i] + pb[i];
          break;
        case Ew::Mul:
#pragma omp parallel for simd num_threads(g_threads)
          for (int64_t i = 0; i < kElems; ++i) pr[i] = pa[i] * pb[i];
          break;
        case Ew::Exp:
#pragma omp parallel for simd num_threads(g_threads)
          for (int64_t i = 0; i < kElems; ++i) pr[i] = expf(pa[i]);
          break;
      }
      benchmark::ClobberMemory();
    }
    set_counters(st, t.seconds(), w);
  }
}

// ---------------------------------------------------------- softmax / norm
// Reference loops: what a competent hand-written OpenMP + SIMD implementation does (three passes
// per row, float32 lanes), the yardstick for the fused kernels.
void softmax_loop(const float* x, float* y, int64_t rows, int64_t n) {
#pragma omp parallel for num_threads(g_threads)
  for (int64_t r = 0; r < rows; ++r) {
    const float* xr = x + r * n;
    float* yr = y + r * n;
    float m = -INFINITY;
#pragma omp simd reduction(max : m)
    for (int64_t k = 0; k < n; ++k) m = xr[k] > m ? xr[k] : m;
    float s = 0;
#pragma omp simd reduction(+ : s)
    for (int64_t k = 0; k < n; ++k) {
      float e = expf(xr[k] - m);
      yr[k] = e;
      s += e;
    }
    const float inv = 1.0f / s;
#pragma omp simd
    for (int64_t k = 0; k < n; ++k) yr[k] *= inv;
  }
}

void layer_norm_loop(const float* x, const float* w, const float* b, float* y, int64_t rows, int64_t n, float eps) {
#pragma omp parallel for num_threads(g_threads)
  for (int64_t r = 0; r < rows; ++r) {
    const float* xr = x + r * n;
    float* yr = y + r * n;
    float s = 0;
#pragma omp simd reduction(+ : s)
    for (int64_t k = 0; k < n; ++k) s += xr[k];
    const float mean = s / static_cast<float>(n);
    float q = 0;
#pragma omp simd reduction(+ : q)
    for (int64_t k = 0; k < n; ++k) q += (xr[k] - mean) * (xr[k] - mean);
    const float rs = 1.0f / std::sqrt(q / static_cast<float>(n) + eps);
#pragma omp simd
    for (int64_t k = 0; k < n; ++k) yr[k] = (xr[k] - mean) * rs * w[k] + b[k];
  }
}

void bm_softmax(benchmark::State& st, bool tessera) {
  const int64_t rows = 4096, n = 4096;
  ts::Tensor x = random_tensor({rows, n}, 5, -8, 8);
  ts::Tensor ref = ts::empty({rows, n});
  softmax_loop(raw(x), raw(ref), rows, n);
  Work work;
  work.bytes = 2.0 * static_cast<double>(rows * n) * 4.0;
  work.ms = true;
  if (tessera) {
    st.SetLabel("tessera::softmax");
    ts::Tensor r;
    if (!try_first(st, [&] { r = ts::softmax(x, -1); })) return;
    if (!check_same(st, raw(r), raw(ref), rows * n, 1e-4)) return;
    LoopTimer t;
    for (auto _ : st) {
      r = ts::softmax(x, -1);
      benchmark::DoNotOptimize(r.raw_data());
    }
    set_counters(st, t.seconds(), work);
  } else {
    st.SetLabel("OpenMP+SIMD reference loop");
    ts::Tensor y = ts::empty({rows, n});
    LoopTimer t;
    for (auto _ : st) {
      softmax_loop(raw(x), raw(y), rows, n);
      benchmark::ClobberMemory();
    }
    set_counters(st, t.seconds(), work);
  }
}

void bm_layer_norm(benchmark::State& st, bool tessera) {
  const int64_t rows = 8192, n = 1024;
  ts::Tensor x = random_tensor({rows, n}, 6, -3, 5), w = random_tensor({n}, 7, 0.5, 2), b = random_tensor({n}, 8);
  ts::Tensor ref = ts::empty({rows, n});
  layer_norm_loop(raw(x), raw(w), raw(b), raw(ref), rows, n, 1e-5f);
  Work work;
  work.bytes = 2.0 * static_cast<double>(rows * n) * 4.0;
  work.ms = true;
  if (tessera) {
    st.SetLabel("tessera::layer_norm");
    ts::Tensor r;
    if (!try_first(st, [&] { r = ts::layer_norm(x, {n}, w, b, 1e-5); })) return;
    if (!check_same(st, raw(r), raw(ref), rows * n, 1e-4)) return;
    LoopTimer t;
    for (auto _ : st) {
      r = ts::layer_norm(x, {n}, w, b, 1e-5);
      benchmark::DoNotOptimize(r.raw_data());
    }
    set_counters(st, t.seconds(), work);
  } else {
    st.SetLabel("OpenMP+SIMD reference loop");
    ts::Tensor y = ts::empty({rows, n});
    LoopTimer t;
    for (auto _ : st) {
      layer_norm_loop(raw(x), raw(w), raw(b), raw(y), rows, n, 1e-5f);
      benchmark::ClobberMemory();
    }
    set_counters(st, t.seconds(), work);
  }
}

// -------------------------------------------------------------- eager op
void bm_eager_add(benchmark::State& st) {
  st.SetLabel("tessera::add on [1] float32 (goal < 250 ns)");
  ts::Tensor a = ts::ones({1}), b = ts::ones({1});
  ts::Tensor r;
  if (!try_first(st, [&] { r = ts::add(a, b); })) return;
  LoopTimer t;
  for (auto _ : st) {
    r = ts::add(a, b);
    benchmark::DoNotOptimize(r.raw_data());
  }
  Work w;
  w.ns = true;
  set_counters(st, t.seconds(), w);
}

// ----------------------------------------------------------------- conv2d
void bm_conv2d(benchmark::State& st) {
  st.SetLabel("tessera::conv2d 8x64x56x56, 64->64 3x3 pad 1");
  ts::Tensor x = random_tensor({8, 64, 56, 56}, 9), w = random_tensor({64, 64, 3, 3}, 10, -0.1, 0.1);
  ts::Conv2dOptions opt;
  opt.padding = {1, 1};
  ts::Tensor r;
  if (!try_first(st, [&] { r = ts::conv2d(x, w, {}, opt); })) return;
  LoopTimer t;
  for (auto _ : st) {
    r = ts::conv2d(x, w, {}, opt);
    benchmark::DoNotOptimize(r.raw_data());
  }
  Work work;
  work.flop = 2.0 * 8 * 64 * 56 * 56 * 64 * 9;
  work.ms = true;
  set_counters(st, t.seconds(), work);
}

// ------------------------------------------------------------ registration
benchmark::internal::Benchmark* add(const std::string& name, std::function<void(benchmark::State&)> fn,
                                    double min_time) {
  return benchmark::RegisterBenchmark(name.c_str(), [fn](benchmark::State& st) { fn(st); })
      ->UseRealTime()  // the work runs on g_threads OpenMP threads: wall time is what counts
      ->Unit(benchmark::kMillisecond)
      ->MinTime(min_time)
      ->Repetitions(5)
      ->ReportAggregatesOnly(true);
}

void register_benchmarks() {
  for (int64_t n : {256, 512, 1024, 2048}) {
    double t = n >= 1024 ? 0.3 : 0.15;
    add(
        "matmul/" + std::to_string(n) + "/tessera", [n](auto& st) { bm_matmul(st, n, Gemm::Tessera); }, t);
    add(
        "matmul/" + std::to_string(n) + "/dnnl_sgemm", [n](auto& st) { bm_matmul(st, n, Gemm::Dnnl); }, t);
    add(
        "matmul/" + std::to_string(n) + "/cblas_sgemm", [n](auto& st) { bm_matmul(st, n, Gemm::Cblas); }, t);
  }
  for (auto [op, name] :
       std::vector<std::pair<Ew, std::string>>{{Ew::Add, "add"}, {Ew::Mul, "mul"}, {Ew::Exp, "exp"}}) {
    add(
        "elementwise/" + name + "/16M/tessera", [op](auto& st) { bm_elementwise(st, op, true); }, 0.2);
    add(
        "elementwise/" + name + "/16M/loop", [op](auto& st) { bm_elementwise(st, op, false); }, 0.2);
  }
  add(
      "softmax/4096x4096/tessera", [](auto& st) { bm_softmax(st, true); }, 0.2);
  add(
      "softmax/4096x4096/loop", [](auto& st) { bm_softmax(st, false); }, 0.2);
  add(
      "layer_norm/8192x1024/tessera", [](auto& st) { bm_layer_norm(st, true); }, 0.2);
  add(
      "layer_norm/8192x1024/loop", [](auto& st) { bm_layer_norm(st, false); }, 0.2);
  add("eager_add/1/tessera", bm_eager_add, 0.2)->Unit(benchmark::kNanosecond);
  add("conv2d/8x64x56x56/tessera", bm_conv2d, 0.3);
}

// ----------------------------------------------------------------- summary
// Keeps the median of every benchmark while forwarding everything to the console.
class SummaryReporter : public benchmark::ConsoleReporter {
 public:
  struct Result {
    std::map<std::string, double> counters;
    std::string error;
  };
  std::map<std::string, Result> results;

  explicit SummaryReporter(OutputOptions opts) : ConsoleReporter(opts) {}

  void ReportRuns(const std::vector<Run>& runs) override {
    std::vector<Run> shown;  // the median (and errors): mean/stddev/cv of 5 noisy runs add little
    for (const Run& r : runs) {
      if (r.error_occurred) {
        Result& res = results[r.run_name.function_name];
        if (res.error.empty()) shown.push_back(r);  // once, not once per repetition
        res.error = r.error_message;
      } else if (r.aggregate_name == "median") {
        Result& res = results[r.run_name.function_name];
        for (const auto& [k, c] : r.counters) res.counters[k] = c.value;
        shown.push_back(r);
      }
    }
    if (!shown.empty()) ConsoleReporter::ReportRuns(shown);
  }

  /// The median of counter for benchmark name, or NaN when it did not run.
  double get(const std::string& name, const std::string& counter) const {
    auto it = results.find(name);
    if (it == results.end() || !it->second.error.empty()) return NAN;
    auto c = it->second.counters.find(counter);
    return c == it->second.counters.end() ? NAN : c->second;
  }
  bool ran(const std::string& name) const { return results.count(name) != 0; }
  std::string error(const std::string& name) const {
    auto it = results.find(name);
    return it == results.end() ? "did not run" : it->second.error;
  }
};

void print_summary(const SummaryReporter& rep) {
  std::printf("\nSummary (medians, %d threads; ratio > 1 means Tessera is faster)\n", g_threads);
  std::printf("%-28s %14s %14s %14s %9s\n", "benchmark", "tessera", "peer", "peer2", "ratio");
  auto row = [&](const std::string& what, const std::string& unit, double t, double p1, double p2, bool higher_better,
                 const std::string& tessera_name) {
    double best = higher_better ? std::max(std::isnan(p1) ? -INFINITY : p1, std::isnan(p2) ? -INFINITY : p2)
                                : std::min(std::isnan(p1) ? INFINITY : p1, std::isnan(p2) ? INFINITY : p2);
    auto fmt = [](double v) {
      char buf[32];
      if (std::isnan(v))
        std::snprintf(buf, sizeof buf, "-");
      else
        std::snprintf(buf, sizeof buf, "%.2f", v);
      return std::string(buf);
    };
    if (!rep.ran(tessera_name)) return;  // filtered out
    if (std::isnan(t)) {
      std::string err = rep.error(tessera_name);
      std::printf("%-28s %14s %14s %14s %9s  (%s; tessera skipped: %s)\n", what.c_str(), "-", fmt(p1).c_str(),
                  fmt(p2).c_str(), "-", unit.c_str(), err.substr(0, 70).c_str());
      return;
    }
    double ratio = std::isfinite(best) ? (higher_better ? t / best : best / t) : NAN;
    std::printf("%-28s %14s %14s %14s %9s  (%s)\n", what.c_str(), fmt(t).c_str(), fmt(p1).c_str(), fmt(p2).c_str(),
                fmt(ratio).c_str(), unit.c_str());
  };
  for (int n : {256, 512, 1024, 2048}) {
    std::string b = "matmul/" + std::to_string(n) + "/";
    row("matmul " + std::to_string(n), "GFLOP/s; peers dnnl_sgemm, cblas_sgemm", rep.get(b + "tessera", "GFLOP/s"),
        rep.get(b + "dnnl_sgemm", "GFLOP/s"), rep.get(b + "cblas_sgemm", "GFLOP/s"), true, b + "tessera");
  }
  for (std::string op : {"add", "mul", "exp"}) {
    std::string b = "elementwise/" + op + "/16M/";
    row(op + " 16M float32", "GB/s; peer plain OpenMP loop", rep.get(b + "tessera", "GB/s"),
        rep.get(b + "loop", "GB/s"), NAN, true, b + "tessera");
  }
  row("softmax 4096x4096", "ms; peer OpenMP+SIMD loop", rep.get("softmax/4096x4096/tessera", "ms"),
      rep.get("softmax/4096x4096/loop", "ms"), NAN, false, "softmax/4096x4096/tessera");
  row("layer_norm 8192x1024", "ms; peer OpenMP+SIMD loop", rep.get("layer_norm/8192x1024/tessera", "ms"),
      rep.get("layer_norm/8192x1024/loop", "ms"), NAN, false, "layer_norm/8192x1024/tessera");
  row("eager add [1]", "ns/op; goal < 250", rep.get("eager_add/1/tessera", "ns/op"), NAN, NAN, false,
      "eager_add/1/tessera");
  row("conv2d 8x64x56x56 3x3", "GFLOP/s", rep.get("conv2d/8x64x56x56/tessera", "GFLOP/s"), NAN, NAN, true,
      "conv2d/8x64x56x56/tessera");
}

std::string cpu_model() {
  std::ifstream f("/proc/cpuinfo");
  std::string line;
  while (std::getline(f, line)) {
    if (line.rfind("model name", 0) == 0) {
      auto p = line.find(':');
      return p == std::string::npos ? line : line.substr(p + 2);
    }
  }
  return "unknown CPU";
}

}  // namespace

int main(int argc, char** argv) {
  // --threads=N is ours; everything else goes to Google Benchmark.
  std::vector<char*> args;
  for (int i = 0; i < argc; ++i) {
    if (i > 0 && std::strncmp(argv[i], "--threads=", 10) == 0) {
      g_threads = std::atoi(argv[i] + 10);
      if (g_threads < 1) {
        std::fprintf(stderr, "tessera_bench: --threads must be a positive integer\n");
        return 2;
      }
    } else {
      args.push_back(argv[i]);
    }
  }
  int nargs = static_cast<int>(args.size());
  ts::set_num_threads(g_threads);
  omp_set_num_threads(g_threads);       // oneDNN's and OpenBLAS-openmp's pool
  openblas_set_num_threads(g_threads);  // in case OpenBLAS kept its own count

  std::printf("tessera_bench: Tessera %s | CPU: %s | threads: %d (Tessera, oneDNN, OpenBLAS and loops alike)\n",
              ts::version(), cpu_model().c_str(), g_threads);
  benchmark::Initialize(&nargs, args.data());
  if (benchmark::ReportUnrecognizedArguments(nargs, args.data())) return 1;
  register_benchmarks();
  // A custom display reporter does not see --benchmark_color: colour only on a terminal, unless
  // turned off.
  bool color = isatty(fileno(stdout)) != 0;
  for (char* a : args)
    if (std::strcmp(a, "--benchmark_color=false") == 0 || std::strcmp(a, "--benchmark_color=no") == 0) color = false;
  SummaryReporter rep(color ? benchmark::ConsoleReporter::OO_ColorTabular : benchmark::ConsoleReporter::OO_Tabular);
  benchmark::RunSpecifiedBenchmarks(&rep);
  print_summary(rep);
  benchmark::Shutdown();
  return 0;
}
