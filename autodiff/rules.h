// Gradient rules: one function per differentiable primitive, written with Kiln's own ops so the
// same rule runs eagerly on a tape, symbolically under a trace, and again for higher orders.
#pragma once

#include <span>
#include <vector>

#include "ops/op_def.h"

namespace kiln::autodiff {

/// What a gradient rule sees: the op, its attributes, inputs and outputs as recorded, and one
/// upstream gradient per output (zeros for outputs nothing depends on).
struct GradContext {
  const ops::OpDef& def;
  const ops::Attrs& attrs;
  std::span<const Tensor> inputs;
  std::span<const Tensor> outputs;
  std::span<const Tensor> grads;
};

/// Returns one gradient per input; an undefined tensor where an input gets none (integer inputs,
/// condition operands, indices).
using GradFn = std::vector<Tensor> (*)(const GradContext& ctx);

/// The rule for `id`, or nullptr when the registry has none.
GradFn grad_rule(ops::OpId id);

/// For tests only: replaces the rule for `id` with `fn` (nullptr removes it, so the tape throws
/// LookupError for the op) for the object's lifetime, then restores the previous rule. Swapping
/// is atomic, but a backward pass running on another thread meanwhile sees whichever rule is
/// current; overrides of the same op must be destroyed in reverse order of creation.
class ScopedRuleOverride {
 public:
  ScopedRuleOverride(ops::OpId id, GradFn fn);
  ~ScopedRuleOverride();
  ScopedRuleOverride(const ScopedRuleOverride&) = delete;
  ScopedRuleOverride& operator=(const ScopedRuleOverride&) = delete;

 private:
  ops::OpId id_;
  GradFn previous_;
};

/// Ops without the kDifferentiable trait (comparisons, logical ops, argmax, random, shape_of...):
/// the tape does not record them, and gradients through them are None.
bool is_non_differentiable(ops::OpId id);

/// Sums `g` over the axes along which `shape` was broadcast to g's shape, giving `shape`.
Tensor unbroadcast(const Tensor& g, const Shape& shape);
/// unbroadcast to `like`'s shape, also when it is known only at run time (graphs with unknown
/// dims use the sum_to_like op).
Tensor unbroadcast(const Tensor& g, const Tensor& like);

}  // namespace kiln::autodiff
