// safetensors reader (mmap, validate-then-use) and atomic writer.
#include "tessera/io/safetensors.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <bit>
#include <cerrno>
#include <cstring>
#include <memory>
#include <nlohmann/json.hpp>
#include <vector>

#include "tessera/ops.h"

namespace tessera::io {

static_assert(std::endian::native == std::endian::little, "safetensors I/O assumes a little-endian host");

namespace {

constexpr uint64_t kMaxHeader = 100ull * 1000 * 1000;  // 100 MB, as the reference implementation

struct DTypeName {
  const char* name;
  DType dtype;
};
constexpr DTypeName kDTypes[] = {{"F64", DType::Float64},   {"F32", DType::Float32}, {"F16", DType::Float16},
                                 {"BF16", DType::BFloat16}, {"I64", DType::Int64},   {"I32", DType::Int32},
                                 {"I8", DType::Int8},       {"U8", DType::UInt8},    {"BOOL", DType::Bool}};

const char* st_name(DType d) {
  for (const auto& e : kDTypes)
    if (e.dtype == d) return e.name;
  return "?";
}

std::string os_error(const std::string& what, const std::string& path) {
  return what + " '" + path + "': " + std::strerror(errno);
}

// ---------------------------------------------------------------------------------------------
// Writing

// Removes the temporary file unless released (after the rename).
struct TempFile {
  std::string path;
  int fd = -1;
  bool keep = false;
  ~TempFile() {
    if (fd >= 0) ::close(fd);
    if (!keep && !path.empty()) ::unlink(path.c_str());
  }
};

void write_all(int fd, const void* data, size_t n, const std::string& path) {
  const char* p = static_cast<const char*>(data);
  while (n > 0) {
    ssize_t w = ::write(fd, p, std::min<size_t>(n, size_t{1} << 30));
    if (w < 0) {
      if (errno == EINTR) continue;
      raise<IOError>("save_safetensors", os_error("cannot write", path));
    }
    p += w;
    n -= static_cast<size_t>(w);
  }
}

std::string dir_of(const std::string& path) {
  auto slash = path.find_last_of('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

// ---------------------------------------------------------------------------------------------
// Reading

struct Mapping {
  void* addr = nullptr;
  size_t len = 0;
  ~Mapping() {
    if (addr) ::munmap(addr, len);
  }
};

// Storage calls deleter(ctx, data).
void release_mapping(void* ctx, void*) { delete static_cast<std::shared_ptr<Mapping>*>(ctx); }

[[noreturn]] void bad(const std::string& file, const std::string& what) {
  raise<FormatError>("load_safetensors", file + ": " + what);
}

// A non-negative JSON integer as uint64, or nullopt.
bool as_u64(const nlohmann::json& j, uint64_t& out) {
  if (j.is_number_unsigned()) {
    out = j.get<uint64_t>();
    return true;
  }
  if (j.is_number_integer()) {
    int64_t v = j.get<int64_t>();
    if (v < 0) return false;
    out = static_cast<uint64_t>(v);
    return true;
  }
  return false;
}

struct Entry {
  std::string name;
  DType dtype;
  Shape shape;
  uint64_t begin, end;
};

}  // namespace

void save_safetensors(const std::string& path, const TensorMap& tensors,
                      const std::map<std::string, std::string>& metadata) {
  const char* op = "save_safetensors";
  // Header first (validates every tensor before anything touches the disk).
  nlohmann::ordered_json header = nlohmann::ordered_json::object();
  if (!metadata.empty()) {
    nlohmann::ordered_json md = nlohmann::ordered_json::object();
    for (const auto& [k, v] : metadata) md[k] = v;
    header["__metadata__"] = std::move(md);
  }
  std::vector<Tensor> data;
  data.reserve(tensors.size());
  uint64_t offset = 0;
  for (const auto& [name, t] : tensors) {
    if (name == "__metadata__") raise<ValueError>(op, path + ": '__metadata__' is reserved and cannot name a tensor");
    if (!t.defined()) raise<ValueError>(op, path + ": tensor '" + name + "' is undefined");
    Tensor c = t.device() == Device("cpu") ? t : t.to(Device("cpu"));
    c = c.is_contiguous() ? c : c.contiguous();
    uint64_t nbytes = static_cast<uint64_t>(c.numel()) * c.itemsize();
    nlohmann::ordered_json e;
    e["dtype"] = st_name(c.dtype());
    e["shape"] = nlohmann::ordered_json::array();
    for (int64_t d : c.shape()) e["shape"].push_back(d);
    e["data_offsets"] = {offset, offset + nbytes};
    header[name] = std::move(e);
    offset += nbytes;
    data.push_back(std::move(c));
  }
  std::string h;
  try {
    h = header.dump();  // throws for names / metadata that are not valid UTF-8
  } catch (const nlohmann::json::exception& e) {
    raise<ValueError>(op, path + ": tensor names and metadata must be valid UTF-8 (" + e.what() + ")");
  }
  h.append((8 - h.size() % 8) % 8, ' ');
  uint64_t n = h.size();
  unsigned char len_le[8];
  for (int i = 0; i < 8; ++i) len_le[i] = static_cast<unsigned char>(n >> (8 * i));

  static std::atomic<uint64_t> counter{0};
  TempFile tmp;
  tmp.path = path + ".tmp-" + std::to_string(::getpid()) + "-" + std::to_string(counter.fetch_add(1));
  tmp.fd = ::open(tmp.path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (tmp.fd < 0) raise<IOError>(op, os_error("cannot create temporary file", tmp.path));
  write_all(tmp.fd, len_le, 8, tmp.path);
  write_all(tmp.fd, h.data(), h.size(), tmp.path);
  for (const Tensor& t : data)
    if (t.numel() > 0) write_all(tmp.fd, t.raw_data(), static_cast<size_t>(t.numel()) * t.itemsize(), tmp.path);
  if (::fsync(tmp.fd) != 0) raise<IOError>(op, os_error("cannot fsync", tmp.path));
  int fd = tmp.fd;
  tmp.fd = -1;
  if (::close(fd) != 0) raise<IOError>(op, os_error("cannot close", tmp.path));
  if (::rename(tmp.path.c_str(), path.c_str()) != 0)
    raise<IOError>(op, os_error("cannot rename the temporary file to", path));
  tmp.keep = true;
  // Make the rename durable. A failure here does not undo the (already visible) new file.
  std::string dir = dir_of(path);
  int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd < 0) raise<IOError>(op, os_error("cannot open directory", dir));
  int rc = ::fsync(dfd);
  ::close(dfd);
  if (rc != 0) raise<IOError>(op, os_error("cannot fsync directory", dir));
}

SafetensorsFile load_safetensors(const std::string& path) {
  const char* op = "load_safetensors";
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) raise<IOError>(op, os_error("cannot open", path));
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    int e = errno;
    ::close(fd);
    errno = e;
    raise<IOError>(op, os_error("cannot stat", path));
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd);
    bad(path, "not a regular file");
  }
  const uint64_t size = static_cast<uint64_t>(st.st_size);
  if (size < 8) {
    ::close(fd);
    bad(path, "file is " + std::to_string(size) + " bytes, shorter than the 8-byte header length");
  }
  auto map = std::make_shared<Mapping>();
  // Private and writable: tensors are immutable, but a stray write must not reach the file.
  void* addr = ::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
  int map_errno = errno;
  ::close(fd);
  if (addr == MAP_FAILED) {
    errno = map_errno;
    raise<IOError>(op, os_error("cannot mmap", path));
  }
  map->addr = addr;
  map->len = size;
  const auto* bytes = static_cast<const unsigned char*>(addr);

  uint64_t n = 0;
  for (int i = 0; i < 8; ++i) n |= static_cast<uint64_t>(bytes[i]) << (8 * i);
  if (n > kMaxHeader) bad(path, "header length " + std::to_string(n) + " exceeds the 100 MB limit");
  if (n > size - 8)
    bad(path, "header length " + std::to_string(n) + " exceeds the " + std::to_string(size - 8) +
                  " bytes after the length field (file truncated?)");
  const char* hbeg = reinterpret_cast<const char*>(bytes + 8);
  nlohmann::json header = nlohmann::json::parse(hbeg, hbeg + n, nullptr, /*allow_exceptions=*/false);
  if (header.is_discarded()) bad(path, "header is not valid JSON");
  if (!header.is_object()) bad(path, std::string("header is a JSON ") + header.type_name() + ", expected an object");

  const uint64_t buf_size = size - 8 - n;
  SafetensorsFile out;
  std::vector<Entry> entries;
  for (const auto& [name, v] : header.items()) {
    if (name == "__metadata__") {
      if (!v.is_object()) bad(path, std::string("__metadata__ is a JSON ") + v.type_name() + ", expected an object");
      for (const auto& [k, s] : v.items()) {
        if (!s.is_string())
          bad(path, "__metadata__ value of '" + k + "' is a JSON " + s.type_name() + ", expected a string");
        out.metadata[k] = s.get<std::string>();
      }
      continue;
    }
    const std::string t = "tensor '" + name + "'";
    if (!v.is_object()) bad(path, t + " is a JSON " + v.type_name() + ", expected an object");
    auto dt = v.find("dtype");
    if (dt == v.end() || !dt->is_string()) bad(path, t + ": missing or non-string 'dtype'");
    const std::string dname = dt->get<std::string>();
    const DTypeName* known = nullptr;
    for (const auto& e : kDTypes)
      if (dname == e.name) known = &e;
    if (!known) bad(path, t + ": unknown or unsupported dtype '" + dname + "'");
    auto sh = v.find("shape");
    if (sh == v.end() || !sh->is_array()) bad(path, t + ": missing or non-array 'shape'");
    Entry e{name, known->dtype, {}, 0, 0};
    uint64_t nbytes = dtype_size(known->dtype);
    for (const auto& d : *sh) {
      uint64_t dim;
      if (!as_u64(d, dim)) bad(path, t + ": shape " + sh->dump() + " has an entry that is not a non-negative integer");
      if (dim > static_cast<uint64_t>(INT64_MAX))
        bad(path, t + ": shape " + sh->dump() + " has a dimension beyond int64");
      e.shape.push_back(static_cast<int64_t>(dim));
    }
    bool empty = false;
    for (int64_t d : e.shape) empty = empty || d == 0;
    if (empty) {
      nbytes = 0;
    } else {
      for (int64_t d : e.shape)
        if (__builtin_mul_overflow(nbytes, static_cast<uint64_t>(d), &nbytes) ||
            nbytes > static_cast<uint64_t>(INT64_MAX))
          bad(path, t + ": shape " + sh->dump() + " has more bytes than fit in 64 bits");
    }
    auto off = v.find("data_offsets");
    if (off == v.end() || !off->is_array() || off->size() != 2 || !as_u64((*off)[0], e.begin) ||
        !as_u64((*off)[1], e.end))
      bad(path, t + ": 'data_offsets' must be two non-negative integers, got " +
                    (off == v.end() ? std::string("nothing") : off->dump()));
    const std::string range = "data_offsets [" + std::to_string(e.begin) + ", " + std::to_string(e.end) + "]";
    if (e.end < e.begin) bad(path, t + " " + range + ": end before begin");
    if (e.end > buf_size) bad(path, t + " " + range + " exceed the " + std::to_string(buf_size) + "-byte data buffer");
    if (e.end - e.begin != nbytes)
      bad(path, t + " " + range + " span " + std::to_string(e.end - e.begin) + " bytes, but " + dname + " " +
                    sh->dump() + " needs " + std::to_string(nbytes));
    entries.push_back(std::move(e));
  }
  // Overlap: sort by begin; every non-empty range must start at or after the previous one's end.
  std::vector<const Entry*> order;
  for (const auto& e : entries)
    if (e.end > e.begin) order.push_back(&e);
  std::sort(order.begin(), order.end(), [](const Entry* a, const Entry* b) { return a->begin < b->begin; });
  for (size_t i = 1; i < order.size(); ++i)
    if (order[i]->begin < order[i - 1]->end)
      bad(path, "tensors '" + order[i - 1]->name + "' [" + std::to_string(order[i - 1]->begin) + ", " +
                    std::to_string(order[i - 1]->end) + "] and '" + order[i]->name + "' [" +
                    std::to_string(order[i]->begin) + ", " + std::to_string(order[i]->end) + "] overlap");

  // Everything is valid: build the tensors.
  const Device cpu("cpu");
  auto* data_start = static_cast<unsigned char*>(addr) + 8 + n;
  for (const auto& e : entries) {
    unsigned char* p = data_start + e.begin;
    const size_t nbytes = e.end - e.begin;
    if (reinterpret_cast<uintptr_t>(p) % dtype_size(e.dtype) != 0) {  // misaligned for the dtype: copy
      out.tensors[e.name] = from_blob(p, e.shape, e.dtype, cpu);
      continue;
    }
    auto impl = std::make_shared<TensorImpl>();
    impl->shape = e.shape;
    impl->strides = contiguous_strides(e.shape);
    impl->dtype = e.dtype;
    impl->device = cpu;
    impl->storage = std::make_shared<Storage>(p, nbytes, cpu, &release_mapping, new std::shared_ptr<Mapping>(map));
    out.tensors[e.name] = Tensor(std::move(impl));
  }
  return out;
}

}  // namespace tessera::io
