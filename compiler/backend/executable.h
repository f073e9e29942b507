// Executables: a compiled graph ready to run. Backends (the interpreter today; LLVM and CUDA
// later) produce them; concrete functions hold them by reference count, so evicting a cache
// entry never frees code that another thread is running.
#pragma once

#include <memory>
#include <span>
#include <string_view>

#include "compiler/ir/ir.h"

namespace kiln::backend {

/// A runnable graph. `run` is thread-safe: any number of threads may run one executable.
class Executable : public RefCounted {
 public:
  /// Runs on concrete inputs whose dtypes and shapes the caller has checked against the graph's
  /// parameters (unknown dims may take any size); returns the graph's outputs.
  virtual ops::TensorList run(std::span<const Tensor> inputs) const = 0;
  /// "interpreter", "cpu", "cuda".
  virtual std::string_view backend() const = 0;
  /// Bytes of the planned intermediate arena per call (0 when nothing is planned).
  virtual size_t arena_bytes() const { return 0; }
};

/// The interpreter backend: runs `graph` node by node on the eager kernels, with intermediates
/// of known size placed in one arena per call planned from value lifetimes. `root` keeps the
/// graph (and any subgraphs) alive.
Ref<Executable> make_interpreter(std::shared_ptr<const ir::Graph> root, const ir::Graph& graph);
inline Ref<Executable> make_interpreter(std::shared_ptr<const ir::Graph> graph) {
  const ir::Graph& g = *graph;
  return make_interpreter(std::move(graph), g);
}

}  // namespace kiln::backend
