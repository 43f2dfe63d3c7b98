// Forward mode: a level that pairs every tracked value with its tangent, computing output
// tangents with each primitive's jvp rule as the function runs.
#include <string>

#include "rules.h"
#include "tessera/autodiff.h"
#include "tracer.h"

namespace tessera::autodiff {

class JvpLevel final : public Level {
 public:
  void process(OpId op, std::span<const Tensor> in, const Attrs& attrs, std::span<Tensor> out) override {
    std::vector<Tensor> prim;
    std::vector<Tracer*> tr;
    bool any = unwrap(in, prim, tr);
    std::vector<Tensor> tan(in.size());
    for (size_t i = 0; i < tan.size(); ++i)
      if (tr[i]) tan[i] = tr[i]->tangent;
    ScopedInterpreter down(parent());
    detail::dispatch(op, std::span<const Tensor>(prim.data(), prim.size()), attrs, out);
    if (!any) return;
    const Rule& r = rule_for(op);
    if (r.nondiff) return;
    if (!r.jvp) raise<NotImplementedError>(op_name(op), "has no forward-mode derivative rule");
    bool any_tangent = false;
    for (const Tensor& t : tan) any_tangent = any_tangent || t.defined();
    std::vector<Tensor> touts(out.size());
    if (any_tangent) {
      JvpArgs a{op, attrs, std::span<const Tensor>(prim.data(), prim.size()),
                std::span<const Tensor>(tan.data(), tan.size()), std::span<const Tensor>(out.data(), out.size())};
      r.jvp(a, std::span<Tensor>(touts.data(), touts.size()));
    }
    for (size_t k = 0; k < out.size(); ++k) {
      if (!out[k].defined() || !is_floating(out[k].dtype())) continue;
      Tensor t = touts[k];
      if (t.defined()) {
        if (!(t.shape() == out[k].shape())) t = broadcast_to(t, out[k].shape());
        if (t.dtype() != out[k].dtype()) t = cast(t, out[k].dtype());
      }
      out[k] = wrap(out[k], state(), -1, t);
    }
  }
};

}  // namespace tessera::autodiff

namespace tessera::detail {

std::pair<TensorList, TensorList> jvp_flat(const FlatFn& f, const TensorList& primals, const TensorList& tangents) {
  if (primals.size() != tangents.size())
    raise<ValueError>("jvp", "got " + std::to_string(primals.size()) + " primals but " +
                                 std::to_string(tangents.size()) + " tangents");
  TensorList traced(primals.size());
  autodiff::JvpLevel level;
  for (size_t i = 0; i < primals.size(); ++i) {
    const Tensor& p = primals[i];
    const Tensor& t = tangents[i];
    if (!p.defined()) raise<ValueError>("jvp", "primal " + std::to_string(i) + " is an undefined tensor");
    if (t.defined()) {
      if (!(t.shape() == p.shape()))
        raise<ShapeError>("jvp", "tangent " + std::to_string(i) + " has shape " + shape_str(t.shape()) +
                                     ", its primal " + shape_str(p.shape()));
      if (t.dtype() != p.dtype())
        raise<DTypeError>("jvp", "tangent " + std::to_string(i) + " is " + std::string(dtype_name(t.dtype())) +
                                     ", its primal " + std::string(dtype_name(p.dtype())));
    }
    traced[i] = is_floating(p.dtype()) ? autodiff::wrap(p, level.state(), -1, t) : p;
  }
  TensorList outs = f(traced);
  TensorList touts(outs.size());
  for (size_t k = 0; k < outs.size(); ++k) {
    Tensor& o = outs[k];
    if (!o.defined()) raise<ValueError>("jvp", "function returned an undefined tensor");
    autodiff::Tracer* tr = autodiff::tracer_of(o);
    if (tr && tr->level == level.state()) {
      touts[k] = tr->tangent;
      o = tr->primal;
    }
  }
  level.finish();
  for (size_t k = 0; k < outs.size(); ++k) {
    outs[k] = strip_inactive(outs[k]);
    if (!touts[k].defined()) touts[k] = is_floating(outs[k].dtype()) ? zeros_like(outs[k]) : Tensor();
  }
  return {outs, touts};
}

}  // namespace tessera::detail
