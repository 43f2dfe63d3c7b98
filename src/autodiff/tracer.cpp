#include "tracer.h"

#include "tessera/autodiff.h"
#include "tessera/dtype.h"

namespace tessera::autodiff {

namespace {
thread_local int t_depth = 0;
}

Tensor peel(const Tensor& t, int depth) {
  Tensor x = t;
  while (Tracer* tr = tracer_of(x)) {
    if (tr->level->active && tr->level->depth <= depth) break;
    x = tr->primal;
  }
  return x;
}

Tensor wrap(const Tensor& primal, std::shared_ptr<LevelState> level, int64_t id, Tensor tangent) {
  auto impl = std::make_shared<TensorImpl>(primal.impl());
  auto tr = std::make_shared<Tracer>();
  tr->level = std::move(level);
  tr->primal = primal;
  tr->id = id;
  tr->tangent = std::move(tangent);
  impl->node = std::move(tr);
  return Tensor(std::move(impl));
}

Level::Level() : state_(std::make_shared<LevelState>()), parent_(detail::current_interpreter()) {
  state_->depth = ++t_depth;
  detail::current_interpreter() = this;
}

Level::~Level() { finish(); }

void Level::finish() {
  if (finished_) return;
  finished_ = true;
  state_->active = false;
  --t_depth;
  detail::current_interpreter() = parent_;
}

Tracer* Level::mine(Tensor& t) const {
  t = peel(t, state_->depth);
  Tracer* tr = tracer_of(t);
  return tr && tr->level == state_ ? tr : nullptr;
}

bool Level::unwrap(std::span<const Tensor> in, std::vector<Tensor>& prim, std::vector<Tracer*>& tracers) const {
  prim.assign(in.begin(), in.end());
  tracers.assign(in.size(), nullptr);
  bool any = false;
  for (size_t i = 0; i < prim.size(); ++i) {
    if (Tracer* tr = mine(prim[i])) {
      tracers[i] = tr;
      prim[i] = tr->primal;
      any = true;
    }
  }
  return any;
}

}  // namespace tessera::autodiff

namespace tessera {

Tensor stop_gradient(const Tensor& x) {
  Tensor t = x;
  while (autodiff::Tracer* tr = autodiff::tracer_of(t)) t = tr->primal;
  return t;
}

namespace detail {

Tensor strip_inactive(const Tensor& t) {
  Tensor x = t;
  while (autodiff::Tracer* tr = autodiff::tracer_of(x)) {
    if (tr->level->active) break;
    x = tr->primal;
  }
  return x;
}

bool is_differentiable(const Tensor& t) { return t.defined() && is_floating(t.dtype()); }

}  // namespace detail
}  // namespace tessera
