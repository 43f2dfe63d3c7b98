// Hand-built graphs for the pass tests: every op is executed eagerly as it is recorded, so each
// value id has its eager value (env) to compare a rewritten or planned graph against.
#pragma once

#include <span>
#include <utility>
#include <vector>

#include "core/dispatch.h"
#include "graph/epilogue.h"
#include "graph/fuse.h"
#include "graph/ir.h"
#include "tessera/tessera.h"

namespace tessera::graph::testing {

struct GraphBuilder {
  Graph g;
  std::vector<Tensor> env;  // eager value of every value id, in recording order

  int add(Value v, Tensor t) {
    g.values.push_back(std::move(v));
    env.push_back(std::move(t));
    return static_cast<int>(g.values.size()) - 1;
  }
  // A value of kind `kind` with t's shape, strides, dtype and device.
  static Value value_like(const Tensor& t, Value::Kind kind) {
    Value v;
    v.kind = kind;
    v.shape = t.shape();
    v.strides = t.strides();
    v.dtype = t.dtype();
    v.device = t.device();
    return v;
  }
  int input(const Tensor& t) {
    Value v = value_like(t, Value::Kind::Input);
    v.index = static_cast<int>(g.inputs.size());
    int id = add(v, t);
    g.inputs.push_back(id);
    return id;
  }
  int constant(const Tensor& t) {
    Value v = value_like(t, Value::Kind::Constant);
    v.constant = t;
    return add(v, t);
  }
  // Runs op eagerly and records it; returns the first output's id (the others follow it).
  int op(OpId op, std::vector<int> ins, Attrs attrs = NoAttrs{}) {
    std::vector<Tensor> in;
    for (int id : ins) in.push_back(env[static_cast<size_t>(id)]);
    std::vector<Tensor> out(static_cast<size_t>(op_info(op).num_outputs));
    detail::execute(op, in, attrs, out);
    GraphNode node{op, attrs, ins, {}, {}, {}};
    const int n = static_cast<int>(g.nodes.size());
    for (size_t k = 0; k < out.size(); ++k) {
      Value v = value_like(out[k], Value::Kind::NodeOutput);
      v.node = n;
      v.index = static_cast<int>(k);
      node.outputs.push_back(add(v, out[k]));
    }
    g.nodes.push_back(std::move(node));
    return g.nodes.back().outputs[0];
  }
  int permute(int x, Axes perm) { return op(OpId::Permute, {x}, PermuteAttrs{perm}); }
  int reshape(int x, Shape s) { return op(OpId::Reshape, {x}, ShapeAttrs{s}); }
};

// Uniform random values in [lo, hi), reproducible by seed.
inline Tensor rand(std::vector<int64_t> shape, uint64_t seed, DType dtype = DType::Float32, double lo = -1,
                   double hi = 1) {
  Generator gen(seed);
  return uniform(shape, lo, hi, gen, dtype);
}

// Runs g on inputs as compile's executor does without a memory plan (run_node per node).
inline std::vector<Tensor> run_graph(const Graph& g, const std::vector<Tensor>& inputs) {
  std::vector<Tensor> env(g.values.size());
  for (size_t i = 0; i < g.inputs.size(); ++i) env[static_cast<size_t>(g.inputs[i])] = inputs[i];
  for (size_t i = 0; i < g.values.size(); ++i)
    if (g.values[i].kind == Value::Kind::Constant) env[i] = g.values[i].constant;
  for (const GraphNode& node : g.nodes) {
    std::vector<Tensor> in, out(node.outputs.size());
    for (int id : node.inputs) in.push_back(env[static_cast<size_t>(id)]);
    run_node(g, node, in, out);
    for (size_t k = 0; k < out.size(); ++k) env[static_cast<size_t>(node.outputs[k])] = out[k];
  }
  std::vector<Tensor> r;
  for (int o : g.outputs) r.push_back(env[static_cast<size_t>(o)]);
  return r;
}

}  // namespace tessera::graph::testing
