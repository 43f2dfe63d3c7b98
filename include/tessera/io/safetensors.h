// safetensors files (https://github.com/huggingface/safetensors format), tessera::io.
//
// Layout: 8-byte little-endian header length N, N bytes of JSON header
//   {"__metadata__":{"k":"v",...}, "name":{"dtype":"F32","shape":[2,3],"data_offsets":[begin,end]}, ...}
// padded with spaces so that the data buffer starts 8-byte aligned, then the data buffer
// (row-major, little-endian; offsets relative to the buffer start).
// dtypes: F64 F32 F16 BF16 I64 I32 I8 U8 BOOL <-> Tessera's float64 ... bool. The format's other
// dtypes (I16, U16, U32, U64, F8_*) have no Tessera dtype and are rejected with FormatError.
#pragma once

#include <map>
#include <string>

#include "tessera/autodiff.h"
#include "tessera/export.h"

namespace tessera::io {

/// Writes tensors (any layout, any device readable from the host; non-contiguous ones are
/// made contiguous) in name order, with optional string metadata, atomically: the data goes
/// to a temporary file in the same directory ("<path>.tmp-<pid>-<n>"), which is fsync'ed and
/// renamed over path, then the directory is fsync'ed. On any error the temporary file is
/// removed and an existing file at path is left untouched.
/// Throws ValueError for an undefined tensor or the reserved name "__metadata__", Error for an
/// operating-system failure (message names the path and the reason).
TESSERA_API void save_safetensors(const std::string& path, const TensorMap& tensors,
                                  const std::map<std::string, std::string>& metadata = {});

/// What a safetensors file holds.
struct SafetensorsFile {
  TensorMap tensors;
  std::map<std::string, std::string> metadata;
};

/// Reads a safetensors file through a memory mapping: the tensors alias the (private,
/// copy-on-write) mapping, which is unmapped when the last of them dies; a tensor whose data
/// is not aligned for its dtype is copied instead. The whole header is validated before any
/// tensor is made; every defect throws FormatError naming the file and the tensor/field, e.g.
///   [load_safetensors] model.st: tensor 'fc1.weight' data_offsets [0, 4096] exceed the 1024-byte data buffer
/// Checks: file >= 8 bytes; header length <= file size - 8 and <= 100 MB; the header is a JSON
/// object; each entry has a string dtype, an integer-array shape (dims >= 0, numel * itemsize
/// without overflow) and two integer data_offsets with begin <= end <= buffer size and
/// end - begin == numel * itemsize; tensors do not overlap; __metadata__ is an object of strings.
/// Throws Error when the file cannot be opened or mapped.
TESSERA_API SafetensorsFile load_safetensors(const std::string& path);

}  // namespace tessera::io
