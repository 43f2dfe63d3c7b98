// Primitives: the op ids, typed attribute structs and per-op metadata generated
// from ops.def. Backends and graph passes work at this level; users call ops.h.
#pragma once

#include <array>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <variant>

#include "tessera/device.h"
#include "tessera/dtype.h"
#include "tessera/scalar.h"
#include "tessera/shape.h"
#include "tessera/tensor.h"

namespace tessera {

enum class OpId : uint16_t {
#define TS_OP(id, name, nin, nout, cat, attrs) id,
#include "tessera/ops.def"
#undef TS_OP
};
inline constexpr int kNumOps = 0
#define TS_OP(id, name, nin, nout, cat, attrs) +1
#include "tessera/ops.def"
#undef TS_OP
    ;

enum class OpCategory : uint8_t {
  Creation, Random, Unary, Binary, Ternary, Reduce, Scan, Matmul, View, Movement, Index, Sort, Normalization, Conv, Pool
};

// ----------------------------------------------------------- attribute structs
// Each is a plain value: comparable (graph CSE), printable (IR dumps).
struct NoAttrs {
  friend bool operator==(const NoAttrs&, const NoAttrs&) = default;
};
struct FullAttrs {
  Shape shape;
  Scalar value;
  DType dtype = DType::Float32;
  Device device;
  friend bool operator==(const FullAttrs&, const FullAttrs&) = default;
};
/// Element i is start + i * step (computed in double, or in int64 for integral dtypes).
struct ArangeAttrs {
  Scalar start;
  Scalar step;
  int64_t n = 0;
  DType dtype = DType::Int64;
  Device device;
  friend bool operator==(const ArangeAttrs&, const ArangeAttrs&) = default;
};
/// Uniform: [a, b). Normal: mean a, std b. Draws use Philox with key and counter.
struct RandomAttrs {
  Shape shape;
  DType dtype = DType::Float32;
  uint64_t key = 0;
  uint64_t counter = 0;
  double a = 0.0;
  double b = 1.0;
  Device device;
  friend bool operator==(const RandomAttrs&, const RandomAttrs&) = default;
};
struct CastAttrs {
  DType dtype = DType::Float32;
  friend bool operator==(const CastAttrs&, const CastAttrs&) = default;
};
/// axes: normalized, sorted, unique, non-empty unless the input is 0-d.
struct ReduceAttrs {
  Axes axes;
  bool keepdims = false;
  friend bool operator==(const ReduceAttrs&, const ReduceAttrs&) = default;
};
struct ArgReduceAttrs {
  int64_t axis = 0;  // normalized
  bool keepdims = false;
  friend bool operator==(const ArgReduceAttrs&, const ArgReduceAttrs&) = default;
};
struct AxisAttrs {
  int64_t axis = 0;  // normalized
  friend bool operator==(const AxisAttrs&, const AxisAttrs&) = default;
};
struct AxesAttrs {
  Axes axes;  // normalized
  friend bool operator==(const AxesAttrs&, const AxesAttrs&) = default;
};
struct ShapeAttrs {
  Shape shape;  // fully specified (no -1)
  friend bool operator==(const ShapeAttrs&, const ShapeAttrs&) = default;
};
struct PermuteAttrs {
  Axes perm;
  friend bool operator==(const PermuteAttrs&, const PermuteAttrs&) = default;
};
/// One axis; start/stop already clamped to [0, size], step > 0, so the result has
/// max(0, ceil((stop - start) / step)) elements.
struct SliceAttrs {
  int64_t axis = 0;
  int64_t start = 0;
  int64_t stop = 0;
  int64_t step = 1;
  friend bool operator==(const SliceAttrs&, const SliceAttrs&) = default;
};
struct AsStridedAttrs {
  Shape shape;
  Strides strides;
  int64_t offset = 0;  // absolute, in elements from the start of the storage
  friend bool operator==(const AsStridedAttrs&, const AsStridedAttrs&) = default;
};
/// pads: (before, after) for every axis (2 * ndim values).
struct PadAttrs {
  SmallVector<int64_t, 12> pads;
  uint8_t mode = 0;  // PadMode
  Scalar value;
  friend bool operator==(const PadAttrs&, const PadAttrs&) = default;
};
struct SortAttrs {
  int64_t axis = 0;
  bool descending = false;
  friend bool operator==(const SortAttrs&, const SortAttrs&) = default;
};
struct TopKAttrs {
  int64_t k = 1;
  int64_t axis = 0;
  bool largest = true;
  friend bool operator==(const TopKAttrs&, const TopKAttrs&) = default;
};
/// Normalization over the trailing normalized_ndim axes. Inputs: x, then optionally
/// weight (and bias) shaped like those trailing axes; has_weight/has_bias say which.
struct NormAttrs {
  int64_t normalized_ndim = 1;
  double eps = 1e-5;
  bool has_weight = false;
  bool has_bias = false;
  friend bool operator==(const NormAttrs&, const NormAttrs&) = default;
};
struct ConvAttrs {
  std::array<int64_t, 2> stride{1, 1};
  std::array<int64_t, 2> padding{0, 0};
  std::array<int64_t, 2> dilation{1, 1};
  std::array<int64_t, 2> output_padding{0, 0};  // transposed convolution only
  int64_t groups = 1;
  friend bool operator==(const ConvAttrs&, const ConvAttrs&) = default;
};
/// Windows may hang over the padded input only as ceil_mode allows (PyTorch's rule: the last window
/// must start inside the input or left padding).
struct PoolAttrs {
  std::array<int64_t, 2> kernel{1, 1};
  std::array<int64_t, 2> stride{1, 1};
  std::array<int64_t, 2> padding{0, 0};
  bool ceil_mode = false;
  bool count_include_pad = true;
  friend bool operator==(const PoolAttrs&, const PoolAttrs&) = default;
};
/// Where a matmul may skip work because of triangular structure over its last two axes (set by
/// graph mode's mark_triangular_matmuls, src/graph/causal.cpp; eager products are Dense). A kernel
/// may always compute the dense product instead: every structure only permits skipping.
///   LowerA       A[..., i, p] == 0 for p > i (m == k): row i sums over p <= i only.
///   UpperA       A[..., i, p] == 0 for p < i (m == k): row i sums over p >= i only.
///   LowerResult  only C[..., i, j] with j <= i is read (m == n); the rest may be written as 0.
enum class MatmulStructure : uint8_t { Dense, LowerA, UpperA, LowerResult };
struct MatmulAttrs {
  MatmulStructure structure = MatmulStructure::Dense;
  friend bool operator==(const MatmulAttrs&, const MatmulAttrs&) = default;
};
struct AdaptivePoolAttrs {
  std::array<int64_t, 2> output_size{1, 1};
  friend bool operator==(const AdaptivePoolAttrs&, const AdaptivePoolAttrs&) = default;
};

using Attrs = std::variant<NoAttrs, FullAttrs, ArangeAttrs, RandomAttrs, CastAttrs, ReduceAttrs, ArgReduceAttrs,
                           AxisAttrs, AxesAttrs, ShapeAttrs, PermuteAttrs, SliceAttrs, AsStridedAttrs, PadAttrs,
                           SortAttrs, TopKAttrs, NormAttrs, ConvAttrs, PoolAttrs, AdaptivePoolAttrs, MatmulAttrs>;

/// Readable form of attributes for IR dumps, e.g. "axes=[1], keepdims=true".
TESSERA_API std::string attrs_str(const Attrs& a);

// ------------------------------------------------------------ op metadata
struct TensorMeta {
  Shape shape;
  DType dtype = DType::Float32;
};
/// Output metadata of one op (at most two outputs).
struct MetaList {
  std::array<TensorMeta, 2> m;
  int n = 1;
};

/// Shape and dtype inference: validates the inputs and attributes (throwing typed errors naming the op)
/// and fills the output metadata. Needs no data, so graph mode can run it on traced tensors.
using InferFn = void (*)(std::span<const Tensor> in, const Attrs& attrs, MetaList& out);

struct OpInfo {
  OpId id;
  const char* name;
  int num_inputs;   // -1: variadic
  int num_outputs;
  OpCategory category;
  InferFn infer;
};

TESSERA_API const OpInfo& op_info(OpId op);
inline const char* op_name(OpId op) { return op_info(op).name; }

}  // namespace tessera
