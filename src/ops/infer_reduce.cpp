// PENDING: stub infer rules, to be replaced by the real ones.
#include "infer.h"

namespace tessera::ops {

void infer_Sum(std::span<const Tensor>, const Attrs&, MetaList&) { raise<NotImplementedError>("sum", "not implemented yet"); }
void infer_Prod(std::span<const Tensor>, const Attrs&, MetaList&) { raise<NotImplementedError>("prod", "not implemented yet"); }
void infer_Max(std::span<const Tensor>, const Attrs&, MetaList&) { raise<NotImplementedError>("max", "not implemented yet"); }
void infer_Min(std::span<const Tensor>, const Attrs&, MetaList&) { raise<NotImplementedError>("min", "not implemented yet"); }
void infer_Any(std::span<const Tensor>, const Attrs&, MetaList&) { raise<NotImplementedError>("any", "not implemented yet"); }
void infer_All(std::span<const Tensor>, const Attrs&, MetaList&) { raise<NotImplementedError>("all", "not implemented yet"); }
void infer_ArgMax(std::span<const Tensor>, const Attrs&, MetaList&) { raise<NotImplementedError>("argmax", "not implemented yet"); }
void infer_ArgMin(std::span<const Tensor>, const Attrs&, MetaList&) { raise<NotImplementedError>("argmin", "not implemented yet"); }
void infer_Cumsum(std::span<const Tensor>, const Attrs&, MetaList&) { raise<NotImplementedError>("cumsum", "not implemented yet"); }
void infer_Sort(std::span<const Tensor>, const Attrs&, MetaList&) { raise<NotImplementedError>("sort", "not implemented yet"); }
void infer_TopK(std::span<const Tensor>, const Attrs&, MetaList&) { raise<NotImplementedError>("topk", "not implemented yet"); }

}  // namespace tessera::ops
