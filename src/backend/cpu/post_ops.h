// oneDNN post-ops for graph mode's fused epilogues (src/graph/epilogue.h), shared by the matmul
// and convolution kernels; the evaluator registered for the "cpu" backend is in post_ops.cpp.
#pragma once

#include <optional>
#include <span>
#include <string>
#include <unordered_map>
#include <vector>

#include "../../graph/epilogue.h"
#include "oneapi/dnnl/dnnl.hpp"

namespace tessera::cpu {

struct PostOps {
  dnnl::primitive_attr attr;
  std::string key;  // identifies the chain and its operand forms (for primitive caches)
  int steps = 0;    // the epilogue's leading steps these post-ops compute
  struct Operand {
    int index;  // post-op position
    dnnl::memory::desc md;
    void* data;
  };
  std::vector<Operand> operands;
  // A leading add of a per-channel vector passed as the primitive's bias argument (bias.data
  // null: none); the post-ops then start at the epilogue's second step.
  Operand bias{-1, {}, nullptr};
};

/// The post-ops computing the longest prefix of e that has them, on a result of dims out_dims
/// (the primitive's destination, plain row-major) whose channel axis is `channel`; in are the
/// fused node's inputs. A prefix ends at a step without a post-op, a strided operand, or a full
/// operand when full_operands is false (a blocked convolution output would read it slowly).
/// With native_bias, a first step adding a per-channel vector becomes PostOps::bias for a
/// primitive that takes a bias argument (cheaper than a binary post-op, the same result).
PostOps make_post_ops(const graph::Epilogue& e, std::span<const Tensor> in, const dnnl::memory::dims& out_dims,
                      size_t channel, bool full_operands, bool native_bias = false);

/// Adds the operands' (and the bias's) memories to a primitive's execution arguments.
void add_post_op_args(const PostOps& p, const dnnl::engine& eng, std::unordered_map<int, dnnl::memory>& args);

/// Whether a primitive descriptor picked a reference (unoptimized) implementation: a fused node
/// then runs unfused instead.
bool is_reference_impl(const dnnl::primitive_desc_base& pd);

// Implemented by the kernels (matmul_kernels.cpp, conv_kernels.cpp): run the base op with a
// prefix of the epilogue as post-ops into out and return its length, or return -1 without writing.
int matmul_with_post_ops(const graph::Epilogue& e, std::span<const Tensor> in, const Tensor& out);
int conv2d_with_post_ops(const Attrs& attrs, const graph::Epilogue& e, std::span<const Tensor> in, const Tensor& out);

}  // namespace tessera::cpu
