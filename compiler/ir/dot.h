// Graphviz DOT output for graphs (`kiln graph --dot`).
#pragma once

#include <string>

#include "compiler/ir/ir.h"

namespace kiln::ir {

/// A `digraph` with one box per node (op name and output types), solid edges for data and
/// dashed edges for effect tokens; subgraphs as clusters. Valid input for `dot -Tsvg`.
std::string to_dot(const Graph& g);

}  // namespace kiln::ir
