// The callee of a `call` op: a compiled function that the op layer can run and a tape can
// record as one op (its gradient rule lives in autodiff). compiler/ implements it.
#pragma once

#include <span>
#include <string_view>

#include "ops/op_def.h"

namespace kiln::ops {

/// Something a `call` op runs. Implementations are immutable and thread-safe.
class CallTarget : public RefCounted {
 public:
  /// The function's name, for messages.
  virtual std::string_view name() const = 0;
  /// Checks the inputs and returns the output types (InvalidArgument for inputs that do not fit).
  virtual TypeList output_types(std::span<const Tensor> inputs) const = 0;
  /// Runs the function on concrete inputs.
  virtual TensorList run(std::span<const Tensor> inputs) const = 0;
};

}  // namespace kiln::ops
