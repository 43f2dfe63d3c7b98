// Levels and tracers: the machinery shared by reverse and forward mode.
//
// A transform pushes a Level (an Interpreter) onto this thread's stack and wraps its inputs in
// tracers: tensors sharing the primal's storage whose node is a Tracer{level, primal, ...}. When
// a primitive runs, the top level peels its own tracers off the inputs, hands the primal call to
// the level below (down to eager execution), and wraps the outputs again. A tensor that is not
// a tracer of a level is a constant for it, which is what keeps nested transforms apart.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "../core/dispatch.h"
#include "../core/node.h"

namespace tessera::autodiff {

/// The part of a level that tracers point to; outlives the level so that escaped tracers can
/// tell it has finished.
struct LevelState {
  int depth = 0;
  bool active = true;
};

struct Tracer : Node {
  std::shared_ptr<LevelState> level;
  Tensor primal;    // the value one level down (maybe a tracer of an outer level)
  int64_t id = -1;  // reverse mode: slot in the tape's cotangent table
  Tensor tangent;   // forward mode: undefined = zero
};

/// The tracer record of t, or nullptr.
inline Tracer* tracer_of(const Tensor& t) {
  if (!t.defined() || !t.impl().node) return nullptr;
  return dynamic_cast<Tracer*>(t.impl().node.get());
}

/// t with tracers of finished levels and of levels deeper than `depth` removed.
Tensor peel(const Tensor& t, int depth);
/// A tracer of `level` for primal (same storage and layout).
Tensor wrap(const Tensor& primal, std::shared_ptr<LevelState> level, int64_t id, Tensor tangent = {});

/// Base of the reverse and forward levels: pushes itself on construction, pops on destruction.
class Level : public detail::Interpreter {
 public:
  Level();
  ~Level() override;
  Level(const Level&) = delete;
  Level& operator=(const Level&) = delete;
  /// Marks the level finished and pops it (idempotent; the destructor calls it too).
  void finish();
  const std::shared_ptr<LevelState>& state() const { return state_; }
  int depth() const { return state_->depth; }
  detail::Interpreter* parent() const { return parent_; }
  /// If t (after peeling) is a tracer of this level, returns it.
  Tracer* mine(Tensor& t) const;
  /// The inputs with this level's tracers replaced by their primals; tracers[i] is input i's tracer
  /// record or null (a constant at this level). Returns whether any input is tracked.
  bool unwrap(std::span<const Tensor> in, std::vector<Tensor>& prim, std::vector<Tracer*>& tracers) const;

 private:
  std::shared_ptr<LevelState> state_;
  detail::Interpreter* parent_ = nullptr;
  bool finished_ = false;
};

/// Sets the current interpreter for a scope (used to run the level below, or rules).
class ScopedInterpreter {
 public:
  explicit ScopedInterpreter(detail::Interpreter* i) : saved_(detail::current_interpreter()) {
    detail::current_interpreter() = i;
  }
  ~ScopedInterpreter() { detail::current_interpreter() = saved_; }
  ScopedInterpreter(const ScopedInterpreter&) = delete;
  ScopedInterpreter& operator=(const ScopedInterpreter&) = delete;

 private:
  detail::Interpreter* saved_;
};

}  // namespace tessera::autodiff
