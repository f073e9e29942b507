// Ahead-of-time compilation (compiler/aot/aot.h): specialize, lower with a buffer per output,
// refuse fallbacks, emit one object, and write the C++ header that wraps its entry points.
#include "compiler/aot/aot.h"

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <cstring>
#include <map>
#include <sstream>

#include "compiler/backend/cpu/codegen.h"
#include "compiler/backend/cpu/plan.h"
#include "ops/variable.h"
#include "runtime/safetensors.h"

namespace kiln::aot {
namespace {

using backend::cpu::Buffer;
using backend::cpu::Plan;

constexpr size_t kAlign = 64;
size_t align_up(size_t n) { return (n + kAlign - 1) / kAlign * kAlign; }

bool is_identifier(std::string_view s) {
  if (s.empty() || std::isdigit(static_cast<unsigned char>(s[0]))) return false;
  for (char c : s)
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '_') return false;
  return true;
}

std::string c_type(DType t) {
  switch (t) {
    case DType::Float32:
      return "float";
    case DType::Float64:
      return "double";
    case DType::Int8:
      return "int8_t";
    case DType::Int16:
      return "int16_t";
    case DType::Int32:
      return "int32_t";
    case DType::Int64:
      return "int64_t";
    case DType::UInt8:
      return "uint8_t";
    case DType::UInt16:
      return "uint16_t";
    case DType::UInt32:
      return "uint32_t";
    case DType::UInt64:
      return "uint64_t";
    case DType::Bool:
      return "bool";
    default:
      fail<InvalidArgument>("aot", "dtype ", dtype_name(t), " has no C type");
  }
}

std::string type_string(DType t, const Shape& s) { return std::string(dtype_name(t)) + s.to_list_string(); }

// A C string literal for `s` (names may hold '/', quotes are escaped).
std::string quoted(std::string_view s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  return out + "\"";
}

// A C string literal holding `s` byte for byte (octal escapes for everything but printable
// ASCII, so embedded zeros and UTF-8 survive any source encoding).
std::string c_bytes(std::string_view s) {
  std::string out = "\"";
  for (unsigned char c : s) {
    if (c >= 0x20 && c < 0x7f && c != '"' && c != '\\' && c != '?') {
      out += char(c);
    } else {
      char buf[5];
      std::snprintf(buf, sizeof buf, "\\%03o", c);
      out += buf;
    }
  }
  return out + "\"";
}

struct Compiled {
  const Entry* entry;
  std::string method, symbol;  // "serve_0", "NAME_serve_0"
  std::shared_ptr<const ir::Graph> graph;
  Plan plan;
  std::vector<int> var_index;                // per graph slot: index into the object's variables
  size_t scratch_bytes = 0;                  // assigned values, after the arena
  std::map<int64_t, size_t> scratch_offset;  // Result index of an assigned value -> offset
};

// The C++ names of an entry's inputs and outputs: the given names when they are identifiers,
// else arg<i> / output<i>.
std::pair<std::vector<std::string>, std::vector<std::string>> parameter_names(const Compiled& c) {
  const Entry& e = *c.entry;
  const ir::Graph& g = *c.graph;
  auto ident = [](const std::string& s, const std::string& fallback) { return is_identifier(s) ? s : fallback; };
  std::vector<std::string> ins, outs;
  for (size_t i = 0; i < g.inputs.size(); ++i)
    ins.push_back(ident(i < e.input_names.size() ? e.input_names[i] : g.inputs[i]->name, "arg" + std::to_string(i)));
  for (size_t i = 0; i < g.outputs.size(); ++i)
    outs.push_back(ident(i < e.output_names.size() ? e.output_names[i] : "", "output" + std::to_string(i)));
  return {std::move(ins), std::move(outs)};
}

struct Var {
  std::string name;
  DType dtype;
  Shape shape;
  size_t offset, bytes;
};

// The class's constructor: copies the embedded weights, or reads them from a safetensors file
// written with the object. The file is checked before anything is copied: its exact size, and
// its header byte for byte against the one written (so names, dtypes, shapes and offsets are
// the compiled ones); anything else throws std::runtime_error naming the file.
std::string weights_constructor(const Options& options, const std::vector<Var>& vars, const std::string& weights,
                                Artifact& out) {
  const std::string& N = options.name;
  std::ostringstream h;
  const std::string alloc = "vars_(new unsigned char[kWeightBytes + 64]), work_(new unsigned char[kWorkBytes + 64])";
  if (!options.weights_file) {
    h << "  " << N << "() : " << alloc << " {\n    std::memcpy(vars(), " << N << "_weights, kWeightBytes);\n  }\n";
    return h.str();
  }
  // the file: the variables under unique names, contiguous in name order (safetensors' layout)
  std::vector<std::pair<std::string, Tensor>> named;
  std::vector<std::string> keys;
  for (size_t i = 0; i < vars.size(); ++i) {
    std::string key = vars[i].name;
    for (size_t j = 0; j < i; ++j)
      if (keys[j] == key) key = vars[i].name + "#" + std::to_string(i);
    keys.push_back(key);
    Tensor t = Tensor::empty(vars[i].shape, vars[i].dtype);
    if (vars[i].bytes) std::memcpy(t.mutable_raw_data(), weights.data() + vars[i].offset, vars[i].bytes);
    named.emplace_back(key, t);
  }
  out.weights = safetensors::encode(named);
  uint64_t header_len = 0;
  std::memcpy(&header_len, out.weights.data(), 8);
  std::vector<size_t> order(vars.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) { return keys[a] < keys[b]; });
  std::vector<size_t> data_offset(vars.size());
  size_t at = 8 + size_t(header_len);
  for (size_t i : order) {
    data_offset[i] = at;
    at += vars[i].bytes;
  }
  const std::string prefix = out.weights.substr(0, 8 + size_t(header_len));  // length and JSON header
  h << "  /// Reads the weights from the safetensors file `kiln aot --weights-file` wrote with the object;\n"
    << "  /// throws std::runtime_error when it cannot be read or is not that file.\n"
    << "  explicit " << N << "(const char* weights_path) : " << alloc << " {\n"
    << "    static const char kPrefix[] = " << c_bytes(prefix) << ";\n"
    << "    std::unique_ptr<std::FILE, int (*)(std::FILE*)> f(std::fopen(weights_path, \"rb\"), &std::fclose);\n"
    << "    if (!f) throw std::runtime_error(std::string(\"" << N << ": cannot open \") + weights_path);\n"
    << "    std::string bytes;\n    char buf[65536];\n"
    << "    for (size_t n; (n = std::fread(buf, 1, sizeof buf, f.get())) > 0 && bytes.size() <= " << out.weights.size()
    << "u;) bytes.append(buf, n);\n"
    << "    if (bytes.size() != " << out.weights.size() << "u || std::memcmp(bytes.data(), kPrefix, " << prefix.size()
    << ") != 0)\n"
    << "      throw std::runtime_error(std::string(\"" << N << ": \") + weights_path +\n"
    << "                               \" is not the weights file compiled with this header\");\n";
  for (size_t i = 0; i < vars.size(); ++i)
    h << "    std::memcpy(vars() + " << vars[i].offset << ", bytes.data() + " << data_offset[i] << ", " << vars[i].bytes
      << ");  // " << vars[i].name << "\n";
  h << "  }\n";
  return h.str();
}

}  // namespace

Artifact compile(const std::vector<Entry>& entries, const Options& options) {
  if (!is_identifier(options.name)) fail<InvalidArgument>("aot", "name '", options.name, "' is not a C identifier");
  if (entries.empty()) fail<InvalidArgument>("aot", "nothing to compile: no entries");

  std::vector<Compiled> compiled;
  std::vector<Var> vars;
  std::map<const VariableImpl*, int> var_ids;
  std::string weights;
  std::map<std::string, int> per_signature;
  for (const Entry& e : entries) {
    if (!is_identifier(e.signature))
      fail<InvalidArgument>("aot", "signature name '", e.signature, "' is not a C identifier");
    if (e.shapes.size() != e.graph->inputs.size())
      fail<InvalidArgument>("aot", "signature '", e.signature, "' takes ", e.graph->inputs.size(), " inputs, got ",
                            e.shapes.size(), " shapes");
    for (size_t i = 0; i < e.shapes.size(); ++i) {
      const Shape& want = e.graph->inputs[i]->type.shape;
      bool fits = e.shapes[i].is_fully_defined() && e.shapes[i].rank() == want.rank();
      for (int64_t d = 0; fits && d < want.rank(); ++d)
        fits = want.dim(size_t(d)) < 0 || want.dim(size_t(d)) == e.shapes[i].dim(size_t(d));
      if (!fits)
        fail<InvalidArgument>("aot", "signature '", e.signature, "': shape ", e.shapes[i].to_list_string(),
                              " does not fit input ", i, " of type ",
                              ir::type_to_string(e.graph->inputs[i]->type, e.graph.get()));
    }
    for (const Compiled& c : compiled)
      if (c.entry->signature == e.signature && c.entry->shapes == e.shapes)
        fail<InvalidArgument>("aot", "signature '", e.signature, "' is listed twice with the same shapes");
    Compiled c;
    c.entry = &e;
    int k = per_signature[e.signature]++;
    c.method = e.signature + "_" + std::to_string(k);
    c.symbol = options.name + "_" + c.method;
    c.graph = backend::cpu::specialize(*e.graph, e.shapes);
    if (!c.graph)
      fail<FailedPrecondition>("aot", "signature '", e.signature,
                               "' has shapes that depend on values; it cannot be "
                               "compiled ahead of time");
    backend::cpu::LowerOptions lo;
    lo.dedicated_outputs = true;
    lo.library_matmul = options.onednn;
    // the object calls dnnl_sgemm, which has no post-ops: epilogues stay loops
    lo.epilogues = backend::cpu::LowerOptions::Epilogues::None;
    c.plan = backend::cpu::lower(*c.graph, lo);
    if (!c.plan.fallbacks.empty()) {
      std::string list;
      for (const auto& f : c.plan.fallbacks) list += (list.empty() ? "" : ", ") + f;
      fail<FailedPrecondition>("aot", "signature '", e.signature, "' has nodes without native code: ", list);
    }
    for (const auto& slot : c.graph->variables) {
      std::shared_ptr<VariableImpl> v = slot.var.lock();
      if (!v) fail<FailedPrecondition>("aot", "variable '", slot.name, "' no longer exists");
      auto [it, fresh] = var_ids.emplace(v.get(), int(vars.size()));
      if (fresh) {
        Tensor value = v->value();
        size_t offset = weights.size();
        weights.append(static_cast<const char*>(value.raw_data()), value.nbytes());
        weights.resize(align_up(weights.size()), '\0');
        vars.push_back({slot.name, value.dtype(), value.shape(), offset, value.nbytes()});
      }
      c.var_index.push_back(it->second);
    }
    for (auto [slot, buffer] : c.plan.assigns) {
      int64_t r = c.plan.buffers[size_t(buffer)].index;
      if (c.plan.buffers[size_t(buffer)].kind == Buffer::Kind::Result && !c.scratch_offset.count(r)) {
        c.scratch_offset[r] = c.scratch_bytes;
        c.scratch_bytes += align_up(c.plan.buffers[size_t(buffer)].bytes());
      }
    }
    compiled.push_back(std::move(c));
  }

  std::vector<backend::cpu::AotEntry> aot_entries;
  for (const Compiled& c : compiled) aot_entries.push_back({&c.plan, c.symbol});
  backend::cpu::AotObjectOptions oo;
  oo.onednn = options.onednn;
  if (!options.weights_file) {
    oo.data_symbol = options.name + "_weights";
    oo.data = weights.empty() ? std::string(kAlign, '\0') : weights;
  }
  Artifact out;
  out.object = backend::cpu::emit_aot_object(aot_entries, oo);

  size_t work_bytes = kAlign;
  for (const Compiled& c : compiled) work_bytes = std::max(work_bytes, align_up(c.plan.arena_bytes) + c.scratch_bytes);

  // ---- the header --------------------------------------------------------------------------
  const std::string& N = options.name;
  std::ostringstream h;
  h << "// " << N << ".h: generated by `kiln aot`" << (options.source.empty() ? "" : " from " + options.source)
    << ". Do not edit.\n"
    << "// Compiled for " << backend::cpu::target_id().substr(0, backend::cpu::target_id().find(" +")) << ".\n"
    << "// Needs only the C and C++ standard libraries" << (options.onednn ? " and oneDNN (libdnnl)" : "")
    << ". One instance runs one call at a time; use one per thread.\n"
    << "#pragma once\n\n#include <cstddef>\n#include <cstdint>\n#include <cstdio>\n#include <cstring>\n#include "
       "<memory>\n#include <stdexcept>\n#include <string>\n\n";
  h << "extern \"C\" {\n"
    << "// Raw entry points: args = inputs, then the variables' values (in variables() order); results =\n"
    << "// outputs, then scratch for assigned values; arena = " << N << "::kWorkBytes bytes, 64-byte aligned.\n"
    << "// Return 0, or nonzero when the compiled code failed.\n";
  for (const Compiled& c : compiled)
    h << "int32_t " << c.symbol << "(void* const* args, void* const* results, void* arena);\n";
  if (!options.weights_file) h << "extern const unsigned char " << N << "_weights[];\n";
  h << "}\n\n";

  h << "class " << N << " {\n public:\n"
    << "  static constexpr size_t kWeightBytes = " << std::max<size_t>(weights.size(), kAlign) << ";\n"
    << "  static constexpr size_t kWorkBytes = " << work_bytes << ";\n"
    << "  static constexpr size_t kNumVariables = " << vars.size() << ";\n\n"
    << weights_constructor(options, vars, weights, out) << "  " << N << "(const " << N << "&) = delete;\n"
    << "  " << N << "& operator=(const " << N << "&) = delete;\n\n";

  for (const Compiled& c : compiled) {
    const Entry& e = *c.entry;
    const ir::Graph& g = *c.graph;
    const auto [ins, outs] = parameter_names(c);
    h << "  /// " << e.signature << "(";
    for (size_t i = 0; i < ins.size(); ++i)
      h << (i ? ", " : "") << ins[i] << ": " << type_string(g.inputs[i]->type.dtype, g.inputs[i]->type.shape);
    h << ") -> ";
    for (size_t i = 0; i < outs.size(); ++i)
      h << (i ? ", " : "") << outs[i] << ": " << type_string(g.outputs[i]->type.dtype, g.outputs[i]->type.shape);
    h << ". Returns 0, or nonzero with error() set.\n  int " << c.method << "(";
    for (size_t i = 0; i < ins.size(); ++i)
      h << (i ? ", " : "") << "const " << c_type(g.inputs[i]->type.dtype) << "* " << ins[i];
    for (size_t i = 0; i < outs.size(); ++i)
      h << (ins.size() + i ? ", " : "") << c_type(g.outputs[i]->type.dtype) << "* " << outs[i];
    h << ") {\n    void* args[] = {";
    for (size_t i = 0; i < ins.size(); ++i)
      h << (i ? ", " : "") << "const_cast<" << c_type(g.inputs[i]->type.dtype) << "*>(" << ins[i] << ")";
    for (size_t s = 0; s < c.var_index.size(); ++s)
      h << (ins.size() + s ? ", " : "") << "vars() + " << vars[size_t(c.var_index[s])].offset;
    if (ins.empty() && c.var_index.empty()) h << "nullptr";
    h << "};\n    void* results[] = {";
    std::vector<std::string> result(c.plan.num_results, "nullptr");
    for (size_t i = 0; i < c.plan.outputs.size(); ++i)
      result[size_t(c.plan.buffers[size_t(c.plan.outputs[i].buffer)].index)] = outs[i];
    size_t arena = align_up(c.plan.arena_bytes);
    for (auto [r, off] : c.scratch_offset) result[size_t(r)] = "work() + " + std::to_string(arena + off);
    for (size_t i = 0; i < result.size(); ++i) h << (i ? ", " : "") << result[i];
    if (result.empty()) h << "nullptr";
    h << "};\n    if (" << c.symbol << "(args, results, work()) != 0) return fail(\"" << c.method
      << ": the compiled code failed\");\n";
    for (auto [slot, buffer] : c.plan.assigns) {
      const Buffer& b = c.plan.buffers[size_t(buffer)];
      const Var& v = vars[size_t(c.var_index[size_t(slot)])];
      h << "    std::memcpy(vars() + " << v.offset << ", work() + " << arena + c.scratch_offset.at(b.index) << ", "
        << v.bytes << ");  // " << v.name << "\n";
    }
    h << "    return 0;\n  }\n\n";
  }

  // dispatching methods, one per signature
  for (const auto& [sig, count] : per_signature) {
    const Compiled* first = nullptr;
    for (const Compiled& c : compiled)
      if (c.entry->signature == sig) {
        first = &c;
        break;
      }
    const ir::Graph& g = *first->graph;
    const auto [ins, outs] = parameter_names(*first);
    h << "  /// " << sig << " on whichever compiled shape fits the inputs' shapes; writes each output's shape\n"
      << "  /// (its rank is fixed). Returns 0, or nonzero with error() set when no compiled shape fits.\n  int " << sig
      << "(";
    for (size_t i = 0; i < ins.size(); ++i)
      h << (i ? ", " : "") << "const " << c_type(g.inputs[i]->type.dtype) << "* " << ins[i] << ", const int64_t* "
        << ins[i] << "_shape, size_t " << ins[i] << "_rank";
    for (size_t i = 0; i < outs.size(); ++i)
      h << (ins.size() + i ? ", " : "") << c_type(g.outputs[i]->type.dtype) << "* " << outs[i] << ", int64_t* "
        << outs[i] << "_shape";
    h << ") {\n";
    std::string compiled_list;
    for (const Compiled& c : compiled) {
      if (c.entry->signature != sig) continue;
      const ir::Graph& cg = *c.graph;
      std::string cond, shapes;
      for (size_t i = 0; i < ins.size(); ++i) {
        const Shape& s = cg.inputs[i]->type.shape;
        cond += std::string(i ? " && " : "") + ins[i] + "_rank == " + std::to_string(s.rank());
        for (int64_t d = 0; d < s.rank(); ++d)
          cond += " && " + ins[i] + "_shape[" + std::to_string(d) + "] == " + std::to_string(s.dim(size_t(d)));
        shapes += std::string(i ? ", " : "") + ins[i] + " " + s.to_list_string();
      }
      if (cond.empty()) cond = "true";
      compiled_list += (compiled_list.empty() ? "" : "; ") + shapes;
      h << "    if (" << cond << ") {\n";
      for (size_t i = 0; i < outs.size(); ++i) {
        const Shape& s = cg.outputs[i]->type.shape;
        for (int64_t d = 0; d < s.rank(); ++d)
          h << "      " << outs[i] << "_shape[" << d << "] = " << s.dim(size_t(d)) << ";\n";
      }
      h << "      return " << c.method << "(";
      for (size_t i = 0; i < ins.size(); ++i) h << (i ? ", " : "") << ins[i];
      for (size_t i = 0; i < outs.size(); ++i) h << (ins.size() + i ? ", " : "") << outs[i];
      h << ");\n    }\n";
    }
    h << "    std::string got;\n";
    for (size_t i = 0; i < ins.size(); ++i) {
      h << "    got += \"" << (i ? ", " : "") << ins[i] << " [\";\n"
        << "    for (size_t d = 0; d < " << ins[i] << "_rank; ++d) got += (d ? \", \" : \"\") + std::to_string("
        << ins[i] << "_shape[d]);\n    got += \"]\";\n";
    }
    h << "    return fail(\"" << sig << ": no compiled shape fits \" + got + \" (compiled: " << compiled_list
      << ")\");\n  }\n\n";
  }

  h << "  /// The last error's message.\n  const char* error() const { return error_.c_str(); }\n\n"
    << "  /// A variable's current value by name (nullptr for an unknown name); `bytes` gets its size.\n"
    << "  void* variable(const char* name, size_t* bytes = nullptr) {\n";
  for (const Var& v : vars)
    h << "    if (std::strcmp(name, " << quoted(v.name) << ") == 0) {  // " << type_string(v.dtype, v.shape)
      << "\n      if (bytes) *bytes = " << v.bytes << ";\n      return vars() + " << v.offset << ";\n    }\n";
  h << "    return nullptr;\n  }\n\n private:\n"
    << "  static unsigned char* aligned(unsigned char* p) {\n"
    << "    return p + (64 - reinterpret_cast<uintptr_t>(p) % 64) % 64;\n  }\n"
    << "  unsigned char* vars() { return aligned(vars_.get()); }\n"
    << "  unsigned char* work() { return aligned(work_.get()); }\n"
    << "  int fail(std::string message) {\n    error_ = std::move(message);\n    return 1;\n  }\n"
    << "  std::unique_ptr<unsigned char[]> vars_, work_;\n  std::string error_;\n};\n";
  out.header = h.str();
  return out;
}

}  // namespace kiln::aot
