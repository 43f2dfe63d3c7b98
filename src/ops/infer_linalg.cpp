// PENDING: stub infer rules, to be replaced by the real ones.
#include "infer.h"

namespace tessera::ops {

void infer_Matmul(std::span<const Tensor>, const Attrs&, MetaList&) { raise<NotImplementedError>("matmul", "not implemented yet"); }
void infer_Conv2d(std::span<const Tensor>, const Attrs&, MetaList&) { raise<NotImplementedError>("conv2d", "not implemented yet"); }
void infer_ConvTranspose2d(std::span<const Tensor>, const Attrs&, MetaList&) { raise<NotImplementedError>("conv_transpose2d", "not implemented yet"); }
void infer_MaxPool2d(std::span<const Tensor>, const Attrs&, MetaList&) { raise<NotImplementedError>("max_pool2d", "not implemented yet"); }
void infer_AvgPool2d(std::span<const Tensor>, const Attrs&, MetaList&) { raise<NotImplementedError>("avg_pool2d", "not implemented yet"); }
void infer_AdaptiveAvgPool2d(std::span<const Tensor>, const Attrs&, MetaList&) { raise<NotImplementedError>("adaptive_avg_pool2d", "not implemented yet"); }

}  // namespace tessera::ops
