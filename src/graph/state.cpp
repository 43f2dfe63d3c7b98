// The registry of live StatefulObjects (modules, optimizers) that compile() reads state from,
// the thread's mode switch and the global dump directory.
#include "state.h"

#include <atomic>
#include <mutex>

#include "tessera/compile.h"

namespace tessera {

namespace {
std::atomic<uint64_t> next_state_id{1};
std::mutex registry_mutex;
std::vector<StatefulObject*>& registry() {
  static std::vector<StatefulObject*> objects;  // in construction order (ids ascending)
  return objects;
}
thread_local Mode current_mode = Mode::Eager;
std::atomic<bool> profiling_setting{false};
std::string& dump_dir_setting() {
  static std::string dir;
  return dir;
}
}  // namespace

StatefulObject::StatefulObject() : state_id_(next_state_id++) {
  std::lock_guard<std::mutex> lock(registry_mutex);
  registry().push_back(this);
}

StatefulObject::~StatefulObject() {
  std::lock_guard<std::mutex> lock(registry_mutex);
  auto& r = registry();
  for (size_t i = r.size(); i-- > 0;)
    if (r[i] == this) {
      r.erase(r.begin() + static_cast<std::ptrdiff_t>(i));
      break;
    }
}

void set_mode(Mode mode) { current_mode = mode; }
Mode get_mode() { return current_mode; }
void set_graph_dump_dir(const std::string& dir) { dump_dir_setting() = dir; }
void set_graph_profiling(bool on) { profiling_setting = on; }

namespace graph {

std::vector<StatefulObject*> live_state_objects() {
  std::lock_guard<std::mutex> lock(registry_mutex);
  return registry();
}

std::string graph_dump_dir() { return dump_dir_setting(); }
bool graph_profiling() { return profiling_setting; }

}  // namespace graph

}  // namespace tessera
