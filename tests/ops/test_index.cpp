// Conformance of the indexing ops (gather, take_along_axis, scatter, scatter_add, index_select,
// embedding, one_hot) against naive float64 references over every dtype, input layout and index
// dtype, with negative indices, duplicates, empty and 0-d tensors, and the error messages.
#include <algorithm>

#include "harness/harness.h"

namespace ts = tessera;
using namespace tessera::testing;
using ts::IntList;
using ts::Shape;
using ts::Strides;

namespace {

int64_t wrap(double v, int64_t n) {
  int64_t i = static_cast<int64_t>(v);
  return i < 0 ? i + n : i;
}

/// Reference torch.gather: out[idx] = x[idx with axis -> index[idx]]; 0-d tensors act as [1].
Ref ref_gather(const Ref& x, int64_t axis, const Ref& index) {
  Ref out{index.shape, {}};
  Ref xx = x.shape.empty() ? Ref{{1}, x.v} : x;
  Shape ishape = index.shape.empty() ? Shape{1} : index.shape;
  for_each_index(ishape, [&](std::span<const int64_t> idx, int64_t lin) {
    Shape src(idx.begin(), idx.end());
    size_t a = static_cast<size_t>(axis);
    src[a] = wrap(index.v[static_cast<size_t>(lin)], xx.shape[a]);
    out.v.push_back(xx.at(src));
  });
  return out;
}

/// Reference scatter / scatter_add, processing index entries in row-major order.
Ref ref_scatter(const Ref& x, int64_t axis, const Ref& index, const Ref& src, bool add) {
  Ref out = x.shape.empty() ? Ref{{1}, x.v} : x;
  Ref s = src.shape.empty() ? Ref{{1}, src.v} : src;
  Shape ishape = index.shape.empty() ? Shape{1} : index.shape;
  size_t a = static_cast<size_t>(axis);
  Strides ost = out.strides();
  for_each_index(ishape, [&](std::span<const int64_t> idx, int64_t lin) {
    Shape dst(idx.begin(), idx.end());
    dst[a] = wrap(index.v[static_cast<size_t>(lin)], out.shape[a]);
    int64_t off = 0;
    for (size_t d = 0; d < dst.size(); ++d) off += dst[d] * ost[d];
    double v = s.at(idx);
    double& o = out.v[static_cast<size_t>(off)];
    o = add ? o + v : v;
  });
  out.shape = x.shape;
  return out;
}

Ref ref_index_select(const Ref& x, int64_t axis, const Ref& index) {
  Shape s = x.shape;
  size_t a = static_cast<size_t>(axis);
  s[a] = index.numel();
  Ref out{s, {}};
  for_each_index(s, [&](std::span<const int64_t> idx, int64_t) {
    Shape src(idx.begin(), idx.end());
    src[a] = wrap(index.v[static_cast<size_t>(idx[a])], x.shape[a]);
    out.v.push_back(x.at(src));
  });
  return out;
}

/// A random index tensor with values in [-n, n) (both signs), or all zero when n == 0.
ts::Tensor make_index(IntList shape, int64_t n, ts::DType dt, Layout l, uint64_t seed) {
  if (n == 0) return ts::zeros(shape, dt);
  return make_input(shape, dt, l, seed, static_cast<double>(-n), static_cast<double>(n - 1));
}

std::string trace(ts::DType dt, const Shape& s, Layout l) {
  return std::string(ts::dtype_name(dt)) + " " + ts::shape_str(s) + " " + layout_name(l);
}

struct IndexCase {
  Shape x;
  int64_t axis;
  Shape index;
  Shape src;  // scatter only (>= index everywhere)
};

const std::vector<IndexCase>& gather_scatter_cases() {
  static const std::vector<IndexCase> v{{{4, 5}, 0, {3, 5}, {3, 6}},
                                        {{4, 5}, 1, {4, 7}, {4, 7}},
                                        {{4, 5}, -1, {2, 3}, {3, 3}},
                                        {{2, 3, 4}, 1, {2, 5, 4}, {2, 5, 4}},
                                        {{2, 3, 4}, -1, {1, 2, 6}, {2, 2, 6}},
                                        {{2, 3, 4}, 0, {3, 3, 2}, {3, 3, 4}},
                                        {{6}, 0, {9}, {10}},
                                        {{1, 4, 1}, 1, {1, 6, 1}, {1, 6, 2}},
                                        {{0, 3}, 1, {0, 2}, {0, 2}},
                                        {{3, 0}, 0, {2, 0}, {2, 0}},
                                        {{3, 4}, 1, {3, 0}, {3, 0}},
                                        {{}, 0, {}, {}},
                                        {{3, 4, 2, 3}, 2, {2, 4, 3, 2}, {2, 4, 3, 3}}};
  return v;
}

}  // namespace

// ------------------------------------------------------------------ gather
TEST(Gather, MatchesReferenceForEveryDtypeLayoutAndIndexDtype) {
  uint64_t seed = 1;
  for (ts::DType dt : all_dtypes()) {
    for (const IndexCase& c : gather_scatter_cases()) {
      int64_t n =
          c.x.empty() ? 1 : c.x[static_cast<size_t>(c.axis < 0 ? c.axis + static_cast<int64_t>(c.x.size()) : c.axis)];
      for (Layout l : all_layouts()) {
        for (ts::DType it : {ts::DType::Int64, ts::DType::Int32}) {
          SCOPED_TRACE(trace(dt, c.x, l) + " axis " + std::to_string(c.axis) + " index " + ts::shape_str(c.index) +
                       " " + std::string(ts::dtype_name(it)));
          ts::Tensor x = make_input(c.x, dt, l, seed++, -50, 50);
          Layout il = it == ts::DType::Int64 ? Layout::Contiguous : l;
          ts::Tensor index = make_index(c.index, n, it, il, seed++);
          int64_t axis = c.axis < 0 ? c.axis + std::max<int64_t>(1, static_cast<int64_t>(c.x.size())) : c.axis;
          EXPECT_CLOSE(ts::gather(x, c.axis, index), ref_gather(to_ref(x), axis, to_ref(index)), dt);
        }
      }
    }
  }
}

TEST(Gather, LargeInputsOnSeveralThreads) {
  ts::Tensor x = make_input({300, 400}, ts::DType::Float32, Layout::Transposed, 5);
  for (int64_t axis : {0, 1}) {
    ts::Tensor index = make_index({200, 300}, axis == 0 ? 300 : 400, ts::DType::Int64, Layout::Contiguous, 6 + axis);
    SCOPED_TRACE("axis " + std::to_string(axis));
    EXPECT_CLOSE(ts::gather(x, axis, index), ref_gather(to_ref(x), axis, to_ref(index)), ts::DType::Float32);
  }
}

TEST(Gather, ReportsTheFirstOutOfRangeIndex) {
  ts::Tensor x = ts::zeros({3, 5});
  expect_error<ts::IndexError>(
      [&] {
        ts::gather(x, 1, ts::tensor<int64_t>({0, 7, 9, 1}, {2, 2}));
      },
      {"[gather] index 7 is out of range for axis 1 of size 5"});
  expect_error<ts::IndexError>(
      [&] {
        ts::gather(x, 0, ts::tensor<int32_t>({-4}, {1, 1}));
      },
      {"[gather] index -4 is out of range for axis 0 of size 3"});
  expect_error<ts::IndexError>(
      [&] {
        ts::gather(ts::zeros({2, 0}), 1, ts::zeros({2, 1}, ts::DType::Int64));
      },
      {"[gather]", "index 0", "size 0"});
  // One bad value at the end of a large index: checked, never read out of bounds.
  ts::Tensor big = ts::zeros({1000, 100}, ts::DType::Int64);
  ts::Tensor bad = ts::concat({big, ts::full({1, 100}, 100, ts::DType::Int64)}, 0);
  expect_error<ts::IndexError>(
      [&] {
        ts::gather(ts::zeros({1001, 100}), 1, bad);
      },
      {"[gather] index 100 is out of range"});
}

TEST(Gather, RejectsBadShapesAndDtypes) {
  ts::Tensor x = ts::zeros({3, 5});
  expect_error<ts::DTypeError>([&] { ts::gather(x, 1, ts::zeros({3, 1})); }, {"[gather]", "int32 or int64", "float32"});
  expect_error<ts::DTypeError>([&] { ts::gather(x, 1, ts::zeros({3, 1}, ts::DType::UInt8)); }, {"[gather]", "uint8"});
  expect_error<ts::ShapeError>([&] { ts::gather(x, 1, ts::zeros({3}, ts::DType::Int64)); },
                               {"[gather]", "[3]", "[3,5]"});
  expect_error<ts::ShapeError>(
      [&] {
        ts::gather(x, 1, ts::zeros({4, 1}, ts::DType::Int64));
      },
      {"[gather]", "[4,1]", "[3,5]"});
  expect_error<ts::IndexError>([&] { ts::gather(x, 2, ts::zeros({3, 1}, ts::DType::Int64)); }, {"[gather]", "axis 2"});
}

// --------------------------------------------------------- take_along_axis
TEST(TakeAlongAxis, BroadcastsIndexAgainstXOutsideTheAxis) {
  uint64_t seed = 100;
  struct C {
    Shape x;
    int64_t axis;
    Shape index;
  };
  const std::vector<C> cases{{{3, 1, 4}, 2, {1, 5, 2}}, {{3, 4}, 1, {3, 2}}, {{3, 4}, 0, {6, 1}},
                             {{1, 4}, -1, {5, 3}},      {{4}, 0, {6}},       {{2, 0}, 0, {3, 1}}};
  for (ts::DType dt : {ts::DType::Bool, ts::DType::Int8, ts::DType::Float16, ts::DType::Float64}) {
    for (const C& c : cases) {
      for (Layout l : all_layouts()) {
        SCOPED_TRACE(trace(dt, c.x, l) + " index " + ts::shape_str(c.index));
        size_t a = static_cast<size_t>(c.axis < 0 ? c.axis + static_cast<int64_t>(c.x.size()) : c.axis);
        ts::Tensor x = make_input(c.x, dt, l, seed++, -50, 50);
        ts::Tensor index = make_index(c.index, c.x[a], ts::DType::Int64, l, seed++);
        // Reference: broadcast shapes outside the axis, then gather.
        Shape bx = c.x, bi = c.index;
        for (size_t d = 0; d < bx.size(); ++d)
          if (d != a) bx[d] = bi[d] = std::max(c.x[d], c.index[d]) * (c.x[d] != 0 && c.index[d] != 0);
        Ref rx = to_ref(x), ri = to_ref(index), ex{bx, {}}, ei{bi, {}};
        for_each_index(bx, [&](std::span<const int64_t> idx, int64_t) {
          ex.v.push_back(rx.v[static_cast<size_t>(broadcast_index(c.x, bx, idx))]);
        });
        for_each_index(bi, [&](std::span<const int64_t> idx, int64_t) {
          ei.v.push_back(ri.v[static_cast<size_t>(broadcast_index(c.index, bi, idx))]);
        });
        EXPECT_CLOSE(ts::take_along_axis(x, index, c.axis), ref_gather(ex, static_cast<int64_t>(a), ei), dt);
      }
    }
  }
  expect_error<ts::ShapeError>(
      [] {
        ts::take_along_axis(ts::zeros({3, 4}), ts::zeros({2, 1}, ts::DType::Int64), 1);
      },
      {"[take_along_axis]", "[2,1]", "[3,4]"});
  expect_error<ts::ShapeError>(
      [] {
        ts::take_along_axis(ts::zeros({3, 4}), ts::zeros({2}, ts::DType::Int64), 1);
      },
      {"[take_along_axis]", "[2]", "[3,4]"});
}

TEST(TakeAlongAxis, WithArgsortResultsSortsValues) {
  ts::Tensor x = ts::tensor<float>({3, 1, 2, 9, 7, 8}, {2, 3});
  ts::Tensor idx = ts::tensor<int64_t>({1, 2, 0, 1, 2, 0}, {2, 3});
  EXPECT_EQ(ts::take_along_axis(x, idx, 1).to_vector<float>(), (std::vector<float>{1, 2, 3, 7, 8, 9}));
}

// ---------------------------------------------------------------- scatter
TEST(Scatter, MatchesReferenceWithLastWriteWinning) {
  uint64_t seed = 200;
  for (bool add : {false, true}) {
    for (ts::DType dt : all_dtypes()) {
      for (const IndexCase& c : gather_scatter_cases()) {
        int64_t n =
            c.x.empty() ? 1 : c.x[static_cast<size_t>(c.axis < 0 ? c.axis + static_cast<int64_t>(c.x.size()) : c.axis)];
        for (Layout l : all_layouts()) {
          ts::DType it = seed % 2 ? ts::DType::Int32 : ts::DType::Int64;
          SCOPED_TRACE(std::string(add ? "scatter_add " : "scatter ") + trace(dt, c.x, l) + " axis " +
                       std::to_string(c.axis) + " index " + ts::shape_str(c.index));
          ts::Tensor x = make_input(c.x, dt, l, seed++, -50, 50);
          ts::Tensor index = make_index(c.index, n, it, l, seed++);
          ts::Tensor src =
              make_input(c.src, dt, l == Layout::Contiguous ? Layout::Transposed : Layout::Contiguous, seed++, -50, 50);
          int64_t axis = c.axis < 0 ? c.axis + std::max<int64_t>(1, static_cast<int64_t>(c.x.size())) : c.axis;
          ts::Tensor got = add ? ts::scatter_add(x, c.axis, index, src) : ts::scatter(x, c.axis, index, src);
          EXPECT_CLOSE_TOL(got, ref_scatter(to_ref(x), axis, to_ref(index), to_ref(src), add), dt, add ? 4.0 : 1.0);
        }
      }
    }
  }
}

TEST(Scatter, DuplicateIndicesResolveDeterministically) {
  // Along axis 0 every row writes to row 0 or 1; the last row in index order wins.
  // Column 0 gets rows {0,1} -> 0 and {2} -> 1; column 1: {0} -> 1, {1,2} -> 0; column 2: {0} -> 0, {1,2} -> 1.
  ts::Tensor x = ts::zeros({2, 3}, ts::DType::Int64);
  ts::Tensor index = ts::tensor<int64_t>({0, 1, 0, 0, 0, 1, 1, 0, 1}, {3, 3});
  ts::Tensor src = ts::tensor<int64_t>({1, 2, 3, 4, 5, 6, 7, 8, 9}, {3, 3});
  EXPECT_EQ(ts::scatter(x, 0, index, src).to_vector<int64_t>(), (std::vector<int64_t>{4, 8, 3, 7, 2, 9}));
  EXPECT_EQ(ts::scatter_add(x, 0, index, src).to_vector<int64_t>(),
            (std::vector<int64_t>{1 + 4, 5 + 8, 3, 7, 2, 6 + 9}));
  // Large float32 accumulation: identical bits with one thread and with several.
  ts::Tensor big_idx = ts::remainder(make_input({20000, 8}, ts::DType::Int64, Layout::Contiguous, 3, 0, 1000), 16);
  ts::Tensor big_src = make_input({20000, 8}, ts::DType::Float32, Layout::Contiguous, 4);
  ts::Tensor zero = ts::zeros({16, 8});
  int threads = ts::get_num_threads();
  ts::Tensor many = ts::scatter_add(zero, 0, big_idx, big_src);
  ts::Tensor last = ts::scatter(zero, 0, big_idx, big_src);
  ts::set_num_threads(1);
  ts::Tensor one = ts::scatter_add(zero, 0, big_idx, big_src);
  ts::Tensor last1 = ts::scatter(zero, 0, big_idx, big_src);
  ts::set_num_threads(threads);
  EXPECT_EQ(many.to_vector<float>(), one.to_vector<float>());
  EXPECT_EQ(last.to_vector<float>(), last1.to_vector<float>());
  EXPECT_CLOSE_TOL(many, ref_scatter(to_ref(zero), 0, to_ref(big_idx), to_ref(big_src), true), ts::DType::Float32, 100);
  EXPECT_CLOSE(last, ref_scatter(to_ref(zero), 0, to_ref(big_idx), to_ref(big_src), false), ts::DType::Float32);
}

TEST(Scatter, IndexBroadcastOverRowsMatchesTheElementWalk) {
  // An embedding's gradient: one index per row, expanded over the row (stride 0), onto
  // contiguous rows. Rows are added in one loop each; the result must be the element-by-element
  // walk's (the same index made contiguous) bit for bit, duplicates in index order.
  for (ts::DType dt : {ts::DType::Float32, ts::DType::Float16, ts::DType::Int64}) {
    SCOPED_TRACE(std::string(ts::dtype_name(dt)));
    ts::Tensor rows = ts::remainder(make_input({3000, 1}, ts::DType::Int64, Layout::Contiguous, 7, 0, 1000), 40);
    ts::Tensor expanded = ts::expand(rows, {3000, 300}), walked = expanded.contiguous();
    ts::Tensor src = make_input({3000, 300}, dt, Layout::Contiguous, 8, -50, 50);
    ts::Tensor x = make_input({40, 300}, dt, Layout::Contiguous, 9, -50, 50);
    EXPECT_TRUE(ts::equal(ts::scatter_add(x, 0, expanded, src), ts::scatter_add(x, 0, walked, src)));
    EXPECT_TRUE(ts::equal(ts::scatter(x, 0, expanded, src), ts::scatter(x, 0, walked, src)));
  }
  ts::Tensor bad = ts::expand(ts::tensor<int64_t>({0, 5}, {2, 1}), {2, 4});
  expect_error<ts::IndexError>(
      [&] {
        ts::scatter_add(ts::zeros({3, 4}), 0, bad, ts::ones({2, 4}));
      },
      {"[scatter_add]", "5"});
}

TEST(ScatterAdd, AccumulatesHalfPrecisionInFloat32AndWrapsIntegers) {
  // 1000 additions of 0.1 in float16 round to 100 only when accumulated in higher precision.
  ts::Tensor x = ts::zeros({1}, ts::DType::Float16);
  ts::Tensor idx = ts::zeros({1000}, ts::DType::Int64);
  ts::Tensor src = ts::full({1000}, 0.1, ts::DType::Float16);
  float expected =
      static_cast<float>(ts::Half(static_cast<float>(1000 * static_cast<double>(static_cast<float>(ts::Half(0.1f))))));
  EXPECT_EQ(ts::scatter_add(x, 0, idx, src).to_vector<float>()[0], expected);
  ts::Tensor i8 = ts::tensor<int8_t>({120});
  EXPECT_EQ(ts::scatter_add(i8, 0, ts::zeros({2}, ts::DType::Int32), ts::tensor<int8_t>({5, 5})).to_vector<int8_t>()[0],
            -126);
  ts::Tensor b = ts::tensor<bool>({false, false});
  EXPECT_EQ(ts::scatter_add(b, 0, ts::tensor<int64_t>({1, 1}), ts::tensor<bool>({true, true})).to_vector<bool>(),
            (std::vector<bool>{false, true}));
}

TEST(Scatter, CastsSrcAndAcceptsAScalarSrc) {
  ts::Tensor x = ts::zeros({2, 3}, ts::DType::Int32);
  ts::Tensor idx = ts::tensor<int64_t>({2, 0}, {2, 1});
  EXPECT_EQ(ts::scatter(x, 1, idx, ts::tensor<float>({1.9f, -2.5f}, {2, 1})).to_vector<int32_t>(),
            (std::vector<int32_t>{0, 0, 1, -2, 0, 0}));
  EXPECT_EQ(ts::scatter(x, 1, idx, ts::scalar_tensor(int64_t{7})).to_vector<int32_t>(),
            (std::vector<int32_t>{0, 0, 7, 7, 0, 0}));
  EXPECT_EQ(ts::scatter_add(x, 1, idx, ts::scalar_tensor(int64_t{7})).dtype(), ts::DType::Int32);
}

TEST(Scatter, RejectsBadIndicesShapesAndDtypes) {
  ts::Tensor x = ts::zeros({3, 5});
  ts::Tensor src = ts::ones({3, 2});
  expect_error<ts::IndexError>(
      [&] {
        ts::scatter(x, 1, ts::tensor<int64_t>({0, 1, 2, 5, 0, 0}, {3, 2}), src);
      },
      {"[scatter] index 5 is out of range for axis 1 of size 5"});
  expect_error<ts::IndexError>(
      [&] {
        ts::scatter_add(x, 0, ts::tensor<int32_t>({0, -4}, {1, 2}), src);
      },
      {"[scatter_add] index -4 is out of range for axis 0 of size 3"});
  expect_error<ts::ShapeError>(
      [&] {
        ts::scatter(x, 1, ts::zeros({3, 3}, ts::DType::Int64), src);
      },
      {"[scatter]", "[3,3]", "[3,2]"});
  expect_error<ts::ShapeError>(
      [&] {
        ts::scatter(x, 1, ts::zeros({4, 1}, ts::DType::Int64), ts::ones({4, 1}));
      },
      {"[scatter]", "[4,1]", "[3,5]"});
  expect_error<ts::ShapeError>([&] { ts::scatter_add(x, 1, ts::zeros({3}, ts::DType::Int64), src); },
                               {"[scatter_add]", "[3]"});
  expect_error<ts::DTypeError>([&] { ts::scatter(x, 1, ts::zeros({3, 2}), src); }, {"[scatter]", "float32"});
  expect_error<ts::IndexError>(
      [&] {
        ts::scatter(x, -3, ts::zeros({3, 2}, ts::DType::Int64), src);
      },
      {"[scatter]", "axis -3"});
}

// ----------------------------------------------------------- index_select
TEST(IndexSelect, MatchesReferenceForEveryDtypeAndLayout) {
  uint64_t seed = 300;
  const std::vector<std::pair<Shape, int64_t>> cases{{{5}, 0},       {{4, 6}, 0},    {{4, 6}, 1},    {{4, 6}, -1},
                                                     {{2, 3, 4}, 1}, {{2, 3, 4}, 2}, {{1, 5, 1}, 1}, {{0, 3}, 1},
                                                     {{3, 0}, 0},    {{}, 0}};
  for (ts::DType dt : all_dtypes()) {
    for (const auto& [shape, axis] : cases) {
      size_t a = static_cast<size_t>(axis < 0 ? axis + static_cast<int64_t>(shape.size()) : axis);
      int64_t n = shape.empty() ? 1 : shape[a];
      for (Layout l : all_layouts()) {
        for (int64_t m : {0, 1, 7}) {
          SCOPED_TRACE(trace(dt, shape, l) + " axis " + std::to_string(axis) + " m " + std::to_string(m));
          ts::Tensor x = make_input(shape, dt, l, seed++, -50, 50);
          ts::DType it = m % 2 ? ts::DType::Int32 : ts::DType::Int64;
          ts::Tensor index = make_index({m}, n, it, l == Layout::Transposed ? Layout::Contiguous : l, seed++);
          if (n == 0 && m > 0) continue;
          ts::Tensor y = ts::index_select(x, axis, index);
          Ref rx = to_ref(x);
          if (shape.empty()) rx.shape = {1};
          EXPECT_CLOSE(y, ref_index_select(rx, static_cast<int64_t>(a), to_ref(index)), dt);
        }
      }
    }
  }
  // A 0-d index keeps the axis' rank out (size 1 x 0-d index -> 0-d result for a 0-d x).
  EXPECT_EQ(ts::index_select(ts::scalar_tensor(4.0), 0, ts::scalar_tensor(int64_t{0})).shape(), (Shape{}));
  EXPECT_EQ(ts::index_select(ts::tensor<float>({1, 2, 3}), 0, ts::scalar_tensor(int64_t{-1})).to_vector<float>(),
            (std::vector<float>{3}));
}

TEST(IndexSelect, RejectsBadIndices) {
  ts::Tensor x = ts::zeros({4, 6});
  expect_error<ts::IndexError>(
      [&] {
        ts::index_select(x, 1, ts::tensor<int64_t>({0, 6}));
      },
      {"[index_select] index 6 is out of range for axis 1 of size 6"});
  expect_error<ts::IndexError>([&] { ts::index_select(x, 0, ts::tensor<int32_t>({-5})); },
                               {"[index_select] index -5 is out of range for axis 0 of size 4"});
  expect_error<ts::ShapeError>(
      [&] {
        ts::index_select(x, 0, ts::zeros({2, 2}, ts::DType::Int64));
      },
      {"[index_select]", "1-d", "[2,2]"});
  expect_error<ts::DTypeError>([&] { ts::index_select(x, 0, ts::zeros({2}, ts::DType::Bool)); },
                               {"[index_select]", "bool"});
  expect_error<ts::IndexError>(
      [&] {
        ts::index_select(ts::zeros({0, 2}), 0, ts::zeros({1}, ts::DType::Int64));
      },
      {"[index_select]", "index 0", "size 0"});
}

// ------------------------------------------------------------- embedding
TEST(Embedding, LooksUpRowsForIndicesOfAnyShape) {
  uint64_t seed = 400;
  for (ts::DType dt : {ts::DType::Float32, ts::DType::BFloat16, ts::DType::Int64}) {
    for (Layout l : {Layout::Contiguous, Layout::Transposed, Layout::Sliced}) {
      ts::Tensor w = make_input({50, 16}, dt, l, seed++, -50, 50);
      Ref rw = to_ref(w);
      for (const Shape& s : std::vector<Shape>{{}, {7}, {3, 4}, {0, 2}, {2, 1, 3}}) {
        SCOPED_TRACE(trace(dt, s, l));
        ts::Tensor idx =
            make_index(s, 50, s.size() % 2 ? ts::DType::Int32 : ts::DType::Int64, Layout::Contiguous, seed++);
        Ref ri = to_ref(idx);
        Shape os = s;
        os.push_back(16);
        Ref want{os, {}};
        for (double v : ri.v)
          for (int64_t j = 0; j < 16; ++j) want.v.push_back(rw.at(Shape{wrap(v, 50), j}));
        EXPECT_CLOSE(ts::embedding(w, idx), want, dt);
      }
    }
  }
  // Large lookup (parallel row copies).
  ts::Tensor w = make_input({1000, 64}, ts::DType::Float32, Layout::Contiguous, 9);
  ts::Tensor idx = make_index({64, 50}, 1000, ts::DType::Int64, Layout::Contiguous, 10);
  ts::Tensor e = ts::embedding(w, idx);
  EXPECT_CLOSE(ts::reshape(e, {3200, 64}), ref_index_select(to_ref(w), 0, Ref{{3200}, to_ref(idx).v}),
               ts::DType::Float32);
  expect_error<ts::ShapeError>([] { ts::embedding(ts::zeros({5}), ts::zeros({2}, ts::DType::Int64)); },
                               {"[embedding]", "[5]"});
  expect_error<ts::DTypeError>([] { ts::embedding(ts::zeros({5, 2}), ts::zeros({2})); }, {"[embedding]", "float32"});
  expect_error<ts::IndexError>(
      [] {
        ts::embedding(ts::zeros({5, 2}), ts::tensor<int64_t>({1, 5}));
      },
      {"index 5", "size 5"});
}

// ---------------------------------------------------------------- one_hot
TEST(OneHot, MarksEachClassForIndicesOfAnyShape) {
  uint64_t seed = 500;
  for (ts::DType out : {ts::DType::Int64, ts::DType::Float32, ts::DType::Bool, ts::DType::UInt8}) {
    for (const Shape& s : std::vector<Shape>{{}, {6}, {2, 3}, {0}, {3, 0, 2}}) {
      for (ts::DType it : {ts::DType::Int32, ts::DType::Int64}) {
        SCOPED_TRACE(trace(out, s, Layout::Contiguous) + " " + std::string(ts::dtype_name(it)));
        ts::Tensor idx = make_input(s, it, Layout::Contiguous, seed++, 0, 4);
        Ref ri = to_ref(idx);
        Shape os = s;
        os.push_back(5);
        Ref want{os, {}};
        for (double v : ri.v)
          for (int64_t k = 0; k < 5; ++k) want.v.push_back(static_cast<double>(static_cast<int64_t>(v) == k));
        EXPECT_CLOSE(ts::one_hot(idx, 5, out), want, out);
      }
    }
  }
  EXPECT_EQ(ts::one_hot(ts::tensor<int64_t>({1}), 3).dtype(), ts::DType::Int64);
  ts::Tensor idx = make_input({3, 4}, ts::DType::Int64, Layout::Transposed, 7, 0, 2);
  EXPECT_EQ(ts::one_hot(idx, 3).to_vector<int64_t>(), ts::one_hot(ts::contiguous(idx), 3).to_vector<int64_t>());
}

TEST(OneHot, RejectsClassesOutOfRange) {
  expect_error<ts::IndexError>(
      [] {
        ts::one_hot(ts::tensor<int64_t>({0, 3}), 3);
      },
      {"[one_hot]", "class 3", "3 classes"});
  expect_error<ts::IndexError>([] { ts::one_hot(ts::tensor<int64_t>({-1}), 3); }, {"[one_hot]", "class -1"});
  expect_error<ts::DTypeError>([] { ts::one_hot(ts::tensor<float>({1}), 3); }, {"[one_hot]", "float32"});
  expect_error<ts::ValueError>([] { ts::one_hot(ts::tensor<int64_t>({1}), -2); }, {"[one_hot]", "-2"});
}
