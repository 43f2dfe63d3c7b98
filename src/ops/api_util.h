// Helpers shared by the public op functions (src/ops/api_*.cpp).
#pragma once

#include <initializer_list>
#include <string>

#include "../core/dispatch.h"
#include "infer.h"
#include "tessera/ops.h"

namespace tessera::ops {

using detail::dispatch1;

/// x cast to dtype, or x itself when it already has it.
inline Tensor as_dtype(const Tensor& x, DType t) { return x.dtype() == t ? x : cast(x, t); }
/// A 0-d tensor of dtype t on device d holding s.
Tensor scalar_like(Scalar s, DType t, Device d);
/// Throws ValueError "[op] input is an undefined tensor" for an undefined tensor.
void check_defined(const char* op, const Tensor& t);

}  // namespace tessera::ops
