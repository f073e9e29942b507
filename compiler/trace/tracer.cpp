// The tracing level: ops on symbolic tensors become graph nodes; concrete tensors become
// constants; variable reads and writes become effect-ordered nodes.
#include "compiler/trace/tracer.h"

#include "ops/variable.h"

namespace kiln::trace {
namespace {

// What a symbolic tensor of a trace carries: the graph value it stands for.
class ValueHandle final : public RefCounted {
 public:
  explicit ValueHandle(ir::Value* v) : value(v) {}
  ir::Value* value;
};

}  // namespace

ir::Value* value_behind(const Tensor& t, uint64_t tracer_id) {
  if (!t.defined()) return nullptr;
  TensorImpl* impl = t.impl();
  if (impl->storage || impl->level_id != tracer_id || !impl->level_meta) return nullptr;
  return static_cast<ValueHandle*>(impl->level_meta.get())->value;
}

Tracer::Tracer(ir::Graph& graph, std::string function_name, OuterTensors outer)
    : graph_(graph), name_(std::move(function_name)), outer_(outer) {}

Tracer::~Tracer() = default;

Tensor Tracer::symbolic(ir::Value* v) {
  auto impl = make_ref<TensorImpl>();
  impl->dtype = v->type.dtype;
  impl->shape = v->type.shape;
  impl->numel = v->type.shape.is_fully_defined() ? v->type.shape.num_elements() : kUnknownDim;
  impl->level_id = id();
  impl->level_meta = make_ref<ValueHandle>(v);
  return Tensor(std::move(impl));
}

Tensor Tracer::add_parameter(const ir::TensorType& t, std::string name) {
  return symbolic(graph_.add_input(t, std::move(name)));
}

ir::Value* Tracer::value_of(const Tensor& t) {
  if (!t.defined()) fail<InvalidArgument>(name_, "an undefined tensor (None) cannot be used in a traced function");
  if (ir::Value* v = value_behind(t, id())) return v;
  const TensorImpl* key = t.impl();
  if (t.is_symbolic()) {
    if (outer_ == OuterTensors::Refuse || !ops::level_active(key->level_id))
      fail<InvalidArgument>(name_,
                            "a symbolic tensor from another trace was used here (it leaked from a trace that has "
                            "ended, or belongs to an enclosing function); pass it as an argument instead");
    auto it = captured_.find(key);
    if (it != captured_.end()) return it->second;
    ir::Value* p = graph_.add_input({t.dtype(), t.shape()}, "capture" + std::to_string(captures_.size()));
    captures_.push_back(t);
    captured_.emplace(key, p);
    return p;
  }
  auto it = constants_.find(key);
  if (it != constants_.end()) return it->second.second;
  ir::Node* n = graph_.append_constant(t);
  n->loc = loc;
  constants_.emplace(key, std::make_pair(t, n->output()));
  return n->output();
}

ops::TensorList Tracer::process(const ops::OpDef& def, const ops::Attrs& attrs, std::span<const Tensor> inputs,
                                const ops::TypeList& types) {
  std::vector<ir::Value*> ins;
  ins.reserve(inputs.size());
  for (const Tensor& t : inputs) ins.push_back(value_of(t));
  std::vector<ir::TensorType> out_types(types.begin(), types.end());
  ir::Node* n = graph_.append_op(def, attrs, std::move(ins), out_types);
  n->loc = loc;
  if (def.has(ops::kIO)) {
    if (outer_ == OuterTensors::Capture)
      fail<Unimplemented>(def.name,
                          "prints and asserts inside cond/while_loop branches are not supported yet; move "
                          "them out of the branch");
    if (!io_) io_ = graph_.io_token();
    io_ = graph_.add_effect(n, io_);
  }
  ops::TensorList out;
  for (size_t i = 0; i < n->num_outputs(); ++i) out.push_back(symbolic(n->output(i)));
  return out;
}

int Tracer::slot_of(VariableImpl& var) {
  auto it = var_slots_.find(&var);
  if (it != var_slots_.end()) return it->second;
  int s = graph_.add_variable(var.weak_from_this(), var.name(), {var.dtype(), var.shape()}, var.trainable());
  var_slots_.emplace(&var, s);
  return s;
}

Tensor Tracer::read_variable(VariableImpl& var) {
  if (outer_ == OuterTensors::Capture) {
    // read in the enclosing graph (before the branch runs) and capture the value
    Tensor outer = read_variable_below(var);
    return symbolic(value_of(outer));
  }
  int s = slot_of(var);
  ir::Node* n = graph_.append(ir::NodeKind::ReadVariable, {}, {{var.dtype(), var.shape()}});
  n->var = s;
  n->effect_in = graph_.variables[size_t(s)].token_out;
  n->loc = loc;
  return symbolic(n->output());
}

void Tracer::assign_variable(VariableImpl& var, const Tensor& value) {
  if (outer_ == OuterTensors::Capture)
    fail<Unimplemented>("assign_variable", "assigning variable '", var.name(),
                        "' inside a cond/while_loop branch is not supported yet; compute the new value with cond "
                        "and assign it after");
  ir::Value* v = value_of(value);
  int s = slot_of(var);
  ir::Node* n = graph_.append(ir::NodeKind::AssignVariable, {v}, {});
  n->var = s;
  n->loc = loc;
  auto& slot = graph_.variables[size_t(s)];
  slot.token_out = graph_.add_effect(n, slot.token_out);
}

void Tracer::variable_created(VariableImpl& var) {
  if (on_variable_created) on_variable_created(var);
  ops::Level::variable_created(var);
}

void Tracer::finish(std::span<const Tensor> outputs) {
  for (const Tensor& t : outputs) graph_.outputs.push_back(value_of(t));
  graph_.io_out = io_ ? io_ : graph_.io_in;
}

}  // namespace kiln::trace
