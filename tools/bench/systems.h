// The systems `tessera bench` compares: Tessera in-process, every peer as a child process.
// Adding a peer = one entry in the table of systems.cpp plus the peer program itself.
#pragma once

#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace tessera::cli::bench {

using json = nlohmann::json;

struct BenchContext {
  std::string root;     // the source tree (bench/, .venv-bench)
  std::string exe_dir;  // where the tessera binary lives (the build dir)
  std::string python;   // the bench virtual environment's interpreter
  std::string workdir;  // reference files and peer logs
  int threads = 2;
};

/// Speaks the protocol of docs/benchmarks.md: each call returns the JSON response a peer would.
class System {
 public:
  virtual ~System() = default;
  const std::string& name() const { return name_; }
  /// {"ok": true, "version", "config"} or {"ok": false, "missing" | "error": ...}; starts the system.
  virtual json hello() = 0;
  virtual json request(const json& req, double timeout_s) = 0;

 protected:
  explicit System(std::string name) : name_(std::move(name)) {}
  std::string name_;
};

/// The systems in `wanted` order, constructed but not started (hello() starts them).
/// Throws ValueError naming the known systems for an unknown name.
std::vector<std::unique_ptr<System>> make_systems(const std::vector<std::string>& wanted, const BenchContext& ctx);
/// Every system name the table knows, in the table's order.
std::vector<std::string> known_systems();

}  // namespace tessera::cli::bench
