// saved_model: directory layout, manifest (JSON), variables (safetensors), IR text per signature.
#include "nn/saved_model.h"

#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "compiler/ir/parser.h"
#include "ops/dispatch.h"
#include "runtime/file_io.h"
#include "runtime/safetensors.h"

namespace kiln::saved_model {

namespace {

namespace fs = std::filesystem;
using nlohmann::json;

constexpr const char* kComponent = "saved_model";
constexpr const char* kFormatName = "kiln.saved_model";
constexpr const char* kManifest = "manifest.json";
constexpr const char* kVariables = "variables.safetensors";
constexpr uint64_t kMaxManifestBytes = 64 << 20;
constexpr uint64_t kMaxGraphBytes = 1ull << 30;

bool valid_signature_name(std::string_view n) {
  if (n.empty() || n.size() > 64) return false;
  for (char c : n)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-')) return false;
  return true;
}

json spec_to_json(const TensorSpec& s) {
  json dims = json::array();
  for (int64_t d : s.shape.as_list()) dims.push_back(d < 0 ? int64_t(-1) : d);
  return {{"name", s.name}, {"dtype", std::string(dtype_name(s.dtype))}, {"shape", dims}};
}

// Manifest reading: every wrong type or missing field is DataLoss naming the field.
struct Reader {
  std::string where;
  template <class... A>
  [[noreturn]] void bad(A&&... args) const {
    fail<DataLoss>(kComponent, where, std::forward<A>(args)...);
  }
  const json& field(const json& obj, const char* key, json::value_t type) const {
    if (!obj.is_object() || !obj.contains(key)) bad("missing field '", key, "'");
    const json& v = obj[key];
    bool ok = v.type() == type || (type == json::value_t::number_integer && v.is_number_integer());
    if (!ok) bad("field '", key, "' has the wrong type");
    return v;
  }
  std::string str(const json& obj, const char* key) const { return field(obj, key, json::value_t::string).get<std::string>(); }
  DType dtype(const json& obj) const {
    std::string n = str(obj, "dtype");
    try {
      return dtype_from_name(n);
    } catch (const Error&) {
      bad("unknown dtype '", n.substr(0, 32), "'");
    }
  }
  Shape shape(const json& obj, bool allow_unknown) const {
    const json& a = field(obj, "shape", json::value_t::array);
    if (a.size() > 64) bad("a shape has ", a.size(), " dims (at most 64)");
    std::vector<int64_t> dims;
    for (const json& d : a) {
      if (!d.is_number_integer()) bad("a shape dim is not an integer");
      int64_t x = d.get<int64_t>();
      if (x < (allow_unknown ? -1 : 0)) bad("a shape dim is ", x);
      dims.push_back(x);
    }
    Shape s(dims);
    if (s.is_fully_defined()) {
      try {
        s.num_elements();
      } catch (const Error&) {
        bad("shape ", s.to_string(), " has too many elements");
      }
    }
    return s;
  }
  TensorSpec spec(const json& obj) const {
    TensorSpec s(shape(obj, true), dtype(obj), str(obj, "name"));
    return s;
  }
};

std::string shape_desc(const Shape& s) {
  std::string r = "(";
  for (int64_t i = 0; i < s.rank(); ++i) {
    int64_t d = s.dim(size_t(i));
    r += (i ? ", " : "") + (d < 0 ? std::string("None") : std::to_string(d));
  }
  return r + (s.rank() == 1 ? ",)" : ")");
}

}  // namespace

void save(const nn::Module& module, const std::string& dir, const Signatures& signatures) {
  if (signatures.empty()) fail<InvalidArgument>(kComponent, "save needs at least one signature");
  std::set<std::string> names;
  for (auto& [name, cf] : signatures) {
    if (!valid_signature_name(name))
      fail<InvalidArgument>(kComponent, "signature name '", name, "' must be 1-64 characters from [A-Za-z0-9_-]");
    if (!names.insert(name).second) fail<InvalidArgument>(kComponent, "signature name '", name, "' appears twice");
    if (!cf.state()) fail<InvalidArgument>(kComponent, "signature '", name, "' holds no concrete function");
  }

  // the variables: the module's under their paths, then any other captured ones
  ops::EagerScope eager;
  std::vector<std::pair<std::string, Variable>> vars;
  std::map<const VariableImpl*, std::string> key_of;
  for (auto& [path, v] : module.named_variables()) {
    if (key_of.emplace(v.impl(), path).second) vars.emplace_back(path, Variable::from_handle(v.handle()));
  }
  json sigs = json::array();
  std::vector<std::pair<std::string, std::string>> graph_files;
  for (auto& [name, cf] : signatures) {
    const ir::Graph& g = cf.graph();
    if (g.inputs.size() != cf.input_specs().size())
      fail<InvalidArgument>(kComponent, "signature '", name, "': its graph has ", g.inputs.size(), " inputs but ",
                            cf.input_specs().size(), " input specs");
    json slot_keys = json::array();
    for (const ir::VariableSlot& slot : g.variables) {
      std::shared_ptr<VariableImpl> v = slot.var.lock();
      if (!v)
        fail<FailedPrecondition>(kComponent, "signature '", name, "' captures variable '", slot.name,
                                 "', which no longer exists");
      auto it = key_of.find(v.get());
      if (it == key_of.end()) {
        std::string key = "captured/" + slot.name;
        for (int i = 1; std::any_of(vars.begin(), vars.end(), [&](auto& p) { return p.first == key; }); ++i)
          key = "captured/" + slot.name + "_" + std::to_string(i);
        it = key_of.emplace(v.get(), key).first;
        vars.emplace_back(key, Variable::from_handle(v));
      }
      slot_keys.push_back(it->second);
    }
    json inputs = json::array(), outputs = json::array();
    for (auto& s : cf.input_specs()) inputs.push_back(spec_to_json(s));
    for (auto& s : cf.output_specs()) outputs.push_back(spec_to_json(s));
    std::string file = "signatures/" + name + ".kir";
    sigs.push_back({{"name", name}, {"graph", file}, {"inputs", inputs}, {"outputs", outputs}, {"variables", slot_keys}});
    graph_files.emplace_back(file, g.to_string());
  }

  json var_list = json::array();
  std::vector<std::pair<std::string, Tensor>> values;
  for (auto& [key, v] : vars) {
    json dims = json::array();
    for (int64_t d : v.shape().as_list()) dims.push_back(d);
    var_list.push_back({{"key", key}, {"dtype", std::string(dtype_name(v.dtype()))}, {"shape", dims},
                        {"trainable", v.trainable()}});
    values.emplace_back(key, v.read_value());
  }
  json manifest = {{"format", kFormatName},
                   {"version", kFormatVersion},
                   {"ir_version", ir::kIrVersion},
                   {"module", {{"name", module.name()}, {"type", module.type_name()}}},
                   {"variables", var_list},
                   {"signatures", sigs}};

  std::error_code ec;
  fs::create_directories(fs::path(dir) / "signatures", ec);
  if (ec) fail<InvalidArgument>(kComponent, "cannot create directory '", dir, "/signatures': ", ec.message());
  safetensors::save((fs::path(dir) / kVariables).string(), values, {{"format", kFormatName}});
  for (auto& [file, text] : graph_files) io::write_file_atomic((fs::path(dir) / file).string(), text, kComponent);
  io::write_file_atomic((fs::path(dir) / kManifest).string(), manifest.dump(2) + "\n", kComponent);
}

LoadedModel load(const std::string& dir) {
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) fail<NotFound>(kComponent, "no saved model directory '", dir, "'");
  std::string manifest_path = (fs::path(dir) / kManifest).string();
  Reader r{"'" + manifest_path + "': "};
  json m;
  {
    std::string text = io::read_file(manifest_path, kComponent, kMaxManifestBytes);
    try {
      m = json::parse(text);
    } catch (const json::exception& e) {
      r.bad("not valid JSON: ", e.what());
    }
  }
  if (!m.is_object()) r.bad("not a JSON object");
  if (r.str(m, "format") != kFormatName) r.bad("format is not '", kFormatName, "'");
  int64_t version = r.field(m, "version", json::value_t::number_integer).get<int64_t>();
  if (version != kFormatVersion)
    fail<Unimplemented>(kComponent, "'", dir, "' has saved model format version ", version, "; this Kiln reads version ",
                        kFormatVersion);
  int64_t ir_version = r.field(m, "ir_version", json::value_t::number_integer).get<int64_t>();
  if (ir_version != ir::kIrVersion)
    fail<Unimplemented>(kComponent, "'", dir, "' holds IR version ", ir_version, "; this Kiln reads version ",
                        ir::kIrVersion);

  LoadedModel out;
  out.path_ = dir;
  const json& mod = r.field(m, "module", json::value_t::object);
  out.module_name_ = r.str(mod, "name");
  out.module_type_ = r.str(mod, "type");

  // variables: the manifest's list, values from the safetensors file
  safetensors::Contents contents = safetensors::load((fs::path(dir) / kVariables).string());
  std::map<std::string, std::shared_ptr<VariableImpl>> by_key;
  {
    ops::EagerScope eager;
    for (const json& v : r.field(m, "variables", json::value_t::array)) {
      std::string key = r.str(v, "key");
      DType dt = r.dtype(v);
      Shape shape = r.shape(v, false);
      bool trainable = r.field(v, "trainable", json::value_t::boolean).get<bool>();
      const Tensor* value = contents.find(key);
      if (!value) r.bad("variable '", key, "' is missing from ", kVariables);
      if (value->dtype() != dt || value->shape() != shape)
        r.bad("variable '", key, "' is ", dtype_name(dt), " ", shape.to_string(), " in the manifest but ",
              dtype_name(value->dtype()), " ", value->shape().to_string(), " in ", kVariables);
      if (by_key.count(key)) r.bad("variable '", key, "' appears twice");
      Variable var(*value, key, trainable);
      by_key.emplace(key, var.handle());
      out.vars_.emplace_back(key, std::move(var));
    }
  }

  std::set<std::string> names;
  for (const json& s : r.field(m, "signatures", json::value_t::array)) {
    std::string name = r.str(s, "name");
    if (!valid_signature_name(name)) r.bad("bad signature name '", name.substr(0, 64), "'");
    if (!names.insert(name).second) r.bad("signature '", name, "' appears twice");
    // the graph file's name comes from the (checked) signature name, never from the manifest
    std::string file = (fs::path(dir) / "signatures" / (name + ".kir")).string();
    std::string text = io::read_file(file, kComponent, kMaxGraphBytes);
    std::unique_ptr<ir::Graph> g;
    try {
      g = ir::parse_graph(text);
    } catch (const InvalidArgument& e) {
      fail<DataLoss>(kComponent, "'", file, "' is not a valid graph: ", e.what());
    }
    Reader rs{r.where + "signature '" + name + "': "};
    std::vector<TensorSpec> specs;
    for (const json& j : rs.field(s, "inputs", json::value_t::array)) specs.push_back(rs.spec(j));
    size_t n_outputs = rs.field(s, "outputs", json::value_t::array).size();
    const json& slot_keys = rs.field(s, "variables", json::value_t::array);
    if (specs.size() != g->inputs.size() || n_outputs != g->outputs.size() || slot_keys.size() != g->variables.size())
      rs.bad("the manifest lists ", specs.size(), " inputs, ", n_outputs, " outputs and ", slot_keys.size(),
             " variables but the graph has ", g->inputs.size(), ", ", g->outputs.size(), " and ", g->variables.size());
    bool relaxed = false;
    for (size_t i = 0; i < specs.size(); ++i) {
      const ir::TensorType& t = g->inputs[i]->type;
      bool same = t.dtype == specs[i].dtype && t.shape.rank() == specs[i].shape.rank();
      for (int64_t d = 0; same && d < t.shape.rank(); ++d) {
        int64_t a = t.shape.dim(size_t(d)), b = specs[i].shape.dim(size_t(d));
        same = (a < 0) == (b < 0) && (a < 0 || a == b);
      }
      if (!same) rs.bad("input ", i, " is ", specs[i].to_string(), " in the manifest but differs in the graph");
      relaxed |= !specs[i].shape.is_fully_defined();
      if (specs[i].name.empty()) specs[i].name = "arg" + std::to_string(i);
    }
    for (size_t i = 0; i < g->variables.size(); ++i) {
      if (!slot_keys[i].is_string()) rs.bad("variable slot ", i, " is not a key");
      std::string key = slot_keys[i].get<std::string>();
      auto it = by_key.find(key);
      if (it == by_key.end()) rs.bad("variable slot ", i, " names the unknown variable '", key, "'");
      ir::VariableSlot& slot = g->variables[i];
      if (slot.type.dtype != it->second->dtype() || slot.type.shape != it->second->shape())
        rs.bad("variable slot ", i, " ('", key, "') has another type in the graph than the saved variable");
      slot.var = it->second;
    }
    auto cs = make_ref<trace::ConcreteState>();
    cs->fn_name = name;
    cs->input_specs = specs;
    cs->relaxed = relaxed;
    cs->header = name + "(";
    for (size_t i = 0; i < specs.size(); ++i) {
      cs->header += (i ? ", " : "") + specs[i].name;
      cs->arg_lines.push_back(specs[i].name + ": " + specs[i].to_string());
      cs->arg_descs.push_back(specs[i].to_string());
    }
    cs->header += ")";
    for (ir::Value* o : g->outputs) cs->out_types.push_back(o->type);
    trace::compile_concrete(*cs, std::move(g));
    out.sigs_.emplace_back(name, ConcreteFunction(cs));
  }
  if (out.sigs_.empty()) r.bad("no signatures");
  return out;
}

std::vector<std::string> LoadedModel::signature_keys() const {
  std::vector<std::string> k;
  for (auto& [n, f] : sigs_) k.push_back(n);
  return k;
}

ConcreteFunction LoadedModel::signature(const std::string& name) const {
  for (auto& [n, f] : sigs_)
    if (n == name) return f;
  std::string known;
  for (auto& [n, f] : sigs_) known += (known.empty() ? "" : ", ") + n;
  fail<NotFound>(kComponent, "no signature '", name, "' (the saved model has: ", known, ")");
}

std::vector<Tensor> LoadedModel::call(const std::string& name, std::span<const Tensor> args) const {
  return signature(name)(args);
}

std::vector<Tensor> LoadedModel::operator()(std::span<const Tensor> args) const {
  for (auto& [n, f] : sigs_) {
    const auto& specs = f.input_specs();
    bool fits = specs.size() == args.size();
    for (size_t i = 0; fits && i < args.size(); ++i) fits = args[i].defined() && specs[i].is_compatible_with(args[i]);
    if (fits) return f(args);
  }
  std::string got;
  for (size_t i = 0; i < args.size(); ++i)
    got += (i ? ", " : "") + (args[i].defined() ? TensorSpec::from_tensor(args[i]).to_string() : std::string("None"));
  std::string sigs;
  for (auto& [n, f] : sigs_) sigs += "\n  " + f.pretty_printed_signature();
  fail<InvalidArgument>(kComponent, "no saved signature of '", path_, "' accepts (", got,
                        "); a loaded model cannot trace new signatures. Its signatures:", sigs);
}

std::vector<Variable> LoadedModel::trainable_variables() const {
  std::vector<Variable> out;
  for (auto& [k, v] : vars_)
    if (v.trainable()) out.push_back(Variable::from_handle(v.handle()));
  return out;
}

std::string describe(const std::string& dir) {
  LoadedModel m = load(dir);
  std::ostringstream os;
  os << "saved model '" << dir << "' (format " << kFormatVersion << ", IR " << ir::kIrVersion << "): "
     << m.module_type() << " '" << m.module_name() << "'\n";
  os << "\nSignatures (" << m.signature_keys().size() << "):\n";
  for (auto& name : m.signature_keys()) {
    std::string sig = m.signature(name).pretty_printed_signature();
    std::string line;
    std::istringstream in(sig);
    while (std::getline(in, line)) os << "  " << line << "\n";
  }
  int64_t params = 0;
  size_t width = 0;
  for (auto& [k, v] : m.variables()) width = std::max(width, k.size());
  os << "\nVariables (" << m.variables().size() << "):\n";
  for (auto& [k, v] : m.variables()) {
    params += v.shape().num_elements();
    os << "  " << k << std::string(width - k.size() + 2, ' ') << dtype_name(v.dtype()) << " " << shape_desc(v.shape())
       << (v.trainable() ? "" : "  non-trainable") << "\n";
  }
  os << "  total: " << params << " parameters\n";
  for (auto& name : m.signature_keys()) {
    os << "\nGraph of '" << name << "':\n" << m.signature(name).graph().to_string();
  }
  return os.str();
}

}  // namespace kiln::saved_model
