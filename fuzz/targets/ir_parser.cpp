// Fuzz target: ir::parse_graph on arbitrary text. Whatever parses must print, and the printed
// text must parse back to a graph that prints the same and has the same structural hash.
#include <cstdint>

#include "compiler/ir/parser.h"
#include "fuzz/fuzz_common.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace kiln;
  std::string_view text(reinterpret_cast<const char*>(data), size);
  std::unique_ptr<ir::Graph> g;
  try {
    g = ir::parse_graph(text);
  } catch (const Error&) {
    return 0;
  }
  KILN_FUZZ_CHECK(g != nullptr);
  std::string printed = g->to_string();
  std::unique_ptr<ir::Graph> again;
  try {
    again = ir::parse_graph(printed);
  } catch (const Error& e) {
    std::fprintf(stderr, "re-parse failed: %s\nprinted:\n%s\n", e.what(), printed.c_str());
    KILN_FUZZ_CHECK(!"the printed form of a parsed graph parses");
  }
  std::string reprinted = again->to_string();
  if (reprinted != printed) std::fprintf(stderr, "printed:\n%s\nreprinted:\n%s\n", printed.c_str(), reprinted.c_str());
  KILN_FUZZ_CHECK(reprinted == printed);
  KILN_FUZZ_CHECK(again->structural_hash() == g->structural_hash());
  return 0;
}
