#include "systems.h"

#include <chrono>
#include <filesystem>
#include <optional>

#include "peer_process.h"
#include "tessera/error.h"
#include "tessera/runtime.h"
#include "tessera/tessera.h"
#include "tessera_workloads.h"

namespace tessera::cli::bench {

namespace fs = std::filesystem;

namespace {

// Tessera itself, in this process: the same requests, answered by tessera_workloads.cpp.
class TesseraSystem : public System {
 public:
  // graph: the same workloads in graph mode (set_mode(Mode::Graph): train steps and module
  // calls run as compiled plans).
  TesseraSystem(const BenchContext& ctx, bool graph)
      : System(graph ? "tessera-graph" : "tessera"), ctx_(ctx), mode_(graph ? Mode::Graph : Mode::Eager) {}
  json hello() override {
    set_num_threads(ctx_.threads);
    return {{"ok", true},
            {"system", name_},
            {"version", version()},
            {"config",
             std::string(mode_ == Mode::Graph ? "graph mode (compiled plans: fusion, memory plan)" : "eager mode") +
                 ", set_num_threads(" + std::to_string(get_num_threads()) +
                 "), OpenMP pool shared with oneDNN (float32 GEMM/conv)"}};
  }
  json request(const json& req, double) override {
    ModeGuard mode(mode_);
    std::string cmd = req.at("cmd");
    std::string id = req.value("id", "");
    try {
      if (cmd == "setup") {
        live_.erase(id);
        auto w = make_tessera_workload(id, req.at("kind"), req.value("params", json::object()), ctx_.workdir);
        auto t0 = std::chrono::steady_clock::now();
        w->first_call();
        double first = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        for (int i = 0; i < req.value("warmup", 0); ++i) w->call();
        json resp = {{"ok", true}, {"first_s", first}};
        if (!w->reference.empty()) resp["reference"] = w->reference;
        live_[id] = std::move(w);
        return resp;
      }
      if (cmd == "run") {
        Workload& w = *live_.at(id);
        json times = json::array();
        for (int i = 0; i < req.value("reps", 1); ++i) {
          auto t0 = std::chrono::steady_clock::now();
          w.call();
          times.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() / w.per_call);
        }
        json resp = {{"ok", true}, {"times", times}};
        json m = w.metric();
        if (!m.is_null()) resp["metric"] = m;
        return resp;
      }
      if (cmd == "release") {
        live_.erase(id);
        return {{"ok", true}};
      }
      return {{"ok", false}, {"error", "unknown command " + cmd}};
    } catch (const std::exception& e) {
      return {{"ok", false}, {"error", e.what()}};
    }
  }

 private:
  BenchContext ctx_;
  Mode mode_;
  std::map<std::string, std::unique_ptr<Workload>> live_;
};

// A peer process; `missing` is set when its program is not there (reported, not fatal).
class PeerSystem : public System {
 public:
  PeerSystem(std::string name, std::vector<std::string> argv, std::map<std::string, std::optional<std::string>> env,
             std::string missing, const BenchContext& ctx)
      : System(std::move(name)),
        argv_(std::move(argv)),
        env_(std::move(env)),
        missing_(std::move(missing)),
        ctx_(ctx) {}
  json hello() override {
    if (!missing_.empty()) return {{"ok", false}, {"missing", missing_}};
    std::string log = ctx_.workdir + "/" + name_ + ".log";
    try {
      proc_ = std::make_unique<PeerProcess>(argv_, env_, log);
      json h = proc_->read(180);
      if (!h.value("ok", false)) proc_.reset();
      return h;
    } catch (const Error& e) {
      std::string tail = proc_ ? proc_->log_tail(600) : "";
      proc_.reset();
      return {{"ok", false}, {"error", std::string(e.what()) + (tail.empty() ? "" : "; log: " + tail)}};
    }
  }
  json request(const json& req, double timeout_s) override {
    if (!proc_ || !proc_->alive()) return {{"ok", false}, {"error", "peer is not running"}};
    try {
      return proc_->request(req, timeout_s);
    } catch (const Error& e) {
      std::string tail = proc_->log_tail(600);
      return {{"ok", false}, {"error", std::string(e.what()) + (tail.empty() ? "" : "; log: " + tail)}};
    }
  }

 private:
  std::vector<std::string> argv_;
  std::map<std::string, std::optional<std::string>> env_;
  std::string missing_;
  BenchContext ctx_;
  std::unique_ptr<PeerProcess> proc_;
};

struct Entry {
  const char* name;
  const char* program;  // "python:<script under bench/peers>", "venv:<file in .venv-bench/bin>", "build:<file>"
};

// The table of systems, in the order the report lists them.
const Entry kSystems[] = {
    {"tessera", ""},
    {"tessera-graph", ""},
    {"onednn-sgemm", "build:bench/tessera_blas_peer"},
    {"openblas-sgemm", "build:bench/tessera_blas_peer"},
    {"pytorch", "python:torch_peer.py"},
    {"torch.compile", "python:torch_peer.py"},
    {"libtorch", "venv:tessera-libtorch-peer"},
    {"jax", "python:jax_peer.py"},
    {"onnxruntime", "python:ort_peer.py"},
};

std::unique_ptr<System> make_system(const Entry& e, const BenchContext& ctx) {
  if (std::string(e.name) == "tessera") return std::make_unique<TesseraSystem>(ctx, false);
  if (std::string(e.name) == "tessera-graph") return std::make_unique<TesseraSystem>(ctx, true);
  std::string prog = e.program, kind = prog.substr(0, prog.find(':')), file = prog.substr(prog.find(':') + 1);
  std::string t = std::to_string(ctx.threads);
  // Every peer gets the same thread count; OPENBLAS_CORETYPE (set on these machines to pin
  // OpenBLAS to AVX2) is removed so that a peer using OpenBLAS runs its best kernels.
  std::map<std::string, std::optional<std::string>> env = {
      {"OMP_NUM_THREADS", t},      {"MKL_NUM_THREADS", t},
      {"OPENBLAS_NUM_THREADS", t}, {"OPENBLAS_CORETYPE", std::nullopt},
      {"JAX_PLATFORMS", "cpu"},    {"PYTHONUNBUFFERED", "1"}};
  std::vector<std::string> argv;
  std::string missing;
  if (kind == "python") {
    std::string script = ctx.root + "/bench/peers/" + file;
    argv = {ctx.python, script};
    if (!fs::exists(ctx.python))
      missing = ctx.python + " not found: run scripts/setup-bench to create the bench environment";
    else if (!fs::exists(script))
      missing = script + " not found";
  } else {
    std::string path =
        kind == "venv" ? fs::path(ctx.python).parent_path().string() + "/" + file : ctx.exe_dir + "/" + file;
    argv = {path};
    if (!fs::exists(path))
      missing =
          path + (kind == "venv" ? " not found: scripts/setup-bench builds it" : " not built: `make bench` builds it");
  }
  argv.insert(argv.end(), {"--system", e.name, "--threads", t});
  return std::make_unique<PeerSystem>(e.name, argv, env, missing, ctx);
}

}  // namespace

std::vector<std::string> known_systems() {
  std::vector<std::string> v;
  for (const auto& e : kSystems) v.push_back(e.name);
  return v;
}

std::vector<std::unique_ptr<System>> make_systems(const std::vector<std::string>& wanted, const BenchContext& ctx) {
  std::vector<std::unique_ptr<System>> out;
  for (const auto& w : wanted) {
    const Entry* found = nullptr;
    for (const auto& e : kSystems)
      if (w == e.name) found = &e;
    if (!found) {
      std::string all;
      for (const auto& n : known_systems()) all += (all.empty() ? "" : ", ") + n;
      raise<ValueError>("bench", "unknown system '" + w + "' (known: " + all + ")");
    }
    out.push_back(make_system(*found, ctx));
  }
  return out;
}

}  // namespace tessera::cli::bench
