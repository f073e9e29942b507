// The IR text form's printer (Graph::to_string) and the value naming and quoting it shares with
// the parser, verifier and DOT output. The grammar is in docs/ir.md.
#include <charconv>
#include <complex>
#include <cstring>
#include <string>
#include <unordered_set>

#include "compiler/ir/ir.h"
#include "compiler/ir/text_detail.h"
#include "ops/call.h"

namespace kiln::ir {

namespace detail {

bool is_identifier(std::string_view s) {
  if (s.empty()) return false;
  auto alpha = [](char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'; };
  if (!alpha(s[0])) return false;
  for (char c : s)
    if (!alpha(c) && !(c >= '0' && c <= '9') && c != '.') return false;
  return true;
}

std::string quote(std::string_view s) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out = "\"";
  for (char ch : s) {
    auto c = static_cast<unsigned char>(ch);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += ch;
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '\t') {
      out += "\\t";
    } else if (c == '\r') {
      out += "\\r";
    } else if (c < 0x20 || c == 0x7f) {
      out += "\\x";
      out += kHex[c >> 4];
      out += kHex[c & 15];
    } else {
      out += ch;
    }
  }
  out += '"';
  return out;
}

std::string ident_or_quote(std::string_view s) { return is_identifier(s) ? std::string(s) : quote(s); }

ValueNames::ValueNames(const Graph& g) {
  std::unordered_set<std::string_view> used;
  size_t counter = 0;
  auto define = [&](const Value* v) {
    if (!v || names_.count(v)) return;
    if (v->is_token) {
      names_[v] = "!" + std::to_string(counter++);
    } else if (is_identifier(v->name) && used.insert(v->name).second) {
      names_[v] = "%" + v->name;
    } else {
      names_[v] = "%" + std::to_string(counter++);
    }
  };
  for (const Value* in : g.inputs) define(in);
  for (size_t i = 0; i < g.variables.size(); ++i)
    if (g.variables[i].token_in && !names_.count(g.variables[i].token_in))
      names_[g.variables[i].token_in] = "!v" + std::to_string(i);
  if (g.io_in && !names_.count(g.io_in)) names_[g.io_in] = "!io";
  for (const auto& n : g.nodes) {
    for (const auto& o : n->outputs) define(o.get());
    define(n->effect_out);
  }
}

std::string ValueNames::name(const Value* v) const {
  if (!v) return "%null";
  auto it = names_.find(v);
  return it == names_.end() ? (v->is_token ? "!?" : "%?") : it->second;
}

std::string ValueNames::node_name(const Node& n, size_t position) const {
  if (!n.outputs.empty()) return name(n.output(0));
  if (n.effect_out) return name(n.effect_out);
  return "#" + std::to_string(position);
}

}  // namespace detail

namespace {

using detail::ValueNames;

// Shortest text that reads back to the same value (std::to_chars); inf and nan print as
// "inf", "-inf", "nan", "-nan", which the parser accepts.
template <class F>
void append_float(std::string& out, F x) {
  char buf[64];
  auto r = std::to_chars(buf, buf + sizeof buf, x);
  out.append(buf, r.ptr);
}

template <class I>
void append_int(std::string& out, I x) {
  char buf[32];
  auto r = std::to_chars(buf, buf + sizeof buf, x);
  out.append(buf, r.ptr);
}

// "(re, im)"
template <class C>
void append_complex(std::string& out, const unsigned char* p) {
  C c;
  std::memcpy(&c, p, sizeof c);
  out += '(';
  append_float(out, c.real());
  out += ", ";
  append_float(out, c.imag());
  out += ')';
}

void append_element(std::string& out, DType d, const unsigned char* p) {
  switch (d) {
    case DType::Bool:
      out += *p ? "true" : "false";  // read as a byte: any nonzero byte is true
      return;
    case DType::Complex64:
      append_complex<complex64_t>(out, p);
      return;
    case DType::Complex128:
      append_complex<complex128_t>(out, p);
      return;
    default:
      visit_dtype(d, "ir.print", [&](auto tag) {
        using T = decltype(tag);
        if constexpr (!is_complex_v<T> && !std::is_same_v<T, bool>) {
          T x;
          std::memcpy(&x, p, sizeof x);
          if constexpr (std::is_integral_v<T>)
            append_int(out, x);
          else if constexpr (std::is_same_v<T, double>)
            append_float(out, x);
          else
            append_float(out, static_cast<float>(x));  // float, and f16/bf16 exactly through float
        }
      });
  }
}

void append_constant(std::string& out, const Tensor& t) {
  // A printer must not throw on the graphs it is asked to dump; odd constants print a marker
  // that the parser rejects with a clear message.
  if (!t.defined()) {
    out += "undefined";
    return;
  }
  if (t.is_symbolic()) {
    out += "symbolic";
    return;
  }
  if (t.dtype() == DType::String || t.device() != kCPU) {
    out += "unsupported";
    return;
  }
  const auto* p = static_cast<const unsigned char*>(t.raw_data());
  auto size = static_cast<size_t>(dtype_size(t.dtype()));
  int64_t n = t.num_elements();
  bool scalar = t.ndim() == 0;
  // a constant whose elements are all equal (folded fills, broadcast gradients) prints once
  bool uniform = n > 1;
  for (int64_t i = 1; uniform && i < n; ++i) uniform = std::memcmp(p, p + static_cast<size_t>(i) * size, size) == 0;
  if (uniform) {
    out += "splat(";
    append_element(out, t.dtype(), p);
    out += ')';
    return;
  }
  if (!scalar) out += '[';
  for (int64_t i = 0; i < n; ++i) {
    if (i) out += ", ";
    append_element(out, t.dtype(), p + static_cast<size_t>(i) * size);
  }
  if (!scalar) out += ']';
}

void append_attr(std::string& out, const ops::AttrValue& v) {
  if (const auto* s = std::get_if<std::string>(&v))
    out += detail::quote(*s);
  else if (const auto* d = std::get_if<double>(&v))
    append_float(out, *d);
  else if (const auto* o = std::get_if<ops::ObjectRef>(&v)) {
    // Objects (a call's function) have no text form; the name is for readers, the parser refuses it.
    const auto* target = dynamic_cast<const ops::CallTarget*>(o->get());
    out += "object(";
    out += detail::quote(target ? target->name() : std::string_view("?"));
    out += ')';
  } else
    out += ops::attr_to_string(v);
}

void print_graph(std::string& out, const Graph& g, int indent);

void print_node(std::string& out, const Graph& g, const Node& n, const ValueNames& names, int indent) {
  out.append(size_t(indent) + 2, ' ');
  bool any = false;
  for (const auto& o : n.outputs) {
    out += any ? ", " : "";
    out += names.name(o.get());
    any = true;
  }
  if (n.effect_out) {
    out += any ? ", " : "";
    out += names.name(n.effect_out);
    any = true;
  }
  if (any) out += " = ";
  out += n.kind == NodeKind::Op && !n.def ? std::string_view("<no-op>") : n.name();
  if (n.kind == NodeKind::ReadVariable || n.kind == NodeKind::AssignVariable) {
    out += " @";
    append_int(out, n.var);
  }
  bool parens = n.kind == NodeKind::Op || n.kind == NodeKind::AssignVariable || n.kind == NodeKind::Cond ||
                n.kind == NodeKind::While || !n.inputs.empty();
  if (parens) {
    out += '(';
    for (size_t i = 0; i < n.inputs.size(); ++i) {
      if (i) out += ", ";
      out += names.name(n.inputs[i]);
    }
    out += ')';
  }
  if (!n.attrs.empty()) {
    out += " {";
    for (size_t i = 0; i < n.attrs.size(); ++i) {
      if (i) out += ", ";
      out += n.attrs.at(i).first;
      out += " = ";
      append_attr(out, n.attrs.at(i).second);
    }
    out += '}';
  }
  if (n.effect_in) {
    out += " [";
    out += names.name(n.effect_in);
    out += ']';
  }
  if (!n.outputs.empty()) {
    out += " : ";
    for (size_t i = 0; i < n.outputs.size(); ++i) {
      if (i) out += ", ";
      out += type_to_string(n.outputs[i]->type, &g);
    }
  }
  if (n.kind == NodeKind::Constant) {
    out += " = ";
    append_constant(out, n.constant);
  }
  if (!n.loc.empty()) {
    out += " loc(";
    out += detail::quote(n.loc.file);
    out += ':';
    append_int(out, n.loc.line);
    out += ')';
  }
  if (!n.subgraphs.empty()) {
    out += " {\n";
    for (const auto& sg : n.subgraphs) {
      if (sg)
        print_graph(out, *sg, indent + 4);
      else
        out.append(size_t(indent) + 4, ' ').append("<null graph>\n");
    }
    out.append(size_t(indent) + 2, ' ');
    out += '}';
  }
  out += '\n';
}

void print_graph(std::string& out, const Graph& g, int indent) {
  ValueNames names(g);
  out.append(size_t(indent), ' ');
  out += "graph @";
  out += detail::ident_or_quote(g.name);
  out += '(';
  for (size_t i = 0; i < g.inputs.size(); ++i) {
    if (i) out += ", ";
    out += names.name(g.inputs[i]);
    out += ": ";
    out += g.inputs[i] ? type_to_string(g.inputs[i]->type, &g) : "?";
  }
  out += ')';
  if (!g.symbols.empty()) {
    out += " symbols(";
    for (size_t i = 0; i < g.symbols.size(); ++i) {
      if (i) out += ", ";
      out += g.symbols[i];
    }
    out += ')';
  }
  if (!g.variables.empty()) {
    out += " vars(";
    for (size_t i = 0; i < g.variables.size(); ++i) {
      const VariableSlot& s = g.variables[i];
      if (i) out += ", ";
      out += '@';
      append_int(out, i);
      out += ' ';
      out += detail::ident_or_quote(s.name);
      out += ": ";
      out += type_to_string(s.type, &g);
      out += s.trainable ? " trainable" : " frozen";
    }
    out += ')';
  }
  if (g.io_in) out += " io";
  out += " {\n";
  for (const auto& n : g.nodes) print_node(out, g, *n, names, indent);
  out.append(size_t(indent) + 2, ' ');
  out += "return";
  for (size_t i = 0; i < g.outputs.size(); ++i) {
    out += i ? ", " : " ";
    out += names.name(g.outputs[i]);
  }
  // Only the chains a node advanced are listed; the others end at their entry token.
  std::string effects;
  for (size_t i = 0; i < g.variables.size(); ++i) {
    const VariableSlot& s = g.variables[i];
    if (s.token_out == s.token_in) continue;
    effects += effects.empty() ? "" : ", ";
    effects += '@';
    append_int(effects, i);
    effects += " = ";
    effects += names.name(s.token_out);
  }
  if (g.io_in && g.io_out != g.io_in) {
    effects += effects.empty() ? "" : ", ";
    effects += "io = ";
    effects += names.name(g.io_out);
  }
  if (!effects.empty()) {
    out += " effects(";
    out += effects;
    out += ')';
  }
  out += '\n';
  out.append(size_t(indent), ' ');
  out += "}\n";
}

}  // namespace

std::string Graph::to_string() const {
  std::string out = "kiln.ir ";
  out += std::to_string(kIrVersion);
  out += '\n';
  print_graph(out, *this, 0);
  return out;
}

}  // namespace kiln::ir
