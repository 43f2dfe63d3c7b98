// IDX files (the MNIST family's format) and the MNIST / Fashion-MNIST data sets.
//
// IDX layout: bytes 0 0, a type byte, the number of dimensions (1..8), then each dimension as a
// big-endian uint32, then the values, big-endian, row-major. Types: 0x08 uint8, 0x09 int8,
// 0x0B int16 (read as int32: Tessera has no int16), 0x0C int32, 0x0D float32, 0x0E float64.
#pragma once

#include <memory>
#include <string>

#include "tessera/data/dataset.h"
#include "tessera/export.h"
#include "tessera/tensor.h"

namespace tessera::data {

/// Reads an IDX file, gzip-compressed or plain (detected from the content, not the name).
/// Throws ValueError when the file cannot be opened, FormatError (naming the path) for a bad
/// magic, an unknown type, 0 or more than 8 dimensions, a size that overflows, a file shorter
/// than its header declares (with the expected and actual byte counts) or bytes after the data.
TESSERA_API Tensor read_idx(const std::string& path);

/// Writes `t` (uint8, int8, int32, float32 or float64; rank 1..8) as an IDX file, gzip-compressed
/// when `gzip` is set. Throws DTypeError / ShapeError for what IDX cannot hold, ValueError when
/// the file cannot be written.
TESSERA_API void write_idx(const std::string& path, const Tensor& t, bool gzip = false);

/// Fashion-MNIST (Zalando): 28x28 grey clothing images, 10 classes; 60000 train, 10000 test.
/// Files: {train,t10k}-{images-idx3,labels-idx1}-ubyte[.gz] in one directory.
class TESSERA_API FashionMnist {
 public:
  /// $TESSERA_FASHION_MNIST_DIR if set, else /usr/share/datasets/fashion-mnist (Debian package
  /// dataset-fashion-mnist, installed by scripts/install-deps).
  static std::string default_dir();
  /// Images uint8 [60000, 1, 28, 28] (returned as float32 in [0, 1] by get_batch), labels 0..9.
  /// Throws ValueError naming the missing path (and the package to install), FormatError for
  /// malformed files or image/label counts that disagree.
  static std::shared_ptr<ImageDataset> train(const std::string& dir = default_dir());
  /// The 10000 test images.
  static std::shared_ptr<ImageDataset> test(const std::string& dir = default_dir());
  /// "T-shirt/top", "Trouser", ..., "Ankle boot", indexed by label.
  static const char* class_name(int64_t label);
};

/// MNIST handwritten digits, same file layout as FashionMnist. default_dir(): $TESSERA_MNIST_DIR,
/// else /usr/share/datasets/mnist.
class TESSERA_API Mnist {
 public:
  static std::string default_dir();
  static std::shared_ptr<ImageDataset> train(const std::string& dir = default_dir());
  static std::shared_ptr<ImageDataset> test(const std::string& dir = default_dir());
};

}  // namespace tessera::data
