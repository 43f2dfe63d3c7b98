// Gradient checks of views, data movement, indexing and sorting against central differences in
// float64: reshape, permute/transpose, slice with steps, select, squeeze/unsqueeze, expand,
// as_strided (with overlapping windows), flatten, contiguous, concat/stack/split/chunk, pad in
// every mode, flip, roll, tile, repeat_interleave, gather/take_along_axis, scatter, scatter_add,
// index_select, embedding, sort and topk. Index tensors are integer inputs (held fixed).
#include "harness/gradcheck.h"

namespace ts = tessera;
using namespace tessera::testing;
using ts::DType;
using ts::Shape;
using ts::Tensor;
using ts::TensorList;

namespace {

Tensor idx(const std::vector<int64_t>& v, ts::IntList shape) { return ts::tensor(v, shape); }

// Every layout of a [rows, cols] input (plus [2,3,4] for the rank-3 views).
template <class Fn>
void for_layouts(const std::string& name, Shape shape, uint64_t seed, Fn&& f) {
  for (Layout l : all_layouts()) {
    Tensor x = grad_input(shape, l, seed++);
    SCOPED_TRACE(name + " " + layout_name(l));
    EXPECT_GRADS(name, f, {x});
  }
}

TEST(GradViews, ReshapeAndFlatten) {
  for_layouts("reshape", {2, 3, 4}, 1, [](const TensorList& in) { return ts::reshape(in[0], {4, -1}); });
  for_layouts("reshape to 1-d", {3, 4}, 10, [](const TensorList& in) { return ts::reshape(in[0], {12}); });
  for_layouts("flatten 1..2", {2, 3, 4}, 20, [](const TensorList& in) { return ts::flatten(in[0], 1, 2); });
  for_layouts("flatten all", {2, 3, 4}, 30, [](const TensorList& in) { return ts::flatten(in[0]); });
  EXPECT_GRADS("reshape 0-d to [1,1]",
               [](const TensorList& in) {
                 return ts::reshape(in[0], {1, 1});
               },
               {grad_input({}, Layout::Contiguous, 40)});
  EXPECT_GRADS("reshape [1] to 0-d", [](const TensorList& in) { return ts::reshape(in[0], {}); },
               {grad_input({1}, Layout::Contiguous, 41)});
  EXPECT_GRADS("member reshape",
               [](const TensorList& in) {
                 return in[0].reshape({3, 2}) * 2.0;
               },
               {grad_input({2, 3}, Layout::Transposed, 42)});
}

TEST(GradViews, PermuteAndTranspose) {
  for_layouts("permute", {2, 3, 4}, 50, [](const TensorList& in) { return ts::permute(in[0], {2, 0, 1}); });
  for_layouts("transpose", {2, 3, 4}, 60, [](const TensorList& in) { return ts::transpose(in[0], 0, 2); });
  for_layouts("member transpose", {3, 4}, 70,
              [](const TensorList& in) { return in[0].transpose() * in[0].transpose(); });
  // A chain of views followed by a computation that reads them.
  for_layouts("permute then slice then exp", {2, 3, 4}, 80, [](const TensorList& in) {
    return ts::exp(ts::slice(ts::permute(in[0], {1, 2, 0}), 1, 1, std::nullopt, 2));
  });
}

TEST(GradViews, SliceWithStepsAndSelect) {
  for_layouts("slice step 1", {4, 5}, 100, [](const TensorList& in) { return ts::slice(in[0], 0, 1, 3); });
  for_layouts("slice step 2", {4, 5}, 110,
              [](const TensorList& in) { return ts::slice(in[0], 1, 0, std::nullopt, 2); });
  for_layouts("slice step 3 negative start", {4, 5}, 120,
              [](const TensorList& in) { return ts::slice(in[0], -1, -4, std::nullopt, 3); });
  for_layouts("slice empty", {4, 5}, 130, [](const TensorList& in) { return ts::slice(in[0], 0, 2, 2); });
  for_layouts("select", {4, 5}, 140, [](const TensorList& in) { return ts::select(in[0], 1, 3); });
  for_layouts("select negative", {2, 3, 4}, 150, [](const TensorList& in) { return ts::select(in[0], 0, -1); });
  // Two overlapping slices of one input accumulate.
  for_layouts("overlapping slices", {6}, 160,
              [](const TensorList& in) { return ts::slice(in[0], 0, 0, 4) * ts::slice(in[0], 0, 2, 6); });
}

TEST(GradViews, SqueezeUnsqueezeExpand) {
  for_layouts("squeeze all", {3, 1, 2}, 200, [](const TensorList& in) { return ts::squeeze(in[0]); });
  for_layouts("squeeze axis", {3, 1, 2}, 210, [](const TensorList& in) { return ts::squeeze(in[0], {1}); });
  for_layouts("unsqueeze", {3, 2}, 220, [](const TensorList& in) { return ts::unsqueeze(in[0], 1); });
  for_layouts("unsqueeze end", {3, 2}, 230, [](const TensorList& in) { return ts::unsqueeze(in[0], -1); });
  for_layouts("expand", {3, 1}, 240, [](const TensorList& in) { return ts::expand(in[0], {2, 3, 4}); });
  for_layouts("broadcast_to", {1, 4}, 250, [](const TensorList& in) { return ts::broadcast_to(in[0], {3, 4}); });
  EXPECT_GRADS("expand 0-d",
               [](const TensorList& in) {
                 return ts::expand(in[0], {2, 3});
               },
               {grad_input({}, Layout::Contiguous, 260)});
  EXPECT_GRADS("unsqueeze 0-d", [](const TensorList& in) { return ts::unsqueeze(in[0], 0); },
               {grad_input({}, Layout::Contiguous, 261)});
}

TEST(GradViews, AsStridedIncludingOverlappingWindows) {
  Tensor x = grad_input({8}, Layout::Contiguous, 300);
  EXPECT_GRADS("as_strided transpose-like",
               [](const TensorList& in) {
                 return ts::as_strided(in[0], {2, 4}, {1, 2}, 0);
               },
               {x});
  EXPECT_GRADS("as_strided offset", [](const TensorList& in) { return ts::as_strided(in[0], {3}, {2}, 1); }, {x});
  // Sliding windows of size 3 with step 1: elements appear in several windows and accumulate.
  EXPECT_GRADS("as_strided overlapping",
               [](const TensorList& in) {
                 return ts::as_strided(in[0], {6, 3}, {1, 1}, 0);
               },
               {x});
  EXPECT_GRADS("as_strided zero stride",
               [](const TensorList& in) {
                 return ts::as_strided(in[0], {3, 2}, {0, 1}, 2);
               },
               {x});
  // (as_strided addresses the storage, so it is layout-dependent: only contiguous inputs here.)
  Tensor xt = grad_input({3, 4}, Layout::Contiguous, 301);
  EXPECT_GRADS("as_strided of a 2-d tensor",
               [](const TensorList& in) {
                 return ts::as_strided(in[0], {2, 2, 2}, {4, 1, 1}, 1);
               },
               {xt});
}

TEST(GradViews, ContiguousOfEveryLayout) {
  for_layouts("contiguous", {3, 4}, 350, [](const TensorList& in) { return ts::contiguous(in[0]); });
}

TEST(GradMovement, ConcatStack) {
  Tensor a = grad_input({2, 3}, Layout::Transposed, 400);
  Tensor b = grad_input({1, 3}, Layout::Contiguous, 401);
  Tensor c = grad_input({3, 3}, Layout::Sliced, 402);
  EXPECT_GRADS("concat axis 0", [](const TensorList& in) { return ts::concat(in, 0); }, {a, b, c});
  Tensor d = grad_input({2, 2}, Layout::Expanded, 403);
  EXPECT_GRADS("concat axis 1", [](const TensorList& in) { return ts::concat(in, 1); }, {a, d});
  EXPECT_GRADS("concat with empty", [](const TensorList& in) { return ts::concat(in, 0); },
               {a, grad_input({0, 3}, Layout::Contiguous, 404)});
  EXPECT_GRADS("concat same input twice",
               [](const TensorList& in) {
                 return ts::concat({in[0], in[0] * 2.0}, -1);
               },
               {a});
  Tensor e = grad_input({2, 3}, Layout::Offset, 405);
  EXPECT_GRADS("stack axis 0", [](const TensorList& in) { return ts::stack(in, 0); }, {a, e});
  EXPECT_GRADS("stack axis -1", [](const TensorList& in) { return ts::stack(in, -1); }, {a, e});
  EXPECT_GRADS("stack 0-d", [](const TensorList& in) { return ts::stack(in, 0); },
               {grad_input({}, Layout::Contiguous, 406), grad_input({}, Layout::Contiguous, 407)});
}

TEST(GradMovement, SplitAndChunkPiecesEachCarryTheirGradient) {
  Tensor x = grad_input({5, 3}, Layout::Transposed, 450);
  // Weight each piece differently so a gradient sent to the wrong piece shows.
  auto weigh = [](const std::vector<Tensor>& parts, int64_t axis) {
    std::vector<Tensor> w;
    for (size_t i = 0; i < parts.size(); ++i) w.push_back(parts[i] * static_cast<double>(i + 1) + parts[i] * parts[i]);
    return ts::concat(w, axis);
  };
  EXPECT_GRADS("split sizes", [weigh](const TensorList& in) { return weigh(ts::split(in[0], {2, 0, 3}, 0), 0); }, {x});
  EXPECT_GRADS("split size", [weigh](const TensorList& in) { return weigh(ts::split(in[0], 2, 0), 0); }, {x});
  EXPECT_GRADS("split axis 1", [weigh](const TensorList& in) { return weigh(ts::split(in[0], 1, 1), 1); }, {x});
  EXPECT_GRADS("chunk", [weigh](const TensorList& in) { return weigh(ts::chunk(in[0], 3, 0), 0); }, {x});
  // Only one piece used: the others get zero gradient.
  EXPECT_GRADS("one piece of split", [](const TensorList& in) { return ts::split(in[0], 2, 0)[1]; }, {x});
}

TEST(GradMovement, PadInEveryMode) {
  uint64_t seed = 500;
  for (auto mode : {ts::PadMode::Constant, ts::PadMode::Reflect, ts::PadMode::Edge}) {
    SCOPED_TRACE("mode " + std::to_string(static_cast<int>(mode)));
    for_layouts("pad both axes", {3, 4}, seed, [mode](const TensorList& in) {
      return ts::pad(in[0], {1, 2, 2, 1}, mode, 0.5);
    });
    seed += 10;
    for_layouts("pad first axis only", {3, 4}, seed, [mode](const TensorList& in) {
      return ts::pad(in[0], {2, 0}, mode);
    });
    seed += 10;
    EXPECT_GRADS("pad 1-d",
                 [mode](const TensorList& in) {
                   return ts::pad(in[0], {2, 2}, mode);
                 },
                 {grad_input({3}, Layout::Sliced, seed++)});
    EXPECT_GRADS("pad rank 3 last axes",
                 [mode](const TensorList& in) {
                   return ts::pad(in[0], {0, 0, 1, 1, 1, 2}, mode);
                 },
                 {grad_input({2, 2, 3}, Layout::Transposed, seed++)});
  }
}

TEST(GradMovement, FlipRollTileRepeatInterleave) {
  for_layouts("flip one axis", {3, 4}, 600, [](const TensorList& in) { return ts::flip(in[0], {0}); });
  for_layouts("flip both axes", {3, 4}, 610, [](const TensorList& in) { return ts::flip(in[0], {0, -1}); });
  for_layouts("roll axis", {3, 4}, 620, [](const TensorList& in) { return ts::roll(in[0], 2, 1); });
  for_layouts("roll negative", {3, 4}, 630, [](const TensorList& in) { return ts::roll(in[0], -1, 0); });
  for_layouts("roll flat", {3, 4}, 640, [](const TensorList& in) { return ts::roll(in[0], 5); });
  for_layouts("tile", {2, 3}, 650, [](const TensorList& in) { return ts::tile(in[0], {2, 2}); });
  for_layouts("tile longer reps", {2, 3}, 660, [](const TensorList& in) { return ts::tile(in[0], {2, 1, 3}); });
  for_layouts("repeat_interleave axis", {2, 3}, 670,
              [](const TensorList& in) { return ts::repeat_interleave(in[0], 2, 1); });
  for_layouts("repeat_interleave flat", {2, 3}, 680,
              [](const TensorList& in) { return ts::repeat_interleave(in[0], 3); });
  Tensor reps = idx({2, 0, 3}, {3});
  EXPECT_GRADS("repeat_interleave per-element counts",
               [](const TensorList& in) { return ts::repeat_interleave(in[0], in[1], 1); },
               {grad_input({2, 3}, Layout::Transposed, 690), reps});
}

TEST(GradIndex, GatherAndTakeAlongAxis) {
  Tensor x = grad_input({3, 4}, Layout::Transposed, 700);
  Tensor i0 = idx({0, 2, 2, 1, 0, 0, -1, 3}, {2, 4});  // axis 1, duplicates and a negative index
  EXPECT_GRADS("gather axis 1 with duplicates", [](const TensorList& in) { return ts::gather(in[0], 1, in[1]); },
               {x, idx({0, 2, 2, 1, 0, 0, 3, 3}, {2, 4})});
  EXPECT_GRADS("gather axis 0", [](const TensorList& in) { return ts::gather(in[0], 0, in[1]); },
               {x, idx({2, 0, 1, 2, 2, 2, 0, 0}, {2, 4})});
  EXPECT_GRADS("gather negative index", [](const TensorList& in) { return ts::gather(in[0], 1, in[1]); }, {x, i0});
  EXPECT_GRADS("gather int32 index", [](const TensorList& in) { return ts::gather(in[0], 1, in[1]); },
               {grad_input({3, 4}, Layout::Sliced, 701), ts::cast(idx({3, 1, 1, 0, 2, 2}, {3, 2}), DType::Int32)});
  EXPECT_GRADS("take_along_axis broadcasting index",
               [](const TensorList& in) { return ts::take_along_axis(in[0], in[1], 1); },
               {grad_input({3, 4}, Layout::Offset, 702), idx({1, 3, 1}, {1, 3})});
  EXPECT_GRADS("take_along_axis axis 0", [](const TensorList& in) { return ts::take_along_axis(in[0], in[1], 0); },
               {x, idx({2, 1, 0, 0}, {1, 4})});
}

TEST(GradIndex, ScatterOverwritesAndScatterAddAccumulates) {
  Tensor x = grad_input({3, 4}, Layout::Transposed, 750);
  Tensor src = grad_input({2, 4}, Layout::Sliced, 751);
  // Distinct targets per column for scatter (a duplicate target would make the overwritten
  // source element's gradient zero; tested below).
  Tensor i_unique = idx({0, 2, 1, 0, 2, 1, 0, 1}, {2, 4});
  EXPECT_GRADS("scatter axis 0", [](const TensorList& in) { return ts::scatter(in[0], 0, in[1], in[2]); },
               {x, i_unique, src});
  EXPECT_GRADS("scatter axis 1", [](const TensorList& in) { return ts::scatter(in[0], 1, in[1], in[2]); },
               {x, idx({3, 0, 1, 2}, {2, 2}), grad_input({2, 2}, Layout::Contiguous, 752)});
  EXPECT_GRADS("scatter duplicate targets (last wins)",
               [](const TensorList& in) { return ts::scatter(in[0], 1, in[1], in[2]); },
               {x, idx({1, 1, 2, 2, 2, 0}, {3, 2}), grad_input({3, 2}, Layout::Contiguous, 753)});
  EXPECT_GRADS("scatter 0-d src", [](const TensorList& in) { return ts::scatter(in[0], 0, in[1], in[2]); },
               {x, i_unique, grad_input({}, Layout::Contiguous, 754)});
  Tensor i_dup = idx({0, 0, 1, 2, 0, 2, 1, 2}, {2, 4});
  EXPECT_GRADS("scatter_add duplicates", [](const TensorList& in) { return ts::scatter_add(in[0], 0, in[1], in[2]); },
               {x, i_dup, src});
  EXPECT_GRADS("scatter_add axis 1", [](const TensorList& in) { return ts::scatter_add(in[0], 1, in[1], in[2]); },
               {x, idx({3, 3, 0, 0, 1, 1}, {3, 2}), grad_input({3, 2}, Layout::Expanded, 755)});
}

TEST(GradIndex, IndexSelectAndEmbedding) {
  Tensor x = grad_input({4, 3}, Layout::Transposed, 800);
  EXPECT_GRADS("index_select axis 0 duplicates", [](const TensorList& in) { return ts::index_select(in[0], 0, in[1]); },
               {x, idx({3, 0, 3, 1, 3}, {5})});
  EXPECT_GRADS("index_select axis 1", [](const TensorList& in) { return ts::index_select(in[0], 1, in[1]); },
               {x, idx({2, -3}, {2})});
  EXPECT_GRADS("index_select 0-d index", [](const TensorList& in) { return ts::index_select(in[0], 0, in[1]); },
               {x, ts::scalar_tensor(2, DType::Int64)});
  EXPECT_GRADS("embedding", [](const TensorList& in) { return ts::embedding(in[0], in[1]); },
               {x, idx({1, 3, 1, 0, 1, 2}, {2, 3})});
  EXPECT_GRADS("embedding 0-d index", [](const TensorList& in) { return ts::embedding(in[0], in[1]); },
               {x, ts::scalar_tensor(3, DType::Int64)});
  EXPECT_NO_GRAD("one_hot", [](const TensorList& in) { return ts::one_hot(in[0], 4, DType::Float64); },
                 {idx({1, 3, 0}, {3})});
}

TEST(GradSort, SortAndTopkValuesRouteGradientsToTheirSources) {
  uint64_t seed = 900;
  for (Layout l : all_layouts()) {
    if (l == Layout::Expanded) continue;  // repeated values tie
    Tensor x = grad_input({3, 5}, l, seed++);
    SCOPED_TRACE(layout_name(l));
    EXPECT_GRADS("sort last axis", [](const TensorList& in) { return std::get<0>(ts::sort(in[0])); }, {x});
    EXPECT_GRADS("sort axis 0 descending", [](const TensorList& in) { return std::get<0>(ts::sort(in[0], 0, true)); },
                 {x});
    EXPECT_GRADS("topk largest", [](const TensorList& in) { return std::get<0>(ts::topk(in[0], 2)); }, {x});
    EXPECT_GRADS("topk smallest axis 0", [](const TensorList& in) { return std::get<0>(ts::topk(in[0], 2, 0, false)); },
                 {x});
  }
  EXPECT_GRADS("sort 1-d", [](const TensorList& in) { return std::get<0>(ts::sort(in[0])); },
               {grad_input({6}, Layout::Sliced, 950)});
  Tensor x = grad_input({3, 5}, Layout::Contiguous, 951);
  EXPECT_NO_GRAD("sort indices", [](const TensorList& in) { return std::get<1>(ts::sort(in[0])); }, {x});
  EXPECT_NO_GRAD("topk indices", [](const TensorList& in) { return std::get<1>(ts::topk(in[0], 3)); }, {x});
  EXPECT_NO_GRAD("argsort", [](const TensorList& in) { return ts::argsort(in[0], 0); }, {x});
  // Both outputs used: values differentiable, indices only gather (no gradient of their own).
  EXPECT_GRADS("topk values + gather by indices",
               [](const TensorList& in) {
                 auto [v, i] = ts::topk(in[0], 2);
                 return v * ts::gather(in[0], 1, i);
               },
               {x});
}

}  // namespace
