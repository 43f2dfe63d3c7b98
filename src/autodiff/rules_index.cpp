// Derivative rules of the indexing primitives (gather, scatter, scatter_add, index_select) and of sort/topk.
// Index tensors (int32/int64) are data, never differentiated: each rule treats them as constants, so the
// rules are linear maps written with gather / scatter_add, which keeps them differentiable again.
#include <vector>

#include "rules.h"
#include "tessera/autodiff.h"

namespace tessera::autodiff {

namespace {

// g (shaped like the index) embedded at the start of every axis of a zero tensor of shape `full`:
// scatter's src may be larger than its index, and only the index-shaped corner of src is read.
Tensor pad_to(const Tensor& g, const Shape& full) {
  std::vector<int64_t> pads;
  bool any = false;
  for (size_t d = 0; d < full.size(); ++d) {
    pads.push_back(0);
    pads.push_back(full[d] - g.shape()[d]);
    any = any || pads.back() != 0;
  }
  return any ? pad(g, pads) : g;
}

// ------------------------------------------------------------------- gather
// y[.., j, ..] = x[.., index[.., j, ..], ..] along axis; y and index share a shape (no larger than x outside
// axis). Transpose: scatter_add(zeros(x), axis, index, ct) (repeated indices accumulate).
void gather_vjp(const VjpArgs& a, std::span<Tensor> g) {
  if (!a.need[0] || !a.ct[0].defined()) return;
  const Tensor& ct = a.ct[0];
  const int64_t axis = a.at<AxisAttrs>().axis;
  g[0] = scatter_add(zeros(a.in_meta[0].shape, ct.dtype(), ct.device()), axis, a.in[1], ct);
}
void gather_jvp(const JvpArgs& a, std::span<Tensor> t) {
  if (a.tan[0].defined()) t[0] = gather(a.tan[0], a.at<AxisAttrs>().axis, a.in[1]);
}

// ------------------------------------------------------------------ scatter
// y = x with y[index[i]] = src[i] (along axis, last write wins). x's cotangent is ct with the written
// positions zeroed: scatter(ct, index, 0). src[i] receives ct[index[i]] only if its write is the one that
// survives: scatter the ids of the writes (an arange shaped like index) into -1s with the same index, read
// them back with gather, and keep the writes whose id came back. src may be larger than index (only the
// index-shaped corner is written); the rest of src gets zero.
Tensor scatter_winners(const Tensor& index, int64_t axis, const Shape& x_shape) {
  const int64_t n = index.numel();
  Tensor ids = reshape(arange(0, n, 1, DType::Int64, index.device()), index.shape());
  Tensor owner = scatter(full(x_shape, -1, DType::Int64, index.device()), axis, index, ids);
  return eq(gather(owner, axis, index), ids);
}

void scatter_vjp(const VjpArgs& a, std::span<Tensor> g) {
  if (!a.ct[0].defined()) return;
  const Tensor& ct = a.ct[0];
  const Tensor& index = a.in[1];
  const int64_t axis = a.at<AxisAttrs>().axis;
  if (a.need[0]) g[0] = scatter(ct, axis, index, scalar_tensor(0, ct.dtype(), ct.device()));
  if (a.need[2]) {
    Tensor keep = scatter_winners(index, axis, a.in_meta[0].shape);
    Tensor gs = where(keep, gather(ct, axis, index), 0);
    g[2] = pad_to(gs, a.in_meta[2].shape);
  }
}
void scatter_jvp(const JvpArgs& a, std::span<Tensor> t) {
  if (!a.tan[0].defined() && !a.tan[2].defined()) return;
  const int64_t axis = a.at<AxisAttrs>().axis;
  Tensor tx = tan_or_zero(a.tan[0], a.in[0]);
  Tensor ts = tan_or_zero(a.tan[2], a.in[2]);
  t[0] = scatter(tx, axis, a.in[1], ts);
}

// -------------------------------------------------------------- scatter_add
// y = x + (src accumulated at index): x's cotangent is ct, src's is ct read back at index (zero outside
// the index-shaped corner of src).
void scatter_add_vjp(const VjpArgs& a, std::span<Tensor> g) {
  if (!a.ct[0].defined()) return;
  if (a.need[0]) g[0] = a.ct[0];
  if (a.need[2]) g[2] = pad_to(gather(a.ct[0], a.at<AxisAttrs>().axis, a.in[1]), a.in_meta[2].shape);
}
void scatter_add_jvp(const JvpArgs& a, std::span<Tensor> t) {
  if (!a.tan[2].defined()) {
    if (a.tan[0].defined()) t[0] = a.tan[0];
    return;
  }
  Tensor tx = tan_or_zero(a.tan[0], a.in[0]);
  t[0] = scatter_add(tx, a.at<AxisAttrs>().axis, a.in[1], a.tan[2]);
}

// ------------------------------------------------------------- index_select
// y = index_select(x, axis, index): y's axis has numel(index) entries, entry j = x's entry index[j].
// Transpose: scatter_add into zeros(x) with index reshaped to [1,..,L,..,1] and expanded to ct's shape.
// A 0-d x acts as [1] (every entry is x itself): its cotangent is sum(ct).
void index_select_vjp(const VjpArgs& a, std::span<Tensor> g) {
  if (!a.need[0] || !a.ct[0].defined()) return;
  const Tensor& ct = a.ct[0];
  const Shape& xs = a.in_meta[0].shape;
  if (xs.empty()) {
    g[0] = sum(ct);
    return;
  }
  const int64_t axis = a.at<AxisAttrs>().axis;
  Shape is(xs.size(), 1);
  is[static_cast<size_t>(axis)] = a.in[1].numel();
  Tensor index = expand(reshape(a.in[1], is), ct.shape());
  g[0] = scatter_add(zeros(xs, ct.dtype(), ct.device()), axis, index, ct);
}
void index_select_jvp(const JvpArgs& a, std::span<Tensor> t) {
  if (a.tan[0].defined()) t[0] = index_select(a.tan[0], a.at<AxisAttrs>().axis, a.in[1]);
}

// -------------------------------------------------------------- sort, topk
// values = gather(x, axis, indices) with indices the second output (not differentiable): the vjp scatters
// the values' cotangent into zeros(x) at indices, the jvp gathers the tangent.

template <class A>
void sort_vjp(const VjpArgs& a, std::span<Tensor> g) {
  if (!a.need[0] || !a.ct[0].defined()) return;
  const Tensor& ct = a.ct[0];
  const Shape& xs = a.in_meta[0].shape;
  g[0] = scatter_add(zeros(xs, ct.dtype(), ct.device()), a.at<A>().axis, a.out[1], ct);
}
template <class A>
void sort_jvp(const JvpArgs& a, std::span<Tensor> t) {
  if (a.tan[0].defined()) t[0] = gather(a.tan[0], a.at<A>().axis, a.out[1]);
}

constexpr uint32_t kBit1 = 1u << 1;

}  // namespace

void register_index_rules(RuleTable& t) {
  // Only the index (input 1) or the indices output (output 1) is kept; shapes come from in_meta.
  set_rule(t, OpId::Gather, gather_vjp, gather_jvp, kBit1, kSaveNone);
  set_rule(t, OpId::Scatter, scatter_vjp, scatter_jvp, kBit1, kSaveNone);
  set_rule(t, OpId::ScatterAdd, scatter_add_vjp, scatter_add_jvp, kBit1, kSaveNone);
  set_rule(t, OpId::IndexSelect, index_select_vjp, index_select_jvp, kBit1, kSaveNone);
  set_rule(t, OpId::Sort, sort_vjp<SortAttrs>, sort_jvp<SortAttrs>, kSaveNone, kBit1);
  set_rule(t, OpId::TopK, sort_vjp<TopKAttrs>, sort_jvp<TopKAttrs>, kSaveNone, kBit1);
}

}  // namespace tessera::autodiff
