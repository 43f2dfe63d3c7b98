// Optimizer base and SGD / Adam / AdamW / RMSprop updates.
//
// Every update is written with scalar-operand ops (mul/add/div by a C++ double) so that the
// number of full-size temporaries stays small; the order of operations follows PyTorch's
// single-tensor implementation so that results agree to float rounding.
#include "tessera/optim/optimizer.h"

#include <cmath>
#include <set>
#include <sstream>
#include <utility>

#include "tessera/ops.h"

namespace tessera::optim {

namespace {

std::string shape_str(const Shape& s) {
  std::ostringstream os;
  os << "[";
  for (size_t i = 0; i < s.size(); ++i) os << (i ? "," : "") << s[i];
  os << "]";
  return os.str();
}

void check_nonneg(const char* op, const char* what, double v) {
  if (!(v >= 0.0)) raise<ValueError>(op, std::string(what) + " must be >= 0, got " + std::to_string(v));
}

void check_beta(const char* op, const char* what, double v) {
  if (!(v >= 0.0 && v < 1.0)) raise<ValueError>(op, std::string(what) + " must be in [0, 1), got " + std::to_string(v));
}

Tensor scalar_i64(int64_t v) { return scalar_tensor(v, DType::Int64); }

}  // namespace

// ---------------------------------------------------------------------------------------------
// Optimizer

Optimizer::Optimizer(nn::ParameterList params, double lr) : params_(std::move(params)), lr_(lr) {
  check_nonneg("optimizer", "lr", lr);
  for (size_t i = 0; i < params_.size(); ++i) {
    const auto& p = params_[i];
    if (p.value == nullptr || !p.value->defined())
      raise<ValueError>("optimizer", "parameter '" + p.name + "' is not a defined tensor");
    if (!is_floating(p.value->dtype()))
      raise<DTypeError>("optimizer", "parameter '" + p.name + "' has dtype " +
                                         std::string(dtype_name(p.value->dtype())) +
                                         "; only floating-point parameters can be optimized");
    if (!index_.emplace(p.name, i).second) raise<ValueError>("optimizer", "duplicate parameter name '" + p.name + "'");
  }
}

void Optimizer::set_lr(double lr) {
  check_nonneg("optimizer.set_lr", "lr", lr);
  lr_ = lr;
}

void Optimizer::step(const TensorMap& grads) {
  // Validate everything first, then compute, then commit: an error leaves the model untouched.
  for (const auto& [name, g] : grads) {
    auto it = index_.find(name);
    if (it == index_.end())
      raise<ValueError>("optimizer.step", "gradient '" + name + "' does not belong to any parameter");
    const Tensor& p = *params_[it->second].value;
    if (!g.defined()) raise<ValueError>("optimizer.step", "gradient of '" + name + "' is undefined");
    if (g.shape() != p.shape())
      raise<ShapeError>("optimizer.step", "gradient of '" + name + "' has shape " + shape_str(g.shape()) +
                                              ", the parameter has shape " + shape_str(p.shape()));
    if (g.dtype() != p.dtype())
      raise<DTypeError>("optimizer.step", "gradient of '" + name + "' is " + std::string(dtype_name(g.dtype())) +
                                              ", the parameter is " + std::string(dtype_name(p.dtype())));
  }
  std::vector<std::pair<size_t, Tensor>> new_values;
  std::vector<std::pair<std::string, ParamState>> new_states;
  new_values.reserve(grads.size());
  new_states.reserve(grads.size());
  for (const auto& [name, g] : grads) {
    size_t i = index_.at(name);
    ParamState st;
    if (auto s = state_.find(name); s != state_.end()) st = s->second;
    ++st.step;
    current_ = name;
    new_values.emplace_back(i, update(*params_[i].value, g, st));
    new_states.emplace_back(name, std::move(st));
  }
  for (auto& [i, v] : new_values) *params_[i].value = std::move(v);
  // Buffers are assigned into the existing map nodes: their addresses are state slots that
  // compiled steps read and write, so they must stay put from step to step.
  for (auto& [name, st] : new_states) {
    ParamState& dst = state_[name];
    dst.step = st.step;
    for (auto& [b, t] : st.buffers) dst.buffers[b] = std::move(t);
  }
  ++steps_;
  if (trace::active()) {
    // A compiled step redoes this bookkeeping at every call (the plan updates the tensors).
    std::vector<std::string> names;
    for (const auto& [name, g] : grads) names.push_back(name);
    trace::on_replay(
        [this, names] {
          for (const auto& n : names) ++state_[n].step;
          ++steps_;
        },
        [this, names] {
          for (const auto& n : names)
            if (auto it = state_.find(n); it != state_.end() && --it->second.step <= 0) state_.erase(it);
          --steps_;
        });
  }
}

Tensor Optimizer::step_scalar(const Tensor& like, const ParamState& st, std::function<double(double, double)> f) {
  const double now = f(static_cast<double>(st.step), lr_);
  if (!trace::active()) return full({}, now, like.dtype(), like.device());
  // At a replay the feeds run before the bookkeeping hook: the step being taken is the
  // committed count + 1, exactly as in the eager path.
  return trace::host_scalar(
      now,
      [this, name = current_, f] {
        auto it = state_.find(name);
        const double t = static_cast<double>((it == state_.end() ? 0 : it->second.step) + 1);
        return f(t, lr_);
      },
      like.dtype(), like.device());
}

void Optimizer::state_slots(std::vector<Tensor*>& out) {
  for (auto& [name, st] : state_)
    for (auto& [b, t] : st.buffers) out.push_back(&t);
}

TensorMap Optimizer::state_dict() const {
  TensorMap out;
  out["step"] = scalar_i64(steps_);
  out["lr"] = scalar_tensor(lr_, DType::Float64);
  for (const auto& [name, st] : state_) {
    out[name + ".step"] = scalar_i64(st.step);
    for (const auto& [b, t] : st.buffers) out[name + "." + b] = t;
  }
  return out;
}

void Optimizer::load_state_dict(const TensorMap& state) {
  const char* op = "optimizer.load_state_dict";
  auto get_scalar = [&](const std::string& key, DType dt) -> const Tensor& {
    auto it = state.find(key);
    if (it == state.end()) raise<ValueError>(op, "missing entry '" + key + "'");
    if (!it->second.defined() || it->second.ndim() != 0 || it->second.dtype() != dt)
      raise<ValueError>(op, "entry '" + key + "' must be a 0-d " + std::string(dtype_name(dt)) + " tensor");
    return it->second;
  };
  int64_t steps = get_scalar("step", DType::Int64).item<int64_t>();
  double lr = get_scalar("lr", DType::Float64).item<double>();
  if (steps < 0) raise<ValueError>(op, "'step' is negative: " + std::to_string(steps));
  check_nonneg(op, "'lr'", lr);

  const std::vector<std::string> bufs = buffer_names();
  std::map<std::string, ParamState> loaded;
  std::set<std::string> used = {"step", "lr"};
  for (const auto& p : params_) {
    auto sit = state.find(p.name + ".step");
    bool any = sit != state.end();
    for (const auto& b : bufs) any = any || state.count(p.name + "." + b);
    if (!any) continue;  // parameter never updated
    ParamState st;
    st.step = get_scalar(p.name + ".step", DType::Int64).item<int64_t>();
    if (st.step < 1) raise<ValueError>(op, "'" + p.name + ".step' must be >= 1, got " + std::to_string(st.step));
    used.insert(p.name + ".step");
    for (const auto& b : bufs) {
      std::string key = p.name + "." + b;
      auto it = state.find(key);
      if (it == state.end()) raise<ValueError>(op, "missing entry '" + key + "'");
      const Tensor& t = it->second;
      if (!t.defined()) raise<ValueError>(op, "entry '" + key + "' is undefined");
      if (t.shape() != p.value->shape())
        raise<ShapeError>(op, "entry '" + key + "' has shape " + shape_str(t.shape()) + ", parameter '" + p.name +
                                  "' has shape " + shape_str(p.value->shape()));
      if (t.dtype() != p.value->dtype())
        raise<DTypeError>(op, "entry '" + key + "' is " + std::string(dtype_name(t.dtype())) + ", parameter '" +
                                  p.name + "' is " + std::string(dtype_name(p.value->dtype())));
      st.buffers[b] = t;
      used.insert(key);
    }
    loaded[p.name] = std::move(st);
  }
  for (const auto& [key, t] : state)
    if (!used.count(key))
      raise<ValueError>(op, "unexpected entry '" + key + "' (not a state of this optimizer's parameters)");
  state_ = std::move(loaded);
  steps_ = steps;
  lr_ = lr;
}

// ---------------------------------------------------------------------------------------------
// SGD

SGD::SGD(nn::ParameterList params, const SGDOptions& o) : Optimizer(std::move(params), o.lr), opt_(o) {
  check_nonneg("SGD", "momentum", o.momentum);
  check_nonneg("SGD", "weight_decay", o.weight_decay);
  if (o.nesterov && (o.momentum <= 0.0 || o.dampening != 0.0))
    raise<ValueError>("SGD", "nesterov momentum requires momentum > 0 and dampening = 0");
}

std::vector<std::string> SGD::buffer_names() const {
  if (opt_.momentum != 0.0) return {"momentum_buffer"};
  return {};
}

Tensor SGD::update(const Tensor& p, const Tensor& grad, ParamState& st) {
  Tensor d = opt_.weight_decay != 0.0 ? add(grad, mul(p, opt_.weight_decay)) : grad;
  if (opt_.momentum != 0.0) {
    Tensor& buf = st.buffers["momentum_buffer"];
    if (st.step == 1) {
      buf = d;  // torch: clone(d_p) on the first step, no dampening
    } else {
      buf = add(mul(buf, opt_.momentum), opt_.dampening != 0.0 ? mul(d, 1.0 - opt_.dampening) : d);
    }
    d = opt_.nesterov ? add(d, mul(buf, opt_.momentum)) : buf;
  }
  return sub(p, mul(d, step_scalar(p, st, [](double, double lr) { return lr; })));
}

// ---------------------------------------------------------------------------------------------
// Adam / AdamW

Adam::Adam(nn::ParameterList params, const AdamOptions& o) : Adam(std::move(params), o, false) {}

Adam::Adam(nn::ParameterList params, const AdamOptions& o, bool decoupled)
    : Optimizer(std::move(params), o.lr), opt_(o), decoupled_(decoupled) {
  const char* op = decoupled ? "AdamW" : "Adam";
  check_beta(op, "beta1", o.beta1);
  check_beta(op, "beta2", o.beta2);
  check_nonneg(op, "eps", o.eps);
  check_nonneg(op, "weight_decay", o.weight_decay);
}

std::vector<std::string> Adam::buffer_names() const {
  if (opt_.amsgrad) return {"exp_avg", "exp_avg_sq", "max_exp_avg_sq"};
  return {"exp_avg", "exp_avg_sq"};
}

Tensor Adam::update(const Tensor& param, const Tensor& grad, ParamState& st) {
  const double b1 = opt_.beta1, b2 = opt_.beta2;
  Tensor p = param;
  Tensor g = grad;
  if (opt_.weight_decay != 0.0) {
    if (decoupled_)
      p = mul(p, step_scalar(p, st, [wd = opt_.weight_decay](double, double lr) { return 1.0 - lr * wd; }));
    else
      g = add(g, mul(p, opt_.weight_decay));
  }
  Tensor& m = st.buffers["exp_avg"];
  Tensor& v = st.buffers["exp_avg_sq"];
  if (st.step == 1) {  // the buffers start at zero: 0 * beta + (1 - beta) * x
    m = mul(g, 1.0 - b1);
    v = mul(mul(g, g), 1.0 - b2);
  } else {
    m = add(m, mul(sub(g, m), 1.0 - b1));  // torch: exp_avg.lerp_(grad, 1 - beta1)
    v = add(mul(v, b2), mul(mul(g, g), 1.0 - b2));
  }
  // step_size = lr / (1 - b1^t) and sqrt(1 - b2^t), computed in double as torch does.
  Tensor step_size = step_scalar(p, st, [b1](double t, double lr) { return lr / (1.0 - std::pow(b1, t)); });
  Tensor bc2_sqrt = step_scalar(p, st, [b2](double t, double) { return std::sqrt(1.0 - std::pow(b2, t)); });
  Tensor denom_src = v;
  if (opt_.amsgrad) {
    Tensor& vmax = st.buffers["max_exp_avg_sq"];
    vmax = st.step == 1 ? v : maximum(vmax, v);
    denom_src = vmax;
  }
  Tensor denom = add(div(sqrt(denom_src), bc2_sqrt), opt_.eps);
  return sub(p, mul(div(m, denom), step_size));
}

AdamW::AdamW(nn::ParameterList params, const AdamWOptions& o)
    : Adam(std::move(params), AdamOptions{o.lr, o.beta1, o.beta2, o.eps, o.weight_decay, o.amsgrad}, true) {}

// ---------------------------------------------------------------------------------------------
// RMSprop

RMSprop::RMSprop(nn::ParameterList params, const RMSpropOptions& o) : Optimizer(std::move(params), o.lr), opt_(o) {
  check_nonneg("RMSprop", "alpha", o.alpha);
  check_nonneg("RMSprop", "eps", o.eps);
  check_nonneg("RMSprop", "weight_decay", o.weight_decay);
  check_nonneg("RMSprop", "momentum", o.momentum);
}

std::vector<std::string> RMSprop::buffer_names() const {
  std::vector<std::string> b = {"square_avg"};
  if (opt_.momentum > 0.0) b.push_back("momentum_buffer");
  if (opt_.centered) b.push_back("grad_avg");
  return b;
}

Tensor RMSprop::update(const Tensor& p, const Tensor& grad, ParamState& st) {
  const double a = opt_.alpha;
  const bool first = st.step == 1;
  Tensor g = opt_.weight_decay != 0.0 ? add(grad, mul(p, opt_.weight_decay)) : grad;
  Tensor& s = st.buffers["square_avg"];
  s = first ? mul(mul(g, g), 1.0 - a) : add(mul(s, a), mul(mul(g, g), 1.0 - a));
  Tensor avg;
  if (opt_.centered) {
    Tensor& ga = st.buffers["grad_avg"];
    ga = first ? mul(g, 1.0 - a) : add(ga, mul(sub(g, ga), 1.0 - a));  // torch: grad_avg.lerp_(grad, 1 - alpha)
    avg = add(sqrt(sub(s, mul(ga, ga))), opt_.eps);
  } else {
    avg = add(sqrt(s), opt_.eps);
  }
  if (opt_.momentum > 0.0) {
    Tensor& buf = st.buffers["momentum_buffer"];
    buf = first ? div(g, avg) : add(mul(buf, opt_.momentum), div(g, avg));
    return sub(p, mul(buf, step_scalar(p, st, [](double, double lr) { return lr; })));
  }
  return sub(p, mul(div(g, avg), step_scalar(p, st, [](double, double lr) { return lr; })));
}

// ---------------------------------------------------------------------------------------------
// Gradient clipping

Tensor clip_grad_norm_(TensorMap& grads, double max_norm) {
  check_nonneg("clip_grad_norm", "max_norm", max_norm);
  Tensor sq = scalar_tensor(0.0, DType::Float64);
  for (const auto& [name, g] : grads) {
    if (!g.defined()) raise<ValueError>("clip_grad_norm", "gradient '" + name + "' is undefined");
    if (!is_floating(g.dtype()))
      raise<DTypeError>("clip_grad_norm", "gradient '" + name + "' has dtype " + std::string(dtype_name(g.dtype())));
    if (g.numel() == 0) continue;
    // Per-tensor norm in float64 (exact enough for any dtype), combined as torch does.
    Tensor g64 = g.dtype() == DType::Float64 ? g : cast(g, DType::Float64);
    sq = add(sq, sum(mul(g64, g64)));
  }
  Tensor total = sqrt(sq);
  // min(1, coef): multiplying by exactly 1 leaves a gradient bit-identical, so no host branch is
  // needed and the whole computation compiles into a training step.
  Tensor coef = minimum(div(scalar_tensor(max_norm, DType::Float64), add(total, 1e-6)), 1.0);
  for (auto& [name, g] : grads)
    if (g.numel() > 0) g = mul(g, cast(coef, g.dtype()));
  return total;
}

double clip_grad_norm(TensorMap& grads, double max_norm) { return clip_grad_norm_(grads, max_norm).item<double>(); }

}  // namespace tessera::optim
