// The CPU backend's lowering: a graph whose shapes are all known becomes a Plan — buffers with
// planned arena offsets and a list of steps (fused elementwise loops, matmuls, reductions, and
// fallbacks to eager kernels). The plan holds no LLVM types; codegen.cpp turns it into code.
#pragma once

#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "compiler/ir/ir.h"

namespace kiln::backend::cpu {

/// A dense row-major array the generated code reads or writes.
struct Buffer {
  enum class Kind : uint8_t {
    Arg,       // `args[index]`: graph input `index`, then variable values (inputs.size() + slot)
    Constant,  // `Plan::constants[index]`, embedded in the generated code
    Temp,      // `arena + offset`
    Result,    // `results[index]`: allocated by the caller; the outputs in order, then values
               // assigned to variables in assignment order
  };
  Kind kind = Kind::Temp;
  DType dtype = DType::Float32;
  Shape shape;
  int64_t index = -1;  // Arg, Constant, Result: position; Temp: arena byte offset
  size_t bytes() const { return size_t(shape.num_elements()) * dtype_size(dtype); }
};

/// One node of a fused loop body. Operands are earlier entries of the same step.
struct Expr {
  enum class Kind : uint8_t { Load, Unary, Binary, Where, Cast };
  Kind kind = Kind::Load;
  ops::OpId op{};  // Unary, Binary
  DType dtype{};   // the result's dtype
  int a = -1, b = -1, c = -1;
  int buffer = -1;                 // Load
  SmallVector<int64_t, 6> stride;  // Load: elements per step of each loop dim (0: broadcast)
};

/// A reduction fused into a loop: each element of `expr` combines (`op`: reduce_sum, _mean,
/// _max, _min, _prod) into `buffer` at the offset given by `stride` per loop dim (0 on the
/// reduced dims). The buffer is set to the identity before the loop; a mean is divided by
/// `count` after it.
struct LoopReduce {
  ops::OpId op{};
  int expr = -1, buffer = -1;
  SmallVector<int64_t, 6> stride;
  int64_t count = 1;
};

/// A fused elementwise loop over `dims` (row-major, collapsed where every access allows it),
/// possibly ending in reductions of its values.
struct LoopStep {
  SmallVector<int64_t, 6> dims;
  std::vector<Expr> exprs;
  std::vector<std::pair<int, int>> stores;  // (expr, buffer): contiguous writes
  std::vector<LoopReduce> reduces;
  std::vector<const ir::Node*> nodes;  // the fused nodes, for dumps and logs
};

/// One elementwise operation a library matmul applies to each element x of its result before
/// storing it (a oneDNN post-op); an epilogue applies them in order.
struct PostOp {
  enum class Kind : uint8_t {
    Bias,     // x + buffer[j]: `buffer` holds n elements, broadcast over the rows ([n], [1, n], ...)
    Add,      // x + buffer[i, j]: `buffer` has the result's shape (batch dims included)
    Scale,    // x * scale (a multiply by a float32 scalar constant)
    Relu,     // relu(x)
    Tanh,     // tanh(x)
    Sigmoid,  // sigmoid(x)
  };
  Kind kind = Kind::Bias;
  int buffer = -1;  // Bias, Add
  float scale = 1;  // Scale
};

/// out[i] = op(a[i]) · op(b[i]) for `batch` matrices, a[i] at element i * a_stride (0: one
/// matrix broadcast over the batch), then `epilogue` applied to every element.
struct MatMulStep {
  int a = -1, b = -1, out = -1;
  int64_t batch = 1, m = 0, n = 0, k = 0, a_stride = 0, b_stride = 0;
  bool ta = false, tb = false;
  bool library = false;  // float32 and large: oneDNN, through the context
  /// Library matmuls only: the loop that did nothing but finish the result (bias, residual
  /// add, scale, activation), fused; `out` is then that loop's buffer.
  std::vector<PostOp> epilogue;
  std::vector<const ir::Node*> epilogue_nodes;  // the fused loop's nodes, for logs and stats
  /// Library matmuls: the index in Plan::library_matmuls, which the generated code passes to
  /// the context's matmul.
  int id = -1;
};

/// An epilogue in the form a GEMM library applies itself: alpha·x + beta·C + bias, with C a
/// buffer of the result's shape (`add`, or -1 with beta 0) and `bias` one of n elements
/// broadcast over the rows (or -1). Post-ops are folded in order: a scale multiplies alpha
/// and beta (so it may not follow the bias), an add sets C, the bias comes once.
struct AffineEpilogue {
  float alpha = 1, beta = 0;
  int add = -1, bias = -1;
};
/// `epilogue` in that form, or nothing (an activation, a second add or bias, a scale after the
/// bias).
std::optional<AffineEpilogue> affine_epilogue(std::span<const PostOp> epilogue);

/// A reduction of `in` viewed as [outer, reduced, inner] to `out` viewed as [outer, inner].
struct ReduceStep {
  ops::OpId op{};
  int in = -1, out = -1;
  int64_t outer = 1, reduced = 1, inner = 1;
};

/// An unsupported node run by its eager kernel (or, for cond/while, by its subgraphs). `id`
/// indexes Plan::fallback_steps and is what the generated code passes to the callback.
struct FallbackStep {
  const ir::Node* node = nullptr;
  std::vector<int> ins, outs;
  int id = -1;
};

struct Step;

/// cond: `pred` (a bool scalar buffer) picks `first` (then) or `second` (else); each branch
/// ends by copying its results into the node's output buffers. while: `first` computes `pred`;
/// while it is true, `second` (the body) runs and copies the new loop values into the loop
/// buffers.
struct ControlStep {
  int pred = -1;
  std::vector<Step> first, second;
};

struct Step {
  enum class Kind : uint8_t { Loop, MatMul, Reduce, Fallback, Cond, While };
  Kind kind = Kind::Loop;
  LoopStep loop;
  MatMulStep matmul;
  ReduceStep reduce;
  FallbackStep fallback;
  ControlStep control;
};

/// Where a graph output comes from: a buffer (an Arg, Constant or Result) seen with `shape`.
struct OutputRef {
  int buffer = -1;
  Shape shape;
};

/// A lowered graph.
struct Plan {
  std::vector<Buffer> buffers;
  std::vector<Step> steps;
  std::vector<Tensor> constants;
  std::vector<OutputRef> outputs;
  /// (variable slot, buffer) in assignment order: written back after a successful run.
  std::vector<std::pair<int, int>> assigns;
  size_t num_args = 0, num_results = 0, arena_bytes = 0;
  /// Nodes run by eager kernels, for the log ("matmul (complex64)", ...).
  std::vector<std::string> fallbacks;
  /// Every fallback step (nested ones included), by id.
  std::vector<FallbackStep> fallback_steps;
  /// Every library matmul step (nested ones included), by id.
  std::vector<MatMulStep> library_matmuls;
  /// A readable listing of the steps (fused regions with their ops), for logs and tests.
  std::string to_string() const;
};

/// Returns a copy of `g` with its inputs given the fully defined `shapes` and every type
/// re-inferred, or nullptr when some type stays unknown (an op whose output shape depends on
/// values) or the graph has string values. Throws what inference throws for shapes that do
/// not fit the graph.
std::unique_ptr<ir::Graph> specialize(const ir::Graph& g, std::span<const Shape> shapes);

/// A loop whose reductions all reduce the same trailing dims, each output element from one
/// contiguous row of the loop's elements: `rows` outputs of `length` elements each (the loop's
/// elements are rows x length, row-major). Nothing for a loop without reductions or of another
/// layout.
struct RowReduction {
  int64_t rows = 1, length = 1;
};
std::optional<RowReduction> row_reduction(const LoopStep& loop);

/// One line naming `s` as Plan::to_string prints it ("loop [64, 16] {add, relu} stores 1",
/// "matmul 1x64x16x32 inline {bias}"); a cond or while step with its branches' step counts.
std::string describe(const Step& s);

/// True when every value of `g` (subgraphs included) has a fully defined, non-string type.
bool is_static(const ir::Graph& g);

struct LowerOptions {
  /// Every graph output gets a Result buffer of its own (copied there when it is an input, a
  /// constant, another output or an assigned value), so a caller can pass its own memory for
  /// each output (ahead-of-time entry points do).
  bool dedicated_outputs = false;
  /// Large float32 matmuls call oneDNN through the context; off: every matmul is generated.
  bool library_matmul = true;
  /// Which matmuls take the loop that only finishes their result (post-ops, PostOp, stored
  /// once) as their epilogue, when only that loop reads the result; the others' loops stay.
  enum class Epilogues : uint8_t {
    None,
    /// library matmuls with at least 64K output elements, any chain of post-ops (a relu only
    /// when 2·k·(m + n) <= m·n: the runtime scans A and B per call for NaN, which oneDNN's
    /// relu would drop): oneDNN post-ops
    OneDnn,
    /// float32 matmuls of any size whose chain is alpha·x + beta·C + bias (affine_epilogue;
    /// a bias only without batch dims; C - x as a scale by -1 and an add), no activation:
    /// cuBLASLt's epilogue
    Affine,
  };
  Epilogues epilogues = Epilogues::OneDnn;
  /// A reduction of a value still open in a loop of the same shape joins that loop (LoopReduce,
  /// which accumulates in place: right for one thread per output, not for a GPU's many); off:
  /// it becomes a ReduceStep of its own (or a fallback when its axes are not one run).
  bool fuse_reductions = true;
  /// With fuse_reductions: only reductions over a loop's trailing dims join it, all of one
  /// loop over the same dims (every reduction of the loop then produces one value per row of
  /// `rows x row length` elements: a GPU thread block per row, row_reduction()); others stay
  /// steps of their own.
  bool row_reductions_only = false;
  /// With row_reductions_only: a loop of fewer rows than `split_rows` whose rows have at least
  /// `split_length` elements keeps its reductions as steps (which the CUDA backend spreads over
  /// many blocks instead of one per row); 0: no such limit.
  int64_t split_rows = 0, split_length = 0;
  /// float16 and bfloat16 values join loops, reductions and matmuls like float32 (the CUDA
  /// backend computes them in float, rounding after every op as the eager kernels do); off:
  /// their nodes fall back (the CPU code generator has no 16-bit floats).
  bool half_floats = false;
};

/// Lowers a static graph (is_static) to a plan: fuses elementwise chains, plans the arena,
/// and marks what runs natively and what falls back.
Plan lower(const ir::Graph& g, const LowerOptions& options = {});

}  // namespace kiln::backend::cpu
