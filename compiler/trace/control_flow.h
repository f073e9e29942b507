// cond and while_loop: control flow that depends on tensor values. Eagerly they run as plain
// C++; under a trace they become `cond`/`while` nodes with traced subgraphs (a tensor has no
// conversion to bool, so `if (x > 0)` on a tensor does not compile).
#pragma once

#include <functional>
#include <span>
#include <vector>

#include "runtime/tensor.h"

namespace kiln {

/// Runs `then_fn` if the bool scalar `pred` is true, else `else_fn`, returning its tensors.
/// Eagerly (or when `pred` is known while tracing) only one branch runs. Under a trace both
/// branches are traced into subgraphs; they must return the same number of tensors with equal
/// dtypes (differing dims become unknown). Throws InvalidArgument for a non-bool or non-scalar
/// predicate or mismatched branches; Unimplemented for prints, asserts or variable writes
/// inside a traced branch, and for gradients through a traced cond.
std::vector<Tensor> cond(const Tensor& pred, const std::function<std::vector<Tensor>()>& then_fn,
                         const std::function<std::vector<Tensor>()>& else_fn);
/// cond with one tensor per branch.
Tensor cond(const Tensor& pred, const std::function<Tensor()>& then_fn, const std::function<Tensor()>& else_fn);

/// Repeats `loop_vars = body(loop_vars)` while `cond_fn(loop_vars)` (a bool scalar) is true and
/// returns the final loop variables. Under a trace it becomes one `while` node whose body keeps
/// each loop variable's dtype and shape (InvalidArgument otherwise).
std::vector<Tensor> while_loop(const std::function<Tensor(std::span<const Tensor>)>& cond_fn,
                               const std::function<std::vector<Tensor>(std::span<const Tensor>)>& body,
                               std::vector<Tensor> loop_vars);

}  // namespace kiln
