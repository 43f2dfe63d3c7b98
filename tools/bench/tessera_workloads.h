// Tessera's side of each benchmark kind (docs/benchmarks.md "Kinds"), run in the runner's process.
#pragma once

#include <memory>
#include <nlohmann/json.hpp>
#include <string>

namespace tessera::cli::bench {

using json = nlohmann::json;

/// One benchmark workload, set up and ready: call() is one timed call.
class Workload {
 public:
  virtual ~Workload() = default;
  virtual void call() = 0;
  /// The first call after setup (jit systems compile there); by default an ordinary call.
  virtual void first_call() { call(); }
  /// Reported after each timed run (e.g. test accuracy); null when none.
  virtual json metric() { return nullptr; }
  double per_call = 1;    // operations per call (eager_add: the reported time is per operation)
  std::string reference;  // a reference file written for the peers' agreement checks ("" = none)
};

/// Builds Tessera's workload of `kind` with the manifest's params. Reference files (inference,
/// generate) are written into workdir. Throws ValueError for an unknown kind or model.
std::unique_ptr<Workload> make_tessera_workload(const std::string& id, const std::string& kind, const json& params,
                                                const std::string& workdir);

}  // namespace tessera::cli::bench
