#include "peer_process.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <fstream>
#include <sstream>

#include "tessera/error.h"

extern char** environ;

namespace tessera::cli::bench {

namespace {

std::vector<std::string> make_env(const std::map<std::string, std::optional<std::string>>& changes) {
  std::vector<std::string> out;
  for (char** e = environ; *e; ++e) {
    std::string kv = *e;
    std::string key = kv.substr(0, kv.find('='));
    if (!changes.count(key)) out.push_back(kv);
  }
  for (const auto& [k, v] : changes)
    if (v) out.push_back(k + "=" + *v);
  return out;
}

}  // namespace

PeerProcess::PeerProcess(const std::vector<std::string>& argv,
                         const std::map<std::string, std::optional<std::string>>& env, const std::string& log_path)
    : log_path_(log_path) {
  int in[2], out[2];
  if (pipe2(in, O_CLOEXEC) != 0 || pipe2(out, O_CLOEXEC) != 0)
    raise<IOError>("bench", std::string("cannot create pipes: ") + std::strerror(errno));
  int log = open(log_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (log < 0) raise<IOError>("bench", "cannot open peer log " + log_path + ": " + std::strerror(errno));
  // Build everything execve needs before fork: the child only calls async-signal-safe functions.
  std::vector<std::string> envs = make_env(env);
  std::vector<char*> cargv, cenv;
  for (const auto& a : argv) cargv.push_back(const_cast<char*>(a.c_str()));
  cargv.push_back(nullptr);
  for (const auto& e : envs) cenv.push_back(const_cast<char*>(e.c_str()));
  cenv.push_back(nullptr);
  pid_t pid = fork();
  if (pid < 0) raise<IOError>("bench", std::string("fork failed: ") + std::strerror(errno));
  if (pid == 0) {
    dup2(in[0], 0);
    dup2(out[1], 1);
    dup2(log, 2);
    execve(cargv[0], cargv.data(), cenv.data());
    const char msg[] = "bench peer: execve failed\n";
    (void)!write(2, msg, sizeof msg - 1);
    _exit(127);
  }
  close(in[0]);
  close(out[1]);
  close(log);
  pid_ = pid;
  to_child_ = in[1];
  from_child_ = out[0];
  signal(SIGPIPE, SIG_IGN);  // a peer that died shows as a failed write, not a killed runner
}

PeerProcess::~PeerProcess() {
  if (to_child_ >= 0) close(to_child_);  // end of stdin: the peer exits
  if (pid_ > 0) {
    for (int i = 0; i < 50; ++i) {  // up to 5 s for a clean exit
      if (waitpid(pid_, nullptr, WNOHANG) == pid_) {
        pid_ = -1;
        break;
      }
      usleep(100000);
    }
    if (pid_ > 0) kill_child();
  }
  if (from_child_ >= 0) close(from_child_);
}

void PeerProcess::kill_child() {
  if (pid_ <= 0) return;
  ::kill(pid_, SIGKILL);
  waitpid(pid_, nullptr, 0);
  pid_ = -1;
}

std::string PeerProcess::log_tail(size_t max_chars) const {
  std::ifstream f(log_path_);
  std::stringstream ss;
  ss << f.rdbuf();
  std::string s = ss.str();
  return s.size() > max_chars ? "..." + s.substr(s.size() - max_chars) : s;
}

json PeerProcess::read(double timeout_s) {
  using clock = std::chrono::steady_clock;
  auto deadline = clock::now() + std::chrono::duration<double>(timeout_s);
  for (;;) {
    size_t nl = buffer_.find('\n');
    if (nl != std::string::npos) {
      std::string line = buffer_.substr(0, nl);
      buffer_.erase(0, nl + 1);
      json j = json::parse(line, nullptr, /*allow_exceptions=*/false);
      if (j.is_discarded() || !j.is_object())
        raise<IOError>("bench", "peer wrote a line that is not a JSON object: " + line.substr(0, 200));
      return j;
    }
    if (pid_ <= 0) raise<IOError>("bench", "peer is not running");
    double left = std::chrono::duration<double>(deadline - clock::now()).count();
    if (left <= 0) {
      kill_child();
      raise<IOError>("bench", "peer did not answer within " + std::to_string(int(timeout_s)) + " s (killed)");
    }
    pollfd p{from_child_, POLLIN, 0};
    int r = poll(&p, 1, static_cast<int>(std::min(left, 1.0) * 1000) + 1);
    if (r < 0 && errno != EINTR) raise<IOError>("bench", std::string("poll failed: ") + std::strerror(errno));
    if (r <= 0) continue;
    char buf[65536];
    ssize_t n = ::read(from_child_, buf, sizeof buf);
    if (n > 0) {
      buffer_.append(buf, static_cast<size_t>(n));
    } else if (n == 0 || (n < 0 && errno != EINTR && errno != EAGAIN)) {
      int status = 0;
      waitpid(pid_, &status, 0);
      pid_ = -1;
      std::string why = WIFSIGNALED(status) ? "killed by signal " + std::to_string(WTERMSIG(status))
                                            : "exit status " + std::to_string(WEXITSTATUS(status));
      raise<IOError>("bench", "peer exited (" + why + ")");
    }
  }
}

json PeerProcess::request(const json& req, double timeout_s) {
  if (pid_ <= 0) raise<IOError>("bench", "peer is not running");
  std::string line = req.dump() + "\n";
  size_t off = 0;
  while (off < line.size()) {
    ssize_t n = ::write(to_child_, line.data() + off, line.size() - off);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) raise<IOError>("bench", std::string("cannot write to peer: ") + std::strerror(errno));
    off += static_cast<size_t>(n);
  }
  return read(timeout_s);
}

}  // namespace tessera::cli::bench
