// The IR text form's parser: the inverse of Graph::to_string (compiler/ir/printer.cpp).
#pragma once

#include <memory>
#include <string_view>

#include "compiler/ir/ir.h"

namespace kiln::ir {

/// Parses one graph in the text form `Graph::to_string` prints (see docs/ir.md). The result
/// has passed `verify`. Variables parse as named slots without a live variable. Throws
/// InvalidArgument "[ir.parse] line L, column C: ..." for malformed text, an unknown op or
/// attribute, a type mismatch or an unsupported version; never crashes on hostile text.
std::unique_ptr<Graph> parse_graph(std::string_view text);

}  // namespace kiln::ir
