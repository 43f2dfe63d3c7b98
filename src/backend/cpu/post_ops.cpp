// oneDNN post-ops for fused epilogues, and the CPU evaluator of fused matmul/convolution nodes.
#include "post_ops.h"

#include <unordered_map>

namespace tessera::cpu {

namespace {

std::optional<dnnl::algorithm> eltwise_alg(OpId op, float& alpha) {
  alpha = 0.f;
  switch (op) {
    case OpId::Relu:
      return dnnl::algorithm::eltwise_relu;
    case OpId::Gelu:
      return dnnl::algorithm::eltwise_gelu_erf;
    case OpId::GeluTanh:
      return dnnl::algorithm::eltwise_gelu_tanh;
    case OpId::Tanh:
      return dnnl::algorithm::eltwise_tanh;
    case OpId::Sigmoid:
      return dnnl::algorithm::eltwise_logistic;
    case OpId::Silu:
      alpha = 1.f;
      return dnnl::algorithm::eltwise_swish;
    default:
      return std::nullopt;
  }
}

std::optional<dnnl::algorithm> binary_alg(OpId op) {
  switch (op) {
    case OpId::Add:
      return dnnl::algorithm::binary_add;
    case OpId::Sub:
      return dnnl::algorithm::binary_sub;
    case OpId::Mul:
      return dnnl::algorithm::binary_mul;
    case OpId::Div:
      return dnnl::algorithm::binary_div;
    case OpId::Maximum:
      return dnnl::algorithm::binary_max;
    case OpId::Minimum:
      return dnnl::algorithm::binary_min;
    default:
      return std::nullopt;
  }
}

dnnl::memory::dims row_major(const dnnl::memory::dims& d) {
  dnnl::memory::dims s(d.size(), 1);
  for (size_t i = d.size(); i-- > 1;) s[i - 1] = s[i] * d[i];
  return s;
}

int evaluate(OpId op, const Attrs& attrs, const graph::Epilogue& e, std::span<const Tensor> in, const Tensor& out) {
  if (out.dtype() != DType::Float32 || out.numel() == 0) return -1;
  if (op == OpId::Matmul) return matmul_with_post_ops(e, in, out);
  if (op == OpId::Conv2d) return conv2d_with_post_ops(attrs, e, in, out);
  return -1;
}

[[maybe_unused]] const bool kRegistered = (graph::register_epilogue_evaluator("cpu", &evaluate), true);

}  // namespace

PostOps make_post_ops(const graph::Epilogue& e, std::span<const Tensor> in, const dnnl::memory::dims& out_dims,
                      size_t channel, bool full_operands, bool native_bias) {
  PostOps p;
  dnnl::post_ops ops;
  const int64_t out_numel = shape_numel(out_dims);
  size_t i = 0;  // the steps taken so far: the loop stops at the first without a post-op
  for (; i < e.steps.size(); ++i) {
    const graph::EpilogueStep& st = e.steps[i];
    if (st.operand < 0) {
      float alpha = 0.f;
      auto alg = eltwise_alg(st.op, alpha);
      if (!alg) break;
      ops.append_eltwise(1.f, *alg, alpha, 0.f);
      p.key.append(1, 'u').append(std::to_string(static_cast<int>(st.op)));
      continue;
    }
    auto alg = binary_alg(st.op);
    if (!alg || static_cast<size_t>(st.operand) >= in.size()) break;
    const Tensor& x = in[static_cast<size_t>(st.operand)];
    if (x.dtype() != DType::Float32 || !x.is_contiguous()) break;
    dnnl::memory::dims dims(out_dims.size(), 1);
    char form;
    if (x.numel() == 1) {
      form = 's';
    } else if (x.numel() == out_numel) {
      if (!full_operands) break;
      dims = out_dims, form = 'f';
    } else if (x.numel() == out_dims[channel]) {
      dims[channel] = out_dims[channel], form = 'c';
    } else {
      break;
    }
    dnnl::memory::desc md(dims, dnnl::memory::data_type::f32, row_major(dims));
    if (native_bias && i == 0 && st.op == OpId::Add && form == 'c') {
      p.bias = {-1, md, x.raw_data()};
      p.key.push_back('B');
      continue;
    }
    ops.append_binary(*alg, md);
    // Post-op position: the bias argument, when taken, is not one.
    p.operands.push_back({static_cast<int>(i) - (p.bias.data ? 1 : 0), md, x.raw_data()});
    p.key.append(1, 'b').append(std::to_string(static_cast<int>(st.op))).append(1, form);
  }
  p.steps = static_cast<int>(i);
  p.attr.set_post_ops(ops);
  return p;
}

void add_post_op_args(const PostOps& p, const dnnl::engine& eng, std::unordered_map<int, dnnl::memory>& args) {
  for (const auto& o : p.operands)
    args.insert({DNNL_ARG_ATTR_MULTIPLE_POST_OP(o.index) | DNNL_ARG_SRC_1, dnnl::memory(o.md, eng, o.data)});
  if (p.bias.data) args.insert({DNNL_ARG_BIAS, dnnl::memory(p.bias.md, eng, p.bias.data)});
}

bool is_reference_impl(const dnnl::primitive_desc_base& pd) {
  return std::string(pd.impl_info_str()).find("ref") != std::string::npos;
}

}  // namespace tessera::cpu
