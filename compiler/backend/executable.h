// Executables: a compiled graph ready to run. Backends (the interpreter, the CPU backend with
// LLVM, the CUDA backend with NVRTC) produce them; concrete functions hold them by reference
// count, so evicting a cache entry never frees code that another thread is running.
#pragma once

#include <memory>
#include <span>
#include <string>
#include <string_view>

#include "compiler/ir/ir.h"

namespace kiln::backend {

/// What building an executable cost and produced (zeros for the interpreter).
struct BackendStats {
  /// Lowering to a plan; LLVM IR generation, O3 and object emission; linking into the process
  /// (microseconds).
  double lower_us = 0, codegen_us = 0, load_us = 0;
  /// Where the object code came from: "compiled", "memory" or "disk" (the caches); "none" for
  /// a CUDA program without kernels of its own. The CUDA backend's codegen_us is NVRTC's.
  std::string code_source;
  /// Plan steps; fused loops and the nodes in them; nodes run by eager kernels.
  size_t steps = 0, loops = 0, fused_nodes = 0, fallbacks = 0;
  /// The CUDA backend's launches per call: "block" (the whole plan as one single-block
  /// kernel), "graph" (a kernel per step, captured into a CUDA graph on the second call and
  /// replayed), "stream" (a kernel per step, queued one by one: plans with eager fallbacks or
  /// control flow). Empty for the other backends.
  std::string gpu_launch;
};

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
  /// Build statistics (the first compiled shape for graphs specialized per shape).
  virtual BackendStats stats() const { return {}; }
};

/// The interpreter backend: runs `graph` node by node on the eager kernels, with intermediates
/// of known size placed in one arena per call planned from value lifetimes. `root` keeps the
/// graph (and any subgraphs) alive.
Ref<Executable> make_interpreter(std::shared_ptr<const ir::Graph> root, const ir::Graph& graph);
inline Ref<Executable> make_interpreter(std::shared_ptr<const ir::Graph> graph) {
  const ir::Graph& g = *graph;
  return make_interpreter(std::move(graph), g);
}

/// The CPU backend: `graph` compiled to native code with LLVM (compiler/backend/cpu/). A graph
/// with unknown dims gets one compiled specialization per input shape it runs with (up to 8;
/// later shapes, and graphs whose shapes depend on values, run on the interpreter, logged).
/// Nodes the code generator does not handle run their eager kernels from the native code,
/// listed in the log at info level. Falls back to the interpreter (with a warning) if code
/// generation fails.
Ref<Executable> make_cpu(std::shared_ptr<const ir::Graph> root, const ir::Graph& graph);

/// The CUDA backend (compiler/backend/cuda/): for each GPU and input shape a call runs with,
/// the graph specialized, lowered to the CPU backend's plan and generated as one CUDA C
/// program (a kernel per fused loop and per reduction) compiled with NVRTC; matmuls go to
/// cuBLAS (float32/float64) or the eager integer kernel, nodes without a kernel run as eager
/// GPU ops, cond/while are driven from the host. Up to 8 specializations; later shapes, graphs
/// whose shapes depend on values and graphs that fail to compile (logged) run node by node
/// through dispatch. Calls that do not run on a GPU run node by node as well.
Ref<Executable> make_cuda(std::shared_ptr<const ir::Graph> root, const ir::Graph& graph);

/// `host` for calls on the CPU; calls that run on a GPU (runs_on_gpu) go to make_cuda's
/// executable, created on the first such call, so CPU-only use never touches CUDA. Builds
/// without CUDA get `host` itself. stats(), backend() and arena_bytes() are `host`'s.
Ref<Executable> with_gpu(Ref<Executable> host, std::shared_ptr<const ir::Graph> root, const ir::Graph& graph);

/// Which backend runs traced functions. Cpu: the compiled backends, native CPU code for calls
/// on the CPU and generated CUDA kernels for calls on a GPU. Interpreter: node by node on the
/// eager kernels of the call's device.
enum class BackendKind { Cpu, Interpreter };

/// The process default: KILN_BACKEND=interpreter or cpu, else the CPU backend. Throws
/// InvalidArgument for another value.
BackendKind default_backend();

/// Makes an executable for `graph` on `kind` (Cpu: make_cpu with_gpu).
Ref<Executable> make_executable(std::shared_ptr<const ir::Graph> root, const ir::Graph& graph,
                                BackendKind kind = default_backend());

/// `t`'s elements seen with `shape` (same element count), sharing its storage and device:
/// how backends hand out planned buffers as outputs of the graph's declared shapes.
Tensor view_as(const Tensor& t, const Shape& shape);

/// Whether a call with these inputs runs on a GPU: inside a GPU device scope, or outside any
/// scope with an input on a GPU (the placement rule of eager ops). Such calls run on the CUDA
/// backend (BackendKind::Cpu) or node by node on the GPU's eager kernels (the interpreter).
bool runs_on_gpu(std::span<const Tensor> inputs);
/// Runs a cond node: inputs = {pred, captures...}; runs `then_graph` or `else_graph` on the
/// captures. Throws InvalidArgument for a predicate that is not one element.
ops::TensorList run_cond(const Executable& then_graph, const Executable& else_graph, std::span<const Tensor> inputs);

/// Runs a while node: inputs = {loop vars..., captures...}; `cond` and `body` take them all;
/// body returns the next loop vars. Returns the final loop vars.
ops::TensorList run_while(const Executable& cond, const Executable& body, std::span<const Tensor> inputs,
                          size_t num_loop_vars);

}  // namespace kiln::backend
