#include "tessera/data/text.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "tessera/ops.h"

namespace tessera::data {

namespace {
std::string read_file_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) raise<IOError>("ByteCorpus", "cannot open " + path + ": " + std::strerror(errno));
  std::ostringstream ss;
  ss << in.rdbuf();
  if (in.bad()) raise<ValueError>("ByteCorpus", "error reading " + path);
  return std::move(ss).str();
}
}  // namespace

ByteCorpus::ByteCorpus(std::shared_ptr<const std::string> bytes, int64_t begin, int64_t end, int64_t context)
    : bytes_(std::move(bytes)), begin_(begin), end_(end), context_(context) {
  if (!bytes_ || begin < 0 || end < begin || end > static_cast<int64_t>(bytes_->size()))
    raise<ValueError>("ByteCorpus",
                      "byte range [" + std::to_string(begin) + ", " + std::to_string(end) + ") is outside the text");
  if (context < 1) raise<ValueError>("ByteCorpus", "context must be >= 1, got " + std::to_string(context));
  if (end - begin < context + 1)
    raise<ValueError>("ByteCorpus", "corpus of " + std::to_string(end - begin) + " bytes is too short for context " +
                                        std::to_string(context) + " (needs at least " + std::to_string(context + 1) +
                                        ")");
}

std::shared_ptr<ByteCorpus> ByteCorpus::from_string(std::string text, int64_t context) {
  auto bytes = std::make_shared<const std::string>(std::move(text));
  int64_t n = static_cast<int64_t>(bytes->size());
  return std::make_shared<ByteCorpus>(std::move(bytes), 0, n, context);
}

std::shared_ptr<ByteCorpus> ByteCorpus::from_file(const std::string& path, int64_t context) {
  return from_string(read_file_bytes(path), context);
}

std::shared_ptr<ByteCorpus> ByteCorpus::from_files(const std::vector<std::string>& paths, int64_t context) {
  std::string all;
  for (const auto& p : paths) {
    all += read_file_bytes(p);
    if (!all.empty() && all.back() != '\n') all += '\n';
  }
  return from_string(std::move(all), context);
}

std::shared_ptr<ByteCorpus> ByteCorpus::fortunes(int64_t context) {
  return from_files(default_text_corpus_files(), context);
}

std::string_view ByteCorpus::text() const {
  return std::string_view(*bytes_).substr(static_cast<size_t>(begin_), static_cast<size_t>(end_ - begin_));
}

Batch ByteCorpus::get_batch(std::span<const int64_t> indices) const {
  const int64_t b = static_cast<int64_t>(indices.size());
  const int64_t n = size();
  Tensor x = empty({b, context_}, DType::Int64, Device("cpu"));
  Tensor y = empty({b, context_}, DType::Int64, Device("cpu"));
  int64_t* xd = x.data<int64_t>();
  int64_t* yd = y.data<int64_t>();
  const auto* src = reinterpret_cast<const uint8_t*>(bytes_->data()) + begin_;
  for (int64_t i = 0; i < b; ++i) {
    int64_t s = indices[static_cast<size_t>(i)];
    if (s < 0 || s >= n)
      raise<IndexError>("ByteCorpus",
                        "index " + std::to_string(s) + " is out of range for " + std::to_string(n) + " windows");
    const uint8_t* p = src + s;
    for (int64_t j = 0; j < context_; ++j) {
      xd[i * context_ + j] = p[j];
      yd[i * context_ + j] = p[j + 1];
    }
  }
  return {x, y};
}

std::pair<std::shared_ptr<ByteCorpus>, std::shared_ptr<ByteCorpus>> ByteCorpus::split(double fraction) const {
  if (!(fraction > 0.0 && fraction < 1.0))
    raise<ValueError>("ByteCorpus.split", "fraction must be in (0, 1), got " + std::to_string(fraction));
  const int64_t n = num_bytes();
  const int64_t cut = begin_ + static_cast<int64_t>(std::llround(fraction * static_cast<double>(n)));
  if (cut - begin_ < context_ + 1 || end_ - cut < context_ + 1)
    raise<ValueError>("ByteCorpus.split",
                      "fraction " + std::to_string(fraction) + " of " + std::to_string(n) +
                          " bytes leaves a part shorter than context + 1 = " + std::to_string(context_ + 1) + " bytes");
  return {std::make_shared<ByteCorpus>(bytes_, begin_, cut, context_),
          std::make_shared<ByteCorpus>(bytes_, cut, end_, context_)};
}

std::vector<std::string> default_text_corpus_files(const std::string& dir) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (!fs::is_directory(dir, ec))
    raise<ValueError>("default_text_corpus_files",
                      dir + " does not exist; install the Debian package `fortunes` (scripts/install-deps)");
  std::vector<std::string> files;
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    // symlink_status: the *.u8 names and the link to the offensive set are symlinks, skipped.
    if (!fs::is_regular_file(e.symlink_status())) continue;
    const auto ext = e.path().extension().string();
    if (ext == ".dat" || ext == ".u8") continue;
    files.push_back(e.path().string());
  }
  if (ec) raise<ValueError>("default_text_corpus_files", "cannot list " + dir + ": " + ec.message());
  if (files.empty()) raise<ValueError>("default_text_corpus_files", "no fortune files in " + dir);
  std::sort(files.begin(), files.end());
  return files;
}

}  // namespace tessera::data
