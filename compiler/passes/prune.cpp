// The prune pass: keeps exactly what the graph's observable effects need (its outputs, the final
// token of every variable, the I/O token) and removes everything else. This is what makes graph
// execution non-strict: an unused gather with a bad index is never run (DESIGN.md §5, Passes).
#include <unordered_set>

#include "compiler/passes/pass.h"
#include "compiler/passes/rewrite.h"

namespace kiln::ir {
namespace {

size_t prune(Graph& g) {
  std::unordered_set<const Value*> needed;
  for (Value* o : g.outputs) needed.insert(o);
  for (auto& s : g.variables) needed.insert(s.token_out);
  if (g.io_out) needed.insert(g.io_out);

  // One backward walk: nodes are in topological order, so every user is seen before its producers.
  std::unordered_set<const Node*> live;
  for (auto it = g.nodes.rbegin(); it != g.nodes.rend(); ++it) {
    const Node& n = **it;
    bool keep = n.effect_out && needed.count(n.effect_out);
    for (size_t i = 0; !keep && i < n.num_outputs(); ++i) keep = needed.count(n.output(i)) != 0;
    // A write, print or opaque call that no token chain reaches is a tracer bug, not dead code:
    // keeping it is the safe side.
    keep = keep || rewrite::has_observable_effect(n);
    if (!keep) continue;
    live.insert(&n);
    for (Value* in : n.inputs) needed.insert(in);
    if (n.effect_in) needed.insert(n.effect_in);
  }
  size_t removed = g.remove_nodes_if([&](const Node& n) { return live.count(&n) == 0; });
  // A subgraph's outputs are all needed by its cond/while node; inside, only what they need stays.
  for (auto& n : g.nodes)
    for (auto& sg : n->subgraphs) removed += prune(*sg);
  return removed;
}

class PrunePass final : public Pass {
 public:
  std::string_view name() const override { return "prune"; }
  bool run(Graph& g, const PassContext&) override { return prune(g) > 0; }
};

}  // namespace

std::unique_ptr<Pass> make_prune_pass() { return std::make_unique<PrunePass>(); }

}  // namespace kiln::ir
