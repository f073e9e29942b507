// The typed IR: a Graph of Nodes in topological order, each producing typed Values (SSA).
// Values carry a TensorType whose dims are sizes or symbols; variable reads and writes, prints
// and asserts thread effect tokens (DESIGN.md §2 State, §5 IR).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "ops/op_def.h"
#include "runtime/tensor.h"

namespace kiln {
class VariableImpl;
}

namespace kiln::ir {

/// Version of the IR text form; the parser refuses any other.
inline constexpr int kIrVersion = 1;

// Dims in a Value's shape: >= 0 a size, kUnknownDim (-1) an anonymous unknown size, <= -2 the
// graph's symbol number -(d + 2). Symbols are named (Graph::symbols) and shared between dims
// that are known to be equal (two inputs with the same batch dim).
inline constexpr bool is_symbol(int64_t d) { return d <= -2; }
inline constexpr int64_t symbol_dim(size_t index) { return -static_cast<int64_t>(index) - 2; }
inline constexpr size_t symbol_index(int64_t d) { return static_cast<size_t>(-(d + 2)); }

using ops::TensorType;

class Graph;
class Node;

/// An SSA value: one output of a node, a graph parameter, or an effect token.
class Value {
 public:
  TensorType type;
  /// Tokens order effects (variable reads and writes, prints, asserts); they hold no data.
  bool is_token = false;
  /// The node that produces it, or nullptr for graph parameters and incoming tokens.
  Node* producer = nullptr;
  /// Which output of `producer` this is.
  uint32_t index = 0;
  /// Optional name (parameters: the argument name, used by the printer).
  std::string name;
};

/// What a node does. `Op` nodes run a registered primitive; the others are IR constructs.
enum class NodeKind : uint8_t {
  Op,              // a registry op: `op`, `attrs`
  Constant,        // a captured eager tensor: `constant`
  ReadVariable,    // reads graph.variables[var]; effect_in = that variable's token
  AssignVariable,  // writes inputs[0] to graph.variables[var]; effect_in/out = its token
  Cond,            // inputs = {pred, captures...}; subgraphs = {then, else}
  While,           // inputs = {loop vars..., captures...}; subgraphs = {cond, body}
};

/// Where a node was traced (for error messages); empty when unknown (parsed graphs).
struct SourceLoc {
  std::string file;
  uint32_t line = 0;
  bool empty() const { return file.empty(); }
};

/// One operation.
class Node {
 public:
  NodeKind kind = NodeKind::Op;
  const ops::OpDef* def = nullptr;  // Op nodes
  ops::Attrs attrs;                 // Op nodes
  std::vector<Value*> inputs;
  /// The token this node orders after (nullptr: none).
  Value* effect_in = nullptr;
  /// The token this node produces (nullptr: none); owned by `effect_out_storage`.
  Value* effect_out = nullptr;
  std::vector<std::unique_ptr<Value>> outputs;
  std::unique_ptr<Value> effect_out_storage;
  Tensor constant;                                // Constant nodes
  int var = -1;                                   // ReadVariable / AssignVariable
  std::vector<std::unique_ptr<Graph>> subgraphs;  // Cond / While
  SourceLoc loc;

  Value* output(size_t i = 0) const { return outputs[i].get(); }
  size_t num_outputs() const { return outputs.size(); }
  /// The op name as the text form spells it: "matmul", "constant", "read_variable", "cond"...
  std::string_view name() const;
  /// True for nodes that must never be folded, merged or removed while their effect is needed:
  /// variable writes, prints, asserts, random ops.
  bool has_effect() const { return effect_out != nullptr || (def && def->has(ops::kStateful)); }
  bool is_op(ops::OpId id) const { return kind == NodeKind::Op && def->id == id; }
};

/// A variable the graph reads or writes, captured by reference (the graph does not keep it
/// alive; running a graph whose variable is gone is a FailedPrecondition).
struct VariableSlot {
  std::weak_ptr<VariableImpl> var;
  std::string name;
  TensorType type;
  bool trainable = true;
  Value* token_in = nullptr;   // the token at entry
  Value* token_out = nullptr;  // the token after the last write (== token_in when only read)
};

/// A graph: parameters, nodes in topological order, outputs, captured variables and the I/O
/// token chain. Graphs own their nodes and values and are movable, not copyable (use clone()).
class Graph {
 public:
  explicit Graph(std::string name = "graph");
  ~Graph();
  Graph(const Graph&) = delete;
  Graph& operator=(const Graph&) = delete;
  Graph(Graph&&) noexcept;
  Graph& operator=(Graph&&) noexcept;

  std::string name;
  std::vector<Value*> inputs;
  std::vector<Value*> outputs;
  std::vector<VariableSlot> variables;
  Value* io_in = nullptr;   // the I/O token at entry (prints, asserts)
  Value* io_out = nullptr;  // the I/O token after the last print/assert
  std::vector<std::unique_ptr<Node>> nodes;
  std::vector<std::string> symbols;

  /// Adds a parameter (graph input) of type `t`.
  Value* add_input(const TensorType& t, std::string name = {});
  /// Adds a captured variable (token_in/out start as a fresh entry token); returns its index.
  int add_variable(std::weak_ptr<VariableImpl> var, std::string name, const TensorType& t, bool trainable);
  /// The entry I/O token (`io_in`), created on first use.
  Value* io_token();
  /// Returns the symbol dim named `name`, creating it if new.
  int64_t symbol(std::string_view name);
  /// A fresh symbol dim with a generated name ("s0", "s1", ...).
  int64_t new_symbol();

  /// Appends a node and gives it outputs of the given types (tokens are added separately).
  Node* append(NodeKind kind, std::vector<Value*> inputs, const std::vector<TensorType>& output_types);
  /// Appends an Op node for `def`.
  Node* append_op(const ops::OpDef& def, ops::Attrs attrs, std::vector<Value*> inputs,
                  const std::vector<TensorType>& output_types);
  /// Appends a Constant node holding `value` (a concrete tensor).
  Node* append_constant(Tensor value);
  /// Gives `node` a new effect token output, ordered after `in`.
  Value* add_effect(Node* node, Value* in);

  /// Rewrites every use of `from` (node inputs, outputs, subgraph-free uses) to `to`.
  void replace_all_uses(Value* from, Value* to);
  /// Number of uses of each value by nodes, outputs and token chains.
  size_t num_uses(const Value* v) const;
  /// Removes the nodes for which `dead(node)` is true; their outputs must be unused.
  template <class Pred>
  size_t remove_nodes_if(Pred dead) {
    size_t before = nodes.size();
    std::erase_if(nodes, [&](const std::unique_ptr<Node>& n) { return dead(*n); });
    return before - nodes.size();
  }

  /// A deep copy (nodes, values, subgraphs, variable slots).
  std::unique_ptr<Graph> clone() const;
  /// Pointer-free structural hash (ops, attrs, types, wiring, constants); equal graphs hash equal.
  uint64_t structural_hash() const;

  /// The textual form (compiler/ir/printer.cpp).
  std::string to_string() const;

 private:
  std::vector<std::unique_ptr<Value>> owned_;  // parameters and entry tokens
  Value* new_owned(const TensorType& t, bool token);
};

std::ostream& operator<<(std::ostream& os, const Graph& g);

/// Runs `def`'s shape and dtype inference on input types alone (stand-in tensors without data;
/// symbolic dims are passed as unknown). Throws what the op's inference throws.
ops::TypeList infer_types(const ops::OpDef& def, const ops::Attrs& attrs, std::span<const TensorType> in);

/// "f32[2, s0, ?]": the IR spelling of a type, symbols named from `g`.
std::string type_to_string(const TensorType& t, const Graph* g);
/// The short dtype names of the text form: f16, bf16, f32, f64, i8..i64, u8..u64, bool, c64, c128.
std::string_view dtype_short_name(DType d);

}  // namespace kiln::ir
