// Process-wide settings. Environment variables are read here and only here
// (the one configuration loader), once, at first use.
#include "tessera/runtime.h"

#include <atomic>
#include <cstdlib>
#include <string>
#include <thread>

#include "tessera/backend.h"
#include "tessera/error.h"

namespace tessera {

namespace {
int default_threads() {
  if (const char* env = std::getenv("TESSERA_NUM_THREADS")) {
    char* end = nullptr;
    long n = std::strtol(env, &end, 10);
    if (end != env && *end == '\0' && n >= 1 && n <= 4096) return static_cast<int>(n);
  }
  unsigned hc = std::thread::hardware_concurrency();
  return hc ? static_cast<int>(hc) : 1;
}
std::atomic<int>& threads() {
  static std::atomic<int> n{default_threads()};
  return n;
}
}  // namespace

void set_num_threads(int n) {
  if (n < 1) raise<ValueError>("set_num_threads", "thread count must be >= 1, got " + std::to_string(n));
  threads().store(n);
}
int get_num_threads() { return threads().load(std::memory_order_relaxed); }

const char* version() { return "0.1.0"; }

std::string runtime_info() {
  std::string s = "tessera " + std::string(version()) + "\n";
  s += "threads: " + std::to_string(get_num_threads()) + "\n";
  s += "default device: " + default_device().str() + "\n";
  s += "backends:\n";
  for (Backend* b : backends()) s += "  " + b->describe() + "\n";
  return s;
}

}  // namespace tessera
