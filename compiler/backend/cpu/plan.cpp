// Lowering a static graph to the CPU backend's plan: elementwise chains fuse into loops, views
// alias their inputs' buffers, matmuls and reductions become steps of their own (a large
// matmul takes the loop that only finishes its result as its epilogue), and anything the code
// generator does not handle runs its eager kernel through the context.
#include "compiler/backend/cpu/plan.h"

#include <algorithm>
#include <functional>
#include <sstream>
#include <unordered_map>

#include "compiler/backend/arena.h"
#include "compiler/passes/pass.h"

namespace kiln::backend::cpu {
namespace {

using ops::OpId;
using ops::TensorType;

// `halves`: the 16-bit floats too (LowerOptions::half_floats).
bool native_dtype(DType t, bool halves) {
  switch (t) {
    case DType::Float16:
    case DType::BFloat16:
      return halves;
    case DType::Float32:
    case DType::Float64:
    case DType::Int8:
    case DType::Int16:
    case DType::Int32:
    case DType::Int64:
    case DType::UInt8:
    case DType::UInt16:
    case DType::UInt32:
    case DType::UInt64:
    case DType::Bool:
      return true;
    default:
      return false;
  }
}
bool is_float(DType t, bool halves) {
  return t == DType::Float32 || t == DType::Float64 || (halves && (t == DType::Float16 || t == DType::BFloat16));
}

// What the code generator computes itself; everything else falls back. Integer floordiv and
// mod stay on the eager kernels, which report division by zero as a typed error.
bool native_elementwise(OpId op, DType in, bool halves) {
  if (!native_dtype(in, halves)) return false;
  switch (op) {
    case OpId::Negative:
    case OpId::Abs:
    case OpId::Sign:
    case OpId::Square:
    case OpId::Relu:
    case OpId::Add:
    case OpId::Subtract:
    case OpId::Multiply:
    case OpId::Maximum:
    case OpId::Minimum:
      return in != DType::Bool;
    case OpId::Exp:
    case OpId::Log:
    case OpId::Log1p:
    case OpId::Sqrt:
    case OpId::Rsqrt:
    case OpId::Sin:
    case OpId::Cos:
    case OpId::Tan:
    case OpId::Tanh:
    case OpId::Sigmoid:
    case OpId::Softplus:
    case OpId::Floor:
    case OpId::Ceil:
    case OpId::Round:
    case OpId::FloorDiv:
    case OpId::Mod:
    case OpId::Pow:
      return is_float(in, halves);
    case OpId::Divide:
      return in != DType::Bool;
    case OpId::Equal:
    case OpId::NotEqual:
    case OpId::Less:
    case OpId::LessEqual:
    case OpId::Greater:
    case OpId::GreaterEqual:
      return true;
    case OpId::LogicalNot:
    case OpId::LogicalAnd:
    case OpId::LogicalOr:
    case OpId::LogicalXor:
      return in == DType::Bool;
    default:
      return false;
  }
}

bool is_alias_op(OpId op) {
  return op == OpId::Reshape || op == OpId::ReshapeLike || op == OpId::ExpandDims || op == OpId::Squeeze ||
         op == OpId::StopGradient;
}

bool native_reduce(OpId op, DType t, bool halves) {
  switch (op) {
    case OpId::ReduceSum:
    case OpId::ReduceMax:
    case OpId::ReduceMin:
    case OpId::ReduceProd:
      return native_dtype(t, halves) && t != DType::Bool;
    case OpId::ReduceMean:
      return is_float(t, halves);
    default:
      return false;
  }
}

// Library matmuls with fewer output elements take no epilogue: their result stays in cache, and
// a loop over it costs less than oneDNN's post-ops (docs/performance.md).
constexpr int64_t kEpilogueMinElements = int64_t(1) << 16;

// Row-major element strides of `s` seen from a loop over `dims` (numpy broadcasting: size-1
// and missing leading dims get stride 0).
SmallVector<int64_t, 6> broadcast_strides(const Shape& s, std::span<const int64_t> dims) {
  SmallVector<int64_t, 6> st(dims.size(), 0);
  int64_t acc = 1;
  int64_t r = s.rank(), off = int64_t(dims.size()) - r;
  for (int64_t i = r - 1; i >= 0; --i) {
    int64_t d = s.dim(size_t(i));
    st[size_t(i + off)] = d == 1 ? 0 : acc;
    acc *= d;
  }
  return st;
}

class Lowering {
 public:
  Lowering(const ir::Graph& g, const LowerOptions& options) : g_(g), options_(options) {}

  Plan run() {
    plan_.num_args = g_.inputs.size() + g_.variables.size();
    for (size_t i = 0; i < g_.inputs.size(); ++i) {
      int b = add_buffer(Buffer::Kind::Arg, g_.inputs[i]->type, int64_t(i));
      vals_[g_.inputs[i]] = {b, -1, -1, g_.inputs[i]->type.shape};
    }
    // each variable's current value: the entry value, then whatever the last assign wrote
    for (size_t i = 0; i < g_.variables.size(); ++i)
      var_value_.push_back({add_buffer(Buffer::Kind::Arg, g_.variables[i].type, int64_t(g_.inputs.size() + i)), -1, -1,
                            g_.variables[i].type.shape});
    for (const auto& n : g_.nodes) lower(*n);
    std::vector<int> claimed;  // buffers already an output or an assigned value
    for (auto [slot, b] : plan_.assigns) claimed.push_back(b);
    for (const ir::Value* o : g_.outputs) {
      const Val& v = materialize(o);
      int b = v.buffer;
      if (options_.dedicated_outputs && (plan_.buffers[size_t(b)].kind != Buffer::Kind::Temp ||
                                         std::find(claimed.begin(), claimed.end(), b) != claimed.end())) {
        b = add_buffer(Buffer::Kind::Temp, o->type, -1);
        plan_.steps.push_back(copy_step(v, o->type, b));
      }
      claimed.push_back(b);
      plan_.outputs.push_back({b, v.shape});
    }
    finish();
    return std::move(plan_);
  }

 private:
  // A value: its buffer once materialized, or the open loop step and expression computing it.
  struct Val {
    int buffer = -1;
    int step = -1, expr = -1;
    Shape shape;
  };

  int add_buffer(Buffer::Kind kind, const TensorType& t, int64_t index) {
    plan_.buffers.push_back({kind, t.dtype, t.shape, index});
    return int(plan_.buffers.size() - 1);
  }

  int new_step(Step::Kind kind) {
    plan_.steps.emplace_back();
    plan_.steps.back().kind = kind;
    return int(plan_.steps.size() - 1);
  }

  // The buffer holding `v`, storing it from its loop if it is still only an expression. A
  // stored loop is closed: nothing fuses into it afterwards, so later readers see a finished
  // buffer.
  const Val& materialize(const ir::Value* v) {
    Val& x = vals_.at(v);
    if (x.buffer < 0) {
      LoopStep& loop = plan_.steps[size_t(x.step)].loop;
      x.buffer = add_buffer(Buffer::Kind::Temp, v->type, -1);
      loop.stores.emplace_back(x.expr, x.buffer);
      open_.erase(std::remove(open_.begin(), open_.end(), x.step), open_.end());
    } else if (x.step >= 0) {
      open_.erase(std::remove(open_.begin(), open_.end(), x.step), open_.end());
    }
    return x;
  }

  int add_expr(LoopStep& loop, Expr e) {
    loop.exprs.push_back(std::move(e));
    return int(loop.exprs.size() - 1);
  }

  // An operand of a fused node in `step`: its expression there, or a load of its buffer.
  int operand(int step, const ir::Value* v) {
    auto it = vals_.find(v);
    if (it->second.buffer < 0 && it->second.step == step) return it->second.expr;
    const Val& x = materialize(v);
    LoopStep& loop = plan_.steps[size_t(step)].loop;
    Expr e;
    e.kind = Expr::Kind::Load;
    e.dtype = v->type.dtype;
    e.buffer = x.buffer;
    e.stride = broadcast_strides(x.shape, loop.dims);
    return add_expr(loop, std::move(e));
  }

  // Moves open loop `from` into `into` (a later step): `from` has no readers yet, so running
  // its work at `into`'s place is safe.
  void merge(int from, int into) {
    LoopStep &src = plan_.steps[size_t(from)].loop, &dst = plan_.steps[size_t(into)].loop;
    int base = int(dst.exprs.size());
    for (Expr e : src.exprs) {
      for (int* p : {&e.a, &e.b, &e.c})
        if (*p >= 0) *p += base;
      dst.exprs.push_back(std::move(e));
    }
    for (auto [e, b] : src.stores) dst.stores.emplace_back(e + base, b);
    for (LoopReduce r : src.reduces) {
      r.expr += base;
      dst.reduces.push_back(std::move(r));
    }
    dst.nodes.insert(dst.nodes.end(), src.nodes.begin(), src.nodes.end());
    src = LoopStep{};
    plan_.steps[size_t(from)].kind = Step::Kind::Fallback;  // emptied: dropped in finish()
    for (auto& [val, x] : vals_)
      if (x.step == from) {
        x.step = into;
        if (x.expr >= 0) x.expr += base;
      }
    open_.erase(std::remove(open_.begin(), open_.end(), from), open_.end());
  }

  // The open loop over `dims` that a fused node joins: the loops of its operands with the same
  // iteration space merge into the newest; a new loop starts when there is none.
  int loop_for(const ir::Node& n, const Shape& dims) {
    std::vector<int> cands;
    for (const ir::Value* in : n.inputs) {
      const Val& x = vals_.at(in);
      if (x.buffer < 0 && std::find(open_.begin(), open_.end(), x.step) != open_.end() &&
          plan_.steps[size_t(x.step)].loop.dims.size() == size_t(dims.rank()) &&
          std::equal(dims.dims().begin(), dims.dims().end(), plan_.steps[size_t(x.step)].loop.dims.begin()) &&
          std::find(cands.begin(), cands.end(), x.step) == cands.end())
        cands.push_back(x.step);
    }
    if (cands.empty()) {
      int s = new_step(Step::Kind::Loop);
      for (int64_t d : dims.dims()) plan_.steps[size_t(s)].loop.dims.push_back(d);
      open_.push_back(s);
      return s;
    }
    // the joined loop runs after the node's other operands are computed: it moves to the end
    // (safe: an open loop has no readers yet)
    std::sort(cands.begin(), cands.end());
    if (cands.size() == 1 && cands[0] == int(plan_.steps.size()) - 1) return cands[0];
    int s = new_step(Step::Kind::Loop);
    for (int64_t d : dims.dims()) plan_.steps[size_t(s)].loop.dims.push_back(d);
    for (int c : cands) merge(c, s);
    open_.push_back(s);
    return s;
  }

  void define_expr(const ir::Value* out, int step, int expr) { vals_[out] = {-1, step, expr, out->type.shape}; }

  void lower(const ir::Node& n) {
    switch (n.kind) {
      case ir::NodeKind::Constant: {
        int b = add_buffer(Buffer::Kind::Constant, n.output()->type, int64_t(plan_.constants.size()));
        plan_.constants.push_back(n.constant);
        vals_[n.output()] = {b, -1, -1, n.output()->type.shape};
        return;
      }
      case ir::NodeKind::ReadVariable:
        vals_[n.output()] = var_value_[size_t(n.var)];
        vals_[n.output()].shape = n.output()->type.shape;
        return;
      case ir::NodeKind::AssignVariable: {
        const Val& x = materialize(n.inputs[0]);
        var_value_[size_t(n.var)] = x;
        plan_.assigns.emplace_back(n.var, x.buffer);
        return;
      }
      case ir::NodeKind::Cond:
      case ir::NodeKind::While:
        // branches and bodies that touch variables run on the interpreter's path
        for (const auto& sub : n.subgraphs)
          if (!sub->variables.empty() || sub->io_in) return fallback(n);
        return n.kind == ir::NodeKind::Cond ? lower_cond(n) : lower_while(n);
      case ir::NodeKind::Op:
        break;
    }
    if (n.outputs.size() != 1) return fallback(n);
    OpId op = n.def->id;
    const TensorType& out = n.output()->type;
    DType in0 = n.inputs.empty() ? out.dtype : n.inputs[0]->type.dtype;
    if (is_alias_op(op)) {
      Val x = materialize(n.inputs[0]);
      x.shape = out.shape;
      x.step = -1;
      vals_[n.output()] = x;
      return;
    }
    if (out.shape.num_elements() == 0) return fallback(n);
    const bool halves = options_.half_floats;
    if (native_elementwise(op, in0, halves)) {
      int s = loop_for(n, out.shape);
      SmallVector<int, 2> args;
      for (const ir::Value* in : n.inputs) args.push_back(operand(s, in));
      LoopStep& loop = plan_.steps[size_t(s)].loop;
      Expr e;
      e.kind = n.inputs.size() == 1 ? Expr::Kind::Unary : Expr::Kind::Binary;
      e.op = op;
      e.dtype = out.dtype;
      e.a = args[0];
      if (args.size() > 1) e.b = args[1];
      loop.nodes.push_back(&n);
      define_expr(n.output(), s, add_expr(loop, std::move(e)));
      return;
    }
    if (op == OpId::Cast && native_dtype(in0, halves) && native_dtype(out.dtype, halves)) {
      int s = loop_for(n, out.shape);
      int a = operand(s, n.inputs[0]);
      LoopStep& loop = plan_.steps[size_t(s)].loop;
      Expr e;
      e.kind = Expr::Kind::Cast;
      e.dtype = out.dtype;
      e.a = a;
      loop.nodes.push_back(&n);
      define_expr(n.output(), s, add_expr(loop, std::move(e)));
      return;
    }
    if (op == OpId::Where && native_dtype(out.dtype, halves)) {
      int s = loop_for(n, out.shape);
      int c = operand(s, n.inputs[0]), a = operand(s, n.inputs[1]), b = operand(s, n.inputs[2]);
      LoopStep& loop = plan_.steps[size_t(s)].loop;
      Expr e;
      e.kind = Expr::Kind::Where;
      e.dtype = out.dtype;
      e.a = c;
      e.b = a;
      e.c = b;
      loop.nodes.push_back(&n);
      define_expr(n.output(), s, add_expr(loop, std::move(e)));
      return;
    }
    if ((op == OpId::BroadcastTo || op == OpId::BroadcastLike) && native_dtype(out.dtype, halves)) {
      int s = loop_for(n, out.shape);
      plan_.steps[size_t(s)].loop.nodes.push_back(&n);
      define_expr(n.output(), s, operand(s, n.inputs[0]));
      return;
    }
    if (op == OpId::Transpose && native_dtype(out.dtype, halves)) {
      const Val& x = materialize(n.inputs[0]);
      int s = loop_for(n, out.shape);
      LoopStep& loop = plan_.steps[size_t(s)].loop;
      std::vector<int64_t> perm = n.attrs.get_ints("perm");
      SmallVector<int64_t, 6> in_strides(size_t(x.shape.rank()), 1);
      for (int64_t i = x.shape.rank() - 2; i >= 0; --i)
        in_strides[size_t(i)] = in_strides[size_t(i + 1)] * x.shape.dim(size_t(i + 1));
      Expr e;
      e.kind = Expr::Kind::Load;
      e.dtype = out.dtype;
      e.buffer = x.buffer;
      for (int64_t p : perm) e.stride.push_back(in_strides[size_t(p < 0 ? p + x.shape.rank() : p)]);
      loop.nodes.push_back(&n);
      define_expr(n.output(), s, add_expr(loop, std::move(e)));
      return;
    }
    if (op == OpId::MatMul && native_dtype(out.dtype, halves) && out.dtype != DType::Bool && lower_matmul(n)) return;
    if (native_reduce(op, in0, halves) && ((options_.fuse_reductions && fuse_reduce(n)) || lower_reduce(n))) return;
    fallback(n);
  }

  // Lowers `sub` with its parameters bound to `inputs` into a step list of its own; returns the
  // steps and the materialized outputs' values.
  std::pair<std::vector<Step>, std::vector<Val>> lower_subgraph(const ir::Graph& sub, const std::vector<Val>& inputs) {
    std::vector<Step> outer = std::move(plan_.steps);
    std::vector<int> outer_open = std::move(open_);
    plan_.steps.clear();
    open_.clear();
    for (size_t i = 0; i < sub.inputs.size(); ++i) vals_[sub.inputs[i]] = inputs[i];
    for (const auto& node : sub.nodes) lower(*node);
    std::vector<Val> outs;
    for (const ir::Value* o : sub.outputs) outs.push_back(materialize(o));
    std::vector<Step> steps = std::move(plan_.steps);
    plan_.steps = std::move(outer);
    open_ = std::move(outer_open);
    return {std::move(steps), std::move(outs)};
  }

  // A loop step copying `from` (seen as `t`) into buffer `to`.
  Step copy_step(const Val& from, const TensorType& t, int to) {
    Step s;
    s.kind = Step::Kind::Loop;
    for (int64_t d : t.shape.dims()) s.loop.dims.push_back(d);
    Expr e;
    e.kind = Expr::Kind::Load;
    e.dtype = t.dtype;
    e.buffer = from.buffer;
    e.stride = broadcast_strides(from.shape, s.loop.dims);
    s.loop.exprs.push_back(std::move(e));
    s.loop.stores.emplace_back(0, to);
    return s;
  }

  std::vector<Val> materialized_inputs(const ir::Node& n) {
    std::vector<Val> ins;
    for (const ir::Value* v : n.inputs) ins.push_back(materialize(v));
    return ins;
  }

  void lower_cond(const ir::Node& n) {
    std::vector<Val> ins = materialized_inputs(n);
    Step s;
    s.kind = Step::Kind::Cond;
    s.control.pred = ins[0].buffer;
    std::vector<Val> captures(ins.begin() + 1, ins.end());
    std::vector<int> outs;
    for (const auto& o : n.outputs) outs.push_back(add_buffer(Buffer::Kind::Temp, o->type, -1));
    for (size_t b = 0; b < 2; ++b) {
      auto [steps, results] = lower_subgraph(*n.subgraphs[b], captures);
      for (size_t k = 0; k < outs.size(); ++k) steps.push_back(copy_step(results[k], n.output(k)->type, outs[k]));
      (b == 0 ? s.control.first : s.control.second) = std::move(steps);
    }
    plan_.steps.push_back(std::move(s));
    for (size_t k = 0; k < outs.size(); ++k) vals_[n.output(k)] = {outs[k], -1, -1, n.output(k)->type.shape};
  }

  void lower_while(const ir::Node& n) {
    std::vector<Val> ins = materialized_inputs(n);
    const size_t nvars = n.outputs.size();
    // the loop values live in buffers of their own, which the body overwrites
    std::vector<Val> state = ins;
    for (size_t k = 0; k < nvars; ++k) {
      int b = add_buffer(Buffer::Kind::Temp, n.output(k)->type, -1);
      plan_.steps.push_back(copy_step(ins[k], n.output(k)->type, b));
      state[k] = {b, -1, -1, n.output(k)->type.shape};
    }
    Step s;
    s.kind = Step::Kind::While;
    auto [cond_steps, pred] = lower_subgraph(*n.subgraphs[0], state);
    s.control.first = std::move(cond_steps);
    s.control.pred = pred[0].buffer;
    auto [body, next] = lower_subgraph(*n.subgraphs[1], state);
    // a body result that is itself a loop buffer (a swap) is staged, so no copy reads a buffer
    // another copy of the same iteration has written
    bool staged = false;
    for (size_t k = 0; k < nvars; ++k)
      for (size_t j = 0; j < nvars; ++j) staged |= next[k].buffer == state[j].buffer && j != k;
    for (size_t k = 0; k < nvars; ++k) {
      if (next[k].buffer == state[k].buffer) continue;
      if (staged) {
        int t = add_buffer(Buffer::Kind::Temp, n.output(k)->type, -1);
        body.push_back(copy_step(next[k], n.output(k)->type, t));
        next[k] = {t, -1, -1, n.output(k)->type.shape};
      }
    }
    for (size_t k = 0; k < nvars; ++k)
      if (next[k].buffer != state[k].buffer) body.push_back(copy_step(next[k], n.output(k)->type, state[k].buffer));
    s.control.second = std::move(body);
    plan_.steps.push_back(std::move(s));
    for (size_t k = 0; k < nvars; ++k) vals_[n.output(k)] = state[k];
  }

  bool lower_matmul(const ir::Node& n) {
    const Shape &sa = n.inputs[0]->type.shape, &sb = n.inputs[1]->type.shape, &so = n.output()->type.shape;
    MatMulStep mm;
    mm.ta = n.attrs.get_bool("transpose_a");
    mm.tb = n.attrs.get_bool("transpose_b");
    int64_t ra = sa.rank(), ro = so.rank();
    mm.m = so.dim(size_t(ro - 2));
    mm.n = so.dim(size_t(ro - 1));
    mm.k = mm.ta ? sa.dim(size_t(ra - 2)) : sa.dim(size_t(ra - 1));
    // batches: one matrix per operand broadcast over the batch, or equal batch dims
    Shape batch(std::span<const int64_t>(so.dims().data(), size_t(ro - 2)));
    mm.batch = batch.num_elements();
    auto stride = [&](const Shape& s, int64_t& out) {
      if (s.rank() == 2) return true;
      if (s.rank() != ro) return false;
      for (int64_t i = 0; i < ro - 2; ++i)
        if (s.dim(size_t(i)) != so.dim(size_t(i))) return false;
      out = s.dim(size_t(ro - 1)) * s.dim(size_t(ro - 2));
      return true;
    };
    if (!stride(sa, mm.a_stride) || !stride(sb, mm.b_stride)) return false;
    if (mm.batch > 1 && mm.a_stride != 0 && mm.b_stride == 0 && !mm.ta) {
      // a batch of A's rows against one B (x[b, t, c] · w[c, d]) is one matmul of batch·m rows:
      // A and the result are contiguous
      mm.m *= mm.batch;
      mm.batch = 1;
      mm.a_stride = 0;
    }
    mm.a = materialize(n.inputs[0]).buffer;
    mm.b = materialize(n.inputs[1]).buffer;
    mm.library =
        options_.library_matmul && n.output()->type.dtype == DType::Float32 && mm.m * mm.n * mm.k >= 32 * 32 * 32;
    int s = new_step(Step::Kind::MatMul);
    mm.out = add_buffer(Buffer::Kind::Temp, n.output()->type, -1);
    plan_.steps[size_t(s)].matmul = std::move(mm);
    vals_[n.output()] = {plan_.steps[size_t(s)].matmul.out, -1, -1, so};
    return true;
  }

  // A reduction of a value still open in a loop over the same shape joins that loop, which then
  // closes (its result is complete only after the whole loop ran).
  bool fuse_reduce(const ir::Node& n) {
    const ir::Value* in = n.inputs[0];
    const Val& x = vals_.at(in);
    if (x.buffer >= 0 || std::find(open_.begin(), open_.end(), x.step) == open_.end()) return false;
    LoopStep& loop = plan_.steps[size_t(x.step)].loop;
    const Shape& s = in->type.shape;
    if (loop.dims.size() != size_t(s.rank()) || !std::equal(loop.dims.begin(), loop.dims.end(), s.dims().begin()))
      return false;
    std::vector<bool> reduced(size_t(s.rank()), false);
    for (int64_t a : n.attrs.get_ints("axes")) reduced[size_t(a < 0 ? a + s.rank() : a)] = true;
    if (options_.row_reductions_only) {
      // trailing dims only (a size-1 dim counts either way), as many elements as the loop's
      // other reductions reduce
      int64_t length = 1;
      bool trailing = true;
      for (size_t d = reduced.size(); d-- > 0;) {
        if (reduced[d] && !trailing && s.dim(d) != 1) return false;
        if (!reduced[d] && s.dim(d) != 1) trailing = false;
        if (reduced[d]) length *= s.dim(d);
      }
      if (!loop.reduces.empty() && loop.reduces[0].count != length) return false;
      if (length >= options_.split_length && s.num_elements() / std::max<int64_t>(length, 1) < options_.split_rows)
        return false;
    }
    LoopReduce r;
    r.op = n.def->id;
    r.expr = x.expr;
    r.stride.resize(size_t(s.rank()), 0);
    int64_t acc = 1;
    for (int64_t d = s.rank() - 1; d >= 0; --d) {
      if (reduced[size_t(d)]) {
        r.count *= s.dim(size_t(d));
      } else {
        r.stride[size_t(d)] = acc;
        acc *= s.dim(size_t(d));
      }
    }
    r.buffer = add_buffer(Buffer::Kind::Temp, n.output()->type, -1);
    int step = x.step;
    loop.reduces.push_back(r);
    loop.nodes.push_back(&n);
    open_.erase(std::remove(open_.begin(), open_.end(), step), open_.end());
    vals_[n.output()] = {r.buffer, step, -1, n.output()->type.shape};
    return true;
  }

  bool lower_reduce(const ir::Node& n) {
    const Shape& s = n.inputs[0]->type.shape;
    std::vector<int64_t> axes = n.attrs.get_ints("axes");
    for (int64_t& a : axes)
      if (a < 0) a += s.rank();
    // the reduced axes must be one contiguous run once size-1 axes are ignored
    int64_t first = -1, last = -1;
    for (int64_t a : axes) {
      if (s.dim(size_t(a)) == 1) continue;
      first = first < 0 ? a : std::min(first, a);
      last = std::max(last, a);
    }
    ReduceStep r;
    r.op = n.def->id;
    if (first >= 0) {
      for (int64_t i = first; i <= last; ++i)
        if (s.dim(size_t(i)) != 1 && std::find(axes.begin(), axes.end(), i) == axes.end()) return false;
      for (int64_t i = 0; i < s.rank(); ++i) {
        int64_t d = s.dim(size_t(i));
        (i < first ? r.outer : i <= last ? r.reduced : r.inner) *= d;
      }
    } else {
      r.outer = s.num_elements();
    }
    r.in = materialize(n.inputs[0]).buffer;
    int st = new_step(Step::Kind::Reduce);
    r.out = add_buffer(Buffer::Kind::Temp, n.output()->type, -1);
    plan_.steps[size_t(st)].reduce = r;
    vals_[n.output()] = {r.out, -1, -1, n.output()->type.shape};
    return true;
  }

  void fallback(const ir::Node& n) {
    FallbackStep f;
    f.node = &n;
    for (const ir::Value* in : n.inputs) f.ins.push_back(materialize(in).buffer);
    int s = new_step(Step::Kind::Fallback);
    for (const auto& o : n.outputs) {
      int b = add_buffer(Buffer::Kind::Temp, o->type, -1);
      f.outs.push_back(b);
      vals_[o.get()] = {b, -1, -1, o->type.shape};
    }
    std::string what(n.name());
    if (n.kind == ir::NodeKind::Op && !n.inputs.empty())
      what += " (" + std::string(dtype_name(n.inputs[0]->type.dtype)) + ")";
    plan_.fallbacks.push_back(std::move(what));
    plan_.steps[size_t(s)].fallback = std::move(f);
  }

  // Fuses matmul epilogues, drops emptied loops, collapses loop dims, then assigns every
  // computed buffer a Result slot (it escapes) or an arena offset (planned from its live range
  // over the steps).
  void finish() {
    if (options_.epilogues != LowerOptions::Epilogues::None) {
      count_reads(plan_.steps);
      for (const OutputRef& o : plan_.outputs) ++reads_[o.buffer];
      for (auto [slot, b] : plan_.assigns) ++reads_[b];
      fuse_epilogues(plan_.steps);
    }
    prepare(plan_.steps);

    size_t nb = plan_.buffers.size();
    constexpr size_t kNone = ~size_t(0);
    std::vector<size_t> begin(nb, kNone), end(nb, 0);
    // every buffer a control step's branches or body touch is live for the whole step
    std::function<void(const std::vector<Step>&, size_t)> touch_steps = [&](const std::vector<Step>& list, size_t k) {
      for (size_t i = 0; i < list.size(); ++i) {
        const Step& s = list[i];
        size_t at = &list == &plan_.steps ? i : k;
        auto here = [&](int b) {
          if (begin[size_t(b)] == kNone) begin[size_t(b)] = at;
          end[size_t(b)] = std::max(end[size_t(b)], at);
        };
        switch (s.kind) {
          case Step::Kind::Loop:
            for (const Expr& e : s.loop.exprs)
              if (e.kind == Expr::Kind::Load) here(e.buffer);
            for (auto [e, b] : s.loop.stores) here(b);
            for (const LoopReduce& r : s.loop.reduces) here(r.buffer);
            break;
          case Step::Kind::MatMul:
            for (int b : {s.matmul.a, s.matmul.b, s.matmul.out}) here(b);
            for (const PostOp& p : s.matmul.epilogue)
              if (p.buffer >= 0) here(p.buffer);
            break;
          case Step::Kind::Reduce:
            for (int b : {s.reduce.in, s.reduce.out}) here(b);
            break;
          case Step::Kind::Fallback:
            for (int b : s.fallback.ins) here(b);
            for (int b : s.fallback.outs) here(b);
            break;
          case Step::Kind::Cond:
          case Step::Kind::While:
            here(s.control.pred);
            touch_steps(s.control.first, at);
            touch_steps(s.control.second, at);
            break;
        }
      }
    };
    touch_steps(plan_.steps, 0);
    // results: the outputs in order, then assigned values in assignment order (the raw entry
    // ABI of ahead-of-time objects documents this order)
    auto to_result = [&](int b) {
      Buffer& buf = plan_.buffers[size_t(b)];
      if (buf.kind != Buffer::Kind::Temp) return;
      buf.kind = Buffer::Kind::Result;
      buf.index = int64_t(plan_.num_results++);
    };
    for (const OutputRef& o : plan_.outputs) to_result(o.buffer);
    for (auto [slot, b] : plan_.assigns) to_result(b);
    std::vector<ArenaBlock> blocks;
    std::vector<int> owner;
    for (size_t b = 0; b < nb; ++b) {
      Buffer& buf = plan_.buffers[b];
      if (buf.kind != Buffer::Kind::Temp) continue;
      if (begin[b] != kNone) {
        blocks.push_back({buf.bytes(), begin[b], end[b]});
        owner.push_back(int(b));
      } else {
        buf.index = 0;  // never touched (an output of a step nobody reads): any place will do
      }
    }
    plan_.arena_bytes = plan_arena(blocks);
    for (size_t i = 0; i < blocks.size(); ++i) plan_.buffers[size_t(owner[i])].index = int64_t(blocks[i].offset);
  }

  // How often each buffer is read: loads, step inputs, control predicates (nested lists too).
  void count_reads(const std::vector<Step>& list) {
    for (const Step& s : list) {
      switch (s.kind) {
        case Step::Kind::Loop:
          for (const Expr& e : s.loop.exprs)
            if (e.kind == Expr::Kind::Load) ++reads_[e.buffer];
          break;
        case Step::Kind::MatMul:
          ++reads_[s.matmul.a];
          ++reads_[s.matmul.b];
          break;
        case Step::Kind::Reduce:
          ++reads_[s.reduce.in];
          break;
        case Step::Kind::Fallback:
          for (int b : s.fallback.ins) ++reads_[b];
          break;
        case Step::Kind::Cond:
        case Step::Kind::While:
          ++reads_[s.control.pred];
          count_reads(s.control.first);
          count_reads(s.control.second);
          break;
      }
    }
  }

  // A library matmul whose result only one loop of the same list reads, where that loop does
  // nothing but finish the result with post-ops (PostOp) and store it once, takes the loop as
  // its epilogue: the matmul moves to the loop's place (safe: the steps between neither read its
  // result nor write anything but buffers of their own) and writes the loop's buffer. A loop
  // that does more (other nodes, reductions, more stores) stays, as then fusing would save no
  // pass over the result.
  void fuse_epilogues(std::vector<Step>& list) {
    for (size_t i = 0; i < list.size(); ++i) {
      if (list[i].kind == Step::Kind::Cond || list[i].kind == Step::Kind::While) {
        fuse_epilogues(list[i].control.first);
        fuse_epilogues(list[i].control.second);
      }
      const MatMulStep& mm = list[i].matmul;
      if (list[i].kind != Step::Kind::MatMul || reads_[mm.out] != 1) continue;
      if (options_.epilogues == LowerOptions::Epilogues::OneDnn
              ? !mm.library || mm.batch * mm.m * mm.n < kEpilogueMinElements
              : plan_.buffers[size_t(mm.out)].dtype != DType::Float32)
        continue;
      for (size_t j = i + 1; j < list.size(); ++j) {
        if (list[j].kind != Step::Kind::Loop || !as_epilogue(list[i].matmul, list[j].loop)) continue;
        Step fused = std::move(list[i]);
        fused.matmul.out = list[j].loop.stores[0].second;
        fused.matmul.epilogue_nodes = std::move(list[j].loop.nodes);
        list[j] = std::move(fused);
        list[i] = Step{};
        list[i].kind = Step::Kind::Fallback;  // emptied: dropped by prepare()
        break;
      }
    }
  }

  // Fills mm.epilogue when `loop` is a chain of post-ops from one load of mm's result to its
  // one store: relu, tanh, sigmoid, an add of a row ([n]) or of a tensor of the result's shape,
  // a subtraction from such a tensor (Affine only), a multiply by a scalar constant; every other
  // load feeds one of those adds, subtractions or multiplies.
  bool as_epilogue(MatMulStep& mm, const LoopStep& loop) const {
    const Buffer& out = plan_.buffers[size_t(mm.out)];
    if (loop.stores.size() != 1 || !loop.reduces.empty() || loop.nodes.empty() ||
        !std::equal(loop.dims.begin(), loop.dims.end(), out.shape.dims().begin(), out.shape.dims().end()))
      return false;
    const SmallVector<int64_t, 6> whole = broadcast_strides(out.shape, loop.dims);
    SmallVector<int64_t, 6> row(loop.dims.size(), 0);
    row.back() = loop.dims.back() == 1 ? 0 : 1;
    std::vector<PostOp> ops;
    std::vector<int> users(loop.exprs.size(), 0);
    int head = -1;  // the chain's value so far
    for (size_t i = 0; i < loop.exprs.size(); ++i) {
      const Expr& e = loop.exprs[i];
      if (e.dtype != DType::Float32) return false;
      if (e.kind == Expr::Kind::Load) {
        if (e.buffer != mm.out) continue;  // an operand, checked where it is used
        if (head >= 0 || !std::equal(e.stride.begin(), e.stride.end(), whole.begin(), whole.end())) return false;
        head = int(i);
        continue;
      }
      if (head < 0) return false;
      PostOp p;
      if (e.kind == Expr::Kind::Unary && e.a == head) {
        if (e.op == OpId::Relu)
          p.kind = PostOp::Kind::Relu;
        else if (e.op == OpId::Tanh)
          p.kind = PostOp::Kind::Tanh;
        else if (e.op == OpId::Sigmoid)
          p.kind = PostOp::Kind::Sigmoid;
        else
          return false;
      } else if (e.kind == Expr::Kind::Binary && (e.a == head) != (e.b == head)) {
        int other = e.a == head ? e.b : e.a;
        const Expr& x = loop.exprs[size_t(other)];
        if (x.kind != Expr::Kind::Load || x.buffer == mm.out) return false;
        ++users[size_t(other)];
        auto same = [&](std::span<const int64_t> st) {
          return std::equal(x.stride.begin(), x.stride.end(), st.begin());
        };
        const Buffer& xb = plan_.buffers[size_t(x.buffer)];
        if (e.op == OpId::Add && (same(whole) || same(row))) {
          p.kind = same(whole) ? PostOp::Kind::Add : PostOp::Kind::Bias;
          p.buffer = x.buffer;
        } else if (e.op == OpId::Subtract && e.b == head && same(whole) &&
                   options_.epilogues == LowerOptions::Epilogues::Affine) {
          // c - x (an SGD update by a gradient): a scale by -1, then an add (cuBLASLt's beta;
          // the CPU's oneDNN epilogues have not been measured with it)
          ops.push_back({PostOp::Kind::Scale, -1, -1.0f});
          p.kind = PostOp::Kind::Add;
          p.buffer = x.buffer;
        } else if (e.op == OpId::Multiply && xb.kind == Buffer::Kind::Constant && xb.shape.num_elements() == 1) {
          p.kind = PostOp::Kind::Scale;
          p.scale = plan_.constants[size_t(xb.index)].data<float>()[0];
        } else {
          return false;
        }
      } else {
        return false;
      }
      ops.push_back(p);
      head = int(i);
    }
    // each operand load feeds one post-op, and the chain's end is what the loop stores
    for (size_t i = 0; i < loop.exprs.size(); ++i)
      if (loop.exprs[i].kind == Expr::Kind::Load && loop.exprs[i].buffer != mm.out && users[i] != 1) return false;
    if (ops.empty() || loop.stores[0].first != head) return false;
    if (options_.epilogues == LowerOptions::Epilogues::Affine) {
      std::optional<AffineEpilogue> form = affine_epilogue(ops);
      if (!form || (form->bias >= 0 && mm.batch > 1)) return false;
      mm.epilogue = std::move(ops);
      return true;
    }
    // a relu post-op costs a scan of A and B per call (oneDNN's relu drops NaN; the runtime
    // checks none can reach it), which must stay well below the pass over the result it saves
    bool relu = std::any_of(ops.begin(), ops.end(), [](const PostOp& p) { return p.kind == PostOp::Kind::Relu; });
    if (relu && 2 * mm.k * (mm.m + mm.n) > mm.m * mm.n) return false;
    mm.epilogue = std::move(ops);
    return true;
  }

  // Drops emptied loops and collapses loop dims (nested lists too), and numbers the fallbacks.
  void prepare(std::vector<Step>& list) {
    std::vector<Step> kept;
    for (Step& s : list)
      if (s.kind != Step::Kind::Fallback || s.fallback.node) kept.push_back(std::move(s));
    list = std::move(kept);
    for (Step& s : list) {
      if (s.kind == Step::Kind::Loop) collapse(s.loop);
      if (s.kind == Step::Kind::Fallback) {
        s.fallback.id = int(plan_.fallback_steps.size());
        plan_.fallback_steps.push_back(s.fallback);
      }
      if (s.kind == Step::Kind::MatMul && s.matmul.library) {
        s.matmul.id = int(plan_.library_matmuls.size());
        plan_.library_matmuls.push_back(s.matmul);
      }
      if (s.kind == Step::Kind::Cond || s.kind == Step::Kind::While) {
        prepare(s.control.first);
        prepare(s.control.second);
      }
    }
  }

  // Merges loop dims d and d+1 when every access walks them as one (stride[d] equals
  // stride[d+1] * dims[d+1] for each load; stores are contiguous).
  static void collapse(LoopStep& loop) {
    for (size_t d = loop.dims.size(); d-- > 1;) {
      int64_t inner = loop.dims[d];
      bool ok = true;
      for (const Expr& e : loop.exprs)
        if (e.kind == Expr::Kind::Load && e.stride[d - 1] != e.stride[d] * inner) ok = false;
      for (const LoopReduce& r : loop.reduces)
        if (r.stride[d - 1] != r.stride[d] * inner) ok = false;
      if (!ok) continue;
      loop.dims[d - 1] *= inner;
      loop.dims.erase(loop.dims.begin() + std::ptrdiff_t(d));
      for (Expr& e : loop.exprs)
        if (e.kind == Expr::Kind::Load) e.stride.erase(e.stride.begin() + std::ptrdiff_t(d - 1));
      for (LoopReduce& r : loop.reduces) r.stride.erase(r.stride.begin() + std::ptrdiff_t(d - 1));
    }
    if (loop.dims.empty()) {
      loop.dims.push_back(1);
      for (Expr& e : loop.exprs)
        if (e.kind == Expr::Kind::Load) e.stride.push_back(0);
      for (LoopReduce& r : loop.reduces) r.stride.push_back(0);
    }
  }

  const ir::Graph& g_;
  LowerOptions options_;
  Plan plan_;
  std::unordered_map<const ir::Value*, Val> vals_;
  std::vector<Val> var_value_;
  std::vector<int> open_;               // loop steps that later nodes may still join
  std::unordered_map<int, int> reads_;  // buffer -> readers, for epilogue fusion
};

bool static_types(const ir::Graph& g) {
  auto ok = [](const TensorType& t) { return t.shape.is_fully_defined() && t.dtype != DType::String; };
  for (const ir::Value* v : g.inputs)
    if (!ok(v->type)) return false;
  for (const auto& s : g.variables)
    if (!ok(s.type)) return false;
  for (const auto& n : g.nodes) {
    for (const auto& o : n->outputs)
      if (!ok(o->type)) return false;
    for (const auto& sub : n->subgraphs)
      if (!static_types(*sub)) return false;
  }
  return true;
}

}  // namespace

bool is_static(const ir::Graph& g) { return static_types(g); }

std::unique_ptr<ir::Graph> specialize(const ir::Graph& g, std::span<const Shape> shapes) {
  std::unique_ptr<ir::Graph> s = g.clone();
  for (size_t i = 0; i < s->inputs.size() && i < shapes.size(); ++i) s->inputs[i]->type.shape = shapes[i];
  for (auto& n : s->nodes) {
    if (n->kind == ir::NodeKind::Cond || n->kind == ir::NodeKind::While) {
      // subgraph types are fixed by the trace; only static ones are usable as they are
      for (size_t k = 0; k < n->outputs.size(); ++k)
        if (!n->output(k)->type.shape.is_fully_defined()) return nullptr;
      continue;
    }
    if (n->kind != ir::NodeKind::Op) continue;
    std::vector<TensorType> in;
    for (const ir::Value* v : n->inputs) in.push_back(v->type);
    ops::TypeList out = ir::infer_types(*n->def, n->attrs, in);
    for (size_t k = 0; k < n->outputs.size() && k < out.size(); ++k) n->output(k)->type = out[k];
  }
  s->symbols.clear();
  if (!static_types(*s)) return nullptr;
  // with every shape known, the shape arithmetic a symbolic trace recorded (shape_of, slices
  // of it, reshapes by computed shapes) folds to constants instead of running as fallbacks
  bool symbolic = false;
  for (const ir::Value* v : g.inputs) symbolic = symbolic || !v->type.shape.is_fully_defined();
  if (symbolic) ir::default_pipeline().run(*s, ir::PassContext{"specialized"});
  return s;
}

Plan lower(const ir::Graph& g, const LowerOptions& options) { return Lowering(g, options).run(); }

std::optional<RowReduction> row_reduction(const LoopStep& loop) {
  if (loop.reduces.empty()) return std::nullopt;
  const size_t rank = loop.dims.size();
  // the trailing dims every reduction has stride 0 on, the row
  size_t first = rank;
  while (first > 0 && loop.reduces[0].stride[first - 1] == 0) --first;
  RowReduction rr;
  for (size_t d = 0; d < rank; ++d) (d < first ? rr.rows : rr.length) *= loop.dims[d];
  for (const LoopReduce& r : loop.reduces) {
    if (r.count != rr.length) return std::nullopt;
    // the leading dims at their row-major strides: output `row` is element `row`
    int64_t stride = 1;
    for (size_t d = rank; d-- > 0;) {
      if (d >= first) {
        if (r.stride[d] != 0) return std::nullopt;
      } else if (loop.dims[d] != 1) {
        if (r.stride[d] != stride) return std::nullopt;
        stride *= loop.dims[d];
      }
    }
  }
  return rr;
}

std::optional<AffineEpilogue> affine_epilogue(std::span<const PostOp> epilogue) {
  AffineEpilogue f;
  for (const PostOp& p : epilogue) {
    switch (p.kind) {
      case PostOp::Kind::Scale:
        if (f.bias >= 0) return std::nullopt;
        f.alpha *= p.scale;
        f.beta *= p.scale;
        break;
      case PostOp::Kind::Add:
        if (f.add >= 0) return std::nullopt;
        f.add = p.buffer;
        f.beta = 1;
        break;
      case PostOp::Kind::Bias:
        if (f.bias >= 0) return std::nullopt;
        f.bias = p.buffer;
        break;
      default:
        return std::nullopt;
    }
  }
  return f;
}

namespace {

std::string shape_of(std::span<const int64_t> d) {
  std::string s = "[";
  for (size_t i = 0; i < d.size(); ++i) s += (i ? ", " : "") + std::to_string(d[i]);
  return s + "]";
}

void print_steps(std::ostringstream& os, const std::vector<Step>& steps, const std::string& indent) {
  for (const Step& s : steps) {
    if (s.kind != Step::Kind::Cond && s.kind != Step::Kind::While) {
      os << indent << describe(s) << "\n";
      continue;
    }
    os << indent << (s.kind == Step::Kind::Cond ? "cond then:\n" : "while cond:\n");
    print_steps(os, s.control.first, indent + "  ");
    os << indent << (s.kind == Step::Kind::Cond ? "else:\n" : "body:\n");
    print_steps(os, s.control.second, indent + "  ");
  }
}

}  // namespace

std::string describe(const Step& s) {
  std::ostringstream os;
  switch (s.kind) {
    case Step::Kind::Loop:
      os << "loop " << shape_of(s.loop.dims) << " {";
      for (size_t i = 0; i < s.loop.nodes.size(); ++i) os << (i ? ", " : "") << s.loop.nodes[i]->name();
      os << "} stores " << s.loop.stores.size();
      if (!s.loop.reduces.empty()) os << " reduces " << s.loop.reduces.size();
      break;
    case Step::Kind::MatMul:
      os << "matmul " << s.matmul.batch << "x" << s.matmul.m << "x" << s.matmul.n << "x" << s.matmul.k
         << (s.matmul.library ? " library" : " inline");
      if (!s.matmul.epilogue.empty()) {
        static constexpr const char* kNames[] = {"bias", "add", "scale", "relu", "tanh", "sigmoid"};
        os << " {";
        for (size_t i = 0; i < s.matmul.epilogue.size(); ++i)
          os << (i ? ", " : "") << kNames[size_t(s.matmul.epilogue[i].kind)];
        os << "}";
      }
      break;
    case Step::Kind::Reduce:
      os << ops::op_def(s.reduce.op).name << " [" << s.reduce.outer << ", " << s.reduce.reduced << ", "
         << s.reduce.inner << "]";
      break;
    case Step::Kind::Fallback:
      os << "fallback " << s.fallback.node->name();
      break;
    case Step::Kind::Cond:
    case Step::Kind::While:
      os << (s.kind == Step::Kind::Cond ? "cond (" : "while (") << s.control.first.size() << " + "
         << s.control.second.size() << " steps)";
      break;
  }
  return os.str();
}

std::string Plan::to_string() const {
  std::ostringstream os;
  print_steps(os, steps, "");
  return os.str();
}

}  // namespace kiln::backend::cpu
