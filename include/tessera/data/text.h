// Byte-level text corpora for next-byte language modelling.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "tessera/data/dataset.h"
#include "tessera/export.h"

namespace tessera::data {

/// A byte string cut into overlapping windows: example i has inputs = bytes[i, i+context) and
/// targets = bytes[i+1, i+context+1), both int64 (byte values 0..255), so get_batch returns
/// int64 [B, context] twice. size() = num_bytes() - context.
/// Copies share the bytes (immutable, reference-counted), so split() costs no copy.
class TESSERA_API ByteCorpus : public Dataset {
 public:
  /// Throws ValueError when context < 1 or the text has fewer than context + 1 bytes.
  static std::shared_ptr<ByteCorpus> from_string(std::string text, int64_t context);
  /// The file's bytes. Throws ValueError naming a file that cannot be read.
  static std::shared_ptr<ByteCorpus> from_file(const std::string& path, int64_t context);
  /// The files concatenated in the given order, a '\n' added after any file not ending in one.
  static std::shared_ptr<ByteCorpus> from_files(const std::vector<std::string>& paths, int64_t context);
  /// from_files(default_text_corpus_files(), context).
  static std::shared_ptr<ByteCorpus> fortunes(int64_t context);

  int64_t size() const override { return end_ - begin_ - context_; }
  Batch get_batch(std::span<const int64_t> indices) const override;

  int64_t context() const { return context_; }
  int64_t num_bytes() const { return end_ - begin_; }
  /// The corpus text.
  std::string_view text() const;
  /// Contiguous parts: train = the first round(fraction * num_bytes()) bytes, val = the rest.
  /// Throws ValueError when fraction is not in (0, 1) or either part has fewer than context + 1 bytes.
  std::pair<std::shared_ptr<ByteCorpus>, std::shared_ptr<ByteCorpus>> split(double fraction) const;

  ByteCorpus(std::shared_ptr<const std::string> bytes, int64_t begin, int64_t end, int64_t context);

 private:
  std::shared_ptr<const std::string> bytes_;
  int64_t begin_, end_, context_;
};

/// The English fortune files of Debian's `fortunes` package (/usr/share/games/fortunes by
/// default): regular files only (no *.dat index files, no *.u8 links, no subdirectories or links
/// to the offensive sets), sorted by name for determinism. Throws ValueError when the directory
/// is missing (install the `fortunes` package) or holds no such file.
TESSERA_API std::vector<std::string> default_text_corpus_files(const std::string& dir = "/usr/share/games/fortunes");

}  // namespace tessera::data
