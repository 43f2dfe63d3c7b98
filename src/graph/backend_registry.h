// Functions registered per backend name (the fused-program and epilogue evaluators): backends
// register from static initializers, so the table lives in a function-local static.
#pragma once

#include <mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace tessera::graph {

template <typename Fn>
class BackendRegistry {
 public:
  /// Registers fn for backend_name; a later registration for the same name replaces it.
  static void set(std::string_view backend_name, Fn fn) {
    Table& t = table();
    std::lock_guard<std::mutex> lock(t.mu);
    for (auto& [name, f] : t.entries)
      if (name == backend_name) {
        f = fn;
        return;
      }
    t.entries.emplace_back(std::string(backend_name), fn);
  }
  /// The function registered for backend_name, or nullptr.
  static Fn get(std::string_view backend_name) {
    Table& t = table();
    std::lock_guard<std::mutex> lock(t.mu);
    for (const auto& [name, f] : t.entries)
      if (name == backend_name) return f;
    return nullptr;
  }

 private:
  struct Table {
    std::mutex mu;
    std::vector<std::pair<std::string, Fn>> entries;
  };
  static Table& table() {
    static Table t;
    return t;
  }
};

}  // namespace tessera::graph
