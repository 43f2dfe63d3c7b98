// Loss functions (PyTorch's definitions and defaults). Each takes a Reduction: Mean (default),
// Sum, or None (per-element losses). Errors name the loss and the shapes.
#pragma once

#include "tessera/ops.h"

namespace tessera::nn {

enum class Reduction { Mean, Sum, None };

struct CrossEntropyOptions {
  Reduction reduction = Reduction::Mean;
  int64_t ignore_index = -100;   // targets equal to it contribute nothing (and are not counted in the mean)
  double label_smoothing = 0.0;  // in [0, 1]: target distribution (1 - s) * one_hot + s / C
};

/// Cross-entropy of logits [N, C] (or [N, C, d1, ...]) against class indices [N] ([N, d1, ...]),
/// int32/int64, in [0, C) or equal to ignore_index (else IndexError). Mean over non-ignored
/// targets (NaN when all are ignored, like PyTorch). Computed as log_softmax + gather.
TESSERA_API Tensor cross_entropy(const Tensor& logits, const Tensor& targets, const CrossEntropyOptions& opt = {});
/// Negative log-likelihood of log-probabilities [N, C, ...] (same target rules; label_smoothing unused).
TESSERA_API Tensor nll_loss(const Tensor& log_probs, const Tensor& targets, const CrossEntropyOptions& opt = {});
/// (input - target)^2; shapes broadcast.
TESSERA_API Tensor mse_loss(const Tensor& input, const Tensor& target, Reduction reduction = Reduction::Mean);
/// |input - target|.
TESSERA_API Tensor l1_loss(const Tensor& input, const Tensor& target, Reduction reduction = Reduction::Mean);
/// Huber-like: 0.5 d^2 / beta where |d| < beta, else |d| - 0.5 beta (beta > 0; beta = 0 is L1).
TESSERA_API Tensor smooth_l1_loss(const Tensor& input, const Tensor& target, Reduction reduction = Reduction::Mean,
                                  double beta = 1.0);
/// -[pos_weight * t * log(sigmoid(x)) + (1 - t) * log(1 - sigmoid(x))], computed stably as
/// (1 - t) x + (1 + (pos_weight - 1) t) * softplus(-x). targets float in [0, 1], shaped like logits.
TESSERA_API Tensor binary_cross_entropy_with_logits(const Tensor& logits, const Tensor& targets,
                                                    Reduction reduction = Reduction::Mean,
                                                    const Tensor& pos_weight = {});

}  // namespace tessera::nn
