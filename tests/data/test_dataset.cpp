// Datasets: TensorDataset / ImageDataset gathering, ByteCorpus windows and splits, CSV parsing.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "tessera/data/csv.h"
#include "tessera/data/dataset.h"
#include "tessera/data/text.h"
#include "tessera/ops.h"

namespace ts = tessera;
namespace td = tessera::data;
namespace fs = std::filesystem;

namespace {
struct TempFile {
  std::string path;
  explicit TempFile(const std::string& content, const std::string& suffix = ".csv") {
    std::string tmpl = (fs::temp_directory_path() / ("tessera_data_XXXXXX" + suffix)).string();
    int fd = mkstemps(tmpl.data(), static_cast<int>(suffix.size()));
    close(fd);
    path = tmpl;
    std::ofstream(path, std::ios::binary) << content;
  }
  ~TempFile() { std::remove(path.c_str()); }
};

template <typename F>
std::string value_error(F&& f) {
  try {
    f();
  } catch (const ts::ValueError& e) {
    return e.what();
  } catch (const std::exception& e) {
    return std::string("wrong exception type: ") + e.what();
  }
  return "no exception";
}
}  // namespace

TEST(TensorDataset, GathersRowsOfAnyDtype) {
  ts::Tensor x = ts::arange(0, 24, 1, ts::DType::Int32).reshape({4, 3, 2});
  ts::Tensor y = ts::tensor<double>({0.5, 1.5, 2.5, 3.5}, {4});
  td::TensorDataset ds(x, y);
  EXPECT_EQ(ds.size(), 4);
  int64_t idx[] = {3, 0, 3};
  auto b = ds.get_batch(idx);
  EXPECT_EQ(b.inputs.shape(), ts::Shape({3, 3, 2}));
  EXPECT_EQ(b.inputs.dtype(), ts::DType::Int32);
  std::vector<int32_t> want;
  for (int r : {3, 0, 3})
    for (int j = 0; j < 6; ++j) want.push_back(r * 6 + j);
  EXPECT_EQ(b.inputs.to_vector<int32_t>(), want);
  EXPECT_EQ(b.targets.to_vector<double>(), (std::vector<double>{3.5, 0.5, 3.5}));
  int64_t bad[] = {4};
  EXPECT_THROW(ds.get_batch(bad), ts::IndexError);
  EXPECT_THROW(td::TensorDataset(x, ts::zeros({3})), ts::ShapeError);
  // Non-contiguous input (a transpose) is made contiguous once.
  td::TensorDataset t2(ts::arange(0, 6, 1, ts::DType::Float32).reshape({2, 3}).transpose(), ts::zeros({3}));
  int64_t one[] = {1};
  EXPECT_EQ(t2.get_batch(one).inputs.to_vector<float>(), (std::vector<float>{1, 4}));
}

TEST(ImageDataset, ScalesUint8ToUnitFloatsAndKeepsInt64Labels) {
  ts::Tensor img = ts::tensor<uint8_t>({0, 255, 51, 1, 2, 3, 4, 5}, {2, 1, 2, 2});
  td::ImageDataset ds(img, ts::tensor<uint8_t>({7, 3}, {2}));
  int64_t idx[] = {0, 1};
  auto b = ds.get_batch(idx);
  EXPECT_EQ(b.inputs.dtype(), ts::DType::Float32);
  EXPECT_EQ(b.inputs.shape(), ts::Shape({2, 1, 2, 2}));
  auto v = b.inputs.to_vector<float>();
  EXPECT_EQ(v[0], 0.0f);
  EXPECT_EQ(v[1], 1.0f);
  EXPECT_EQ(v[2], 0.2f);  // 51 / 255 rounds to the float nearest 0.2
  EXPECT_EQ(b.targets.dtype(), ts::DType::Int64);
  EXPECT_EQ(b.targets.to_vector<int64_t>(), (std::vector<int64_t>{7, 3}));
  EXPECT_THROW(td::ImageDataset(ts::zeros({2, 1, 2, 2}), ts::zeros({2}, ts::DType::Int64)), ts::DTypeError);
  EXPECT_THROW(td::ImageDataset(img, ts::zeros({3}, ts::DType::Int64)), ts::ShapeError);
}

TEST(ByteCorpus, WindowsAreAlignedNextByteTargets) {
  auto c = td::ByteCorpus::from_string("abcdefgh", 3);
  EXPECT_EQ(c->size(), 5);  // 8 - 3
  int64_t idx[] = {0, 4, 2};
  auto b = c->get_batch(idx);
  EXPECT_EQ(b.inputs.shape(), ts::Shape({3, 3}));
  EXPECT_EQ(b.inputs.dtype(), ts::DType::Int64);
  EXPECT_EQ(b.inputs.to_vector<int64_t>(), (std::vector<int64_t>{'a', 'b', 'c', 'e', 'f', 'g', 'c', 'd', 'e'}));
  EXPECT_EQ(b.targets.to_vector<int64_t>(), (std::vector<int64_t>{'b', 'c', 'd', 'f', 'g', 'h', 'd', 'e', 'f'}));
  int64_t bad[] = {5};
  EXPECT_THROW(c->get_batch(bad), ts::IndexError);
  // Bytes >= 128 stay 0..255 (unsigned).
  auto u = td::ByteCorpus::from_string(std::string("\xff\x80z", 3), 1);
  int64_t i0[] = {0};
  EXPECT_EQ(u->get_batch(i0).inputs.to_vector<int64_t>(), (std::vector<int64_t>{255}));
  EXPECT_EQ(u->get_batch(i0).targets.to_vector<int64_t>(), (std::vector<int64_t>{128}));
  // Too short: needs context + 1 bytes.
  std::string e = value_error([] { td::ByteCorpus::from_string("abc", 3); });
  EXPECT_NE(e.find("too short for context 3"), std::string::npos) << e;
  EXPECT_NO_THROW(td::ByteCorpus::from_string("abcd", 3));
  EXPECT_THROW(td::ByteCorpus::from_string("abcd", 0), ts::ValueError);
}

TEST(ByteCorpus, SplitIsContiguousAndSharesBytes) {
  auto c = td::ByteCorpus::from_string("0123456789", 2);
  auto [train, val] = c->split(0.7);
  EXPECT_EQ(train->text(), "0123456");
  EXPECT_EQ(val->text(), "789");
  EXPECT_EQ(val->size(), 1);
  int64_t i0[] = {0};
  EXPECT_EQ(val->get_batch(i0).inputs.to_vector<int64_t>(), (std::vector<int64_t>{'7', '8'}));
  EXPECT_EQ(val->get_batch(i0).targets.to_vector<int64_t>(), (std::vector<int64_t>{'8', '9'}));
  EXPECT_THROW(c->split(0.9), ts::ValueError);  // val would be 1 byte
  EXPECT_THROW(c->split(1.0), ts::ValueError);
}

TEST(ByteCorpus, FilesAreConcatenatedWithNewlines) {
  TempFile a("first", ".txt"), b("second\n", ".txt");
  auto c = td::ByteCorpus::from_files({a.path, b.path}, 4);
  EXPECT_EQ(c->text(), "first\nsecond\n");
  EXPECT_EQ(td::ByteCorpus::from_file(b.path, 2)->text(), "second\n");
  std::string e = value_error([] { td::ByteCorpus::from_file("/nonexistent/corpus.txt", 2); });
  EXPECT_NE(e.find("/nonexistent/corpus.txt"), std::string::npos) << e;
}

TEST(ByteCorpus, FortuneFilesAreTheEnglishRegularFilesSorted) {
  if (!fs::is_directory("/usr/share/games/fortunes")) GTEST_SKIP() << "fortunes package not installed";
  auto files = td::default_text_corpus_files();
  ASSERT_FALSE(files.empty());
  EXPECT_TRUE(std::is_sorted(files.begin(), files.end()));
  for (const auto& f : files) {
    EXPECT_FALSE(fs::is_symlink(f)) << f;
    EXPECT_NE(fs::path(f).extension(), ".dat") << f;
    EXPECT_NE(fs::path(f).extension(), ".u8") << f;
  }
  EXPECT_NE(std::find(files.begin(), files.end(), "/usr/share/games/fortunes/fortunes"), files.end());
  auto c = td::ByteCorpus::fortunes(64);
  EXPECT_GT(c->num_bytes(), 1000000);  // ~2.5 MB of text in Debian 12
  EXPECT_EQ(c->size(), c->num_bytes() - 64);
  std::string e = value_error([] { td::default_text_corpus_files("/nonexistent/fortunes"); });
  EXPECT_NE(e.find("fortunes"), std::string::npos) << e;
}

TEST(Csv, ParsesHeaderQuotesAndLineEnds) {
  TempFile f("a, \"b,x\" ,c\r\n1,2.5,-3e2\r\n\n\"4\", 5 ,nan\n");
  auto t = td::read_csv(f.path);
  EXPECT_EQ(t.columns, (std::vector<std::string>{"a", "b,x", "c"}));
  EXPECT_EQ(t.values.shape(), ts::Shape({2, 3}));
  auto v = t.values.to_vector<float>();
  EXPECT_EQ(v[0], 1.0f);
  EXPECT_EQ(v[1], 2.5f);
  EXPECT_EQ(v[2], -300.0f);
  EXPECT_EQ(v[3], 4.0f);
  EXPECT_EQ(v[4], 5.0f);
  EXPECT_TRUE(std::isnan(v[5]));
  EXPECT_EQ(t.column_index("c"), 2);
  EXPECT_THROW(t.column_index("zz"), ts::ValueError);
}

TEST(Csv, NoHeaderAndOtherDelimiter) {
  auto t = td::parse_csv("1;2\n3;4", {.delimiter = ';', .header = false});
  EXPECT_EQ(t.columns, (std::vector<std::string>{"0", "1"}));
  EXPECT_EQ(t.values.to_vector<float>(), (std::vector<float>{1, 2, 3, 4}));
  auto h = td::parse_csv("x,y\n");  // header only: zero rows
  EXPECT_EQ(h.values.shape(), ts::Shape({0, 2}));
}

TEST(Csv, ErrorsNameFileLineAndColumn) {
  TempFile f("a,b\n1,2\n3,oops\n");
  std::string e = value_error([&] { td::read_csv(f.path); });
  EXPECT_NE(e.find(f.path + ":3"), std::string::npos) << e;
  EXPECT_NE(e.find("column 2 (\"b\")"), std::string::npos) << e;
  EXPECT_NE(e.find("\"oops\" is not a number"), std::string::npos) << e;
  TempFile r("a,b\n1,2\n3\n");
  e = value_error([&] { td::read_csv(r.path); });
  EXPECT_NE(e.find(r.path + ":3: row has 1 fields, expected 2"), std::string::npos) << e;
  e = value_error([] { td::parse_csv("a,b\n1,\n", {}, "mem"); });
  EXPECT_NE(e.find("mem:2: column 2 (\"b\"): empty cell"), std::string::npos) << e;
  e = value_error([] { td::parse_csv("a\n\"1\n", {}, "mem"); });
  EXPECT_NE(e.find("unterminated"), std::string::npos) << e;
  e = value_error([] { td::parse_csv("", {}, "mem"); });
  EXPECT_NE(e.find("empty"), std::string::npos) << e;
  e = value_error([] { td::read_csv("/nonexistent/x.csv"); });
  EXPECT_NE(e.find("/nonexistent/x.csv"), std::string::npos) << e;
  // A quoted field spanning lines: the error after it reports the right physical line.
  e = value_error([] { td::parse_csv("a,b\n\"1\n\",2\n3,x\n", {}, "mem"); });
  EXPECT_NE(e.find("\"1\n\" is not a number"), std::string::npos) << e;
}

TEST(CsvDataset, SplitsTargetColumnByNameOrIndex) {
  TempFile f("x1,label,x2\n1,0,2\n3,2,4\n5,1,6\n");
  td::CsvDataset ds(f.path, "label", {.classes = true});
  EXPECT_EQ(ds.size(), 3);
  EXPECT_EQ(ds.feature_names(), (std::vector<std::string>{"x1", "x2"}));
  int64_t idx[] = {2, 0};
  auto b = ds.get_batch(idx);
  EXPECT_EQ(b.inputs.shape(), ts::Shape({2, 2}));
  EXPECT_EQ(b.inputs.to_vector<float>(), (std::vector<float>{5, 6, 1, 2}));
  EXPECT_EQ(b.targets.dtype(), ts::DType::Int64);
  EXPECT_EQ(b.targets.to_vector<int64_t>(), (std::vector<int64_t>{1, 0}));
  td::CsvDataset reg(f.path, int64_t{-1});  // last column as a float target
  EXPECT_EQ(reg.target_name(), "x2");
  EXPECT_EQ(reg.targets().dtype(), ts::DType::Float32);
  EXPECT_EQ(reg.targets().to_vector<float>(), (std::vector<float>{2, 4, 6}));
  EXPECT_EQ(reg.inputs().to_vector<float>(), (std::vector<float>{1, 0, 3, 2, 5, 1}));
  EXPECT_THROW(td::CsvDataset(f.path, int64_t{3}), ts::IndexError);
  EXPECT_THROW(td::CsvDataset(f.path, "nope"), ts::ValueError);
  TempFile g("x,y\n1,0.5\n");
  EXPECT_THROW(td::CsvDataset(g.path, "y", {.classes = true}), ts::ValueError);  // 0.5 is not a class
}
