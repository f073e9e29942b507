// The cse pass: common subexpression elimination. Nodes that compute the same thing from the
// same values (same kind, op, attributes, inputs, effect input and output types; constants with
// equal bytes) are merged into the first of them. Nodes with effects are never merged.
#include <bit>
#include <cstring>
#include <type_traits>
#include <unordered_map>
#include <variant>
#include <vector>

#include "compiler/passes/pass.h"
#include "compiler/passes/rewrite.h"

namespace kiln::ir {
namespace {

struct Hash {
  uint64_t h = 1469598103934665603ull;
  void add(uint64_t x) { h = (h ^ x) * 1099511628211ull; }
  void add(const void* p) { add(reinterpret_cast<uintptr_t>(p)); }
  void add_bytes(const void* data, size_t n) {
    const auto* p = static_cast<const unsigned char*>(data);
    for (size_t i = 0; i < n; i += 8) {
      uint64_t chunk = 0;
      std::memcpy(&chunk, p + i, std::min<size_t>(8, n - i));
      add(chunk);
    }
  }
  void add(const TensorType& t) {
    add(static_cast<uint64_t>(t.dtype));
    for (int64_t d : t.shape) add(static_cast<uint64_t>(d));
  }
};

// Which nodes may merge: a node is a pure function of its inputs (and, for variable reads, of the
// token it reads at). Random ops, writes, prints, calls and control flow never merge.
bool mergeable(const Node& n) {
  switch (n.kind) {
    case NodeKind::Constant:
      return n.constant.dtype() != DType::String;  // string tensors keep their bytes elsewhere
    case NodeKind::ReadVariable:
      return !n.effect_out;
    case NodeKind::Op:
      return !n.effect_out && !n.def->has(ops::kStateful) && !n.def->has(ops::kIO) && n.subgraphs.empty();
    default:
      return false;
  }
}

// Attrs' operator== compares floats by value; here 0.0 and -0.0 (a pad value) must differ.
bool same_attr(const ops::AttrValue& a, const ops::AttrValue& b) {
  if (a.index() != b.index()) return false;
  if (const double* x = std::get_if<double>(&a))
    return std::bit_cast<uint64_t>(*x) == std::bit_cast<uint64_t>(std::get<double>(b));
  return a == b;
}

bool same_attrs(const ops::Attrs& a, const ops::Attrs& b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    bool found = false;
    for (size_t j = 0; j < b.size() && !found; ++j)
      if (a.at(i).first == b.at(j).first) found = same_attr(a.at(i).second, b.at(j).second);
    if (!found) return false;
  }
  return true;
}

uint64_t hash_of(const Node& n) {
  Hash h;
  h.add(static_cast<uint64_t>(n.kind));
  h.add(n.def);
  h.add(static_cast<uint64_t>(n.var + 1));
  for (Value* in : n.inputs) h.add(in);
  h.add(n.effect_in);
  for (auto& o : n.outputs) h.add(o->type);
  for (size_t i = 0; i < n.attrs.size(); ++i) {
    h.add(n.attrs.at(i).first.size());
    h.add(static_cast<uint64_t>(n.attrs.at(i).second.index()));
  }
  if (n.kind == NodeKind::Constant) h.add_bytes(n.constant.raw_data(), n.constant.nbytes());
  return h.h;
}

bool same(const Node& a, const Node& b) {
  if (a.kind != b.kind || a.def != b.def || a.var != b.var || a.inputs != b.inputs || a.effect_in != b.effect_in ||
      a.num_outputs() != b.num_outputs())
    return false;
  for (size_t i = 0; i < a.num_outputs(); ++i)
    if (!(a.output(i)->type == b.output(i)->type)) return false;
  if (!same_attrs(a.attrs, b.attrs)) return false;
  if (a.kind == NodeKind::Constant) {
    const Tensor &x = a.constant, &y = b.constant;
    return x.dtype() == y.dtype() && x.shape() == y.shape() &&
           (x.nbytes() == 0 || std::memcmp(x.raw_data(), y.raw_data(), x.nbytes()) == 0);
  }
  return true;
}

size_t cse(Graph& g) {
  size_t merged = 0;
  rewrite::Substitution subst;
  std::unordered_map<uint64_t, std::vector<Node*>> seen;
  std::vector<Node*> duplicates;
  // In node order, inputs are rewritten to their representatives before a node is looked at, so
  // chains of duplicates (two equal constants feeding two equal adds) merge in one walk.
  for (auto& node : g.nodes) {
    Node& n = *node;
    subst.apply(n);
    for (auto& sg : n.subgraphs) merged += cse(*sg);
    if (!mergeable(n)) continue;
    auto& bucket = seen[hash_of(n)];
    Node* rep = nullptr;
    for (Node* c : bucket)
      if (same(*c, n)) {
        rep = c;
        break;
      }
    if (!rep) {
      bucket.push_back(&n);
      continue;
    }
    for (size_t i = 0; i < n.num_outputs(); ++i) subst.add(n.output(i), rep->output(i));
    duplicates.push_back(&n);
    ++merged;
  }
  subst.apply_roots(g);
  rewrite::erase_dead(g, duplicates);
  return merged;
}

class CsePass final : public Pass {
 public:
  std::string_view name() const override { return "cse"; }
  bool run(Graph& g, const PassContext&) override { return cse(g) > 0; }
};

}  // namespace

std::unique_ptr<Pass> make_cse_pass() { return std::make_unique<CsePass>(); }

}  // namespace kiln::ir
