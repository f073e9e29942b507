// The eager-versus-graph benchmark suite behind `kiln bench` and `kiln graph`: each workload
// is one C++ function, run eagerly and as a traced function on the same inputs.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "compiler/trace/function.h"

namespace kiln::tools {

/// One workload: `eager` runs the C++ code, `graph` the traced function on the CPU backend
/// (native code) and `interpreted` on the interpreter backend (after warm-up calls that trace
/// them); `reference`, when set, is the same computation hand-written in plain C++ loops.
/// `concrete` is the native function's concrete function, for printing.
struct Workload {
  std::string name, description;
  std::function<void()> eager, graph, interpreted, reference;
  std::function<ConcreteFunction()> concrete;
  /// Both graphs' outputs equal eager outputs, and the reference's (checked once before timing).
  std::function<bool()> agree;
};

/// The suite: the walkthrough's power(x, 100) on a 10x10 int32 matrix, an elementwise chain,
/// relu(x * a + b) * c on 4M floats, a trivial function (the cost of a cache-hit call), 100
/// chained scalar adds, and an MLP training step.
std::vector<std::shared_ptr<Workload>> make_suite();

}  // namespace kiln::tools
