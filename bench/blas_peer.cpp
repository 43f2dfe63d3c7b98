// `tessera bench` peer for raw single-precision GEMM calls: --system onednn-sgemm (dnnl_sgemm) or
// openblas-sgemm (cblas_sgemm from Debian's OpenMP build of OpenBLAS). Speaks the line-JSON protocol
// of docs/benchmarks.md; only the matmul kind. The output buffer is allocated once at setup (a raw
// BLAS call writes into caller memory), so these rows are the floor for what a framework's matmul
// can reach.
#include <cblas.h>
#include <omp.h>

#include <chrono>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <vector>

#include "oneapi/dnnl/dnnl.h"

using json = nlohmann::json;

extern "C" void openblas_set_num_threads(int);
extern "C" char* openblas_get_config(void);

namespace {

struct Gemm {
  int64_t n = 0;
  std::vector<float> a, b, c;
};

void sgemm(bool onednn, Gemm& g) {
  const int64_t n = g.n;
  if (onednn)
    dnnl_sgemm('N', 'N', n, n, n, 1.0f, g.a.data(), n, g.b.data(), n, 0.0f, g.c.data(), n);
  else
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, int(n), int(n), int(n), 1.0f, g.a.data(), int(n), g.b.data(),
                int(n), 0.0f, g.c.data(), int(n));
}

double seconds(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace

int main(int argc, char** argv) {
  std::string system;
  int threads = 2;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string k = argv[i];
    if (k == "--system") system = argv[i + 1];
    if (k == "--threads") threads = std::stoi(argv[i + 1]);
  }
  const bool onednn = system == "onednn-sgemm";
  if (!onednn && system != "openblas-sgemm") {
    std::cout << json{{"ok", false}, {"error", "unknown --system '" + system + "'"}}.dump() << std::endl;
    return 2;
  }
  omp_set_num_threads(threads);
  openblas_set_num_threads(threads);
  std::string version;
  if (onednn) {
    const dnnl_version_t* v = dnnl_version();
    version = "oneDNN " + std::to_string(v->major) + "." + std::to_string(v->minor) + "." + std::to_string(v->patch);
  } else {
    version = openblas_get_config();
  }
  std::cout << json{{"ok", true},
                    {"system", system},
                    {"version", version},
                    {"config", std::string(onednn ? "dnnl_sgemm" : "cblas_sgemm (OPENBLAS_CORETYPE unset)") +
                                   ", row-major NN, " + std::to_string(threads) + " OpenMP threads"}}
                   .dump()
            << std::endl;

  std::map<std::string, Gemm> live;
  std::string line;
  while (std::getline(std::cin, line)) {
    if (line.empty()) continue;
    json req = json::parse(line, nullptr, false);
    json resp;
    if (req.is_discarded() || !req.is_object()) {
      resp = {{"ok", false}, {"error", "request is not a JSON object"}};
    } else if (req.value("cmd", "") == "setup") {
      std::string id = req.value("id", "");
      if (req.value("kind", "") != "matmul") {
        resp = {{"ok", false}, {"unsupported", system + " runs only matmul"}};
      } else {
        Gemm g;
        g.n = req["params"].value("n", 512);
        std::mt19937 rng(0);
        std::uniform_real_distribution<float> u(-1.0f, 1.0f);
        g.a.resize(g.n * g.n);
        g.b.resize(g.n * g.n);
        g.c.assign(g.n * g.n, 0.0f);
        for (auto& x : g.a) x = u(rng);
        for (auto& x : g.b) x = u(rng);
        auto t0 = std::chrono::steady_clock::now();
        sgemm(onednn, g);
        double first = seconds(t0);
        for (int i = 0; i < req.value("warmup", 0); ++i) sgemm(onednn, g);
        live[id] = std::move(g);
        resp = {{"ok", true}, {"first_s", first}};
      }
    } else if (req.value("cmd", "") == "run") {
      auto it = live.find(req.value("id", ""));
      if (it == live.end()) {
        resp = {{"ok", false}, {"error", "run before setup"}};
      } else {
        json times = json::array();
        for (int i = 0; i < req.value("reps", 1); ++i) {
          auto t0 = std::chrono::steady_clock::now();
          sgemm(onednn, it->second);
          times.push_back(seconds(t0));
        }
        resp = {{"ok", true}, {"times", times}};
      }
    } else if (req.value("cmd", "") == "release") {
      live.erase(req.value("id", ""));
      resp = {{"ok", true}};
    } else {
      resp = {{"ok", false}, {"error", "unknown command"}};
    }
    std::cout << resp.dump() << std::endl;
  }
  return 0;
}
