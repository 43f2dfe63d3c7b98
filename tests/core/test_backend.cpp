// A third-party backend registered from outside the core: proves the backend
// interface is enough to add a device without touching core files.
#include <cstdlib>
#include <cstring>

#include "harness/harness.h"
#include "tessera/backend.h"

namespace ts = tessera;
using namespace tessera::testing;

namespace {

// "Device" memory is host memory the core must not touch directly (host_accessible = false),
// so every access has to go through the backend's copy functions.
class TestBackend : public ts::Backend {
 public:
  TestBackend()
      : Backend("testdev"),
        alloc_([](size_t n) { return std::aligned_alloc(64, n); }, [](void* p, size_t) { std::free(p); }, "testdev") {
    set_kernel(ts::OpId::Full, &full_kernel, ts::dtype_bit(ts::DType::Float32));
    set_kernel(ts::OpId::Add, &add_kernel, ts::dtype_bit(ts::DType::Float32));
  }
  int device_count() const override { return 2; }
  ts::Allocator& allocator(int) override { return alloc_; }
  void copy_from_host(void* dst, const void* src, size_t n, int) override {
    ++copies;
    std::memcpy(dst, src, n);
  }
  void copy_to_host(void* dst, const void* src, size_t n, int) override {
    ++copies;
    std::memcpy(dst, src, n);
  }
  static inline int copies = 0;

 private:
  static void full_kernel(const ts::KernelCall& c) {
    float v = static_cast<float>(std::get<ts::FullAttrs>(c.attrs).value.to_double());
    float* p = static_cast<float*>(c.out[0].impl().data());
    for (int64_t i = 0; i < c.out[0].numel(); ++i) p[i] = v;
  }
  static void add_kernel(const ts::KernelCall& c) {  // contiguous same-shape only, enough for the test
    const float* a = static_cast<const float*>(c.in[0].impl().data());
    const float* b = static_cast<const float*>(c.in[1].impl().data());
    float* o = static_cast<float*>(c.out[0].impl().data());
    for (int64_t i = 0; i < c.out[0].numel(); ++i) o[i] = a[i] + b[i];
  }
  ts::CachingAllocator alloc_;
};

ts::Device test_device(int index = 0) {
  static const uint8_t type = ts::register_backend(std::make_unique<TestBackend>());
  return ts::Device(type, static_cast<int16_t>(index));
}

}  // namespace

TEST(Backend, ThirdPartyBackendRunsItsKernels) {
  ts::Device d = test_device(1);
  EXPECT_EQ(d.str(), "testdev:1");
  EXPECT_EQ(ts::Device("testdev:1"), d);
  ts::Tensor a = ts::full({4}, 1.5, ts::DType::Float32, d);
  ts::Tensor b = ts::full({4}, 2.0, ts::DType::Float32, d);
  ts::Tensor c = ts::add(a, b);
  EXPECT_EQ(c.device(), d);
  int before = TestBackend::copies;
  EXPECT_EQ(c.to(ts::Device("cpu")).to_vector<float>(), std::vector<float>(4, 3.5f));
  EXPECT_GT(TestBackend::copies, before);  // the data came back through the backend
  EXPECT_GE(ts::memory_stats(d).bytes_in_use, 3 * 16);
}

TEST(Backend, MissingKernelsAndMixedDevicesGiveClearErrors) {
  ts::Device d = test_device();
  ts::Tensor a = ts::full({2}, 1.0, ts::DType::Float32, d);
  expect_error<ts::NotImplementedError>([&] { ts::mul(a, a); }, {"[mul]", "testdev"});
  expect_error<ts::ValueError>([&] { ts::add(a, ts::ones({2})); }, {"[add]", "different devices", "testdev", "cpu"});
  expect_error<ts::ValueError>([&] { a.raw_data(); }, {"host cannot address"});
}

TEST(Backend, CopiesBetweenDevices) {
  ts::Device d = test_device();
  ts::Tensor x = ts::arange(6, ts::DType::Float32).reshape({2, 3}).transpose(0, 1);
  ts::Tensor y = x.to(d);
  EXPECT_EQ(y.device(), d);
  EXPECT_EQ(y.shape(), (ts::Shape{3, 2}));
  EXPECT_EQ(y.to(ts::Device("cpu")).to_vector<float>(), x.to_vector<float>());
  EXPECT_EQ(y.to_vector<float>(), x.to_vector<float>());
}

TEST(OpTable, EveryPrimitiveHasAnInferRuleAndACpuKernel) {
  ts::Backend& cpu = ts::backend_for(ts::Device("cpu"));
  for (int i = 0; i < ts::kNumOps; ++i) {
    const ts::OpInfo& info = ts::op_info(static_cast<ts::OpId>(i));
    EXPECT_EQ(static_cast<int>(info.id), i);
    EXPECT_NE(info.infer, nullptr) << info.name;
    if (info.category == ts::OpCategory::View) continue;  // views are metadata-only, handled by the core
    EXPECT_NE(cpu.kernel(info.id), nullptr) << "no CPU kernel for primitive " << info.name;
  }
}
