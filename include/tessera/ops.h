// Tensor operations. NumPy/PyTorch names; every function validates its
// arguments and throws a typed error (error.h) whose message starts with the
// op name and names the shapes/dtypes involved.
//
// Conventions used below:
//  - "broadcast" means NumPy broadcasting of the input shapes.
//  - Binary ops promote dtypes with promote_types (dtype.h); scalars are weak.
//  - Integer arithmetic wraps on overflow (two's complement), like NumPy and PyTorch.
//  - Ops marked "float" compute in a floating type: integral and bool inputs
//    are first cast to float32.
//  - Axes may be negative (counted from the end). An out-of-range axis throws
//    IndexError.
//  - Views (reshape of contiguous data, permute, slice, expand, squeeze,
//    unsqueeze, as_strided) share storage with their input.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <span>
#include <tuple>
#include <vector>

#include "tessera/random.h"
#include "tessera/tensor.h"

namespace tessera {

// ---------------------------------------------------------------- creation
/// A tensor copied from host memory holding numel(shape) values of type dtype.
TESSERA_API Tensor from_blob(const void* data, IntList shape, DType dtype, Device device = default_device());
/// A tensor from a vector of values (dtype deduced from T).
template <typename T>
Tensor tensor(const std::vector<T>& values, IntList shape, Device device = default_device()) {
  if constexpr (std::is_same_v<T, bool>) {
    std::vector<uint8_t> bytes(values.begin(), values.end());
    return from_blob(bytes.data(), shape, DType::Bool, device);
  } else {
    return from_blob(values.data(), shape, dtype_v<T>, device);
  }
}
template <typename T>
Tensor tensor(const std::vector<T>& values) {
  int64_t n = static_cast<int64_t>(values.size());
  return tensor(values, IntList(&n, 1), default_device());
}
/// A 0-d tensor holding value, of dtype (default: the scalar's default dtype).
TESSERA_API Tensor scalar_tensor(Scalar value, std::optional<DType> dtype = std::nullopt, Device device = default_device());
TESSERA_API Tensor full(IntList shape, Scalar value, std::optional<DType> dtype = std::nullopt, Device device = default_device());
TESSERA_API Tensor zeros(IntList shape, DType dtype = DType::Float32, Device device = default_device());
TESSERA_API Tensor ones(IntList shape, DType dtype = DType::Float32, Device device = default_device());
TESSERA_API Tensor zeros_like(const Tensor& t);
TESSERA_API Tensor ones_like(const Tensor& t);
TESSERA_API Tensor full_like(const Tensor& t, Scalar value);
/// An uninitialized contiguous tensor.
TESSERA_API Tensor empty(IntList shape, DType dtype = DType::Float32, Device device = default_device());
/// [start, stop) with step; dtype int64 when all arguments are integers, else float32.
TESSERA_API Tensor arange(Scalar start, Scalar stop, Scalar step = 1, std::optional<DType> dtype = std::nullopt,
                          Device device = default_device());
TESSERA_API Tensor arange(Scalar stop, std::optional<DType> dtype = std::nullopt, Device device = default_device());
/// num evenly spaced values from start to stop inclusive (float32 unless told).
TESSERA_API Tensor linspace(double start, double stop, int64_t num, DType dtype = DType::Float32, Device device = default_device());
/// n x m identity (m = n when omitted).
TESSERA_API Tensor eye(int64_t n, std::optional<int64_t> m = std::nullopt, DType dtype = DType::Float32, Device device = default_device());

// ------------------------------------------------------------------ random
/// Uniform in [low, high). Float dtypes only.
TESSERA_API Tensor rand(IntList shape, Generator& gen, DType dtype = DType::Float32, double low = 0.0, double high = 1.0,
                        Device device = default_device());
TESSERA_API Tensor uniform(IntList shape, double low, double high, Generator& gen, DType dtype = DType::Float32,
                           Device device = default_device());
/// Normal with mean and std. Float dtypes only.
TESSERA_API Tensor randn(IntList shape, Generator& gen, DType dtype = DType::Float32, double mean = 0.0, double std = 1.0,
                         Device device = default_device());
TESSERA_API Tensor normal(IntList shape, double mean, double std, Generator& gen, DType dtype = DType::Float32,
                          Device device = default_device());
/// Bool tensor: true with probability p (p in [0, 1], else ValueError).
TESSERA_API Tensor bernoulli(IntList shape, double p, Generator& gen, Device device = default_device());
/// Zeroes each element with probability p and scales the rest by 1/(1-p) when train is true;
/// identity otherwise. p in [0, 1).
TESSERA_API Tensor dropout(const Tensor& x, double p, Generator& gen, bool train = true);

// ------------------------------------------------------- elementwise unary
// Same shape as the input. neg/abs/sign keep integral dtypes; logical_not gives bool;
// floor/ceil/round keep the dtype (identity on integers); the rest are "float".
TESSERA_API Tensor neg(const Tensor& x);
TESSERA_API Tensor abs(const Tensor& x);
TESSERA_API Tensor sign(const Tensor& x);
TESSERA_API Tensor exp(const Tensor& x);
TESSERA_API Tensor expm1(const Tensor& x);
TESSERA_API Tensor log(const Tensor& x);
TESSERA_API Tensor log1p(const Tensor& x);
TESSERA_API Tensor sqrt(const Tensor& x);
TESSERA_API Tensor rsqrt(const Tensor& x);
TESSERA_API Tensor sin(const Tensor& x);
TESSERA_API Tensor cos(const Tensor& x);
TESSERA_API Tensor tan(const Tensor& x);
TESSERA_API Tensor tanh(const Tensor& x);
TESSERA_API Tensor sigmoid(const Tensor& x);
TESSERA_API Tensor erf(const Tensor& x);
/// max(x, 0); keeps integral dtypes.
TESSERA_API Tensor relu(const Tensor& x);
/// x * Phi(x); approximate=true uses the tanh form 0.5x(1+tanh(sqrt(2/pi)(x+0.044715x^3))).
TESSERA_API Tensor gelu(const Tensor& x, bool approximate = false);
/// x * sigmoid(x)
TESSERA_API Tensor silu(const Tensor& x);
/// log(1 + exp(x)), computed stably.
TESSERA_API Tensor softplus(const Tensor& x);
TESSERA_API Tensor floor(const Tensor& x);
TESSERA_API Tensor ceil(const Tensor& x);
/// Rounds half to even (like NumPy and PyTorch).
TESSERA_API Tensor round(const Tensor& x);
TESSERA_API Tensor logical_not(const Tensor& x);
/// Elementwise conversion. Float to integer truncates toward zero through int64 (saturating at the
/// int64 range, NaN -> 0); integer to a narrower integer wraps (two's complement), like NumPy;
/// anything to bool is `!= 0`; float to a narrower float rounds to nearest even.
TESSERA_API Tensor cast(const Tensor& x, DType dtype);

// ------------------------------------------------------ elementwise binary
// Broadcast; result dtype promote_types(a, b) except where stated.
TESSERA_API Tensor add(const Tensor& a, const Tensor& b);
TESSERA_API Tensor sub(const Tensor& a, const Tensor& b);
TESSERA_API Tensor mul(const Tensor& a, const Tensor& b);
/// True division: integral inputs give float32.
TESSERA_API Tensor div(const Tensor& a, const Tensor& b);
/// a^b; integral inputs give float32 unless both are integral (then integral, negative exponents give 0
/// except for bases 1 and -1).
TESSERA_API Tensor pow(const Tensor& a, const Tensor& b);
/// NaN-propagating, like PyTorch.
TESSERA_API Tensor maximum(const Tensor& a, const Tensor& b);
TESSERA_API Tensor minimum(const Tensor& a, const Tensor& b);
/// "float"
TESSERA_API Tensor atan2(const Tensor& a, const Tensor& b);
/// Python-style modulo: result has the sign of b. Integer division by zero throws ValueError.
TESSERA_API Tensor remainder(const Tensor& a, const Tensor& b);
// Comparisons give bool.
TESSERA_API Tensor eq(const Tensor& a, const Tensor& b);
TESSERA_API Tensor ne(const Tensor& a, const Tensor& b);
TESSERA_API Tensor lt(const Tensor& a, const Tensor& b);
TESSERA_API Tensor le(const Tensor& a, const Tensor& b);
TESSERA_API Tensor gt(const Tensor& a, const Tensor& b);
TESSERA_API Tensor ge(const Tensor& a, const Tensor& b);
// Logical ops treat nonzero as true and give bool.
TESSERA_API Tensor logical_and(const Tensor& a, const Tensor& b);
TESSERA_API Tensor logical_or(const Tensor& a, const Tensor& b);
TESSERA_API Tensor logical_xor(const Tensor& a, const Tensor& b);
// Scalar overloads (weak scalars).
TESSERA_API Tensor add(const Tensor& a, Scalar b);
TESSERA_API Tensor sub(const Tensor& a, Scalar b);
TESSERA_API Tensor mul(const Tensor& a, Scalar b);
TESSERA_API Tensor div(const Tensor& a, Scalar b);
TESSERA_API Tensor pow(const Tensor& a, Scalar b);
TESSERA_API Tensor maximum(const Tensor& a, Scalar b);
TESSERA_API Tensor minimum(const Tensor& a, Scalar b);
TESSERA_API Tensor remainder(const Tensor& a, Scalar b);
TESSERA_API Tensor eq(const Tensor& a, Scalar b);
TESSERA_API Tensor ne(const Tensor& a, Scalar b);
TESSERA_API Tensor lt(const Tensor& a, Scalar b);
TESSERA_API Tensor le(const Tensor& a, Scalar b);
TESSERA_API Tensor gt(const Tensor& a, Scalar b);
TESSERA_API Tensor ge(const Tensor& a, Scalar b);

/// cond ? a : b, broadcast over all three; cond is cast to bool; result promote_types(a, b).
TESSERA_API Tensor where(const Tensor& cond, const Tensor& a, const Tensor& b);
TESSERA_API Tensor where(const Tensor& cond, const Tensor& a, Scalar b);
TESSERA_API Tensor where(const Tensor& cond, Scalar a, const Tensor& b);
/// min(max(x, lo), hi); either bound may be absent. lo > hi gives hi (like PyTorch).
TESSERA_API Tensor clamp(const Tensor& x, std::optional<Scalar> lo, std::optional<Scalar> hi);
TESSERA_API Tensor clamp(const Tensor& x, const Tensor& lo, const Tensor& hi);

// -------------------------------------------------------------- reductions
// axes: empty = all axes. keepdims keeps reduced axes with size 1.
// Reducing an empty axis: sum 0, prod 1, any false, all true, mean NaN; max/min/argmax/argmin throw ValueError.
/// Integral and bool inputs sum in int64 (like PyTorch); float16/bfloat16 accumulate in float32.
TESSERA_API Tensor sum(const Tensor& x, IntList axes = {}, bool keepdims = false);
/// "float"
TESSERA_API Tensor mean(const Tensor& x, IntList axes = {}, bool keepdims = false);
TESSERA_API Tensor prod(const Tensor& x, IntList axes = {}, bool keepdims = false);
TESSERA_API Tensor max(const Tensor& x, IntList axes = {}, bool keepdims = false);
TESSERA_API Tensor min(const Tensor& x, IntList axes = {}, bool keepdims = false);
/// Index (int64) of the first maximum along axis; nullopt = over the flattened tensor.
TESSERA_API Tensor argmax(const Tensor& x, std::optional<int64_t> axis = std::nullopt, bool keepdims = false);
TESSERA_API Tensor argmin(const Tensor& x, std::optional<int64_t> axis = std::nullopt, bool keepdims = false);
/// Variance with Bessel-style correction (divides by N - correction). "float"
TESSERA_API Tensor var(const Tensor& x, IntList axes = {}, int64_t correction = 1, bool keepdims = false);
TESSERA_API Tensor std(const Tensor& x, IntList axes = {}, int64_t correction = 1, bool keepdims = false);
/// log(sum(exp(x))) computed stably. "float"
TESSERA_API Tensor logsumexp(const Tensor& x, IntList axes = {}, bool keepdims = false);
TESSERA_API Tensor any(const Tensor& x, IntList axes = {}, bool keepdims = false);
TESSERA_API Tensor all(const Tensor& x, IntList axes = {}, bool keepdims = false);
/// Inclusive prefix sum along axis; dtype as sum.
TESSERA_API Tensor cumsum(const Tensor& x, int64_t axis);

// ------------------------------------------------------------------ linalg
/// Matrix product with NumPy semantics: 1-d operands are promoted to matrices and the added axis removed;
/// batch axes broadcast. [.., m, k] x [.., k, n] -> [.., m, n]. Dtypes promote; k = 0 gives zeros.
/// Integer products wrap around in the result dtype (like an accumulator of that width); bool is
/// logical (out = any(a and b)). float16/bfloat16 accumulate in float32.
/// Throws ShapeError ("[matmul] cannot multiply [2,3] by [4,5]") for mismatched inner or batch axes
/// and for 0-d operands.
TESSERA_API Tensor matmul(const Tensor& a, const Tensor& b);

// --------------------------------------------------------------- movement
/// New shape with the same numel; one entry may be -1. A view when the strides allow, else a copy.
TESSERA_API Tensor reshape(const Tensor& x, IntList shape);
TESSERA_API Tensor flatten(const Tensor& x, int64_t start_axis = 0, int64_t end_axis = -1);
/// Reorders axes (a view). perm must be a permutation of 0..ndim-1.
TESSERA_API Tensor permute(const Tensor& x, IntList perm);
TESSERA_API Tensor transpose(const Tensor& x, int64_t a, int64_t b);
/// Removes the given size-1 axes (all size-1 axes when empty). Size != 1 throws ShapeError.
TESSERA_API Tensor squeeze(const Tensor& x, IntList axes = {});
/// Inserts a size-1 axis at position axis of the result.
TESSERA_API Tensor unsqueeze(const Tensor& x, int64_t axis);
/// Broadcasts to shape (a view with zero strides).
TESSERA_API Tensor expand(const Tensor& x, IntList shape);
TESSERA_API Tensor broadcast_to(const Tensor& x, IntList shape);
/// Python-style slice of one axis: start/stop clamp to the axis, negative values count from the end,
/// step > 0 (a view).
TESSERA_API Tensor slice(const Tensor& x, int64_t axis, std::optional<int64_t> start, std::optional<int64_t> stop,
                         int64_t step = 1);
/// Element i of axis, removing the axis (a view).
TESSERA_API Tensor select(const Tensor& x, int64_t axis, int64_t index);
/// A view with explicit shape, strides and offset (elements); checked against the storage size.
TESSERA_API Tensor as_strided(const Tensor& x, IntList shape, IntList strides, int64_t offset);
/// A contiguous copy (or x itself when already contiguous).
TESSERA_API Tensor contiguous(const Tensor& x);
/// Joins along an existing axis; dtypes promote. Inputs need one rank (not 0-d) and equal sizes outside
/// axis (ShapeError naming the shapes); inputs empty along axis are allowed.
TESSERA_API Tensor concat(const std::vector<Tensor>& xs, int64_t axis = 0);
/// Joins along a new axis; all shapes must match.
TESSERA_API Tensor stack(const std::vector<Tensor>& xs, int64_t axis = 0);
/// Splits into views of the given sizes (non-negative, adding up to the axis size; ValueError otherwise).
TESSERA_API std::vector<Tensor> split(const Tensor& x, IntList sizes, int64_t axis = 0);
/// Splits into views of size `size` > 0 (the last may be smaller).
TESSERA_API std::vector<Tensor> split(const Tensor& x, int64_t size, int64_t axis = 0);
/// split(x, ceil(size / chunks)), so fewer than `chunks` pieces may come back (like PyTorch).
TESSERA_API std::vector<Tensor> chunk(const Tensor& x, int64_t chunks, int64_t axis = 0);

enum class PadMode : uint8_t { Constant, Reflect, Edge };
/// pads holds (before, after) pairs starting from the FIRST axis (NumPy order); fewer pairs than axes
/// leave the trailing axes unpadded. Reflect needs pad < size of the axis; Edge needs a non-empty axis;
/// negative pads are refused (ValueError for all three; use slice to crop). value is cast to x's dtype.
TESSERA_API Tensor pad(const Tensor& x, IntList pads, PadMode mode = PadMode::Constant, Scalar value = 0);
TESSERA_API Tensor flip(const Tensor& x, IntList axes);
/// Circular shift along axis (all elements of the flattened tensor when axis is nullopt).
TESSERA_API Tensor roll(const Tensor& x, int64_t shift, std::optional<int64_t> axis = std::nullopt);
/// Repeats the whole tensor reps[i] times along axis i (reps may be longer than ndim, like NumPy; reps >= 0).
TESSERA_API Tensor tile(const Tensor& x, IntList reps);
/// Repeats each element `repeats` times along axis (flattened when nullopt).
TESSERA_API Tensor repeat_interleave(const Tensor& x, int64_t repeats, std::optional<int64_t> axis = std::nullopt);
/// Per-element repeat counts (1-d int32/int64 tensor of the axis size, or of one element for all).
TESSERA_API Tensor repeat_interleave(const Tensor& x, const Tensor& repeats, int64_t axis);

// ------------------------------------------------------------------ index
// Index tensors are int32 or int64 (else DTypeError); negative indices count from the end; out-of-range ones
// throw IndexError ("[gather] index 7 is out of range for axis 1 of size 5"). A 0-d x acts as shape [1].
/// out[i][j][k] = x[index[i][j][k]][j][k] for axis 0 (and so on); index has x's rank and its shape,
/// except along axis, is broadcast-free and must not exceed x's.
TESSERA_API Tensor gather(const Tensor& x, int64_t axis, const Tensor& index);
/// NumPy take_along_axis: like gather, but index broadcasts against x on the other axes.
TESSERA_API Tensor take_along_axis(const Tensor& x, const Tensor& index, int64_t axis);
/// A copy of x with x[index[i][j]][j] = src[i][j] (axis 0); with duplicate indices the last write wins.
/// index has x's rank, is no larger than src on any axis and than x outside axis; src is cast to x's
/// dtype, and a 0-d src is written at every index position.
TESSERA_API Tensor scatter(const Tensor& x, int64_t axis, const Tensor& index, const Tensor& src);
/// Like scatter but adds: duplicates accumulate in index order (deterministic); integers wrap, bool ORs,
/// float16/bfloat16 accumulate in float32.
TESSERA_API Tensor scatter_add(const Tensor& x, int64_t axis, const Tensor& index, const Tensor& src);
/// Selects entries of axis by a 1-d index tensor (a 0-d index selects one entry, keeping the axis).
TESSERA_API Tensor index_select(const Tensor& x, int64_t axis, const Tensor& index);
/// Rows of weight [num, dim] for integer indices of any shape -> [..., dim].
TESSERA_API Tensor embedding(const Tensor& weight, const Tensor& indices);
/// [.., num_classes] with 1 at each index (int64 output unless told). Indices must lie in
/// [0, num_classes) (IndexError otherwise).
TESSERA_API Tensor one_hot(const Tensor& indices, int64_t num_classes, DType dtype = DType::Int64);

// ------------------------------------------------------------------- sort
/// Sorted values and int64 indices along axis; stable. NaNs sort last (ascending) / first (descending).
TESSERA_API std::tuple<Tensor, Tensor> sort(const Tensor& x, int64_t axis = -1, bool descending = false);
TESSERA_API Tensor argsort(const Tensor& x, int64_t axis = -1, bool descending = false);
/// The k largest (or smallest) values and their indices along axis, in sorted order.
TESSERA_API std::tuple<Tensor, Tensor> topk(const Tensor& x, int64_t k, int64_t axis = -1, bool largest = true);

// -------------------------------------------------------------- nn ops
/// exp(x - max) / sum, along axis (a 0-d tensor is one row of one element). "float"; same shape.
/// Stable for any magnitude; a row of -inf (or containing NaN or +inf) gives NaN, like PyTorch.
/// Out-of-range axis: IndexError.
TESSERA_API Tensor softmax(const Tensor& x, int64_t axis = -1);
/// (x - max) - log(sum(exp(x - max))), along axis; same rules as softmax.
TESSERA_API Tensor log_softmax(const Tensor& x, int64_t axis = -1);

struct Conv2dOptions {
  std::array<int64_t, 2> stride{1, 1};
  std::array<int64_t, 2> padding{0, 0};
  std::array<int64_t, 2> dilation{1, 1};
  int64_t groups = 1;
};
/// x [N, C, H, W] (or unbatched [C, H, W]), weight [O, C/groups, kH, kW], optional bias [O] -> [N, O, H', W']
/// with H' = (H + 2*padding - dilation*(kH-1) - 1) / stride + 1 (PyTorch semantics, cross-correlation).
/// Floating dtypes only (promoted; integer or bool inputs throw DTypeError). Mismatched channels,
/// groups not dividing the channels, or an input smaller than the dilated kernel throw ShapeError.
TESSERA_API Tensor conv2d(const Tensor& x, const Tensor& weight, const Tensor& bias = {}, const Conv2dOptions& opt = {});
struct Conv1dOptions {
  int64_t stride = 1, padding = 0, dilation = 1, groups = 1;
};
/// x [N, C, L], weight [O, C/groups, k] -> [N, O, L'].
TESSERA_API Tensor conv1d(const Tensor& x, const Tensor& weight, const Tensor& bias = {}, const Conv1dOptions& opt = {});
struct ConvTranspose2dOptions {
  std::array<int64_t, 2> stride{1, 1};
  std::array<int64_t, 2> padding{0, 0};
  std::array<int64_t, 2> output_padding{0, 0};
  std::array<int64_t, 2> dilation{1, 1};
  int64_t groups = 1;
};
/// x [N, C, H, W], weight [C, O/groups, kH, kW] -> [N, O, H', W'] with
/// H' = (H-1)*stride - 2*padding + dilation*(kH-1) + output_padding + 1 (PyTorch semantics).
TESSERA_API Tensor conv_transpose2d(const Tensor& x, const Tensor& weight, const Tensor& bias = {},
                                    const ConvTranspose2dOptions& opt = {});

struct Pool2dOptions {
  std::array<int64_t, 2> kernel{2, 2};
  std::optional<std::array<int64_t, 2>> stride;  // default: kernel
  std::array<int64_t, 2> padding{0, 0};
  bool ceil_mode = false;
  bool count_include_pad = true;  // avg pooling only
};
/// x [N, C, H, W] (or [C, H, W]). PyTorch's rules: padding must be at most kernel/2 (else ValueError);
/// output size floor((H + 2p - k) / s) + 1, or ceil with ceil_mode, where the last window must start
/// inside the input or the left padding. Max pooling keeps the dtype and propagates NaN; average
/// pooling is "float" and divides by the window clipped to the padded input (count_include_pad) or
/// to the input.
TESSERA_API Tensor max_pool2d(const Tensor& x, const Pool2dOptions& opt);
TESSERA_API Tensor avg_pool2d(const Tensor& x, const Pool2dOptions& opt);
/// Where max_pool2d takes each output from (PyTorch's return_indices): int64, shaped like max_pool2d's
/// output, holding h * W + w within the input's [H, W] plane. Ties go to the first position in row-major
/// window order; a NaN in the window wins (the last one). Same arguments and errors as max_pool2d.
TESSERA_API Tensor max_pool2d_indices(const Tensor& x, const Pool2dOptions& opt);
struct Pool1dOptions {
  int64_t kernel = 2;
  std::optional<int64_t> stride;
  int64_t padding = 0;
  bool ceil_mode = false;
  bool count_include_pad = true;
};
/// x [N, C, L] (or [C, L]).
TESSERA_API Tensor max_pool1d(const Tensor& x, const Pool1dOptions& opt);
TESSERA_API Tensor avg_pool1d(const Tensor& x, const Pool1dOptions& opt);
/// Averages over windows that split H and W into output_size bins (PyTorch's start/end rule:
/// [floor(i*H/out), ceil((i+1)*H/out))). x [N, C, H, W] or [C, H, W]; "float".
TESSERA_API Tensor adaptive_avg_pool2d(const Tensor& x, std::array<int64_t, 2> output_size);

/// (x - mean) * rsqrt(var + eps) * weight + bias, with the (biased) mean and variance over the trailing
/// axes given by normalized_shape; weight/bias of exactly that shape are optional and cast to x's dtype.
/// "float"; same shape as x. ShapeError when normalized_shape is not x's trailing shape (or a parameter
/// does not have it), ValueError for an empty normalized_shape or a negative or non-finite eps.
TESSERA_API Tensor layer_norm(const Tensor& x, IntList normalized_shape, const Tensor& weight = {},
                              const Tensor& bias = {}, double eps = 1e-5);
/// x * rsqrt(mean(x^2) + eps) * weight over the trailing axes of normalized_shape; rules as layer_norm.
TESSERA_API Tensor rms_norm(const Tensor& x, IntList normalized_shape, const Tensor& weight = {}, double eps = 1e-6);
/// Inference-form batch norm over axis 1 of x [N, C, ...] with running statistics of shape [C]:
/// (x - mean) * rsqrt(var + eps) * weight + bias, computed as x * scale + shift per channel (PyTorch's
/// CPU form). weight/bias optional, of shape [C]. "float". ShapeError for x of rank < 2 or statistics
/// and parameters not of shape [C]; ValueError for a negative or non-finite eps.
TESSERA_API Tensor batch_norm(const Tensor& x, const Tensor& running_mean, const Tensor& running_var,
                              const Tensor& weight = {}, const Tensor& bias = {}, double eps = 1e-5);

// ------------------------------------------------------------- operators
TESSERA_API Tensor operator-(const Tensor& a);
TESSERA_API Tensor operator+(const Tensor& a, const Tensor& b);
TESSERA_API Tensor operator-(const Tensor& a, const Tensor& b);
TESSERA_API Tensor operator*(const Tensor& a, const Tensor& b);
TESSERA_API Tensor operator/(const Tensor& a, const Tensor& b);
TESSERA_API Tensor operator+(const Tensor& a, Scalar b);
TESSERA_API Tensor operator-(const Tensor& a, Scalar b);
TESSERA_API Tensor operator*(const Tensor& a, Scalar b);
TESSERA_API Tensor operator/(const Tensor& a, Scalar b);
TESSERA_API Tensor operator+(Scalar a, const Tensor& b);
TESSERA_API Tensor operator-(Scalar a, const Tensor& b);
TESSERA_API Tensor operator*(Scalar a, const Tensor& b);
TESSERA_API Tensor operator/(Scalar a, const Tensor& b);
TESSERA_API Tensor operator==(const Tensor& a, const Tensor& b);
TESSERA_API Tensor operator!=(const Tensor& a, const Tensor& b);
TESSERA_API Tensor operator<(const Tensor& a, const Tensor& b);
TESSERA_API Tensor operator<=(const Tensor& a, const Tensor& b);
TESSERA_API Tensor operator>(const Tensor& a, const Tensor& b);
TESSERA_API Tensor operator>=(const Tensor& a, const Tensor& b);

/// True when shapes match and every element is within atol + rtol*|b| (NaNs equal when equal_nan).
TESSERA_API bool allclose(const Tensor& a, const Tensor& b, double rtol = 1e-5, double atol = 1e-8, bool equal_nan = false);
/// Same shape, dtype and values.
TESSERA_API bool equal(const Tensor& a, const Tensor& b);

}  // namespace tessera
