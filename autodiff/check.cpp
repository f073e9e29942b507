// Central finite differences in float64 against the tape's gradients.
#include "autodiff/check.h"

#include <cmath>
#include <cstring>
#include <sstream>

#include "autodiff/tape.h"
#include "ops/ops.h"

namespace kiln::autodiff {

GradientCheck check_gradients(const std::function<Tensor(const std::vector<Tensor>&)>& f,
                              const std::vector<Tensor>& inputs, double eps, double atol, double rtol) {
  std::vector<Tensor> xs;
  for (const Tensor& t : inputs) xs.push_back(is_floating(t.dtype()) ? cast(t, float64) : t);
  Tensor probe = f(xs);
  if (!is_floating(probe.dtype()))
    fail<InvalidArgument>("check_gradients", "f must return a floating tensor, got ", dtype_name(probe.dtype()));
  Tensor w = cast(random::uniform(probe.shape(), 12345, 0.5, 1.5, float64), probe.dtype());
  auto objective = [&](const std::vector<Tensor>& args) { return reduce_sum(f(args) * w); };

  std::vector<Tensor> analytic;
  {
    GradientTape tape;
    for (const Tensor& x : xs)
      if (is_floating(x.dtype())) tape.watch(x);
    Tensor y = objective(xs);
    std::vector<Source> sources(xs.begin(), xs.end());
    analytic = tape.gradient(y, sources, UnconnectedGradients::Zero);
  }

  GradientCheck result;
  std::ostringstream report;
  for (size_t i = 0; i < xs.size(); ++i) {
    if (xs[i].dtype() != float64) continue;
    std::vector<double> base = xs[i].to_vector<double>();
    std::vector<double> ana = cast(analytic[i], float64).to_vector<double>();
    for (size_t j = 0; j < base.size(); ++j) {
      auto eval_at = [&](double v) {
        std::vector<double> moved = base;
        moved[j] = v;
        std::vector<Tensor> args = xs;
        args[i] = constant(moved, xs[i].shape());
        return cast(objective(args), float64).item<double>();
      };
      double h = eps * std::max(1.0, std::abs(base[j]));
      double numeric = (eval_at(base[j] + h) - eval_at(base[j] - h)) / (2 * h);
      double err = std::abs(ana[j] - numeric);
      result.max_abs_error = std::max(result.max_abs_error, err);
      if (numeric != 0) result.max_rel_error = std::max(result.max_rel_error, err / std::abs(numeric));
      if (!(err <= atol + rtol * std::abs(numeric))) {
        result.ok = false;
        report << "input " << i << " [" << j << "]: analytic " << ana[j] << " numeric " << numeric << "\n";
      }
    }
  }
  result.report = report.str();
  return result;
}

}  // namespace kiln::autodiff
