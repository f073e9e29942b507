// The eager-versus-graph benchmark suite behind `kiln bench` and `kiln graph`: each workload
// is one C++ function, run eagerly and as a traced function on the same inputs.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "compiler/trace/function.h"

namespace kiln::tools {

/// One workload: `eager` runs the C++ code, `graph` the traced function (after a warm-up call
/// that traces it); `concrete` is its concrete function, for printing.
struct Workload {
  std::string name, description;
  std::function<void()> eager, graph;
  std::function<ConcreteFunction()> concrete;
  /// Graph outputs equal eager outputs (checked once before timing).
  std::function<bool()> agree;
};

/// The suite: the walkthrough's power(x, 100) on a 10x10 int32 matrix, an elementwise chain,
/// a trivial function (the cost of a cache-hit call), and an MLP training step.
std::vector<std::shared_ptr<Workload>> make_suite();

}  // namespace kiln::tools
