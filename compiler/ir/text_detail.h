// Internal helpers shared by the IR printer, parser, verifier and DOT output: the names values
// print under, the quoting of names and strings, and the verifier entry that reports its node.
#pragma once

#include <string>
#include <string_view>
#include <unordered_map>

#include "compiler/ir/ir.h"

namespace kiln::ir::detail {

/// True for names the text form writes bare: [A-Za-z_][A-Za-z0-9_.]*.
bool is_identifier(std::string_view s);
/// `s` in double quotes with `"`, `\` and non-printable bytes escaped (\n, \t, \r, \xHH).
std::string quote(std::string_view s);
/// `s` bare when it is an identifier, else quoted.
std::string ident_or_quote(std::string_view s);

/// The names a graph's values print under: `%name` for named data values (first use of a valid,
/// unused name), `%N` for the others and `!N` for node tokens, numbered together in definition
/// order; entry tokens are `!v<i>` (variable i) and `!io`. Values not defined in the graph
/// print as `%?` (only in invalid graphs).
class ValueNames {
 public:
  explicit ValueNames(const Graph& g);
  /// The printed name with its sigil.
  std::string name(const Value* v) const;
  /// The first result of `n` ("%3", "!4"), or "#k" (its position) when it has none.
  std::string node_name(const Node& n, size_t position) const;

 private:
  std::unordered_map<const Value*, std::string> names_;
};

/// Where a verification failed: the graph (`g` or a subgraph) and the node whose check failed,
/// or a null node for a graph-level check (its outputs and final tokens).
struct VerifyWhere {
  const Graph* graph = nullptr;
  const Node* node = nullptr;
};

/// `verify` that also records, in `where`, the place of the failure before throwing; the parser
/// uses it to point at the offending line.
void verify_reporting(const Graph& g, VerifyWhere& where);

}  // namespace kiln::ir::detail
