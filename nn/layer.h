// nn::Layer: a module with a deferred build (variables made from the first input's shape), input
// checks, and calls on concrete or symbolic inputs (the functional API's Input and KerasTensors).
#pragma once

#include <map>
#include <memory>
#include <nlohmann/json_fwd.hpp>
#include <optional>
#include <string>
#include <vector>

#include "nn/initializers.h"
#include "nn/module.h"

namespace kiln::nn {

class Layer;

/// What a layer accepts (Keras' InputSpec): a minimum rank and the sizes of some axes (negative
/// axes count from the end). A call with an incompatible input throws InvalidArgument.
struct InputSpec {
  std::optional<int64_t> min_ndim{}, ndim{};
  std::map<int64_t, int64_t> axes{};
};

/// One application of a layer in a functional graph: the layer, the symbolic tensors it was
/// applied to, and the type of its output.
struct SymbolicNode {
  std::shared_ptr<Layer> layer;
  std::vector<std::shared_ptr<const SymbolicNode>> inputs;
  Shape shape;  // batch (and other unknown) dims are -1
  DType dtype = float32;
};

/// A symbolic tensor of the functional API (Keras' KerasTensor): the output of `Input` or of a
/// layer applied to symbolic tensors. It has a dtype and a shape with unknown dims (-1), no
/// value; `Model(inputs, outputs)` turns the graph of layers behind it into a model.
class SymbolicTensor {
 public:
  SymbolicTensor() = default;
  explicit SymbolicTensor(std::shared_ptr<const SymbolicNode> node) : node_(std::move(node)) {}
  const Shape& shape() const { return node_->shape; }
  DType dtype() const { return node_->dtype; }
  const std::shared_ptr<const SymbolicNode>& node() const { return node_; }
  bool defined() const { return node_ != nullptr; }

 private:
  std::shared_ptr<const SymbolicNode> node_;
};

/// A layer (Keras' tf.keras.layers.Layer): a module that computes `call(inputs, training)`. On
/// the first call it runs `build(input_shape)` once, eagerly (even inside a trace), to create
/// its weights from the input's shape; later inputs are checked against `input_spec`, and an
/// error raised inside `call` is rethrown as InvalidArgument naming the layer and its input.
class Layer : public Module {
 public:
  explicit Layer(std::string name = {});

  /// Builds if needed, checks the input and runs `call`.
  Tensor operator()(const Tensor& inputs, bool training = false);
  /// Applies the layer to a symbolic tensor (functional API): builds it from the symbolic shape
  /// and returns the symbolic output.
  SymbolicTensor operator()(const SymbolicTensor& inputs);

  /// Creates the weights for inputs of `input_shape` (dims may be -1). The default creates
  /// nothing.
  virtual void build(const Shape& input_shape) {}
  /// The computation; `training` tells layers such as Dropout which behaviour to use.
  virtual Tensor call(const Tensor& inputs, bool training) = 0;
  /// The output shape and dtype for an input of this shape (with unknown, -1, dims) and dtype.
  /// The default traces `call` on a placeholder of that type (no kernels run) and reads the
  /// result's type.
  virtual std::pair<Shape, DType> compute_output_type(const Shape& input_shape, DType input_dtype);
  /// compute_output_type's shape for a float32 input.
  Shape compute_output_shape(const Shape& input_shape) { return compute_output_type(input_shape, float32).first; }

  /// Builds the layer for `input_shape` unless built (eagerly; at most once).
  void ensure_built(const Shape& input_shape);
  bool built() const { return built_; }
  /// The shape the layer was built for (empty before).
  const std::optional<Shape>& build_input_shape() const { return build_shape_; }
  /// The output shape recorded when the layer was applied symbolically or called (batch dim -1);
  /// empty before.
  const std::optional<Shape>& output_shape() const { return output_shape_; }
  /// Keras' summary form of the output shape: "(None, 3)", or "multiple" when not known.
  virtual std::string output_shape_string() const;
  /// Number of elements of every variable (trainable or not).
  int64_t count_params() const;

  /// Creates a weight `<layer name>/<name>` with `init` and registers it as `name`. Throws
  /// InvalidArgument for a shape with unknown dims, or one past an active WeightBudget.
  Variable add_weight(const std::string& name, const Shape& shape, const Initializer& init, bool trainable = true,
                      DType dtype = float32);

  /// The layer's configuration as a JSON object (Keras' get_config): "name", "trainable" and the
  /// constructor arguments. Layers with arguments override it, adding theirs to
  /// Layer::get_config()'s; the factory registered under type_name() (nn/serialization.h) makes
  /// the same layer, without its weights, from it. Include nn/serialization.h to use the result.
  virtual nlohmann::json get_config() const;
  /// Copies of the values of variables(), in that order (Keras' get_weights).
  std::vector<Tensor> get_weights() const;
  /// Assigns `weights` to variables() in order (Keras' set_weights). Throws InvalidArgument, and
  /// assigns nothing, when the count, a dtype or a shape differs.
  void set_weights(const std::vector<Tensor>& weights);

  /// What inputs the layer accepts (checked on every call once set; layers set it in build).
  std::optional<InputSpec> input_spec;

 protected:
  /// Marks the layer built without calling build (layers whose weights exist from the start).
  void set_built(const Shape& input_shape);
  void check_input(const Shape& shape) const;

 private:
  bool built_ = false;
  std::optional<Shape> build_shape_, output_shape_;
};

/// While alive, bounds the number of weight elements that `Layer::add_weight` may create on this
/// thread: a weight past the bound throws InvalidArgument before anything is allocated.
/// model_from_json uses one, so a hostile configuration cannot ask for unbounded memory. Budgets
/// nest (the innermost counts).
class WeightBudget {
 public:
  explicit WeightBudget(int64_t max_elements);
  ~WeightBudget();
  WeightBudget(const WeightBudget&) = delete;
  WeightBudget& operator=(const WeightBudget&) = delete;
  /// Takes `n` elements from the innermost budget of this thread, if any; InvalidArgument
  /// naming `what` when they do not fit.
  static void charge(int64_t n, const std::string& what);

 private:
  int64_t max_, left_;
  WeightBudget* outer_;
};

/// The first layer of a functional model: declares the input's shape and dtype.
class InputLayerImpl : public Layer {
 public:
  /// `shape` without the batch dim; -1 dims are unknown.
  explicit InputLayerImpl(const Shape& shape, DType dtype = float32, std::string name = {});
  Tensor call(const Tensor& inputs, bool training) override { return inputs; }
  std::pair<Shape, DType> compute_output_type(const Shape& input_shape, DType input_dtype) override {
    return {input_shape, input_dtype};
  }
  std::string type_name() const override { return "InputLayer"; }
  nlohmann::json get_config() const override;
  std::string default_name() const override { return unique_name("input", /*one_based=*/true); }
  std::string output_shape_string() const override;
  /// The full input shape, batch dim first (-1).
  const Shape& batch_shape() const { return shape_; }
  DType dtype() const { return dtype_; }

 private:
  Shape shape_;
  DType dtype_;
};
KILN_MODULE(InputLayer);

/// A symbolic input of `shape` (without the batch dim; -1 for unknown dims), as keras.Input.
SymbolicTensor Input(const Shape& shape, DType dtype = float32, std::string name = {});

/// "(None, 3)": a shape with -1 dims printed as None.
std::string shape_string(const Shape& s);

}  // namespace kiln::nn
