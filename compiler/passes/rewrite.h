// Helpers the graph passes share: which nodes may be removed, use counts, value substitution
// and removal of the nodes a rewrite left without uses.
#pragma once

#include <cstddef>
#include <span>
#include <unordered_map>

#include "compiler/ir/ir.h"

namespace kiln::ir::rewrite {

/// True when `n` has an effect someone could observe even if nothing uses its outputs: it
/// produces an effect token, is an I/O op (print, assert), is a stateful op other than a random
/// op (a `call` whose callee is unknown), or holds a subgraph with such a node. Random ops are not
/// observable when their values are unused: their generator state is in their attributes.
bool has_observable_effect(const Node& n);
/// True when some node of `g` (or of its subgraphs) has an observable effect.
bool has_observable_effect(const Graph& g);

/// True for Op nodes that read no state and write none (no tokens, not stateful, not I/O), so
/// that equal inputs give equal outputs on every run.
bool is_pure_op(const Node& n);

/// Number of uses of every value of one graph (node inputs, effect inputs, outputs, final tokens).
class UseCounts {
 public:
  explicit UseCounts(const Graph& g);
  size_t operator[](const Value* v) const {
    auto it = uses_.find(v);
    return it == uses_.end() ? 0 : it->second;
  }
  /// Forgets one use of `v` (its user was removed).
  void drop(const Value* v) {
    auto it = uses_.find(v);
    if (it != uses_.end() && it->second > 0) --it->second;
  }
  /// True when no output and no effect token of `n` has a use.
  bool unused(const Node& n) const;

 private:
  std::unordered_map<const Value*, size_t> uses_;
};

/// A set of pending "use `to` instead of `from`" rewrites for one graph. Passes record
/// replacements while walking nodes in order and apply them to each node before looking at it,
/// which keeps the walk linear (Graph::replace_all_uses scans the whole graph per call).
class Substitution {
 public:
  void add(Value* from, Value* to) { map_[from] = to; }
  bool empty() const { return map_.empty(); }
  /// The value that stands for `v` now (follows chains of replacements).
  Value* operator()(Value* v) const;
  /// Rewrites the data inputs and effect input of `n`; returns whether any changed.
  bool apply(Node& n) const;
  /// Rewrites every node, the graph's outputs and its final tokens.
  void apply(Graph& g) const;
  /// Rewrites only the graph's outputs and final tokens (after the nodes were done one by one).
  void apply_roots(Graph& g) const;

 private:
  std::unordered_map<Value*, Value*> map_;
};

/// Removes the nodes of `g` without uses and without observable effects, starting from
/// `seeds` and following their inputs (a node whose last user goes is removed too). Returns the
/// number of nodes removed.
size_t erase_dead(Graph& g, std::span<Node* const> seeds);
/// erase_dead seeded with every node of `g`: removes all dead code of `g` (not of subgraphs).
size_t erase_all_dead(Graph& g);

}  // namespace kiln::ir::rewrite
