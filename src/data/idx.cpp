// IDX reader/writer and the MNIST-family data sets. Everything read from a file is validated
// before it sizes an allocation: the data is read in chunks, so a header declaring terabytes
// costs nothing and ends as a "truncated" error.
#include "tessera/data/idx.h"

#include <zlib.h>

#include <array>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <vector>

#include "tessera/ops.h"

namespace tessera::data {

namespace {

struct IdxType {
  uint8_t code;
  DType dtype;       // in-memory dtype
  size_t file_size;  // bytes per value in the file
};
constexpr std::array<IdxType, 6> kIdxTypes = {{{0x08, DType::UInt8, 1},
                                               {0x09, DType::Int8, 1},
                                               {0x0B, DType::Int32, 2},
                                               {0x0C, DType::Int32, 4},
                                               {0x0D, DType::Float32, 4},
                                               {0x0E, DType::Float64, 8}}};

struct GzFile {
  gzFile f = nullptr;
  ~GzFile() {
    if (f) gzclose(f);
  }
};

// Reads up to n bytes; returns how many were read. Throws FormatError on a zlib error (corrupt or
// truncated gzip stream).
size_t gz_read(gzFile f, void* buf, size_t n, const std::string& path) {
  size_t done = 0;
  auto* p = static_cast<uint8_t*>(buf);
  while (done < n) {
    unsigned chunk = static_cast<unsigned>(std::min<size_t>(n - done, 1u << 30));
    int r = gzread(f, p + done, chunk);
    if (r < 0) {
      int err = 0;
      const char* msg = gzerror(f, &err);
      raise<FormatError>("read_idx", path + ": read error: " + (msg ? msg : "unknown zlib error"));
    }
    if (r == 0) break;
    done += static_cast<size_t>(r);
  }
  if (done < n) {  // end of data: a truncated gzip stream shows up as an error here
    int err = 0;
    const char* msg = gzerror(f, &err);
    if (err != Z_OK && err != Z_STREAM_END)
      raise<FormatError>("read_idx", path + ": corrupt or truncated gzip stream (" + (msg ? msg : "") + ")");
  }
  return done;
}

uint32_t be32(const uint8_t* p) {
  return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | uint32_t{p[3]};
}

void put_be(uint8_t* dst, const uint8_t* src, size_t size) {
  for (size_t i = 0; i < size; ++i) dst[i] = src[size - 1 - i];
}

}  // namespace

Tensor read_idx(const std::string& path) {
  GzFile gz;
  gz.f = gzopen(path.c_str(), "rb");
  if (!gz.f) raise<IOError>("read_idx", "cannot open " + path + ": " + std::strerror(errno));
  gzbuffer(gz.f, 1 << 17);

  uint8_t head[4];
  size_t got = gz_read(gz.f, head, 4, path);
  if (got < 4)
    raise<FormatError>("read_idx", path + ": file too short for an IDX header (" + std::to_string(got) + " bytes)");
  if (head[0] != 0 || head[1] != 0)
    raise<FormatError>("read_idx", path + ": bad magic (first two bytes must be 0, got " + std::to_string(head[0]) +
                                       " " + std::to_string(head[1]) + "); not an IDX file");
  const IdxType* type = nullptr;
  for (const auto& t : kIdxTypes)
    if (t.code == head[2]) type = &t;
  if (!type) raise<FormatError>("read_idx", path + ": unknown IDX type byte " + std::to_string(head[2]));
  const int ndim = head[3];
  if (ndim < 1 || ndim > 8)
    raise<FormatError>("read_idx", path + ": " + std::to_string(ndim) + " dimensions (IDX allows 1 to 8)");

  uint8_t dim_bytes[32];
  got = gz_read(gz.f, dim_bytes, 4 * static_cast<size_t>(ndim), path);
  if (got < 4 * static_cast<size_t>(ndim))
    raise<FormatError>("read_idx", path + ": truncated header: " + std::to_string(ndim) + " dimensions need " +
                                       std::to_string(4 * ndim) + " bytes, got " + std::to_string(got));
  Shape shape;
  int64_t numel = 1;
  bool overflow = false;
  for (int i = 0; i < ndim; ++i) {
    int64_t d = be32(dim_bytes + 4 * i);  // uint32: never negative
    shape.push_back(d);
    overflow = overflow || __builtin_mul_overflow(numel, d, &numel);
  }
  int64_t expected = 0;
  if (overflow || __builtin_mul_overflow(numel, static_cast<int64_t>(type->file_size), &expected))
    raise<FormatError>("read_idx", path + ": dimensions " + shape_str(shape) + " overflow the addressable size");

  // Read in chunks (never trusting `expected` for one allocation) plus one byte to detect trailing data.
  std::vector<uint8_t> bytes;
  constexpr size_t kChunk = size_t{16} << 20;
  for (;;) {
    size_t want = std::min<size_t>(kChunk, static_cast<size_t>(expected) + 1 - bytes.size());
    size_t old = bytes.size();
    bytes.resize(old + want);
    size_t r = gz_read(gz.f, bytes.data() + old, want, path);
    bytes.resize(old + r);
    if (r < want || bytes.size() > static_cast<size_t>(expected)) break;
  }
  const size_t header = 4 + 4 * static_cast<size_t>(ndim);
  if (bytes.size() < static_cast<size_t>(expected))
    raise<FormatError>("read_idx", path + ": truncated: dimensions " + shape_str(shape) + " need " +
                                       std::to_string(header + static_cast<size_t>(expected)) +
                                       " bytes of (uncompressed) data, the file has " +
                                       std::to_string(header + bytes.size()));
  if (bytes.size() > static_cast<size_t>(expected))
    raise<FormatError>("read_idx", path + ": trailing bytes after the " + std::to_string(header + expected) +
                                       " bytes that dimensions " + shape_str(shape) + " declare");

  Tensor out = empty(shape, type->dtype, Device("cpu"));
  auto* dst = static_cast<uint8_t*>(out.raw_data());
  const uint8_t* src = bytes.data();
  switch (type->code) {
    case 0x08:
    case 0x09:
      if (numel) std::memcpy(dst, src, static_cast<size_t>(numel));
      break;
    case 0x0B: {  // int16 widened to int32
      auto* d = reinterpret_cast<int32_t*>(dst);
      for (int64_t i = 0; i < numel; ++i)
        d[i] = static_cast<int16_t>(static_cast<uint16_t>((src[2 * i] << 8) | src[2 * i + 1]));
      break;
    }
    default:
      for (int64_t i = 0; i < numel; ++i) put_be(dst + i * type->file_size, src + i * type->file_size, type->file_size);
  }
  return out;
}

void write_idx(const std::string& path, const Tensor& t, bool gzip) {
  const IdxType* type = nullptr;
  for (const auto& k : kIdxTypes)
    if (k.dtype == t.dtype() && k.code != 0x0B) type = &k;
  if (!type) raise<DTypeError>("write_idx", "IDX cannot hold " + std::string(dtype_name(t.dtype())));
  if (t.ndim() < 1 || t.ndim() > 8)
    raise<ShapeError>("write_idx", "IDX holds 1 to 8 dimensions, got " + shape_str(t.shape()));
  std::vector<uint8_t> buf{0, 0, type->code, static_cast<uint8_t>(t.ndim())};
  for (int64_t d : t.shape()) {
    if (d > UINT32_MAX) raise<ShapeError>("write_idx", "dimension " + std::to_string(d) + " exceeds uint32");
    for (int s = 24; s >= 0; s -= 8) buf.push_back(static_cast<uint8_t>(static_cast<uint64_t>(d) >> s));
  }
  Tensor c = t.contiguous();
  const auto* src = static_cast<const uint8_t*>(c.raw_data());
  size_t head = buf.size();
  buf.resize(head + static_cast<size_t>(c.numel()) * type->file_size);
  for (int64_t i = 0; i < c.numel(); ++i)
    put_be(buf.data() + head + i * type->file_size, src + i * type->file_size, type->file_size);

  GzFile gz;
  gz.f = gzopen(path.c_str(), gzip ? "wb6" : "wbT");  // T: plain, uncompressed output
  if (!gz.f) raise<ValueError>("write_idx", "cannot create " + path + ": " + std::strerror(errno));
  size_t done = 0;
  while (done < buf.size()) {
    unsigned chunk = static_cast<unsigned>(std::min<size_t>(buf.size() - done, 1u << 30));
    if (gzwrite(gz.f, buf.data() + done, chunk) != static_cast<int>(chunk))
      raise<ValueError>("write_idx", "write to " + path + " failed");
    done += chunk;
  }
  int rc = gzclose(gz.f);
  gz.f = nullptr;
  if (rc != Z_OK) raise<ValueError>("write_idx", "closing " + path + " failed");
}

namespace {

std::string env_or(const char* var, const char* fallback) {
  const char* v = std::getenv(var);
  return v && *v ? std::string(v) : std::string(fallback);
}

// "<dir>/<stem>.gz" if it exists, else "<dir>/<stem>"; a clear error when neither does.
std::string find_file(const std::string& dir, const std::string& stem, const char* name, const char* hint) {
  namespace fs = std::filesystem;
  fs::path base = fs::path(dir) / stem;
  std::error_code ec;
  if (fs::exists(base.string() + ".gz", ec)) return base.string() + ".gz";
  if (fs::exists(base, ec)) return base.string();
  raise<ValueError>(name,
                    "missing " + base.string() + ".gz (nor an uncompressed " + stem + ") in " + dir + "; " + hint);
}

std::shared_ptr<ImageDataset> load_split(const std::string& dir, const std::string& prefix, const char* name,
                                         const char* hint) {
  Tensor images = read_idx(find_file(dir, prefix + "-images-idx3-ubyte", name, hint));
  Tensor labels = read_idx(find_file(dir, prefix + "-labels-idx1-ubyte", name, hint));
  const std::string where = dir + "/" + prefix;
  if (images.dtype() != DType::UInt8 || images.ndim() != 3)
    raise<FormatError>(name, where + " images must be uint8 [N, H, W], got " + std::string(dtype_name(images.dtype())) +
                                 " " + shape_str(images.shape()));
  if (labels.dtype() != DType::UInt8 || labels.ndim() != 1)
    raise<FormatError>(name, where + " labels must be uint8 [N], got " + std::string(dtype_name(labels.dtype())) + " " +
                                 shape_str(labels.shape()));
  if (images.size(0) != labels.size(0))
    raise<FormatError>(name, where + ": " + std::to_string(images.size(0)) + " images but " +
                                 std::to_string(labels.size(0)) + " labels");
  const uint8_t* l = labels.data<uint8_t>();
  for (int64_t i = 0; i < labels.numel(); ++i)
    if (l[i] > 9)
      raise<FormatError>(name,
                         where + ": label " + std::to_string(l[i]) + " at " + std::to_string(i) + " is outside 0..9");
  Tensor nchw = images.reshape({images.size(0), 1, images.size(1), images.size(2)});
  return std::make_shared<ImageDataset>(nchw, labels);
}

constexpr const char* kFashionHint =
    "install the Debian package dataset-fashion-mnist (scripts/install-deps) or set TESSERA_FASHION_MNIST_DIR";
constexpr const char* kMnistHint = "put the MNIST IDX files there or set TESSERA_MNIST_DIR";

}  // namespace

std::string FashionMnist::default_dir() {
  return env_or("TESSERA_FASHION_MNIST_DIR", "/usr/share/datasets/fashion-mnist");
}
std::shared_ptr<ImageDataset> FashionMnist::train(const std::string& dir) {
  return load_split(dir, "train", "FashionMnist", kFashionHint);
}
std::shared_ptr<ImageDataset> FashionMnist::test(const std::string& dir) {
  return load_split(dir, "t10k", "FashionMnist", kFashionHint);
}
const char* FashionMnist::class_name(int64_t label) {
  static constexpr const char* kNames[] = {"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                                           "Sandal",      "Shirt",   "Sneaker",  "Bag",   "Ankle boot"};
  if (label < 0 || label > 9) raise<IndexError>("FashionMnist", "label " + std::to_string(label) + " is not in 0..9");
  return kNames[label];
}

std::string Mnist::default_dir() { return env_or("TESSERA_MNIST_DIR", "/usr/share/datasets/mnist"); }
std::shared_ptr<ImageDataset> Mnist::train(const std::string& dir) {
  return load_split(dir, "train", "Mnist", kMnistHint);
}
std::shared_ptr<ImageDataset> Mnist::test(const std::string& dir) {
  return load_split(dir, "t10k", "Mnist", kMnistHint);
}

}  // namespace tessera::data
