// PENDING: stub infer rules, to be replaced by the real ones.
#include "infer.h"

namespace tessera::ops {

void infer_Concat(std::span<const Tensor>, const Attrs&, MetaList&) { raise<NotImplementedError>("concat", "not implemented yet"); }
void infer_Pad(std::span<const Tensor>, const Attrs&, MetaList&) { raise<NotImplementedError>("pad", "not implemented yet"); }
void infer_Flip(std::span<const Tensor>, const Attrs&, MetaList&) { raise<NotImplementedError>("flip", "not implemented yet"); }
void infer_Gather(std::span<const Tensor>, const Attrs&, MetaList&) { raise<NotImplementedError>("gather", "not implemented yet"); }
void infer_Scatter(std::span<const Tensor>, const Attrs&, MetaList&) { raise<NotImplementedError>("scatter", "not implemented yet"); }
void infer_ScatterAdd(std::span<const Tensor>, const Attrs&, MetaList&) { raise<NotImplementedError>("scatter_add", "not implemented yet"); }
void infer_IndexSelect(std::span<const Tensor>, const Attrs&, MetaList&) { raise<NotImplementedError>("index_select", "not implemented yet"); }

}  // namespace tessera::ops
