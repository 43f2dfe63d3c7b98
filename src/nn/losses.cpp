#include "tessera/nn/losses.h"

#include "tessera/compile.h"
#include "tessera/error.h"

namespace tessera::nn {

namespace {
Tensor reduce(const Tensor& l, Reduction r) {
  switch (r) {
    case Reduction::Mean:
      return mean(l);
    case Reduction::Sum:
      return sum(l);
    case Reduction::None:
      return l;
  }
  return l;
}

// Moves the class axis (1) last and flattens: [N, C, d...] -> [M, C]; targets -> [M].
std::pair<Tensor, Tensor> flat_classes(const char* op, const Tensor& x, const Tensor& t) {
  if (x.ndim() < 1 || !is_floating(x.dtype()))
    raise<ShapeError>(
        op, "expects float scores [N, C, ...], got " + std::string(dtype_name(x.dtype())) + " " + shape_str(x.shape()));
  if (t.dtype() != DType::Int64 && t.dtype() != DType::Int32)
    raise<DTypeError>(op, "targets must be int32/int64 class indices, got " + std::string(dtype_name(t.dtype())));
  Tensor xs = x.ndim() == 1 ? x.reshape({1, x.shape()[0]}) : x;
  Tensor ts = x.ndim() == 1 ? t.reshape({1}) : t;
  Shape want;
  want.push_back(xs.shape()[0]);
  for (int64_t a = 2; a < xs.ndim(); ++a) want.push_back(xs.shape()[a]);
  if (ts.shape() != want)
    raise<ShapeError>(op, "scores " + shape_str(x.shape()) + " need targets of shape " + shape_str(want) + ", got " +
                              shape_str(t.shape()));
  int64_t c = xs.shape()[1];
  if (xs.ndim() > 2) {
    std::vector<int64_t> perm{0};
    for (int64_t a = 2; a < xs.ndim(); ++a) perm.push_back(a);
    perm.push_back(1);
    xs = xs.permute(perm);
  }
  return {xs.reshape({-1, c}), ts.reshape({-1}).to(DType::Int64)};
}

Tensor nll_from_log_probs(const char* op, const Tensor& logp, const Tensor& targets, const CrossEntropyOptions& opt,
                          const Shape& out_shape) {
  int64_t c = logp.shape()[1];
  Tensor valid = ne(targets, opt.ignore_index);
  // Range check on the host: a wrong class index is a user error, not silent garbage.
  if (targets.numel() > 0) {
    Tensor bad = logical_and(valid, logical_or(lt(targets, 0), ge(targets, c)));
    // A checked condition rather than a host branch: compiled plans evaluate it at every call.
    trace::check(any(bad), [op = std::string(op), c, ignore = opt.ignore_index] {
      raise<IndexError>(op.c_str(), "target class out of range [0, " + std::to_string(c) + ") (ignore_index " +
                                        std::to_string(ignore) + ")");
    });
  }
  Tensor safe = where(valid, targets, 0).reshape({-1, 1});
  Tensor picked = take_along_axis(logp, safe, 1).reshape({-1});  // [M]
  Tensor loss = -picked;
  if (opt.label_smoothing > 0.0) {
    double s = opt.label_smoothing;
    loss = loss * (1.0 - s) - mean(logp, {1}) * s;
  }
  Tensor w = valid.to(logp.dtype());
  loss = loss * w;
  switch (opt.reduction) {
    case Reduction::Mean:
      return sum(loss) / sum(w);
    case Reduction::Sum:
      return sum(loss);
    case Reduction::None:
      return loss.reshape(out_shape);
  }
  return loss;
}

void check_smoothing(const char* op, double s) {
  if (!(s >= 0.0 && s <= 1.0)) raise<ValueError>(op, "label_smoothing must be in [0, 1], got " + std::to_string(s));
}
}  // namespace

Tensor cross_entropy(const Tensor& logits, const Tensor& targets, const CrossEntropyOptions& opt) {
  check_smoothing("cross_entropy", opt.label_smoothing);
  auto [x, t] = flat_classes("cross_entropy", logits, targets);
  return nll_from_log_probs("cross_entropy", log_softmax(x, 1), t, opt, targets.shape());
}

Tensor nll_loss(const Tensor& log_probs, const Tensor& targets, const CrossEntropyOptions& opt) {
  auto [x, t] = flat_classes("nll_loss", log_probs, targets);
  CrossEntropyOptions o = opt;
  o.label_smoothing = 0.0;
  return nll_from_log_probs("nll_loss", x, t, o, targets.shape());
}

Tensor mse_loss(const Tensor& input, const Tensor& target, Reduction r) {
  Tensor d = input - target;
  return reduce(d * d, r);
}

Tensor l1_loss(const Tensor& input, const Tensor& target, Reduction r) { return reduce(abs(input - target), r); }

Tensor smooth_l1_loss(const Tensor& input, const Tensor& target, Reduction r, double beta) {
  if (beta < 0.0) raise<ValueError>("smooth_l1_loss", "beta must be >= 0, got " + std::to_string(beta));
  Tensor d = abs(input - target);
  if (beta == 0.0) return reduce(d, r);
  return reduce(where(lt(d, beta), d * d * (0.5 / beta), d - 0.5 * beta), r);
}

Tensor binary_cross_entropy_with_logits(const Tensor& logits, const Tensor& targets, Reduction r,
                                        const Tensor& pos_weight) {
  if (logits.shape() != targets.shape())
    raise<ShapeError>("binary_cross_entropy_with_logits", "logits " + shape_str(logits.shape()) + " and targets " +
                                                              shape_str(targets.shape()) + " must have the same shape");
  Tensor t = targets.to(logits.dtype());
  Tensor sp = softplus(-logits);  // -log(sigmoid(x)), stable
  Tensor coef = pos_weight.defined() ? 1.0 + (pos_weight - 1.0) * t : Tensor();
  Tensor l = coef.defined() ? (1.0 - t) * logits + coef * sp : (1.0 - t) * logits + sp;
  return reduce(l, r);
}

}  // namespace tessera::nn
