// Graph construction, rewriting helpers, deep copy and structural hashing.
#include "compiler/ir/ir.h"

#include <cstring>
#include <ostream>
#include <unordered_map>

namespace kiln::ir {

std::string_view Node::name() const {
  switch (kind) {
    case NodeKind::Op:
      return def->name;
    case NodeKind::Constant:
      return "constant";
    case NodeKind::ReadVariable:
      return "read_variable";
    case NodeKind::AssignVariable:
      return "assign_variable";
    case NodeKind::Cond:
      return "cond";
    case NodeKind::While:
      return "while";
  }
  return "?";
}

Graph::Graph(std::string n) : name(std::move(n)) {}
Graph::~Graph() = default;
Graph::Graph(Graph&&) noexcept = default;
Graph& Graph::operator=(Graph&&) noexcept = default;

Value* Graph::new_owned(const TensorType& t, bool token) {
  owned_.push_back(std::make_unique<Value>());
  Value* v = owned_.back().get();
  v->type = t;
  v->is_token = token;
  return v;
}

Value* Graph::add_input(const TensorType& t, std::string n) {
  Value* v = new_owned(t, false);
  v->name = std::move(n);
  inputs.push_back(v);
  return v;
}

int Graph::add_variable(std::weak_ptr<VariableImpl> var, std::string n, const TensorType& t, bool trainable) {
  VariableSlot s;
  s.var = std::move(var);
  s.name = std::move(n);
  s.type = t;
  s.trainable = trainable;
  s.token_in = s.token_out = new_owned({}, true);
  variables.push_back(std::move(s));
  return static_cast<int>(variables.size() - 1);
}

Value* Graph::io_token() {
  if (!io_in) io_in = io_out = new_owned({}, true);
  return io_in;
}

int64_t Graph::symbol(std::string_view n) {
  for (size_t i = 0; i < symbols.size(); ++i)
    if (symbols[i] == n) return symbol_dim(i);
  symbols.emplace_back(n);
  return symbol_dim(symbols.size() - 1);
}

int64_t Graph::new_symbol() {
  std::string n;
  for (size_t i = symbols.size();; ++i) {
    n = "s" + std::to_string(i);
    bool taken = false;
    for (auto& s : symbols) taken |= s == n;
    if (!taken) break;
  }
  symbols.push_back(n);
  return symbol_dim(symbols.size() - 1);
}

Node* Graph::append(NodeKind kind, std::vector<Value*> ins, const std::vector<TensorType>& output_types) {
  auto node = std::make_unique<Node>();
  node->kind = kind;
  node->inputs = std::move(ins);
  for (size_t i = 0; i < output_types.size(); ++i) {
    auto v = std::make_unique<Value>();
    v->type = output_types[i];
    v->producer = node.get();
    v->index = static_cast<uint32_t>(i);
    node->outputs.push_back(std::move(v));
  }
  nodes.push_back(std::move(node));
  return nodes.back().get();
}

Node* Graph::append_op(const ops::OpDef& def, ops::Attrs attrs, std::vector<Value*> ins,
                       const std::vector<TensorType>& output_types) {
  Node* n = append(NodeKind::Op, std::move(ins), output_types);
  n->def = &def;
  n->attrs = std::move(attrs);
  return n;
}

Node* Graph::append_constant(Tensor value) {
  Node* n = append(NodeKind::Constant, {}, {TensorType{value.dtype(), value.shape()}});
  n->constant = std::move(value);
  return n;
}

Value* Graph::add_effect(Node* node, Value* in) {
  node->effect_in = in;
  node->effect_out_storage = std::make_unique<Value>();
  node->effect_out = node->effect_out_storage.get();
  node->effect_out->is_token = true;
  node->effect_out->producer = node;
  node->effect_out->index = static_cast<uint32_t>(node->outputs.size());
  return node->effect_out;
}

void Graph::replace_all_uses(Value* from, Value* to) {
  for (auto& n : nodes) {
    for (auto& in : n->inputs)
      if (in == from) in = to;
    if (n->effect_in == from) n->effect_in = to;
  }
  for (auto& o : outputs)
    if (o == from) o = to;
  for (auto& s : variables)
    if (s.token_out == from) s.token_out = to;
  if (io_out == from) io_out = to;
}

size_t Graph::num_uses(const Value* v) const {
  size_t n = 0;
  for (auto& node : nodes) {
    for (auto* in : node->inputs) n += in == v;
    n += node->effect_in == v;
  }
  for (auto* o : outputs) n += o == v;
  for (auto& s : variables) n += s.token_out == v;
  n += io_out == v;
  return n;
}

std::unique_ptr<Graph> Graph::clone() const {
  auto g = std::make_unique<Graph>(name);
  g->symbols = symbols;
  std::unordered_map<const Value*, Value*> map;
  auto m = [&](Value* v) -> Value* {
    if (!v) return nullptr;
    auto it = map.find(v);
    if (it == map.end()) fail<Internal>("ir", "clone: value used before definition in graph '", name, "'");
    return it->second;
  };
  for (Value* in : inputs) map[in] = g->add_input(in->type, in->name);
  for (auto& s : variables) {
    int i = g->add_variable(s.var, s.name, s.type, s.trainable);
    map[s.token_in] = g->variables[size_t(i)].token_in;
  }
  if (io_in) {
    g->io_in = g->new_owned({}, true);
    map[io_in] = g->io_in;
  }
  for (auto& n : nodes) {
    std::vector<Value*> ins;
    for (Value* v : n->inputs) ins.push_back(m(v));
    std::vector<TensorType> types;
    for (auto& o : n->outputs) types.push_back(o->type);
    Node* c = g->append(n->kind, std::move(ins), types);
    c->def = n->def;
    c->attrs = n->attrs;
    c->constant = n->constant;
    c->var = n->var;
    c->loc = n->loc;
    for (auto& sg : n->subgraphs) c->subgraphs.push_back(sg->clone());
    for (size_t i = 0; i < n->outputs.size(); ++i) {
      c->outputs[i]->name = n->outputs[i]->name;
      map[n->output(i)] = c->output(i);
    }
    if (n->effect_out)
      map[n->effect_out] = g->add_effect(c, m(n->effect_in));
    else if (n->effect_in)
      c->effect_in = m(n->effect_in);
  }
  for (Value* o : outputs) g->outputs.push_back(m(o));
  for (size_t i = 0; i < variables.size(); ++i) g->variables[i].token_out = m(variables[i].token_out);
  g->io_out = io_in ? m(io_out) : nullptr;
  return g;
}

namespace {
struct Hasher {
  uint64_t h = 1469598103934665603ull;
  void add(uint64_t x) {
    for (int i = 0; i < 8; ++i) {
      h ^= (x >> (8 * i)) & 0xff;
      h *= 1099511628211ull;
    }
  }
  void add(std::string_view s) {
    add(s.size());
    for (unsigned char c : s) {
      h ^= c;
      h *= 1099511628211ull;
    }
  }
  void add(const TensorType& t) {
    add(static_cast<uint64_t>(t.dtype));
    add(static_cast<uint64_t>(t.shape.rank()));
    for (int64_t d : t.shape) add(static_cast<uint64_t>(d));
  }
};
}  // namespace

uint64_t Graph::structural_hash() const {
  Hasher h;
  std::unordered_map<const Value*, uint64_t> ids;
  uint64_t next = 1;
  auto id = [&](const Value* v) -> uint64_t {
    if (!v) return 0;
    auto it = ids.find(v);
    return it == ids.end() ? ~0ull : it->second;
  };
  for (Value* in : inputs) {
    ids[in] = next++;
    h.add(in->type);
  }
  for (auto& s : variables) {
    ids[s.token_in] = next++;
    h.add(s.type);
  }
  if (io_in) ids[io_in] = next++;
  for (auto& n : nodes) {
    h.add(static_cast<uint64_t>(n->kind));
    h.add(n->name());
    for (size_t i = 0; i < n->attrs.size(); ++i) {
      h.add(n->attrs.at(i).first);
      h.add(ops::attr_to_string(n->attrs.at(i).second));
    }
    for (Value* v : n->inputs) h.add(id(v));
    h.add(id(n->effect_in));
    h.add(static_cast<uint64_t>(n->var + 1));
    if (n->kind == NodeKind::Constant) {
      h.add(n->constant.dtype() == DType::String ? 0 : n->constant.nbytes());
      h.add(TensorType{n->constant.dtype(), n->constant.shape()});
      const auto* p = static_cast<const unsigned char*>(n->constant.raw_data());
      uint64_t chunk = 0;
      size_t nb = n->constant.nbytes();
      for (size_t i = 0; i < nb; i += 8) {
        chunk = 0;
        std::memcpy(&chunk, p + i, std::min<size_t>(8, nb - i));
        h.add(chunk);
      }
    }
    for (auto& sg : n->subgraphs) h.add(sg->structural_hash());
    for (auto& o : n->outputs) {
      ids[o.get()] = next++;
      h.add(o->type);
    }
    if (n->effect_out) ids[n->effect_out] = next++;
  }
  for (Value* o : outputs) h.add(id(o));
  for (auto& s : variables) h.add(id(s.token_out));
  h.add(id(io_out));
  for (auto& s : symbols) h.add(s);
  return h.h;
}

std::ostream& operator<<(std::ostream& os, const Graph& g) { return os << g.to_string(); }

std::string_view dtype_short_name(DType d) {
  switch (d) {
    case DType::Bool:
      return "bool";
    case DType::Int8:
      return "i8";
    case DType::Int16:
      return "i16";
    case DType::Int32:
      return "i32";
    case DType::Int64:
      return "i64";
    case DType::UInt8:
      return "u8";
    case DType::UInt16:
      return "u16";
    case DType::UInt32:
      return "u32";
    case DType::UInt64:
      return "u64";
    case DType::Float16:
      return "f16";
    case DType::BFloat16:
      return "bf16";
    case DType::Float32:
      return "f32";
    case DType::Float64:
      return "f64";
    case DType::Complex64:
      return "c64";
    case DType::Complex128:
      return "c128";
    case DType::String:
      return "str";
  }
  return "?";
}

std::string type_to_string(const TensorType& t, const Graph* g) {
  std::string s(dtype_short_name(t.dtype));
  s += '[';
  for (int64_t i = 0; i < t.shape.rank(); ++i) {
    if (i) s += ", ";
    int64_t d = t.shape.dim(size_t(i));
    if (d >= 0)
      s += std::to_string(d);
    else if (is_symbol(d) && g && symbol_index(d) < g->symbols.size())
      s += g->symbols[symbol_index(d)];
    else
      s += '?';
  }
  s += ']';
  return s;
}

ops::TypeList infer_types(const ops::OpDef& def, const ops::Attrs& attrs, std::span<const TensorType> in) {
  // Stand-in tensors carry a level id no real level uses (ids count up from 1) and no storage.
  // Symbols become unknown dims, which infer accepts and passes through (it only reads dtypes,
  // shapes and attributes).
  constexpr uint64_t kStandInLevel = ~uint64_t{0};
  SmallVector<Tensor, 4> ins;
  for (const TensorType& t : in) {
    auto impl = make_ref<TensorImpl>();
    impl->dtype = t.dtype;
    impl->shape = t.shape;
    bool known = true;
    for (size_t d = 0; d < size_t(impl->shape.rank()); ++d) {
      if (impl->shape.dim(d) < 0) {
        impl->shape.mut(d) = kUnknownDim;
        known = false;
      }
    }
    impl->numel = known ? impl->shape.num_elements() : -1;
    impl->level_id = kStandInLevel;
    ins.emplace_back(std::move(impl));
  }
  return def.infer(def, attrs, std::span<const Tensor>(ins.data(), ins.size()));
}

}  // namespace kiln::ir
