// Configs as JSON: checked reading (ConfigReader), initializers, the layer registry with the
// built-in layers' factories (their get_config sits beside each class), and the rebuilding of
// Sequential and functional models. Every config is untrusted: errors are InvalidArgument.
#include "nn/serialization.h"

#include <algorithm>
#include <array>
#include <deque>
#include <limits>
#include <map>
#include <mutex>
#include <set>
#include <utility>

#include "nn/layers.h"
#include "nn/normalization.h"

namespace kiln::nn {

using nlohmann::json;

namespace {

// "string", "array", ... for messages.
std::string type_of(const json& j) { return j.type_name(); }

// A string from a hostile config, cut for messages.
std::string shorten(const std::string& s) { return s.size() > 64 ? s.substr(0, 64) + "..." : s; }

}  // namespace

// ---------------------------------------------------------------------------------------------
// ConfigReader

ConfigReader::ConfigReader(const json& config, std::string class_name)
    : config_(config), class_name_(std::move(class_name)) {
  if (!config_.is_object())
    fail<InvalidArgument>(class_name_, "the config must be a JSON object, got ", type_of(config_));
}

void ConfigReader::bad(const std::string& key, const std::string& why) const {
  fail<InvalidArgument>(class_name_, "config field '", shorten(key), "' ", why);
}

bool ConfigReader::has(const std::string& key) const {
  auto it = config_.find(key);
  return it != config_.end() && !it->is_null();
}

const json& ConfigReader::at(const std::string& key) const {
  auto it = config_.find(key);
  if (it == config_.end() || it->is_null()) bad(key, "is missing");
  return *it;
}

int64_t ConfigReader::integer(const std::string& key, std::optional<int64_t> fallback) const {
  if (fallback && !has(key)) return *fallback;
  const json& v = at(key);
  if (v.is_number_unsigned()) {
    if (v.get<uint64_t>() > uint64_t(std::numeric_limits<int64_t>::max())) bad(key, "is too large for int64");
    return int64_t(v.get<uint64_t>());
  }
  if (!v.is_number_integer()) bad(key, "must be an integer, got " + type_of(v));
  return v.get<int64_t>();
}

double ConfigReader::number(const std::string& key, std::optional<double> fallback) const {
  if (fallback && !has(key)) return *fallback;
  const json& v = at(key);
  if (!v.is_number()) bad(key, "must be a number, got " + type_of(v));
  return v.get<double>();
}

bool ConfigReader::boolean(const std::string& key, std::optional<bool> fallback) const {
  if (fallback && !has(key)) return *fallback;
  const json& v = at(key);
  if (!v.is_boolean()) bad(key, "must be true or false, got " + type_of(v));
  return v.get<bool>();
}

std::string ConfigReader::string(const std::string& key, std::optional<std::string> fallback) const {
  if (fallback && !has(key)) return *fallback;
  const json& v = at(key);
  if (!v.is_string()) bad(key, "must be a string, got " + type_of(v));
  return v.get<std::string>();
}

std::optional<uint64_t> ConfigReader::seed(const std::string& key) const {
  if (!has(key)) return std::nullopt;
  const json& v = at(key);
  if (v.is_number_unsigned()) return v.get<uint64_t>();
  if (!v.is_number_integer() || v.get<int64_t>() < 0) bad(key, "must be a non-negative integer or null");
  return uint64_t(v.get<int64_t>());
}

std::string ConfigReader::name() const { return string("name", std::string()); }

Shape ConfigReader::shape(const std::string& key, bool allow_unknown) const {
  const json& v = at(key);
  if (!v.is_array()) bad(key, "must be a list of dims, got " + type_of(v));
  if (v.size() > 64) bad(key, "has " + std::to_string(v.size()) + " dims (at most 64)");
  std::vector<int64_t> dims;
  for (const json& d : v) {
    if (d.is_null() && allow_unknown) {
      dims.push_back(-1);
      continue;
    }
    if (!d.is_number_integer() || (d.is_number_unsigned() && d.get<uint64_t>() > uint64_t(INT64_MAX)) ||
        d.get<int64_t>() < 0)
      bad(key, allow_unknown ? "must hold integers >= 0 or null" : "must hold integers >= 0");
    dims.push_back(d.get<int64_t>());
  }
  Shape s(dims);
  int64_t known = 1;
  for (int64_t d : dims)
    if (d > 0 && __builtin_mul_overflow(known, d, &known)) bad(key, "has more elements than int64 holds");
  return s;
}

Size2 ConfigReader::size2(const std::string& key, std::optional<Size2> fallback) const {
  if (fallback && !has(key)) return *fallback;
  const json& v = at(key);
  auto dim = [&](const json& d) {
    if (!d.is_number_integer() || (d.is_number_unsigned() && d.get<uint64_t>() > uint64_t(INT64_MAX)))
      bad(key, "must be an integer or a list of two integers");
    return d.get<int64_t>();
  };
  if (v.is_array()) {
    if (v.size() != 2) bad(key, "must be a list of two integers, got " + std::to_string(v.size()));
    return Size2(dim(v[0]), dim(v[1]));
  }
  return Size2(dim(v));
}

// ---------------------------------------------------------------------------------------------
// Initializers and activations

namespace {

struct InitializerKind {
  const char* name;                                  // init:: and Initializer::name
  const char* keras_name;                            // Keras' class name
  std::vector<std::pair<const char*, double>> args;  // with their defaults
  bool seeded;
};

const std::vector<InitializerKind>& initializer_kinds() {
  static const std::vector<InitializerKind> kinds = {
      {"zeros", "Zeros", {}, false},
      {"ones", "Ones", {}, false},
      {"constant", "Constant", {{"value", 0.0}}, false},
      {"random_normal", "RandomNormal", {{"mean", 0.0}, {"stddev", 0.05}}, true},
      {"random_uniform", "RandomUniform", {{"minval", -0.05}, {"maxval", 0.05}}, true},
      {"glorot_uniform", "GlorotUniform", {}, true},
      {"glorot_normal", "GlorotNormal", {}, true},
      {"he_normal", "HeNormal", {}, true},
      {"he_uniform", "HeUniform", {}, true},
  };
  return kinds;
}

const InitializerKind* find_initializer(const std::string& name) {
  for (const InitializerKind& k : initializer_kinds())
    if (name == k.name || name == k.keras_name) return &k;
  return nullptr;
}

Initializer make_initializer(const InitializerKind& k, const ConfigReader& c) {
  const std::string n = k.name;
  auto arg = [&](size_t i) {
    const double v = c.number(k.args[i].first, k.args[i].second);
    if (!std::isfinite(v)) c.bad(k.args[i].first, "must be finite");
    return v;
  };
  const std::optional<uint64_t> seed = k.seeded ? c.seed("seed") : std::nullopt;
  if (n == "zeros") return init::zeros();
  if (n == "ones") return init::ones();
  if (n == "constant") return init::constant(arg(0));
  if (n == "random_normal") {
    const double mean = arg(0), stddev = arg(1);
    if (stddev < 0) c.bad("stddev", "must be >= 0");
    return init::random_normal(mean, stddev, seed);
  }
  if (n == "random_uniform") {
    const double lo = arg(0), hi = arg(1);
    if (!(lo <= hi)) c.bad("maxval", "must be >= minval");
    return init::random_uniform(lo, hi, seed);
  }
  if (n == "glorot_uniform") return init::glorot_uniform(seed);
  if (n == "glorot_normal") return init::glorot_normal(seed);
  if (n == "he_normal") return init::he_normal(seed);
  return init::he_uniform(seed);
}

std::string known_initializers() {
  std::string s;
  for (const InitializerKind& k : initializer_kinds()) s += std::string(s.empty() ? "" : ", ") + k.keras_name;
  return s;
}

// An initializer field of a layer config: a name or {"class_name", "config"}.
Initializer initializer_field(const ConfigReader& c, const std::string& key, const Initializer& fallback) {
  if (!c.has(key)) return fallback;
  try {
    return deserialize_initializer(c.at(key));
  } catch (const InvalidArgument& e) {
    c.bad(key, std::string("is not an initializer: ") + e.what());
  }
}

Activation activation_field(const ConfigReader& c, const std::string& key) {
  const std::string n = c.string(key, "linear");
  try {
    return Activation(n);
  } catch (const InvalidArgument& e) {
    c.bad(key, std::string("is not an activation: ") + e.what());
  }
}

}  // namespace

json serialize_initializer(const Initializer& init) {
  const InitializerKind* k = find_initializer(init.name);
  json config = json::object();
  for (auto& [name, value] : init.args) config[name] = value;
  if (!k || k->seeded) config["seed"] = init.seed ? json(*init.seed) : json(nullptr);
  return {{"class_name", k ? k->keras_name : init.name}, {"config", config}};
}

Initializer deserialize_initializer(const json& j) {
  static const json empty = json::object();
  std::string class_name;
  const json* config = &empty;
  if (j.is_string()) {
    class_name = j.get<std::string>();
  } else if (j.is_object()) {
    auto it = j.find("class_name");
    if (it == j.end() || !it->is_string())
      fail<InvalidArgument>("initializers", "an initializer needs a string 'class_name'");
    class_name = it->get<std::string>();
    if (auto c = j.find("config"); c != j.end() && !c->is_null()) config = &*c;
  } else {
    fail<InvalidArgument>("initializers", "an initializer is a name or {\"class_name\", \"config\"}, got ", type_of(j));
  }
  const InitializerKind* k = find_initializer(class_name);
  if (!k)
    fail<InvalidArgument>("initializers", "unknown initializer '", shorten(class_name),
                          "'; known: ", known_initializers());
  return make_initializer(*k, ConfigReader(*config, k->keras_name));
}

// ---------------------------------------------------------------------------------------------
// The registry and the built-in factories

namespace {

NormalizationOptions normalization_options(const ConfigReader& c) {
  NormalizationOptions o;
  // Keras writes a list of axes for LayerNormalization; one axis is supported
  if (c.has("axis") && c.at("axis").is_array()) {
    if (c.at("axis").size() != 1) c.bad("axis", "must be one axis");
    const json& a = c.at("axis")[0];
    if (!a.is_number_integer() || a.is_number_unsigned()) c.bad("axis", "must be an integer");
    o.axis = a.get<int64_t>();
  } else {
    o.axis = c.integer("axis", -1);
  }
  o.epsilon = c.number("epsilon", 1e-3);
  o.center = c.boolean("center", true);
  o.scale = c.boolean("scale", true);
  return o;
}

void check_channels_last(const ConfigReader& c) {
  if (c.string("data_format", "channels_last") != "channels_last")
    c.bad("data_format", "must be \"channels_last\" (NHWC images)");
}

std::optional<Size2> optional_size2(const ConfigReader& c, const std::string& key) {
  if (!c.has(key)) return std::nullopt;
  return c.size2(key);
}

std::shared_ptr<Layer> make_input_layer(const ConfigReader& c) {
  std::string key = c.has("batch_input_shape") ? "batch_input_shape" : "batch_shape";
  Shape s = c.shape(key, /*allow_unknown=*/true);
  if (s.rank() < 1) c.bad(key, "needs a batch dim");
  Shape inner(s.dims().subspan(1));
  DType dtype = float32;
  const std::string d = c.string("dtype", "float32");
  try {
    dtype = dtype_from_name(d);
  } catch (const Error&) {
    c.bad("dtype", "names no dtype: '" + shorten(d) + "'");
  }
  if (c.boolean("sparse", false) || c.boolean("ragged", false))
    c.bad("sparse", "sparse and ragged inputs are not supported");
  return std::make_shared<InputLayerImpl>(inner, dtype, c.name());
}

std::shared_ptr<Layer> make_dense(const ConfigReader& c) {
  DenseOptions o;
  o.activation = activation_field(c, "activation");
  o.use_bias = c.boolean("use_bias", true);
  o.kernel_initializer = initializer_field(c, "kernel_initializer", o.kernel_initializer);
  o.bias_initializer = initializer_field(c, "bias_initializer", o.bias_initializer);
  return std::make_shared<DenseImpl>(c.integer("units"), std::move(o), c.name());
}

std::shared_ptr<Layer> make_conv2d(const ConfigReader& c) {
  check_channels_last(c);
  if (c.integer("groups", 1) != 1) c.bad("groups", "must be 1");
  Conv2DOptions o;
  o.strides = c.size2("strides", Size2(1));
  o.padding = c.string("padding", "valid");
  o.dilation_rate = c.size2("dilation_rate", Size2(1));
  o.activation = activation_field(c, "activation");
  o.use_bias = c.boolean("use_bias", true);
  o.kernel_initializer = initializer_field(c, "kernel_initializer", o.kernel_initializer);
  o.bias_initializer = initializer_field(c, "bias_initializer", o.bias_initializer);
  return std::make_shared<Conv2DImpl>(c.integer("filters"), c.size2("kernel_size"), std::move(o), c.name());
}

template <class Pool>
std::shared_ptr<Layer> make_pooling(const ConfigReader& c) {
  check_channels_last(c);
  return std::make_shared<Pool>(c.size2("pool_size", Size2(2)), optional_size2(c, "strides"),
                                c.string("padding", "valid"), c.name());
}

std::shared_ptr<Layer> make_sequential(const ConfigReader& c);
std::shared_ptr<Layer> make_functional(const ConfigReader& c);

struct Registry {
  std::mutex mu;
  std::map<std::string, LayerFactory> factories;
};

Registry& registry() {
  static Registry* r = [] {
    auto* reg = new Registry;
    auto& f = reg->factories;
    f["InputLayer"] = make_input_layer;
    f["Dense"] = make_dense;
    f["Dropout"] = [](const ConfigReader& c) {
      return std::make_shared<DropoutImpl>(c.number("rate"), c.seed("seed"), c.name());
    };
    f["Flatten"] = [](const ConfigReader& c) {
      check_channels_last(c);
      return std::make_shared<FlattenImpl>(c.name());
    };
    f["Conv2D"] = make_conv2d;
    f["MaxPooling2D"] = make_pooling<MaxPooling2DImpl>;
    f["AveragePooling2D"] = make_pooling<AveragePooling2DImpl>;
    f["Embedding"] = [](const ConfigReader& c) {
      return std::make_shared<EmbeddingImpl>(c.integer("input_dim"), c.integer("output_dim"),
                                             initializer_field(c, "embeddings_initializer", init::random_uniform()),
                                             c.name());
    };
    f["LayerNormalization"] = [](const ConfigReader& c) {
      return std::make_shared<LayerNormalizationImpl>(normalization_options(c), c.name());
    };
    f["BatchNormalization"] = [](const ConfigReader& c) {
      return std::make_shared<BatchNormalizationImpl>(c.number("momentum", 0.99), normalization_options(c), c.name());
    };
    f["Sequential"] = make_sequential;
    f["Functional"] = make_functional;
    // Keras 2 writes "Model" for functional models made by keras.Model(inputs, outputs)
    f["Model"] = make_functional;
    return reg;
  }();
  return *r;
}

// The options of the outermost deserialize_layer call on this thread, and the nesting depth.
struct Session {
  DeserializeOptions options;
  int depth = 0;
};
thread_local Session* session = nullptr;

}  // namespace

void register_layer(const std::string& class_name, LayerFactory factory) {
  if (class_name.empty()) fail<InvalidArgument>("register_layer", "the class name is empty");
  if (!factory) fail<InvalidArgument>("register_layer", "the factory for '", class_name, "' is empty");
  Registry& r = registry();
  std::lock_guard lock(r.mu);
  if (!r.factories.emplace(class_name, std::move(factory)).second)
    fail<InvalidArgument>("register_layer", "a layer class '", class_name, "' is already registered");
}

bool is_layer_registered(const std::string& class_name) {
  Registry& r = registry();
  std::lock_guard lock(r.mu);
  return r.factories.count(class_name) > 0;
}

std::vector<std::string> registered_layers() {
  Registry& r = registry();
  std::lock_guard lock(r.mu);
  std::vector<std::string> out;
  for (auto& [name, f] : r.factories) out.push_back(name);
  return out;
}

json serialize_layer(const Layer& layer) { return {{"class_name", layer.type_name()}, {"config", layer.get_config()}}; }

std::shared_ptr<Layer> deserialize_layer(const json& j, const DeserializeOptions& options) {
  // the outermost call sets the weight budget and the options; nested calls (the layers of a
  // model) share them
  std::optional<Session> own;
  std::optional<WeightBudget> budget;
  if (!session) {
    own.emplace(Session{options, 0});
    budget.emplace(options.max_weight_elements);
    session = &*own;
  }
  struct Exit {
    std::optional<Session>& own;
    ~Exit() {
      if (own) session = nullptr;
    }
  } exit{own};
  struct Depth {
    Depth() { ++session->depth; }
    ~Depth() { --session->depth; }
  } depth;
  if (session->depth > session->options.max_depth)
    fail<InvalidArgument>("deserialize_layer", "models are nested more than ", session->options.max_depth, " deep");
  if (!j.is_object()) fail<InvalidArgument>("deserialize_layer", "a layer is a JSON object, got ", type_of(j));
  auto cn = j.find("class_name");
  if (cn == j.end() || !cn->is_string())
    fail<InvalidArgument>("deserialize_layer", "a layer needs a string 'class_name'");
  const std::string class_name = cn->get<std::string>();
  auto cfg = j.find("config");
  if (cfg == j.end()) fail<InvalidArgument>(class_name, "the layer has no 'config'");
  LayerFactory factory;
  {
    Registry& r = registry();
    std::lock_guard lock(r.mu);
    auto it = r.factories.find(class_name);
    if (it == r.factories.end()) {
      std::string known;
      for (auto& [name, f] : r.factories) known += (known.empty() ? "" : ", ") + name;
      fail<InvalidArgument>("deserialize_layer", "unknown layer class '", shorten(class_name),
                            "': register custom layers with nn::register_layer (registered: ", known, ")");
    }
    factory = it->second;
  }
  ConfigReader reader(*cfg, class_name);
  std::shared_ptr<Layer> layer;
  try {
    layer = factory(reader);
  } catch (const json::exception& e) {
    // a custom factory that reads the JSON directly
    fail<InvalidArgument>(class_name, "bad config: ", e.what());
  }
  if (!layer) fail<InvalidArgument>(class_name, "the registered factory returned no layer");
  layer->set_trainable(reader.boolean("trainable", true));
  return layer;
}

Model model_from_json(const std::string& text, const DeserializeOptions& options) {
  json j;
  try {
    j = json::parse(text);
  } catch (const json::exception& e) {
    fail<InvalidArgument>("model_from_json", "the text is not JSON: ", e.what());
  }
  std::shared_ptr<Layer> layer = deserialize_layer(j, options);
  auto model = std::dynamic_pointer_cast<ModelImpl>(layer);
  if (!model)
    fail<InvalidArgument>("model_from_json", "the JSON describes a ", layer->type_name(), " layer, not a model");
  return Model(model);
}

// ---------------------------------------------------------------------------------------------
// Models

namespace {

const json& list_field(const ConfigReader& c, const std::string& key) {
  const json& v = c.at(key);
  if (!v.is_array()) c.bad(key, "must be a list, got " + type_of(v));
  return v;
}

std::shared_ptr<Layer> make_sequential(const ConfigReader& c) {
  std::vector<std::shared_ptr<Layer>> layers;
  for (const json& l : list_field(c, "layers")) layers.push_back(deserialize_layer(l));
  auto model = std::make_shared<SequentialImpl>(std::move(layers), c.name());
  if (c.has("build_input_shape") && !model->built()) {
    Shape s = c.shape("build_input_shape", /*allow_unknown=*/true);
    if (s.rank() < 1) c.bad("build_input_shape", "needs a batch dim");
    model->ensure_built(s);
  }
  return model;
}

// A tensor reference [layer name, node index, tensor index(, kwargs)].
std::pair<std::string, int64_t> tensor_ref(const ConfigReader& c, const std::string& key, const json& t) {
  if (!t.is_array() || t.size() < 3 || t.size() > 4 || !t[0].is_string() || !t[1].is_number_integer() ||
      !t[2].is_number_integer())
    c.bad(key, "must reference tensors as [layer name, node index, tensor index]");
  const int64_t node =
      t[1].is_number_unsigned() && t[1].get<uint64_t>() > uint64_t(INT64_MAX) ? -1 : t[1].get<int64_t>();
  if (node < 0) c.bad(key, "has a negative node index");
  if (t[2].get<int64_t>() != 0) c.bad(key, "references output " + t[2].dump() + "; layers have one output");
  return {t[0].get<std::string>(), node};
}

// The single reference of "input_layers" / "output_layers": [[name, node, tensor]] or Keras'
// short form [name, node, tensor].
std::pair<std::string, int64_t> single_ref(const ConfigReader& c, const std::string& key) {
  const json& v = list_field(c, key);
  if (!v.empty() && v[0].is_string()) return tensor_ref(c, key, v);
  if (v.size() != 1)
    c.bad(key, "must name one tensor (models have one input and one output), got " + std::to_string(v.size()));
  return tensor_ref(c, key, v[0]);
}

std::shared_ptr<Layer> make_functional(const ConfigReader& c) {
  const json& entries = list_field(c, "layers");
  struct Entry {
    std::shared_ptr<Layer> layer;
    std::string name;                                      // as the references spell it
    std::vector<std::pair<std::string, int64_t>> inbound;  // one input tensor per node
    size_t next = 0;                                       // the next node to make
  };
  std::vector<Entry> layers;
  std::map<std::string, size_t> by_name;
  for (const json& e : entries) {
    if (!e.is_object()) c.bad("layers", "must hold layer objects");
    Entry entry;
    entry.layer = deserialize_layer(e);
    ConfigReader er(e, c.class_name());
    entry.name = er.string("name", entry.layer->name());
    if (!by_name.emplace(entry.name, layers.size()).second)
      c.bad("layers", "has two layers named '" + shorten(entry.name) + "'");
    if (er.has("inbound_nodes")) {
      const json& nodes = er.at("inbound_nodes");
      if (!nodes.is_array()) er.bad("inbound_nodes", "must be a list");
      for (const json& node : nodes) {
        if (!node.is_array() || node.size() != 1)
          er.bad("inbound_nodes", "must list one input tensor per node (layers have one input)");
        entry.inbound.push_back(tensor_ref(er, "inbound_nodes", node[0]));
      }
    }
    const bool is_input = dynamic_cast<const InputLayerImpl*>(entry.layer.get()) != nullptr;
    if (is_input && !entry.inbound.empty()) er.bad("inbound_nodes", "must be empty for an InputLayer");
    layers.push_back(std::move(entry));
  }
  // outputs[i][k] is node k of layer i. The list may be in any order: a layer makes its nodes in
  // order as their inputs appear, and waits (in `waiting`, under the node it needs) otherwise, so
  // each node is tried a bounded number of times and a cycle just never becomes ready.
  std::vector<std::vector<SymbolicTensor>> outputs(layers.size());
  std::map<std::pair<std::string, int64_t>, std::vector<size_t>> waiting;
  std::deque<size_t> ready;
  for (size_t i = 0; i < layers.size(); ++i) {
    if (auto* in = dynamic_cast<InputLayerImpl*>(layers[i].layer.get())) {
      auto node = std::make_shared<SymbolicNode>();
      node->layer = layers[i].layer;
      node->shape = in->batch_shape();
      node->dtype = in->dtype();
      outputs[i].emplace_back(node);
    } else {
      ready.push_back(i);
    }
  }
  while (!ready.empty()) {
    const size_t i = ready.front();
    ready.pop_front();
    Entry& e = layers[i];
    while (e.next < e.inbound.size()) {
      const auto& [from, node] = e.inbound[e.next];
      auto it = by_name.find(from);
      if (it == by_name.end())
        c.bad("layers", "has a node of '" + shorten(e.name) + "' that reads the unknown layer '" + shorten(from) + "'");
      const auto& produced = outputs[it->second];
      if (node >= int64_t(produced.size())) {
        waiting[{from, node}].push_back(i);
        break;
      }
      outputs[i].push_back((*e.layer)(produced[size_t(node)]));
      ++e.next;
      // whoever waits for the node just made can go on
      if (auto w = waiting.find({e.name, int64_t(outputs[i].size()) - 1}); w != waiting.end()) {
        for (size_t x : w->second) ready.push_back(x);
        waiting.erase(w);
      }
    }
  }
  for (const Entry& e : layers)
    if (e.next < e.inbound.size()) {
      const auto& [from, node] = e.inbound[e.next];
      c.bad("layers", "has node " + std::to_string(e.next) + " of '" + shorten(e.name) + "' reading node " +
                          std::to_string(node) + " of '" + shorten(from) + "', which the config never makes");
    }
  auto resolve = [&](const std::string& key) {
    auto [name, node] = single_ref(c, key);
    auto it = by_name.find(name);
    if (it == by_name.end() || node >= int64_t(outputs[it->second].size()))
      c.bad(key, "references node " + std::to_string(node) + " of '" + shorten(name) + "', which does not exist");
    return outputs[it->second][size_t(node)];
  };
  SymbolicTensor in = resolve("input_layers"), out = resolve("output_layers");
  if (!dynamic_cast<const InputLayerImpl*>(in.node()->layer.get())) c.bad("input_layers", "must name an InputLayer");
  auto model = std::make_shared<ModelImpl>(in, out, c.name());
  // every listed layer belongs to the graph: a config with extra layers is not what to_json wrote
  std::vector<std::shared_ptr<Layer>> used = model->layers();
  for (const Entry& e : layers)
    if (std::find(used.begin(), used.end(), e.layer) == used.end())
      c.bad("layers", "lists '" + e.layer->name() + "', which the outputs do not use");
  return model;
}

}  // namespace

}  // namespace kiln::nn
