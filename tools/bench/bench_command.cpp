// The runner of `tessera bench`: reads bench/workloads.json, sets every workload up in every
// system that runs it (Tessera first: it writes the reference files), interleaves timed runs of
// the systems round by round, and prints a Markdown table with medians, spreads and ratios plus
// an optional JSON file of records. docs/benchmarks.md describes the method and the protocol.
#include "bench_command.h"

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <sstream>

#include "../cli_args.h"
#include "systems.h"
#include "tessera/error.h"

namespace tessera::cli {

namespace fs = std::filesystem;
using bench::json;

namespace {

struct Options {
  bool quick = false;
  std::string json_path, markdown_path, manifest, python, workdir;
  std::vector<std::string> filter, systems;
  int threads = 2;
  int rounds = 0;      // 0: 3 quick, 5 full
  double seconds = 0;  // per system per round; 0: 0.2 quick, 1.0 full
  bool list = false;
  bool help = false;
};

std::vector<std::string> split(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream ss(s);
  std::string item;
  while (std::getline(ss, item, ','))
    if (!item.empty()) out.push_back(item);
  return out;
}

std::string exe_dir() {
  std::error_code ec;
  fs::path p = fs::read_symlink("/proc/self/exe", ec);
  return ec ? "." : p.parent_path().string();
}

#ifndef TESSERA_SOURCE_DIR
#define TESSERA_SOURCE_DIR "."
#endif

Options parse(int argc, char** argv) {
  Args a("bench", argc, argv,
         {"json", "markdown", "filter", "systems", "threads", "rounds", "seconds", "python", "manifest", "workdir"},
         {"quick", "list", "help"});
  Options o;
  o.quick = a.has("quick");
  o.list = a.has("list");
  o.help = a.has("help");
  o.json_path = a.str("json", "");
  o.markdown_path = a.str("markdown", "");
  o.filter = split(a.str("filter", ""));
  o.systems = split(a.str("systems", ""));
  o.threads = static_cast<int>(a.integer("threads", 2));
  o.rounds = static_cast<int>(a.integer("rounds", 0));
  o.seconds = a.real("seconds", 0);
  std::string root = TESSERA_SOURCE_DIR;
  o.manifest = a.str("manifest", root + "/bench/workloads.json");
  const char* env_py = std::getenv("TESSERA_BENCH_PYTHON");
  o.python = a.str("python", env_py ? env_py : root + "/.venv-bench/bin/python");
  o.workdir = a.str("workdir", "");
  if (o.threads < 1) raise<ValueError>("bench", "--threads must be >= 1");
  if (o.rounds < 0 || o.seconds < 0) raise<ValueError>("bench", "--rounds and --seconds must be >= 0");
  if (o.rounds == 0) o.rounds = o.quick ? 3 : 5;
  if (o.seconds == 0) o.seconds = o.quick ? 0.2 : 1.0;
  return o;
}

json load_manifest(const std::string& path) {
  std::ifstream f(path);
  if (!f) raise<IOError>("bench", "cannot read the workload manifest " + path);
  json m = json::parse(f, nullptr, false);
  if (m.is_discarded() || !m.contains("workloads") || !m["workloads"].is_array())
    raise<FormatError>("bench", path + " is not a manifest (an object with a \"workloads\" array)");
  for (const auto& w : m["workloads"])
    for (const char* k : {"id", "group", "kind", "unit", "systems"})
      if (!w.contains(k)) raise<FormatError>("bench", path + ": a workload lacks \"" + k + "\": " + w.dump());
  return m;
}

double unit_scale(const std::string& unit) {
  if (unit == "s") return 1;
  if (unit == "ms") return 1e3;
  if (unit == "us") return 1e6;
  if (unit == "ns") return 1e9;
  raise<ValueError>("bench", "unknown unit '" + unit + "'");
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

std::string num(double v) {
  std::ostringstream os;
  double a = std::fabs(v);
  int prec = a >= 100 ? 0 : a >= 10 ? 1 : a >= 1 ? 2 : 3;
  os << std::fixed << std::setprecision(prec) << v;
  return os.str();
}

// Throughput from the manifest's "work" entry, for the notes column.
std::string rate(const json& w, double seconds) {
  if (!w.contains("work") || seconds <= 0) return "";
  const json& work = w["work"];
  if (work.contains("flop")) return num(work["flop"].get<double>() / seconds * 1e-9) + " GFLOP/s";
  if (work.contains("bytes")) return num(work["bytes"].get<double>() / seconds * 1e-9) + " GB/s";
  if (work.contains("tokens")) return num(work["tokens"].get<double>() / seconds) + " tokens/s";
  if (work.contains("samples")) return num(work["samples"].get<double>() / seconds) + " samples/s";
  return "";
}

// One (workload, system) result.
struct Result {
  std::string system, status = "ok", message;  // status: ok, missing, unsupported, skipped, error
  std::vector<double> times;                   // in the workload's unit
  std::vector<double> round_medians;
  std::vector<int> reps;
  double first_s = -1;
  json check, metric;
};

json record(const json& w, const Result& r) {
  json j = {
      {"workload", w["id"]}, {"group", w["group"]}, {"system", r.system}, {"status", r.status}, {"unit", w["unit"]}};
  if (!r.times.empty()) {
    j["median"] = median(r.times);
    j["min"] = *std::min_element(r.times.begin(), r.times.end());
    j["max"] = *std::max_element(r.times.begin(), r.times.end());
    j["round_medians"] = r.round_medians;
    j["samples"] = r.times.size();
  }
  if (r.first_s >= 0) j["first_call_s"] = r.first_s;
  if (!r.check.is_null()) j["check"] = r.check;
  if (!r.metric.is_null()) j["metric"] = r.metric;
  if (!r.message.empty()) j["message"] = r.message;
  return j;
}

std::string check_text(const json& c) {
  if (c.is_null()) return "";
  if (c.contains("max_rel_diff")) {
    std::ostringstream os;
    os << "max rel diff " << std::setprecision(2) << std::scientific << c["max_rel_diff"].get<double>();
    return os.str();
  }
  if (c.contains("tokens_equal"))
    return std::to_string(c["tokens_equal"].get<int64_t>()) + "/" + std::to_string(c["tokens_total"].get<int64_t>()) +
           " tokens equal";
  return c.dump();
}

std::string spread(const Result& r) {
  if (r.round_medians.empty()) return "";
  auto [lo, hi] = std::minmax_element(r.round_medians.begin(), r.round_medians.end());
  return r.round_medians.size() == 1 ? "-" : num(*lo) + "-" + num(*hi);
}

std::string status_text(const Result& r) {
  if (r.status == "ok") return num(median(r.times));
  std::string m = r.message.size() > 90 ? r.message.substr(0, 87) + "..." : r.message;
  for (auto& ch : m)
    if (ch == '|' || ch == '\n') ch = ' ';
  return r.status + (m.empty() ? "" : " (" + m + ")");
}

std::string metric_text(const json& m) {
  if (m.is_null() || !m.contains("test_accuracy")) return "";
  return "acc " + num(100 * m["test_accuracy"].get<double>()) + "%";
}

class Runner {
 public:
  Runner(Options o, json manifest) : o_(std::move(o)), manifest_(std::move(manifest)) {}

  int run() {
    setup_context();
    std::vector<json> workloads = selected();
    if (workloads.empty()) raise<ValueError>("bench", "no workload matches --filter");
    start_systems(workloads);
    std::vector<json> records;
    std::map<std::string, std::vector<std::pair<json, std::vector<Result>>>> by_group;
    std::vector<std::string> group_order;
    for (size_t i = 0; i < workloads.size(); ++i) {
      const json& w = workloads[i];
      std::cerr << "[" << i + 1 << "/" << workloads.size() << "] " << w["id"].get<std::string>() << std::flush;
      auto results = run_workload(w);
      std::cerr << "\n";
      for (const auto& r : results) records.push_back(record(w, r));
      std::string g = w["group"];
      if (!by_group.count(g)) group_order.push_back(g);
      by_group[g].push_back({w, std::move(results)});
    }
    std::string md = report(group_order, by_group);
    std::cout << md << std::flush;
    if (!o_.markdown_path.empty()) std::ofstream(o_.markdown_path) << md;
    if (!o_.json_path.empty()) {
      std::ofstream f(o_.json_path);
      if (!f) raise<IOError>("bench", "cannot write " + o_.json_path);
      f << json(records).dump(1) << "\n";
      std::cerr << "records: " << o_.json_path << "\n";
    }
    return 0;
  }

 private:
  void setup_context() {
    ctx_.root = TESSERA_SOURCE_DIR;
    ctx_.exe_dir = exe_dir();
    ctx_.python = o_.python;
    ctx_.threads = o_.threads;
    if (o_.workdir.empty()) {
      std::string tmpl = (fs::temp_directory_path() / "tessera-bench-XXXXXX").string();
      if (!mkdtemp(tmpl.data())) raise<IOError>("bench", "cannot create a work directory in /tmp");
      ctx_.workdir = tmpl;
      owned_workdir_ = true;
    } else {
      fs::create_directories(o_.workdir);
      ctx_.workdir = o_.workdir;
    }
  }

  std::vector<json> selected() const {
    std::vector<json> out;
    for (const auto& w : manifest_["workloads"]) {
      if (o_.quick && !w.value("quick", true)) continue;
      bool match = o_.filter.empty();
      for (const auto& f : o_.filter)
        if (w["id"].get<std::string>().find(f) != std::string::npos || w["group"].get<std::string>() == f ||
            w["kind"].get<std::string>() == f)
          match = true;
      if (match) out.push_back(w);
    }
    return out;
  }

  // Starts (hello) every system some selected workload uses, in the table's order.
  void start_systems(const std::vector<json>& workloads) {
    std::vector<std::string> used;
    for (const auto& name : bench::known_systems()) {
      bool wanted = o_.systems.empty() || std::count(o_.systems.begin(), o_.systems.end(), name) || name == "tessera";
      bool needed = false;
      for (const auto& w : workloads)
        for (const auto& s : w["systems"]) needed |= s == name;
      if (wanted && needed) used.push_back(name);
    }
    bench::make_systems(o_.systems, ctx_);  // validates --systems: throws naming the known systems
    for (auto& sys : bench::make_systems(used, ctx_)) {
      std::cerr << "starting " << sys->name() << "... " << std::flush;
      json h = sys->hello();
      if (h.value("ok", false)) {
        std::cerr << h.value("version", "") << "\n";
        config_.push_back({sys->name(), h.value("version", "") + ": " + h.value("config", "")});
      } else {
        const bool missing = h.contains("missing");
        std::string why = missing ? h["missing"].get<std::string>() : h.value("error", "failed");
        std::cerr << (missing ? "missing: " : "failed: ") << why << "\n";
        down_[sys->name()] = {missing ? "missing" : "error", why};
        config_.push_back({sys->name(), (missing ? "MISSING: " : "FAILED: ") + why});
      }
      systems_[sys->name()] = std::move(sys);
    }
  }

  std::vector<Result> run_workload(const json& w) {
    const std::string id = w["id"];
    const bool epoch = w["kind"] == "epoch";
    const double scale = unit_scale(w["unit"]);
    std::vector<Result> results;
    std::vector<bench::System*> active;
    json reference = nullptr;
    for (const auto& sname : w["systems"]) {
      std::string name = sname;
      if (!systems_.count(name)) continue;  // not selected with --systems
      Result r;
      r.system = name;
      if (down_.count(name)) {
        std::tie(r.status, r.message) = down_[name];
        results.push_back(r);
        continue;
      }
      if (o_.quick && w.contains("quick_skip") && std::count(w["quick_skip"].begin(), w["quick_skip"].end(), name)) {
        r.status = "skipped";
        r.message = "in --quick (compilation takes long); runs in the full suite";
        results.push_back(r);
        continue;
      }
      json req = {{"cmd", "setup"},         {"id", id},
                  {"kind", w["kind"]},      {"params", w.value("params", json::object())},
                  {"reference", reference}, {"warmup", epoch ? 0 : (o_.quick ? 1 : 2)}};
      json resp = systems_[name]->request(req, 1800);
      if (resp.value("ok", false)) {
        r.first_s = resp.value("first_s", -1.0);
        if (resp.contains("check")) r.check = resp["check"];
        if (resp.contains("note")) r.message = resp["note"];
        if (resp.contains("reference") && reference.is_null()) reference = resp["reference"];
        active.push_back(systems_[name].get());
      } else {
        r.status = resp.contains("unsupported") ? "unsupported" : "error";
        r.message = resp.contains("unsupported") ? resp["unsupported"].get<std::string>() : resp.value("error", "");
        mark_dead_if_gone(name, r.message);
      }
      results.push_back(r);
    }
    auto result_of = [&](const std::string& name) -> Result& {
      for (auto& r : results)
        if (r.system == name) return r;
      raise<ValueError>("bench", "internal: no result for " + name);
    };
    // Calls per round: about o_.seconds of work for each system (one calibration call each).
    std::map<std::string, int> reps;
    for (auto* s : active) {
      reps[s->name()] = 1;
      if (epoch) continue;
      json resp = s->request({{"cmd", "run"}, {"id", id}, {"reps", 1}}, 1800);
      if (!resp.value("ok", false)) continue;
      // Times are per operation; a call of a kind with params.inner (eager_add) is `inner` operations.
      double t = resp["times"][0].get<double>() * w.value("params", json::object()).value("inner", 1.0);
      reps[s->name()] = static_cast<int>(std::clamp(std::round(o_.seconds / std::max(t, 1e-9)), 1.0, 2000.0));
    }
    int rounds = w.value("rounds", o_.rounds);
    for (int round = 0; round < rounds; ++round) {
      // A B C, then C B A, ...: every system runs early and late in a round equally often.
      std::vector<bench::System*> order = active;
      if (round % 2) std::reverse(order.begin(), order.end());
      for (auto* s : order) {
        Result& r = result_of(s->name());
        if (r.status != "ok") continue;
        int n = reps[s->name()];
        double est = r.times.empty() ? 60 : r.times.back() / scale;
        json resp = s->request({{"cmd", "run"}, {"id", id}, {"reps", n}}, std::max(600.0, 20 * est * n));
        if (!resp.value("ok", false)) {
          r.status = "error";
          r.message = resp.value("error", "run failed");
          mark_dead_if_gone(s->name(), r.message);
          continue;
        }
        std::vector<double> ts;
        for (const auto& t : resp["times"]) ts.push_back(t.get<double>() * scale);
        r.round_medians.push_back(median(ts));
        r.times.insert(r.times.end(), ts.begin(), ts.end());
        r.reps.push_back(n);
        if (resp.contains("metric")) r.metric = resp["metric"];
      }
    }
    for (auto* s : active) s->request({{"cmd", "release"}, {"id", id}}, 60);
    for (const auto& r : results) {
      std::cerr << " | " << r.system << " ";
      if (r.status == "ok" && !r.times.empty())
        std::cerr << num(median(r.times)) << " " << w["unit"].get<std::string>();
      else
        std::cerr << r.status;
    }
    return results;
  }

  void mark_dead_if_gone(const std::string& name, const std::string& msg) {
    if (msg.find("peer exited") != std::string::npos || msg.find("not running") != std::string::npos ||
        msg.find("killed") != std::string::npos)
      down_[name] = {"error", "the peer process ended earlier: " + msg};
  }

  std::string report(const std::vector<std::string>& groups,
                     std::map<std::string, std::vector<std::pair<json, std::vector<Result>>>>& by_group) {
    std::ostringstream md;
    md << "## Tessera benchmark (" << (o_.quick ? "--quick" : "full") << ")\n\n" << machine() << "\n";
    md << "Threads: " << o_.threads << " for every system. Per workload: setup and the first call (compilation) "
       << "excluded, then " << o_.rounds << " rounds of ~" << num(o_.seconds)
       << " s per system, systems interleaved; median of all timed calls; spread = min-max of the round medians. "
       << "peer/Tessera > 1: Tessera is faster.\n\nSystems:\n";
    for (const auto& [name, cfg] : config_) md << "- " << name << ": " << cfg << "\n";
    md << summary(groups, by_group);
    for (const auto& g : groups) {
      md << "\n### " << g
         << "\n\n| workload | unit | Tessera | spread | peer | peer median | spread | peer/Tessera | notes |\n"
         << "|---|---|---|---|---|---|---|---|---|\n";
      for (auto& [w, results] : by_group[g]) {
        const Result* t = nullptr;
        for (const auto& r : results)
          if (r.system == "tessera") t = &r;
        bool tok = t && t->status == "ok" && !t->times.empty();
        double tmed = tok ? median(t->times) : 0;
        std::string tnotes = tok ? rate(w, tmed / unit_scale(w["unit"])) : "";
        if (tok && !t->metric.is_null()) tnotes = metric_text(t->metric);
        std::string tcol = t ? status_text(*t) : "-";
        bool any_peer = false;
        for (const auto& r : results) {
          if (r.system == "tessera") continue;
          any_peer = true;
          bool pok = r.status == "ok" && !r.times.empty();
          double pmed = pok ? median(r.times) : 0;
          std::string ratio = tok && pok ? num(pmed / tmed) : "";
          std::vector<std::string> notes;
          if (!tnotes.empty()) notes.push_back("Tessera " + tnotes);
          if (pok && !r.metric.is_null()) notes.push_back(r.system + " " + metric_text(r.metric));
          if (pok && w.contains("work") && r.metric.is_null())
            notes.push_back(r.system + " " + rate(w, pmed / unit_scale(w["unit"])));
          if (r.first_s >= 0 && r.first_s > 1.0) notes.push_back("first call " + num(r.first_s) + " s");
          if (!r.check.is_null()) notes.push_back(check_text(r.check));
          if (pok && !r.message.empty()) notes.push_back(r.message);
          std::string n;
          for (const auto& s : notes) n += (n.empty() ? "" : "; ") + s;
          md << "| " << w["id"].get<std::string>() << " | " << w["unit"].get<std::string>() << " | " << tcol << " | "
             << (t ? spread(*t) : "") << " | " << r.system << " | " << status_text(r) << " | " << spread(r) << " | "
             << ratio << " | " << n << " |\n";
        }
        if (!any_peer)
          md << "| " << w["id"].get<std::string>() << " | " << w["unit"].get<std::string>() << " | " << tcol << " | "
             << (t ? spread(*t) : "") << " | - | | | | " << tnotes << " |\n";
      }
    }
    return md.str();
  }

  // One row per workload, one column per system: median (peer/Tessera).
  std::string summary(const std::vector<std::string>& groups,
                      std::map<std::string, std::vector<std::pair<json, std::vector<Result>>>>& by_group) {
    std::ostringstream md;
    md << "\n### Summary: median (peer/Tessera)\n\n| workload | unit |";
    for (const auto& [name, cfg] : config_) md << " " << name << " |";
    md << "\n|---|---|";
    for (size_t i = 0; i < config_.size(); ++i) md << "---|";
    md << "\n";
    for (const auto& g : groups)
      for (auto& [w, results] : by_group[g]) {
        double tmed = 0;
        for (const auto& r : results)
          if (r.system == "tessera" && r.status == "ok" && !r.times.empty()) tmed = median(r.times);
        md << "| " << w["id"].get<std::string>() << " | " << w["unit"].get<std::string>() << " |";
        for (const auto& [name, cfg] : config_) {
          std::string cell;
          for (const auto& r : results) {
            if (r.system != name) continue;
            if (r.status != "ok" || r.times.empty()) {
              cell = r.status;
            } else {
              double m = median(r.times);
              cell = num(m);
              if (name != "tessera" && tmed > 0) cell += " (" + num(m / tmed) + ")";
              if (!r.metric.is_null()) cell += ", " + metric_text(r.metric);
            }
          }
          md << " " << cell << " |";
        }
        md << "\n";
      }
    return md.str();
  }

  static std::string machine() {
    std::ifstream f("/proc/cpuinfo");
    std::string line, model = "unknown CPU";
    while (std::getline(f, line))
      if (line.rfind("model name", 0) == 0) {
        model = line.substr(line.find(':') + 2);
        break;
      }
    std::time_t now = std::time(nullptr);
    char date[32];
    std::strftime(date, sizeof date, "%Y-%m-%d %H:%M", std::localtime(&now));
    return "Machine: " + model + ", " + std::to_string(sysconf(_SC_NPROCESSORS_ONLN)) + " logical CPUs; " + date + "\n";
  }

  Options o_;
  json manifest_;
  bench::BenchContext ctx_;
  bool owned_workdir_ = false;
  std::map<std::string, std::unique_ptr<bench::System>> systems_;
  std::map<std::string, std::pair<std::string, std::string>> down_;  // name -> (status, message)
  std::vector<std::pair<std::string, std::string>> config_;

 public:
  ~Runner() {
    systems_.clear();  // peers exit before their work directory goes
    std::error_code ec;
    if (owned_workdir_) fs::remove_all(ctx_.workdir, ec);
  }
};

}  // namespace

int bench_command(int argc, char** argv) {
  Options o = parse(argc, argv);
  if (o.help) {
    std::cout << "usage: tessera bench [options]\n" << bench_usage();
    return 0;
  }
  json manifest = load_manifest(o.manifest);
  if (o.list) {
    for (const auto& w : manifest["workloads"]) {
      std::cout << std::left << std::setw(26) << w["id"].get<std::string>() << " " << std::setw(11)
                << w["group"].get<std::string>() << (w.value("quick", true) ? "       " : " (full)") << " ";
      for (const auto& s : w["systems"]) std::cout << " " << s.get<std::string>();
      std::cout << "\n";
    }
    return 0;
  }
  Runner r(std::move(o), std::move(manifest));
  return r.run();
}

const char* bench_usage() {
  return "  bench     the benchmark suite side by side with PyTorch, JAX, ONNX Runtime (docs/benchmarks.md):\n"
         "            --quick (reduced, < 3 min) --json FILE --markdown FILE --filter a,b (id substring, group or\n"
         "            kind) --systems tessera,pytorch,... --threads N (2) --rounds N --seconds S (per round)\n"
         "            --list; peers come from .venv-bench (scripts/setup-bench)\n";
}

}  // namespace tessera::cli
