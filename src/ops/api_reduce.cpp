// PENDING: replaced by the reductions work.
#include "api_util.h"

namespace tessera {
Tensor any(const Tensor&, IntList, bool) { raise<NotImplementedError>("any", "not implemented yet"); }
Tensor all(const Tensor&, IntList, bool) { raise<NotImplementedError>("all", "not implemented yet"); }
}  // namespace tessera
