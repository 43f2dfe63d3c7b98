// A small --flag value parser for the tessera command-line tool.
#pragma once

#include <map>
#include <set>
#include <string>
#include <vector>

namespace tessera::cli {

/// "--name value" and "--name=value" pairs; "--switch" alone for the names in `switches`.
/// Throws ValueError naming the command for an unknown flag, a missing or malformed value.
class Args {
 public:
  Args(const std::string& command, int argc, char** argv, const std::set<std::string>& flags,
       const std::set<std::string>& switches = {});
  bool has(const std::string& name) const { return values_.count(name) > 0; }
  std::string str(const std::string& name, const std::string& fallback) const;
  int64_t integer(const std::string& name, int64_t fallback) const;
  double real(const std::string& name, double fallback) const;

 private:
  // The value of --name parsed whole by parse(text, &chars_used), or fallback when absent.
  template <class T, class Parse>
  T number(const std::string& name, T fallback, Parse parse, const char* what) const;
  std::string command_;
  std::map<std::string, std::string> values_;
};

}  // namespace tessera::cli
