// Reverse mode: a level that records a tape while the function runs, and the pullback that
// walks it backwards.
//
// Memory: an entry keeps only what its rule asks for (Rule::save_in / save_out). A consuming
// pullback (grad, value_and_grad) drops each entry's saved values and each cotangent as soon as
// the backward walk has passed them, so the peak of the backward pass stays near the forward's.
#include <string>
#include <vector>

#include "rules.h"
#include "tessera/autodiff.h"
#include "tracer.h"

namespace tessera::autodiff {

namespace {

struct CustomRecord {
  CustomVjp fn;
  TensorList residuals;
};

struct Entry {
  OpId op{};
  Attrs attrs;
  std::vector<Tensor> in;   // saved primal inputs (undefined where not kept)
  std::vector<Tensor> out;  // saved primal outputs (undefined where not kept)
  std::vector<TensorMeta> in_meta;
  std::vector<TensorMeta> out_meta;
  SmallVector<int64_t, 3> in_ids;   // -1: constant at this level
  SmallVector<int64_t, 2> out_ids;  // -1: output not tracked
  Device device;
  std::shared_ptr<CustomRecord> custom;
};

TensorMeta meta_of(const Tensor& t) { return TensorMeta{t.shape(), t.dtype()}; }

}  // namespace

class VjpLevel final : public Level {
 public:
  std::vector<Entry> tape;
  int64_t next_id = 0;

  int64_t new_id() { return next_id++; }

  static bool bit(uint32_t mask, size_t i) { return (mask >> std::min<size_t>(i, 31)) & 1u; }

  // Records the inputs' metas and ids, keeping the primals whose bit is set in save.
  static void add_inputs(Entry& e, const std::vector<Tensor>& prim, const std::vector<Tracer*>& tr, uint32_t save) {
    e.device = prim.empty() ? default_device() : prim[0].device();
    for (size_t i = 0; i < prim.size(); ++i) {
      e.in.push_back(bit(save, i) ? prim[i] : Tensor());
      e.in_meta.push_back(meta_of(prim[i]));
      e.in_ids.push_back(tr[i] ? tr[i]->id : -1);
    }
  }

  // Records one output (kept if keep) and, if it is a float tensor, replaces it with a new tracer of
  // this level. Integer outputs (sort's indices) are not tracked but are kept when the rule asks.
  // Returns whether the output is tracked.
  bool add_output(Entry& e, Tensor& o, bool keep) {
    e.out_meta.push_back(o.defined() ? meta_of(o) : TensorMeta{});
    e.out.push_back(o.defined() && keep ? o : Tensor());
    if (!o.defined() || !is_floating(o.dtype())) {
      e.out_ids.push_back(-1);
      return false;
    }
    int64_t id = new_id();
    e.out_ids.push_back(id);
    o = wrap(o, state(), id);
    return true;
  }

  void process(OpId op, std::span<const Tensor> in, const Attrs& attrs, std::span<Tensor> out) override {
    std::vector<Tensor> prim;
    std::vector<Tracer*> tr;
    bool any = unwrap(in, prim, tr);
    {
      ScopedInterpreter down(parent());
      detail::dispatch(op, std::span<const Tensor>(prim.data(), prim.size()), attrs, out);
    }
    if (!any) return;
    const Rule& r = rule_for(op);
    if (r.nondiff) return;
    if (!r.vjp) raise<NotImplementedError>(op_name(op), "has no reverse-mode derivative rule");
    Entry e;
    e.op = op;
    e.attrs = attrs;
    add_inputs(e, prim, tr, r.save_in);
    bool tracked = false;
    for (size_t k = 0; k < out.size(); ++k) tracked |= add_output(e, out[k], bit(r.save_out, k));
    if (tracked) tape.push_back(std::move(e));
  }

  TensorList process_custom(const CustomVjp& fn, const TensorList& inputs) override {
    TensorList prim;
    std::vector<Tracer*> tr;
    bool any = unwrap(inputs, prim, tr);
    ScopedInterpreter down(parent());
    if (!any) return custom_vjp_call(fn, prim);
    auto [outs, residuals] = fn.forward(prim);
    Entry e;
    e.custom = std::make_shared<CustomRecord>(CustomRecord{fn, std::move(residuals)});
    add_inputs(e, prim, tr, kSaveNone);  // the residuals hold what backward needs
    for (Tensor& o : outs) add_output(e, o, false);
    tape.push_back(std::move(e));
    return outs;
  }
};

}  // namespace tessera::autodiff

namespace tessera {

using autodiff::Entry;
using autodiff::VjpLevel;

struct Pullback::State {
  std::vector<Entry> tape;
  int64_t num_ids = 0;
  std::vector<TensorMeta> in_meta;
  std::vector<int64_t> out_ids;  // -1: output does not depend on the inputs
  std::vector<TensorMeta> out_meta;
  Device device;
  bool consume = false;
  bool used = false;
};

namespace {

Tensor fix_grad(const char* op, Tensor g, const TensorMeta& m) {
  if (!g.defined()) return g;
  if (!(g.shape() == m.shape)) {
    g = autodiff::unbroadcast(g, m.shape);
    if (!(g.shape() == m.shape))
      raise<ShapeError>(op, "derivative rule returned a gradient of shape " + shape_str(g.shape()) +
                                " for an input of shape " + shape_str(m.shape));
  }
  if (g.dtype() != m.dtype) g = cast(g, m.dtype);
  return g;
}

void run_entry(Entry& e, std::vector<Tensor>& ct) {
  size_t nout = e.out_ids.size(), nin = e.in_ids.size();
  std::vector<Tensor> cts(nout);
  bool any = false;
  for (size_t k = 0; k < nout; ++k) {
    if (e.out_ids[k] >= 0 && ct[static_cast<size_t>(e.out_ids[k])].defined()) {
      cts[k] = ct[static_cast<size_t>(e.out_ids[k])];
      any = true;
    }
  }
  if (!any) return;
  std::vector<Tensor> grads(nin);
  SmallVector<bool, 3> need(nin);
  bool needed = false;
  for (size_t i = 0; i < nin; ++i) {
    need[i] = e.in_ids[i] >= 0;
    needed = needed || need[i];
  }
  if (!needed) return;
  const char* name = e.custom ? e.custom->fn.name.c_str() : op_name(e.op);
  if (e.custom) {
    for (size_t k = 0; k < nout; ++k)
      if (!cts[k].defined() && is_floating(e.out_meta[k].dtype)) cts[k] = autodiff::zeros_meta(e.out_meta[k], e.device);
    TensorList g = e.custom->fn.backward(e.custom->residuals, TensorList(cts.begin(), cts.end()));
    if (g.size() != nin)
      raise<ValueError>(name, "custom backward returned " + std::to_string(g.size()) + " gradients for " +
                                  std::to_string(nin) + " inputs");
    for (size_t i = 0; i < nin; ++i) grads[i] = g[i];
  } else {
    const autodiff::Rule& r = autodiff::rule_for(e.op);
    autodiff::VjpArgs a{e.op,
                        e.attrs,
                        std::span<const Tensor>(e.in.data(), nin),
                        std::span<const Tensor>(e.out.data(), nout),
                        std::span<const TensorMeta>(e.in_meta.data(), nin),
                        std::span<const Tensor>(cts.data(), nout),
                        std::span<const bool>(need.data(), nin)};
    r.vjp(a, std::span<Tensor>(grads.data(), nin));
  }
  for (size_t i = 0; i < nin; ++i) {
    if (!need[i] || !grads[i].defined()) continue;
    Tensor g = fix_grad(name, grads[i], e.in_meta[i]);
    Tensor& slot = ct[static_cast<size_t>(e.in_ids[i])];
    slot = autodiff::acc(slot, g);
  }
}

}  // namespace

TensorList Pullback::operator()(const TensorList& cotangents) const {
  if (!s_) raise<ValueError>("vjp", "pullback is empty");
  State& s = *s_;
  if (s.consume && s.used)
    raise<ValueError>("vjp", "this pullback frees its saved values as it runs and can be called only once");
  s.used = true;
  if (cotangents.size() != s.out_ids.size())
    raise<ValueError>("vjp", "pullback expects " + std::to_string(s.out_ids.size()) + " cotangents, got " +
                                 std::to_string(cotangents.size()));
  std::vector<Tensor> ct(static_cast<size_t>(s.num_ids));
  for (size_t k = 0; k < cotangents.size(); ++k) {
    const Tensor& c = cotangents[k];
    if (!c.defined()) continue;
    const TensorMeta& m = s.out_meta[k];
    if (!(c.shape() == m.shape))
      raise<ShapeError>("vjp", "cotangent " + std::to_string(k) + " has shape " + shape_str(c.shape()) +
                                   ", the output has shape " + shape_str(m.shape));
    if (c.dtype() != m.dtype)
      raise<DTypeError>("vjp", "cotangent " + std::to_string(k) + " is " + std::string(dtype_name(c.dtype())) +
                                   ", the output is " + std::string(dtype_name(m.dtype)));
    if (s.out_ids[k] < 0) continue;
    Tensor& slot = ct[static_cast<size_t>(s.out_ids[k])];
    slot = autodiff::acc(slot, c);
  }
  for (size_t j = s.tape.size(); j-- > 0;) {
    Entry& e = s.tape[j];
    run_entry(e, ct);
    if (s.consume) {
      for (int64_t id : e.out_ids)
        if (id >= 0) ct[static_cast<size_t>(id)] = Tensor();
      e = Entry{};
    }
  }
  if (s.consume) s.tape.clear();
  TensorList grads(s.in_meta.size());
  for (size_t i = 0; i < grads.size(); ++i) {
    if (ct[i].defined())
      grads[i] = ct[i];
    else if (is_floating(s.in_meta[i].dtype))
      grads[i] = autodiff::zeros_meta(s.in_meta[i], s.device);
  }
  return grads;
}

namespace detail {

VjpFlat vjp_flat(const FlatFn& f, const TensorList& primals, bool consume) {
  auto level = std::make_unique<VjpLevel>();
  auto st = std::make_shared<Pullback::State>();
  st->consume = consume;
  st->device = primals.empty() ? default_device() : primals[0].device();
  TensorList traced(primals.size());
  for (size_t i = 0; i < primals.size(); ++i) {
    const Tensor& p = primals[i];
    if (!p.defined()) raise<ValueError>("vjp", "primal " + std::to_string(i) + " is an undefined tensor");
    int64_t id = level->new_id();  // ids 0..n-1 are the inputs
    st->in_meta.push_back(TensorMeta{p.shape(), p.dtype()});
    traced[i] = is_floating(p.dtype()) ? autodiff::wrap(p, level->state(), id) : p;
  }
  TensorList outs = f(traced);
  level->finish();
  VjpFlat r;
  for (Tensor& o : outs) {
    if (!o.defined()) raise<ValueError>("vjp", "function returned an undefined tensor");
    autodiff::Tracer* tr = autodiff::tracer_of(o);
    if (tr && tr->level == level->state()) {
      st->out_ids.push_back(tr->id);
      r.outputs.push_back(tr->primal);
    } else {
      st->out_ids.push_back(-1);
      r.outputs.push_back(strip_inactive(o));
    }
    st->out_meta.push_back(TensorMeta{o.shape(), o.dtype()});
  }
  st->tape = std::move(level->tape);
  st->num_ids = level->next_id;
  r.pullback = Pullback(st);
  return r;
}

void check_scalar_output(const char* transform, const Tensor& out) {
  if (out.numel() != 1)
    raise<ValueError>(transform, "function must return a scalar (one element), got shape " + shape_str(out.shape()));
  if (!is_floating(out.dtype()))
    raise<DTypeError>(transform,
                      "function must return a floating-point scalar, got " + std::string(dtype_name(out.dtype())));
}

Tensor ones_cotangent(const Tensor& out) { return ones_like(out); }

}  // namespace detail

}  // namespace tessera
