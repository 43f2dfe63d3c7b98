#include "tessera/data/progress.h"

#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iostream>

namespace tessera::data {

namespace {

bool is_accuracy(const std::string& name) {
  auto ends = [&](std::string_view s) { return name.size() >= s.size() && name.ends_with(s); };
  return name == "acc" || name == "accuracy" || ends("_acc") || ends("_accuracy");
}

std::string fmt(const char* f, double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, f, v);
  return buf;
}

std::string duration(double s) {
  if (!(s >= 0) || !std::isfinite(s)) return "?";
  auto t = static_cast<int64_t>(s + 0.5);
  char buf[32];
  if (t >= 3600)
    std::snprintf(buf, sizeof buf, "%lld:%02lld:%02lld", static_cast<long long>(t / 3600),
                  static_cast<long long>(t / 60 % 60), static_cast<long long>(t % 60));
  else
    std::snprintf(buf, sizeof buf, "%lld:%02lld", static_cast<long long>(t / 60), static_cast<long long>(t % 60));
  return buf;
}

ProgressMode resolve_mode(const ProgressOptions& o) {
  if (o.mode != ProgressMode::Auto) return o.mode;
  if (const char* env = std::getenv("TESSERA_PROGRESS")) {  // the one place the UX reads the environment
    std::string_view v(env);
    if (v == "bar") return ProgressMode::Bar;
    if (v == "plain") return ProgressMode::Plain;
    if (v == "off") return ProgressMode::Off;
  }
  return (o.out == nullptr && isatty(STDERR_FILENO)) ? ProgressMode::Bar : ProgressMode::Plain;
}

// Shortest text that reads back as the same double.
std::string number(double v) {
  char buf[64];
  auto r = std::to_chars(buf, buf + sizeof buf, v);
  return std::string(buf, r.ptr);
}

std::string json_string(const std::string& s) {
  std::string o = "\"";
  for (unsigned char c : s) {
    if (c == '"' || c == '\\') {
      o += '\\';
      o += static_cast<char>(c);
    } else if (c < 0x20) {
      char b[8];
      std::snprintf(b, sizeof b, "\\u%04x", c);
      o += b;
    } else {
      o += static_cast<char>(c);
    }
  }
  return o + "\"";
}

std::string csv_field(const std::string& s) {
  if (s.find_first_of(",\"\n\r") == std::string::npos) return s;
  std::string o = "\"";
  for (char c : s) o += c == '"' ? std::string("\"\"") : std::string(1, c);
  return o + "\"";
}

}  // namespace

ProgressBar::ProgressBar(std::string desc, int64_t total_steps, ProgressOptions options)
    : desc_(std::move(desc)), total_(total_steps), opt_(std::move(options)) {
  mode_ = resolve_mode(opt_);
  out_ = opt_.out ? opt_.out : &std::cerr;
  if (!opt_.clock) {
    opt_.clock = [] {
      return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
    };
  }
  log_every_ = total_ > 0 ? std::max<int64_t>(1, static_cast<int64_t>(std::ceil(opt_.log_fraction * total_))) : 0;
  next_log_ = log_every_;
  t0_ = now();
  last_log_ = t0_;
}

ProgressBar::~ProgressBar() {
  try {
    finish();
  } catch (...) {  // never throw from a destructor (a closed stream, ...)
  }
}

double ProgressBar::now() const { return opt_.clock(); }

void ProgressBar::start_at(int64_t step) {
  step_ = start_step_ = std::max<int64_t>(0, step);
  if (log_every_ > 0) next_log_ = (step_ / log_every_ + 1) * log_every_;
}

void ProgressBar::set_metrics(const Metrics& metrics) {
  for (const auto& [k, v] : metrics) {
    auto it = std::find_if(metrics_.begin(), metrics_.end(), [&](const auto& p) { return p.first == k; });
    if (it != metrics_.end())
      it->second = v;
    else
      metrics_.emplace_back(k, v);
  }
}

void ProgressBar::update(int64_t samples, const Metrics& metrics) {
  if (finished_) return;
  ++step_;
  samples_ += samples;
  set_metrics(metrics);
  if (mode_ == ProgressMode::Off) return;
  const double t = now();
  if (mode_ == ProgressMode::Bar) {
    if (t - last_draw_ >= opt_.redraw_interval) {
      last_draw_ = t;
      emit(false);
    }
    return;
  }
  if (total_ > 0 && step_ >= total_) return;  // finish() writes the last line
  bool due = log_every_ > 0 && step_ >= next_log_;
  if (opt_.log_seconds > 0 && t - last_log_ >= opt_.log_seconds) due = true;
  if (due) {
    if (log_every_ > 0) next_log_ = (step_ / log_every_ + 1) * log_every_;
    last_log_ = t;
    emit(false);
  }
}

void ProgressBar::finish() {
  if (finished_) return;
  finished_ = true;
  if (mode_ != ProgressMode::Off) emit(true);
}

void ProgressBar::emit(bool final) {
  std::ostream& o = *out_;
  if (mode_ == ProgressMode::Bar)
    o << '\r' << line(final) << "\x1b[K" << (final ? "\n" : "");
  else
    o << line(final) << '\n';
  o.flush();
}

std::string ProgressBar::line(bool final) const {
  const double elapsed = now() - t0_;
  const int64_t done = step_ - start_step_;
  std::string s = desc_;
  auto add = [&](const std::string& part) {
    if (!s.empty()) s += ' ';
    s += part;
  };
  const bool bar = mode_ == ProgressMode::Bar;
  if (bar && total_ > 0) {
    const int w = std::max(1, opt_.width);
    const auto filled = static_cast<int>(std::min<int64_t>(w, step_ * w / total_));
    add("[" + std::string(static_cast<size_t>(filled), '#') + std::string(static_cast<size_t>(w - filled), '.') + "]");
  }
  add(std::to_string(step_) + (total_ > 0 ? "/" + std::to_string(total_) : ""));
  if (!bar && total_ > 0) s += " (" + std::to_string(std::min<int64_t>(100, step_ * 100 / total_)) + "%)";
  for (const auto& [k, v] : metrics_) add(k + " " + (is_accuracy(k) ? fmt("%.1f%%", v * 100.0) : fmt("%.4g", v)));
  if (elapsed > 0 && done > 0) {
    if (samples_ > 0)
      add(fmt("%.0f", static_cast<double>(samples_) / elapsed) + " samples/s");
    else
      add(fmt("%.3g", static_cast<double>(done) / elapsed) + " steps/s");
  }
  if (!bar || final) add("elapsed " + duration(elapsed));
  if (!final && total_ > 0 && done > 0 && elapsed > 0)
    add("ETA " + duration(elapsed / static_cast<double>(done) * static_cast<double>(total_ - step_)));
  return s;
}

// ---- progress(loader) ----

ProgressRange::ProgressRange(DataLoader& loader, std::string desc, ProgressOptions options)
    : loader_(loader), bar_(std::move(desc), loader.num_batches(), std::move(options)) {
  bar_.start_at(loader.position().batch);
}

ProgressRange::Iterator::Iterator(DataLoader::Iterator it, ProgressBar* bar) : it_(std::move(it)), bar_(bar) {
  if (it_.at_end()) bar_->finish();
}

ProgressRange::Iterator ProgressRange::begin() { return Iterator(loader_.begin(), &bar_); }

ProgressRange::Iterator& ProgressRange::Iterator::operator++() {
  const Tensor& x = it_->inputs;
  bar_->update(x.defined() && x.ndim() > 0 ? x.size(0) : 0);
  ++it_;
  if (it_.at_end()) bar_->finish();
  return *this;
}

ProgressRange progress(DataLoader& loader, std::string desc, ProgressOptions options) {
  return ProgressRange(loader, std::move(desc), std::move(options));
}

// ---- MetricsLogger ----

MetricsLogger::MetricsLogger(const std::string& path, std::vector<std::string> columns)
    : path_(path), columns_(std::move(columns)) {
  if (path.ends_with(".csv"))
    csv_ = true;
  else if (path.ends_with(".jsonl"))
    csv_ = false;
  else
    raise<ValueError>("MetricsLogger", path + ": unknown format (use a .csv or .jsonl file name)");
  if (csv_) {  // appending to an existing CSV keeps its columns
    std::ifstream in(path);
    std::string first;
    if (in && std::getline(in, first) && !first.empty()) {
      if (!first.empty() && first.back() == '\r') first.pop_back();
      size_t p = 0;
      for (;;) {
        size_t q = first.find(',', p);
        header_.push_back(first.substr(p, q - p));
        if (q == std::string::npos) break;
        p = q + 1;
      }
    }
  }
  f_ = std::fopen(path.c_str(), "a");
  if (!f_) raise<IOError>("MetricsLogger", "cannot open " + path + ": " + std::strerror(errno));
}

MetricsLogger::~MetricsLogger() {
  if (f_) std::fclose(f_);
}

void MetricsLogger::log(const Metrics& record) {
  std::lock_guard lock(mu_);
  std::string out;
  if (csv_) {
    if (header_.empty()) {  // a new file: the declared columns, else the first record's names
      if (columns_.empty())
        for (const auto& [k, v] : record) columns_.push_back(k);
      for (const auto& k : columns_) {
        header_.push_back(k);
        if (!out.empty()) out += ',';
        out += csv_field(k);
      }
      out += '\n';
    }
    std::vector<const double*> row(header_.size(), nullptr);
    for (const auto& [k, v] : record) {
      auto it = std::find(header_.begin(), header_.end(), k);
      if (it == header_.end())
        raise<ValueError>("MetricsLogger", path_ + ": \"" + k + "\" is not a column of this CSV file");
      row[static_cast<size_t>(it - header_.begin())] = &v;
    }
    for (size_t j = 0; j < row.size(); ++j) {
      if (j) out += ',';
      if (row[j]) out += number(*row[j]);
    }
  } else {
    out = "{";
    for (const auto& [k, v] : record) {
      if (out.size() > 1) out += ',';
      out += json_string(k);
      out += ':';
      out += std::isfinite(v) ? number(v) : std::string("null");
    }
    out += '}';
  }
  out += '\n';
  if (std::fwrite(out.data(), 1, out.size(), f_) != out.size() || std::fflush(f_) != 0)
    raise<ValueError>("MetricsLogger", "write to " + path_ + " failed");
}

}  // namespace tessera::data
