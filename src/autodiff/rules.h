// Derivative rules: one reverse (vjp) and one forward (jvp) rule per differentiable primitive,
// written with Tessera's public ops so that the transforms that recorded them can themselves
// be differentiated (any order).
//
// Adding rules for a primitive: write them in the family's rules_*.cpp and set them in its
// register_*_rules(RuleTable&). A primitive whose outputs carry no gradient (comparisons,
// argmax, floor, ...) is marked nondiff instead. AutodiffRules.EveryPrimitiveIsCovered fails
// until every op in ops.def is one or the other.
//
// Conventions the engine handles for every rule, so rules stay short:
// - A vjp rule may return a gradient shaped like the broadcast result; the engine sums it back
//   to the input's shape (unbroadcast). A jvp rule may return a tangent that broadcasts to the
//   output's shape; the engine expands it.
// - Undefined tensors mean zero: ct[k] for an output without cotangent, tan[i] for an input
//   that carries no tangent at this level. A rule must cope with them (see tan_or_zero, acc).
// - Only need[i] gradients are used; a rule may skip the others.
// - Rules run with the recording level popped, so their ops are seen by the outer levels.
#pragma once

#include <array>
#include <cstdint>
#include <span>

#include "tessera/ops.h"
#include "tessera/primitives.h"

namespace tessera::autodiff {

struct VjpArgs {
  OpId op;
  const Attrs& attrs;
  std::span<const Tensor> in;           // primal inputs (undefined unless the rule's save_in keeps them)
  std::span<const Tensor> out;          // primal outputs (undefined unless save_out keeps them)
  std::span<const TensorMeta> in_meta;  // shape and dtype of every input (always)
  std::span<const Tensor> ct;           // cotangent per output (undefined = zero)
  std::span<const bool> need;           // which input gradients are wanted
  template <class A>
  const A& at() const {
    return std::get<A>(attrs);
  }
};
/// Fills grads[i] (for need[i]) with the cotangent of input i.
using VjpRule = void (*)(const VjpArgs& a, std::span<Tensor> grads);

struct JvpArgs {
  OpId op;
  const Attrs& attrs;
  std::span<const Tensor> in;   // primal inputs
  std::span<const Tensor> tan;  // tangent per input (undefined = zero)
  std::span<const Tensor> out;  // primal outputs
  template <class A>
  const A& at() const {
    return std::get<A>(attrs);
  }
};
/// Fills out_tangents[k] for every floating output (undefined = zero).
using JvpRule = void (*)(const JvpArgs& a, std::span<Tensor> out_tangents);

inline constexpr uint32_t kSaveNone = 0;
inline constexpr uint32_t kSaveAll = ~0u;

struct Rule {
  VjpRule vjp = nullptr;
  JvpRule jvp = nullptr;
  uint32_t save_in = kSaveAll;   // bit i: keep input i for the vjp rule
  uint32_t save_out = kSaveAll;  // bit k: keep output k for the vjp rule
  bool nondiff = false;          // outputs carry no gradient (the engine does not track them)
};
using RuleTable = std::array<Rule, kNumOps>;

/// The rule of op (never null for a covered op; check nondiff first).
TESSERA_API const Rule& rule_for(OpId op);

/// Sets a differentiable op's rules in one line.
inline void set_rule(RuleTable& t, OpId op, VjpRule vjp, JvpRule jvp, uint32_t save_in = kSaveAll,
                     uint32_t save_out = kSaveAll) {
  t[static_cast<size_t>(op)] = Rule{vjp, jvp, save_in, save_out, false};
}
inline void set_nondiff(RuleTable& t, OpId op) { t[static_cast<size_t>(op)] = Rule{nullptr, nullptr, 0, 0, true}; }

// Family registration (rules_*.cpp); called once to build the table.
void register_elementwise_rules(RuleTable& t);
void register_reduce_rules(RuleTable& t);
void register_linalg_rules(RuleTable& t);
void register_view_rules(RuleTable& t);   // views and data movement
void register_index_rules(RuleTable& t);  // gather/scatter/index_select, sort/topk
void register_nn_rules(RuleTable& t);     // softmax, log_softmax, layer_norm, rms_norm
void register_conv_rules(RuleTable& t);   // conv2d, conv_transpose2d, pooling

// ------------------------------------------------------------ helpers for rules
/// a + b where undefined means zero (undefined + undefined = undefined).
TESSERA_API Tensor acc(const Tensor& a, const Tensor& b);
/// t, or zeros shaped like `like` if t is undefined.
TESSERA_API Tensor tan_or_zero(const Tensor& t, const Tensor& like);
/// Zeros with a meta's shape and dtype.
TESSERA_API Tensor zeros_meta(const TensorMeta& m, Device device = default_device());
/// g summed over the axes that broadcasting added or stretched, so it has `shape`.
TESSERA_API Tensor unbroadcast(const Tensor& g, std::span<const int64_t> shape);
/// x reshaped so that it broadcasts against the unreduced tensor: the reduced axes of a
/// keepdims=false reduction are re-inserted with size 1.
TESSERA_API Tensor unsqueeze_reduced(const Tensor& x, std::span<const int64_t> axes, int64_t full_ndim, bool keepdims);

}  // namespace tessera::autodiff
