// The IR verifier: structural and type invariants every graph must satisfy between passes.
#pragma once

#include "compiler/ir/ir.h"

namespace kiln::ir {

/// Checks that `g` is well formed: values defined before use and only within their graph,
/// inputs of each node matching its op's arity, Op nodes' output types agreeing with the op's
/// inference on the input types (unknown and symbolic dims compatible), effect tokens threaded
/// correctly (variable indices in range, tokens of the right chain), subgraph signatures
/// matching cond/while nodes, outputs defined. Throws InvalidArgument "[ir.verify] graph
/// 'NAME', node %N (op): ..." on the first violation.
void verify(const Graph& g);

}  // namespace kiln::ir
