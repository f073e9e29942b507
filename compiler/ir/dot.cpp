// Graphviz DOT output: parameters and entry tokens as ellipses, nodes as boxes, data edges solid,
// token edges dashed, subgraphs as clusters linked to their cond/while node by a dotted edge.
#include "compiler/ir/dot.h"

#include <string>
#include <unordered_map>

#include "compiler/ir/text_detail.h"

namespace kiln::ir {

namespace {

// A DOT double-quoted string; newlines become DOT's centered line breaks.
std::string dot_quote(std::string_view s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (c == '\n') {
      out += "\\n";
    } else if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) {
      out += ' ';
    } else {
      out += c;
    }
  }
  return out + '"';
}

// Long attribute lists are cut so boxes stay readable; the text form has the full values.
std::string shorten(std::string s, size_t max = 60) {
  if (s.size() > max) s = s.substr(0, max - 3) + "...";
  return s;
}

std::string attr_text(const ops::AttrValue& v) {
  const auto* s = std::get_if<std::string>(&v);
  return s ? detail::quote(*s) : ops::attr_to_string(v);
}

class DotWriter {
 public:
  std::string run(const Graph& g) {
    out_ = "digraph " + dot_quote(g.name) + " {\n";
    out_ += "  compound=true;\n  node [shape=box, fontname=\"monospace\", fontsize=10];\n";
    out_ += "  edge [fontname=\"monospace\", fontsize=9];\n";
    write_graph(g, 1);
    out_ += "}\n";
    return out_;
  }

 private:
  // Writes `g`'s nodes and edges; returns the id of its return node (the cluster's anchor).
  std::string write_graph(const Graph& g, int indent) {
    std::string pre = "g" + std::to_string(next_graph_++) + "_";
    std::string pad(size_t(indent) * 2, ' ');
    detail::ValueNames names(g);
    std::unordered_map<const Value*, std::string> source;  // value -> DOT node that defines it

    for (size_t i = 0; i < g.inputs.size(); ++i) {
      std::string id = pre + "in" + std::to_string(i);
      const Value* v = g.inputs[i];
      out_ += pad + id +
              " [shape=ellipse, label=" + dot_quote(names.name(v) + "\n" + (v ? type_to_string(v->type, &g) : "?")) +
              "];\n";
      source[v] = id;
    }
    for (size_t i = 0; i < g.variables.size(); ++i) {
      std::string id = pre + "v" + std::to_string(i);
      const VariableSlot& s = g.variables[i];
      out_ += pad + id + " [shape=ellipse, style=dashed, label=" +
              dot_quote("@" + std::to_string(i) + " " + s.name + "\n" + type_to_string(s.type, &g)) + "];\n";
      source[s.token_in] = id;
    }
    if (g.io_in) {
      out_ += pad + pre + "io [shape=ellipse, style=dashed, label=\"io\"];\n";
      source[g.io_in] = pre + "io";
    }

    auto edge = [&](const Value* v, const std::string& to, bool token) {
      auto it = source.find(v);
      if (it == source.end()) return;  // undefined values (invalid graphs) draw no edge
      out_ += pad + it->second + " -> " + to;
      bool multi = v && v->producer && v->producer->outputs.size() > 1 && !token;
      if (token || multi) {
        out_ += " [";
        if (token) out_ += "style=dashed";
        if (multi) out_ += std::string(token ? ", " : "") + "label=" + dot_quote(names.name(v));
        out_ += ']';
      }
      out_ += ";\n";
    };

    for (size_t k = 0; k < g.nodes.size(); ++k) {
      const Node* n = g.nodes[k].get();
      if (!n) continue;
      std::string id = pre + "n" + std::to_string(k);
      std::string label;
      for (size_t i = 0; i < n->outputs.size(); ++i) label += (i ? ", " : "") + names.name(n->output(i));
      if (n->effect_out) label += std::string(label.empty() ? "" : ", ") + names.name(n->effect_out);
      if (!label.empty()) label += " = ";
      label += n->kind == NodeKind::Op && !n->def ? std::string_view("<no-op>") : n->name();
      if (n->kind == NodeKind::ReadVariable || n->kind == NodeKind::AssignVariable)
        label += " @" + std::to_string(n->var);
      if (!n->attrs.empty()) {
        std::string attrs;
        for (size_t i = 0; i < n->attrs.size(); ++i)
          attrs +=
              std::string(i ? ", " : "") + std::string(n->attrs.at(i).first) + " = " + attr_text(n->attrs.at(i).second);
        label += "\n{" + shorten(attrs) + "}";
      }
      if (!n->outputs.empty()) {
        label += "\n";
        for (size_t i = 0; i < n->outputs.size(); ++i)
          label += (i ? ", " : "") + type_to_string(n->output(i)->type, &g);
      }
      if (!n->loc.empty()) label += "\n" + n->loc.file + ":" + std::to_string(n->loc.line);
      std::string style = n->has_effect() ? ", style=bold" : n->kind == NodeKind::Constant ? ", style=rounded" : "";
      out_ += pad + id + " [label=" + dot_quote(label) + style + "];\n";
      for (const Value* v : n->inputs) edge(v, id, false);
      if (n->effect_in) edge(n->effect_in, id, true);
      for (const auto& o : n->outputs) source[o.get()] = id;
      if (n->effect_out) source[n->effect_out] = id;

      for (size_t s = 0; s < n->subgraphs.size(); ++s) {
        const Graph* sg = n->subgraphs[s].get();
        if (!sg) continue;
        std::string cluster = "cluster_" + std::to_string(next_graph_);
        out_ += pad + "subgraph " + cluster + " {\n";
        out_ += pad + "  label=" + dot_quote("@" + sg->name) + ";\n  " + pad + "style=rounded;\n";
        std::string anchor = write_graph(*sg, indent + 1);
        out_ += pad + "}\n";
        out_ += pad + id + " -> " + anchor + " [style=dotted, arrowhead=none, lhead=" + cluster + "];\n";
      }
    }

    std::string ret = pre + "return";
    out_ += pad + ret + " [shape=ellipse, label=\"return\"];\n";
    for (const Value* v : g.outputs) edge(v, ret, false);
    for (const VariableSlot& s : g.variables)
      if (s.token_out != s.token_in) edge(s.token_out, ret, true);
    if (g.io_in && g.io_out != g.io_in) edge(g.io_out, ret, true);
    return ret;
  }

  std::string out_;
  int next_graph_ = 0;
};

}  // namespace

std::string to_dot(const Graph& g) { return DotWriter().run(g); }

}  // namespace kiln::ir
