// The eager-versus-graph benchmark suite behind `kiln bench` and `kiln graph`: each workload
// is one C++ function, run eagerly and as a traced function on the same inputs.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "compiler/trace/function.h"
#include "ops/variable.h"

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

/// power(x, n): n chained matmuls of x starting from the 10x10 identity of x's dtype (the
/// walkthrough's power, on 10x10 matrices).
Tensor power(const Tensor& x, int n);

/// The MLP of the mlp_train_step workload: 784-256-256-10, ReLU, softmax cross-entropy, SGD
/// with learning rate 0.01. Its variables and one batch of inputs (`x`, one-hot labels
/// `onehot`) are created on the current device from fixed seeds, so two models are equal.
struct Mlp {
  std::vector<Variable> params;  // w0, b0, w1, b1, w2, b2
  Tensor x, onehot;

  explicit Mlp(const char* name, int64_t batch = 64);
  /// A copy of `other`'s variable values and inputs on the current device (variables named
  /// `name`/w0 ...).
  Mlp(const Mlp& other, const std::string& name);
  /// One training step on (xb, yb): forward, gradients with a tape, SGD update of `params`;
  /// returns the loss (before the update).
  Tensor step(const Tensor& xb, const Tensor& yb) const;
};

/// The suite: the walkthrough's power(x, 100) on a 10x10 int32 matrix, an elementwise chain,
/// relu(x * a + b) * c on 4M floats, a trivial function (the cost of a cache-hit call), 100
/// chained scalar adds, and an MLP training step.
std::vector<std::shared_ptr<Workload>> make_suite();

}  // namespace kiln::tools
