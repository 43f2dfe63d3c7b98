// Conformance of sort, argsort and topk against a naive stable sort written here.
#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

#include "harness/harness.h"

namespace ts = tessera;
using namespace tessera::testing;
using ts::Shape;

namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
constexpr double kInf = std::numeric_limits<double>::infinity();

/// The wanted order: NaN above everything, -0.0 equal to +0.0; ties keep index order (stable).
bool before(double a, double b, bool descending) {
  if (descending) {
    if (std::isnan(a)) return !std::isnan(b);
    if (std::isnan(b)) return false;
    return a > b;
  }
  if (std::isnan(a)) return false;
  if (std::isnan(b)) return true;
  return a < b;
}

/// Reference sort (k == size: full sort) of every line along axis: values and indices.
std::pair<Ref, Ref> sort_ref(const Ref& x, int64_t axis, bool descending, int64_t k = -1) {
  Shape shape = x.shape;
  if (shape.empty()) shape = {1};  // 0-d behaves as one element
  int64_t nd = static_cast<int64_t>(shape.size());
  int64_t ax = axis < 0 ? axis + nd : axis;
  int64_t n = shape[static_cast<size_t>(ax)];
  if (k < 0) k = n;
  int64_t A = 1, B = 1;
  for (int64_t d = 0; d < nd; ++d) {
    if (d < ax) A *= shape[static_cast<size_t>(d)];
    if (d > ax) B *= shape[static_cast<size_t>(d)];
  }
  Shape out_shape = x.shape;
  if (!out_shape.empty()) out_shape[static_cast<size_t>(ax)] = k;
  Ref vals{out_shape, std::vector<double>(static_cast<size_t>(A * k * B))};
  Ref idx{out_shape, std::vector<double>(static_cast<size_t>(A * k * B))};
  for (int64_t a = 0; a < A; ++a) {
    for (int64_t b = 0; b < B; ++b) {
      std::vector<int64_t> order(static_cast<size_t>(n));
      std::iota(order.begin(), order.end(), 0);
      auto at = [&](int64_t r) { return x.v[static_cast<size_t>((a * n + r) * B + b)]; };
      std::stable_sort(order.begin(), order.end(),
                       [&](int64_t i, int64_t j) { return before(at(i), at(j), descending); });
      for (int64_t i = 0; i < k; ++i) {
        size_t o = static_cast<size_t>((a * k + i) * B + b);
        vals.v[o] = at(order[static_cast<size_t>(i)]);
        idx.v[o] = static_cast<double>(order[static_cast<size_t>(i)]);
      }
    }
  }
  return {vals, idx};
}

struct SortCase {
  Shape shape;
  int64_t axis;
};

/// Includes 0-d, empty, size-1 lines, every axis position, and lines long enough for the radix path.
const std::vector<SortCase>& sort_cases() {
  static const std::vector<SortCase> v{{{}, 0},        {{}, -1},       {{0}, 0},           {{3, 0}, 1}, {{3, 0}, 0},
                                       {{1}, 0},       {{7}, 0},       {{4, 5}, 0},        {{4, 5}, 1}, {{4, 5}, -1},
                                       {{3, 4, 5}, 1}, {{2, 1, 3}, 1}, {{2, 3, 1, 4}, -1}, {{1500}, 0}, {{3, 1100}, 1},
                                       {{1100, 3}, 0}};
  return v;
}

}  // namespace

TEST(Sort, MatchesStableReferenceForEveryDtypeLayoutAndAxis) {
  uint64_t seed = 1;
  for (ts::DType dt : all_dtypes()) {
    for (const auto& c : sort_cases()) {
      for (Layout layout : all_layouts()) {
        for (bool desc : {false, true}) {
          SCOPED_TRACE(std::string(ts::dtype_name(dt)) + " " + ts::shape_str(c.shape) + " axis " +
                       std::to_string(c.axis) + (desc ? " descending " : " ascending ") + layout_name(layout));
          // Integers in [-3, 3] tie often, which checks stability.
          ts::Tensor x = make_input(c.shape, dt, layout, seed++, -3, 3);
          auto [want_v, want_i] = sort_ref(to_ref(x), c.axis, desc);
          auto [v, i] = ts::sort(x, c.axis, desc);
          EXPECT_CLOSE(v, want_v, dt);
          EXPECT_CLOSE(i, want_i, ts::DType::Int64);
          EXPECT_CLOSE(ts::argsort(x, c.axis, desc), want_i, ts::DType::Int64);
        }
      }
    }
  }
}

TEST(Sort, FloatTiesAreStableAcrossShortAndRadixPaths) {
  uint64_t seed = 500;
  for (ts::DType dt : float_dtypes()) {
    for (int64_t n : {50, 5000}) {
      for (bool desc : {false, true}) {
        SCOPED_TRACE(std::string(ts::dtype_name(dt)) + " n=" + std::to_string(n) +
                     (desc ? " descending" : " ascending"));
        // Few distinct values, so most keys tie.
        ts::Tensor x = ts::cast(make_input({2, n}, ts::DType::Int32, Layout::Contiguous, seed++, -5, 5), dt);
        x = ts::div(x, 4.0);
        auto [want_v, want_i] = sort_ref(to_ref(x), -1, desc);
        auto [v, i] = ts::sort(x, -1, desc);
        EXPECT_CLOSE(v, want_v, dt);
        EXPECT_CLOSE(i, want_i, ts::DType::Int64);
      }
    }
  }
}

TEST(Sort, NaNsGoLastAscendingAndFirstDescendingAndSignedZerosTie) {
  std::vector<double> vals{3, kNaN, 1, kNaN, -kInf, kInf, -0.0, 0.0, 1};
  for (ts::DType dt : float_dtypes()) {
    SCOPED_TRACE(std::string(ts::dtype_name(dt)));
    ts::Tensor x = ts::cast(ts::tensor(vals, {9}), dt);
    auto [a, ai] = ts::sort(x);
    EXPECT_EQ(ai.to_vector<int64_t>(), (std::vector<int64_t>{4, 6, 7, 2, 8, 0, 5, 1, 3}));
    auto av = a.to_vector<double>();
    EXPECT_TRUE(std::signbit(av[1]) && !std::signbit(av[2]));  // values are copied bit for bit
    EXPECT_TRUE(std::isnan(av[7]) && std::isnan(av[8]));
    auto [d, di] = ts::sort(x, 0, true);
    EXPECT_EQ(di.to_vector<int64_t>(), (std::vector<int64_t>{1, 3, 5, 0, 2, 8, 6, 7, 4}));
    auto [t, ti] = ts::topk(x, 3);
    EXPECT_EQ(ti.to_vector<int64_t>(), (std::vector<int64_t>{1, 3, 5}));
    auto [s, si] = ts::topk(x, 3, -1, false);
    EXPECT_EQ(si.to_vector<int64_t>(), (std::vector<int64_t>{4, 6, 7}));
  }
}

TEST(Sort, LongLinesMatchReference) {
  // Radix path (32-bit keys, and 64-bit keys in 128-bit words) with many duplicates; also a strided axis.
  for (ts::DType dt : {ts::DType::Float32, ts::DType::Int64, ts::DType::Float64, ts::DType::Int8}) {
    for (bool desc : {false, true}) {
      SCOPED_TRACE(std::string(ts::dtype_name(dt)) + (desc ? " descending" : " ascending"));
      ts::Tensor x = make_input({100000}, dt, Layout::Contiguous, 77, -1000, 1000);
      if (ts::is_floating(dt)) x = ts::round(x);  // duplicates
      auto [want_v, want_i] = sort_ref(to_ref(x), 0, desc);
      auto [v, i] = ts::sort(x, 0, desc);
      EXPECT_CLOSE(v, want_v, dt);
      EXPECT_CLOSE(i, want_i, ts::DType::Int64);
    }
  }
  ts::Tensor y = make_input({3000, 4}, ts::DType::Float32, Layout::Transposed, 78);
  auto [want_v, want_i] = sort_ref(to_ref(y), 0, false);
  auto [v, i] = ts::sort(y, 0);
  EXPECT_CLOSE(v, want_v, ts::DType::Float32);
  EXPECT_CLOSE(i, want_i, ts::DType::Int64);
}

TEST(TopK, MatchesFirstKOfStableSortForEveryDtypeLayoutAndK) {
  uint64_t seed = 3000;
  for (ts::DType dt : all_dtypes()) {
    for (const auto& c : sort_cases()) {
      int64_t nd = static_cast<int64_t>(c.shape.size());
      int64_t n = nd == 0 ? 1 : c.shape[static_cast<size_t>(c.axis < 0 ? c.axis + nd : c.axis)];
      std::vector<int64_t> ks{0, 1, n / 2, n};
      if (n >= 100) ks.push_back(5);  // the bounded-heap path
      for (int64_t k : ks) {
        if (k > n) continue;
        for (bool largest : {true, false}) {
          Layout layout = all_layouts()[static_cast<size_t>(seed % all_layouts().size())];
          SCOPED_TRACE(std::string(ts::dtype_name(dt)) + " " + ts::shape_str(c.shape) + " axis " +
                       std::to_string(c.axis) + " k " + std::to_string(k) + (largest ? " largest " : " smallest ") +
                       layout_name(layout));
          ts::Tensor x = make_input(c.shape, dt, layout, seed++, -3, 3);
          auto [want_v, want_i] = sort_ref(to_ref(x), c.axis, largest, k);
          if (nd == 0 && k == 0) want_v.shape = want_i.shape = Shape{0};
          auto [v, i] = ts::topk(x, k, c.axis, largest);
          EXPECT_CLOSE(v, want_v, dt);
          EXPECT_CLOSE(i, want_i, ts::DType::Int64);
        }
      }
    }
  }
}

TEST(TopK, LongRowsWithSmallAndLargeK) {
  ts::Tensor x = make_input({4, 50000}, ts::DType::Float32, Layout::Contiguous, 99, -100, 100);
  x = ts::round(x);  // ties
  for (int64_t k : {1, 10, 64, 1000, 25000}) {
    for (bool largest : {true, false}) {
      SCOPED_TRACE("k " + std::to_string(k) + (largest ? " largest" : " smallest"));
      auto [want_v, want_i] = sort_ref(to_ref(x), 1, largest, k);
      auto [v, i] = ts::topk(x, k, 1, largest);
      EXPECT_CLOSE(v, want_v, ts::DType::Float32);
      EXPECT_CLOSE(i, want_i, ts::DType::Int64);
    }
  }
}

TEST(Sort, RejectsBadArgumentsWithOpName) {
  ts::Tensor x = ts::zeros({2, 3});
  expect_error<ts::IndexError>([&] { ts::sort(x, 2); }, {"[sort]", "axis 2"});
  expect_error<ts::IndexError>([&] { ts::argsort(x, -3); }, {"[sort]", "axis -3"});
  expect_error<ts::IndexError>([&] { ts::topk(x, 1, 5); }, {"[topk]", "axis 5"});
  expect_error<ts::ValueError>([&] { ts::topk(x, 4); }, {"[topk]", "k = 4", "[2,3]"});
  expect_error<ts::ValueError>([&] { ts::topk(x, -1, 0); }, {"[topk]", "k = -1"});
  expect_error<ts::ValueError>([&] { ts::topk(ts::zeros({}), 2); }, {"[topk]", "k = 2"});
  expect_error<ts::ValueError>([&] { ts::sort(ts::Tensor()); }, {"[sort]", "undefined"});
}
