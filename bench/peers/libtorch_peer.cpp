// The libtorch (C++) peer of `tessera bench`: the protocol of docs/benchmarks.md over stdin/stdout,
// kind eager_add only (ATen's dispatch cost from C++, without Python). Built by scripts/setup-bench
// against the headers and libraries inside .venv-bench's PyTorch wheel:
//
//   .venv-bench/bin/tessera-libtorch-peer --system libtorch --threads 2
//
// One call = `inner` at::add of two 1-element float tensors under c10::InferenceMode (as the
// Python peer's torch.inference_mode()); the run answer gives seconds per addition.
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <c10/core/InferenceMode.h>
#include <torch/headeronly/version.h>

#include <chrono>
#include <cstdio>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>
#include <string>

using json = nlohmann::json;

namespace {

struct EagerAdd {
  at::Tensor a, b;
  int64_t inner;

  void call() const {
    for (int64_t i = 0; i < inner; ++i) at::Tensor c = at::add(a, b);
  }
};

double seconds(const EagerAdd& w) {
  auto t0 = std::chrono::steady_clock::now();
  w.call();
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

int parse_threads(int argc, char** argv) {
  for (int i = 1; i + 1 < argc; ++i)
    if (std::string(argv[i]) == "--threads") return std::stoi(argv[i + 1]);
  return 2;
}

std::string parse_system(int argc, char** argv) {
  for (int i = 1; i + 1 < argc; ++i)
    if (std::string(argv[i]) == "--system") return argv[i + 1];
  return "libtorch";
}

json setup(std::map<std::string, EagerAdd>& live, const json& req) {
  if (req.value("kind", "") != "eager_add")
    return {{"ok", false}, {"unsupported", "libtorch peer runs eager_add only"}};
  at::manual_seed(0);
  EagerAdd w{at::rand({1}) * 2 - 1, at::rand({1}) * 2 - 1, req.at("params").value("inner", int64_t{10000})};
  double first = seconds(w);
  for (int64_t i = 0, n = req.value("warmup", int64_t{0}); i < n; ++i) w.call();
  live[req.at("id").get<std::string>()] = w;
  return {{"ok", true}, {"first_s", first}, {"note", "at::add on 1-element tensors under c10::InferenceMode"}};
}

json run(std::map<std::string, EagerAdd>& live, const json& req) {
  auto it = live.find(req.at("id").get<std::string>());
  if (it == live.end()) return {{"ok", false}, {"error", "no workload '" + req.at("id").get<std::string>() + "'"}};
  const EagerAdd& w = it->second;
  json times = json::array();
  for (int64_t i = 0, n = req.value("reps", int64_t{1}); i < n; ++i)
    times.push_back(seconds(w) / static_cast<double>(w.inner));
  return {{"ok", true}, {"times", times}};
}

json answer(std::map<std::string, EagerAdd>& live, const json& req) {
  std::string cmd = req.value("cmd", "");
  if (cmd == "setup") return setup(live, req);
  if (cmd == "run") return run(live, req);
  if (cmd == "release") {
    live.erase(req.value("id", ""));
    return {{"ok", true}};
  }
  return {{"ok", false}, {"error", "unknown command '" + cmd + "'"}};
}

}  // namespace

int main(int argc, char** argv) {
  int threads = parse_threads(argc, argv);
  at::set_num_threads(threads);
  at::set_num_interop_threads(1);
  c10::InferenceMode inference;
  std::map<std::string, EagerAdd> live;
  std::cout << json{{"ok", true},
                    {"system", parse_system(argc, argv)},
                    {"version", TORCH_VERSION},
                    {"config", "C++ ATen (libtorch " TORCH_VERSION " from the PyTorch wheel), at::set_num_threads(" +
                                   std::to_string(threads) + "), set_num_interop_threads(1), c10::InferenceMode"}}
            << std::endl;
  std::string line;
  while (std::getline(std::cin, line)) {
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    json resp;
    try {
      resp = answer(live, json::parse(line));
    } catch (const std::exception& e) {
      resp = {{"ok", false}, {"error", e.what()}};
    }
    std::cout << resp.dump() << std::endl;
  }
  return 0;
}
