// The op-conformance harness shared by every op test.
//
// How to test an op with it:
//   1. Write a naive float64 reference over `Ref` values (the row-major data of the
//      inputs, converted to double) — independent of Tessera's kernels.
//   2. Build inputs with make_input() in every Layout (contiguous, transposed, sliced,
//      expanded) and every dtype the op accepts, over the shape lists below (which
//      include empty tensors, size-1 axes and broadcasting pairs).
//   3. Compare with expect_close(got, want, dtype), which applies per-dtype tolerances.
// Inputs are random but seeded, so a failure reproduces.
#pragma once

#include <gtest/gtest.h>

#include <functional>
#include <string>
#include <vector>

#include "tessera/tessera.h"

namespace tessera::testing {

/// Host-side reference data: shape plus row-major float64 values.
struct Ref {
  Shape shape;
  std::vector<double> v;
  int64_t numel() const { return static_cast<int64_t>(v.size()); }
  /// Strides (in elements) of the row-major layout.
  Strides strides() const { return contiguous_strides(shape); }
  double at(std::span<const int64_t> idx) const;
};

/// The values of t (any layout, any dtype) as a Ref.
Ref to_ref(const Tensor& t);
/// A float64 tensor holding r (for building expected results as tensors).
Tensor from_ref(const Ref& r, DType dtype = DType::Float64);

/// How an input's memory is laid out. Values do not depend on the layout.
enum class Layout { Contiguous, Transposed, Sliced, Expanded, Offset };
std::string layout_name(Layout l);
const std::vector<Layout>& all_layouts();

const std::vector<DType>& all_dtypes();
const std::vector<DType>& float_dtypes();
const std::vector<DType>& numeric_dtypes();   // all but bool
const std::vector<DType>& integral_dtypes();  // uint8, int8, int32, int64

/// A random tensor of the given shape, dtype and layout. Floats are uniform in [lo, hi);
/// integers uniform in [lo, hi] rounded (clamped to the dtype's range); bool is a coin flip.
/// Expanded layout repeats values along the first axis of size > 1 (a real stride-0 view).
Tensor make_input(IntList shape, DType dtype, Layout layout, uint64_t seed, double lo = -2.0, double hi = 2.0);

/// Absolute and relative tolerance for results computed in dtype (float64: 1e-12; float32: 1e-5;
/// float16: 2e-3 relative; bfloat16: 1.6e-2 relative; integers/bool: exact). `scale` multiplies them.
struct Tol {
  double atol, rtol;
};
Tol tolerance(DType dtype, double scale = 1.0);

/// Checks shape, then every element within tolerance (NaN matches NaN, infinities match exactly).
/// The reference is rounded to dtype first, so rounding of the output type is not counted as error.
::testing::AssertionResult close_to(const Tensor& got, const Ref& want, DType dtype, double tol_scale = 1.0);
#define EXPECT_CLOSE(got, want, dtype) EXPECT_TRUE(::tessera::testing::close_to(got, want, dtype))
#define EXPECT_CLOSE_TOL(got, want, dtype, scale) EXPECT_TRUE(::tessera::testing::close_to(got, want, dtype, scale))

/// The value v as stored in dtype, as a double: floats round to nearest even; integers truncate toward
/// zero, saturate at the int64 range and wrap to their width (two's complement); bool is v != 0.
double round_to(double v, DType dtype);

/// Shapes for unary ops: scalar, empty, size-1 axes, vectors, matrices, rank 3 and 4.
const std::vector<Shape>& unary_shapes();
/// Pairs of broadcast-compatible shapes, including empty and 0-d ones.
const std::vector<std::pair<Shape, Shape>>& broadcast_pairs();
/// Reference broadcast: index into a Ref of shape `from` for a multi-index of shape `to`.
int64_t broadcast_index(const Shape& from, const Shape& to, std::span<const int64_t> idx);
/// Calls fn(multi_index, linear_index) for every element of shape in row-major order.
void for_each_index(const Shape& shape, const std::function<void(std::span<const int64_t>, int64_t)>& fn);

/// Expects that calling fn throws E whose message contains every fragment (e.g. the op name
/// in brackets and the shapes).
template <typename E, typename Fn>
void expect_error(Fn&& fn, std::initializer_list<std::string> fragments) {
  try {
    fn();
    ADD_FAILURE() << "expected an exception, none was thrown";
  } catch (const E& e) {
    std::string msg = e.what();
    for (const auto& f : fragments) EXPECT_NE(msg.find(f), std::string::npos) << "message '" << msg << "' lacks '" << f << "'";
  } catch (const std::exception& e) {
    ADD_FAILURE() << "threw the wrong exception type: " << e.what();
  }
}

}  // namespace tessera::testing
