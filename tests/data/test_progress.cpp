// ProgressBar output formats (with a fake clock), progress(loader), MetricsLogger files.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "tessera/data/progress.h"
#include "tessera/ops.h"

namespace ts = tessera;
namespace td = tessera::data;
namespace fs = std::filesystem;

namespace {

std::vector<std::string> lines_of(const std::string& s) {
  std::vector<std::string> out;
  std::istringstream in(s);
  for (std::string l; std::getline(in, l);) out.push_back(l);
  return out;
}

std::string read_all(const std::string& p) {
  std::ifstream f(p);
  return {std::istreambuf_iterator<char>(f), {}};
}

struct TempPath {
  std::string path;
  explicit TempPath(const std::string& suffix) {
    std::string tmpl = (fs::temp_directory_path() / ("tessera_metrics_XXXXXX" + suffix)).string();
    int fd = mkstemps(tmpl.data(), static_cast<int>(suffix.size()));
    close(fd);
    fs::remove(tmpl);
    path = tmpl;
  }
  ~TempPath() { std::remove(path.c_str()); }
};

}  // namespace

TEST(ProgressBar, PlainModeLogsEveryTenthAndAFinalLine) {
  std::ostringstream out;
  double t = 100.0;
  {
    td::ProgressBar bar("epoch 1/5", 20, {.mode = td::ProgressMode::Plain, .out = &out, .clock = [&] { return t; }});
    for (int i = 0; i < 20; ++i) {
      t += 0.5;  // 0.5 s per step of 64 samples: 128 samples/s
      bar.update(64, {{"loss", 1.0 / (i + 1)}, {"acc", 0.5 + i * 0.01}});
    }
    bar.finish();
    bar.finish();  // idempotent
  }
  auto lines = lines_of(out.str());
  ASSERT_EQ(lines.size(), 10u) << out.str();  // steps 2,4,...,18 and the final line
  EXPECT_EQ(lines[0], "epoch 1/5 2/20 (10%) loss 0.5 acc 51.0% 128 samples/s elapsed 0:01 ETA 0:09");
  EXPECT_EQ(lines[4], "epoch 1/5 10/20 (50%) loss 0.1 acc 59.0% 128 samples/s elapsed 0:05 ETA 0:05");
  EXPECT_EQ(lines[9], "epoch 1/5 20/20 (100%) loss 0.05 acc 69.0% 128 samples/s elapsed 0:10");
}

TEST(ProgressBar, BarModeRedrawsOneLineAtMostTenTimesASecond) {
  std::ostringstream out;
  double t = 0;
  td::ProgressBar bar("train", 100,
                      {.mode = td::ProgressMode::Bar, .out = &out, .width = 10, .clock = [&] { return t; }});
  for (int i = 0; i < 100; ++i) {
    t += 0.01;  // 100 steps/s: only every 10th update redraws
    bar.update(8);
  }
  bar.finish();
  const std::string s = out.str();
  EXPECT_EQ(std::count(s.begin(), s.end(), '\n'), 1);  // one line, ended by finish()
  const auto draws = std::count(s.begin(), s.end(), '\r');
  EXPECT_GE(draws, 9);
  EXPECT_LE(draws, 12);
  EXPECT_NE(s.find("\rtrain [..........] 1/100 800 samples/s ETA 0:01\x1b[K"), std::string::npos) << s;
  EXPECT_NE(s.find("\rtrain [##########] 100/100 800 samples/s elapsed 0:01\x1b[K\n"), std::string::npos) << s;
}

TEST(ProgressBar, OffWritesNothingAndMetricsKeepFirstOrder) {
  std::ostringstream out;
  td::ProgressBar bar("x", 3, {.mode = td::ProgressMode::Off, .out = &out});
  bar.update(1, {{"loss", 2.0}});
  bar.set_metrics({{"val_acc", 0.25}, {"loss", 1.5}});
  bar.finish();
  EXPECT_EQ(out.str(), "");
  ASSERT_EQ(bar.metrics().size(), 2u);
  EXPECT_EQ(bar.metrics()[0], (std::pair<std::string, double>{"loss", 1.5}));
  EXPECT_EQ(bar.metrics()[1].first, "val_acc");
}

TEST(ProgressBar, UnknownTotalAndStepsPerSecond) {
  std::ostringstream out;
  double t = 0;
  td::ProgressBar bar("eval", 0, {.mode = td::ProgressMode::Plain, .out = &out, .clock = [&] { return t; }});
  for (int i = 0; i < 5; ++i) {
    t += 0.25;
    bar.update();
  }
  bar.finish();
  EXPECT_EQ(out.str(), "eval 5 4 steps/s elapsed 0:01\n");
}

TEST(ProgressBar, PlainModeTimeInterval) {
  std::ostringstream out;
  double t = 0;
  td::ProgressBar bar("e", 1000,
                      {.mode = td::ProgressMode::Plain, .out = &out, .log_seconds = 30, .clock = [&] { return t; }});
  for (int i = 0; i < 10; ++i) {
    t += 10;  // 10 s per step: a line every 3 steps from the time rule (10% = 100 steps never comes)
    bar.update();
  }
  EXPECT_EQ(lines_of(out.str()).size(), 3u) << out.str();
  EXPECT_EQ(lines_of(out.str())[0], "e 3/1000 (0%) 0.1 steps/s elapsed 0:30 ETA 2:46:10");
}

TEST(Progress, LoaderAdapterCountsBatchesAndSamples) {
  auto ds = std::make_shared<td::TensorDataset>(ts::zeros({10, 2}), ts::zeros({10}));
  td::DataLoader loader(ds, {.batch_size = 4, .num_workers = 0});
  std::ostringstream out;
  double t = 0;
  int n = 0;
  {
    auto p =
        td::progress(loader, "epoch 1/1",
                     {.mode = td::ProgressMode::Plain, .out = &out, .log_fraction = 0.5, .clock = [&] { return t; }});
    for (auto& [x, y] : p) {
      t += 1;
      p.set_metrics({{"loss", 0.25 * ++n}});
      EXPECT_EQ(x.shape(), ts::Shape({x.size(0), 2}));
    }
    EXPECT_EQ(p.bar().step(), 3);
  }
  EXPECT_EQ(n, 3);
  auto lines = lines_of(out.str());
  ASSERT_EQ(lines.size(), 2u) << out.str();
  EXPECT_EQ(lines[0], "epoch 1/1 2/3 (66%) loss 0.5 4 samples/s elapsed 0:02 ETA 0:01");
  EXPECT_EQ(lines[1], "epoch 1/1 3/3 (100%) loss 0.75 3 samples/s elapsed 0:03");  // 10 samples / 3 s
  EXPECT_EQ(loader.epoch(), 1);
}

TEST(MetricsLogger, CsvHeaderThenOneLinePerRecord) {
  TempPath p(".csv");
  {
    td::MetricsLogger log(p.path);
    log.log({{"epoch", 1}, {"loss", 0.5}, {"acc", 0.8125}});
    EXPECT_EQ(read_all(p.path), "epoch,loss,acc\n1,0.5,0.8125\n");  // flushed per line
    log.log({{"epoch", 2}, {"acc", 0.1}});                          // missing loss: empty cell
    EXPECT_THROW(log.log({{"lr", 1e-3}}), ts::ValueError);
  }
  {
    td::MetricsLogger again(p.path);  // appending keeps the existing header
    again.log({{"acc", 1}, {"epoch", 3}, {"loss", 1e-7}});
  }
  EXPECT_EQ(read_all(p.path), "epoch,loss,acc\n1,0.5,0.8125\n2,,0.1\n3,1e-07,1\n");
}

TEST(MetricsLogger, DeclaredCsvColumnsHoldRowsOfDifferentKinds) {
  // Step rows and epoch rows in one file (what `tessera train --metrics F.csv` writes).
  TempPath p(".csv");
  td::MetricsLogger log(p.path, {"step", "loss", "epoch", "test_acc"});
  log.log({{"step", 1}, {"loss", 2.5}});
  log.log({{"epoch", 1}, {"test_acc", 0.75}});
  EXPECT_THROW(log.log({{"lr", 1e-3}}), ts::ValueError);
  EXPECT_EQ(read_all(p.path), "step,loss,epoch,test_acc\n1,2.5,,\n,,1,0.75\n");
}

TEST(MetricsLogger, JsonlOneObjectPerLine) {
  TempPath p(".jsonl");
  td::MetricsLogger log(p.path);
  log.log({{"epoch", 1}, {"loss", 0.25}});
  log.log({{"step", 100}, {"bad\"key", std::nan("")}});
  EXPECT_EQ(read_all(p.path), "{\"epoch\":1,\"loss\":0.25}\n{\"step\":100,\"bad\\\"key\":null}\n");
  EXPECT_THROW(td::MetricsLogger("metrics.txt"), ts::ValueError);
  EXPECT_THROW(td::MetricsLogger("/nonexistent/dir/m.csv"), ts::IOError);
}

TEST(ProgressBar, AutoModeFollowsTesseraProgressVariable) {
  std::ostringstream out;
  const char* old = std::getenv("TESSERA_PROGRESS");
  std::string saved = old ? old : "";
  setenv("TESSERA_PROGRESS", "off", 1);
  EXPECT_EQ(td::ProgressBar("a", 1, {.out = &out}).mode(), td::ProgressMode::Off);
  setenv("TESSERA_PROGRESS", "bar", 1);
  EXPECT_EQ(td::ProgressBar("a", 1, {.out = &out}).mode(), td::ProgressMode::Bar);
  // An explicit mode wins over the variable.
  EXPECT_EQ(td::ProgressBar("a", 1, {.mode = td::ProgressMode::Plain, .out = &out}).mode(), td::ProgressMode::Plain);
  unsetenv("TESSERA_PROGRESS");
  // A stream that is not stderr cannot be a terminal: plain lines.
  EXPECT_EQ(td::ProgressBar("a", 1, {.out = &out}).mode(), td::ProgressMode::Plain);
  if (old) setenv("TESSERA_PROGRESS", saved.c_str(), 1);
}
