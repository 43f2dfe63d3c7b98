// PENDING: stub infer rules, to be replaced by the real ones.
#include "infer.h"

namespace tessera::ops {

void infer_Softmax(std::span<const Tensor>, const Attrs&, MetaList&) { raise<NotImplementedError>("softmax", "not implemented yet"); }
void infer_LogSoftmax(std::span<const Tensor>, const Attrs&, MetaList&) { raise<NotImplementedError>("log_softmax", "not implemented yet"); }
void infer_LayerNorm(std::span<const Tensor>, const Attrs&, MetaList&) { raise<NotImplementedError>("layer_norm", "not implemented yet"); }
void infer_RmsNorm(std::span<const Tensor>, const Attrs&, MetaList&) { raise<NotImplementedError>("rms_norm", "not implemented yet"); }

}  // namespace tessera::ops
