// Declarations of every primitive's shape/dtype inference rule (one per ops.def line).
// Definitions live in src/ops/infer_<family>.cpp.
#pragma once

#include "tessera/primitives.h"

namespace tessera::ops {

#define TS_OP(id, name, nin, nout, cat, attrs) void infer_##id(std::span<const Tensor> in, const Attrs& a, MetaList& out);
#include "tessera/ops.def"
#undef TS_OP

// Helpers shared by the infer rules.
std::string dtype_str(DType t);
/// Throws DTypeError "[op] expects <what>, got <dtype>" unless mask accepts t.
void check_dtype(const char* op, DType t, bool ok, const char* what);

}  // namespace tessera::ops
