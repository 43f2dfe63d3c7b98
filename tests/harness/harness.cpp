#include "harness/harness.h"

#include <cmath>
#include <limits>
#include <sstream>

namespace tessera::testing {

double Ref::at(std::span<const int64_t> idx) const {
  Strides st = strides();
  int64_t off = 0;
  for (size_t i = 0; i < idx.size(); ++i) off += idx[i] * st[i];
  return v[static_cast<size_t>(off)];
}

Ref to_ref(const Tensor& t) { return Ref{t.shape(), t.to_vector<double>()}; }

Tensor from_ref(const Ref& r, DType dtype) {
  Tensor t = tensor(r.v, r.shape);
  return dtype == DType::Float64 ? t : cast(t, dtype);
}

std::string layout_name(Layout l) {
  switch (l) {
    case Layout::Contiguous: return "contiguous";
    case Layout::Transposed: return "transposed";
    case Layout::Sliced: return "sliced";
    case Layout::Expanded: return "expanded";
    case Layout::Offset: return "offset";
  }
  return "?";
}

const std::vector<Layout>& all_layouts() {
  static const std::vector<Layout> v{Layout::Contiguous, Layout::Transposed, Layout::Sliced, Layout::Expanded, Layout::Offset};
  return v;
}
const std::vector<DType>& all_dtypes() {
  static const std::vector<DType> v{DType::Bool,    DType::UInt8,    DType::Int8,    DType::Int32,  DType::Int64,
                                    DType::Float16, DType::BFloat16, DType::Float32, DType::Float64};
  return v;
}
const std::vector<DType>& float_dtypes() {
  static const std::vector<DType> v{DType::Float16, DType::BFloat16, DType::Float32, DType::Float64};
  return v;
}
const std::vector<DType>& numeric_dtypes() {
  static const std::vector<DType> v{DType::UInt8,   DType::Int8,     DType::Int32,   DType::Int64,
                                    DType::Float16, DType::BFloat16, DType::Float32, DType::Float64};
  return v;
}
const std::vector<DType>& integral_dtypes() {
  static const std::vector<DType> v{DType::UInt8, DType::Int8, DType::Int32, DType::Int64};
  return v;
}

double round_to(double v, DType dtype) {
  switch (dtype) {
    case DType::Bool: return v != 0 ? 1.0 : 0.0;
    case DType::Float16: return static_cast<float>(Half(static_cast<float>(v)));
    case DType::BFloat16: return static_cast<float>(BFloat16(static_cast<float>(v)));
    case DType::Float32: return static_cast<float>(v);
    case DType::Float64: return v;
    default: break;
  }
  // Integers: truncate, saturate at the int64 range (NaN -> 0), then wrap to the width (two's complement).
  if (std::isnan(v)) return 0;
  double t = std::trunc(v);
  int64_t i = t >= 9.2233720368547758e18 ? INT64_MAX : (t <= -9.2233720368547758e18 ? INT64_MIN : static_cast<int64_t>(t));
  switch (dtype) {
    case DType::UInt8: return static_cast<double>(static_cast<uint8_t>(i));
    case DType::Int8: return static_cast<double>(static_cast<int8_t>(i));
    case DType::Int32: return static_cast<double>(static_cast<int32_t>(i));
    default: return static_cast<double>(i);
  }
}

namespace {
// Deterministic values without going through the library under test.
struct Lcg {
  uint64_t s;
  double next() {
    s = s * 6364136223846793005ull + 1442695040888963407ull;
    return static_cast<double>(s >> 11) * 0x1.0p-53;
  }
};

Tensor host_tensor(const std::vector<double>& vals, IntList shape, DType dtype) {
  Tensor t = tensor(vals, shape);
  return cast(t, dtype);
}
}  // namespace

Tensor make_input(IntList shape_in, DType dtype, Layout layout, uint64_t seed, double lo, double hi) {
  Shape shape(shape_in);
  Lcg rng{seed * 0x9E3779B97F4A7C15ull + 12345};
  auto gen_values = [&](const Shape& s) {
    int64_t n = shape_numel(s);
    std::vector<double> v(static_cast<size_t>(n));
    for (auto& x : v) {
      double u = rng.next();
      if (dtype == DType::Bool) x = u < 0.5 ? 0 : 1;
      else if (is_integral(dtype)) x = round_to(std::floor(lo + (hi - lo + 1) * u), dtype);
      else x = lo + (hi - lo) * u;
    }
    return v;
  };
  int64_t nd = static_cast<int64_t>(shape.size());
  switch (layout) {
    case Layout::Transposed: {
      if (nd >= 2) {
        // Store with the last two axes swapped, then swap them back as a view.
        Shape s = shape;
        std::swap(s[static_cast<size_t>(nd - 1)], s[static_cast<size_t>(nd - 2)]);
        Tensor base = host_tensor(gen_values(s), s, dtype);
        return transpose(base, -1, -2);
      }
      break;
    }
    case Layout::Sliced: {
      if (nd >= 1) {
        // Every other element of a tensor twice as long on the last axis (stride 2).
        Shape s = shape;
        s.back() = s.back() * 2;
        Tensor base = host_tensor(gen_values(s), s, dtype);
        return slice(base, -1, 0, std::nullopt, 2);
      }
      break;
    }
    case Layout::Expanded: {
      for (int64_t a = 0; a < nd; ++a) {
        if (shape[static_cast<size_t>(a)] > 1) {
          Shape s = shape;
          s[static_cast<size_t>(a)] = 1;
          Tensor base = host_tensor(gen_values(s), s, dtype);
          return expand(base, shape);
        }
      }
      break;
    }
    case Layout::Offset: {
      // A view starting in the middle of a larger buffer.
      int64_t n = shape_numel(shape);
      Shape s{n + 3};
      Tensor base = host_tensor(gen_values(s), s, dtype);
      return as_strided(base, shape, contiguous_strides(shape), 3);
    }
    case Layout::Contiguous: break;
  }
  return host_tensor(gen_values(shape), shape, dtype);
}

Tol tolerance(DType dtype, double scale) {
  switch (dtype) {
    case DType::Float64: return {1e-12 * scale, 1e-10 * scale};
    case DType::Float32: return {1e-5 * scale, 2e-5 * scale};
    case DType::Float16: return {1e-3 * scale, 4e-3 * scale};
    case DType::BFloat16: return {8e-3 * scale, 3.2e-2 * scale};
    default: return {0, 0};
  }
}

::testing::AssertionResult close_to(const Tensor& got, const Ref& want, DType dtype, double tol_scale) {
  if (!got.defined()) return ::testing::AssertionFailure() << "result is undefined";
  if (got.shape() != want.shape)
    return ::testing::AssertionFailure() << "shape " << shape_str(got.shape()) << ", expected " << shape_str(want.shape);
  if (got.dtype() != dtype)
    return ::testing::AssertionFailure() << "dtype " << dtype_name(got.dtype()) << ", expected " << dtype_name(dtype);
  std::vector<double> g = got.to_vector<double>();
  Tol tol = tolerance(dtype, tol_scale);
  int bad = 0;
  std::ostringstream os;
  for (size_t i = 0; i < g.size(); ++i) {
    double w = round_to(want.v[i], dtype), x = g[i];
    bool ok;
    if (std::isnan(w) || std::isnan(x)) ok = std::isnan(w) && std::isnan(x);
    else if (std::isinf(w) || std::isinf(x)) ok = w == x || std::fabs(x - w) <= tol.rtol * std::fabs(w);
    else ok = std::fabs(x - w) <= tol.atol + tol.rtol * std::fabs(w);
    if (!ok && bad++ < 5) os << "\n  element " << i << ": got " << x << ", expected " << w << " (unrounded " << want.v[i] << ")";
  }
  if (bad) return ::testing::AssertionFailure() << bad << " of " << g.size() << " elements differ (" << dtype_name(dtype) << ")" << os.str();
  return ::testing::AssertionSuccess();
}

const std::vector<Shape>& unary_shapes() {
  static const std::vector<Shape> v{{}, {0}, {1}, {7}, {3, 0}, {1, 1}, {4, 5}, {2, 1, 3}, {3, 4, 5}, {2, 3, 1, 4}, {1000}};
  return v;
}

const std::vector<std::pair<Shape, Shape>>& broadcast_pairs() {
  static const std::vector<std::pair<Shape, Shape>> v{
      {{}, {}},          {{5}, {5}},           {{}, {4, 3}},        {{4, 3}, {}},        {{3}, {4, 3}},
      {{4, 1}, {1, 3}},  {{2, 1, 4}, {3, 1}},  {{0, 3}, {1, 3}},    {{0}, {}},           {{1}, {6}},
      {{2, 3, 4}, {2, 3, 4}}, {{5, 1, 1}, {1, 4, 3}}, {{1, 1}, {1, 1}}, {{257}, {257}}};
  return v;
}

int64_t broadcast_index(const Shape& from, const Shape& to, std::span<const int64_t> idx) {
  int64_t off = 0, stride = 1;
  size_t shift = to.size() - from.size();
  for (size_t d = from.size(); d-- > 0;) {
    int64_t i = from[d] == 1 ? 0 : idx[d + shift];
    off += i * stride;
    stride *= from[d];
  }
  return off;
}

void for_each_index(const Shape& shape, const std::function<void(std::span<const int64_t>, int64_t)>& fn) {
  int64_t n = shape_numel(shape);
  SmallVector<int64_t, 8> idx(shape.size(), 0);
  for (int64_t lin = 0; lin < n; ++lin) {
    fn(std::span<const int64_t>(idx.data(), idx.size()), lin);
    for (size_t d = shape.size(); d-- > 0;) {
      if (++idx[d] < shape[d]) break;
      idx[d] = 0;
    }
  }
}

}  // namespace tessera::testing
