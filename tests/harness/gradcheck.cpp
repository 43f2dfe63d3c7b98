// Numerical gradient checks: see gradcheck.h for how to add a case.
#include "harness/gradcheck.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <exception>
#include <sstream>

namespace tessera::testing {

namespace {

std::vector<double> host_values(const Tensor& t) { return t.contiguous().to_vector<double>(); }

Tensor f64_tensor(const std::vector<double>& v, const Shape& shape) {
  return from_blob(v.data(), IntList(shape.data(), shape.size()), DType::Float64);
}

std::string dims_str(const Shape& s) {
  std::ostringstream os;
  os << "[";
  for (size_t i = 0; i < s.size(); ++i) os << (i ? "," : "") << s[i];
  os << "]";
  return os.str();
}

/// Row-major multi-index of flat element k, e.g. "(1,0,2)".
std::string index_str(const Shape& s, int64_t k) {
  std::vector<int64_t> idx(s.size());
  for (size_t d = s.size(); d-- > 0;) {
    int64_t n = s[d] > 0 ? s[d] : 1;
    idx[d] = k % n;
    k /= n;
  }
  std::ostringstream os;
  os << "(";
  for (size_t i = 0; i < idx.size(); ++i) os << (i ? "," : "") << idx[i];
  os << ")";
  return os.str();
}

double scaled_err(double a, double n) {
  if (std::isnan(a) || std::isnan(n)) return (std::isnan(a) && std::isnan(n)) ? 0.0 : INFINITY;
  return std::abs(a - n) / std::max({1.0, std::abs(a), std::abs(n)});
}

/// Worst scale-aware error between two equally long value lists; k receives its index.
double worst(const std::vector<double>& a, const std::vector<double>& n, size_t& k) {
  double w = 0.0;
  k = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    double e = scaled_err(a[i], n[i]);
    if (e > w || (std::isinf(e) && !std::isinf(w))) {
      w = e;
      k = i;
    }
  }
  return w;
}

double dot(const std::vector<double>& a, const std::vector<double>& b) {
  double s = 0.0;
  for (size_t i = 0; i < a.size(); ++i) s += a[i] * b[i];
  return s;
}

bool all_zero(const Tensor& t) {
  if (!t.defined()) return true;
  for (double v : host_values(t))
    if (v != 0.0) return false;
  return true;
}

Tensor eval_with(const GradFn& f, const TensorList& inputs, size_t i, const Tensor& xi) {
  TensorList in = inputs;
  in[i] = xi;
  return f(in);
}

/// inputs[i] + delta * dir (contiguous float64), dir given as host values.
Tensor shifted(const Tensor& x, const std::vector<double>& dir, double delta) {
  std::vector<double> v = host_values(x);
  for (size_t k = 0; k < v.size(); ++k) v[k] += delta * dir[k];
  return f64_tensor(v, x.shape());
}

// Worst error of the passing comparisons against central differences, printed once at the end
// of the run (the measured margin under the 1e-6 bound).
struct Worst {
  int64_t checks = 0;
  double err = 0.0;
  std::string where;
};
Worst& worst_seen() {
  static Worst w;
  return w;
}
class ReportWorst : public ::testing::Environment {
 public:
  void TearDown() override {
    const Worst& w = worst_seen();
    if (w.checks > 0)
      std::printf("[gradcheck] %lld comparisons with central differences; worst scale-aware error %.3g (%s)\n",
                  static_cast<long long>(w.checks), w.err, w.where.c_str());
  }
};
[[maybe_unused]] ::testing::Environment* const kReportWorst = ::testing::AddGlobalTestEnvironment(new ReportWorst);

::testing::AssertionResult threw(const std::string& check, const std::string& name, const std::exception& e) {
  return ::testing::AssertionFailure() << check << " [" << name << "] threw: " << e.what();
}

}  // namespace

Tensor grad_input(IntList shape, Layout layout, uint64_t seed, double lo, double hi) {
  return make_input(shape, DType::Float64, layout, seed, lo, hi);
}

Tensor away_from(const Tensor& x, double kink, double gap) {
  if (x.dtype() != DType::Float64) raise<DTypeError>("away_from", "float64 only");
  Storage& st = *x.impl().storage;
  auto* p = static_cast<double*>(st.data());
  for (size_t i = 0; i < st.nbytes() / sizeof(double); ++i) p[i] = p[i] >= kink ? p[i] + gap : p[i] - gap;
  return x;
}

Tensor perturbed(const Tensor& x, int64_t k, double delta) {
  std::vector<double> v = host_values(x);
  v[static_cast<size_t>(k)] += delta;
  return f64_tensor(v, x.shape());
}

::testing::AssertionResult grad_close(const std::string& what, const Tensor& got, const Tensor& want, double tol) {
  if (!got.defined() || !want.defined()) return ::testing::AssertionFailure() << what << ": undefined tensor";
  if (got.shape() != want.shape())
    return ::testing::AssertionFailure() << what << ": shape " << dims_str(got.shape()) << ", expected "
                                         << dims_str(want.shape());
  std::vector<double> a = host_values(got), n = host_values(want);
  size_t k;
  double w = worst(a, n, k);
  if (tol >= 1e-7 && w <= tol) {  // passing comparisons with central differences (not analytical-vs-analytical)
    Worst& ws = worst_seen();
    ++ws.checks;
    if (w > ws.err) ws.err = w, ws.where = what;
  }
  if (w > tol)
    return ::testing::AssertionFailure() << what << ": error " << w << " > " << tol << " at element "
                                         << index_str(got.shape(), static_cast<int64_t>(k)) << " of "
                                         << dims_str(got.shape()) << ": got " << a[k] << ", expected " << n[k];
  return ::testing::AssertionSuccess();
}

::testing::AssertionResult check_vjp(const std::string& name, const GradFn& f, const TensorList& inputs,
                                     const GradCheckOptions& opt) {
  try {
    auto [out, pullback] = tessera::vjp(f, inputs);
    if (!is_floating(out.dtype()))
      return ::testing::AssertionFailure() << "vjp [" << name << "]: output is not floating (use check_no_grad)";
    Tensor plain = f(inputs);
    if (auto r = grad_close("vjp [" + name + "] primal output", out, plain, 1e-12); !r) return r;
    Tensor u = make_input(IntList(out.shape().data(), out.shape().size()), out.dtype(), Layout::Contiguous, opt.seed,
                          -1.0, 1.0);
    std::vector<double> uv = host_values(u);
    TensorList g = std::get<0>(pullback(u));
    if (g.size() != inputs.size())
      return ::testing::AssertionFailure()
             << "vjp [" << name << "]: " << g.size() << " cotangents for " << inputs.size() << " inputs";
    for (size_t i = 0; i < inputs.size(); ++i) {
      const Tensor& x = inputs[i];
      std::string where = "vjp [" + name + "] input " + std::to_string(i);
      if (!is_floating(x.dtype())) {
        if (!all_zero(g[i])) return ::testing::AssertionFailure() << where << ": integer input got a nonzero cotangent";
        continue;
      }
      Tensor gi = g[i].defined() ? g[i] : zeros_like(x);
      if (gi.dtype() != x.dtype())
        return ::testing::AssertionFailure() << where << ": cotangent dtype " << gi.dtype() << ", input " << x.dtype();
      std::vector<double> num(static_cast<size_t>(x.numel()));
      for (int64_t k = 0; k < x.numel(); ++k) {
        double fp = dot(uv, host_values(eval_with(f, inputs, i, perturbed(x, k, opt.eps))));
        double fm = dot(uv, host_values(eval_with(f, inputs, i, perturbed(x, k, -opt.eps))));
        num[static_cast<size_t>(k)] = (fp - fm) / (2 * opt.eps);
      }
      if (auto r = grad_close(where + " (analytical vs central differences)", gi, f64_tensor(num, x.shape()), opt.tol);
          !r)
        return r;
    }
    return ::testing::AssertionSuccess();
  } catch (const std::exception& e) {
    return threw("vjp", name, e);
  }
}

::testing::AssertionResult check_jvp(const std::string& name, const GradFn& f, const TensorList& inputs,
                                     const GradCheckOptions& opt) {
  try {
    size_t n = inputs.size();
    TensorList tangents(n);
    std::vector<std::vector<double>> dirs(n);
    for (size_t i = 0; i < n; ++i) {
      if (!is_floating(inputs[i].dtype())) continue;
      const Shape& s = inputs[i].shape();
      tangents[i] = make_input(IntList(s.data(), s.size()), inputs[i].dtype(), Layout::Contiguous,
                               opt.seed + 17 * (i + 1), -1.0, 1.0);
      dirs[i] = host_values(tangents[i]);
    }
    // One input at a time (the others carry undefined tangents), then all together (i == n).
    for (size_t i = 0; i <= n; ++i) {
      if (i < n && !tangents[i].defined()) continue;
      TensorList tan(n);
      TensorList xp = inputs, xm = inputs;
      for (size_t j = 0; j < n; ++j) {
        if ((i == n || j == i) && tangents[j].defined()) {
          tan[j] = tangents[j];
          xp[j] = shifted(inputs[j], dirs[j], opt.eps);
          xm[j] = shifted(inputs[j], dirs[j], -opt.eps);
        }
      }
      std::string where = "jvp [" + name + "] " + (i == n ? std::string("all inputs") : "input " + std::to_string(i));
      auto [out, tout] = tessera::jvp(f, inputs, tan);
      Tensor plain = f(inputs);
      if (auto r = grad_close(where + " primal output", out, plain, 1e-12); !r) return r;
      std::vector<double> fp = host_values(f(xp)), fm = host_values(f(xm));
      std::vector<double> num(fp.size());
      for (size_t k = 0; k < fp.size(); ++k) num[k] = (fp[k] - fm[k]) / (2 * opt.eps);
      Tensor t = tout.defined() ? tout : zeros_like(out);
      if (t.dtype() != out.dtype())
        return ::testing::AssertionFailure() << where << ": tangent dtype " << t.dtype() << ", output " << out.dtype();
      if (auto r = grad_close(where + " (tangent vs central differences)", t, f64_tensor(num, out.shape()), opt.tol);
          !r)
        return r;
    }
    return ::testing::AssertionSuccess();
  } catch (const std::exception& e) {
    return threw("jvp", name, e);
  }
}

::testing::AssertionResult check_jac_agree(const std::string& name, const GradFn& f, const TensorList& inputs,
                                           const GradCheckOptions& opt) {
  try {
    Tensor out = f(inputs);
    for (size_t i = 0; i < inputs.size(); ++i) {
      if (!is_floating(inputs[i].dtype())) continue;
      if (out.numel() * inputs[i].numel() > opt.max_jac_elems) continue;
      int argnum = static_cast<int>(i);
      Tensor jr = detail::jacrev_impl(f, inputs, argnum);
      Tensor jf = detail::jacfwd_impl(f, inputs, argnum);
      Shape want = out.shape();
      for (int64_t d : inputs[i].shape()) want.push_back(d);
      std::string where = "jacrev/jacfwd [" + name + "] input " + std::to_string(i);
      if (jr.shape() != want)
        return ::testing::AssertionFailure()
               << where << ": jacrev shape " << dims_str(jr.shape()) << ", expected " << dims_str(want);
      if (auto r = grad_close(where + " (jacrev vs jacfwd)", jr, jf, 1e-10); !r) return r;
    }
    return ::testing::AssertionSuccess();
  } catch (const std::exception& e) {
    return threw("jacrev/jacfwd", name, e);
  }
}

::testing::AssertionResult check_grads(const std::string& name, const GradFn& f, const TensorList& inputs,
                                       const GradCheckOptions& opt) {
  if (auto r = check_vjp(name, f, inputs, opt); !r) return r;
  if (auto r = check_jvp(name, f, inputs, opt); !r) return r;
  return check_jac_agree(name, f, inputs, opt);
}

::testing::AssertionResult check_hessian(const std::string& name, const GradFn& f, const TensorList& inputs, int argnum,
                                         const GradCheckOptions& opt) {
  try {
    size_t a = static_cast<size_t>(argnum);
    const Tensor& x = inputs.at(a);
    Tensor h = tessera::hessian(f, argnum)(inputs);
    Shape want = x.shape();
    for (int64_t d : x.shape()) want.push_back(d);
    std::string where = "hessian [" + name + "]";
    if (h.shape() != want)
      return ::testing::AssertionFailure()
             << where << ": shape " << dims_str(h.shape()) << ", expected " << dims_str(want);
    auto gradient = [&](const Tensor& xa) {
      TensorList in = inputs;
      in[a] = xa;
      return tessera::grad<0>(f)(in)[a];
    };
    int64_t n = x.numel();
    std::vector<double> num(static_cast<size_t>(n * n));
    for (int64_t k = 0; k < n; ++k) {
      std::vector<double> gp = host_values(gradient(perturbed(x, k, opt.eps)));
      std::vector<double> gm = host_values(gradient(perturbed(x, k, -opt.eps)));
      for (int64_t r = 0; r < n; ++r)
        num[static_cast<size_t>(r * n + k)] = (gp[static_cast<size_t>(r)] - gm[static_cast<size_t>(r)]) / (2 * opt.eps);
    }
    return grad_close(where + " (hessian vs central differences of grad)", h, f64_tensor(num, want), opt.tol);
  } catch (const std::exception& e) {
    return threw("hessian", name, e);
  }
}

::testing::AssertionResult check_no_grad(const std::string& name, const GradFn& f, const TensorList& inputs,
                                         const GradCheckOptions& opt) {
  try {
    auto [out, pullback] = tessera::vjp(f, inputs);
    Tensor u = is_floating(out.dtype()) ? make_input(IntList(out.shape().data(), out.shape().size()), out.dtype(),
                                                     Layout::Contiguous, opt.seed, -1.0, 1.0)
                                        : ones_like(out);
    TensorList g = std::get<0>(pullback(u));
    for (size_t i = 0; i < g.size(); ++i)
      if (!all_zero(g[i]))
        return ::testing::AssertionFailure()
               << "vjp [" << name << "] input " << i << ": expected no gradient, got a nonzero one";
    TensorList tan(inputs.size());
    for (size_t i = 0; i < inputs.size(); ++i)
      if (is_floating(inputs[i].dtype())) tan[i] = ones_like(inputs[i]);
    auto [out2, tout] = tessera::jvp(f, inputs, tan);
    if (!all_zero(tout))
      return ::testing::AssertionFailure() << "jvp [" << name << "]: expected no tangent, got a nonzero one";
    return ::testing::AssertionSuccess();
  } catch (const std::exception& e) {
    return threw("no-grad", name, e);
  }
}

}  // namespace tessera::testing
