// The OpInfo table, generated from ops.def.
#include <array>

#include "infer.h"

namespace tessera {

namespace {
constexpr std::array<OpInfo, kNumOps> kOpTable = {{
#define TS_OP(id, name, nin, nout, cat, attrs) {OpId::id, name, nin, nout, OpCategory::cat, &ops::infer_##id},
#include "tessera/ops.def"
#undef TS_OP
}};
}  // namespace

const OpInfo& op_info(OpId op) { return kOpTable[static_cast<size_t>(op)]; }

}  // namespace tessera

namespace tessera::ops {

std::string dtype_str(DType t) { return std::string(dtype_name(t)); }

void check_dtype(const char* op, DType t, bool ok, const char* what) {
  if (!ok) raise<DTypeError>(op, std::string("expects ") + what + ", got " + dtype_str(t));
}

}  // namespace tessera::ops
