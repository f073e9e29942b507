// Graph passes and the pipeline that runs them (DESIGN.md §5, Passes).
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "compiler/ir/ir.h"

namespace kiln::ir {

/// What a pass may need to know about where it runs.
struct PassContext {
  /// The function being compiled (for logs, dumps and error messages).
  std::string function_name = "graph";
};

/// One graph transformation.
class Pass {
 public:
  virtual ~Pass() = default;
  /// kebab-case, e.g. "constant-folding"; used by KILN_DISABLE_PASSES and KILN_DUMP_IR.
  virtual std::string_view name() const = 0;
  /// Transforms `g` in place; returns whether anything changed.
  virtual bool run(Graph& g, const PassContext& ctx) = 0;
};

/// An ordered list of passes. `run` verifies the graph after every pass that changed it
/// (a failure is Internal naming the pass), dumps the IR before and after each pass to
/// `$KILN_DUMP_IR/<function>.<NN>.<pass>.kir` when that variable is set, skips passes named in
/// `KILN_DISABLE_PASSES` (comma-separated), and logs each pass's time at debug level.
class PassPipeline {
 public:
  PassPipeline& add(std::unique_ptr<Pass> pass);
  /// Runs every pass once, in order; returns whether any changed the graph.
  bool run(Graph& g, const PassContext& ctx) const;
  const std::vector<std::unique_ptr<Pass>>& passes() const { return passes_; }

 private:
  std::vector<std::unique_ptr<Pass>> passes_;
};

/// The passes, one per file in compiler/passes/.
std::unique_ptr<Pass> make_prune_pass();             // "prune": keep what outputs and effects need
std::unique_ptr<Pass> make_constant_folding_pass();  // "constant-folding"
std::unique_ptr<Pass> make_cse_pass();               // "cse"
std::unique_ptr<Pass> make_simplify_pass();          // "simplify": algebraic identities
std::unique_ptr<Pass> make_dce_pass();               // "dce": unused effect-free nodes

/// The default optimization pipeline for traced functions (compiler/passes/pipelines.cpp).
const PassPipeline& default_pipeline();

}  // namespace kiln::ir
