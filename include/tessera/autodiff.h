// Automatic differentiation as composable function transforms.
//
//   auto f  = [](const Tensor& x) { return sum(tanh(x) * x); };
//   Tensor g  = grad(f)(x);                                   // df/dx, same shape as x
//   Tensor gg = grad([&](const Tensor& v) { return sum(grad(f)(v)); })(x);
//   auto [y, pullback] = vjp(f, x);     auto [gx] = pullback(ones_like(y));
//   auto [y2, ty] = jvp(f, {x}, {ones_like(x)});
//   Tensor J = jacrev(f)(x), H = hessian(f)(x);
//
// How it works: a transform pushes a level onto this thread's interpreter stack and wraps
// its inputs in tracer tensors (same storage, so values can be read on the host and drive
// control flow). Every primitive called while the level is active is evaluated eagerly by
// the levels below and recorded (reverse mode) or paired with its tangent (forward mode).
// Derivative rules are written with Tessera ops, so an outer level records them too: the
// transforms nest to any order. See docs/autodiff.md.
//
// Arguments and results: a function may take and return Tensors, std::vector<Tensor>,
// TensorMap (named tensors, e.g. a model's parameters), std::pair / std::tuple of these,
// or any other type (not differentiated, passed through). Gradients have the type of the
// argument they belong to. Only floating-point tensors are differentiated; integer and
// bool tensors get undefined (empty) gradients in a vector/map, and are refused as a
// direct Tensor argument of grad (DTypeError).
//
// Non-differentiable outputs (comparisons, argmax/argmin, indices of sort/topk, any/all,
// integer ops) and piecewise-constant ops (floor, ceil, round, sign) carry no gradient:
// whatever depends only on them gets a zero gradient. At kinks the rules pick: relu'(0) = 0,
// abs'(0) = 0, ties of max/min/maximum/minimum share the gradient equally.
#pragma once

#include <cstddef>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

#include "tessera/error.h"
#include "tessera/export.h"
#include "tessera/tensor.h"

namespace tessera {

using TensorList = std::vector<Tensor>;
/// Named tensors (e.g. all parameters of a model); gradients come back as a TensorMap with the same keys.
using TensorMap = std::map<std::string, Tensor>;

// ------------------------------------------------------------------ tensor trees
/// How a value maps to a flat list of tensors and back. Specialize for your own types
/// (a module's parameter struct, say) to make them differentiable arguments.
template <class T, class = void>
struct TreeTraits;  // undefined: T is not a tensor tree (passed through, not differentiated)

template <>
struct TreeTraits<Tensor> {
  static void flatten(const Tensor& t, TensorList& out) { out.push_back(t); }
  static Tensor unflatten(const Tensor&, const Tensor*& it) { return *it++; }
};
template <>
struct TreeTraits<TensorList> {
  static void flatten(const TensorList& v, TensorList& out) { out.insert(out.end(), v.begin(), v.end()); }
  static TensorList unflatten(const TensorList& like, const Tensor*& it) {
    TensorList r(it, it + like.size());
    it += like.size();
    return r;
  }
};
template <>
struct TreeTraits<TensorMap> {
  static void flatten(const TensorMap& m, TensorList& out) {
    for (const auto& kv : m) out.push_back(kv.second);
  }
  static TensorMap unflatten(const TensorMap& like, const Tensor*& it) {
    TensorMap r;
    for (const auto& kv : like) r.emplace(kv.first, *it++);
    return r;
  }
};
template <class A, class B>
struct TreeTraits<std::pair<A, B>, std::void_t<decltype(TreeTraits<A>::flatten), decltype(TreeTraits<B>::flatten)>> {
  static void flatten(const std::pair<A, B>& p, TensorList& out) {
    TreeTraits<A>::flatten(p.first, out);
    TreeTraits<B>::flatten(p.second, out);
  }
  static std::pair<A, B> unflatten(const std::pair<A, B>& like, const Tensor*& it) {
    A a = TreeTraits<A>::unflatten(like.first, it);
    B b = TreeTraits<B>::unflatten(like.second, it);
    return {std::move(a), std::move(b)};
  }
};
template <class... Ts>
struct TreeTraits<std::tuple<Ts...>, std::void_t<decltype(TreeTraits<Ts>::flatten)...>> {
  static void flatten(const std::tuple<Ts...>& t, TensorList& out) {
    std::apply([&](const auto&... e) { (TreeTraits<std::decay_t<decltype(e)>>::flatten(e, out), ...); }, t);
  }
  static std::tuple<Ts...> unflatten(const std::tuple<Ts...>& like, const Tensor*& it) {
    return std::apply(
        [&](const auto&... e) { return std::tuple<Ts...>{TreeTraits<std::decay_t<decltype(e)>>::unflatten(e, it)...}; },
        like);
  }
};

/// True when T is a tensor tree (has a TreeTraits specialization).
template <class T>
concept TensorTree = requires(const T& v, TensorList& out) {
  TreeTraits<std::decay_t<T>>::flatten(v, out);
};

/// The tensors of a tree in order.
template <TensorTree T>
TensorList tree_flatten(const T& v) {
  TensorList out;
  TreeTraits<std::decay_t<T>>::flatten(v, out);
  return out;
}
/// A tree shaped like `like` holding `flat` (which must have as many tensors).
template <TensorTree T>
T tree_unflatten(const T& like, const TensorList& flat) {
  const Tensor* it = flat.data();
  return TreeTraits<std::decay_t<T>>::unflatten(like, it);
}

// ------------------------------------------------------------------ core (type-erased)
/// Returned by vjp: maps cotangents of the outputs (one per output tensor, same shape and
/// dtype; an undefined tensor means zero) to cotangents of the inputs (one per input; an
/// undefined tensor where the output does not depend on that input). It may be called any
/// number of times; it keeps the forward pass's saved values alive until it is destroyed.
class TESSERA_API Pullback {
 public:
  Pullback() = default;
  TensorList operator()(const TensorList& cotangents) const;
  struct State;
  explicit Pullback(std::shared_ptr<State> s) : s_(std::move(s)) {}

 private:
  std::shared_ptr<State> s_;
};

namespace detail {
using FlatFn = std::function<TensorList(const TensorList&)>;
struct VjpFlat {
  TensorList outputs;
  Pullback pullback;
};
/// Reverse mode on a flat function. With consume = true the pullback may be called once and
/// frees each saved value as soon as the backward pass is done with it (grad, value_and_grad).
TESSERA_API VjpFlat vjp_flat(const FlatFn& f, const TensorList& primals, bool consume);
/// Forward mode on a flat function: (outputs, output tangents). Undefined tangent = zero.
TESSERA_API std::pair<TensorList, TensorList> jvp_flat(const FlatFn& f, const TensorList& primals,
                                                       const TensorList& tangents);
/// The tensor with every tracer of an inactive (finished) transform removed.
TESSERA_API Tensor strip_inactive(const Tensor& t);
/// Whether t is a float tensor (the only kind differentiated).
TESSERA_API bool is_differentiable(const Tensor& t);
/// Throws the errors grad/value_and_grad give for a non-scalar or non-float output.
TESSERA_API void check_scalar_output(const char* transform, const Tensor& out);
TESSERA_API Tensor ones_cotangent(const Tensor& out);

template <class T>
T strip_tree(const T& v) {
  if constexpr (TensorTree<T>) {
    TensorList flat = tree_flatten(v);
    for (Tensor& t : flat) t = strip_inactive(t);
    return tree_unflatten(v, flat);
  } else {
    return v;
  }
}
template <class T>
struct is_pair : std::false_type {};
template <class A, class B>
struct is_pair<std::pair<A, B>> : std::true_type {};

// Holds the rebuilt value of a tree argument; other arguments are never copied (monostate).
template <class A>
using Substitute = std::conditional_t<TensorTree<A>, std::optional<A>, std::monostate>;

template <class A>
const A& substituted_or(const Substitute<A>& sub, const A& arg) {
  if constexpr (TensorTree<A>)
    return sub ? *sub : arg;
  else
    return arg;
}

// Calls f(args...) with the arguments whose index is selected replaced by trees rebuilt from
// `flat` (in order). sel[i] says whether argument i is selected.
template <class F, class Tuple, size_t... Is>
decltype(auto) call_substituted(F& f, const Tuple& args, const std::vector<bool>& sel, const TensorList& flat,
                                std::index_sequence<Is...>) {
  size_t pos = 0;
  auto pick = [&](const auto& arg, size_t i) -> Substitute<std::decay_t<decltype(arg)>> {
    using A = std::decay_t<decltype(arg)>;
    if constexpr (TensorTree<A>) {
      if (sel[i]) {
        TensorList part(flat.begin() + static_cast<std::ptrdiff_t>(pos), flat.end());
        A v = tree_unflatten(arg, part);
        pos += tree_flatten(arg).size();
        return std::optional<A>(std::move(v));
      }
      return std::optional<A>();
    } else {
      (void)i;
      return std::monostate{};
    }
  };
  // Evaluate picks left to right (braced init guarantees the order).
  std::tuple<Substitute<std::decay_t<std::tuple_element_t<Is, Tuple>>>...> subs{pick(std::get<Is>(args), Is)...};
  return f(substituted_or<std::decay_t<std::tuple_element_t<Is, Tuple>>>(std::get<Is>(subs), std::get<Is>(args))...);
}

template <class... Args>
TensorList flatten_selected(const char* transform, const std::tuple<const Args&...>& args,
                            const std::vector<bool>& sel) {
  TensorList flat;
  size_t i = 0;
  std::apply(
      [&](const auto&... a) {
        (
            [&](const auto& arg) {
              using A = std::decay_t<decltype(arg)>;
              if (sel[i]) {
                if constexpr (std::is_same_v<A, Tensor>) {
                  if (arg.defined() && !is_floating(arg.dtype()))
                    raise<DTypeError>(transform, "argument " + std::to_string(i) + " is " +
                                                     std::string(dtype_name(arg.dtype())) +
                                                     "; only floating-point tensors are differentiated");
                }
                if constexpr (TensorTree<A>)
                  TreeTraits<A>::flatten(arg, flat);
                else
                  raise<ValueError>(transform, "argument " + std::to_string(i) +
                                                   " is not a tensor or tensor tree, so it cannot be differentiated");
              }
              ++i;
            }(a),
            ...);
      },
      args);
  return flat;
}

template <class... Args>
std::vector<bool> select_args(const char* transform, const std::vector<int>& argnums) {
  constexpr int n = static_cast<int>(sizeof...(Args));
  std::vector<bool> sel(static_cast<size_t>(n), false);
  for (int a : argnums) {
    int k = a < 0 ? a + n : a;
    if (k < 0 || k >= n)
      raise<IndexError>(transform, "argnum " + std::to_string(a) + " out of range for a function of " +
                                       std::to_string(n) + " arguments");
    if (sel[static_cast<size_t>(k)]) raise<ValueError>(transform, "argnum " + std::to_string(a) + " given twice");
    sel[static_cast<size_t>(k)] = true;
  }
  return sel;
}

// Splits the flat gradient list back into one tree per selected argument (tuple in argnums order).
template <class Tuple, size_t... Is>
auto unflatten_grads(const Tuple& args, const TensorList& flat, std::index_sequence<Is...>) {
  const Tensor* it = flat.data();
  return std::tuple<std::decay_t<std::tuple_element_t<Is, Tuple>>...>{
      TreeTraits<std::decay_t<std::tuple_element_t<Is, Tuple>>>::unflatten(std::get<Is>(args), it)...};
}

// value_and_grad's engine. Returns (value, grads as a flat list in argument order).
template <class F, class... Args>
auto value_and_grad_flat(const char* transform, F& f, const std::vector<bool>& sel, const Args&... args) {
  auto targs = std::tuple<const Args&...>(args...);
  TensorList primals = flatten_selected(transform, targs, sel);
  using R = std::decay_t<decltype(f(args...))>;
  std::optional<R> result;
  FlatFn flat_fn = [&](const TensorList& traced) -> TensorList {
    R r = call_substituted(f, targs, sel, traced, std::index_sequence_for<Args...>{});
    Tensor out;
    if constexpr (is_pair<R>::value)
      out = r.first;
    else
      out = r;
    result.emplace(std::move(r));
    return {out};
  };
  VjpFlat v = vjp_flat(flat_fn, primals, /*consume=*/true);
  check_scalar_output(transform, v.outputs[0]);
  TensorList g = v.pullback({ones_cotangent(v.outputs[0])});
  R value = strip_tree(*result);
  if constexpr (is_pair<R>::value)
    value.first = v.outputs[0];
  else
    value = v.outputs[0];
  return std::make_pair(std::move(value), std::move(g));
}

// Calls f with the tensors of a vector as separate arguments (f(v[0], ..., v[n-1])), or with the
// vector itself if f takes one.
template <class F>
auto call_unpacked(F& f, const TensorList& v) {
  if constexpr (std::is_invocable_v<F&, const TensorList&>) {
    return f(v);
  } else {
    auto bad = [&]() -> void {
      raise<ValueError>("transform", "function does not take " + std::to_string(v.size()) + " tensor arguments");
    };
#define TS_REPEAT_1 const Tensor&
#define TS_REPEAT_2 const Tensor&, const Tensor&
#define TS_REPEAT_3 const Tensor&, const Tensor&, const Tensor&
#define TS_REPEAT_4 const Tensor&, const Tensor&, const Tensor&, const Tensor&
    if constexpr (std::is_invocable_v<F&, TS_REPEAT_1>) {
      if (v.size() != 1) bad();
      return f(v[0]);
    } else if constexpr (std::is_invocable_v<F&, TS_REPEAT_2>) {
      if (v.size() != 2) bad();
      return f(v[0], v[1]);
    } else if constexpr (std::is_invocable_v<F&, TS_REPEAT_3>) {
      if (v.size() != 3) bad();
      return f(v[0], v[1], v[2]);
    } else {
      static_assert(std::is_invocable_v<F&, TS_REPEAT_4>, "function must take 1-4 Tensors or a std::vector<Tensor>");
      if (v.size() != 4) bad();
      return f(v[0], v[1], v[2], v[3]);
    }
#undef TS_REPEAT_1
#undef TS_REPEAT_2
#undef TS_REPEAT_3
#undef TS_REPEAT_4
  }
}
}  // namespace detail

// ------------------------------------------------------------------ grad and value_and_grad
/// value_and_grad<Argnums...>(f)(args...): the value of f and its gradient with respect to the
/// arguments Argnums (default: the first). f must return a scalar float tensor (one element; else
/// ValueError), or std::pair<Tensor, Aux> whose second member is auxiliary data returned alongside
/// (has_aux). Result: std::pair(value, gradient) where gradient has the type of the argument for one
/// argnum and is a std::tuple of them for several. Saved values are freed during the backward pass.
template <int... Argnums, class F>
auto value_and_grad(F f) {
  return [f](const auto&... args) mutable {
    constexpr int n = static_cast<int>(sizeof...(args));
    std::vector<int> argnums{Argnums...};
    if (argnums.empty()) argnums.push_back(0);
    std::vector<bool> sel = detail::select_args<std::decay_t<decltype(args)>...>("value_and_grad", argnums);
    auto [value, flat] = detail::value_and_grad_flat("value_and_grad", f, sel, args...);
    auto targs = std::forward_as_tuple(args...);  // references: non-tensor arguments are not copied
    // Gradients come back in argument order; regroup them in argnums order.
    std::vector<TensorList> per_arg(sizeof...(args));
    size_t pos = 0, i = 0;
    std::apply(
        [&](const auto&... a) {
          (
              [&](const auto& arg) {
                using A = std::decay_t<decltype(arg)>;
                if constexpr (TensorTree<A>) {
                  if (sel[i]) {
                    size_t k = tree_flatten(arg).size();
                    per_arg[i].assign(flat.begin() + static_cast<std::ptrdiff_t>(pos),
                                      flat.begin() + static_cast<std::ptrdiff_t>(pos + k));
                    pos += k;
                  }
                }
                ++i;
              }(a),
              ...);
        },
        targs);
    if constexpr (sizeof...(Argnums) <= 1) {
      constexpr int a0 = (sizeof...(Argnums) == 0 ? 0 : (Argnums + ... + 0));
      constexpr int k = a0 < 0 ? a0 + n : a0;
      static_assert(k >= 0 && k < n, "value_and_grad: argnum out of range");
      auto& arg = std::get<k>(targs);
      using A = std::decay_t<decltype(arg)>;
      static_assert(TensorTree<A>, "value_and_grad: the differentiated argument must be a Tensor or a tensor tree");
      return std::make_pair(std::move(value), tree_unflatten(arg, per_arg[static_cast<size_t>(k)]));
    } else {
      auto grads =
          std::make_tuple(tree_unflatten(std::get<(Argnums < 0 ? Argnums + n : Argnums)>(targs),
                                         per_arg[static_cast<size_t>(Argnums < 0 ? Argnums + n : Argnums)])...);
      return std::make_pair(std::move(value), std::move(grads));
    }
  };
}

/// grad<Argnums...>(f)(args...): the gradient part of value_and_grad.
template <int... Argnums, class F>
auto grad(F f) {
  return [vg = value_and_grad<Argnums...>(std::move(f))](const auto&... args) mutable { return vg(args...).second; };
}

/// grad(f, argnum)(args...): gradient with respect to one Tensor argument chosen at run time.
template <class F>
auto grad(F f, int argnum) {
  return [f, argnum](const auto&... args) mutable -> Tensor {
    std::vector<bool> sel = detail::select_args<std::decay_t<decltype(args)>...>("grad", {argnum});
    auto r = detail::value_and_grad_flat("grad", f, sel, args...);
    if (r.second.size() != 1)
      raise<ValueError>("grad", "argument " + std::to_string(argnum) + " is not a single Tensor");
    return r.second[0];
  };
}
/// grad(f, {i, j, ...})(args...): gradients with respect to several Tensor arguments, in argnums order.
template <class F>
auto grad(F f, std::vector<int> argnums) {
  return [f, argnums](const auto&... args) mutable -> TensorList {
    constexpr int n = static_cast<int>(sizeof...(args));
    std::vector<bool> sel = detail::select_args<std::decay_t<decltype(args)>...>("grad", argnums);
    auto r = detail::value_and_grad_flat("grad", f, sel, args...);
    if (static_cast<int>(r.second.size()) != static_cast<int>(argnums.size()))
      raise<ValueError>("grad",
                        "every differentiated argument must be a single Tensor when argnums are given at run time");
    // r.second is in argument order; reorder to argnums order.
    std::vector<int> order;
    for (int i = 0; i < n; ++i)
      if (sel[static_cast<size_t>(i)]) order.push_back(i);
    TensorList out;
    for (int a : argnums) {
      int k = a < 0 ? a + n : a;
      for (size_t j = 0; j < order.size(); ++j)
        if (order[j] == k) out.push_back(r.second[j]);
    }
    return out;
  };
}

// ------------------------------------------------------------------ vjp and jvp
/// vjp(f, primals...): evaluates f(primals...) and returns (output, pullback). The pullback takes a
/// cotangent shaped like the output (same tree type) and returns a std::tuple with one cotangent
/// per primal (same tree types; undefined tensors where the output does not depend on them).
/// Throws ShapeError/DTypeError for a cotangent whose shape or dtype differs from the output's.
template <class F, class... Args>
auto vjp(F f, const Args&... primals) {
  static_assert((TensorTree<Args> && ...), "vjp: every primal must be a Tensor or a tensor tree");
  auto targs = std::tuple<const Args&...>(primals...);
  std::vector<bool> sel(sizeof...(Args), true);
  TensorList flat = detail::flatten_selected("vjp", targs, sel);
  using R = std::decay_t<decltype(f(primals...))>;
  static_assert(TensorTree<R>, "vjp: f must return a Tensor or a tensor tree");
  std::optional<R> result;
  detail::FlatFn flat_fn = [&](const TensorList& traced) -> TensorList {
    R r = detail::call_substituted(f, targs, sel, traced, std::index_sequence_for<Args...>{});
    TensorList o = tree_flatten(r);
    result.emplace(std::move(r));
    return o;
  };
  detail::VjpFlat v = detail::vjp_flat(flat_fn, flat, /*consume=*/false);
  R out = tree_unflatten(*result, v.outputs);
  auto like = std::tuple<Args...>(primals...);
  auto pullback = [pb = v.pullback, like](const R& ct) {
    TensorList g = pb(tree_flatten(ct));
    return detail::unflatten_grads(like, g, std::index_sequence_for<Args...>{});
  };
  return std::make_pair(std::move(out), std::move(pullback));
}

/// jvp(f, primals, tangents): f evaluated at primals and its directional derivative along
/// tangents (one per primal, same shape and dtype; undefined = zero). f takes the primals as
/// separate Tensor arguments (1-4) or one std::vector<Tensor>; returns (output, output tangent)
/// with the output's tree type. Throws ShapeError/DTypeError for mismatched tangents.
template <class F>
auto jvp(F f, const TensorList& primals, const TensorList& tangents) {
  using R = std::decay_t<decltype(detail::call_unpacked(f, primals))>;
  static_assert(TensorTree<R>, "jvp: f must return a Tensor or a tensor tree");
  std::optional<R> result;
  detail::FlatFn flat_fn = [&](const TensorList& traced) -> TensorList {
    R r = detail::call_unpacked(f, traced);
    TensorList o = tree_flatten(r);
    result.emplace(std::move(r));
    return o;
  };
  auto [outs, touts] = detail::jvp_flat(flat_fn, primals, tangents);
  return std::make_pair(tree_unflatten(*result, outs), tree_unflatten(*result, touts));
}

// ------------------------------------------------------------------ Jacobians and Hessians
namespace detail {
TESSERA_API Tensor jacrev_impl(const std::function<Tensor(const TensorList&)>& f, const TensorList& args, int argnum);
TESSERA_API Tensor jacfwd_impl(const std::function<Tensor(const TensorList&)>& f, const TensorList& args, int argnum);
}  // namespace detail

/// jacrev(f, argnum)(args...): the Jacobian of a Tensor -> Tensor function with respect to
/// argument argnum, shaped out.shape + arg.shape, by reverse mode (one pullback per output element).
/// f takes 1-4 Tensors. Float inputs and outputs only (DTypeError otherwise).
template <class F>
auto jacrev(F f, int argnum = 0) {
  return [f, argnum](const auto&... args) -> Tensor {
    std::function<Tensor(const TensorList&)> g = [f](const TensorList& v) mutable -> Tensor {
      return detail::call_unpacked(f, v);
    };
    return detail::jacrev_impl(g, TensorList{args...}, argnum);
  };
}
/// jacfwd(f, argnum)(args...): the same Jacobian by forward mode (one jvp per input element).
template <class F>
auto jacfwd(F f, int argnum = 0) {
  return [f, argnum](const auto&... args) -> Tensor {
    std::function<Tensor(const TensorList&)> g = [f](const TensorList& v) mutable -> Tensor {
      return detail::call_unpacked(f, v);
    };
    return detail::jacfwd_impl(g, TensorList{args...}, argnum);
  };
}
/// hessian(f, argnum)(args...) = jacfwd(jacrev(f)): for a scalar f, shaped arg.shape + arg.shape.
template <class F>
auto hessian(F f, int argnum = 0) {
  return [f, argnum](const auto&... args) -> Tensor {
    auto inner = [f, argnum](const TensorList& v) -> Tensor {
      std::function<Tensor(const TensorList&)> g = [f](const TensorList& w) mutable -> Tensor {
        return detail::call_unpacked(f, w);
      };
      Tensor j = detail::jacrev_impl(g, v, argnum);
      return j;
    };
    std::function<Tensor(const TensorList&)> outer = inner;
    Tensor h = detail::jacfwd_impl(outer, TensorList{args...}, argnum);
    return h;
  };
}

// ------------------------------------------------------------------ stop_gradient and custom rules
/// x as a constant for every active transform: no gradient flows through the result.
TESSERA_API Tensor stop_gradient(const Tensor& x);

/// A function with a hand-written reverse rule (JAX's custom_vjp): used by fused composites whose
/// generic gradient would be slow or unstable. Under reverse mode, `forward` computes the outputs
/// and the residuals to keep, and `backward(residuals, output cotangents)` returns one cotangent per
/// input (undefined = zero); both are written with Tessera ops, so higher orders work. Without
/// reverse mode (plain calls, forward mode) `primal` runs and is differentiated op by op.
struct CustomVjp {
  std::string name;
  std::function<TensorList(const TensorList& inputs)> primal;
  std::function<std::pair<TensorList, TensorList>(const TensorList& inputs)> forward;  // (outputs, residuals)
  std::function<TensorList(const TensorList& residuals, const TensorList& cotangents)> backward;
};
/// Calls a CustomVjp function on inputs; cotangents passed to backward are defined (zeros
/// filled in). Throws ValueError naming fn.name when backward returns the wrong number of
/// gradients, ShapeError when one has the wrong shape.
TESSERA_API TensorList custom_vjp_call(const CustomVjp& fn, const TensorList& inputs);

}  // namespace tessera
