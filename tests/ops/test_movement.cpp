// Conformance of the data-movement ops (concat, stack, split, chunk, pad, flip, roll, tile,
// repeat_interleave) against naive float64 references over every dtype and input layout, plus
// shape/dtype edge cases and error messages.
#include <algorithm>

#include "harness/harness.h"

namespace ts = tessera;
using namespace tessera::testing;
using ts::IntList;
using ts::Shape;
using ts::Strides;

namespace {

int64_t norm_axis(int64_t axis, size_t nd) { return axis < 0 ? axis + static_cast<int64_t>(nd) : axis; }

/// Row-major concat: for each outer position, each input's contiguous (axis x inner) block in turn.
Ref ref_concat(const std::vector<Ref>& xs, int64_t axis) {
  Shape s = xs[0].shape;
  size_t a = static_cast<size_t>(axis);
  s[a] = 0;
  for (const Ref& r : xs) s[a] += r.shape[a];
  int64_t outer = 1, inner = 1;
  for (size_t d = 0; d < a; ++d) outer *= s[d];
  for (size_t d = a + 1; d < s.size(); ++d) inner *= s[d];
  Ref out{s, {}};
  for (int64_t o = 0; o < outer; ++o) {
    for (const Ref& r : xs) {
      int64_t len = r.shape[a] * inner;
      out.v.insert(out.v.end(), r.v.begin() + o * len, r.v.begin() + (o + 1) * len);
    }
  }
  return out;
}

/// Source index for output position j of an axis of size n padded with lo in front; -1 = fill.
int64_t ref_pad_source(int64_t j, int64_t lo, int64_t n, ts::PadMode mode) {
  int64_t i = j - lo;
  if (i >= 0 && i < n) return i;
  if (mode == ts::PadMode::Constant) return -1;
  if (mode == ts::PadMode::Edge) return i < 0 ? 0 : n - 1;
  // Reflect (no edge repeat), possibly bouncing more than once for generality.
  while (i < 0 || i >= n) i = i < 0 ? -i : 2 * (n - 1) - i;
  return i;
}

Ref ref_pad(const Ref& x, const std::vector<int64_t>& pads, ts::PadMode mode, double value) {
  size_t nd = x.shape.size();
  std::vector<int64_t> p(2 * nd, 0);
  std::copy(pads.begin(), pads.end(), p.begin());
  Shape s = x.shape;
  for (size_t d = 0; d < nd; ++d) s[d] += p[2 * d] + p[2 * d + 1];
  Ref out{s, {}};
  for_each_index(s, [&](std::span<const int64_t> idx, int64_t) {
    Shape src(nd);
    for (size_t d = 0; d < nd; ++d) {
      int64_t k = ref_pad_source(idx[d], p[2 * d], x.shape[d], mode);
      if (k < 0) {
        out.v.push_back(value);
        return;
      }
      src[d] = k;
    }
    out.v.push_back(x.at(src));
  });
  return out;
}

Ref ref_flip(const Ref& x, const std::vector<int64_t>& axes) {
  Ref out{x.shape, {}};
  for_each_index(x.shape, [&](std::span<const int64_t> idx, int64_t) {
    Shape src(idx.begin(), idx.end());
    for (int64_t a : axes) {
      size_t d = static_cast<size_t>(norm_axis(a, x.shape.size()));
      src[d] = x.shape[d] - 1 - idx[d];
    }
    out.v.push_back(x.at(src));
  });
  return out;
}

Ref ref_roll(const Ref& x, int64_t shift, std::optional<int64_t> axis) {
  Ref out{x.shape, std::vector<double>(x.v.size())};
  if (!axis) {
    int64_t n = x.numel();
    for (int64_t i = 0; i < n; ++i)
      out.v[static_cast<size_t>((((i + shift) % n) + n) % n)] = x.v[static_cast<size_t>(i)];
    return out;
  }
  size_t a = static_cast<size_t>(norm_axis(*axis, x.shape.size()));
  Strides st = x.strides();
  for_each_index(x.shape, [&](std::span<const int64_t> idx, int64_t lin) {
    int64_t n = x.shape[a];
    int64_t j = (((idx[a] + shift) % n) + n) % n;
    out.v[static_cast<size_t>(lin + (j - idx[a]) * st[a])] = x.v[static_cast<size_t>(lin)];
  });
  return out;
}

Ref ref_tile(const Ref& x, const std::vector<int64_t>& reps) {
  size_t nd = std::max(x.shape.size(), reps.size());
  Shape xs(nd, 1), rs(nd, 1);
  std::copy(x.shape.begin(), x.shape.end(), xs.begin() + static_cast<std::ptrdiff_t>(nd - x.shape.size()));
  std::copy(reps.begin(), reps.end(), rs.begin() + static_cast<std::ptrdiff_t>(nd - reps.size()));
  Shape s(nd);
  for (size_t d = 0; d < nd; ++d) s[d] = xs[d] * rs[d];
  Ref xr{xs, x.v};
  Ref out{s, {}};
  for_each_index(s, [&](std::span<const int64_t> idx, int64_t) {
    Shape src(nd);
    for (size_t d = 0; d < nd; ++d) src[d] = idx[d] % xs[d];
    out.v.push_back(xr.at(src));
  });
  return out;
}

/// Repeats entry i of axis counts[i] times.
Ref ref_repeat(const Ref& x, const std::vector<int64_t>& counts, size_t a) {
  std::vector<int64_t> src_of;
  for (size_t i = 0; i < counts.size(); ++i)
    for (int64_t k = 0; k < counts[i]; ++k) src_of.push_back(static_cast<int64_t>(i));
  Shape s = x.shape;
  s[a] = static_cast<int64_t>(src_of.size());
  Ref out{s, {}};
  for_each_index(s, [&](std::span<const int64_t> idx, int64_t) {
    Shape src(idx.begin(), idx.end());
    src[a] = src_of[static_cast<size_t>(idx[a])];
    out.v.push_back(x.at(src));
  });
  return out;
}

std::string trace(ts::DType dt, const Shape& s, Layout l) {
  return std::string(ts::dtype_name(dt)) + " " + ts::shape_str(s) + " " + layout_name(l);
}

}  // namespace

// ------------------------------------------------------------------ concat
TEST(Concat, MatchesReferenceForEveryDtypeLayoutAndAxis) {
  uint64_t seed = 1;
  const std::vector<Shape> shapes{{5}, {0}, {1}, {3, 4}, {1, 1}, {2, 0}, {2, 3, 4}, {2, 1, 3}};
  for (ts::DType dt : all_dtypes()) {
    for (const Shape& base : shapes) {
      int64_t nd = static_cast<int64_t>(base.size());
      for (int64_t axis = -nd; axis < nd; ++axis) {
        size_t a = static_cast<size_t>(norm_axis(axis, base.size()));
        for (Layout l : all_layouts()) {
          SCOPED_TRACE(trace(dt, base, l) + " axis " + std::to_string(axis));
          std::vector<ts::Tensor> xs;
          std::vector<Ref> refs;
          for (int64_t extra : {base[a], int64_t{0}, int64_t{2}, int64_t{1}}) {
            Shape s = base;
            s[a] = extra;
            // Mix layouts: every other input contiguous, so mixed paths are exercised.
            Layout li = xs.size() % 2 == 0 ? l : Layout::Contiguous;
            xs.push_back(make_input(s, dt, li, seed++, -50, 50));
            refs.push_back(to_ref(xs.back()));
          }
          EXPECT_CLOSE(ts::concat(xs, axis), ref_concat(refs, static_cast<int64_t>(a)), dt);
        }
      }
    }
  }
}

TEST(Concat, LargeInputsAcrossTheParallelPaths) {
  // Big contiguous rows (memcpy), many small rows (row-wise fast path) and strided inputs.
  uint64_t seed = 50;
  for (int64_t axis : {0, 1}) {
    for (Layout l : {Layout::Contiguous, Layout::Transposed}) {
      ts::Tensor a = make_input({160, 257}, ts::DType::Float32, l, seed++);
      ts::Tensor b = make_input({160, 257}, ts::DType::Float32, Layout::Contiguous, seed++);
      SCOPED_TRACE("axis " + std::to_string(axis) + " " + layout_name(l));
      EXPECT_CLOSE(ts::concat({a, b, a}, axis), ref_concat({to_ref(a), to_ref(b), to_ref(a)}, axis),
                   ts::DType::Float32);
    }
  }
  std::vector<ts::Tensor> many;
  std::vector<Ref> refs;
  for (int i = 0; i < 40; ++i) {
    many.push_back(make_input({2000, 1 + i % 3}, ts::DType::Int64, Layout::Contiguous, seed++, -1000, 1000));
    refs.push_back(to_ref(many.back()));
  }
  EXPECT_CLOSE(ts::concat(many, 1), ref_concat(refs, 1), ts::DType::Int64);
}

TEST(Concat, PromotesDtypesLikeBinaryOps) {
  ts::Tensor i32 = ts::tensor<int32_t>({1, 2});
  ts::Tensor f16 = ts::cast(ts::tensor<float>({0.5f}), ts::DType::Float16);
  ts::Tensor u8 = ts::tensor<uint8_t>({200});
  ts::Tensor i8 = ts::tensor<int8_t>({-3});
  ts::Tensor b = ts::tensor<bool>({true});
  ts::Tensor r = ts::concat({i32, f16});
  EXPECT_EQ(r.dtype(), ts::DType::Float16);
  EXPECT_EQ(r.to_vector<float>(), (std::vector<float>{1, 2, 0.5f}));
  ts::Tensor r2 = ts::concat({u8, i8, b});
  EXPECT_EQ(r2.dtype(), ts::DType::Int32);
  EXPECT_EQ(r2.to_vector<int32_t>(), (std::vector<int32_t>{200, -3, 1}));
  EXPECT_EQ(ts::concat({b, b}).dtype(), ts::DType::Bool);
}

TEST(Concat, SingleAndEmptyInputs) {
  ts::Tensor x = ts::tensor<float>({1, 2, 3, 4}, {2, 2});
  EXPECT_TRUE(ts::concat({x}, 1).is_same(x));
  ts::Tensor e = ts::zeros({2, 0});
  EXPECT_EQ(ts::concat({e, x, e}, 1).to_vector<float>(), (std::vector<float>{1, 2, 3, 4}));
  EXPECT_EQ(ts::concat({e, e}, 1).shape(), (Shape{2, 0}));
  EXPECT_EQ(ts::concat({ts::zeros({0, 3}), ts::zeros({0, 3})}, 1).shape(), (Shape{0, 6}));
}

TEST(Concat, RejectsMismatchedShapesNamingThem) {
  ts::Tensor a = ts::zeros({2, 3}), b = ts::zeros({3, 4}), c = ts::zeros({2, 3, 1});
  expect_error<ts::ShapeError>([&] { ts::concat({a, b}, 0); }, {"[concat]", "[2,3]", "[3,4]", "axis 0"});
  expect_error<ts::ShapeError>([&] { ts::concat({a, a, b}, 1); }, {"[concat]", "[2,3]", "[3,4]", "input 2"});
  expect_error<ts::ShapeError>([&] { ts::concat({a, c}, 0); }, {"[concat]", "[2,3]", "[2,3,1]"});
  expect_error<ts::ShapeError>(
      [&] {
        ts::concat({ts::scalar_tensor(1.0), ts::scalar_tensor(2.0)});
      },
      {"[concat]", "zero-dimensional"});
  expect_error<ts::ValueError>([&] { ts::concat({}); }, {"[concat]", "at least one"});
  expect_error<ts::IndexError>([&] { ts::concat({a, a}, 2); }, {"[concat]", "axis 2"});
  expect_error<ts::IndexError>([&] { ts::concat({a}, -3); }, {"[concat]", "axis -3"});
  expect_error<ts::ShapeError>([&] { ts::concat({a, b}, 1); }, {"[concat]", "[2,3]", "[3,4]"});
}

// ------------------------------------------------------------------- stack
TEST(Stack, JoinsAlongANewAxis) {
  uint64_t seed = 100;
  for (ts::DType dt : all_dtypes()) {
    for (const Shape& s : std::vector<Shape>{{}, {3}, {0}, {2, 3}, {1, 4}}) {
      int64_t nd = static_cast<int64_t>(s.size());
      for (int64_t axis = -nd - 1; axis <= nd; ++axis) {
        for (Layout l : {Layout::Contiguous, Layout::Transposed, Layout::Expanded}) {
          SCOPED_TRACE(trace(dt, s, l) + " axis " + std::to_string(axis));
          std::vector<ts::Tensor> xs;
          std::vector<Ref> refs;
          for (int k = 0; k < 3; ++k) {
            xs.push_back(make_input(s, dt, l, seed++, -50, 50));
            Ref r = to_ref(xs.back());
            int64_t a = axis < 0 ? axis + nd + 1 : axis;
            r.shape.insert(r.shape.begin() + a, 1);
            refs.push_back(r);
          }
          EXPECT_CLOSE(ts::stack(xs, axis), ref_concat(refs, axis < 0 ? axis + nd + 1 : axis), dt);
        }
      }
    }
  }
}

TEST(Stack, RequiresEqualShapes) {
  expect_error<ts::ShapeError>(
      [] {
        ts::stack({ts::zeros({2, 3}), ts::zeros({3, 2})});
      },
      {"[stack]", "[2,3]", "[3,2]"});
  expect_error<ts::ValueError>([] { ts::stack({}); }, {"[stack]"});
  expect_error<ts::IndexError>([] { ts::stack({ts::zeros({2})}, 2); }, {"[stack]", "axis 2"});
  EXPECT_EQ(ts::stack({ts::zeros({2}, ts::DType::Int8), ts::zeros({2}, ts::DType::Float32)}).dtype(),
            ts::DType::Float32);
}

// ------------------------------------------------------------ split, chunk
TEST(Split, GivesViewsOfTheRequestedSizes) {
  uint64_t seed = 150;
  for (ts::DType dt : {ts::DType::Bool, ts::DType::Int32, ts::DType::BFloat16, ts::DType::Float64}) {
    for (Layout l : all_layouts()) {
      ts::Tensor x = make_input({4, 7}, dt, l, seed++, -50, 50);
      Ref rx = to_ref(x);
      SCOPED_TRACE(trace(dt, x.shape(), l));
      auto parts = ts::split(x, {2, 0, 5}, -1);
      ASSERT_EQ(parts.size(), 3u);
      std::vector<Ref> rp;
      for (auto& p : parts) {
        EXPECT_EQ(p.impl().storage, x.impl().storage);  // views
        rp.push_back(to_ref(p));
      }
      EXPECT_EQ(parts[0].shape(), (Shape{4, 2}));
      EXPECT_EQ(parts[1].shape(), (Shape{4, 0}));
      EXPECT_EQ(parts[2].shape(), (Shape{4, 5}));
      EXPECT_CLOSE(ts::concat(parts, 1), rx, dt);
      auto even = ts::split(x, 3, 1);
      ASSERT_EQ(even.size(), 3u);
      EXPECT_EQ(even[2].shape(), (Shape{4, 1}));
      EXPECT_CLOSE(ts::concat(even, 1), rx, dt);
      auto rows = ts::split(x, 1, 0);
      ASSERT_EQ(rows.size(), 4u);
      for (int64_t i = 0; i < 4; ++i)
        EXPECT_CLOSE(ts::reshape(rows[static_cast<size_t>(i)], {7}),
                     (Ref{{7}, std::vector<double>(rx.v.begin() + 7 * i, rx.v.begin() + 7 * i + 7)}), dt);
    }
  }
  EXPECT_EQ(ts::split(ts::zeros({0, 2}), 4, 0).size(), 1u);
  EXPECT_EQ(ts::split(ts::zeros({5}), 9).size(), 1u);
}

TEST(Split, RejectsSizesThatDoNotAddUp) {
  ts::Tensor x = ts::zeros({4, 5});
  expect_error<ts::ValueError>([&] { ts::split(x, {2, 2}, 1); }, {"[split]", "[2,2]", "5", "[4,5]"});
  expect_error<ts::ValueError>([&] { ts::split(x, {6, -1}, 1); }, {"[split]", "negative"});
  expect_error<ts::ValueError>([&] { ts::split(x, 0, 1); }, {"[split]", "positive"});
  expect_error<ts::IndexError>([&] { ts::split(x, 2, 2); }, {"[split]", "axis 2"});
  expect_error<ts::ShapeError>([&] { ts::split(ts::scalar_tensor(1.0), 1); }, {"[split]", "zero-dimensional"});
}

TEST(Chunk, SplitsIntoAtMostNPiecesOfCeilSize) {
  ts::Tensor x = ts::arange(0, 10, 1, ts::DType::Int64);
  auto c3 = ts::chunk(x, 3);
  ASSERT_EQ(c3.size(), 3u);
  EXPECT_EQ(c3[0].to_vector<int64_t>(), (std::vector<int64_t>{0, 1, 2, 3}));
  EXPECT_EQ(c3[2].to_vector<int64_t>(), (std::vector<int64_t>{8, 9}));
  EXPECT_EQ(ts::chunk(x, 4).size(), 4u);                 // sizes 3,3,3,1
  EXPECT_EQ(ts::chunk(ts::arange(0, 6), 4).size(), 3u);  // sizes 2,2,2 (like PyTorch)
  EXPECT_EQ(ts::chunk(x, 20).size(), 10u);
  ts::Tensor m = make_input({3, 8}, ts::DType::Float32, Layout::Transposed, 3);
  auto parts = ts::chunk(m, 2, -1);
  ASSERT_EQ(parts.size(), 2u);
  EXPECT_CLOSE(ts::concat(parts, 1), to_ref(m), ts::DType::Float32);
  expect_error<ts::ValueError>([&] { ts::chunk(x, 0); }, {"[chunk]", "positive"});
}

// --------------------------------------------------------------------- pad
TEST(Pad, MatchesReferenceForEveryModeDtypeAndLayout) {
  uint64_t seed = 200;
  struct C {
    Shape shape;
    std::vector<int64_t> pads;
  };
  // pads in NumPy order from the first axis; shorter lists leave trailing axes alone.
  const std::vector<C> cases{{{5}, {2, 3}},
                             {{4, 3}, {1, 2, 2, 1}},
                             {{4, 3}, {0, 0, 2, 0}},
                             {{4, 3}, {3, 0}},
                             {{2, 3, 4}, {1, 1, 0, 0, 3, 3}},
                             {{2, 1, 3}, {0, 1, 0, 0, 2, 2}},
                             {{3, 4, 1}, {0, 0, 1, 3}},
                             {{1, 1}, {0, 0, 0, 0}},
                             {{3, 2, 2, 3}, {1, 0, 0, 1, 1, 1, 2, 2}}};
  for (ts::PadMode mode : {ts::PadMode::Constant, ts::PadMode::Reflect, ts::PadMode::Edge}) {
    for (ts::DType dt : all_dtypes()) {
      for (const C& c : cases) {
        // Reflect needs pad < size on every padded axis.
        bool ok = true;
        for (size_t i = 0; i < c.pads.size(); ++i)
          ok = ok && (mode != ts::PadMode::Reflect || c.pads[i] == 0 || c.pads[i] < c.shape[i / 2]);
        if (!ok) continue;
        for (Layout l : all_layouts()) {
          SCOPED_TRACE(trace(dt, c.shape, l) + " mode " + std::to_string(static_cast<int>(mode)) + " pads " +
                       ts::shape_str(c.pads));
          ts::Tensor x = make_input(c.shape, dt, l, seed++, -50, 50);
          double value = dt == ts::DType::Bool ? 1.0 : 7.0;
          ts::Tensor y = ts::pad(x, c.pads, mode, value);
          EXPECT_CLOSE(y, ref_pad(to_ref(x), c.pads, mode, value), dt);
        }
      }
    }
  }
}

TEST(Pad, LargeInputsAndEmptyOrZeroDimTensors) {
  // Large enough to run on several threads; conv-style NCHW padding of the last two axes.
  ts::Tensor x = make_input({4, 8, 40, 41}, ts::DType::Float32, Layout::Sliced, 11);
  for (ts::PadMode mode : {ts::PadMode::Constant, ts::PadMode::Reflect, ts::PadMode::Edge}) {
    std::vector<int64_t> pads{0, 0, 0, 0, 2, 1, 3, 3};
    EXPECT_CLOSE(ts::pad(x, pads, mode, -1.5), ref_pad(to_ref(x), pads, mode, -1.5), ts::DType::Float32);
  }
  // Constant padding of an empty tensor is all fill.
  ts::Tensor e = ts::zeros({0, 2}, ts::DType::Int32);
  ts::Tensor pe = ts::pad(e, {1, 2, 0, 1}, ts::PadMode::Constant, 4);
  EXPECT_EQ(pe.shape(), (Shape{3, 3}));
  EXPECT_EQ(pe.to_vector<int32_t>(), (std::vector<int32_t>(9, 4)));
  // Reflect/edge with zero pads on an empty axis are fine.
  EXPECT_EQ(ts::pad(e, {0, 0, 1, 1}, ts::PadMode::Edge).shape(), (Shape{0, 4}));
  // A 0-d tensor has no axes to pad.
  ts::Tensor s = ts::scalar_tensor(3.0);
  EXPECT_EQ(ts::pad(s, {}).item<double>(), 3.0);
  // No padding at all returns the input.
  ts::Tensor m = ts::zeros({2, 2});
  EXPECT_TRUE(ts::pad(m, {0, 0}).is_same(m));
}

TEST(Pad, ConstantValueIsConvertedToTheDtype) {
  ts::Tensor x = ts::tensor<int32_t>({1, 2});
  EXPECT_EQ(ts::pad(x, {1, 1}, ts::PadMode::Constant, 2.7).to_vector<int32_t>(), (std::vector<int32_t>{2, 1, 2, 2}));
  ts::Tensor h = ts::cast(ts::tensor<float>({1.f}), ts::DType::Float16);
  EXPECT_EQ(ts::pad(h, {0, 1}, ts::PadMode::Constant, 0.1).to_vector<float>()[1], static_cast<float>(ts::Half(0.1f)));
}

TEST(Pad, RejectsInvalidPadsWithShapes) {
  ts::Tensor x = ts::zeros({2, 3});
  expect_error<ts::ValueError>([&] { ts::pad(x, {1, 1, 1}); }, {"[pad]", "pairs"});
  expect_error<ts::ValueError>([&] { ts::pad(x, {1, 1, 1, 1, 1, 1}); }, {"[pad]", "[2,3]"});
  expect_error<ts::ValueError>([&] { ts::pad(x, {0, 0, -1, 0}); }, {"[pad]", "negative", "[2,3]"});
  expect_error<ts::ValueError>(
      [&] {
        ts::pad(x, {0, 0, 3, 0}, ts::PadMode::Reflect);
      },
      {"[pad]", "reflect", "axis 1", "[2,3]"});
  expect_error<ts::ValueError>([&] { ts::pad(x, {2, 0}, ts::PadMode::Reflect); }, {"[pad]", "reflect", "axis 0"});
  expect_error<ts::ValueError>(
      [&] {
        ts::pad(ts::zeros({0, 2}), {1, 0}, ts::PadMode::Edge);
      },
      {"[pad]", "edge", "[0,2]"});
  expect_error<ts::ValueError>(
      [&] {
        ts::pad(ts::zeros({0}), {1, 0}, ts::PadMode::Reflect);
      },
      {"[pad]", "reflect", "[0]"});
  expect_error<ts::ValueError>([&] { ts::pad(x, {0, 1}, static_cast<ts::PadMode>(7)); }, {"[pad]", "mode"});
}

// -------------------------------------------------------------------- flip
TEST(Flip, MatchesReferenceForEveryDtypeLayoutAndAxisSet) {
  uint64_t seed = 300;
  const std::vector<std::pair<Shape, std::vector<int64_t>>> cases{{{7}, {0}},
                                                                  {{0}, {0}},
                                                                  {{1}, {-1}},
                                                                  {{4, 5}, {0}},
                                                                  {{4, 5}, {1}},
                                                                  {{4, 5}, {0, -1}},
                                                                  {{2, 3, 4}, {1}},
                                                                  {{2, 3, 4}, {0, 2}},
                                                                  {{2, 3, 4}, {}},
                                                                  {{3, 1, 4}, {1, 2}},
                                                                  {{2, 3, 2, 3}, {0, 1, 2, 3}}};
  for (ts::DType dt : all_dtypes()) {
    for (const auto& [shape, axes] : cases) {
      for (Layout l : all_layouts()) {
        SCOPED_TRACE(trace(dt, shape, l) + " axes " + ts::shape_str(axes));
        ts::Tensor x = make_input(shape, dt, l, seed++, -50, 50);
        EXPECT_CLOSE(ts::flip(x, axes), ref_flip(to_ref(x), axes), dt);
      }
    }
  }
  ts::Tensor big = make_input({64, 33, 40}, ts::DType::Float64, Layout::Transposed, 9);
  EXPECT_CLOSE(ts::flip(big, {0, 2}), ref_flip(to_ref(big), {0, 2}), ts::DType::Float64);
  EXPECT_CLOSE(ts::flip(big, {1}), ref_flip(to_ref(big), {1}), ts::DType::Float64);
}

TEST(Flip, RejectsBadAxes) {
  ts::Tensor x = ts::zeros({2, 3});
  expect_error<ts::IndexError>([&] { ts::flip(x, {2}); }, {"[flip]", "axis 2"});
  expect_error<ts::ValueError>([&] { ts::flip(x, {1, -1}); }, {"[flip]", "repeated"});
}

// -------------------------------------------------------------------- roll
TEST(Roll, ShiftsCircularlyAlongAnAxisOrTheFlattenedTensor) {
  uint64_t seed = 400;
  for (ts::DType dt : all_dtypes()) {
    for (Layout l : all_layouts()) {
      ts::Tensor x = make_input({3, 5}, dt, l, seed++, -50, 50);
      Ref rx = to_ref(x);
      for (int64_t shift : {0, 1, -1, 2, 7, -12, 15}) {
        SCOPED_TRACE(trace(dt, x.shape(), l) + " shift " + std::to_string(shift));
        EXPECT_CLOSE(ts::roll(x, shift), ref_roll(rx, shift, std::nullopt), dt);
        EXPECT_CLOSE(ts::roll(x, shift, 0), ref_roll(rx, shift, 0), dt);
        EXPECT_CLOSE(ts::roll(x, shift, -1), ref_roll(rx, shift, -1), dt);
      }
    }
  }
  EXPECT_EQ(ts::roll(ts::zeros({0, 3}), 2, 0).shape(), (Shape{0, 3}));
  EXPECT_EQ(ts::roll(ts::zeros({0, 3}), 2).shape(), (Shape{0, 3}));
  EXPECT_EQ(ts::roll(ts::scalar_tensor(4.0), 3).item<double>(), 4.0);
  expect_error<ts::IndexError>([] { ts::roll(ts::zeros({2}), 1, 1); }, {"[roll]", "axis 1"});
}

// -------------------------------------------------------------------- tile
TEST(Tile, RepeatsTheWholeTensorLikeNumPy) {
  uint64_t seed = 500;
  const std::vector<std::pair<Shape, std::vector<int64_t>>> cases{
      {{3}, {2}}, {{3}, {2, 2}},          {{2, 3}, {2}},    {{2, 3}, {1, 3}}, {{2, 3}, {0, 2}},
      {{}, {3}},  {{2, 1, 2}, {2, 1, 3}}, {{0, 2}, {2, 2}}, {{2, 2}, {}},     {{1, 2}, {2, 1, 1}}};
  for (ts::DType dt : all_dtypes()) {
    for (const auto& [shape, reps] : cases) {
      for (Layout l : all_layouts()) {
        SCOPED_TRACE(trace(dt, shape, l) + " reps " + ts::shape_str(reps));
        ts::Tensor x = make_input(shape, dt, l, seed++, -50, 50);
        ts::Tensor y = ts::tile(x, reps);
        EXPECT_CLOSE(y, ref_tile(to_ref(x), reps), dt);
      }
    }
  }
  expect_error<ts::ValueError>([] { ts::tile(ts::zeros({2}), {-1}); }, {"[tile]", "[-1]"});
}

// ------------------------------------------------------- repeat_interleave
TEST(RepeatInterleave, ScalarRepeatsAlongAxisOrFlattened) {
  uint64_t seed = 600;
  for (ts::DType dt : all_dtypes()) {
    for (Layout l : all_layouts()) {
      ts::Tensor x = make_input({2, 3}, dt, l, seed++, -50, 50);
      Ref rx = to_ref(x);
      for (int64_t r : {0, 1, 3}) {
        SCOPED_TRACE(trace(dt, x.shape(), l) + " repeats " + std::to_string(r));
        EXPECT_CLOSE(ts::repeat_interleave(x, r, 0), ref_repeat(rx, std::vector<int64_t>(2, r), 0), dt);
        EXPECT_CLOSE(ts::repeat_interleave(x, r, -1), ref_repeat(rx, std::vector<int64_t>(3, r), 1), dt);
        EXPECT_CLOSE(ts::repeat_interleave(x, r), ref_repeat(Ref{{6}, rx.v}, std::vector<int64_t>(6, r), 0), dt);
      }
    }
  }
  EXPECT_EQ(ts::repeat_interleave(ts::scalar_tensor(int64_t{5}), 3).to_vector<int64_t>(),
            (std::vector<int64_t>{5, 5, 5}));
  expect_error<ts::ValueError>([] { ts::repeat_interleave(ts::zeros({2}), -1); }, {"[repeat_interleave]", "-1"});
  expect_error<ts::IndexError>([] { ts::repeat_interleave(ts::zeros({2}), 2, 1); }, {"[repeat_interleave]", "axis 1"});
}

TEST(RepeatInterleave, PerEntryCounts) {
  uint64_t seed = 700;
  for (ts::DType dt : {ts::DType::Bool, ts::DType::UInt8, ts::DType::Float16, ts::DType::Float32, ts::DType::Int64}) {
    for (Layout l : all_layouts()) {
      ts::Tensor x = make_input({3, 4}, dt, l, seed++, -50, 50);
      Ref rx = to_ref(x);
      SCOPED_TRACE(trace(dt, x.shape(), l));
      EXPECT_CLOSE(ts::repeat_interleave(x, ts::tensor<int64_t>({2, 0, 3}), 0), ref_repeat(rx, {2, 0, 3}, 0), dt);
      EXPECT_CLOSE(ts::repeat_interleave(x, ts::tensor<int32_t>({1, 2, 0, 1}), -1), ref_repeat(rx, {1, 2, 0, 1}, 1),
                   dt);
      EXPECT_CLOSE(ts::repeat_interleave(x, ts::tensor<int64_t>({2}), 1), ref_repeat(rx, {2, 2, 2, 2}, 1), dt);
    }
  }
  ts::Tensor x = ts::zeros({3});
  expect_error<ts::ShapeError>(
      [&] {
        ts::repeat_interleave(x, ts::tensor<int64_t>({1, 2}), 0);
      },
      {"[repeat_interleave]", "[2]", "[3]"});
  expect_error<ts::ValueError>(
      [&] {
        ts::repeat_interleave(x, ts::tensor<int64_t>({1, -2, 1}), 0);
      },
      {"[repeat_interleave]", "-2"});
  expect_error<ts::DTypeError>(
      [&] {
        ts::repeat_interleave(x, ts::tensor<float>({1, 1, 1}), 0);
      },
      {"[repeat_interleave]", "float32"});
}
