// The rule table and the helpers shared by the rule files.
#include "rules.h"

namespace tessera::autodiff {

namespace {
RuleTable build_table() {
  RuleTable t{};
  register_elementwise_rules(t);
  register_reduce_rules(t);
  register_linalg_rules(t);
  register_view_rules(t);
  register_index_rules(t);
  register_nn_rules(t);
  register_conv_rules(t);
  // Ops without tensor inputs never see a tracer.
  for (OpId op : {OpId::Full, OpId::Arange, OpId::RandomUniform, OpId::RandomNormal}) set_nondiff(t, op);
  return t;
}
}  // namespace

const Rule& rule_for(OpId op) {
  static const RuleTable table = build_table();
  return table[static_cast<size_t>(op)];
}

Tensor acc(const Tensor& a, const Tensor& b) {
  if (!a.defined()) return b;
  if (!b.defined()) return a;
  return add(a, b);
}

Tensor tan_or_zero(const Tensor& t, const Tensor& like) { return t.defined() ? t : zeros_like(like); }

Tensor zeros_meta(const TensorMeta& m, Device device) { return zeros(m.shape, m.dtype, device); }

Tensor unbroadcast(const Tensor& g, std::span<const int64_t> shape) {
  int64_t gnd = g.ndim(), nd = static_cast<int64_t>(shape.size());
  if (gnd < nd)
    return broadcast_to(g, IntList(shape.data(), shape.size()));  // a 0-d gradient of a broadcast scalar, say
  Axes axes;
  for (int64_t i = 0; i < gnd; ++i) {
    int64_t j = i - (gnd - nd);
    if (j < 0 || (shape[static_cast<size_t>(j)] == 1 && g.shape()[static_cast<size_t>(i)] != 1)) axes.push_back(i);
  }
  Tensor r = axes.empty() ? g : sum(g, axes, /*keepdims=*/true);
  return r.reshape(IntList(shape.data(), shape.size()));
}

Tensor unsqueeze_reduced(const Tensor& x, std::span<const int64_t> axes, int64_t full_ndim, bool keepdims) {
  if (keepdims) return x;
  Shape s;
  size_t k = 0;
  for (int64_t i = 0; i < full_ndim; ++i) {
    bool reduced = false;
    for (int64_t a : axes) reduced = reduced || a == i;
    if (reduced)
      s.push_back(1);
    else
      s.push_back(x.shape()[k++]);
  }
  return x.reshape(s);
}

}  // namespace tessera::autodiff
