// Memory of the reverse pass: saved values are released as soon as the backward walk is done
// with them, so a deep chain's backward peak stays near what the forward pass holds.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>

#include "tessera/autodiff.h"
#include "tessera/tessera.h"

namespace ts = tessera;
using ts::Tensor;

namespace {

struct Peaks {
  double forward_plain_mb, forward_recorded_mb, reverse_peak_mb, grads_mb;
};

double mb(int64_t b) { return static_cast<double>(b) / (1024.0 * 1024.0); }

// A 16-layer MLP of the given width: h = relu(h @ W_l + b_l), loss = mean(h^2).
Peaks measure(int64_t layers, int64_t width, int64_t batch) {
  ts::Generator gen(0);
  ts::TensorMap params;
  for (int64_t l = 0; l < layers; ++l) {
    params["w" + std::to_string(100 + l)] =
        ts::randn({width, width}, gen, ts::DType::Float32, 0.0, 1.0 / std::sqrt(double(width)));
    params["b" + std::to_string(100 + l)] = ts::zeros({width});
  }
  Tensor x = ts::randn({batch, width}, gen);
  int64_t recorded = 0;
  auto forward = [&](const ts::TensorMap& p, bool note) {
    Tensor h = x;
    for (int64_t l = 0; l < layers; ++l)
      h = ts::relu(ts::matmul(h, p.at("w" + std::to_string(100 + l))) + p.at("b" + std::to_string(100 + l)));
    Tensor loss = ts::mean(h * h);
    if (note) recorded = ts::memory_stats().bytes_in_use;
    return loss;
  };
  int64_t base = ts::memory_stats().bytes_in_use;
  ts::reset_peak_memory();
  { Tensor l = forward(params, false); }
  Peaks r{};
  r.forward_plain_mb = mb(ts::memory_stats().peak_bytes_in_use - base);
  ts::reset_peak_memory();
  ts::TensorMap g = ts::grad([&](const ts::TensorMap& p) { return forward(p, true); })(params);
  int64_t peak = ts::memory_stats().peak_bytes_in_use;
  int64_t grads = 0;
  for (auto& kv : g) grads += kv.second.numel() * static_cast<int64_t>(kv.second.itemsize());
  r.forward_recorded_mb = mb(recorded - base);
  r.grads_mb = mb(grads);
  r.reverse_peak_mb = mb(peak - base - grads);  // beyond the gradients being returned
  return r;
}

}  // namespace

TEST(ReverseMemory, DeepMlpBackwardPeakStaysNearTheForwardPass) {
  Peaks p = measure(16, 1024, 256);
  std::printf(
      "16-layer MLP, width 1024, batch 256 (float32): forward %.1f MB plain, %.1f MB held when recorded; "
      "reverse pass peak %.1f MB beyond the %.1f MB of gradients\n",
      p.forward_plain_mb, p.forward_recorded_mb, p.reverse_peak_mb, p.grads_mb);
  // Activations saved by the forward pass: for each layer the matmul input (1 MB) and the relu output (1 MB).
  EXPECT_LT(p.forward_recorded_mb, 40.0);
  // Without releasing saved values the backward pass would hold all of the recorded forward pass on top of
  // the gradients; released as it goes, it holds a few activations and cotangents at a time.
  EXPECT_LT(p.reverse_peak_mb, p.forward_recorded_mb * 0.5);
}
