// Eager dispatch: infer -> allocate -> kernel, and the hook through which
// transforms (autodiff, graph tracing) intercept every primitive.
#pragma once

#include <initializer_list>
#include <span>
#include <vector>

#include "tessera/backend.h"
#include "tessera/primitives.h"

namespace tessera {
struct CustomVjp;  // autodiff.h
}

namespace tessera::detail {

/// A transform layer that sees every primitive call made while it is active (JAX-style
/// interpreter stack). process() computes the outputs, usually by calling execute() and
/// recording what it needs.
class Interpreter {
 public:
  virtual ~Interpreter() = default;
  virtual void process(OpId op, std::span<const Tensor> in, const Attrs& attrs, std::span<Tensor> out) = 0;
  /// A function with a custom reverse rule (custom_vjp_call). The default runs fn.primal, whose
  /// primitives then come through process(); reverse mode overrides it to record fn.backward.
  virtual std::vector<Tensor> process_custom(const CustomVjp& fn, const std::vector<Tensor>& inputs);
};
/// The innermost active interpreter of this thread, or nullptr (plain eager).
TESSERA_API Interpreter*& current_interpreter();

/// Runs shape inference (validation) only.
TESSERA_API MetaList infer(OpId op, std::span<const Tensor> in, const Attrs& attrs);
/// Evaluates a primitive now on its device, bypassing interpreters. out.size() == num_outputs.
TESSERA_API void execute(OpId op, std::span<const Tensor> in, const Attrs& attrs, std::span<Tensor> out);
/// Runs op's kernel into preallocated outputs on out[0]'s device (no inference, no allocation):
/// the executor of compiled plans calls it. NotImplementedError when that backend has no kernel
/// for the dtype (in[0]'s, or out[0]'s for ops without inputs).
TESSERA_API void run_kernel(OpId op, std::span<const Tensor> in, const Attrs& attrs, std::span<Tensor> out);
/// The entry point of every op: through the interpreter stack, else execute().
TESSERA_API void dispatch(OpId op, std::span<const Tensor> in, const Attrs& attrs, std::span<Tensor> out);
inline Tensor dispatch1(OpId op, std::span<const Tensor> in, const Attrs& attrs) {
  Tensor out;
  dispatch(op, in, attrs, std::span<Tensor>(&out, 1));
  return out;
}
inline Tensor dispatch1(OpId op, std::initializer_list<Tensor> in, const Attrs& attrs = NoAttrs{}) {
  return dispatch1(op, std::span<const Tensor>(in.begin(), in.size()), attrs);
}

/// The device an op runs on: its inputs' (ValueError when they differ), else its attributes'
/// device, else the default device.
Device op_device(OpId op, std::span<const Tensor> in, const Attrs& attrs);
/// A new contiguous tensor with uninitialized data.
TESSERA_API Tensor alloc_tensor(std::span<const int64_t> shape, DType dtype, Device device);
/// The view that a View-category primitive produces (no data movement, except Reshape of
/// non-viewable strides, which copies).
Tensor make_view(OpId op, const Tensor& x, const Attrs& attrs);
/// Whether (shape, strides) can be viewed as new_shape without a copy; the view's strides in out.
bool viewable_reshape(const Shape& shape, const Strides& strides, const Shape& new_shape, Strides& out);

}  // namespace tessera::detail
