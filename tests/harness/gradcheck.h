// Numerical gradient checks for the autodiff transforms (float64, central differences).
//
// How to check the derivatives of an op (or any composite of ops):
//   1. Write it as a GradFn, a function of a TensorList returning one Tensor, e.g.
//        GradFn f = [](const TensorList& in) { return ts::matmul(in[0], in[1]); };
//      Attributes (axes, options, index tensors that stay fixed) are captured by the lambda or
//      passed as integer inputs: integer and bool inputs are never perturbed, and their
//      gradients must come back undefined (or zero).
//   2. Build float64 inputs with grad_input(shape, layout, seed, lo, hi) (make_input from
//      harness.h), in non-contiguous layouts too, and with values away from kinks (abs at 0,
//      ties of max, floor at integers, ...), since central differences straddle them.
//   3. EXPECT_GRADS(name, f, inputs) runs the three first-order checks below; or call one:
//        check_vjp        reverse mode: tessera::vjp's pullback of a random cotangent u against
//                         central differences of <u, f(x)> in every input element;
//        check_jvp        forward mode: tessera::jvp along a random tangent (one input at a time,
//                         then all together) against central differences along that tangent;
//        check_jac_agree  jacrev against jacfwd (both Jacobians of every float input; small inputs).
//      Second order: check_hessian (tessera::hessian against central differences of tessera::grad)
//      for a scalar-valued f. check_no_grad for ops whose output carries no gradient.
// Errors are scale-aware, |analytical - numerical| / max(1, |analytical|, |numerical|) per element,
// and must stay under GradCheckOptions::tol (1e-6). A failure names the check, the case, the
// input, the element (multi-index) and both values. Random draws are seeded, so failures reproduce.
#pragma once

#include <gtest/gtest.h>

#include <functional>
#include <string>
#include <vector>

#include "harness/harness.h"
#include "tessera/autodiff.h"
#include "tessera/tessera.h"

namespace tessera::testing {

using GradFn = std::function<Tensor(const TensorList&)>;

struct GradCheckOptions {
  double eps = 1e-6;             // central-difference step
  double tol = 1e-6;             // max scale-aware error
  uint64_t seed = 1234;          // for the cotangents and tangents
  int64_t max_jac_elems = 4096;  // check_jac_agree skips (passes) when out.numel * in.numel is larger
};

/// A float64 input of the given layout with values uniform in [lo, hi) (make_input).
Tensor grad_input(IntList shape, Layout layout = Layout::Contiguous, uint64_t seed = 1, double lo = -2.0,
                  double hi = 2.0);
/// Moves every stored value of a float64 tensor (in place, through its storage, so the layout
/// stays) at least `gap` away from `kink`: v -> v + gap above it, v - gap below. Returns x.
Tensor away_from(const Tensor& x, double kink = 0.0, double gap = 0.2);
/// Contiguous float64 copy with element k (row-major) replaced by value + delta.
Tensor perturbed(const Tensor& x, int64_t k, double delta);

::testing::AssertionResult check_vjp(const std::string& name, const GradFn& f, const TensorList& inputs,
                                     const GradCheckOptions& opt = {});
::testing::AssertionResult check_jvp(const std::string& name, const GradFn& f, const TensorList& inputs,
                                     const GradCheckOptions& opt = {});
::testing::AssertionResult check_jac_agree(const std::string& name, const GradFn& f, const TensorList& inputs,
                                           const GradCheckOptions& opt = {});
/// vjp, jvp and (when small) jacrev == jacfwd.
::testing::AssertionResult check_grads(const std::string& name, const GradFn& f, const TensorList& inputs,
                                       const GradCheckOptions& opt = {});
/// For a scalar-valued f: tessera::hessian(f, argnum) against central differences of
/// tessera::grad(f) in each element of input argnum.
::testing::AssertionResult check_hessian(const std::string& name, const GradFn& f, const TensorList& inputs,
                                         int argnum = 0, const GradCheckOptions& opt = {});
/// For ops that carry no gradient: vjp and jvp run without error and give undefined or all-zero
/// gradients/tangents for every input.
::testing::AssertionResult check_no_grad(const std::string& name, const GradFn& f, const TensorList& inputs,
                                         const GradCheckOptions& opt = {});
/// Compares two float tensors of the same shape with the scale-aware error; names the worst element.
::testing::AssertionResult grad_close(const std::string& what, const Tensor& got, const Tensor& want, double tol);

#define EXPECT_GRADS(name, f, ...) EXPECT_TRUE(::tessera::testing::check_grads(name, f, __VA_ARGS__))
#define EXPECT_VJP(name, f, ...) EXPECT_TRUE(::tessera::testing::check_vjp(name, f, __VA_ARGS__))
#define EXPECT_JVP(name, f, ...) EXPECT_TRUE(::tessera::testing::check_jvp(name, f, __VA_ARGS__))
#define EXPECT_JAC_AGREE(name, f, ...) EXPECT_TRUE(::tessera::testing::check_jac_agree(name, f, __VA_ARGS__))
#define EXPECT_HESSIAN(name, f, ...) EXPECT_TRUE(::tessera::testing::check_hessian(name, f, __VA_ARGS__))
#define EXPECT_NO_GRAD(name, f, ...) EXPECT_TRUE(::tessera::testing::check_no_grad(name, f, __VA_ARGS__))

}  // namespace tessera::testing
