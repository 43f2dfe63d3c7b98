// Conformance of the view functions (reshape, flatten, permute, transpose, squeeze, unsqueeze,
// expand/broadcast_to, slice, select, as_strided, contiguous): values against naive float64
// references over every dtype and input layout, storage sharing, and error messages.
#include <algorithm>
#include <climits>

#include "harness/harness.h"

namespace ts = tessera;
using namespace tessera::testing;
using ts::IntList;
using ts::Shape;
using ts::Strides;

namespace {

bool shares_storage(const ts::Tensor& a, const ts::Tensor& b) { return a.impl().storage == b.impl().storage; }

/// Every element address of v lies inside the storage of base.
bool within_storage_of(const ts::Tensor& v, const ts::Tensor& base) {
  if (!shares_storage(v, base)) return false;
  int64_t lo = v.offset(), hi = v.offset();
  if (v.numel() == 0) return true;
  for (int64_t d = 0; d < v.ndim(); ++d) {
    int64_t ext = (v.shape()[static_cast<size_t>(d)] - 1) * v.strides()[static_cast<size_t>(d)];
    (ext < 0 ? lo : hi) += ext;
  }
  int64_t cap = static_cast<int64_t>(base.impl().storage->nbytes() / base.itemsize());
  return lo >= 0 && hi < cap;
}

/// Reference permute: out[idx] = x[idx mapped through perm].
Ref ref_permute(const Ref& x, const std::vector<int64_t>& perm) {
  Shape s;
  for (int64_t p : perm) s.push_back(x.shape[static_cast<size_t>(p)]);
  Ref r{s, {}};
  for_each_index(s, [&](std::span<const int64_t> idx, int64_t) {
    Shape src(x.shape.size());
    for (size_t i = 0; i < perm.size(); ++i) src[static_cast<size_t>(perm[i])] = idx[i];
    r.v.push_back(x.at(src));
  });
  return r;
}

/// Reference slice with Python semantics for step > 0.
Ref ref_slice(const Ref& x, int64_t axis, std::optional<int64_t> start, std::optional<int64_t> stop, int64_t step) {
  int64_t n = x.shape[static_cast<size_t>(axis)];
  auto fix = [n](int64_t v) { return std::clamp<int64_t>(v < 0 ? v + n : v, 0, n); };
  int64_t b = start ? fix(*start) : 0, e = stop ? fix(*stop) : n;
  std::vector<int64_t> picks;
  for (int64_t i = b; i < e; i += step) picks.push_back(i);
  Shape s = x.shape;
  s[static_cast<size_t>(axis)] = static_cast<int64_t>(picks.size());
  Ref r{s, {}};
  for_each_index(s, [&](std::span<const int64_t> idx, int64_t) {
    Shape src(idx.begin(), idx.end());
    src[static_cast<size_t>(axis)] = picks[static_cast<size_t>(idx[static_cast<size_t>(axis)])];
    r.v.push_back(x.at(src));
  });
  return r;
}

const std::vector<Shape>& view_shapes() {
  static const std::vector<Shape> v{{}, {0}, {1}, {6}, {3, 0}, {1, 1}, {4, 5}, {2, 1, 3}, {3, 4, 2}, {2, 3, 1, 4}};
  return v;
}

}  // namespace

// ---------------------------------------------------------------- reshape
TEST(Reshape, PreservesRowMajorOrderForEveryDtypeAndLayout) {
  uint64_t seed = 1;
  for (ts::DType dt : all_dtypes()) {
    for (const Shape& shape : view_shapes()) {
      int64_t n = ts::shape_numel(shape);
      std::vector<Shape> targets{{n}, {1, n, 1}};
      if (n == 24) targets.push_back({4, 3, 2}), targets.push_back({2, -1, 3});
      if (n == 20) targets.push_back({5, 4}), targets.push_back({-1, 2});
      if (n == 0) targets.push_back({0, 5}), targets.push_back({-1, 7});
      for (Layout l : all_layouts()) {
        ts::Tensor x = make_input(shape, dt, l, seed++, -50, 50);
        Ref rx = to_ref(x);
        for (const Shape& t : targets) {
          SCOPED_TRACE(std::string(ts::dtype_name(dt)) + " " + ts::shape_str(shape) + " -> " + ts::shape_str(t) + " " +
                       layout_name(l));
          ts::Tensor y = ts::reshape(x, t);
          Shape want_shape = t;
          int64_t known = 1;
          for (int64_t d : t) known *= d == -1 ? 1 : d;
          for (auto& d : want_shape)
            if (d == -1) d = n / known;
          EXPECT_CLOSE(y, (Ref{want_shape, rx.v}), dt);
        }
      }
    }
  }
}

TEST(Reshape, IsAViewOfContiguousDataAndInfersMinusOne) {
  ts::Tensor x = ts::arange(0, 24, 1, ts::DType::Float32);
  ts::Tensor y = ts::reshape(x, {2, -1, 4});
  EXPECT_EQ(y.shape(), (Shape{2, 3, 4}));
  EXPECT_TRUE(shares_storage(x, y));
  EXPECT_TRUE(within_storage_of(y, x));
  EXPECT_EQ(y.raw_data(), x.raw_data());
  EXPECT_EQ(ts::reshape(ts::zeros({0, 3}), {-1, 3}).shape(), (Shape{0, 3}));
  // 0-d <-> [1] and [1, 1] are views too.
  ts::Tensor s = ts::scalar_tensor(5.0);
  EXPECT_TRUE(shares_storage(ts::reshape(s, {1, 1}), s));
  EXPECT_TRUE(shares_storage(ts::reshape(ts::reshape(s, {1}), {}), s));
}

TEST(Reshape, SplitsAxesOfTransposedDataWithoutCopying) {
  // [3,4] transposed is [4,3] with strides [1,4]: splitting axis 0 is expressible as a view.
  ts::Tensor base = ts::arange(0, 12, 1, ts::DType::Float64).reshape({3, 4});
  ts::Tensor t = ts::transpose(base, 0, 1);
  ts::Tensor v = ts::reshape(t, {2, 2, 3});
  EXPECT_TRUE(shares_storage(v, base));
  EXPECT_EQ(v.strides(), (ts::Strides{2, 1, 4}));
  EXPECT_CLOSE(v, (Ref{{2, 2, 3}, to_ref(t).v}), ts::DType::Float64);
}

TEST(Reshape, CopiesWhenStridesCannotBeViewed) {
  ts::Tensor base = ts::arange(0, 12, 1, ts::DType::Int64).reshape({3, 4});
  ts::Tensor t = ts::transpose(base, 0, 1);  // [4,3] strides [1,4]
  ts::Tensor flat = ts::reshape(t, {12});
  EXPECT_FALSE(shares_storage(flat, base));
  EXPECT_TRUE(flat.is_contiguous());
  EXPECT_EQ(flat.to_vector<int64_t>(), (std::vector<int64_t>{0, 4, 8, 1, 5, 9, 2, 6, 10, 3, 7, 11}));
  // A stride-0 (expanded) tensor flattened must materialize the repeats.
  ts::Tensor e = ts::expand(ts::tensor<int64_t>({1, 2}, {1, 2}), {3, 2});
  EXPECT_EQ(ts::reshape(e, {6}).to_vector<int64_t>(), (std::vector<int64_t>{1, 2, 1, 2, 1, 2}));
  // Stepped slices merge only where the steps line up.
  ts::Tensor s =
      ts::slice(ts::arange(0, 16, 1, ts::DType::Int64).reshape({4, 4}), 1, 0, std::nullopt, 2);  // [4,2] strides [4,2]
  ts::Tensor sv = ts::reshape(s, {8});
  EXPECT_EQ(sv.to_vector<int64_t>(), (std::vector<int64_t>{0, 2, 4, 6, 8, 10, 12, 14}));
}

TEST(Reshape, RejectsBadShapesNamingThem) {
  ts::Tensor x = ts::zeros({2, 3});
  expect_error<ts::ShapeError>([&] { ts::reshape(x, {4, 2}); }, {"[reshape]", "[2,3]", "[4,2]"});
  expect_error<ts::ShapeError>([&] { ts::reshape(x, {-1, -1}); }, {"[reshape]", "only one", "[-1,-1]"});
  expect_error<ts::ShapeError>([&] { ts::reshape(x, {-1, 4}); }, {"[reshape]", "[2,3]", "[-1,4]"});
  expect_error<ts::ShapeError>([&] { ts::reshape(x, {-2, 3}); }, {"[reshape]", "[-2,3]"});
  expect_error<ts::ShapeError>([&] { ts::reshape(ts::zeros({0}), {-1, 0}); }, {"[reshape]", "[0]", "[-1,0]"});
}

// ---------------------------------------------------------------- flatten
TEST(Flatten, MergesTheGivenAxisRange) {
  ts::Tensor x = make_input({2, 3, 4, 5}, ts::DType::Float32, Layout::Transposed, 7);
  Ref rx = to_ref(x);
  EXPECT_CLOSE(ts::flatten(x), (Ref{{120}, rx.v}), ts::DType::Float32);
  EXPECT_CLOSE(ts::flatten(x, 1), (Ref{{2, 60}, rx.v}), ts::DType::Float32);
  EXPECT_CLOSE(ts::flatten(x, 1, 2), (Ref{{2, 12, 5}, rx.v}), ts::DType::Float32);
  EXPECT_CLOSE(ts::flatten(x, -2, -1), (Ref{{2, 3, 20}, rx.v}), ts::DType::Float32);
  EXPECT_CLOSE(ts::flatten(x, 2, 2), (Ref{{2, 3, 4, 5}, rx.v}), ts::DType::Float32);
  EXPECT_EQ(ts::flatten(ts::scalar_tensor(3.0)).shape(), (Shape{1}));
  ts::Tensor c = ts::zeros({2, 3, 4});
  EXPECT_TRUE(shares_storage(ts::flatten(c), c));
  expect_error<ts::ValueError>([&] { ts::flatten(c, 2, 1); }, {"[flatten]"});
  expect_error<ts::IndexError>([&] { ts::flatten(c, 0, 3); }, {"[flatten]", "axis 3"});
}

// ------------------------------------------------------ permute, transpose
TEST(Permute, MatchesReferenceAndSharesStorage) {
  uint64_t seed = 100;
  std::vector<std::pair<Shape, std::vector<int64_t>>> cases{{{}, {}},
                                                            {{5}, {0}},
                                                            {{4, 5}, {1, 0}},
                                                            {{2, 3, 4}, {2, 0, 1}},
                                                            {{2, 3, 4}, {-1, -3, -2}},
                                                            {{3, 0, 2}, {1, 2, 0}},
                                                            {{2, 1, 3, 4}, {3, 1, 0, 2}}};
  for (ts::DType dt : all_dtypes()) {
    for (const auto& [shape, perm] : cases) {
      for (Layout l : all_layouts()) {
        SCOPED_TRACE(std::string(ts::dtype_name(dt)) + " " + ts::shape_str(shape) + " " + layout_name(l));
        ts::Tensor x = make_input(shape, dt, l, seed++, -50, 50);
        ts::Tensor y = ts::permute(x, perm);
        std::vector<int64_t> p;
        for (int64_t a : perm) p.push_back(a < 0 ? a + static_cast<int64_t>(shape.size()) : a);
        EXPECT_CLOSE(y, ref_permute(to_ref(x), p), dt);
        EXPECT_TRUE(shares_storage(x, y));
        EXPECT_TRUE(within_storage_of(y, x));
      }
    }
  }
}

TEST(Permute, RejectsNonPermutations) {
  ts::Tensor x = ts::zeros({2, 3, 4});
  expect_error<ts::ValueError>([&] { ts::permute(x, {0, 0, 1}); }, {"[permute]", "[0,0,1]", "[2,3,4]"});
  expect_error<ts::ValueError>([&] { ts::permute(x, {0, 1}); }, {"[permute]", "[2,3,4]"});
  expect_error<ts::ValueError>([&] { ts::permute(x, {0, 1, 3}); }, {"[permute]"});
  expect_error<ts::ValueError>([&] { ts::permute(x, {0, 1, -4}); }, {"[permute]"});
}

TEST(Transpose, SwapsTwoAxesIncludingNegativeOnes) {
  ts::Tensor x = make_input({2, 3, 4}, ts::DType::Int32, Layout::Sliced, 3, -100, 100);
  EXPECT_CLOSE(ts::transpose(x, 0, 2), ref_permute(to_ref(x), {2, 1, 0}), ts::DType::Int32);
  EXPECT_CLOSE(ts::transpose(x, -1, -2), ref_permute(to_ref(x), {0, 2, 1}), ts::DType::Int32);
  EXPECT_CLOSE(x.transpose(), ref_permute(to_ref(x), {0, 2, 1}), ts::DType::Int32);
  EXPECT_TRUE(ts::transpose(x, 1, 1).is_same(x));
  ts::Tensor v = ts::tensor<float>({1, 2, 3});
  EXPECT_TRUE(ts::transpose(v, -2, -1).is_same(v));  // 1-d: nothing to swap
  EXPECT_EQ(ts::transpose(v, 0, -1).to_vector<float>(), (std::vector<float>{1, 2, 3}));
  expect_error<ts::IndexError>([&] { ts::transpose(x, 0, 3); }, {"[transpose]", "axis 3"});
}

TEST(Transpose, OfAZeroDimTensorIsTheTensor) {
  // transpose(scalar, 0, 0) used to swap entries of an empty permutation (an unchecked out-of-bounds
  // access that happened to be harmless); the 0-d case now returns early.
  ts::Tensor s = ts::scalar_tensor(2.5);
  EXPECT_TRUE(ts::transpose(s, 0, 0).is_same(s));
  EXPECT_TRUE(ts::transpose(s, 0, -1).is_same(s));
  expect_error<ts::IndexError>([&] { ts::transpose(s, 0, 1); }, {"[transpose]", "axis 1"});
}

// ------------------------------------------------------ squeeze, unsqueeze
TEST(Squeeze, RemovesSizeOneAxes) {
  ts::Tensor x = make_input({1, 3, 1, 2}, ts::DType::Float64, Layout::Offset, 9);
  Ref rx = to_ref(x);
  EXPECT_CLOSE(ts::squeeze(x), (Ref{{3, 2}, rx.v}), ts::DType::Float64);
  EXPECT_CLOSE(ts::squeeze(x, {0}), (Ref{{3, 1, 2}, rx.v}), ts::DType::Float64);
  EXPECT_CLOSE(ts::squeeze(x, {-2, 0}), (Ref{{3, 2}, rx.v}), ts::DType::Float64);
  EXPECT_TRUE(shares_storage(ts::squeeze(x), x));
  EXPECT_EQ(ts::squeeze(ts::zeros({1, 1})).shape(), (Shape{}));
  EXPECT_EQ(ts::squeeze(ts::zeros({0, 1})).shape(), (Shape{0}));
  expect_error<ts::ShapeError>([&] { ts::squeeze(x, {1}); }, {"[squeeze]", "axis 1", "[1,3,1,2]", "size 3"});
  expect_error<ts::IndexError>([&] { ts::squeeze(x, {4}); }, {"[squeeze]", "axis 4"});
  expect_error<ts::ValueError>([&] { ts::squeeze(x, {0, -4}); }, {"[squeeze]", "repeated"});
}

TEST(Unsqueeze, InsertsAnAxisAtEveryPosition) {
  ts::Tensor x = make_input({2, 3}, ts::DType::Int8, Layout::Transposed, 4, -100, 100);
  Ref rx = to_ref(x);
  EXPECT_CLOSE(ts::unsqueeze(x, 0), (Ref{{1, 2, 3}, rx.v}), ts::DType::Int8);
  EXPECT_CLOSE(ts::unsqueeze(x, 1), (Ref{{2, 1, 3}, rx.v}), ts::DType::Int8);
  EXPECT_CLOSE(ts::unsqueeze(x, 2), (Ref{{2, 3, 1}, rx.v}), ts::DType::Int8);
  EXPECT_CLOSE(ts::unsqueeze(x, -1), (Ref{{2, 3, 1}, rx.v}), ts::DType::Int8);
  EXPECT_CLOSE(ts::unsqueeze(x, -3), (Ref{{1, 2, 3}, rx.v}), ts::DType::Int8);
  EXPECT_TRUE(shares_storage(ts::unsqueeze(x, 1), x));  // even for transposed data
  EXPECT_EQ(ts::unsqueeze(ts::scalar_tensor(1.0), 0).shape(), (Shape{1}));
  expect_error<ts::IndexError>([&] { ts::unsqueeze(x, 3); }, {"[unsqueeze]", "axis 3"});
  expect_error<ts::IndexError>([&] { ts::unsqueeze(x, -4); }, {"[unsqueeze]", "axis -4"});
}

// ------------------------------------------------------------------ expand
TEST(Expand, BroadcastsWithZeroStridesForEveryDtypeAndLayout) {
  uint64_t seed = 200;
  std::vector<std::pair<Shape, Shape>> cases{{{}, {3, 2}},           {{1}, {4}}, {{3, 1}, {3, 4}}, {{1, 3}, {2, 2, 3}},
                                             {{2, 1, 3}, {2, 5, 3}}, {{1}, {0}}, {{4}, {0, 4}},    {{2, 3}, {2, 3}}};
  for (ts::DType dt : all_dtypes()) {
    for (const auto& [from, to] : cases) {
      for (Layout l : all_layouts()) {
        SCOPED_TRACE(std::string(ts::dtype_name(dt)) + " " + ts::shape_str(from) + " -> " + ts::shape_str(to) + " " +
                     layout_name(l));
        ts::Tensor x = make_input(from, dt, l, seed++, -50, 50);
        Ref rx = to_ref(x);
        Ref want{to, {}};
        for_each_index(to, [&](std::span<const int64_t> idx, int64_t) {
          want.v.push_back(rx.v[static_cast<size_t>(broadcast_index(from, to, idx))]);
        });
        ts::Tensor y = ts::expand(x, to);
        EXPECT_CLOSE(y, want, dt);
        EXPECT_CLOSE(ts::broadcast_to(x, to), want, dt);
        EXPECT_TRUE(shares_storage(x, y));
      }
    }
  }
}

TEST(Expand, KeepsSizesGivenAsMinusOneAndRejectsIncompatibleShapes) {
  ts::Tensor x = ts::zeros({3, 1});
  EXPECT_EQ(ts::expand(x, {2, -1, 4}).shape(), (Shape{2, 3, 4}));
  EXPECT_EQ(ts::expand(x, {2, -1, 4}).strides(), (ts::Strides{0, 1, 0}));
  expect_error<ts::ShapeError>([&] { ts::expand(x, {2, 4}); }, {"[expand]", "[3,1]", "[2,4]"});
  expect_error<ts::ShapeError>([&] { ts::expand(x, {3}); }, {"[expand]", "[3,1]", "[3]"});
  expect_error<ts::ShapeError>([&] { ts::expand(x, {-1, 3, 1}); }, {"[expand]", "[3,1]"});
  expect_error<ts::ShapeError>([&] { ts::broadcast_to(ts::zeros({2}), {3}); }, {"[expand]", "[2]", "[3]"});
}

// ------------------------------------------------------------------- slice
TEST(Slice, FollowsPythonRulesForStepsNegativesAndClamping) {
  uint64_t seed = 300;
  struct C {
    std::optional<int64_t> start, stop;
    int64_t step;
  };
  std::vector<C> cases{{std::nullopt, std::nullopt, 1}, {1, 4, 1},      {0, std::nullopt, 2}, {1, std::nullopt, 3},
                       {-3, std::nullopt, 1},           {-100, 100, 1}, {2, -1, 1},           {4, 2, 1},
                       {std::nullopt, -6, 1},           {7, 9, 1},      {-2, -1, 5},          {0, 0, 1}};
  for (ts::DType dt : all_dtypes()) {
    for (Layout l : all_layouts()) {
      for (int64_t axis : {0, 1, -1}) {
        ts::Tensor x = make_input({5, 6}, dt, l, seed++, -50, 50);
        Ref rx = to_ref(x);
        for (const C& c : cases) {
          SCOPED_TRACE(std::string(ts::dtype_name(dt)) + " " + layout_name(l) + " axis " + std::to_string(axis) + " [" +
                       (c.start ? std::to_string(*c.start) : "") + ":" + (c.stop ? std::to_string(*c.stop) : "") + ":" +
                       std::to_string(c.step) + "]");
          ts::Tensor y = ts::slice(x, axis, c.start, c.stop, c.step);
          EXPECT_CLOSE(y, ref_slice(rx, axis < 0 ? axis + 2 : axis, c.start, c.stop, c.step), dt);
          EXPECT_TRUE(within_storage_of(y, x));
        }
      }
    }
  }
}

TEST(Slice, OfEmptyAndSizeOneAxes) {
  ts::Tensor e = ts::zeros({0, 3});
  EXPECT_EQ(ts::slice(e, 0, 1, 5).shape(), (Shape{0, 3}));
  EXPECT_EQ(ts::slice(e, 1, 1, 2).shape(), (Shape{0, 1}));
  ts::Tensor one = ts::tensor<float>({7}, {1, 1});
  EXPECT_EQ(ts::slice(one, 1, -1, std::nullopt).to_vector<float>(), (std::vector<float>{7}));
  EXPECT_EQ(ts::slice(one, 1, 1, std::nullopt).shape(), (Shape{1, 0}));
}

TEST(Slice, RejectsBadArgumentsNamingTheOp) {
  ts::Tensor x = ts::zeros({4, 5});
  expect_error<ts::ValueError>([&] { ts::slice(x, 0, 0, 2, 0); }, {"[slice]", "step", "0"});
  expect_error<ts::ValueError>([&] { ts::slice(x, 0, 0, 2, -1); }, {"[slice]", "step", "-1"});
  expect_error<ts::IndexError>([&] { ts::slice(x, 2, 0, 2); }, {"[slice]", "axis 2"});
  expect_error<ts::IndexError>([&] { ts::slice(ts::scalar_tensor(1.0), 0, 0, 1); }, {"[slice]", "0-d"});
}

// ------------------------------------------------------------------ select
TEST(Select, PicksOneEntryAndDropsTheAxis) {
  uint64_t seed = 400;
  for (ts::DType dt : all_dtypes()) {
    for (Layout l : all_layouts()) {
      ts::Tensor x = make_input({3, 4, 2}, dt, l, seed++, -50, 50);
      Ref rx = to_ref(x);
      for (int64_t axis : {0, 1, 2, -1}) {
        int64_t ax = axis < 0 ? axis + 3 : axis;
        int64_t n = x.shape()[static_cast<size_t>(ax)];
        for (int64_t i : {int64_t{0}, n - 1, int64_t{-1}, -n}) {
          SCOPED_TRACE(std::string(ts::dtype_name(dt)) + " " + layout_name(l) + " axis " + std::to_string(axis) +
                       " index " + std::to_string(i));
          Ref s = ref_slice(rx, ax, i,
                            i < 0 ? (i + 1 == 0 ? std::optional<int64_t>() : std::optional<int64_t>(i + 1))
                                  : std::optional<int64_t>(i + 1),
                            1);
          Shape sh = s.shape;
          sh.erase(sh.begin() + ax);
          ts::Tensor y = ts::select(x, axis, i);
          EXPECT_CLOSE(y, (Ref{sh, s.v}), dt);
          EXPECT_TRUE(within_storage_of(y, x));
        }
      }
    }
  }
  EXPECT_EQ(ts::select(ts::tensor<int64_t>({5, 6, 7}), 0, -1).item<int64_t>(), 7);
}

TEST(Select, RejectsOutOfRangeIndicesWithShape) {
  ts::Tensor x = ts::zeros({3, 4});
  expect_error<ts::IndexError>([&] { ts::select(x, 1, 4); }, {"[select]", "index 4", "axis 1", "[3,4]"});
  expect_error<ts::IndexError>([&] { ts::select(x, 0, -4); }, {"[select]", "index -4", "[3,4]"});
  expect_error<ts::IndexError>([&] { ts::select(ts::zeros({0}), 0, 0); }, {"[select]", "index 0"});
  expect_error<ts::IndexError>([&] { ts::select(ts::scalar_tensor(1.0), 0, 0); }, {"[select]", "0-d"});
}

// -------------------------------------------------------------- as_strided
TEST(AsStrided, BuildsOverlappingAndReversedWindows) {
  ts::Tensor x = ts::arange(0, 10, 1, ts::DType::Float32);
  // Sliding windows of 3 with step 2: overlapping view.
  ts::Tensor w = ts::as_strided(x, {4, 3}, {2, 1}, 0);
  EXPECT_EQ(w.to_vector<float>(), (std::vector<float>{0, 1, 2, 2, 3, 4, 4, 5, 6, 6, 7, 8}));
  EXPECT_TRUE(within_storage_of(w, x));
  // Negative strides read backwards from the offset.
  ts::Tensor r = ts::as_strided(x, {5}, {-2}, 9);
  EXPECT_EQ(r.to_vector<float>(), (std::vector<float>{9, 7, 5, 3, 1}));
  // The offset is absolute in the storage, not relative to a view's offset.
  ts::Tensor tail = ts::slice(x, 0, 5, std::nullopt);
  EXPECT_EQ(ts::as_strided(tail, {2}, {1}, 1).to_vector<float>(), (std::vector<float>{1, 2}));
  // Zero strides and empty shapes.
  EXPECT_EQ(ts::as_strided(x, {2, 2}, {0, 0}, 4).to_vector<float>(), (std::vector<float>{4, 4, 4, 4}));
  EXPECT_EQ(ts::as_strided(x, {0, 3}, {100, 100}, 0).numel(), 0);
}

TEST(AsStrided, RejectsViewsOutsideTheStorage) {
  ts::Tensor x = ts::zeros({10});
  expect_error<ts::IndexError>(
      [&] {
        ts::as_strided(x, {4, 3}, {3, 1}, 0);
      },
      {"[as_strided]", "[4,3]", "[3,1]", "offset 0", "10 elements"});
  expect_error<ts::IndexError>([&] { ts::as_strided(x, {2}, {1}, 9); }, {"[as_strided]", "offset 9"});
  expect_error<ts::IndexError>([&] { ts::as_strided(x, {3}, {-1}, 1); }, {"[as_strided]", "[-1]"});
  expect_error<ts::IndexError>([&] { ts::as_strided(x, {1}, {1}, -1); }, {"[as_strided]", "offset -1"});
  expect_error<ts::ShapeError>([&] { ts::as_strided(x, {2, 2}, {1}, 0); }, {"[as_strided]", "[2,2]", "[1]"});
  expect_error<ts::ValueError>([&] { ts::as_strided(x, {-2}, {1}, 0); }, {"[as_strided]", "negative"});
}

TEST(AsStrided, RejectsExtentsThatOverflowInt64) {
  // Regression: (size - 1) * stride and the running extent overflowed (undefined behaviour) instead
  // of being refused.
  ts::Tensor x = ts::zeros({10});
  expect_error<ts::IndexError>([&] { ts::as_strided(x, {3}, {INT64_MAX / 2 + 1}, 0); },
                               {"[as_strided]", "outside storage"});
  expect_error<ts::IndexError>(
      [&] {
        ts::as_strided(x, {2, 2}, {INT64_MAX, INT64_MAX}, 1);
      },
      {"[as_strided]", "outside storage"});
  expect_error<ts::IndexError>(
      [&] {
        ts::as_strided(x, {2, 2}, {INT64_MIN, 1}, 5);
      },
      {"[as_strided]", "outside storage"});
}

// -------------------------------------------------------------- contiguous
TEST(Contiguous, ReturnsTheTensorWhenContiguousElseARowMajorCopy) {
  uint64_t seed = 500;
  for (ts::DType dt : all_dtypes()) {
    for (Layout l : all_layouts()) {
      for (const Shape& shape : view_shapes()) {
        SCOPED_TRACE(std::string(ts::dtype_name(dt)) + " " + ts::shape_str(shape) + " " + layout_name(l));
        ts::Tensor x = make_input(shape, dt, l, seed++, -50, 50);
        ts::Tensor c = ts::contiguous(x);
        EXPECT_TRUE(c.is_contiguous());
        EXPECT_CLOSE(c, to_ref(x), dt);
        if (x.is_contiguous())
          EXPECT_TRUE(c.is_same(x));
        else
          EXPECT_FALSE(shares_storage(c, x));
      }
    }
  }
}

TEST(Views, ChainOfViewsReadsTheRightElements) {
  // permute -> slice -> expand -> select composed, checked against the composed reference.
  ts::Tensor x = make_input({4, 3, 5}, ts::DType::Float64, Layout::Offset, 77);
  Ref rx = to_ref(x);
  ts::Tensor p = ts::permute(x, {2, 0, 1});                   // [5,4,3]
  ts::Tensor s = ts::slice(p, 0, 1, std::nullopt, 2);         // [2,4,3]
  ts::Tensor q = ts::select(s, 2, -1);                        // [2,4]
  ts::Tensor e = ts::expand(ts::unsqueeze(q, 1), {2, 3, 4});  // [2,3,4]
  Ref want{{2, 3, 4}, {}};
  for_each_index(want.shape, [&](std::span<const int64_t> idx, int64_t) {
    int64_t k = 1 + 2 * idx[0];  // axis 2 of x
    want.v.push_back(rx.at(Shape{idx[2], 2, k}));
  });
  EXPECT_CLOSE(e, want, ts::DType::Float64);
  EXPECT_TRUE(shares_storage(e, x));
}
