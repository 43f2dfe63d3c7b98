#include "dispatch.h"

#include <string>

#include "tessera/autodiff.h"
#include "tessera/error.h"

namespace tessera::detail {

Interpreter*& current_interpreter() {
  thread_local Interpreter* current = nullptr;
  return current;
}

std::vector<Tensor> Interpreter::process_custom(const CustomVjp& fn, const std::vector<Tensor>& inputs) {
  return fn.primal(inputs);
}

MetaList infer(OpId op, std::span<const Tensor> in, const Attrs& attrs) {
  const OpInfo& info = op_info(op);
  if (info.num_inputs >= 0 && static_cast<int>(in.size()) != info.num_inputs)
    raise<ValueError>(info.name,
                      "expects " + std::to_string(info.num_inputs) + " inputs, got " + std::to_string(in.size()));
  for (const Tensor& t : in)
    if (!t.defined()) raise<ValueError>(info.name, "input is an undefined tensor");
  MetaList m;
  m.n = info.num_outputs;
  info.infer(in, attrs, m);
  return m;
}

Tensor alloc_tensor(std::span<const int64_t> shape, DType dtype, Device device) {
  int64_t n = shape_numel(shape, "alloc");
  size_t esize = dtype_size(dtype);
  if (n > static_cast<int64_t>(INT64_MAX / static_cast<int64_t>(esize)))
    raise<OutOfMemoryError>("alloc", "tensor of shape " + shape_str(shape) + " is too large");
  Backend& be = backend_for(device);
  auto impl = std::make_shared<TensorImpl>();
  impl->shape.assign(shape.begin(), shape.end());
  impl->strides = contiguous_strides(shape);
  impl->dtype = dtype;
  impl->device = device;
  impl->storage = std::make_shared<Storage>(static_cast<size_t>(n) * esize, device, &be.allocator(device.index));
  return Tensor(std::move(impl));
}

Device op_device(OpId op, std::span<const Tensor> in, const Attrs& attrs) {
  if (in.empty()) {
    return std::visit(
        [](const auto& a) -> Device {
          if constexpr (requires { a.device; })
            return a.device;
          else
            return default_device();
        },
        attrs);
  }
  Device d = in[0].device();
  for (size_t i = 1; i < in.size(); ++i)
    if (!(in[i].device() == d))
      raise<ValueError>(op_name(op), "inputs are on different devices: " + d.str() + " and " + in[i].device().str());
  return d;
}

void execute(OpId op, std::span<const Tensor> in, const Attrs& attrs, std::span<Tensor> out) {
  MetaList m = infer(op, in, attrs);
  const OpInfo& info = op_info(op);
  if (info.category == OpCategory::View) {
    out[0] = make_view(op, in[0], attrs);
    return;
  }
  Device dev = op_device(op, in, attrs);
  for (int i = 0; i < m.n; ++i)
    out[static_cast<size_t>(i)] =
        alloc_tensor(m.m[static_cast<size_t>(i)].shape, m.m[static_cast<size_t>(i)].dtype, dev);
  run_kernel(op, in, attrs, out.first(static_cast<size_t>(m.n)));
}

void run_kernel(OpId op, std::span<const Tensor> in, const Attrs& attrs, std::span<Tensor> out) {
  Backend& be = backend_for(out[0].device());
  const DType key = in.empty() ? out[0].dtype() : in[0].dtype();
  if (!be.supports(op, key))
    raise<NotImplementedError>(op_info(op).name,
                               "backend " + be.name() + " has no kernel for dtype " + std::string(dtype_name(key)));
  be.kernel(op)(KernelCall{op, in, out, attrs});
}

void dispatch(OpId op, std::span<const Tensor> in, const Attrs& attrs, std::span<Tensor> out) {
  if (Interpreter* interp = current_interpreter()) {
    interp->process(op, in, attrs, out);
    return;
  }
  execute(op, in, attrs, out);
}

}  // namespace tessera::detail

namespace tessera {

TensorList custom_vjp_call(const CustomVjp& fn, const TensorList& inputs) {
  if (!fn.primal || !fn.forward || !fn.backward)
    raise<ValueError>(fn.name.empty() ? "custom_vjp" : fn.name.c_str(), "primal, forward and backward must all be set");
  if (detail::Interpreter* i = detail::current_interpreter()) return i->process_custom(fn, inputs);
  return fn.primal(inputs);
}

}  // namespace tessera
