#include "cli_args.h"

#include "tessera/error.h"

namespace tessera::cli {

Args::Args(const std::string& command, int argc, char** argv, const std::set<std::string>& flags,
           const std::set<std::string>& switches)
    : command_(command) {
  for (int i = 0; i < argc; ++i) {
    std::string a = argv[i];
    if (a.rfind("--", 0) != 0)
      raise<ValueError>(command.c_str(), "unexpected argument '" + a + "' (flags start with --)");
    std::string name = a.substr(2), value;
    size_t eq = name.find('=');
    bool inline_value = eq != std::string::npos;
    if (inline_value) {
      value = name.substr(eq + 1);
      name = name.substr(0, eq);
    }
    if (switches.count(name)) {
      values_[name] = inline_value ? value : "1";
      continue;
    }
    if (!flags.count(name)) {
      std::string known;
      for (auto& f : flags) known += " --" + f;
      for (auto& f : switches) known += " --" + f;
      raise<ValueError>(command.c_str(), "unknown flag --" + name + " (known:" + known + ")");
    }
    if (!inline_value) {
      if (i + 1 >= argc) raise<ValueError>(command.c_str(), "flag --" + name + " needs a value");
      value = argv[++i];
    }
    values_[name] = value;
  }
}

std::string Args::str(const std::string& name, const std::string& fallback) const {
  auto it = values_.find(name);
  return it == values_.end() ? fallback : it->second;
}

template <class T, class Parse>
T Args::number(const std::string& name, T fallback, Parse parse, const char* what) const {
  auto it = values_.find(name);
  if (it == values_.end()) return fallback;
  try {
    size_t used = 0;
    T v = parse(it->second, &used);
    if (used == it->second.size()) return v;
  } catch (const std::exception&) {
  }
  raise<ValueError>(command_.c_str(), "--" + name + " expects " + what + ", got '" + it->second + "'");
}

int64_t Args::integer(const std::string& name, int64_t fallback) const {
  return number<int64_t>(
      name, fallback, [](const std::string& s, size_t* used) { return std::stoll(s, used); }, "an integer");
}

double Args::real(const std::string& name, double fallback) const {
  return number<double>(
      name, fallback, [](const std::string& s, size_t* used) { return std::stod(s, used); }, "a number");
}

}  // namespace tessera::cli
