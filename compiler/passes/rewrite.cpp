// Shared pass helpers: effect queries, use counts, value substitution, dead-node removal.
#include "compiler/passes/rewrite.h"

#include <unordered_set>
#include <vector>

namespace kiln::ir::rewrite {

bool has_observable_effect(const Node& n) {
  if (n.effect_out) return true;
  if (n.kind == NodeKind::AssignVariable) return true;  // a write without a token is still a write
  if (n.def) {
    if (n.def->has(ops::kIO)) return true;
    const bool random = n.def->id == ops::OpId::RandomNormal || n.def->id == ops::OpId::RandomUniform;
    if (n.def->has(ops::kStateful) && !random) return true;
  }
  for (auto& sg : n.subgraphs)
    if (has_observable_effect(*sg)) return true;
  return false;
}

bool has_observable_effect(const Graph& g) {
  for (auto& n : g.nodes)
    if (has_observable_effect(*n)) return true;
  return false;
}

bool is_pure_op(const Node& n) {
  return n.kind == NodeKind::Op && !n.effect_in && !n.effect_out && !n.def->has(ops::kStateful) &&
         !n.def->has(ops::kIO);
}

UseCounts::UseCounts(const Graph& g) {
  for (auto& n : g.nodes) {
    for (Value* in : n->inputs) ++uses_[in];
    if (n->effect_in) ++uses_[n->effect_in];
  }
  for (Value* o : g.outputs) ++uses_[o];
  for (auto& s : g.variables) ++uses_[s.token_out];
  if (g.io_out) ++uses_[g.io_out];
}

bool UseCounts::unused(const Node& n) const {
  for (auto& o : n.outputs)
    if ((*this)[o.get()]) return false;
  return !n.effect_out || (*this)[n.effect_out] == 0;
}

Value* Substitution::operator()(Value* v) const {
  // chains are short (a replacement of a replacement); the bound guards against a cycle bug
  for (size_t hops = 0; v && hops <= map_.size(); ++hops) {
    auto it = map_.find(v);
    if (it == map_.end()) return v;
    v = it->second;
  }
  return v;
}

bool Substitution::apply(Node& n) const {
  if (map_.empty()) return false;
  bool changed = false;
  for (Value*& in : n.inputs) {
    Value* r = (*this)(in);
    changed |= r != in;
    in = r;
  }
  if (n.effect_in) {
    Value* r = (*this)(n.effect_in);
    changed |= r != n.effect_in;
    n.effect_in = r;
  }
  return changed;
}

void Substitution::apply(Graph& g) const {
  if (map_.empty()) return;
  for (auto& n : g.nodes) apply(*n);
  apply_roots(g);
}

void Substitution::apply_roots(Graph& g) const {
  if (map_.empty()) return;
  for (Value*& o : g.outputs) o = (*this)(o);
  for (auto& s : g.variables) s.token_out = (*this)(s.token_out);
  if (g.io_out) g.io_out = (*this)(g.io_out);
}

size_t erase_dead(Graph& g, std::span<Node* const> seeds) {
  UseCounts uses(g);
  std::unordered_set<const Node*> dead;
  std::vector<Node*> work(seeds.begin(), seeds.end());
  while (!work.empty()) {
    Node* n = work.back();
    work.pop_back();
    if (dead.count(n) || has_observable_effect(*n) || !uses.unused(*n)) continue;
    dead.insert(n);
    auto release = [&](Value* v) {
      if (!v) return;
      uses.drop(v);
      if (v->producer && uses[v] == 0) work.push_back(v->producer);
    };
    for (Value* in : n->inputs) release(in);
    release(n->effect_in);
  }
  if (dead.empty()) return 0;
  return g.remove_nodes_if([&](const Node& n) { return dead.count(&n) != 0; });
}

size_t erase_all_dead(Graph& g) {
  // erase_dead pops from the back: seeding in node order visits users before their producers,
  // so most nodes are decided on their first visit
  std::vector<Node*> seeds;
  seeds.reserve(g.nodes.size());
  for (auto& n : g.nodes) seeds.push_back(n.get());
  return erase_dead(g, seeds);
}

}  // namespace kiln::ir::rewrite
