// A gradient checker: analytic gradients from the tape against central finite differences,
// both computed in float64.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "runtime/tensor.h"

namespace kiln::autodiff {

/// The outcome of check_gradients.
struct GradientCheck {
  bool ok = true;
  double max_abs_error = 0;  // over every input element
  double max_rel_error = 0;
  /// One line per failing element: "input 0 [3]: analytic 1.5 numeric 1.49".
  std::string report;
};

/// Checks d/dx of `f` at `inputs`. Inputs are cast to float64; the scalar being differentiated is
/// sum(f(inputs) * w) for a fixed random `w`, so every output element is exercised. An element
/// passes when |analytic - numeric| <= atol + rtol * |numeric|. Integer inputs are skipped.
GradientCheck check_gradients(const std::function<Tensor(const std::vector<Tensor>&)>& f,
                              const std::vector<Tensor>& inputs, double eps = 1e-6, double atol = 1e-6,
                              double rtol = 1e-5);

}  // namespace kiln::autodiff
