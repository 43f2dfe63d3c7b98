// Jacobians by repeated pullbacks (jacrev) or pushforwards (jacfwd), one basis vector at a time.
#include <string>

#include "tessera/autodiff.h"
#include "tessera/ops.h"

namespace tessera::detail {

namespace {

void check_arg(const char* transform, const TensorList& args, int argnum) {
  int n = static_cast<int>(args.size());
  int k = argnum < 0 ? argnum + n : argnum;
  if (k < 0 || k >= n)
    raise<IndexError>(transform,
                      "argnum " + std::to_string(argnum) + " out of range for " + std::to_string(n) + " arguments");
  if (!is_floating(args[static_cast<size_t>(k)].dtype()))
    raise<DTypeError>(transform, "argument " + std::to_string(argnum) + " is " +
                                     std::string(dtype_name(args[static_cast<size_t>(k)].dtype())) +
                                     "; only floating-point tensors are differentiated");
}

// The i-th standard basis tensor of the given shape and dtype.
Tensor basis(const Shape& shape, DType dtype, Device device, int64_t i, int64_t n) {
  Tensor idx = arange(0, n, 1, DType::Int64, device);
  return cast(eq(idx, Scalar(i)), dtype).reshape(shape);
}

Shape concat_shapes(const Shape& a, const Shape& b) {
  Shape s = a;
  for (int64_t d : b) s.push_back(d);
  return s;
}

}  // namespace

Tensor jacrev_impl(const std::function<Tensor(const TensorList&)>& f, const TensorList& args, int argnum) {
  check_arg("jacrev", args, argnum);
  size_t k = static_cast<size_t>(argnum < 0 ? argnum + static_cast<int>(args.size()) : argnum);
  FlatFn g = [&](const TensorList& v) -> TensorList {
    TensorList a = args;
    a[k] = v[0];
    return {f(a)};
  };
  VjpFlat r = vjp_flat(g, {args[k]}, /*consume=*/false);
  const Tensor& y = r.outputs[0];
  if (!is_floating(y.dtype()))
    raise<DTypeError>("jacrev",
                      "function must return a floating-point tensor, got " + std::string(dtype_name(y.dtype())));
  const Tensor& x = args[k];
  Shape full = concat_shapes(y.shape(), x.shape());
  int64_t m = y.numel();
  if (m == 0 || x.numel() == 0) return zeros(full, x.dtype(), x.device());
  TensorList rows;
  rows.reserve(static_cast<size_t>(m));
  for (int64_t i = 0; i < m; ++i) rows.push_back(r.pullback({basis(y.shape(), y.dtype(), y.device(), i, m)})[0]);
  return stack(rows, 0).reshape(full);
}

Tensor jacfwd_impl(const std::function<Tensor(const TensorList&)>& f, const TensorList& args, int argnum) {
  check_arg("jacfwd", args, argnum);
  size_t k = static_cast<size_t>(argnum < 0 ? argnum + static_cast<int>(args.size()) : argnum);
  const Tensor& x = args[k];
  int64_t n = x.numel();
  FlatFn g = [&](const TensorList& v) -> TensorList {
    TensorList a = args;
    a[k] = v[0];
    return {f(a)};
  };
  if (n == 0) {
    Tensor y = f(args);
    return zeros(concat_shapes(y.shape(), x.shape()), y.dtype(), y.device());
  }
  TensorList cols;
  cols.reserve(static_cast<size_t>(n));
  Shape yshape;
  for (int64_t j = 0; j < n; ++j) {
    auto [outs, touts] = jvp_flat(g, {x}, {basis(x.shape(), x.dtype(), x.device(), j, n)});
    if (!is_floating(outs[0].dtype()))
      raise<DTypeError>(
          "jacfwd", "function must return a floating-point tensor, got " + std::string(dtype_name(outs[0].dtype())));
    yshape = outs[0].shape();
    cols.push_back(touts[0]);
  }
  // cols[j] has the output's shape; stacking on a new last axis gives out.shape + [n].
  return stack(cols, -1).reshape(concat_shapes(yshape, x.shape()));
}

}  // namespace tessera::detail
