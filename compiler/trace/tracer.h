// The tracer: a dispatch level that turns the ops a C++ function runs on symbolic tensors into
// nodes of a Graph (DESIGN.md §2, Levels). Used by `function`, cond/while_loop subgraphs and
// graph autodiff.
#pragma once

#include <functional>
#include <memory>
#include <unordered_map>
#include <vector>

#include "compiler/ir/ir.h"
#include "ops/dispatch.h"

namespace kiln::trace {

/// A trace in progress. Construct it, make parameters, enter it with ops::LevelScope, run the
/// C++ code, then `finish` with the results.
class Tracer : public ops::Level {
 public:
  /// What to do with a symbolic tensor of an enclosing trace used in this one: a subgraph
  /// tracer (cond, while) turns it into a capture; a function tracer refuses it.
  enum class OuterTensors { Refuse, Capture };

  Tracer(ir::Graph& graph, std::string function_name, OuterTensors outer = OuterTensors::Refuse);
  ~Tracer() override;

  /// A new graph parameter of type `t`, as a symbolic tensor of this trace.
  Tensor add_parameter(const ir::TensorType& t, std::string name = {});
  /// The graph value a tensor stands for: this trace's symbolic tensors map to their value,
  /// concrete tensors become (memoized) constants, an enclosing trace's tensors become captures
  /// or an error. Throws InvalidArgument for undefined tensors.
  ir::Value* value_of(const Tensor& t);
  /// Sets the graph's outputs and closes the token chains. Call once, after the level is left.
  void finish(std::span<const Tensor> outputs);

  /// For Capture tracers: the enclosing trace's tensors captured so far, in parameter order
  /// after the explicit parameters.
  const std::vector<Tensor>& captures() const { return captures_; }
  /// Called for every variable created while this trace is active (a function refuses
  /// creation on traces after its first).
  std::function<void(VariableImpl&)> on_variable_created;
  /// Where nodes are traced from (copied into each node).
  ir::SourceLoc loc;

  ir::Graph& graph() { return graph_; }
  const std::string& function_name() const { return name_; }

  /// The symbolic tensor for a value of this trace.
  Tensor symbolic(ir::Value* v);

  // ops::Level
  ops::TensorList process(const ops::OpDef& def, const ops::Attrs& attrs, std::span<const Tensor> inputs,
                          const ops::TypeList& types) override;
  Tensor read_variable(VariableImpl& var) override;
  void assign_variable(VariableImpl& var, const Tensor& value) override;
  void variable_created(VariableImpl& var) override;
  bool is_trace() const override { return true; }

 private:
  int slot_of(VariableImpl& var);

  ir::Graph& graph_;
  std::string name_;
  OuterTensors outer_;
  std::unordered_map<const TensorImpl*, std::pair<Tensor, ir::Value*>> constants_;
  std::unordered_map<const TensorImpl*, ir::Value*> captured_;
  std::vector<Tensor> captures_;
  std::unordered_map<const VariableImpl*, int> var_slots_;
  ir::Value* io_ = nullptr;
};

/// The graph value behind a symbolic tensor of an active tracer (nullptr for other tensors).
ir::Value* value_behind(const Tensor& t, uint64_t tracer_id);

}  // namespace kiln::trace
