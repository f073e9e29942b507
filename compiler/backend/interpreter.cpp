// The interpreter backend: a flat step list over value slots, built once per graph. Each step
// calls an eager kernel directly (no dispatch, no inference when shapes are static); values die
// after their last use; intermediates of static size live in one per-call arena whose offsets
// are planned from lifetimes.
#include <algorithm>
#include <cstdlib>
#include <unordered_map>

#include "compiler/backend/arena.h"
#include "compiler/backend/executable.h"
#include "ops/dispatch.h"
#include "ops/variable.h"

namespace kiln::backend {
namespace {

struct Step {
  ir::NodeKind kind{};
  const ir::Node* node = nullptr;
  SmallVector<uint32_t, 4> in;
  SmallVector<uint32_t, 2> out;
  ops::TypeList types;  // output types when all are static
  bool static_types = false;
  SmallVector<int64_t, 2> arena_offset;  // per output; -1: allocated by the kernel
  SmallVector<uint32_t, 4> release;      // slots whose last use is this step
  Ref<Executable> sub[2];                // cond: then/else; while: cond/body
};

class Interpreter final : public Executable {
 public:
  Interpreter(std::shared_ptr<const ir::Graph> root, const ir::Graph& g) : root_(std::move(root)), g_(g) { plan(); }

  std::string_view backend() const override { return "interpreter"; }
  size_t arena_bytes() const override { return arena_bytes_; }

  ops::TensorList run(std::span<const Tensor> inputs) const override {
    SmallVector<Tensor, 32> slots(num_slots_);
    for (size_t i = 0; i < input_slots_.size(); ++i) slots[input_slots_[i]] = inputs[i];
    // on a GPU every op goes through dispatch, which picks the device's kernels; the host
    // arena is for the CPU kernels only
    const bool gpu = runs_on_gpu(inputs);
    Ref<Storage> arena;
    if (arena_bytes_ && !gpu) arena = Storage::allocate(arena_bytes_);
    for (const Step& s : steps_) {
      switch (s.kind) {
        case ir::NodeKind::Op:
          run_op(s, slots, arena, gpu);
          break;
        case ir::NodeKind::Constant:
          slots[s.out[0]] = s.node->constant;
          break;
        case ir::NodeKind::ReadVariable:
          slots[s.out[0]] = variable(s)->value();
          break;
        case ir::NodeKind::AssignVariable:
          assign(s, slots[s.in[0]]);
          break;
        case ir::NodeKind::Cond:
          run_cond(s, slots);
          break;
        case ir::NodeKind::While:
          run_while(s, slots);
          break;
      }
      for (uint32_t r : s.release) slots[r] = Tensor();
    }
    ops::TensorList out;
    for (uint32_t o : output_slots_) out.push_back(slots[o]);
    return out;
  }

 private:
  void run_op(const Step& s, SmallVector<Tensor, 32>& slots, const Ref<Storage>& arena, bool gpu) const {
    const ops::OpDef& def = *s.node->def;
    BorrowedTensors ins;  // the slots keep them alive for the step
    for (uint32_t i : s.in) ins.push_back(slots[i]);
    std::span<const Tensor> in_span = ins.span();
    ops::TypeList dyn;
    const ops::TypeList* types = &s.types;
    if (!s.static_types) {
      dyn = def.infer(def, s.node->attrs, in_span);
      types = &dyn;
    }
    ops::TensorList outs(types->size());
    if (gpu) {
      outs = ops::execute_eager(def, s.node->attrs, in_span, *types);
    } else {
      for (size_t k = 0; k < outs.size(); ++k)
        if (s.arena_offset[k] >= 0) outs[k] = arena_view(arena, size_t(s.arena_offset[k]), (*types)[k]);
      ops::KernelContext ctx{def, s.node->attrs, in_span, *types, outs};
      def.cpu_kernel(ctx);
    }
    for (size_t k = 0; k < s.out.size(); ++k) slots[s.out[k]] = std::move(outs[k]);
  }

  static Tensor arena_view(const Ref<Storage>& arena, size_t offset, const ops::TensorType& t) {
    auto impl = make_ref<TensorImpl>();
    impl->dtype = t.dtype;
    impl->shape = t.shape;
    impl->numel = t.shape.num_elements();
    impl->storage = arena;
    impl->offset = offset;
    return Tensor(std::move(impl));
  }

  std::shared_ptr<VariableImpl> variable(const Step& s) const {
    const ir::VariableSlot& slot = g_.variables[size_t(s.node->var)];
    std::shared_ptr<VariableImpl> v = slot.var.lock();
    if (!v)
      fail<FailedPrecondition>(g_.name, "variable '", slot.name,
                               "' captured by this function no longer exists (it was destroyed after tracing)");
    return v;
  }

  void assign(const Step& s, const Tensor& value) const {
    const ir::VariableSlot& slot = g_.variables[size_t(s.node->var)];
    std::shared_ptr<VariableImpl> v = variable(s);
    if (value.dtype() != v->dtype() || value.shape() != v->shape())
      fail<InvalidArgument>("assign", "variable '", slot.name, "' has dtype ", dtype_name(v->dtype()), " and shape ",
                            v->shape().to_string(), ", cannot assign a value of dtype ", dtype_name(value.dtype()),
                            " and shape ", value.shape().to_string());
    v->write(value);  // copies across devices when the value was computed elsewhere
  }

  void run_cond(const Step& s, SmallVector<Tensor, 32>& slots) const {
    SmallVector<Tensor, 8> args;
    for (uint32_t i : s.in) args.push_back(slots[i]);
    ops::TensorList out = backend::run_cond(*s.sub[0], *s.sub[1], {args.data(), args.size()});
    for (size_t k = 0; k < s.out.size(); ++k) slots[s.out[k]] = std::move(out[k]);
  }

  void run_while(const Step& s, SmallVector<Tensor, 32>& slots) const {
    SmallVector<Tensor, 8> args;
    for (uint32_t i : s.in) args.push_back(slots[i]);
    ops::TensorList out = backend::run_while(*s.sub[0], *s.sub[1], {args.data(), args.size()}, s.out.size());
    for (size_t k = 0; k < s.out.size(); ++k) slots[s.out[k]] = std::move(out[k]);
  }

  void plan();

  std::shared_ptr<const ir::Graph> root_;
  const ir::Graph& g_;
  std::vector<Step> steps_;
  std::vector<uint32_t> input_slots_, output_slots_;
  size_t num_slots_ = 0;
  size_t arena_bytes_ = 0;
};

void Interpreter::plan() {
  std::unordered_map<const ir::Value*, uint32_t> slot;
  auto def_slot = [&](const ir::Value* v) {
    uint32_t s = uint32_t(num_slots_++);
    slot[v] = s;
    return s;
  };
  auto use_slot = [&](const ir::Value* v) {
    auto it = slot.find(v);
    if (it == slot.end()) fail<Internal>("interpreter", "graph '", g_.name, "' uses a value before defining it");
    return it->second;
  };
  for (const ir::Value* in : g_.inputs) input_slots_.push_back(def_slot(in));
  for (const auto& n : g_.nodes) {
    Step s;
    s.kind = n->kind;
    s.node = n.get();
    // inference is skipped only when every input and output shape is known: an op whose output
    // looks known from an unknown input (add of [?] and [3]) must still check the real input
    s.static_types = true;
    for (const ir::Value* v : n->inputs) {
      s.in.push_back(use_slot(v));
      s.static_types &= v->type.shape.is_fully_defined();
    }
    for (const auto& o : n->outputs) {
      s.out.push_back(def_slot(o.get()));
      s.types.push_back(o->type);
      s.static_types &= o->type.shape.is_fully_defined();
    }
    s.arena_offset.resize(s.out.size(), -1);
    for (size_t k = 0; k < n->subgraphs.size() && k < 2; ++k) s.sub[k] = make_interpreter(root_, *n->subgraphs[k]);
    steps_.push_back(std::move(s));
  }
  for (const ir::Value* o : g_.outputs) output_slots_.push_back(use_slot(o));

  // Lifetimes. Outputs of view ops may share their inputs' memory, so they join their inputs'
  // alias group; a group lives until the last use of any member, forever if it reaches an output.
  std::vector<uint32_t> group(num_slots_);
  for (uint32_t i = 0; i < num_slots_; ++i) group[i] = i;
  auto find = [&](uint32_t x) {
    while (group[x] != x) x = group[x] = group[group[x]];
    return x;
  };
  for (const Step& s : steps_)
    if (s.kind == ir::NodeKind::Op && s.node->def->has(ops::kView))
      for (uint32_t o : s.out)
        for (uint32_t i : s.in) group[find(o)] = find(i);
  // last[v]: the step of v's last use; a value nobody uses "dies" at the step defining it
  constexpr size_t kForever = ~size_t(0);
  std::vector<size_t> last(num_slots_, 0), group_end(num_slots_, 0);
  for (size_t k = 0; k < steps_.size(); ++k) {
    for (uint32_t o : steps_[k].out) last[o] = k;
    for (uint32_t i : steps_[k].in) last[i] = k;
  }
  for (uint32_t o : output_slots_) last[o] = kForever;
  for (uint32_t v = 0; v < num_slots_; ++v) group_end[find(v)] = std::max(group_end[find(v)], last[v]);

  // Release each slot after its last use (graph outputs stay).
  for (size_t k = 0; k < steps_.size(); ++k) {
    auto& rel = steps_[k].release;
    auto add = [&](uint32_t v) {
      if (last[v] == k && std::find(rel.begin(), rel.end(), v) == rel.end()) rel.push_back(v);
    };
    for (uint32_t i : steps_[k].in) add(i);
    for (uint32_t o : steps_[k].out) add(o);
  }

  // Arena: only group roots that are outputs of non-view ops with static shapes and never
  // escape through a graph output.
  std::vector<ArenaBlock> blocks;
  std::vector<std::pair<size_t, size_t>> owner;  // (step, output) of each block
  for (size_t k = 0; k < steps_.size(); ++k) {
    const Step& s = steps_[k];
    if (s.kind != ir::NodeKind::Op || !s.static_types || s.node->def->has(ops::kView)) continue;
    for (size_t j = 0; j < s.out.size(); ++j) {
      size_t end = group_end[find(s.out[j])];
      const auto& t = s.types[j];
      if (end == kForever || t.dtype == DType::String) continue;
      size_t bytes = size_t(t.shape.num_elements()) * dtype_size(t.dtype);
      if (bytes == 0) continue;
      blocks.push_back({bytes, k, end});
      owner.emplace_back(k, j);
    }
  }
  arena_bytes_ = plan_arena(blocks);
  for (size_t i = 0; i < blocks.size(); ++i)
    steps_[owner[i].first].arena_offset[owner[i].second] = int64_t(blocks[i].offset);
}

}  // namespace

Tensor view_as(const Tensor& t, const Shape& shape) {
  if (t.shape() == shape) return t;
  auto impl = make_ref<TensorImpl>();
  impl->dtype = t.dtype();
  impl->shape = shape;
  impl->numel = t.num_elements();
  impl->storage = t.impl()->storage;
  impl->offset = t.impl()->offset;
  impl->device = t.device();  // a GPU buffer's view stays a GPU tensor
  return Tensor(std::move(impl));
}

bool runs_on_gpu(std::span<const Tensor> inputs) {
  if (in_device_scope()) return current_device().type == DeviceType::GPU;
  for (const Tensor& t : inputs)
    if (t.defined() && t.device().type == DeviceType::GPU) return true;
  return false;
}

ops::TensorList run_cond(const Executable& then_graph, const Executable& else_graph, std::span<const Tensor> inputs) {
  const Tensor& pred = inputs[0];
  if (pred.num_elements() != 1)
    fail<InvalidArgument>("cond", "the predicate must have one element, got shape ", pred.shape().to_string());
  bool p = pred.dtype() == DType::Bool ? pred.to(kCPU).item<bool>() : false;
  return (p ? then_graph : else_graph).run(inputs.subspan(1));
}

ops::TensorList run_while(const Executable& cond, const Executable& body, std::span<const Tensor> inputs,
                          size_t num_loop_vars) {
  std::vector<Tensor> args(inputs.begin(), inputs.end());
  for (;;) {
    Tensor c = cond.run(args)[0];
    if (!c.to(kCPU).item<bool>()) break;
    ops::TensorList next = body.run(args);
    for (size_t k = 0; k < num_loop_vars; ++k) args[k] = std::move(next[k]);
  }
  ops::TensorList out;
  for (size_t k = 0; k < num_loop_vars; ++k) out.push_back(std::move(args[k]));
  return out;
}

#ifndef KILN_WITH_LLVM
Ref<Executable> make_cpu(std::shared_ptr<const ir::Graph> root, const ir::Graph& graph) {
  return make_interpreter(std::move(root), graph);  // built without LLVM
}
#endif

BackendKind default_backend() {
  static const BackendKind kind = [] {
    const char* env = std::getenv("KILN_BACKEND");
    std::string_view v = env ? env : "";
    if (v.empty() || v == "cpu") return BackendKind::Cpu;
    if (v == "interpreter") return BackendKind::Interpreter;
    fail<InvalidArgument>("KILN_BACKEND", "unknown backend '", v, "' (expected cpu or interpreter)");
  }();
  return kind;
}

Ref<Executable> make_executable(std::shared_ptr<const ir::Graph> root, const ir::Graph& graph, BackendKind kind) {
  if (kind == BackendKind::Interpreter) return make_interpreter(std::move(root), graph);
  return with_gpu(make_cpu(root, graph), root, graph);
}

Ref<Executable> make_interpreter(std::shared_ptr<const ir::Graph> root, const ir::Graph& graph) {
  return make_ref<Interpreter>(std::move(root), graph);
}

}  // namespace kiln::backend
