// The IR verifier: definitions before uses, op arity, attribute schemas, output types against
// each op's inference, effect-token chains, and cond/while subgraph signatures.
#include "compiler/ir/verifier.h"

#include <climits>
#include <limits>
#include <unordered_map>

#include "compiler/ir/text_detail.h"

namespace kiln::ir {

namespace {

using detail::ValueNames;
using detail::VerifyWhere;

// Which chain a defined value belongs to: data values, the I/O token, or variable i's token.
constexpr int kData = INT_MIN;
constexpr int kIo = -1;

bool compatible(const TensorType& a, const TensorType& b) {
  if (a.dtype != b.dtype || a.shape.rank() != b.shape.rank()) return false;
  for (size_t i = 0; i < size_t(a.shape.rank()); ++i) {
    int64_t x = a.shape.dim(i), y = b.shape.dim(i);
    if (x != y && x >= 0 && y >= 0) return false;
  }
  return true;
}

std::string types_string(const std::vector<TensorType>& ts, const Graph* g) {
  std::string s = "(";
  for (size_t i = 0; i < ts.size(); ++i) s += (i ? ", " : "") + type_to_string(ts[i], g);
  return s + ")";
}

class Verifier {
 public:
  Verifier(const Graph& g, VerifyWhere& where) : g_(g), where_(where), names_(g) {}

  void run() {
    where_ = {&g_, nullptr};
    check_symbols();
    for (const Value* in : g_.inputs) {
      if (!in) fail_graph("a parameter is null");
      if (in->is_token) fail_graph("parameter ", names_.name(in), " is a token");
      if (in->producer) fail_graph("parameter ", names_.name(in), " has a producer node");
      check_type(in->type, [&] { return "parameter " + names_.name(in); });
      define(in, kData, [&] { return "parameter " + names_.name(in); });
    }
    tails_.resize(g_.variables.size());
    for (size_t i = 0; i < g_.variables.size(); ++i) {
      const VariableSlot& s = g_.variables[i];
      check_type(s.type, [&] { return "variable @" + std::to_string(i); });
      if (!s.token_in || !s.token_in->is_token || s.token_in->producer)
        fail_graph("variable @", i, " has no entry token");
      define(s.token_in, static_cast<int>(i), [&] { return "the entry token of variable @" + std::to_string(i); });
      tails_[i] = s.token_in;
    }
    if (g_.io_in) {
      if (!g_.io_in->is_token || g_.io_in->producer) fail_graph("the I/O entry value is not an entry token");
      define(g_.io_in, kIo, [] { return std::string("the I/O entry token"); });
      io_tail_ = g_.io_in;
    } else if (g_.io_out) {
      fail_graph("the graph has a final I/O token but no I/O entry token");
    }

    for (size_t k = 0; k < g_.nodes.size(); ++k) {
      if (!g_.nodes[k]) fail_graph("node #", k, " is null");
      check_node(*g_.nodes[k], k);
    }

    where_ = {&g_, nullptr};
    for (size_t i = 0; i < g_.outputs.size(); ++i) {
      const Value* o = g_.outputs[i];
      if (!o) fail_graph("output ", i, " is null");
      auto it = chain_.find(o);
      if (it == chain_.end()) fail_graph("output ", i, " (", names_.name(o), ") is not defined in this graph");
      if (it->second != kData) fail_graph("output ", i, " (", names_.name(o), ") is an effect token");
    }
    for (size_t i = 0; i < g_.variables.size(); ++i) {
      const Value* t = g_.variables[i].token_out;
      if (t != tails_[i])
        fail_graph("the final token of variable @", i, " is ", names_.name(t), " but its chain ends at ",
                   names_.name(tails_[i]));
    }
    if (g_.io_in && g_.io_out != io_tail_)
      fail_graph("the final I/O token is ", names_.name(g_.io_out), " but the I/O chain ends at ",
                 names_.name(io_tail_));
  }

 private:
  template <class... A>
  [[noreturn]] void fail_graph(A&&... args) {
    fail<InvalidArgument>("ir.verify", "graph '", g_.name, "': ", std::forward<A>(args)...);
  }
  template <class... A>
  [[noreturn]] void fail_node(const Node& n, size_t k, A&&... args) {
    std::string_view op = n.kind == NodeKind::Op && !n.def ? std::string_view("<no-op>") : n.name();
    fail<InvalidArgument>("ir.verify", "graph '", g_.name, "', node ", names_.node_name(n, k), " (", op,
                          "): ", std::forward<A>(args)...);
  }

  void check_symbols() {
    for (size_t i = 0; i < g_.symbols.size(); ++i) {
      if (!detail::is_identifier(g_.symbols[i]))
        fail_graph("symbol ", i, " has the name ", detail::quote(g_.symbols[i]), ", which is not an identifier");
      for (size_t j = 0; j < i; ++j)
        if (g_.symbols[j] == g_.symbols[i]) fail_graph("symbol '", g_.symbols[i], "' is declared twice");
    }
  }

  // True when the product of the known dims overflows int64 (later stages multiply dims freely);
  // a zero dim makes any shape empty.
  static bool overflows(const TensorType& t) {
    for (int64_t d : t.shape)
      if (d == 0) return false;
    int64_t count = 1;
    for (int64_t d : t.shape) {
      if (d < 0) continue;
      if (count > std::numeric_limits<int64_t>::max() / d) return true;
      count *= d;
    }
    return false;
  }

  // Dims are sizes, kUnknownDim or declared symbols, and the known dims' product fits in int64.
  template <class What>
  void check_type(const TensorType& t, What what) {
    for (int64_t d : t.shape)
      if (is_symbol(d) && symbol_index(d) >= g_.symbols.size())
        fail_graph(what(), " has an undeclared symbol dim ", d, " (the graph has ", g_.symbols.size(), " symbols)");
    if (overflows(t)) fail_graph(what(), " has type ", type_to_string(t, &g_), ", whose element count overflows int64");
  }

  template <class What>
  void define(const Value* v, int chain, What what) {
    if (!chain_.emplace(v, chain).second) fail_graph(what(), " is defined twice");
  }

  void check_node(const Node& n, size_t k) {
    where_ = {&g_, &n};
    // Outputs belong to this node, in order.
    for (size_t i = 0; i < n.outputs.size(); ++i) {
      const Value* o = n.outputs[i].get();
      if (!o) fail_node(n, k, "output ", i, " is null");
      if (o->producer != &n || o->index != i) fail_node(n, k, "output ", i, " does not point back to its node");
      if (o->is_token) fail_node(n, k, "output ", i, " is a token (tokens are effect outputs)");
      check_type(o->type, [&] { return "node " + names_.node_name(n, k) + " output " + std::to_string(i); });
    }
    if (n.effect_out && (!n.effect_out->is_token || n.effect_out->producer != &n))
      fail_node(n, k, "its effect output is not a token of this node");
    // Inputs are data values defined earlier in this graph.
    for (size_t i = 0; i < n.inputs.size(); ++i) {
      const Value* v = n.inputs[i];
      if (!v) fail_node(n, k, "input ", i, " is null");
      auto it = chain_.find(v);
      if (it == chain_.end()) {
        if (names_.name(v) == "%?") fail_node(n, k, "input ", i, " is not a value of graph '", g_.name, "'");
        fail_node(n, k, "input ", i, " (", names_.name(v), ") is used before its definition");
      }
      if (it->second != kData) fail_node(n, k, "input ", i, " (", names_.name(v), ") is an effect token");
    }
    int chain = kData;
    if (n.effect_in) {
      auto it = chain_.find(n.effect_in);
      if (it == chain_.end())
        fail_node(n, k, "its effect token ", names_.name(n.effect_in), " is not defined before it in this graph");
      if (it->second == kData) fail_node(n, k, "its effect input ", names_.name(n.effect_in), " is not a token");
      chain = it->second;
    } else if (n.effect_out) {
      fail_node(n, k, "it produces an effect token but orders after none");
    }
    if (n.kind != NodeKind::Op && !n.attrs.empty()) fail_node(n, k, "only op nodes have attributes");
    if (n.kind != NodeKind::Cond && n.kind != NodeKind::While && !n.subgraphs.empty())
      fail_node(n, k, "only cond and while nodes have subgraphs");
    bool is_var_node = n.kind == NodeKind::ReadVariable || n.kind == NodeKind::AssignVariable;
    if (!is_var_node && n.var != -1) fail_node(n, k, "only variable nodes name a variable (var = ", n.var, ")");
    if (is_var_node) check_variable_node(n, k, chain);

    switch (n.kind) {
      case NodeKind::Op:
        check_op(n, k);
        break;
      case NodeKind::Constant:
        check_constant(n, k);
        break;
      case NodeKind::ReadVariable:
      case NodeKind::AssignVariable:
        break;
      case NodeKind::Cond:
        check_cond(n, k);
        break;
      case NodeKind::While:
        check_while(n, k);
        break;
    }

    // Each chain is linear and follows node order: a node orders after the latest token.
    if (n.effect_in) {
      const Value* tail = chain == kIo ? io_tail_ : tails_[size_t(chain)];
      if (n.effect_in != tail)
        fail_node(n, k, "its effect token ", names_.name(n.effect_in), " is not the latest token of ",
                  chain_name(chain), " (", names_.name(tail), " is)");
      if (n.effect_out) (chain == kIo ? io_tail_ : tails_[size_t(chain)]) = n.effect_out;
    }
    for (const auto& o : n.outputs) define(o.get(), kData, [&] { return names_.name(o.get()); });
    if (n.effect_out) define(n.effect_out, chain, [&] { return names_.name(n.effect_out); });
  }

  static std::string chain_name(int chain) {
    return chain == kIo ? "the I/O chain" : "variable @" + std::to_string(chain) + "'s chain";
  }

  void check_variable_node(const Node& n, size_t k, int chain) {
    if (n.var < 0 || size_t(n.var) >= g_.variables.size())
      fail_node(n, k, "variable index ", n.var, " is out of range (the graph has ", g_.variables.size(), " variables)");
    const VariableSlot& s = g_.variables[size_t(n.var)];
    if (!n.effect_in) fail_node(n, k, "it does not order after variable @", n.var, "'s token");
    if (chain != n.var)
      fail_node(n, k, "it uses variable @", n.var, " but its effect token ", names_.name(n.effect_in), " is on ",
                chain_name(chain));
    if (n.kind == NodeKind::ReadVariable) {
      if (!n.inputs.empty() || n.outputs.size() != 1) fail_node(n, k, "a read takes no inputs and has one output");
      if (!compatible(n.output(0)->type, s.type))
        fail_node(n, k, "reads ", type_to_string(n.output(0)->type, &g_), " from variable @", n.var, " of type ",
                  type_to_string(s.type, &g_));
    } else {
      if (n.inputs.size() != 1 || !n.outputs.empty()) fail_node(n, k, "a write takes one input and has no outputs");
      if (!n.effect_out) fail_node(n, k, "a write must produce a new token of variable @", n.var);
      if (!compatible(n.inputs[0]->type, s.type))
        fail_node(n, k, "writes ", type_to_string(n.inputs[0]->type, &g_), " to variable @", n.var, " of type ",
                  type_to_string(s.type, &g_));
    }
  }

  void check_op(const Node& n, size_t k) {
    if (!n.def) fail_node(n, k, "an op node without an op definition");
    const ops::OpDef& def = *n.def;
    if (def.num_inputs >= 0 && n.inputs.size() != size_t(def.num_inputs))
      fail_node(n, k, def.name, " takes ", def.num_inputs, " inputs, got ", n.inputs.size());
    for (size_t i = 0; i < n.attrs.size(); ++i) {
      const auto& [name, value] = n.attrs.at(i);
      const ops::AttrSpec* spec = nullptr;
      for (const auto& s : def.attrs)
        if (s.name == name) spec = &s;
      if (!spec) fail_node(n, k, def.name, " has no attribute '", name, "'");
      if (value.index() != static_cast<size_t>(spec->kind))
        fail_node(n, k, "attribute '", name, "' = ", ops::attr_to_string(value), " has the wrong kind");
    }
    for (const auto& s : def.attrs)
      if (s.required && !n.attrs.has(s.name)) fail_node(n, k, "missing required attribute '", s.name, "'");
    if (def.has(ops::kIO) && (!n.effect_out || !n.effect_in || chain_.at(n.effect_in) != kIo))
      fail_node(n, k, def.name, " is an I/O effect and must thread the I/O token");

    std::vector<TensorType> in_types;
    for (const Value* v : n.inputs) in_types.push_back(v->type);
    ops::TypeList inferred;
    try {
      inferred = infer_types(def, n.attrs, in_types);
    } catch (const std::exception& e) {
      fail_node(n, k, "the op rejects its input types ", types_string(in_types, &g_), ": ", e.what());
    }
    if (inferred.size() != n.outputs.size())
      fail_node(n, k, def.name, " has ", inferred.size(), " outputs, the node ", n.outputs.size());
    for (size_t i = 0; i < inferred.size(); ++i) {
      if (overflows(inferred[i]))
        fail_node(n, k, def.name, " infers ", type_to_string(inferred[i], &g_), " from ", types_string(in_types, &g_),
                  ", whose element count overflows int64");
      if (!compatible(n.output(i)->type, inferred[i]))
        fail_node(n, k, "output ", i, " has type ", type_to_string(n.output(i)->type, &g_), " but ", def.name,
                  " infers ", type_to_string(inferred[i], &g_), " from ", types_string(in_types, &g_));
    }
  }

  void check_constant(const Node& n, size_t k) {
    if (!n.inputs.empty() || n.outputs.size() != 1) fail_node(n, k, "a constant takes no inputs and has one output");
    if (!n.constant.defined()) fail_node(n, k, "the constant holds no tensor");
    if (n.constant.is_symbolic()) fail_node(n, k, "the constant is a symbolic tensor (it leaked from a trace)");
    if (n.effect_in) fail_node(n, k, "a constant has no effects");
    TensorType t{n.constant.dtype(), n.constant.shape()};
    if (!(t == n.output(0)->type))
      fail_node(n, k, "its output type ", type_to_string(n.output(0)->type, &g_), " differs from its value's type ",
                type_to_string(t, &g_));
  }

  // Verifies a subgraph on its own and checks its signature against the node's.
  void check_subgraph(const Node& n, size_t k, const Graph* sg, std::string_view role,
                      const std::vector<const Value*>& params, const std::vector<TensorType>& results) {
    if (!sg) fail_node(n, k, "its ", role, " subgraph is null");
    Verifier(*sg, where_).run();
    where_ = {&g_, &n};
    if (sg->inputs.size() != params.size())
      fail_node(n, k, "its ", role, " subgraph takes ", sg->inputs.size(), " parameters but gets ", params.size());
    for (size_t i = 0; i < params.size(); ++i)
      if (!compatible(sg->inputs[i]->type, params[i]->type))
        fail_node(n, k, "its ", role, " subgraph's parameter ", i, " has type ",
                  type_to_string(sg->inputs[i]->type, sg), " but gets ", type_to_string(params[i]->type, &g_));
    if (sg->outputs.size() != results.size())
      fail_node(n, k, "its ", role, " subgraph returns ", sg->outputs.size(), " values, expected ", results.size());
    for (size_t i = 0; i < results.size(); ++i)
      if (!compatible(sg->outputs[i]->type, results[i]))
        fail_node(n, k, "its ", role, " subgraph's result ", i, " has type ", type_to_string(sg->outputs[i]->type, sg),
                  ", expected ", type_to_string(results[i], &g_));
  }

  static std::vector<TensorType> output_types(const Node& n) {
    std::vector<TensorType> ts;
    for (const auto& o : n.outputs) ts.push_back(o->type);
    return ts;
  }

  void check_cond(const Node& n, size_t k) {
    if (n.subgraphs.size() != 2) fail_node(n, k, "cond needs two subgraphs (then, else), got ", n.subgraphs.size());
    if (n.inputs.empty()) fail_node(n, k, "cond needs a predicate input");
    const TensorType& p = n.inputs[0]->type;
    if (p.dtype != DType::Bool || p.shape.rank() != 0)
      fail_node(n, k, "the predicate has type ", type_to_string(p, &g_), ", expected bool[]");
    std::vector<const Value*> captures(n.inputs.begin() + 1, n.inputs.end());
    std::vector<TensorType> outs = output_types(n);
    check_subgraph(n, k, n.subgraphs[0].get(), "then", captures, outs);
    check_subgraph(n, k, n.subgraphs[1].get(), "else", captures, outs);
  }

  void check_while(const Node& n, size_t k) {
    if (n.subgraphs.size() != 2) fail_node(n, k, "while needs two subgraphs (cond, body), got ", n.subgraphs.size());
    size_t loop = n.outputs.size();
    if (n.inputs.size() < loop)
      fail_node(n, k, "while has ", loop, " loop variables but only ", n.inputs.size(), " inputs");
    std::vector<const Value*> params(n.inputs.begin(), n.inputs.end());
    for (size_t i = 0; i < loop; ++i)
      if (!compatible(n.inputs[i]->type, n.output(i)->type))
        fail_node(n, k, "loop variable ", i, " enters as ", type_to_string(n.inputs[i]->type, &g_), " but leaves as ",
                  type_to_string(n.output(i)->type, &g_));
    check_subgraph(n, k, n.subgraphs[0].get(), "cond", params, {TensorType{DType::Bool, Shape{}}});
    check_subgraph(n, k, n.subgraphs[1].get(), "body", params, output_types(n));
  }

  const Graph& g_;
  VerifyWhere& where_;
  ValueNames names_;
  std::unordered_map<const Value*, int> chain_;  // defined values -> their chain
  std::vector<const Value*> tails_;              // each variable chain's latest token
  const Value* io_tail_ = nullptr;
};

}  // namespace

void detail::verify_reporting(const Graph& g, VerifyWhere& where) { Verifier(g, where).run(); }

void verify(const Graph& g) {
  VerifyWhere where;
  Verifier(g, where).run();
}

}  // namespace kiln::ir
