// NumPy/PyTorch-like printing. Large tensors are summarized with "..." showing
// the first and last 3 entries of each axis (more than 1000 elements).
#include <cmath>
#include <cstdio>
#include <sstream>

#include "tessera/ops.h"

namespace tessera {

namespace {

constexpr int64_t kThreshold = 1000;
constexpr int64_t kEdge = 3;

struct Formatter {
  bool floating = false;
  bool is_bool = false;
  bool int_valued = true;  // all finite values are integers -> print "1."
  bool sci = false;
  int width = 1;

  std::string fmt(double v) const {
    char buf[64];
    if (is_bool) return v != 0 ? "True" : "False";
    if (!floating) {
      std::snprintf(buf, sizeof buf, "%lld", static_cast<long long>(v));
    } else if (std::isnan(v)) {
      return "nan";
    } else if (std::isinf(v)) {
      return v > 0 ? "inf" : "-inf";
    } else if (sci) {
      std::snprintf(buf, sizeof buf, "%.4e", v);
    } else if (int_valued) {
      std::snprintf(buf, sizeof buf, "%.0f.", v);
    } else {
      std::snprintf(buf, sizeof buf, "%.4f", v);
    }
    return buf;
  }
};

void print_rec(std::ostringstream& os, const std::vector<double>& v, const Shape& shape, const Strides& st,
               size_t dim, int64_t base, const Formatter& f, bool summarize, int indent) {
  if (dim == shape.size()) {
    std::string s = f.fmt(v[static_cast<size_t>(base)]);
    os << std::string(static_cast<size_t>(std::max<int>(0, f.width - static_cast<int>(s.size()))), ' ') << s;
    return;
  }
  int64_t n = shape[dim];
  os << "[";
  for (int64_t i = 0; i < n; ++i) {
    if (summarize && n > 2 * kEdge && i == kEdge) {
      os << (dim + 1 == shape.size() ? "..., " : "...,\n" + std::string(static_cast<size_t>(indent + 1), ' '));
      i = n - kEdge;
    }
    print_rec(os, v, shape, st, dim + 1, base + i * st[dim], f, summarize, indent + 1);
    if (i + 1 < n) {
      if (dim + 1 == shape.size()) os << ", ";
      else os << "," << std::string(shape.size() - dim - 1, '\n') << std::string(static_cast<size_t>(indent + 1), ' ');
    }
  }
  os << "]";
}

}  // namespace

std::string Tensor::str() const {
  if (!defined()) return "tensor(undefined)";
  std::ostringstream os;
  const char* prefix = "tensor(";
  os << prefix;
  if (!has_storage()) {
    os << "<traced>, shape=" << shape_str(shape()) << ", dtype=" << dtype_name(dtype()) << ")";
    return os.str();
  }
  std::vector<double> v = to_vector<double>();
  Formatter f;
  f.floating = is_floating(dtype());
  f.is_bool = dtype() == DType::Bool;
  bool summarize = numel() > kThreshold;
  double amax = 0, amin = INFINITY;
  for (double x : v) {
    if (!std::isfinite(x)) continue;
    if (x != std::floor(x)) f.int_valued = false;
    amax = std::max(amax, std::fabs(x));
    if (x != 0) amin = std::min(amin, std::fabs(x));
  }
  if (f.floating && (amax >= 1e8 || (amin < 1e-4 && !f.int_valued) || (amin != INFINITY && amax / amin > 1e6 && !f.int_valued))) f.sci = true;
  for (double x : v) f.width = std::max<int>(f.width, static_cast<int>(f.fmt(x).size()));
  Strides st = contiguous_strides(shape());
  if (ndim() == 0) os << f.fmt(v[0]);
  else print_rec(os, v, shape(), st, 0, 0, f, summarize, static_cast<int>(std::string(prefix).size()));
  if (numel() == 0 && ndim() > 1) os << ", shape=" << shape_str(shape());
  if (dtype() != DType::Float32 && dtype() != DType::Int64 && dtype() != DType::Bool) os << ", dtype=" << dtype_name(dtype());
  Device dev = device();
  if (!(dev == default_device())) os << ", device=" << dev.str();
  os << ")";
  return os.str();
}

std::ostream& operator<<(std::ostream& os, const Tensor& t) { return os << t.str(); }

}  // namespace tessera
