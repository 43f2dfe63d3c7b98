// Training progress display and metrics files.
//
//   for (int e = 0; e < 5; ++e) {
//     auto bar = ts::progress(loader, "epoch " + std::to_string(e + 1) + "/5");
//     for (auto& [x, y] : bar) {
//       float loss = step(x, y);
//       bar.set_metrics({{"loss", loss}, {"acc", acc}});
//     }
//   }
//
// On a terminal one line is redrawn in place (at most ~10 times a second):
//   epoch 1/5 [#########.....................] 312/938 loss 0.512 acc 81.2% 4210 samples/s ETA 0:21
// Otherwise (a log file, CI) a plain line every 10% of the steps (and, if asked, every N
// seconds) and a final one:
//   epoch 1/5 312/938 (33%) loss 0.512 acc 81.2% 4210 samples/s elapsed 0:10 ETA 0:21
//   epoch 1/5 938/938 (100%) loss 0.431 acc 84.0% 4198 samples/s elapsed 0:31
// Metrics show in the order first given; values named "acc", "accuracy" or ending in "_acc" are
// fractions shown as percentages, others with 4 significant digits.
#pragma once

#include <cstdint>
#include <cstdio>
#include <functional>
#include <mutex>
#include <ostream>
#include <string>
#include <utility>
#include <vector>

#include "tessera/data/dataloader.h"
#include "tessera/export.h"

namespace tessera::data {

/// Named values in display / column order, e.g. {{"loss", 0.5}, {"acc", 0.81}}.
using Metrics = std::vector<std::pair<std::string, double>>;

enum class ProgressMode {
  Auto,   ///< TESSERA_PROGRESS=bar|plain|off if set, else Bar when the output is a terminal, else Plain
  Bar,    ///< one redrawn line (carriage return + clear to end of line)
  Plain,  ///< log lines
  Off,    ///< nothing
};

struct ProgressOptions {
  ProgressMode mode = ProgressMode::Auto;
  /// Where to write; nullptr = standard error (the only output Auto checks for a terminal:
  /// Auto with another stream means Plain unless TESSERA_PROGRESS says otherwise).
  std::ostream* out = nullptr;
  /// Bar mode: minimum seconds between redraws.
  double redraw_interval = 0.1;
  /// Plain mode: a line each time this fraction of the steps is done...
  double log_fraction = 0.1;
  /// ... and (if > 0) whenever this many seconds passed since the last line.
  double log_seconds = 0;
  /// Bar width in characters.
  int width = 30;
  /// Seconds from an arbitrary origin; default std::chrono::steady_clock (tests inject a fake).
  std::function<double()> clock;
};

class TESSERA_API ProgressBar {
 public:
  /// total_steps <= 0: unknown (no bar, no ETA).
  ProgressBar(std::string desc, int64_t total_steps, ProgressOptions options = {});
  /// Calls finish().
  ~ProgressBar();
  ProgressBar(const ProgressBar&) = delete;
  ProgressBar& operator=(const ProgressBar&) = delete;

  /// Starts counting at `step` (a resumed epoch); call before the first update.
  void start_at(int64_t step);
  /// One step done, covering `samples` examples (for samples/s; 0 = show steps/s); merges `metrics`.
  void update(int64_t samples = 0, const Metrics& metrics = {});
  /// Replaces the values of these metrics (adding new names at the end) without counting a step.
  void set_metrics(const Metrics& metrics);
  /// Draws the final state (newline after a bar, a last plain line); later calls do nothing.
  void finish();

  int64_t step() const { return step_; }
  int64_t total() const { return total_; }
  /// The mode after resolving Auto.
  ProgressMode mode() const { return mode_; }
  const Metrics& metrics() const { return metrics_; }
  /// The text of the line for the current state, as the current mode writes it (without
  /// carriage return or newline); `final` drops the ETA.
  std::string line(bool final = false) const;

 private:
  double now() const;
  void emit(bool final);
  std::string desc_;
  int64_t total_, step_ = 0, start_step_ = 0, samples_ = 0, next_log_ = 0, log_every_ = 1;
  ProgressOptions opt_;
  ProgressMode mode_;
  std::ostream* out_;
  double t0_, last_draw_ = -1e300, last_log_;
  Metrics metrics_;
  bool finished_ = false;
};

/// A DataLoader loop that advances a ProgressBar (total = loader.num_batches(), starting at the
/// loader's position) by one step per batch, with the batch's size (inputs.size(0)) as samples.
/// The bar finishes when the loop ends or the range is destroyed.
class TESSERA_API ProgressRange {
 public:
  ProgressRange(DataLoader& loader, std::string desc, ProgressOptions options = {});
  ProgressBar& bar() { return bar_; }
  void set_metrics(const Metrics& metrics) { bar_.set_metrics(metrics); }

  class TESSERA_API Iterator {
   public:
    Batch& operator*() { return *it_; }
    Batch* operator->() { return &*it_; }
    Iterator& operator++();
    friend bool operator==(const Iterator& i, std::default_sentinel_t) { return i.it_.at_end(); }

   private:
    friend class ProgressRange;
    Iterator(DataLoader::Iterator it, ProgressBar* bar);
    DataLoader::Iterator it_;
    ProgressBar* bar_;
  };
  Iterator begin();
  std::default_sentinel_t end() const { return {}; }

 private:
  DataLoader& loader_;
  ProgressBar bar_;
};

/// for (auto& [x, y] : progress(loader, "epoch 1/5")) ...
TESSERA_API ProgressRange progress(DataLoader& loader, std::string desc, ProgressOptions options = {});

/// Appends one record per log() call to a metrics file, flushed per line. The format follows the
/// extension: ".csv" (header line from `columns`, or when none are given from the first record's
/// names; appending to an existing CSV reuses its header) or ".jsonl" (one JSON object per line; NaN and infinities as
/// null). In CSV every record's names must be among the header's (missing ones are left empty). Throws ValueError for
/// another extension, a file that cannot be opened, or (CSV) a name not in the header. Thread-safe.
class TESSERA_API MetricsLogger {
 public:
  explicit MetricsLogger(const std::string& path, std::vector<std::string> columns = {});
  ~MetricsLogger();
  MetricsLogger(const MetricsLogger&) = delete;
  MetricsLogger& operator=(const MetricsLogger&) = delete;
  void log(const Metrics& record);
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  bool csv_;
  std::FILE* f_ = nullptr;
  std::vector<std::string> columns_;  // declared CSV columns (used when the file is new)
  std::vector<std::string> header_;
  std::mutex mu_;
};

}  // namespace tessera::data

namespace tessera {
using data::progress;  // ts::progress(loader, "epoch 1") as in the API tour
}  // namespace tessera
