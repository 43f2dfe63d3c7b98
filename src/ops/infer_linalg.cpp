// Infer rules: matmul, convolutions and pooling.
//
// The primitives take already-normalized inputs (the public functions in api_linalg.cpp promote
// dtypes, turn 1-d matmul operands into matrices and add the batch axis of unbatched pooling
// input); these rules validate everything again so that graph mode and ONNX import, which call
// primitives directly, get the same errors.
#include <string>

#include "infer.h"

namespace tessera::ops {

namespace {

std::string i2s(int64_t v) { return std::to_string(v); }
std::string pair_str(const std::array<int64_t, 2>& p) {
  std::string s(1, '(');
  return s.append(i2s(p[0])).append(", ").append(i2s(p[1])).append(1, ')');
}

void same_dtype(const char* op, const Tensor& a, const Tensor& b) {
  if (a.dtype() != b.dtype())
    raise<DTypeError>(op,
                      "inputs must have the same dtype, got " + dtype_str(a.dtype()) + " and " + dtype_str(b.dtype()));
}

void check_rank(const char* op, const char* what, const Tensor& t, int64_t rank) {
  if (t.ndim() != rank)
    raise<ShapeError>(op, std::string(what) + " must be " + i2s(rank) + "-d, got " + shape_str(t.shape()));
}

void check_conv_attrs(const char* op, const ConvAttrs& c) {
  for (int i = 0; i < 2; ++i) {
    if (c.stride[i] < 1) raise<ValueError>(op, "stride must be positive, got " + pair_str(c.stride));
    if (c.dilation[i] < 1) raise<ValueError>(op, "dilation must be positive, got " + pair_str(c.dilation));
    if (c.padding[i] < 0) raise<ValueError>(op, "padding must be non-negative, got " + pair_str(c.padding));
    if (c.output_padding[i] < 0)
      raise<ValueError>(op, "output_padding must be non-negative, got " + pair_str(c.output_padding));
  }
  if (c.groups < 1) raise<ValueError>(op, "groups must be positive, got " + i2s(c.groups));
}

// PyTorch's pooling_output_shape: floor or ceil division, and with ceil_mode the last window must
// start inside the input or the left padding.
int64_t pool_out_size(int64_t in, int64_t k, int64_t pad, int64_t stride, bool ceil_mode) {
  int64_t num = in + 2 * pad - k + (ceil_mode ? stride - 1 : 0);
  int64_t out = (num >= 0 ? num / stride : -((-num + stride - 1) / stride)) + 1;
  if (ceil_mode && out > 0 && (out - 1) * stride >= in + pad) --out;
  return out;
}

void infer_pool(const char* op, std::span<const Tensor> in, const Attrs& a, MetaList& out, bool float_only) {
  const auto& p = std::get<PoolAttrs>(a);
  const Tensor& x = in[0];
  check_rank(op, "input", x, 4);
  if (float_only) check_dtype(op, x.dtype(), is_floating(x.dtype()), "a floating-point tensor");
  Shape s = x.shape();
  for (int i = 0; i < 2; ++i) {
    if (p.kernel[i] < 1) raise<ValueError>(op, "kernel size must be positive, got " + pair_str(p.kernel));
    if (p.stride[i] < 1) raise<ValueError>(op, "stride must be positive, got " + pair_str(p.stride));
    if (p.padding[i] < 0 || p.padding[i] > p.kernel[i] / 2)
      raise<ValueError>(op, "padding " + pair_str(p.padding) +
                                " must be non-negative and at most half of kernel size " + pair_str(p.kernel));
    int64_t in_sz = s[2 + i];
    int64_t o = pool_out_size(in_sz, p.kernel[i], p.padding[i], p.stride[i], p.ceil_mode);
    if (o < 1)
      raise<ShapeError>(op, "input " + shape_str(x.shape()) + " is too small for kernel " + pair_str(p.kernel) +
                                " with padding " + pair_str(p.padding) + " (output size " + i2s(o) + ")");
    s[2 + i] = o;
  }
  out.m[0] = {s, x.dtype()};
}

}  // namespace

void infer_Matmul(std::span<const Tensor> in, const Attrs&, MetaList& out) {
  const Tensor &a = in[0], &b = in[1];
  auto fail = [&](const std::string& why) {
    raise<ShapeError>("matmul", "cannot multiply " + shape_str(a.shape()) + " by " + shape_str(b.shape()) + why);
  };
  if (a.ndim() < 2 || b.ndim() < 2) fail(" (the primitive needs operands of rank >= 2)");
  same_dtype("matmul", a, b);
  const Shape &sa = a.shape(), &sb = b.shape();
  int64_t m = sa[sa.size() - 2], k = sa.back(), kb = sb[sb.size() - 2], n = sb.back();
  if (k != kb) fail("");
  // Batch axes broadcast (NumPy rules).
  size_t ba = sa.size() - 2, bb = sb.size() - 2, nb = std::max(ba, bb);
  Shape s(nb + 2);
  for (size_t i = 0; i < nb; ++i) {
    int64_t da = i + ba >= nb ? sa[i + ba - nb] : 1;
    int64_t db = i + bb >= nb ? sb[i + bb - nb] : 1;
    if (da != db && da != 1 && db != 1) fail(" (batch dimensions do not broadcast)");
    s[i] = da == 1 ? db : da;
  }
  s[nb] = m;
  s[nb + 1] = n;
  shape_numel(s, "matmul");
  out.m[0] = {s, a.dtype()};
}

void infer_Conv2d(std::span<const Tensor> in, const Attrs& a, MetaList& out) {
  const char* op = "conv2d";
  const auto& c = std::get<ConvAttrs>(a);
  const Tensor &x = in[0], &w = in[1];
  check_rank(op, "input", x, 4);
  check_rank(op, "weight", w, 4);
  same_dtype(op, x, w);
  check_dtype(op, x.dtype(), is_floating(x.dtype()), "a floating-point tensor");
  check_conv_attrs(op, c);
  const Shape &sx = x.shape(), &sw = w.shape();
  int64_t C = sx[1], O = sw[0];
  if (C % c.groups != 0)
    raise<ShapeError>(
        op, "groups=" + i2s(c.groups) + " does not divide the " + i2s(C) + " input channels of " + shape_str(sx));
  if (O % c.groups != 0)
    raise<ShapeError>(op, "groups=" + i2s(c.groups) + " does not divide the " + i2s(O) + " output channels of weight " +
                              shape_str(sw));
  if (sw[1] * c.groups != C)
    raise<ShapeError>(op, "input " + shape_str(sx) + " has " + i2s(C) + " channels but weight " + shape_str(sw) +
                              " with groups=" + i2s(c.groups) + " expects " + i2s(sw[1] * c.groups));
  if (sw[2] < 1 || sw[3] < 1) raise<ShapeError>(op, "weight " + shape_str(sw) + " has an empty kernel");
  Shape s{sx[0], O, 0, 0};
  for (int i = 0; i < 2; ++i) {
    int64_t eff = c.dilation[i] * (sw[2 + i] - 1) + 1;
    int64_t padded = sx[2 + i] + 2 * c.padding[i];
    if (padded < eff)
      raise<ShapeError>(op, "input " + shape_str(sx) + " padded by " + pair_str(c.padding) +
                                " is smaller than the kernel " + shape_str(sw) + " with dilation " +
                                pair_str(c.dilation));
    s[2 + i] = (padded - eff) / c.stride[i] + 1;
  }
  out.m[0] = {s, x.dtype()};
}

void infer_ConvTranspose2d(std::span<const Tensor> in, const Attrs& a, MetaList& out) {
  const char* op = "conv_transpose2d";
  const auto& c = std::get<ConvAttrs>(a);
  const Tensor &x = in[0], &w = in[1];
  check_rank(op, "input", x, 4);
  check_rank(op, "weight", w, 4);
  same_dtype(op, x, w);
  check_dtype(op, x.dtype(), is_floating(x.dtype()), "a floating-point tensor");
  check_conv_attrs(op, c);
  const Shape &sx = x.shape(), &sw = w.shape();
  int64_t C = sx[1];
  if (C % c.groups != 0)
    raise<ShapeError>(
        op, "groups=" + i2s(c.groups) + " does not divide the " + i2s(C) + " input channels of " + shape_str(sx));
  if (sw[0] != C)
    raise<ShapeError>(op, "input " + shape_str(sx) + " has " + i2s(C) + " channels but weight " + shape_str(sw) +
                              " expects " + i2s(sw[0]) + " (weight is [in_channels, out_channels/groups, kH, kW])");
  if (sw[2] < 1 || sw[3] < 1) raise<ShapeError>(op, "weight " + shape_str(sw) + " has an empty kernel");
  Shape s{sx[0], sw[1] * c.groups, 0, 0};
  for (int i = 0; i < 2; ++i) {
    if (c.output_padding[i] >= c.stride[i] && c.output_padding[i] >= c.dilation[i])
      raise<ValueError>(op, "output_padding " + pair_str(c.output_padding) + " must be smaller than either stride " +
                                pair_str(c.stride) + " or dilation " + pair_str(c.dilation));
    int64_t o =
        (sx[2 + i] - 1) * c.stride[i] - 2 * c.padding[i] + c.dilation[i] * (sw[2 + i] - 1) + c.output_padding[i] + 1;
    if (o < 1 && sx[2 + i] > 0)
      raise<ShapeError>(op, "input " + shape_str(sx) + " with weight " + shape_str(sw) + " and padding " +
                                pair_str(c.padding) + " gives a non-positive output size " + i2s(o));
    s[2 + i] = std::max<int64_t>(o, 0);
  }
  out.m[0] = {s, x.dtype()};
}

void infer_MaxPool2d(std::span<const Tensor> in, const Attrs& a, MetaList& out) {
  infer_pool("max_pool2d", in, a, out, false);
}
// The int64 position (h * W + w within its plane) of each window's maximum.
void infer_MaxPool2dIndices(std::span<const Tensor> in, const Attrs& a, MetaList& out) {
  infer_pool("max_pool2d_indices", in, a, out, false);
  out.m[0].dtype = DType::Int64;
}
void infer_AvgPool2d(std::span<const Tensor> in, const Attrs& a, MetaList& out) {
  infer_pool("avg_pool2d", in, a, out, true);
}

void infer_AdaptiveAvgPool2d(std::span<const Tensor> in, const Attrs& a, MetaList& out) {
  const char* op = "adaptive_avg_pool2d";
  const auto& p = std::get<AdaptivePoolAttrs>(a);
  const Tensor& x = in[0];
  check_rank(op, "input", x, 4);
  check_dtype(op, x.dtype(), is_floating(x.dtype()), "a floating-point tensor");
  if (p.output_size[0] < 1 || p.output_size[1] < 1)
    raise<ValueError>(op, "output_size must be positive, got " + pair_str(p.output_size));
  if (x.shape()[2] < 1 || x.shape()[3] < 1)
    raise<ShapeError>(op, "input " + shape_str(x.shape()) + " has an empty spatial dimension");
  out.m[0] = {Shape{x.shape()[0], x.shape()[1], p.output_size[0], p.output_size[1]}, x.dtype()};
}

}  // namespace tessera::ops
