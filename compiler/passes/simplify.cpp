// The simplify pass: algebraic identities (x*1, x+0, x-0, x/1, -(-x)), transpose of transpose,
// chains of reshape/squeeze/expand_dims, and casts, reshapes and broadcasts to the input's own
// type. A node is replaced by another value only when that value has exactly the node's output
// type: broadcasting against a constant can change a shape or a dtype, and then nothing fires.
// `sum_to_like` with known shapes becomes its input or a reduce_sum (gradients of broadcasts).
#include <vector>

#include "compiler/passes/pass.h"
#include "compiler/passes/rewrite.h"

namespace kiln::ir {
namespace {

using ops::OpId;

// The Op node of kind `id` that produces `v`, or nullptr.
Node* made_by(Value* v, OpId id) {
  Node* p = v->producer;
  return p && p->is_op(id) && rewrite::is_pure_op(*p) ? p : nullptr;
}

// True when `v` is a constant whose every element equals `k` (0 or 1). Bool and string
// constants never count: their + and * are not the arithmetic identities.
bool constant_all(const Value* v, int k) {
  const Node* p = v->producer;
  if (!p || p->kind != NodeKind::Constant) return false;
  const Tensor& t = p->constant;
  if (t.dtype() == DType::Bool || t.dtype() == DType::String) return false;
  return visit_dtype(t.dtype(), "simplify", [&](auto tag) {
    using T = decltype(tag);
    const T* data = static_cast<const T*>(t.raw_data());
    for (int64_t i = 0; i < t.num_elements(); ++i) {
      if constexpr (is_complex_v<T>) {
        if (data[i] != T(typename T::value_type(k))) return false;
      } else if constexpr (std::is_same_v<T, Half> || std::is_same_v<T, BFloat16>) {
        if (static_cast<float>(data[i]) != static_cast<float>(k)) return false;
      } else {
        if (data[i] != static_cast<T>(k)) return false;
      }
    }
    return true;
  });
}

// True when broadcasting a value of shape `x` with a constant of shape `c` gives `x` back for
// every run-time size of x's unknown dims: c's dims are 1 or equal to a known dim of x.
bool broadcast_keeps(const Shape& x, const Shape& c) {
  if (c.rank() > x.rank()) return false;
  const int64_t off = x.rank() - c.rank();
  for (int64_t i = 0; i < c.rank(); ++i) {
    const int64_t cd = c.dim(size_t(i)), xd = x.dim(size_t(i + off));
    if (cd != 1 && (xd < 0 || cd != xd)) return false;
  }
  return true;
}

// Normalized permutation, or empty if `perm` is not one for `rank` (the verifier would have said).
std::vector<int64_t> normalized_perm(const std::vector<int64_t>& perm, int64_t rank) {
  if (int64_t(perm.size()) != rank) return {};
  std::vector<int64_t> p(perm.size());
  std::vector<bool> seen(perm.size(), false);
  for (size_t i = 0; i < perm.size(); ++i) {
    int64_t a = perm[i] < 0 ? perm[i] + rank : perm[i];
    if (a < 0 || a >= rank || seen[size_t(a)]) return {};
    seen[size_t(a)] = true;
    p[i] = a;
  }
  return p;
}

bool is_identity_perm(const std::vector<int64_t>& p) {
  for (size_t i = 0; i < p.size(); ++i)
    if (p[i] != int64_t(i)) return false;
  return true;
}

// reshape(x, shape) returns x unchanged for every run-time value of x's unknown dims.
bool reshape_is_identity(const Shape& x, const std::vector<int64_t>& shape) {
  if (int64_t(shape.size()) != x.rank()) return false;
  bool wildcard = false, zero = false;
  for (size_t i = 0; i < shape.size(); ++i) {
    if (shape[i] == -1) {
      wildcard = true;
      continue;
    }
    if (x.dim(i) < 0 || shape[i] != x.dim(i)) return false;  // an unknown dim must meet the -1
    zero |= shape[i] == 0;
  }
  // with a zero among the known dims the -1 is ambiguous and reshape refuses it at run time
  return !(wildcard && zero);
}

// reshape(x, shape) cannot fail at run time, whatever x's unknown dims are: shape has a -1 and
// its other dims divide the product of x's known dims.
bool reshape_always_succeeds(const Shape& x, const std::vector<int64_t>& shape) {
  int64_t wanted = 1, have = 1;
  bool wildcard = false;
  for (int64_t d : shape) {
    if (d == -1)
      wildcard = true;
    else if (d < 0 || __builtin_mul_overflow(wanted, d, &wanted))
      return false;
  }
  if (!wildcard || wanted == 0) return false;
  for (int64_t d : x)
    if (d >= 0 && __builtin_mul_overflow(have, d, &have)) return false;
  return have % wanted == 0;
}

bool is_view_op(const Node* n) {
  return n && (n->is_op(OpId::Reshape) || n->is_op(OpId::Squeeze) || n->is_op(OpId::ExpandDims)) &&
         rewrite::is_pure_op(*n);
}

class Simplifier {
 public:
  explicit Simplifier(Graph& g) : g_(g) {}

  size_t run() {
    for (auto& node : g_.nodes) {
      Node& n = *node;
      subst_.apply(n);
      for (auto& sg : n.subgraphs) changes_ += Simplifier(*sg).run();
      if (n.kind == NodeKind::Op && rewrite::is_pure_op(n) && n.num_outputs() == 1) visit(n);
    }
    subst_.apply_roots(g_);
    rewrite::erase_dead(g_, touched_);
    return changes_;
  }

 private:
  const TensorType& type(const Node& n) const { return n.output(0)->type; }

  // Uses of n's value become uses of x, which must have exactly n's type.
  bool replace(Node& n, Value* x) {
    if (!(x->type == type(n))) return false;
    subst_.add(n.output(0), x);
    touched_.push_back(&n);
    ++changes_;
    return true;
  }
  // n reads x instead of its first input (whose producer may now be dead).
  void rewire(Node& n, Value* x) {
    if (Node* old = n.inputs[0]->producer) touched_.push_back(old);
    n.inputs[0] = x;
    ++changes_;
  }

  void visit(Node& n) {
    switch (n.def->id) {
      case OpId::Add:
        binary_identity(n, 0, true);
        break;
      case OpId::Subtract:
        binary_identity(n, 0, false);
        break;
      case OpId::Multiply:
        binary_identity(n, 1, true);
        break;
      case OpId::Divide:
        binary_identity(n, 1, false);
        break;
      case OpId::Negative:
        if (Node* inner = made_by(n.inputs[0], OpId::Negative)) replace(n, inner->inputs[0]);
        break;
      case OpId::Transpose:
        transpose(n);
        break;
      case OpId::Reshape:
      case OpId::Squeeze:
      case OpId::ExpandDims:
        view(n);
        break;
      case OpId::SumToLike:
        sum_to_like(n);
        break;
      case OpId::BroadcastTo:
      case OpId::Cast:
        // to the input's own type they copy, and a copy of an immutable tensor is the tensor (a
        // broadcast's type is fully known, a cast keeps the shape: equal types mean equal shapes)
        replace(n, n.inputs[0]);
        break;
      default:
        break;
    }
  }

  // sum_to_like(x, like) with both shapes known: x itself when they are equal; otherwise a
  // reduce_sum over the leading axes (or over the axes where like has 1), which backends compile
  // like any reduction and which no longer reads `like`. Mixed cases (leading axes and size-1
  // axes both) stay.
  void sum_to_like(Node& n) {
    Value* x = n.inputs[0];
    const Shape& xs = x->type.shape;
    const Shape& ls = type(n).shape;
    if (!xs.is_fully_defined() || !ls.is_fully_defined()) return;
    if (replace(n, x)) return;
    const int64_t lead = xs.rank() - ls.rank();
    std::vector<int64_t> inner;
    for (int64_t i = lead; i < xs.rank(); ++i)
      if (ls.dim(size_t(i - lead)) == 1 && xs.dim(size_t(i)) != 1) inner.push_back(i);
    if (lead > 0 && !inner.empty()) return;
    std::vector<int64_t> axes = inner;
    for (int64_t i = 0; i < lead; ++i) axes.push_back(i);
    if (axes.empty()) return;  // only size-1 dims differ: a reshape, left to the kernel
    if (Node* old = n.inputs[1]->producer) touched_.push_back(old);
    n.inputs.resize(1);
    n.def = &ops::op_def(OpId::ReduceSum);
    n.attrs = ops::Attrs{};
    n.attrs.set("axes", axes);
    n.attrs.set("keepdims", lead == 0);
    ++changes_;
  }

  // x op k -> x (and k op x -> x when `commutes`), for a constant k of all `unit`s.
  void binary_identity(Node& n, int unit, bool commutes) {
    Value *a = n.inputs[0], *b = n.inputs[1];
    if (constant_all(b, unit) && broadcast_keeps(a->type.shape, b->type.shape) && replace(n, a)) return;
    if (commutes && constant_all(a, unit) && broadcast_keeps(b->type.shape, a->type.shape)) replace(n, b);
  }

  void transpose(Node& n) {
    Value* x = n.inputs[0];
    std::vector<int64_t> p = normalized_perm(n.attrs.get_ints("perm"), x->type.shape.rank());
    if (p.empty() && x->type.shape.rank() != 0) return;
    if (is_identity_perm(p)) {
      replace(n, x);
      return;
    }
    Node* inner = made_by(x, OpId::Transpose);
    if (!inner) return;
    Value* y = inner->inputs[0];
    std::vector<int64_t> q = normalized_perm(inner->attrs.get_ints("perm"), y->type.shape.rank());
    if (q.size() != p.size()) return;
    // transpose(transpose(y, q), p)[i] = y[q[p[i]]]
    std::vector<int64_t> composed(p.size());
    for (size_t i = 0; i < p.size(); ++i) composed[i] = q[size_t(p[i])];
    if (is_identity_perm(composed)) {
      replace(n, y);
      return;
    }
    n.attrs.set("perm", composed);
    rewire(n, y);
  }

  // reshape, squeeze and expand_dims only relabel the dims of the same elements in the same order.
  void view(Node& n) {
    Value* x = n.inputs[0];
    const Shape& xs = x->type.shape;
    const TensorType& out = type(n);
    if (xs.is_fully_defined() && out.shape.is_fully_defined()) {
      if (replace(n, x)) return;
    } else if (n.is_op(OpId::Reshape) && reshape_is_identity(xs, n.attrs.get_ints("shape"))) {
      if (replace(n, x)) return;
    }
    Node* inner = x->producer;
    if (!is_view_op(inner)) return;
    Value* y = inner->inputs[0];
    const Shape& ys = y->type.shape;
    if (ys.is_fully_defined() && out.shape.is_fully_defined()) {
      // any chain of views over a known shape is one reshape (or nothing)
      if (replace(n, y)) return;
      if (!n.is_op(OpId::Reshape)) {
        n.def = &ops::op_def(OpId::Reshape);
        n.attrs = ops::Attrs{};
      }
      n.attrs.set("shape", out.shape.as_list());
      rewire(n, y);
      return;
    }
    if (n.is_op(OpId::Reshape) && inner->is_op(OpId::Reshape) &&
        reshape_always_succeeds(ys, inner->attrs.get_ints("shape"))) {
      // reshape(reshape(y, s1), s2) -> reshape(y, s2): same elements, and the first cannot fail
      rewire(n, y);
      return;
    }
    if (n.is_op(OpId::Squeeze) && inner->is_op(OpId::ExpandDims)) {
      // squeeze(expand_dims(y, a), [a]) -> y
      const auto& axes = n.attrs.get_ints("axes");
      const int64_t r = ys.rank() + 1;
      int64_t a = inner->attrs.get_int("axis");
      a = a < 0 ? a + r : a;
      if (axes.size() == 1 && (axes[0] < 0 ? axes[0] + r : axes[0]) == a) replace(n, y);
      return;
    }
    if (n.is_op(OpId::ExpandDims) && inner->is_op(OpId::Squeeze)) {
      // expand_dims(squeeze(y, [a]), a) -> y when y's dim a is known to be 1 (an unknown dim
      // could fail the squeeze at run time, and that error must stay)
      const auto& axes = inner->attrs.get_ints("axes");
      const int64_t r = ys.rank();
      if (axes.size() != 1) return;
      const int64_t a = axes[0] < 0 ? axes[0] + r : axes[0];
      int64_t b = n.attrs.get_int("axis");
      b = b < 0 ? b + r : b;
      if (a >= 0 && a < r && ys.dim(size_t(a)) == 1 && a == b) replace(n, y);
    }
  }

  Graph& g_;
  rewrite::Substitution subst_;
  std::vector<Node*> touched_;
  size_t changes_ = 0;
};

class SimplifyPass final : public Pass {
 public:
  std::string_view name() const override { return "simplify"; }
  bool run(Graph& g, const PassContext&) override { return Simplifier(g).run() > 0; }
};

}  // namespace

std::unique_ptr<Pass> make_simplify_pass() { return std::make_unique<SimplifyPass>(); }

}  // namespace kiln::ir
