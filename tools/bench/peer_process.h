// A benchmark peer running as a child process that speaks the line-JSON protocol of
// docs/benchmarks.md on its stdin/stdout. Its stderr goes to a log file.
#pragma once

#include <sys/types.h>

#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

namespace tessera::cli::bench {

using json = nlohmann::json;

class PeerProcess {
 public:
  /// Starts argv[0] (a path) with the environment of this process changed by `env` (a value of
  /// nullopt removes the variable). Throws IOError when the process cannot be started.
  PeerProcess(const std::vector<std::string>& argv, const std::map<std::string, std::optional<std::string>>& env,
              const std::string& log_path);
  ~PeerProcess();
  PeerProcess(const PeerProcess&) = delete;
  PeerProcess& operator=(const PeerProcess&) = delete;

  /// The next line the peer writes, parsed; throws IOError when the peer exits, writes a line that
  /// is not JSON, or stays silent longer than timeout_s (the peer is then killed).
  json read(double timeout_s);
  /// Sends one request and returns the response (see read).
  json request(const json& req, double timeout_s);
  bool alive() const { return pid_ > 0; }
  /// The last lines of the peer's log, for error messages.
  std::string log_tail(size_t max_chars = 1500) const;

 private:
  void kill_child();
  pid_t pid_ = -1;
  int to_child_ = -1, from_child_ = -1;
  std::string buffer_, log_path_;
};

}  // namespace tessera::cli::bench
