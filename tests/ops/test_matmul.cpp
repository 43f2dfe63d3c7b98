// Conformance of matmul against a naive float64 triple loop with NumPy semantics.
#include <cmath>
#include <cstdint>

#include "harness/harness.h"

namespace ts = tessera;
using ts::Shape;
using namespace tessera::testing;

namespace {

// NumPy matmul on row-major float64 data: 1-d promotion, broadcast batch axes.
Ref matmul_ref(const Ref& a, const Ref& b) {
  Shape sa = a.shape, sb = b.shape;
  bool a1 = sa.size() == 1, b1 = sb.size() == 1;
  if (a1) sa.insert(sa.begin(), 1);
  if (b1) sb.push_back(1);
  int64_t m = sa[sa.size() - 2], k = sa.back(), n = sb.back();
  Shape ba(sa.begin(), sa.end() - 2), bb(sb.begin(), sb.end() - 2);
  Shape batch = ts::broadcast_shapes("ref", ba, bb);
  int64_t nb = 1;
  for (int64_t d : batch) nb *= d;
  Ref out;
  out.shape = batch;
  if (!a1) out.shape.push_back(m);
  if (!b1) out.shape.push_back(n);
  out.v.assign(static_cast<size_t>(nb * m * n), 0.0);
  for (int64_t g = 0; g < nb; ++g) {
    // batch multi-index of g
    Shape idx(batch.size());
    int64_t r = g;
    for (size_t d = batch.size(); d-- > 0;) idx[d] = r % batch[d], r /= batch[d];
    int64_t offa = broadcast_index(ba, batch, idx) * m * k;
    int64_t offb = broadcast_index(bb, batch, idx) * k * n;
    for (int64_t i = 0; i < m; ++i)
      for (int64_t j = 0; j < n; ++j) {
        double s = 0;
        for (int64_t p = 0; p < k; ++p)
          s += a.v[static_cast<size_t>(offa + i * k + p)] * b.v[static_cast<size_t>(offb + p * n + j)];
        out.v[static_cast<size_t>((g * m + i) * n + j)] = s;
      }
  }
  return out;
}

struct Case {
  Shape a, b;
};

std::vector<Case> cases() {
  return {
      {{3}, {3}},     // dot product -> 0-d
      {{4}, {4, 5}},  // vector x matrix
      {{2, 4}, {4}},  // matrix x vector
      {{2, 3}, {3, 4}},
      {{1, 1}, {1, 1}},
      {{1, 5}, {5, 1}},
      {{4, 1}, {1, 3}},           // k = 1 (outer product)
      {{2, 0}, {0, 3}},           // k = 0 gives zeros
      {{0, 3}, {3, 4}},           // m = 0
      {{3, 2}, {2, 0}},           // n = 0
      {{5, 2, 3}, {3, 4}},        // batch x shared matrix (one folded GEMM when contiguous)
      {{3, 4}, {2, 4, 5}},        // shared left operand
      {{2, 1, 3, 4}, {5, 4, 2}},  // broadcast batch axes on both sides
      {{1, 3, 4}, {2, 4, 5}},
      {{3}, {2, 3, 4}},  // 1-d with a batch
      {{2, 3, 4}, {4}},
      {{0, 2, 3}, {3, 2}},      // empty batch
      {{33, 65}, {65, 31}},     // library GEMM path
      {{2, 40, 50}, {50, 60}},  // folded batch on the library path
      {{3, 40, 50}, {3, 50, 20}},
      {{70, 70}, {70, 70}},
      {{50}, {50, 300}},
  };
}

double tol_scale(const Case& c) { return std::max(1.0, std::sqrt(static_cast<double>(c.a.back()))); }

void check_case(const Case& c, ts::DType dt, Layout la, Layout lb, uint64_t& seed) {
  SCOPED_TRACE(std::string(ts::dtype_name(dt)) + " " + ts::shape_str(c.a) + " " + layout_name(la) + " x " +
               ts::shape_str(c.b) + " " + layout_name(lb));
  double lo = dt == ts::DType::UInt8 ? 0 : -3, hi = 3;
  ts::Tensor a = make_input(c.a, dt, la, seed++, lo, hi);
  ts::Tensor b = make_input(c.b, dt, lb, seed++, lo, hi);
  Ref want = matmul_ref(to_ref(a), to_ref(b));
  if (dt == ts::DType::Bool)
    for (double& v : want.v) v = v != 0;
  EXPECT_CLOSE_TOL(ts::matmul(a, b), want, dt, tol_scale(c));
}

}  // namespace

TEST(Matmul, Float32MatchesReferenceForEveryShapeAndLayoutPair) {
  uint64_t seed = 1;
  for (const Case& c : cases())
    for (Layout la : all_layouts())
      for (Layout lb : all_layouts()) check_case(c, ts::DType::Float32, la, lb, seed);
}

TEST(Matmul, EveryDtypeMatchesReference) {
  uint64_t seed = 10000;
  for (ts::DType dt : all_dtypes()) {
    if (dt == ts::DType::Float32) continue;
    for (const Case& c : cases()) {
      if (ts::shape_numel(c.a) * c.b.back() > 20000) {  // large: two layout pairs suffice
        check_case(c, dt, Layout::Contiguous, Layout::Contiguous, seed);
        check_case(c, dt, Layout::Transposed, Layout::Sliced, seed);
        continue;
      }
      for (Layout la : {Layout::Contiguous, Layout::Transposed, Layout::Expanded})
        for (Layout lb : {Layout::Contiguous, Layout::Sliced, Layout::Transposed}) check_case(c, dt, la, lb, seed);
    }
  }
}

TEST(Matmul, BFloat16AndFloat16AgreeWithFloat32OnLargerProducts) {
  // Large enough for oneDNN's native bf16 path (f32 accumulation); half precision inputs are exact
  // in float32, so the float32 product of the same values is the reference up to output rounding.
  uint64_t seed = 500;
  for (ts::DType dt : {ts::DType::BFloat16, ts::DType::Float16}) {
    for (const Case& c : std::vector<Case>{{{64, 96}, {96, 80}}, {{3, 48, 64}, {64, 40}}, {{2, 40, 64}, {2, 64, 40}}}) {
      for (Layout la : {Layout::Contiguous, Layout::Transposed}) {
        SCOPED_TRACE(std::string(ts::dtype_name(dt)) + " " + ts::shape_str(c.a) + " " + layout_name(la));
        ts::Tensor a = make_input(c.a, dt, la, seed++);
        ts::Tensor b = make_input(c.b, dt, Layout::Contiguous, seed++);
        Ref want = matmul_ref(to_ref(a), to_ref(b));
        EXPECT_CLOSE_TOL(ts::matmul(a, b), want, dt, 2);
      }
    }
  }
}

TEST(Matmul, ManySmallBatchedProductsRunInParallelForEveryDtype) {
  // Small per-batch products are spread over threads, each GEMM single-threaded inside.
  uint64_t seed = 800;
  for (ts::DType dt : all_dtypes()) {
    for (const Case& c :
         std::vector<Case>{{{64, 12, 10}, {64, 10, 14}}, {{48, 1, 20}, {20, 33}}, {{40, 7, 9}, {1, 9, 5}}}) {
      check_case(c, dt, Layout::Contiguous, Layout::Contiguous, seed);
      check_case(c, dt, Layout::Transposed, Layout::Expanded, seed);
    }
  }
}

TEST(Matmul, LargeProductWithTransposedRightOperand) {
  // x W^T with row-major x (the Linear pattern), large enough for oneDNN's matmul primitive.
  uint64_t seed = 900;
  Case c{{2, 256, 260}, {260, 256}};  // 256*256*260 multiply-adds per batch entry
  check_case(c, ts::DType::Float32, Layout::Offset, Layout::Transposed, seed);
  check_case(c, ts::DType::BFloat16, Layout::Contiguous, Layout::Transposed, seed);
}

TEST(Matmul, IntegerProductsWrapAroundLikeTheDtype) {
  ts::Tensor a8 = ts::tensor<int8_t>({100, 100, -100, 27}, {2, 2});
  ts::Tensor b8 = ts::tensor<int8_t>({2, 1, 1, 3}, {2, 2});
  // [100*2+100*1, 100*1+100*3] = [300, 400] -> [44, -112]; [-200+27, -100+81] = [-173, -19] -> [83, -19]
  EXPECT_EQ(ts::matmul(a8, b8).to_vector<int8_t>(), (std::vector<int8_t>{44, -112, 83, -19}));
  ts::Tensor u8 = ts::tensor<uint8_t>({200, 100}, {1, 2});
  ts::Tensor v8 = ts::tensor<uint8_t>({2, 3}, {2, 1});
  EXPECT_EQ(ts::matmul(u8, v8).to_vector<uint8_t>(), (std::vector<uint8_t>{static_cast<uint8_t>(700 % 256)}));
  ts::Tensor i32 = ts::tensor<int32_t>({1 << 30, 1 << 30}, {1, 2});
  ts::Tensor j32 = ts::tensor<int32_t>({2, 2}, {2, 1});
  EXPECT_EQ(ts::matmul(i32, j32).item<int64_t>(), 0);  // 2^32 wraps to 0
  ts::Tensor i64 = ts::tensor<int64_t>({int64_t{1} << 40, 3}, {1, 2});
  ts::Tensor j64 = ts::tensor<int64_t>({1 << 20, -5}, {2, 1});
  EXPECT_EQ(ts::matmul(i64, j64).item<int64_t>(), (int64_t{1} << 60) - 15);
}

TEST(Matmul, BoolUsesLogicalSemantics) {
  ts::Tensor a = ts::tensor<bool>({true, false, false, false, true, true}, {2, 3});
  ts::Tensor b = ts::tensor<bool>({false, true, false, false, true, false}, {3, 2});
  ts::Tensor y = ts::matmul(a, b);
  EXPECT_EQ(y.dtype(), ts::DType::Bool);
  // row 0 = a[0,0]&b[0,:] = [0,1]; row 1 = b[1,:] | b[2,:] = [1,0]
  EXPECT_EQ(y.to_vector<bool>(), (std::vector<bool>{false, true, true, false}));
}

TEST(Matmul, PromotesMixedDtypes) {
  ts::Tensor i32 = ts::full({2, 3}, 2, ts::DType::Int32);
  ts::Tensor f32 = ts::full({3, 2}, 0.5, ts::DType::Float32);
  ts::Tensor y = ts::matmul(i32, f32);
  EXPECT_EQ(y.dtype(), ts::DType::Float32);
  EXPECT_EQ(y.to_vector<float>(), (std::vector<float>(4, 3.0f)));
  EXPECT_EQ(ts::matmul(ts::full({2, 2}, 1, ts::DType::Float16), ts::full({2, 2}, 1, ts::DType::BFloat16)).dtype(),
            ts::DType::Float32);
  ts::Tensor u8 = ts::full({1, 2}, 200, ts::DType::UInt8);
  ts::Tensor i8 = ts::full({2, 1}, -1, ts::DType::Int8);
  ts::Tensor z = ts::matmul(u8, i8);
  EXPECT_EQ(z.dtype(), ts::DType::Int32);
  EXPECT_EQ(z.item<int64_t>(), -400);
}

TEST(Matmul, EmptyInnerDimensionGivesZerosForEveryDtype) {
  for (ts::DType dt : all_dtypes()) {
    ts::Tensor y = ts::matmul(ts::zeros({3, 0}, dt), ts::zeros({0, 2}, dt));
    EXPECT_EQ(y.shape(), (ts::Shape{3, 2}));
    EXPECT_EQ(y.to_vector<double>(), (std::vector<double>(6, 0.0)));
  }
}

TEST(Matmul, RespectsTheThreadCountAndGivesTheSameResult) {
  ts::Tensor a = make_input({96, 130}, ts::DType::Float32, Layout::Contiguous, 71);
  ts::Tensor b = make_input({4, 130, 90}, ts::DType::Float32, Layout::Transposed, 72);
  int saved = ts::get_num_threads();
  ts::set_num_threads(1);
  std::vector<float> one = ts::matmul(a, b).to_vector<float>();
  ts::set_num_threads(2);
  std::vector<float> two = ts::matmul(a, b).to_vector<float>();
  ts::set_num_threads(saved);
  Ref want = matmul_ref(to_ref(a), to_ref(b));
  ASSERT_EQ(one.size(), want.v.size());
  for (size_t i = 0; i < one.size(); ++i) {
    EXPECT_NEAR(one[i], want.v[i], 1e-4);
    EXPECT_NEAR(two[i], want.v[i], 1e-4);
  }
}

TEST(Matmul, ReportsIncompatibleShapes) {
  expect_error<ts::ShapeError>(
      [] {
        ts::matmul(ts::zeros({2, 3}), ts::zeros({4, 5}));
      },
      {"[matmul] cannot multiply [2,3] by [4,5]"});
  expect_error<ts::ShapeError>([] { ts::matmul(ts::zeros({3}), ts::zeros({4})); }, {"[matmul]", "[3]", "[4]"});
  expect_error<ts::ShapeError>(
      [] {
        ts::matmul(ts::zeros({2, 3, 4}), ts::zeros({3, 4, 5}));
      },
      {"[matmul]", "[2,3,4]", "[3,4,5]", "batch"});
  expect_error<ts::ShapeError>([] { ts::matmul(ts::zeros({}), ts::zeros({2})); }, {"[matmul]", "[]", "[2]"});
  expect_error<ts::ValueError>([] { ts::matmul(ts::Tensor(), ts::zeros({2})); }, {"[matmul]", "undefined"});
}
