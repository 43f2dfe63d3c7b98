// safetensors: round trips, the exact byte layout, rejection of malformed files, crash safety.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>
#include <thread>

#include "tessera/io/safetensors.h"
#include "tessera/ops.h"
#include "tessera/random.h"

namespace ts = tessera;
namespace fs = std::filesystem;
using ts::DType;
using ts::Tensor;
using ts::TensorMap;

namespace {

struct TempDir {
  fs::path dir;
  TempDir() {
    std::string tmpl = (fs::temp_directory_path() / "tessera_st_XXXXXX").string();
    dir = ::mkdtemp(tmpl.data());
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(dir, ec);
  }
  std::string operator/(const std::string& name) const { return (dir / name).string(); }
};

std::string read_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(f), {});
}

void write_file(const std::string& path, const std::string& bytes) {
  std::ofstream f(path, std::ios::binary);
  f.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

std::string le64(uint64_t n) {
  std::string s(8, '\0');
  for (int i = 0; i < 8; ++i) s[i] = static_cast<char>(n >> (8 * i));
  return s;
}

// A file with the given header text and data buffer.
std::string make_file(const std::string& header, const std::string& data) {
  return le64(header.size()) + header + data;
}

// Element-wise equality through float64 (bool/int/float all convert exactly), plus dtype and shape.
void expect_same(const Tensor& a, const Tensor& b) {
  ASSERT_EQ(a.dtype(), b.dtype());
  ASSERT_EQ(a.shape(), b.shape());
  Tensor a64 = ts::cast(a, DType::Float64), b64 = ts::cast(b, DType::Float64);
  EXPECT_EQ(a64.to_vector<double>(), b64.to_vector<double>());
}

TensorMap all_dtypes() {
  ts::Generator gen(7);
  TensorMap m;
  Tensor base = ts::randn({3, 4}, gen, DType::Float64, 0.0, 10.0);
  for (DType d : {DType::Float64, DType::Float32, DType::Float16, DType::BFloat16, DType::Int64, DType::Int32,
                  DType::Int8, DType::UInt8, DType::Bool}) {
    std::string n(ts::dtype_name(d));
    Tensor t = ts::cast(d == DType::UInt8 ? ts::abs(base) : base, d);
    m[n] = t;
    m[n + ".transposed"] = t.transpose(0, 1);  // non-contiguous
    m[n + ".scalar"] = ts::cast(ts::scalar_tensor(-3.0), d == DType::UInt8 ? DType::Int64 : d).to(d);
    m[n + ".empty"] = ts::zeros({0, 5}, d);
  }
  return m;
}

void expect_format_error(const std::string& path, const std::vector<std::string>& needles) {
  try {
    ts::io::load_safetensors(path);
    ADD_FAILURE() << "no error for " << needles.front();
  } catch (const ts::FormatError& e) {
    std::string m = e.what();
    EXPECT_NE(m.find("[load_safetensors]"), std::string::npos) << m;
    EXPECT_NE(m.find(path), std::string::npos) << m;
    for (const auto& n : needles) EXPECT_NE(m.find(n), std::string::npos) << "missing '" << n << "' in: " << m;
  } catch (const std::exception& e) {
    ADD_FAILURE() << "wrong exception type: " << e.what();
  }
}

}  // namespace

TEST(Safetensors, RoundTripsEveryDType) {
  TempDir tmp;
  TensorMap m = all_dtypes();
  std::map<std::string, std::string> md = {{"format", "pt"}, {"note", "quotes \" and \\ and unicode \xc3\xa9"}};
  ts::io::save_safetensors(tmp / "a.safetensors", m, md);
  auto f = ts::io::load_safetensors(tmp / "a.safetensors");
  EXPECT_EQ(f.metadata, md);
  ASSERT_EQ(f.tensors.size(), m.size());
  for (const auto& [name, t] : m) {
    SCOPED_TRACE(name);
    ASSERT_TRUE(f.tensors.count(name));
    expect_same(f.tensors.at(name), t);
  }
  EXPECT_EQ(f.tensors.at("float32.scalar").ndim(), 0);
  EXPECT_EQ(f.tensors.at("float32.scalar").item<float>(), -3.0f);
}

TEST(Safetensors, TensorsOutliveTheFileAndTheResult) {
  TempDir tmp;
  Tensor t = ts::arange(0, 1000, 1, DType::Float32).reshape({10, 100});
  ts::io::save_safetensors(tmp / "b.st", {{"x", t}});
  Tensor x;
  {
    auto f = ts::io::load_safetensors(tmp / "b.st");
    x = f.tensors.at("x");
  }
  fs::remove(tmp / "b.st");
  expect_same(ts::add(x, 1.0f), ts::add(t, 1.0f));
  EXPECT_TRUE(x.is_contiguous());
}

TEST(Safetensors, HeaderMatchesTheSpecByteForByte) {
  TempDir tmp;
  TensorMap m = {{"b", ts::tensor<float>({1.0f, 2.0f, 3.0f}, {3})}, {"a", ts::tensor<int64_t>({7, 8}, {2, 1})}};
  ts::io::save_safetensors(tmp / "c.st", m, {{"k", "v"}});
  std::string bytes = read_file(tmp / "c.st");
  ASSERT_GE(bytes.size(), 8u);
  uint64_t n = 0;
  for (int i = 0; i < 8; ++i) n |= static_cast<uint64_t>(static_cast<unsigned char>(bytes[i])) << (8 * i);
  EXPECT_EQ(n % 8, 0u);  // the data buffer starts 8-byte aligned
  ASSERT_EQ(bytes.size(), 8 + n + 16 + 12);
  std::string header = bytes.substr(8, n);
  size_t last = header.find_last_not_of(' ');
  EXPECT_EQ(header[last], '}');
  EXPECT_LT(n - last - 1, 8u);  // padding is at most 7 spaces
  auto j = nlohmann::json::parse(header);
  EXPECT_EQ(j["__metadata__"], nlohmann::json({{"k", "v"}}));
  // Tensors in name order: a (int64 [2,1], 16 bytes) then b (float32 [3], 12 bytes).
  EXPECT_EQ(j["a"], nlohmann::json({{"dtype", "I64"}, {"shape", {2, 1}}, {"data_offsets", {0, 16}}}));
  EXPECT_EQ(j["b"], nlohmann::json({{"dtype", "F32"}, {"shape", {3}}, {"data_offsets", {16, 28}}}));
  const char* data = bytes.data() + 8 + n;
  int64_t i64[2];
  float f32[3];
  std::memcpy(i64, data, 16);
  std::memcpy(f32, data + 16, 12);
  EXPECT_EQ(i64[0], 7);
  EXPECT_EQ(i64[1], 8);
  EXPECT_EQ(f32[2], 3.0f);
  // No metadata -> no __metadata__ key.
  ts::io::save_safetensors(tmp / "d.st", m);
  std::string b2 = read_file(tmp / "d.st");
  EXPECT_EQ(b2.find("__metadata__"), std::string::npos);
}

TEST(Safetensors, MisalignedTensorIsCopiedCorrectly) {
  TempDir tmp;
  // A 3-byte U8 tensor first puts the F32 tensor at buffer offset 3 (legal in the format).
  std::string header =
      R"({"a":{"dtype":"U8","shape":[3],"data_offsets":[0,3]},"b":{"dtype":"F32","shape":[2],"data_offsets":[3,11]}})";
  header.append((8 - header.size() % 8) % 8, ' ');
  float fv[2] = {1.5f, -2.25f};
  std::string data = "\x01\x02\x03" + std::string(reinterpret_cast<char*>(fv), 8);
  write_file(tmp / "m.st", make_file(header, data));
  auto f = ts::io::load_safetensors(tmp / "m.st");
  EXPECT_EQ(f.tensors.at("a").to_vector<uint8_t>(), (std::vector<uint8_t>{1, 2, 3}));
  EXPECT_EQ(f.tensors.at("b").to_vector<float>(), (std::vector<float>{1.5f, -2.25f}));
}

TEST(Safetensors, RejectsMalformedFiles) {
  TempDir tmp;
  const std::string p = tmp / "bad.st";
  auto hdr = [](const std::string& entries) { return "{" + entries + "}"; };
  auto ok_entry = [](const std::string& shape, const std::string& offs, const std::string& dt = "F32") {
    return R"("w":{"dtype":")" + dt + R"(","shape":)" + shape + R"(,"data_offsets":)" + offs + "}";
  };
  const std::string data16(16, '\0');

  // Truncations of a valid file at several points.
  ts::io::save_safetensors(tmp / "good.st", {{"w", ts::ones({4, 4})}, {"v", ts::ones({3}, DType::Int32)}});
  std::string good = read_file(tmp / "good.st");
  for (size_t cut : {size_t{0}, size_t{3}, size_t{7}}) {
    write_file(p, good.substr(0, cut));
    expect_format_error(p, {"shorter than the 8-byte"});
  }
  const size_t hlen = static_cast<unsigned char>(good[0]) | (static_cast<unsigned char>(good[1]) << 8);
  for (size_t cut : {size_t{8}, size_t{20}, 8 + hlen / 2, 8 + hlen - 1}) {
    write_file(p, good.substr(0, cut));
    expect_format_error(p, {"header length"});
  }
  write_file(p, good.substr(0, good.size() - 1));  // data cut short
  expect_format_error(p, {"exceed the"});

  write_file(p, le64(1000) + "{}");
  expect_format_error(p, {"header length 1000 exceeds"});
  write_file(p, le64(uint64_t{1} << 62) + "{}");
  expect_format_error(p, {"100 MB"});
  write_file(p, make_file("{not json", ""));
  expect_format_error(p, {"not valid JSON"});
  write_file(p, make_file("[1,2,3]", ""));
  expect_format_error(p, {"array", "expected an object"});
  write_file(p, make_file(hdr(ok_entry("[4]", "[0,16]", "F7")), data16));
  expect_format_error(p, {"'w'", "unknown or unsupported dtype 'F7'"});
  write_file(p, make_file(hdr(ok_entry("[4]", "[0,16]", "I16")), data16));
  expect_format_error(p, {"'I16'"});
  write_file(p, make_file(hdr(ok_entry("[-4]", "[0,16]")), data16));
  expect_format_error(p, {"'w'", "not a non-negative integer"});
  write_file(p, make_file(hdr(ok_entry("[1099511627776,1099511627776]", "[0,16]")), data16));
  expect_format_error(p, {"'w'", "64 bits"});
  write_file(p, make_file(hdr(ok_entry("[2.5]", "[0,16]")), data16));
  expect_format_error(p, {"'w'", "shape"});
  write_file(p, make_file(hdr(ok_entry("[256]", "[0,1024]")), data16));
  expect_format_error(p, {"tensor 'w' data_offsets [0, 1024] exceed the 16-byte data buffer"});
  write_file(p, make_file(hdr(ok_entry("[0]", "[16,8]")), data16));
  expect_format_error(p, {"'w'", "end before begin"});
  write_file(p, make_file(hdr(ok_entry("[3]", "[0,16]")), data16));
  expect_format_error(p, {"'w'", "span 16 bytes", "needs 12"});
  write_file(p, make_file(hdr(ok_entry("[4]", "[0]")), data16));
  expect_format_error(p, {"'w'", "data_offsets"});
  write_file(p, make_file(hdr(ok_entry("[4]", "[-1,15]")), data16));
  expect_format_error(p, {"'w'", "data_offsets"});
  write_file(p, make_file(hdr(R"("w":{"shape":[4],"data_offsets":[0,16]})"), data16));
  expect_format_error(p, {"'w'", "dtype"});
  write_file(p, make_file(hdr(R"("w":{"dtype":"F32","data_offsets":[0,16]})"), data16));
  expect_format_error(p, {"'w'", "shape"});
  write_file(p, make_file(hdr(R"("w":[1,2])"), data16));
  expect_format_error(p, {"'w'", "expected an object"});
  write_file(p, make_file(hdr(R"("a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                              R"("b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]})"),
                          data16));
  expect_format_error(p, {"'a'", "'b'", "overlap"});
  write_file(p, make_file(hdr(R"("__metadata__":{"k":1})"), ""));
  expect_format_error(p, {"__metadata__", "'k'", "string"});
  write_file(p, make_file(hdr(R"("__metadata__":"x")"), ""));
  expect_format_error(p, {"__metadata__"});

  // Deeply nested JSON (20k levels): rejected, no stack overflow.
  write_file(p, make_file(std::string(20000, '[') + std::string(20000, ']'), ""));
  expect_format_error(p, {"expected an object"});
  write_file(p, make_file(std::string(20000, '['), ""));
  expect_format_error(p, {"not valid JSON"});

  // Random byte corruption of a valid file never crashes: it loads or throws a tessera error.
  std::mt19937 rng(1);
  for (int i = 0; i < 200; ++i) {
    std::string b = good;
    for (int k = 0; k < 3; ++k) b[rng() % std::min<size_t>(b.size(), 120)] = static_cast<char>(rng());
    write_file(p, b);
    try {
      ts::io::load_safetensors(p);
    } catch (const ts::Error&) {
    }
  }
  EXPECT_THROW(ts::io::load_safetensors(tmp / "does_not_exist.st"), ts::IOError);
}

TEST(Safetensors, SaveRejectsBadInputAndKeepsOldFile) {
  TempDir tmp;
  const std::string p = tmp / "keep.st";
  ts::io::save_safetensors(p, {{"x", ts::ones({2})}});
  std::string before = read_file(p);
  EXPECT_THROW(ts::io::save_safetensors(p, {{"__metadata__", ts::ones({2})}}), ts::ValueError);
  EXPECT_THROW(ts::io::save_safetensors(p, {{"x", Tensor()}}), ts::ValueError);
  EXPECT_THROW(ts::io::save_safetensors(tmp / "no_such_dir/x.st", {{"x", ts::ones({2})}}), ts::IOError);
  EXPECT_THROW(ts::io::save_safetensors(p, {{"bad\xff", ts::ones({2})}}), ts::ValueError);
  EXPECT_THROW(ts::io::save_safetensors(p, {{"x", ts::ones({2})}}, {{"k", "\xc3"}}), ts::ValueError);
  EXPECT_EQ(read_file(p), before);
  std::size_t files = 0;
  for (auto& e : fs::directory_iterator(tmp.dir)) files += e.is_regular_file();
  EXPECT_EQ(files, 1u);  // no temporary left behind
}

// A child saves two alternating versions of a few-MB map to one path in a loop and is killed
// at random moments; the path must always hold one complete version.
TEST(Safetensors, SurvivesSigkillDuringSave) {
  TempDir tmp;
  const std::string p = tmp / "crash.st";
  auto version = [](int v) {
    TensorMap m;
    for (int i = 0; i < 4; ++i) m["t" + std::to_string(i)] = ts::full({256, 1024}, static_cast<float>(v * 10 + i));
    return m;
  };
  const TensorMap v0 = version(0), v1 = version(1);
  ts::io::save_safetensors(p, v0);
  std::mt19937 rng(42);
  for (int round = 0; round < 6; ++round) {
    pid_t pid = ::fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      for (int i = 0;; ++i) ts::io::save_safetensors(p, (i % 2) ? v0 : v1);
    }
    std::this_thread::sleep_for(std::chrono::microseconds(2000 + rng() % 40000));
    ::kill(pid, SIGKILL);
    int status = 0;
    ::waitpid(pid, &status, 0);
    ASSERT_TRUE(WIFSIGNALED(status));
    auto f = ts::io::load_safetensors(p);
    ASSERT_EQ(f.tensors.size(), 4u);
    float first = f.tensors.at("t0").to_vector<float>()[0];
    ASSERT_TRUE(first == 0.0f || first == 10.0f) << first;
    int v = first == 0.0f ? 0 : 1;
    for (int i = 0; i < 4; ++i) {
      auto vals = f.tensors.at("t" + std::to_string(i)).to_vector<float>();
      float want = static_cast<float>(v * 10 + i);
      for (float x : vals) ASSERT_EQ(x, want);
    }
  }
  // Killed writers may leave "<path>.tmp-*" files; they never replace the target, and a new
  // save is unaffected by them.
  for (auto& e : fs::directory_iterator(tmp.dir)) {
    std::string n = e.path().filename().string();
    EXPECT_TRUE(n == "crash.st" || n.rfind("crash.st.tmp-", 0) == 0) << n;
  }
  ts::io::save_safetensors(p, v1);
  EXPECT_EQ(ts::io::load_safetensors(p).tensors.at("t3").to_vector<float>()[0], 13.0f);
}
