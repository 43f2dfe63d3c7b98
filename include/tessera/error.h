// Typed errors. Every message starts with the op name in brackets, then says
// what was wrong with which shapes or dtypes, e.g.
//   [matmul] cannot multiply [2,3] by [4,5]
#pragma once

#include <stdexcept>
#include <string>

#include "tessera/export.h"

namespace tessera {

/// Base of every exception Tessera throws.
class TESSERA_API Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// Shapes that do not fit together (broadcasting, matmul, concat, reshape, ...).
class TESSERA_API ShapeError : public Error {
 public:
  using Error::Error;
};

/// A dtype the op does not accept, or a dtype mismatch.
class TESSERA_API DTypeError : public Error {
 public:
  using Error::Error;
};

/// An axis or element index outside its valid range.
class TESSERA_API IndexError : public Error {
 public:
  using Error::Error;
};

/// An invalid argument value (negative size, bad mode, k > n, ...).
class TESSERA_API ValueError : public Error {
 public:
  using Error::Error;
};

/// A host read (item, to_vector, data) of a tensor that is being traced symbolically by
/// compile(): the traced function's behaviour depends on data (compile runs that call eagerly).
class TESSERA_API TraceError : public ValueError {
 public:
  using ValueError::ValueError;
};

/// An allocation the device could not satisfy, or a size overflowing int64.
class TESSERA_API OutOfMemoryError : public Error {
 public:
  using Error::Error;
};

/// A valid request that no registered backend implements.
class TESSERA_API NotImplementedError : public Error {
 public:
  using Error::Error;
};

/// A malformed file or serialized object (checkpoints, model files, data sets).
class TESSERA_API FormatError : public Error {
 public:
  using Error::Error;
};

/// The operating system refused a file operation (open, read, write, fsync, rename, mmap); the
/// message names the path and the system's reason.
class TESSERA_API IOError : public Error {
 public:
  using Error::Error;
};

namespace detail {
TESSERA_API std::string format_message(const char* op, const std::string& what);
}  // namespace detail

/// Throws E with the message "[op] what".
template <typename E>
[[noreturn]] void raise(const char* op, const std::string& what) {
  throw E(detail::format_message(op, what));
}

}  // namespace tessera
