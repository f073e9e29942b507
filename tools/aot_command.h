// `kiln aot DIR -o OUT_PREFIX [--name IDENT] [--signature NAME[:SHAPES]]... [--onednn] [--weights-file]`.
#pragma once

#include <string>
#include <vector>

namespace kiln::tools {

/// Runs `kiln aot` with the arguments after "aot"; returns the exit status. Throws the errors of
/// loading and compiling (the caller prints them).
int aot_command(const std::vector<std::string>& args);

}  // namespace kiln::tools
