// The constant-folding pass: an effect-free op whose inputs are all constants is run once, at
// compile time, on the eager kernels and replaced by constant nodes; `shape_of` a value whose
// shape is fully known becomes a constant too.
#include <limits>
#include <optional>
#include <vector>

#include "compiler/passes/pass.h"
#include "compiler/passes/rewrite.h"
#include "ops/dispatch.h"

namespace kiln::ir {
namespace {

// Larger results stay ops: a folded constant lives in the graph (and in every compiled copy of it)
// for as long as the function does.
constexpr int64_t kMaxFoldedElements = int64_t{1} << 16;

bool small_enough(const Node& n) {
  int64_t total = 0;
  for (auto& o : n.outputs) {
    const TensorType& t = o->type;
    if (t.dtype == DType::String || !t.shape.is_fully_defined()) return false;
    int64_t count = 1;
    for (int64_t d : t.shape) {
      if (d > kMaxFoldedElements) return false;
      count *= d;  // both factors are at most 2^16: no overflow
      if (count > kMaxFoldedElements) return false;
    }
    total += count;
    if (total > kMaxFoldedElements) return false;
  }
  return true;
}

// shape_of(x) for an x of fully known shape, built directly: x itself need not be a constant.
std::optional<ops::TensorList> fold_shape_of(const Node& n) {
  const Shape& s = n.inputs[0]->type.shape;
  const TensorType& out = n.output(0)->type;
  if (!s.is_fully_defined() || out.shape != Shape{s.rank()}) return std::nullopt;
  Tensor t = Tensor::empty(out.shape, out.dtype);
  if (out.dtype == DType::Int32) {
    auto* p = static_cast<int32_t*>(t.mutable_raw_data());
    for (size_t i = 0; i < size_t(s.rank()); ++i) {
      if (s.dim(i) > std::numeric_limits<int32_t>::max()) return std::nullopt;  // infer rejects it at run time
      p[i] = static_cast<int32_t>(s.dim(i));
    }
  } else if (out.dtype == DType::Int64) {
    auto* p = static_cast<int64_t*>(t.mutable_raw_data());
    for (size_t i = 0; i < size_t(s.rank()); ++i) p[i] = s.dim(i);
  } else {
    return std::nullopt;
  }
  ops::TensorList r;
  r.push_back(std::move(t));
  return r;
}

// Runs `n` on its constant inputs. A failure (a bad index, a division the kernel refuses) is
// not a compile error: it belongs to run time, and only if the node turns out to be needed.
std::optional<ops::TensorList> evaluate(const Node& n) {
  if (!rewrite::is_pure_op(n) || !small_enough(n)) return std::nullopt;
  if (n.is_op(ops::OpId::ShapeOf)) return fold_shape_of(n);
  std::vector<Tensor> inputs;
  inputs.reserve(n.inputs.size());
  for (Value* in : n.inputs) {
    if (!in->producer || in->producer->kind != NodeKind::Constant) return std::nullopt;
    inputs.push_back(in->producer->constant);
  }
  try {
    // infer on the concrete inputs gives the kernel exact types; the node's own types must agree
    // so that no user of the folded values sees a different type
    ops::TypeList types = n.def->infer(*n.def, n.attrs, inputs);
    if (types.size() != n.num_outputs()) return std::nullopt;
    for (size_t i = 0; i < types.size(); ++i)
      if (!(types[i] == n.output(i)->type)) return std::nullopt;
    // execute_eager, not ops::apply: a trace may be active on this thread and would capture the op
    ops::TensorList out = ops::execute_eager(*n.def, n.attrs, inputs, types);
    if (out.size() != types.size()) return std::nullopt;
    for (size_t i = 0; i < out.size(); ++i)
      if (!out[i].defined() || out[i].dtype() != types[i].dtype || out[i].shape() != types[i].shape)
        return std::nullopt;
    return out;
  } catch (const std::exception&) {
    return std::nullopt;
  }
}

size_t fold(Graph& g) {
  size_t folded = 0;
  rewrite::Substitution subst;
  std::vector<Node*> replaced;
  // Constants are inserted right before the node they replace, which keeps the order
  // topological; g.nodes is rebuilt because append_constant can only append.
  std::vector<std::unique_ptr<Node>> old = std::move(g.nodes);
  g.nodes.clear();
  std::vector<std::unique_ptr<Node>> rebuilt;
  rebuilt.reserve(old.size());
  for (auto& node : old) {
    Node& n = *node;
    subst.apply(n);
    for (auto& sg : n.subgraphs) folded += fold(*sg);
    if (n.kind == NodeKind::Op) {
      if (auto values = evaluate(n)) {
        for (size_t i = 0; i < values->size(); ++i) {
          Node* c = g.append_constant(std::move((*values)[i]));
          c->loc = n.loc;
          subst.add(n.output(i), c->output(0));
          replaced.push_back(c);  // an output nobody used leaves an unused constant
          rebuilt.push_back(std::move(g.nodes.back()));
          g.nodes.pop_back();
        }
        replaced.push_back(&n);
        ++folded;
      }
    }
    rebuilt.push_back(std::move(node));
  }
  g.nodes = std::move(rebuilt);
  subst.apply_roots(g);
  rewrite::erase_dead(g, replaced);
  return folded;
}

class ConstantFoldingPass final : public Pass {
 public:
  std::string_view name() const override { return "constant-folding"; }
  bool run(Graph& g, const PassContext&) override { return fold(g) > 0; }
};

}  // namespace

std::unique_ptr<Pass> make_constant_folding_pass() { return std::make_unique<ConstantFoldingPass>(); }

}  // namespace kiln::ir
