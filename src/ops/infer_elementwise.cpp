// Infer rules: creation, random, unary, binary, where.
#include <string>

#include "infer.h"

namespace tessera::ops {

namespace {

void same_shape_unary(std::span<const Tensor> in, MetaList& out, DType dtype) {
  out.m[0].shape = in[0].shape();
  out.m[0].dtype = dtype;
}

void float_unary(const char* op, std::span<const Tensor> in, MetaList& out) {
  check_dtype(op, in[0].dtype(), is_floating(in[0].dtype()), "a floating-point tensor");
  same_shape_unary(in, out, in[0].dtype());
}

void numeric_unary(const char* op, std::span<const Tensor> in, MetaList& out) {
  check_dtype(op, in[0].dtype(), in[0].dtype() != DType::Bool, "a numeric tensor (not bool)");
  same_shape_unary(in, out, in[0].dtype());
}

// Binary primitives take two inputs of one dtype (the public functions promote first).
DType binary_common(const char* op, std::span<const Tensor> in, MetaList& out) {
  if (in[0].dtype() != in[1].dtype())
    raise<DTypeError>(op, "inputs must have the same dtype, got " + dtype_str(in[0].dtype()) + " and " + dtype_str(in[1].dtype()));
  out.m[0].shape = broadcast_shapes(op, in[0].shape(), in[1].shape());
  return in[0].dtype();
}

}  // namespace

void infer_Full(std::span<const Tensor>, const Attrs& a, MetaList& out) {
  const auto& f = std::get<FullAttrs>(a);
  shape_numel(f.shape, "full");
  out.m[0] = {f.shape, f.dtype};
}

void infer_Arange(std::span<const Tensor>, const Attrs& a, MetaList& out) {
  const auto& f = std::get<ArangeAttrs>(a);
  if (f.n < 0) raise<ValueError>("arange", "negative length " + std::to_string(f.n));
  out.m[0] = {Shape{f.n}, f.dtype};
}

static void infer_random(const char* op, const Attrs& a, MetaList& out) {
  const auto& f = std::get<RandomAttrs>(a);
  shape_numel(f.shape, op);
  check_dtype(op, f.dtype, is_floating(f.dtype), "a floating-point dtype");
  out.m[0] = {f.shape, f.dtype};
}
void infer_RandomUniform(std::span<const Tensor>, const Attrs& a, MetaList& out) { infer_random("uniform", a, out); }
void infer_RandomNormal(std::span<const Tensor>, const Attrs& a, MetaList& out) { infer_random("normal", a, out); }

#define TS_FLOAT_UNARY(Id, name) \
  void infer_##Id(std::span<const Tensor> in, const Attrs&, MetaList& out) { float_unary(name, in, out); }
TS_FLOAT_UNARY(Exp, "exp")
TS_FLOAT_UNARY(Expm1, "expm1")
TS_FLOAT_UNARY(Log, "log")
TS_FLOAT_UNARY(Log1p, "log1p")
TS_FLOAT_UNARY(Sqrt, "sqrt")
TS_FLOAT_UNARY(Rsqrt, "rsqrt")
TS_FLOAT_UNARY(Sin, "sin")
TS_FLOAT_UNARY(Cos, "cos")
TS_FLOAT_UNARY(Tan, "tan")
TS_FLOAT_UNARY(Tanh, "tanh")
TS_FLOAT_UNARY(Sigmoid, "sigmoid")
TS_FLOAT_UNARY(Erf, "erf")
TS_FLOAT_UNARY(Gelu, "gelu")
TS_FLOAT_UNARY(GeluTanh, "gelu_tanh")
TS_FLOAT_UNARY(Silu, "silu")
TS_FLOAT_UNARY(Softplus, "softplus")
TS_FLOAT_UNARY(Floor, "floor")
TS_FLOAT_UNARY(Ceil, "ceil")
TS_FLOAT_UNARY(Round, "round")
#undef TS_FLOAT_UNARY
#define TS_NUMERIC_UNARY(Id, name) \
  void infer_##Id(std::span<const Tensor> in, const Attrs&, MetaList& out) { numeric_unary(name, in, out); }
TS_NUMERIC_UNARY(Neg, "neg")
TS_NUMERIC_UNARY(Abs, "abs")
TS_NUMERIC_UNARY(Sign, "sign")
TS_NUMERIC_UNARY(Relu, "relu")
#undef TS_NUMERIC_UNARY

void infer_LogicalNot(std::span<const Tensor> in, const Attrs&, MetaList& out) { same_shape_unary(in, out, DType::Bool); }
void infer_Copy(std::span<const Tensor> in, const Attrs&, MetaList& out) { same_shape_unary(in, out, in[0].dtype()); }
void infer_Cast(std::span<const Tensor> in, const Attrs& a, MetaList& out) {
  same_shape_unary(in, out, std::get<CastAttrs>(a).dtype);
}

#define TS_BINARY_SAME(Id, name, pred, what)                                    \
  void infer_##Id(std::span<const Tensor> in, const Attrs&, MetaList& out) {    \
    DType t = binary_common(name, in, out);                                     \
    check_dtype(name, t, pred, what);                                           \
    out.m[0].dtype = t;                                                         \
  }
TS_BINARY_SAME(Add, "add", true, "")
TS_BINARY_SAME(Sub, "sub", t != DType::Bool, "numeric tensors (not bool; use logical_xor)")
TS_BINARY_SAME(Mul, "mul", true, "")
TS_BINARY_SAME(Div, "div", is_floating(t), "floating-point tensors")
TS_BINARY_SAME(Pow, "pow", t != DType::Bool, "numeric tensors (not bool)")
TS_BINARY_SAME(Maximum, "maximum", true, "")
TS_BINARY_SAME(Minimum, "minimum", true, "")
TS_BINARY_SAME(Atan2, "atan2", is_floating(t), "floating-point tensors")
TS_BINARY_SAME(Remainder, "remainder", t != DType::Bool, "numeric tensors (not bool)")
#undef TS_BINARY_SAME
#define TS_BINARY_BOOL(Id, name)                                                \
  void infer_##Id(std::span<const Tensor> in, const Attrs&, MetaList& out) {    \
    binary_common(name, in, out);                                               \
    out.m[0].dtype = DType::Bool;                                               \
  }
TS_BINARY_BOOL(Eq, "eq")
TS_BINARY_BOOL(Ne, "ne")
TS_BINARY_BOOL(Lt, "lt")
TS_BINARY_BOOL(Le, "le")
TS_BINARY_BOOL(Gt, "gt")
TS_BINARY_BOOL(Ge, "ge")
TS_BINARY_BOOL(LogicalAnd, "logical_and")
TS_BINARY_BOOL(LogicalOr, "logical_or")
TS_BINARY_BOOL(LogicalXor, "logical_xor")
#undef TS_BINARY_BOOL

void infer_Where(std::span<const Tensor> in, const Attrs&, MetaList& out) {
  check_dtype("where", in[0].dtype(), in[0].dtype() == DType::Bool, "a bool condition");
  if (in[1].dtype() != in[2].dtype())
    raise<DTypeError>("where", "branches must have the same dtype, got " + dtype_str(in[1].dtype()) + " and " + dtype_str(in[2].dtype()));
  Shape s = broadcast_shapes("where", in[0].shape(), in[1].shape());
  out.m[0].shape = broadcast_shapes("where", s, in[2].shape());
  out.m[0].dtype = in[1].dtype();
}

}  // namespace tessera::ops
