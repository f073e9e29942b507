// Ahead-of-time compilation: traced graphs specialized to chosen shapes become one object file
// with plain C entry points and a self-contained C++ header, for programs that link neither
// LLVM nor Kiln (docs/aot.md).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "compiler/ir/ir.h"

namespace kiln::aot {

/// One entry point: a signature's graph at one concrete shape per input.
struct Entry {
  /// The signature's name ("serve"); entries with the same name form one dispatching method.
  std::string signature;
  std::shared_ptr<const ir::Graph> graph;
  /// Names of the inputs and outputs, for the header (default: the graph's input names, then
  /// arg0...; outputs output0...).
  std::vector<std::string> input_names, output_names;
  /// One fully defined shape per graph input (they must fit the graph's types).
  std::vector<Shape> shapes;
};

struct Options {
  /// The C++ class and the prefix of the C symbols; must be a C identifier.
  std::string name{};
  /// Large float32 matmuls call oneDNN's sgemm (the program then links libdnnl); otherwise all
  /// code is generated.
  bool onednn = false;
  /// Where the graphs came from, for the header's first comment.
  std::string source{};
  /// Keep the weights out of the object: Artifact::weights is a safetensors file of the
  /// variables' values, which the class's constructor reads (and checks) at run time.
  bool weights_file = false;
};

/// The generated files' contents.
struct Artifact {
  std::string object;  // an ELF relocatable object for the host CPU
  std::string header;
  std::string weights;  // with Options::weights_file: the safetensors file's bytes
};

/// Compiles `entries`. Variables the graphs capture must still exist: their current values
/// become the object's initial weights (one copy per class instance, updated by entry points
/// that assign them, e.g. training steps). Throws InvalidArgument for a bad name, no entries,
/// a shape count or shape that does not fit a graph, or two entries of a signature with the
/// same shapes; FailedPrecondition for a graph whose shapes depend on values, that has nodes
/// without native code (listed), or whose variable is gone.
Artifact compile(const std::vector<Entry>& entries, const Options& options);

}  // namespace kiln::aot
