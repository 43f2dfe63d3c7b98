#include "elementwise.h"

#include <algorithm>

#include "parallel.h"

namespace tessera::cpu {

void run_elementwise(const Tensor& out, std::span<const Tensor> ins, InnerLoop loop, const void* ctx, int64_t grain) {
  const int nops = static_cast<int>(ins.size()) + 1;
  const Shape& oshape = out.shape();
  const size_t nd = oshape.size();
  int64_t numel = out.numel();
  if (numel == 0) return;

  char* base[kMaxOperands];
  base[0] = static_cast<char*>(out.impl().data());
  for (size_t i = 0; i < ins.size(); ++i) base[i + 1] = static_cast<char*>(ins[i].impl().data());

  // Fast path: everything contiguous with the same shape, or inputs that are 0-d / 1-element.
  bool flat = out.is_contiguous();
  int64_t flat_strides[kMaxOperands];
  flat_strides[0] = static_cast<int64_t>(out.itemsize());
  for (size_t i = 0; i < ins.size(); ++i) {
    const Tensor& t = ins[i];
    if (t.numel() == 1) flat_strides[i + 1] = 0;
    else if (t.shape() == oshape && t.is_contiguous()) flat_strides[i + 1] = static_cast<int64_t>(t.itemsize());
    else flat = false;
  }
  if (flat) {
    parallel_for(0, numel, grain, [&](int64_t b, int64_t e) {
      char* p[kMaxOperands];
      for (int k = 0; k < nops; ++k) p[k] = base[k] + b * flat_strides[k];
      loop(p, flat_strides, e - b, ctx);
    });
    return;
  }

  // General path: byte strides per operand per axis (innermost last), then merge axes.
  Shape shape;
  SmallVector<int64_t, 8> st[kMaxOperands];
  for (size_t d = 0; d < nd; ++d) {
    if (oshape[d] == 1) continue;
    shape.push_back(oshape[d]);
    st[0].push_back(out.strides()[d] * static_cast<int64_t>(out.itemsize()));
    for (size_t i = 0; i < ins.size(); ++i) {
      const Tensor& t = ins[i];
      size_t off = nd - t.shape().size();
      int64_t s = 0;
      if (d >= off && t.shape()[d - off] != 1) s = t.strides()[d - off] * static_cast<int64_t>(t.itemsize());
      st[i + 1].push_back(s);
    }
  }
  // Merge axis d into d+1 (outer into inner) when every operand is contiguous across them.
  for (size_t d = shape.size(); d-- > 1;) {
    bool ok = true;
    for (int k = 0; k < nops && ok; ++k) ok = st[k][d - 1] == st[k][d] * shape[d];
    if (!ok) continue;
    shape[d] *= shape[d - 1];
    shape.erase(shape.begin() + (d - 1));
    for (int k = 0; k < nops; ++k) st[k].erase(st[k].begin() + (d - 1));
  }
  if (shape.empty()) {  // all axes were size 1
    shape.push_back(1);
    for (int k = 0; k < nops; ++k) st[k].push_back(0);
  }
  const size_t r = shape.size();
  const int64_t inner = shape[r - 1];
  int64_t inner_strides[kMaxOperands];
  for (int k = 0; k < nops; ++k) inner_strides[k] = st[k][r - 1];

  parallel_for(0, numel, grain, [&](int64_t b, int64_t e) {
    // Multi-index of element b.
    SmallVector<int64_t, 8> idx(r, 0);
    int64_t rem = b;
    for (size_t d = r; d-- > 0;) {
      idx[d] = rem % shape[d];
      rem /= shape[d];
    }
    char* p[kMaxOperands];
    int64_t pos = b;
    while (pos < e) {
      for (int k = 0; k < nops; ++k) {
        int64_t off = 0;
        for (size_t d = 0; d < r; ++d) off += idx[d] * st[k][d];
        p[k] = base[k] + off;
      }
      int64_t n = std::min(inner - idx[r - 1], e - pos);
      loop(p, inner_strides, n, ctx);
      pos += n;
      idx[r - 1] += n;
      for (size_t d = r - 1; d > 0 && idx[d] >= shape[d]; --d) {
        idx[d] = 0;
        ++idx[d - 1];
      }
    }
  });
}

}  // namespace tessera::cpu
