// The dce pass: removes nodes whose outputs nobody uses and that have no observable effect,
// repeatedly (a removed node's inputs may lose their last use), in the graph and its subgraphs.
#include "compiler/passes/pass.h"
#include "compiler/passes/rewrite.h"

namespace kiln::ir {
namespace {

size_t dce(Graph& g) {
  // erase_dead follows each removal to the producers it freed, so one call reaches the fixed point
  size_t removed = rewrite::erase_all_dead(g);
  for (auto& n : g.nodes)
    for (auto& sg : n->subgraphs) removed += dce(*sg);
  return removed;
}

class DcePass final : public Pass {
 public:
  std::string_view name() const override { return "dce"; }
  bool run(Graph& g, const PassContext&) override { return dce(g) > 0; }
};

}  // namespace

std::unique_ptr<Pass> make_dce_pass() { return std::make_unique<DcePass>(); }

}  // namespace kiln::ir
