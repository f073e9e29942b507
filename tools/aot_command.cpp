// `kiln aot`: a saved model's signatures, at chosen shapes, as an object file and a C++ header
// (compiler/aot/aot.h, docs/aot.md).
#include "tools/aot_command.h"

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "kiln/kiln.h"
#ifdef KILN_WITH_LLVM
#include "compiler/aot/aot.h"
#endif

namespace kiln::tools {
namespace {

// "32x64;32" -> {[32, 64], [32]}; "scalar" is a rank-0 shape.
[[maybe_unused]] std::vector<Shape> parse_shapes(const std::string& text, const std::string& sig) {
  std::vector<Shape> out;
  size_t at = 0;
  while (at <= text.size()) {
    size_t end = text.find(';', at);
    if (end == std::string::npos) end = text.size();
    std::string one = text.substr(at, end - at);
    Shape s;
    if (one != "scalar") {
      size_t p = 0;
      while (p <= one.size()) {
        size_t q = one.find('x', p);
        if (q == std::string::npos) q = one.size();
        std::string d = one.substr(p, q - p);
        if (d.empty() || d.size() > 12 || d.find_first_not_of("0123456789") != std::string::npos)
          fail<InvalidArgument>("aot", "signature '", sig, "': bad shape '", one,
                                "' (dims are numbers joined by 'x', inputs separated by ';', e.g. 32x64;32)");
        s.push_back(std::stoll(d));
        p = q + 1;
      }
    }
    out.push_back(s);
    at = end + 1;
  }
  return out;
}

[[maybe_unused]] void write(const std::string& path, const std::string& data) {
  std::ofstream f(path, std::ios::binary);
  f.write(data.data(), std::streamsize(data.size()));
  if (!f) fail<InvalidArgument>("aot", "cannot write ", path);
}

}  // namespace

int aot_command(const std::vector<std::string>& args) {
#ifndef KILN_WITH_LLVM
  std::fprintf(stderr, "kiln aot: this Kiln was built without LLVM (KILN_WITH_LLVM=OFF)\n");
  return 1;
#else
  std::string dir, out, name;
  std::vector<std::string> sigs;
  bool onednn = false, weights_file = false;
  for (size_t i = 0; i < args.size(); ++i) {
    if (args[i] == "-o" && i + 1 < args.size())
      out = args[++i];
    else if (args[i] == "--name" && i + 1 < args.size())
      name = args[++i];
    else if (args[i] == "--signature" && i + 1 < args.size())
      sigs.push_back(args[++i]);
    else if (args[i] == "--onednn")
      onednn = true;
    else if (args[i] == "--weights-file")
      weights_file = true;
    else if (dir.empty() && args[i][0] != '-')
      dir = args[i];
    else
      fail<InvalidArgument>("aot", "unexpected argument '", args[i], "'");
  }
  if (dir.empty() || out.empty())
    fail<InvalidArgument>("aot",
                          "usage: kiln aot DIR -o OUT_PREFIX [--name IDENT] "
                          "[--signature NAME[:SHAPES]]... [--onednn]");
  if (name.empty()) {
    name = std::filesystem::path(out).filename().string();
    for (char& c : name)
      if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
    if (!name.empty() && std::isdigit(static_cast<unsigned char>(name[0]))) name = "_" + name;
  }
  saved_model::LoadedModel model = saved_model::load(dir);
  if (sigs.empty()) sigs = model.signature_keys();
  std::vector<aot::Entry> entries;
  for (const std::string& s : sigs) {
    size_t colon = s.find(':');
    std::string sig = s.substr(0, colon);
    ConcreteFunction cf = model.signature(sig);
    aot::Entry e;
    e.signature = sig;
    e.graph = cf.state()->optimized;
    for (const TensorSpec& spec : cf.input_specs()) e.input_names.push_back(spec.name);
    if (colon != std::string::npos) {
      e.shapes = parse_shapes(s.substr(colon + 1), sig);
    } else {
      for (const TensorSpec& spec : cf.input_specs()) {
        if (!spec.shape.is_fully_defined())
          fail<InvalidArgument>("aot", "signature '", sig, "' has input '", spec.name, "' of shape ",
                                spec.shape.to_list_string(), " with unknown dims: give shapes, e.g. --signature ", sig,
                                ":32x64");
        e.shapes.push_back(spec.shape);
      }
    }
    entries.push_back(std::move(e));
  }
  aot::Options o;
  o.name = name;
  o.onednn = onednn;
  o.source = dir;
  o.weights_file = weights_file;
  aot::Artifact a = aot::compile(entries, o);
  write(out + ".o", a.object);
  write(out + ".h", a.header);
  if (weights_file) write(out + ".safetensors", a.weights);
  std::printf("kiln aot: wrote %s.o (%zu bytes) and %s.h (class %s, %zu entry points)\n", out.c_str(), a.object.size(),
              out.c_str(), name.c_str(), entries.size());
  return 0;
#endif
}

}  // namespace kiln::tools
