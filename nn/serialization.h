// Layer and model configurations as JSON (Keras' get_config/from_config, model.to_json() and
// model_from_json): the registry from class names to layer factories, and checked config reading.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "nn/conv.h"
#include "nn/model.h"

namespace kiln::nn {

/// Reads a layer's config object, checking every field it is asked for: a missing required
/// field, a field of the wrong type or an integer out of range throws InvalidArgument
/// "[<class name>] config field '<key>' ...". A null field counts as missing. Factories of custom
/// layers use it the way the built-in ones do:
///
///   register_layer("Scale", [](const ConfigReader& c) {
///     return std::make_shared<ScaleImpl>(c.number("factor"), c.name());
///   });
class ConfigReader {
 public:
  /// Throws InvalidArgument unless `config` is a JSON object. Keeps a reference to `config`.
  ConfigReader(const nlohmann::json& config, std::string class_name);

  /// The config object itself.
  const nlohmann::json& raw() const { return config_; }
  const std::string& class_name() const { return class_name_; }
  /// True when `key` is present and not null.
  bool has(const std::string& key) const;
  /// The field `key` itself (InvalidArgument when missing).
  const nlohmann::json& at(const std::string& key) const;

  /// An integer (not a float, even an integral one); `fallback` when missing, if given.
  int64_t integer(const std::string& key, std::optional<int64_t> fallback = std::nullopt) const;
  /// A number (integer or float).
  double number(const std::string& key, std::optional<double> fallback = std::nullopt) const;
  bool boolean(const std::string& key, std::optional<bool> fallback = std::nullopt) const;
  std::string string(const std::string& key, std::optional<std::string> fallback = std::nullopt) const;
  /// A non-negative integer up to 2^64 - 1, or empty when missing (Keras writes null seeds).
  std::optional<uint64_t> seed(const std::string& key) const;
  /// "name", or empty (a default name) when missing.
  std::string name() const;
  /// A shape: a list of at most 64 integers >= 0, or null for unknown dims when `allow_unknown`
  /// (-1 in the result).
  Shape shape(const std::string& key, bool allow_unknown) const;
  /// A spatial size: one integer for both axes, or a list of two.
  Size2 size2(const std::string& key, std::optional<Size2> fallback = std::nullopt) const;

  /// Throws InvalidArgument "[<class name>] config field '<key>' <why>".
  [[noreturn]] void bad(const std::string& key, const std::string& why) const;

 private:
  const nlohmann::json& config_;
  std::string class_name_;
};

/// Makes a layer from its config (the "config" object of `{"class_name": ..., "config": ...}`).
/// It should pass `config.name()` to the layer's constructor; "trainable" is applied after.
using LayerFactory = std::function<std::shared_ptr<Layer>(const ConfigReader& config)>;

/// Registers a factory for layers whose type_name() is `class_name` (Keras'
/// register_keras_serializable), so model_from_json can rebuild models that use them. The
/// built-in layers, Sequential and Functional are registered from the start. Throws
/// InvalidArgument for an empty name or a name already registered. Thread-safe.
void register_layer(const std::string& class_name, LayerFactory factory);
/// True when a factory is registered under `class_name`.
bool is_layer_registered(const std::string& class_name);
/// The registered class names, sorted.
std::vector<std::string> registered_layers();

/// `{"class_name": layer.type_name(), "config": layer.get_config()}`. Throws what get_config
/// throws (Unimplemented for a model subclass without a config).
nlohmann::json serialize_layer(const Layer& layer);

/// Options of deserialize_layer and model_from_json.
struct DeserializeOptions {
  /// The most weight elements the rebuilt layers may create in all (see WeightBudget): a bound on
  /// the memory an untrusted config can ask for.
  int64_t max_weight_elements = int64_t{1} << 30;
  /// The deepest nesting of models inside models.
  int max_depth = 32;
};

/// Makes a layer from `{"class_name": ..., "config": ...}` with the factory registered under the
/// class name, then applies the config's "trainable". Built layers (models, layers given an
/// input shape) create their weights with fresh initial values. Throws InvalidArgument for
/// anything wrong in the JSON: not an object, an unknown class name (naming the registered
/// ones), a missing field, a field of the wrong type, a bad value (what the layer's constructor
/// rejects, such as units < 1), a functional graph whose nodes reference missing layers, or
/// weights past `max_weight_elements`. A call made while another runs on this thread (a container
/// layer's factory making its layers) shares that call's options, budget and depth.
std::shared_ptr<Layer> deserialize_layer(const nlohmann::json& json, const DeserializeOptions& options = {});

/// Rebuilds a model from ModelImpl::to_json's text (Keras' model_from_json): the same
/// architecture (summary() prints the same table) with freshly initialized weights; copy the
/// weights with set_weights or a Checkpoint. Throws InvalidArgument for text that is not JSON or
/// a configuration that is not a model's, and as deserialize_layer.
Model model_from_json(const std::string& json, const DeserializeOptions& options = {});

/// The JSON of a weight initializer (`{"class_name": "GlorotUniform", "config": {"seed": null}}`,
/// Keras' names) and back; deserialize_initializer also takes a bare name ("glorot_uniform").
/// Throws InvalidArgument for an initializer that is not one of init::'s (serialize) or an
/// unknown name or bad arguments (deserialize).
nlohmann::json serialize_initializer(const Initializer& init);
Initializer deserialize_initializer(const nlohmann::json& json);

}  // namespace kiln::nn
