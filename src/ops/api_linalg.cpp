// Public functions: matmul, convolutions and pooling.
//
// These normalize arguments before dispatching: dtype promotion, 1-d matmul operands as
// matrices, unbatched input given a batch axis, 1-d convolution and pooling as 2-d with H = 1.
// Shape errors are raised here with the op the user called and the shapes the user passed;
// the infer rules (infer_linalg.cpp) check the normalized primitive inputs again.
#include <string>

#include "api_util.h"

namespace tessera {

using namespace ops;

namespace {

std::string i2s(int64_t v) { return std::to_string(v); }

// ------------------------------------------------------------------ matmul helpers
[[noreturn]] void matmul_fail(const Tensor& a, const Tensor& b, const std::string& why = "") {
  raise<ShapeError>("matmul", "cannot multiply " + shape_str(a.shape()) + " by " + shape_str(b.shape()) + why);
}

// ------------------------------------------------------------- convolution helpers
// Spatial sizes are given as a list of nsp values (1 for conv1d, 2 for conv2d).
struct ConvGeom {
  int64_t nsp;
  std::array<int64_t, 2> stride, padding, dilation, output_padding;
  int64_t groups;
};

std::string geom_str(const std::array<int64_t, 2>& v, int64_t nsp) {
  if (nsp == 1) return i2s(v[1]);
  std::string s = "(";
  s += i2s(v[0]);
  s += ", ";
  s += i2s(v[1]);
  s += ")";
  return s;
}

// Validates x [N, C, *sp] (batched) and weight; raises naming op with the shapes as passed.
void check_conv(const char* op, const Tensor& x, const Tensor& w, const ConvGeom& g, bool transposed) {
  int64_t nd = g.nsp + 2;
  if (x.ndim() != nd && x.ndim() != nd - 1)
    raise<ShapeError>(op, "input must be " + i2s(nd) + "-d (batched) or " + i2s(nd - 1) + "-d (unbatched), got " +
                              shape_str(x.shape()));
  if (w.ndim() != nd) raise<ShapeError>(op, "weight must be " + i2s(nd) + "-d, got " + shape_str(w.shape()));
  for (int i = 2 - static_cast<int>(g.nsp); i < 2; ++i) {
    if (g.stride[i] < 1) raise<ValueError>(op, "stride must be positive, got " + geom_str(g.stride, g.nsp));
    if (g.dilation[i] < 1) raise<ValueError>(op, "dilation must be positive, got " + geom_str(g.dilation, g.nsp));
    if (g.padding[i] < 0) raise<ValueError>(op, "padding must be non-negative, got " + geom_str(g.padding, g.nsp));
    if (g.output_padding[i] < 0)
      raise<ValueError>(op, "output_padding must be non-negative, got " + geom_str(g.output_padding, g.nsp));
  }
  if (g.groups < 1) raise<ValueError>(op, "groups must be positive, got " + i2s(g.groups));
  const Shape &sx = x.shape(), &sw = w.shape();
  int64_t off = x.ndim() - g.nsp;  // index of the first spatial axis
  int64_t C = sx[static_cast<size_t>(off - 1)];
  if (C % g.groups != 0)
    raise<ShapeError>(
        op, "groups=" + i2s(g.groups) + " does not divide the " + i2s(C) + " input channels of " + shape_str(sx));
  if (!transposed) {
    if (sw[0] % g.groups != 0)
      raise<ShapeError>(op, "groups=" + i2s(g.groups) + " does not divide the " + i2s(sw[0]) +
                                " output channels of weight " + shape_str(sw));
    if (sw[1] * g.groups != C)
      raise<ShapeError>(op, "input " + shape_str(sx) + " has " + i2s(C) + " channels but weight " + shape_str(sw) +
                                " with groups=" + i2s(g.groups) + " expects " + i2s(sw[1] * g.groups));
  } else if (sw[0] != C) {
    raise<ShapeError>(op, "input " + shape_str(sx) + " has " + i2s(C) + " channels but weight " + shape_str(sw) +
                              " expects " + i2s(sw[0]) + " (weight is [in_channels, out_channels/groups, kernel...])");
  }
  for (int64_t i = 0; i < g.nsp; ++i) {
    size_t ai = static_cast<size_t>(2 - g.nsp + i);  // index into the 2-element geometry arrays
    int64_t in = sx[static_cast<size_t>(off + i)], k = sw[static_cast<size_t>(2 + i)];
    if (k < 1) raise<ShapeError>(op, "weight " + shape_str(sw) + " has an empty kernel");
    int64_t eff = g.dilation[ai] * (k - 1) + 1;
    if (!transposed) {
      if (in + 2 * g.padding[ai] < eff)
        raise<ShapeError>(op, "input " + shape_str(sx) + " padded by " + geom_str(g.padding, g.nsp) +
                                  " is smaller than the kernel of weight " + shape_str(sw) + " with dilation " +
                                  geom_str(g.dilation, g.nsp));
    } else {
      if (g.output_padding[ai] >= g.stride[ai] && g.output_padding[ai] >= g.dilation[ai])
        raise<ValueError>(op, "output_padding " + geom_str(g.output_padding, g.nsp) +
                                  " must be smaller than either stride " + geom_str(g.stride, g.nsp) + " or dilation " +
                                  geom_str(g.dilation, g.nsp));
      int64_t o = (in - 1) * g.stride[ai] - 2 * g.padding[ai] + eff + g.output_padding[ai];
      if (o < 1 && in > 0)
        raise<ShapeError>(op, "input " + shape_str(sx) + " with weight " + shape_str(sw) + " and padding " +
                                  geom_str(g.padding, g.nsp) + " gives a non-positive output size " + i2s(o));
    }
  }
}

DType conv_dtype(const char* op, const Tensor& x, const Tensor& w, const Tensor& bias) {
  DType t = promote_types(x.dtype(), w.dtype());
  if (bias.defined()) t = promote_types(t, bias.dtype());
  if (!is_floating(t))
    raise<DTypeError>(op, "expects floating-point input and weight, got " + std::string(dtype_name(x.dtype())) +
                              " and " + std::string(dtype_name(w.dtype())));
  return t;
}

void check_bias(const char* op, const Tensor& bias, int64_t out_channels) {
  if (bias.defined() && (bias.ndim() != 1 || bias.shape()[0] != out_channels))
    raise<ShapeError>(op, "bias must have shape [" + i2s(out_channels) + "], got " + shape_str(bias.shape()));
}

// x4, w4: 4-d inputs of one floating dtype; returns [N, O, H', W'] with bias added (broadcast add:
// the primitive has two inputs, and the add is one pass over the output).
Tensor conv_run(OpId op, const Tensor& x4, const Tensor& w4, const Tensor& bias, const ConvAttrs& a,
                int64_t out_channels) {
  Tensor y = dispatch1(op, {x4, w4}, a);
  if (bias.defined()) y = add(y, reshape(as_dtype(bias, y.dtype()), {1, out_channels, 1, 1}));
  return y;
}

// --------------------------------------------------------------------- pooling helpers
int64_t pool_out_size(int64_t in, int64_t k, int64_t pad, int64_t stride, bool ceil_mode) {
  int64_t num = in + 2 * pad - k + (ceil_mode ? stride - 1 : 0);
  int64_t out = (num >= 0 ? num / stride : -((-num + stride - 1) / stride)) + 1;
  if (ceil_mode && out > 0 && (out - 1) * stride >= in + pad) --out;
  return out;
}

// Validates with the op the user called; nsp = 1 checks only the W entries.
void check_pool(const char* op, const Tensor& x, const PoolAttrs& p, int64_t nsp) {
  int64_t nd = nsp + 2;
  if (x.ndim() != nd && x.ndim() != nd - 1)
    raise<ShapeError>(op, "input must be " + i2s(nd) + "-d (batched) or " + i2s(nd - 1) + "-d (unbatched), got " +
                              shape_str(x.shape()));
  for (int64_t i = 2 - nsp; i < 2; ++i) {
    if (p.kernel[i] < 1) raise<ValueError>(op, "kernel size must be positive, got " + geom_str(p.kernel, nsp));
    if (p.stride[i] < 1) raise<ValueError>(op, "stride must be positive, got " + geom_str(p.stride, nsp));
    if (p.padding[i] < 0 || p.padding[i] > p.kernel[i] / 2)
      raise<ValueError>(op, "padding " + geom_str(p.padding, nsp) +
                                " must be non-negative and at most half of kernel size " + geom_str(p.kernel, nsp));
    int64_t in = x.shape()[static_cast<size_t>(x.ndim() - 2 + i)];
    if (pool_out_size(in, p.kernel[i], p.padding[i], p.stride[i], p.ceil_mode) < 1)
      raise<ShapeError>(op, "input " + shape_str(x.shape()) + " is too small for kernel " + geom_str(p.kernel, nsp) +
                                " with padding " + geom_str(p.padding, nsp));
  }
}

// Runs a pooling primitive on x of rank nsp + 2 (batched) or nsp + 1 (unbatched).
Tensor pool_run(OpId op, const Tensor& x, const PoolAttrs& p, int64_t nsp) {
  Tensor x4 = x;
  bool unbatched = x.ndim() == nsp + 1;
  if (unbatched) x4 = unsqueeze(x4, 0);
  if (nsp == 1) x4 = unsqueeze(x4, 2);
  if (op == OpId::AvgPool2d) x4 = as_dtype(x4, to_floating(x4.dtype()));
  Tensor y = dispatch1(op, {x4}, p);
  if (nsp == 1) y = squeeze(y, {2});
  if (unbatched) y = squeeze(y, {0});
  return y;
}

PoolAttrs pool2d_attrs(const Pool2dOptions& o) {
  return PoolAttrs{o.kernel, o.stride.value_or(o.kernel), o.padding, o.ceil_mode, o.count_include_pad};
}
PoolAttrs pool1d_attrs(const Pool1dOptions& o) {
  return PoolAttrs{{1, o.kernel}, {1, o.stride.value_or(o.kernel)}, {0, o.padding}, o.ceil_mode, o.count_include_pad};
}

}  // namespace

// ------------------------------------------------------------------ matmul
Tensor matmul(const Tensor& a, const Tensor& b) {
  check_defined("matmul", a);
  check_defined("matmul", b);
  if (a.ndim() == 0 || b.ndim() == 0) matmul_fail(a, b, " (0-d operands have no matrix dimensions)");
  int64_t ka = a.shape().back();
  int64_t kb = b.ndim() == 1 ? b.shape()[0] : b.shape()[static_cast<size_t>(b.ndim() - 2)];
  if (ka != kb) matmul_fail(a, b);
  // NumPy: a 1-d left operand is a row vector, a 1-d right operand a column vector; the
  // added axis is removed from the result.
  Tensor a2 = a.ndim() == 1 ? unsqueeze(a, 0) : a;
  Tensor b2 = b.ndim() == 1 ? unsqueeze(b, 1) : b;
  size_t ba = static_cast<size_t>(a2.ndim() - 2), bb = static_cast<size_t>(b2.ndim() - 2), nb = std::max(ba, bb);
  for (size_t i = 0; i < nb; ++i) {
    int64_t da = i + ba >= nb ? a2.shape()[i + ba - nb] : 1;
    int64_t db = i + bb >= nb ? b2.shape()[i + bb - nb] : 1;
    if (da != db && da != 1 && db != 1) matmul_fail(a, b, " (batch dimensions do not broadcast)");
  }
  DType t = promote_types(a.dtype(), b.dtype());
  Tensor y = dispatch1(OpId::Matmul, {as_dtype(a2, t), as_dtype(b2, t)}, MatmulAttrs{});
  if (b.ndim() == 1) y = squeeze(y, {-1});
  if (a.ndim() == 1) y = squeeze(y, {-1 - (b.ndim() == 1 ? 0 : 1)});
  return y;
}

// ------------------------------------------------------------ convolutions
Tensor conv2d(const Tensor& x, const Tensor& weight, const Tensor& bias, const Conv2dOptions& opt) {
  const char* op = "conv2d";
  check_defined(op, x);
  check_defined(op, weight);
  ConvGeom g{2, opt.stride, opt.padding, opt.dilation, {0, 0}, opt.groups};
  check_conv(op, x, weight, g, false);
  check_bias(op, bias, weight.shape()[0]);
  DType t = conv_dtype(op, x, weight, bias);
  bool unbatched = x.ndim() == 3;
  Tensor x4 = as_dtype(unbatched ? unsqueeze(x, 0) : x, t);
  ConvAttrs a{opt.stride, opt.padding, opt.dilation, {0, 0}, opt.groups};
  Tensor y = conv_run(OpId::Conv2d, x4, as_dtype(weight, t), bias, a, weight.shape()[0]);
  return unbatched ? squeeze(y, {0}) : y;
}

Tensor conv1d(const Tensor& x, const Tensor& weight, const Tensor& bias, const Conv1dOptions& opt) {
  const char* op = "conv1d";
  check_defined(op, x);
  check_defined(op, weight);
  ConvGeom g{1, {1, opt.stride}, {0, opt.padding}, {1, opt.dilation}, {0, 0}, opt.groups};
  check_conv(op, x, weight, g, false);
  check_bias(op, bias, weight.shape()[0]);
  DType t = conv_dtype(op, x, weight, bias);
  bool unbatched = x.ndim() == 2;
  Tensor x4 = unsqueeze(as_dtype(unbatched ? unsqueeze(x, 0) : x, t), 2);
  ConvAttrs a{g.stride, g.padding, g.dilation, {0, 0}, opt.groups};
  Tensor y = conv_run(OpId::Conv2d, x4, unsqueeze(as_dtype(weight, t), 2), bias, a, weight.shape()[0]);
  y = squeeze(y, {2});
  return unbatched ? squeeze(y, {0}) : y;
}

Tensor conv_transpose2d(const Tensor& x, const Tensor& weight, const Tensor& bias, const ConvTranspose2dOptions& opt) {
  const char* op = "conv_transpose2d";
  check_defined(op, x);
  check_defined(op, weight);
  ConvGeom g{2, opt.stride, opt.padding, opt.dilation, opt.output_padding, opt.groups};
  check_conv(op, x, weight, g, true);
  int64_t out_channels = weight.shape()[1] * opt.groups;
  check_bias(op, bias, out_channels);
  DType t = conv_dtype(op, x, weight, bias);
  bool unbatched = x.ndim() == 3;
  Tensor x4 = as_dtype(unbatched ? unsqueeze(x, 0) : x, t);
  ConvAttrs a{opt.stride, opt.padding, opt.dilation, opt.output_padding, opt.groups};
  Tensor y = conv_run(OpId::ConvTranspose2d, x4, as_dtype(weight, t), bias, a, out_channels);
  return unbatched ? squeeze(y, {0}) : y;
}

// ----------------------------------------------------------------- pooling
Tensor max_pool2d(const Tensor& x, const Pool2dOptions& opt) {
  check_defined("max_pool2d", x);
  PoolAttrs p = pool2d_attrs(opt);
  check_pool("max_pool2d", x, p, 2);
  return pool_run(OpId::MaxPool2d, x, p, 2);
}
Tensor max_pool2d_indices(const Tensor& x, const Pool2dOptions& opt) {
  check_defined("max_pool2d_indices", x);
  PoolAttrs p = pool2d_attrs(opt);
  check_pool("max_pool2d_indices", x, p, 2);
  return pool_run(OpId::MaxPool2dIndices, x, p, 2);
}
Tensor avg_pool2d(const Tensor& x, const Pool2dOptions& opt) {
  check_defined("avg_pool2d", x);
  PoolAttrs p = pool2d_attrs(opt);
  check_pool("avg_pool2d", x, p, 2);
  return pool_run(OpId::AvgPool2d, x, p, 2);
}
Tensor max_pool1d(const Tensor& x, const Pool1dOptions& opt) {
  check_defined("max_pool1d", x);
  PoolAttrs p = pool1d_attrs(opt);
  check_pool("max_pool1d", x, p, 1);
  return pool_run(OpId::MaxPool2d, x, p, 1);
}
Tensor avg_pool1d(const Tensor& x, const Pool1dOptions& opt) {
  check_defined("avg_pool1d", x);
  PoolAttrs p = pool1d_attrs(opt);
  check_pool("avg_pool1d", x, p, 1);
  return pool_run(OpId::AvgPool2d, x, p, 1);
}

Tensor adaptive_avg_pool2d(const Tensor& x, std::array<int64_t, 2> output_size) {
  const char* op = "adaptive_avg_pool2d";
  check_defined(op, x);
  if (x.ndim() != 4 && x.ndim() != 3)
    raise<ShapeError>(op, "input must be 4-d (batched) or 3-d (unbatched), got " + shape_str(x.shape()));
  bool unbatched = x.ndim() == 3;
  Tensor x4 = as_dtype(unbatched ? unsqueeze(x, 0) : x, to_floating(x.dtype()));
  Tensor y = dispatch1(OpId::AdaptiveAvgPool2d, {x4}, AdaptivePoolAttrs{output_size});
  return unbatched ? squeeze(y, {0}) : y;
}

}  // namespace tessera
