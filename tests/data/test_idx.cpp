// IDX reader: round trips (plain and gzip), every malformed variant, and the real Fashion-MNIST files.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "tessera/data/idx.h"
#include "tessera/ops.h"

namespace ts = tessera;
namespace fs = std::filesystem;
using ts::data::read_idx;
using ts::data::write_idx;

namespace {

struct TempDir {
  fs::path path;
  TempDir() {
    std::string tmpl = (fs::temp_directory_path() / "tessera_idx_XXXXXX").string();
    path = mkdtemp(tmpl.data());
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
  std::string file(const std::string& name) const { return (path / name).string(); }
};

void write_bytes(const std::string& p, const std::vector<uint8_t>& b) {
  std::ofstream f(p, std::ios::binary);
  f.write(reinterpret_cast<const char*>(b.data()), static_cast<std::streamsize>(b.size()));
}

std::vector<uint8_t> read_bytes(const std::string& p) {
  std::ifstream f(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(f), {}};
}

// A gzip file holding `data` in one stored (uncompressed) deflate block (RFC 1951/1952), so the
// tests build exact gzip payloads without linking zlib themselves.
std::vector<uint8_t> gzip_stored(const std::vector<uint8_t>& data) {
  uint32_t crc = 0xFFFFFFFFu;
  for (uint8_t b : data) {
    crc ^= b;
    for (int k = 0; k < 8; ++k) crc = (crc >> 1) ^ (0xEDB88320u & (0u - (crc & 1u)));
  }
  crc = ~crc;
  const auto n = static_cast<uint16_t>(data.size());
  const uint8_t header[] = {0x1f,
                            0x8b,
                            8,
                            0,
                            0,
                            0,
                            0,
                            0,
                            0,
                            0xff,
                            1,
                            static_cast<uint8_t>(n & 0xff),
                            static_cast<uint8_t>(n >> 8),
                            static_cast<uint8_t>(~n & 0xff),
                            static_cast<uint8_t>((~n >> 8) & 0xff)};
  std::vector<uint8_t> g(sizeof(header) + data.size() + 8);
  size_t at = 0;
  for (uint8_t b : header) g[at++] = b;
  for (uint8_t b : data) g[at++] = b;
  for (uint32_t v : {crc, static_cast<uint32_t>(data.size())})
    for (int k = 0; k < 4; ++k) g[at++] = static_cast<uint8_t>(v >> (8 * k));
  return g;
}

template <typename E>
std::string error_of(const std::string& path) {
  try {
    read_idx(path);
  } catch (const E& e) {
    return e.what();
  } catch (const std::exception& e) {
    return std::string("wrong exception type: ") + e.what();
  }
  return "no exception";
}

}  // namespace

TEST(Idx, ReadsHandWrittenBigEndianUint8AndInt32) {
  TempDir d;
  // uint8 [2,3]
  write_bytes(d.file("u8"), {0, 0, 0x08, 2, 0, 0, 0, 2, 0, 0, 0, 3, 1, 2, 3, 250, 5, 6});
  ts::Tensor a = read_idx(d.file("u8"));
  EXPECT_EQ(a.dtype(), ts::DType::UInt8);
  EXPECT_EQ(a.shape(), ts::Shape({2, 3}));
  EXPECT_EQ(a.to_vector<uint8_t>(), (std::vector<uint8_t>{1, 2, 3, 250, 5, 6}));
  // int32 [2]: 0x01020304, -2
  write_bytes(d.file("i32"), {0, 0, 0x0C, 1, 0, 0, 0, 2, 1, 2, 3, 4, 0xFF, 0xFF, 0xFF, 0xFE});
  EXPECT_EQ(read_idx(d.file("i32")).to_vector<int32_t>(), (std::vector<int32_t>{0x01020304, -2}));
  // int16 [3] widened to int32: 1, -1, -32768
  write_bytes(d.file("i16"), {0, 0, 0x0B, 1, 0, 0, 0, 3, 0, 1, 0xFF, 0xFF, 0x80, 0x00});
  ts::Tensor s = read_idx(d.file("i16"));
  EXPECT_EQ(s.dtype(), ts::DType::Int32);
  EXPECT_EQ(s.to_vector<int32_t>(), (std::vector<int32_t>{1, -1, -32768}));
  // float32 [1] = 1.5 (0x3FC00000)
  write_bytes(d.file("f32"), {0, 0, 0x0D, 1, 0, 0, 0, 1, 0x3F, 0xC0, 0, 0});
  EXPECT_EQ(read_idx(d.file("f32")).to_vector<float>(), (std::vector<float>{1.5f}));
}

TEST(Idx, RoundTripsEveryTypePlainAndGzipped) {
  TempDir d;
  std::vector<ts::Tensor> ts_ = {
      ts::tensor<uint8_t>({0, 1, 127, 128, 255, 7}, {2, 3}),
      ts::tensor<int8_t>({-128, -1, 0, 1, 127, 3}, {3, 2}),
      ts::tensor<int32_t>({-2147483647 - 1, -1, 0, 1, 2147483647, 42, 7, 8}, {2, 2, 2}),
      ts::tensor<float>({-1.5f, 0.0f, 3.25e-20f, 1e30f}, {4}),
      ts::tensor<double>({-1.5, 1e-300, 3.141592653589793}, {1, 3}),
  };
  for (bool gz : {false, true}) {
    for (size_t i = 0; i < ts_.size(); ++i) {
      std::string p = d.file("t" + std::to_string(i) + (gz ? ".gz" : ""));
      write_idx(p, ts_[i], gz);
      auto bytes = read_bytes(p);
      if (gz) {
        ASSERT_GE(bytes.size(), 2u);
        EXPECT_EQ(bytes[0], 0x1f);  // gzip magic: really compressed
        EXPECT_EQ(bytes[1], 0x8b);
      } else {
        EXPECT_EQ(bytes[0], 0);
        EXPECT_EQ(bytes[3], ts_[i].ndim());
      }
      ts::Tensor r = read_idx(p);
      EXPECT_EQ(r.dtype(), ts_[i].dtype()) << p;
      EXPECT_EQ(r.shape(), ts_[i].shape()) << p;
      EXPECT_EQ(r.to_vector<double>(), ts_[i].to_vector<double>()) << p;
    }
  }
}

TEST(Idx, ZeroSizedDimensionIsAnEmptyTensor) {
  TempDir d;
  write_bytes(d.file("e"), {0, 0, 0x08, 2, 0, 0, 0, 0, 0, 0, 0, 5});
  ts::Tensor t = read_idx(d.file("e"));
  EXPECT_EQ(t.shape(), ts::Shape({0, 5}));
}

TEST(Idx, MalformedFilesRaiseTypedErrors) {
  TempDir d;
  const std::vector<uint8_t> good = {0, 0, 0x08, 1, 0, 0, 0, 3, 1, 2, 3};
  auto variant = [&](const std::string& name, std::vector<uint8_t> b) {
    write_bytes(d.file(name), b);
    return d.file(name);
  };
  std::string e;
  e = error_of<ts::FormatError>(variant("magic", {1, 0, 0x08, 1, 0, 0, 0, 3, 1, 2, 3}));
  EXPECT_NE(e.find("bad magic"), std::string::npos) << e;
  EXPECT_NE(e.find(d.file("magic")), std::string::npos) << e;
  e = error_of<ts::FormatError>(variant("type", {0, 0, 0x0A, 1, 0, 0, 0, 3, 1, 2, 3}));
  EXPECT_NE(e.find("unknown IDX type byte 10"), std::string::npos) << e;
  e = error_of<ts::FormatError>(variant("ndim0", {0, 0, 0x08, 0, 1, 2, 3}));
  EXPECT_NE(e.find("0 dimensions"), std::string::npos) << e;
  e = error_of<ts::FormatError>(variant("ndim9", {0, 0, 0x08, 9, 0, 0, 0, 1}));
  EXPECT_NE(e.find("9 dimensions"), std::string::npos) << e;
  e = error_of<ts::FormatError>(variant("short", {0, 0}));
  EXPECT_NE(e.find("too short"), std::string::npos) << e;
  e = error_of<ts::FormatError>(variant("dims", {0, 0, 0x08, 2, 0, 0, 0, 3, 0, 0}));
  EXPECT_NE(e.find("truncated header"), std::string::npos) << e;
  // 3 values declared, 2 present: names the sizes.
  e = error_of<ts::FormatError>(variant("trunc", {0, 0, 0x08, 1, 0, 0, 0, 3, 1, 2}));
  EXPECT_NE(e.find("truncated"), std::string::npos) << e;
  EXPECT_NE(e.find("need 11 bytes"), std::string::npos) << e;
  EXPECT_NE(e.find("has 10"), std::string::npos) << e;
  // float64 values cut mid-value.
  e = error_of<ts::FormatError>(variant("trunc64", {0, 0, 0x0E, 1, 0, 0, 0, 1, 0x3F, 0xF0, 0}));
  EXPECT_NE(e.find("truncated"), std::string::npos) << e;
  e = error_of<ts::FormatError>(variant("trailing", {0, 0, 0x08, 1, 0, 0, 0, 3, 1, 2, 3, 4}));
  EXPECT_NE(e.find("trailing bytes"), std::string::npos) << e;
  // Huge dims: 8 x 0xFFFFFFFF overflows int64; 2 x 0xFFFFFFFF (~1.8e19 * 1 byte) overflows too;
  // 0xFFFFFFFF x 0xFF of float64 fits int64 but the file is tiny: truncated, no giant allocation.
  std::vector<uint8_t> huge = {0, 0, 0x08, 8};
  for (int i = 0; i < 8; ++i) huge.insert(huge.end(), {0xFF, 0xFF, 0xFF, 0xFF});
  e = error_of<ts::FormatError>(variant("huge8", huge));
  EXPECT_NE(e.find("overflow"), std::string::npos) << e;
  e = error_of<ts::FormatError>(
      variant("huge2", {0, 0, 0x0E, 3, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0, 0, 0, 2}));
  EXPECT_NE(e.find("overflow"), std::string::npos) << e;
  e = error_of<ts::FormatError>(variant("big", {0, 0, 0x0E, 2, 0xFF, 0xFF, 0xFF, 0xFF, 0, 0, 0, 0xFF, 1, 2}));
  EXPECT_NE(e.find("truncated"), std::string::npos) << e;
  // The good file itself reads.
  EXPECT_EQ(read_idx(variant("good", good)).numel(), 3);
  // Missing file: IOError with the path.
  e = error_of<ts::IOError>(d.file("nope"));
  EXPECT_NE(e.find("cannot open"), std::string::npos) << e;
  EXPECT_NE(e.find("nope"), std::string::npos) << e;
}

TEST(Idx, TruncatedAndTrailingGzipFilesRaise) {
  TempDir d;
  ts::Tensor t = ts::arange(0, 4000, 1, ts::DType::Int32).reshape({40, 100});
  write_idx(d.file("ok.gz"), t, true);
  auto bytes = read_bytes(d.file("ok.gz"));
  // Cut the compressed stream in half: a zlib error or a short payload, either way FormatError.
  write_bytes(d.file("cut.gz"), std::vector<uint8_t>(bytes.begin(), bytes.begin() + bytes.size() / 2));
  std::string e = error_of<ts::FormatError>(d.file("cut.gz"));
  EXPECT_NE(e.find("cut.gz"), std::string::npos) << e;
  // A valid gzip stream whose payload has bytes after the declared data.
  write_bytes(d.file("trail.gz"), gzip_stored({0, 0, 0x08, 1, 0, 0, 0, 3, 1, 2, 3, 9, 9, 9, 9}));
  e = error_of<ts::FormatError>(d.file("trail.gz"));
  EXPECT_NE(e.find("trailing"), std::string::npos) << e;
  // The same hand-made gzip without the extra bytes reads: the encoder below is right.
  write_bytes(d.file("exact.gz"), gzip_stored({0, 0, 0x08, 1, 0, 0, 0, 3, 1, 2, 3}));
  EXPECT_EQ(read_idx(d.file("exact.gz")).to_vector<uint8_t>(), (std::vector<uint8_t>{1, 2, 3}));
  // A gzip stream whose payload is truncated IDX data.
  write_bytes(d.file("short.gz"), gzip_stored({0, 0, 0x08, 1, 0, 0, 0, 3, 1, 2}));
  e = error_of<ts::FormatError>(d.file("short.gz"));
  EXPECT_NE(e.find("truncated"), std::string::npos) << e;
}

TEST(FashionMnist, LoadsTheDebianFiles) {
  const std::string dir = ts::data::FashionMnist::default_dir();
  if (!fs::exists(dir + "/t10k-labels-idx1-ubyte.gz")) GTEST_SKIP() << "dataset-fashion-mnist not installed in " << dir;
  auto test = ts::data::FashionMnist::test(dir);
  ASSERT_EQ(test->size(), 10000);
  EXPECT_EQ(test->images().shape(), ts::Shape({10000, 1, 28, 28}));
  EXPECT_EQ(test->images().dtype(), ts::DType::UInt8);
  auto labels = test->labels().to_vector<int64_t>();
  // First test labels, read independently with Python's gzip module: 9 2 1 1 6 1 4 6 5 7.
  EXPECT_EQ(std::vector<int64_t>(labels.begin(), labels.begin() + 10),
            (std::vector<int64_t>{9, 2, 1, 1, 6, 1, 4, 6, 5, 7}));
  std::vector<int64_t> counts(10, 0);
  for (int64_t l : labels) {
    ASSERT_GE(l, 0);
    ASSERT_LE(l, 9);
    ++counts[static_cast<size_t>(l)];
  }
  for (int64_t c : counts) EXPECT_EQ(c, 1000);  // the test split is balanced

  auto train = ts::data::FashionMnist::train(dir);
  ASSERT_EQ(train->size(), 60000);
  EXPECT_EQ(train->labels().to_vector<int64_t>()[0], 9);  // "Ankle boot", checked with Python
  EXPECT_STREQ(ts::data::FashionMnist::class_name(9), "Ankle boot");
  // First training image: pixel sum 76247, max 255 first at flat index 417 (Python reference).
  int64_t idx[] = {0};
  auto batch = train->get_batch(idx);
  EXPECT_EQ(batch.inputs.shape(), ts::Shape({1, 1, 28, 28}));
  EXPECT_EQ(batch.inputs.dtype(), ts::DType::Float32);
  EXPECT_EQ(batch.targets.to_vector<int64_t>(), (std::vector<int64_t>{9}));
  auto px = batch.inputs.to_vector<float>();
  double sum = 0;
  for (float p : px) sum += p;
  EXPECT_NEAR(sum, 76247.0 / 255.0, 1e-3);
  EXPECT_EQ(px[417], 1.0f);
  EXPECT_EQ(std::max_element(px.begin(), px.end()) - px.begin(), 417);
}

TEST(FashionMnist, MissingDirectoryNamesThePathAndThePackage) {
  try {
    ts::data::FashionMnist::test("/nonexistent/fmnist");
    FAIL() << "no exception";
  } catch (const ts::ValueError& e) {
    std::string m = e.what();
    EXPECT_NE(m.find("/nonexistent/fmnist/t10k-images-idx3-ubyte.gz"), std::string::npos) << m;
    EXPECT_NE(m.find("dataset-fashion-mnist"), std::string::npos) << m;
  }
}

TEST(FashionMnist, CountMismatchBetweenImagesAndLabelsIsAnError) {
  TempDir d;
  write_idx(d.file("t10k-images-idx3-ubyte.gz"), ts::zeros({3, 28, 28}, ts::DType::UInt8), true);
  write_idx(d.file("t10k-labels-idx1-ubyte"), ts::zeros({2}, ts::DType::UInt8), false);
  try {
    ts::data::FashionMnist::test(d.path.string());
    FAIL() << "no exception";
  } catch (const ts::FormatError& e) {
    EXPECT_NE(std::string(e.what()).find("3 images but 2 labels"), std::string::npos) << e.what();
  }
  // Matching counts load (plain labels file next to gzipped images), label out of range rejected.
  write_idx(d.file("t10k-labels-idx1-ubyte"), ts::tensor<uint8_t>({1, 2, 3}, {3}), false);
  EXPECT_EQ(ts::data::FashionMnist::test(d.path.string())->size(), 3);
  write_idx(d.file("t10k-labels-idx1-ubyte"), ts::tensor<uint8_t>({1, 12, 3}, {3}), false);
  EXPECT_THROW(ts::data::FashionMnist::test(d.path.string()), ts::FormatError);
}
