#include "tessera/nn/module.h"

#include <algorithm>
#include <set>
#include <sstream>

#include "../core/dispatch.h"
#include "tessera/error.h"
#include "tessera/ops.h"

namespace tessera::nn {

namespace {
std::string join(const std::string& prefix, const std::string& name) {
  return prefix.empty() ? name : prefix + "." + name;
}
std::string shape_str(const Tensor& t) {
  std::ostringstream os;
  os << t.shape();
  return os.str();
}
bool matches(const std::string& name, const std::string& prefix) {
  if (prefix.empty() || name == prefix) return true;
  return name.size() > prefix.size() && name.compare(0, prefix.size(), prefix) == 0 && name[prefix.size()] == '.';
}
}  // namespace

Tensor Module::forward(const Tensor&) {
  raise<NotImplementedError>("nn.Module", "this module does not define forward(const Tensor&)");
}

void Module::check_new_name(const std::string& name) const {
  if (name.empty() || name.find('.') != std::string::npos)
    raise<ValueError>("nn.Module", "invalid name '" + name + "' (non-empty, no dots)");
  auto taken = [&](const auto& v) {
    return std::any_of(v.begin(), v.end(), [&](const auto& s) { return s.name == name; });
  };
  bool child = std::any_of(children_.begin(), children_.end(), [&](const auto& c) { return c.first == name; });
  if (taken(params_) || taken(buffers_) || child)
    raise<ValueError>("nn.Module", "name '" + name + "' is registered twice");
}

void Module::register_parameter(const std::string& name, Tensor& slot) {
  check_new_name(name);
  params_.push_back({name, &slot});
}

void Module::register_buffer(const std::string& name, Tensor& slot) {
  check_new_name(name);
  buffers_.push_back({name, &slot});
}

void Module::register_module(const std::string& name, Module& child) {
  check_new_name(name);
  if (&child == this) raise<ValueError>("nn.Module", "a module cannot be its own child ('" + name + "')");
  children_.emplace_back(name, &child);
}

void Module::register_module(const std::string& name, std::shared_ptr<Module> child) {
  if (!child) raise<ValueError>("nn.Module", "null child module '" + name + "'");
  register_module(name, *child);
  owned_.push_back(std::move(child));
}

void Module::register_modules(std::initializer_list<std::pair<std::string, std::reference_wrapper<Module>>> children) {
  for (const auto& [name, m] : children) register_module(name, m.get());
}

void Module::collect(const std::string& prefix, bool params, bool include_frozen, ParameterList& out) {
  for (Slot& s : params ? params_ : buffers_)
    if (include_frozen || !s.frozen) out.push_back({join(prefix, s.name), s.tensor});
  for (auto& [name, child] : children_) child->collect(join(prefix, name), params, include_frozen, out);
}

ParameterList Module::parameters() {
  ParameterList out;
  collect("", true, false, out);
  return out;
}

ParameterList Module::all_parameters() {
  ParameterList out;
  collect("", true, true, out);
  return out;
}

ParameterList Module::buffers() {
  ParameterList out;
  collect("", false, true, out);
  return out;
}

TensorMap Module::state_dict() {
  TensorMap m;
  for (auto& p : all_parameters()) m[p.name] = stop_gradient(*p.value);
  for (auto& b : buffers()) m[b.name] = stop_gradient(*b.value);
  return m;
}

void Module::load_state_dict(const TensorMap& state, bool strict) {
  ParameterList entries = all_parameters();
  for (auto& b : buffers()) entries.push_back(b);
  // Validate everything first so a failed load leaves the module unchanged.
  std::vector<std::string> missing;
  std::set<std::string> known;
  for (auto& e : entries) {
    known.insert(e.name);
    auto it = state.find(e.name);
    if (it == state.end()) {
      missing.push_back(e.name);
      continue;
    }
    const Tensor& src = it->second;
    if (!src.defined()) raise<ValueError>("load_state_dict", "entry '" + e.name + "' is an undefined tensor");
    if (e.value->defined()) {
      if (src.shape() != e.value->shape())
        raise<ShapeError>("load_state_dict", "'" + e.name + "' has shape " + shape_str(src) + ", the module expects " +
                                                 shape_str(*e.value));
      if (src.dtype() != e.value->dtype())
        raise<DTypeError>("load_state_dict", "'" + e.name + "' is " + std::string(dtype_name(src.dtype())) +
                                                 ", the module expects " + std::string(dtype_name(e.value->dtype())));
    }
  }
  std::vector<std::string> unexpected;
  for (auto& [name, t] : state)
    if (!known.count(name)) unexpected.push_back(name);
  if (strict && (!missing.empty() || !unexpected.empty())) {
    std::string msg;
    auto list = [](const std::vector<std::string>& v) {
      std::string s;
      for (size_t i = 0; i < v.size() && i < 8; ++i) s += (i ? ", " : "") + v[i];
      if (v.size() > 8) s += ", ... (" + std::to_string(v.size()) + " in all)";
      return s;
    };
    if (!missing.empty()) msg += "missing: " + list(missing);
    if (!unexpected.empty()) msg += std::string(msg.empty() ? "" : "; ") + "unexpected: " + list(unexpected);
    raise<ValueError>("load_state_dict", msg);
  }
  for (auto& e : entries) {
    auto it = state.find(e.name);
    if (it != state.end()) *e.value = it->second;
  }
}

int64_t Module::num_parameters(bool trainable_only) {
  int64_t n = 0;
  for (auto& p : trainable_only ? parameters() : all_parameters())
    if (p.value->defined()) n += p.value->numel();
  return n;
}

Tensor Module::operator()(const Tensor& x) {
  if (get_mode() != Mode::Graph || tessera::detail::current_interpreter() || trace::active()) return forward(x);
  if (!compiled_)
    compiled_ = std::make_shared<CompiledFunction>(
        compile([this](const std::vector<Tensor>& in) { return std::vector<Tensor>{forward(in[0])}; }));
  return (*compiled_)({x})[0];
}

void Module::state_slots(std::vector<Tensor*>& out) {
  for (Slot& s : params_) out.push_back(s.tensor);
  for (Slot& s : buffers_) out.push_back(s.tensor);
}

uint64_t Module::state_flags() const {
  uint64_t f = training_ ? 1 : 0;
  for (size_t i = 0; i < params_.size(); ++i)
    if (params_[i].frozen) f ^= uint64_t{0x9e3779b97f4a7c15} * (i + 1);
  return f;
}

void Module::train(bool on) {
  training_ = on;
  for (auto& c : children_) c.second->train(on);
}

int Module::set_frozen(const std::string& prefix, const std::string& here, bool frozen) {
  int n = 0;
  for (Slot& s : params_)
    if (matches(join(here, s.name), prefix)) {
      s.frozen = frozen;
      ++n;
    }
  for (auto& [name, child] : children_) n += child->set_frozen(prefix, join(here, name), frozen);
  return n;
}

void Module::freeze(const std::string& prefix) {
  if (set_frozen(prefix, "", true) == 0 && !prefix.empty())
    raise<ValueError>("freeze", "no parameter named '" + prefix + "' or under it");
}

void Module::unfreeze(const std::string& prefix) {
  if (set_frozen(prefix, "", false) == 0 && !prefix.empty())
    raise<ValueError>("unfreeze", "no parameter named '" + prefix + "' or under it");
}

std::vector<std::pair<std::string, Module*>> Module::children() const { return children_; }

std::string Module::summary() {
  std::ostringstream os;
  ParameterList trainable = parameters();
  std::set<std::string> train_names;
  for (auto& p : trainable) train_names.insert(p.name);
  size_t width = 4;
  ParameterList all = all_parameters(), bufs = buffers();
  for (auto* l : {&all, &bufs})
    for (auto& p : *l) width = std::max(width, p.name.size());
  auto line = [&](const NamedParameter& p, const char* kind) {
    os << p.name << std::string(width + 2 - p.name.size(), ' ');
    if (p.value->defined())
      os << shape_str(*p.value) << " " << dtype_name(p.value->dtype()) << " " << kind << "\n";
    else
      os << "(undefined) " << kind << "\n";
  };
  for (auto& p : all) line(p, train_names.count(p.name) ? "trainable" : "frozen");
  for (auto& b : bufs) line(b, "buffer");
  os << "parameters: " << num_parameters() << " (" << num_parameters(true) << " trainable)\n";
  return os.str();
}

Sequential& Sequential::add(std::shared_ptr<Module> m) {
  register_module(std::to_string(layers_.size()), m);
  layers_.push_back(std::move(m));
  return *this;
}

Tensor Sequential::forward(const Tensor& x) {
  Tensor y = x;
  for (auto& l : layers_) y = l->forward(y);
  return y;
}

namespace detail {

ParameterSwap::ParameterSwap(const ParameterList& params, const TensorMap& values) : params_(params) {
  saved_.reserve(params_.size());
  for (auto& p : params_) saved_.push_back(*p.value);
  for (auto& p : params_) {
    auto it = values.find(p.name);
    if (it != values.end()) *p.value = it->second;
  }
}

ParameterSwap::~ParameterSwap() {
  for (size_t i = 0; i < params_.size(); ++i) *params_[i].value = saved_[i];
}

TensorMap parameter_values(const ParameterList& params) {
  TensorMap m;
  for (auto& p : params) {
    if (m.count(p.name)) raise<ValueError>("nn.value_and_grad", "parameter name '" + p.name + "' appears twice");
    m[p.name] = *p.value;
  }
  return m;
}

}  // namespace detail
}  // namespace tessera::nn
