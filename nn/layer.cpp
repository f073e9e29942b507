// Layer: deferred build, input checks, error context, symbolic application; InputLayer and Input.
#include "nn/layer.h"

#include <nlohmann/json.hpp>
#include <sstream>
#include <tuple>

#include "compiler/trace/function.h"
#include "ops/dispatch.h"

namespace kiln::nn {
namespace {

// "inputs=Tensor(shape=(1, 4), dtype=float32)" for error messages
std::string describe_input(const Shape& s, DType d) {
  return "inputs=Tensor(shape=" + s.to_string() + ", dtype=" + std::string(dtype_name(d)) + ")";
}

constexpr std::string_view kCallContext = "Exception encountered when calling layer";

}  // namespace

std::string shape_string(const Shape& s) {
  std::string out = "(";
  for (int64_t i = 0; i < s.rank(); ++i) {
    if (i) out += ", ";
    int64_t d = s.dim(size_t(i));
    out += d < 0 ? "None" : std::to_string(d);
  }
  if (s.rank() == 1) out += ",";
  return out + ")";
}

Layer::Layer(std::string name) : Module(std::move(name)) {}

void Layer::ensure_built(const Shape& input_shape) {
  if (built_) return;
  // weights are created eagerly even when the first call happens inside a trace
  ops::EagerScope eager;
  build(input_shape);
  built_ = true;
  build_shape_ = input_shape;
}

void Layer::set_built(const Shape& input_shape) {
  built_ = true;
  build_shape_ = input_shape;
}

void Layer::check_input(const Shape& shape) const {
  if (!input_spec) return;
  const InputSpec& spec = *input_spec;
  auto reject = [&](const std::string& why) {
    fail<InvalidArgument>(name(), "Input 0 of layer '", name(), "' (type ", type_name(),
                          ") is incompatible with the layer: ", why, ", found shape=", shape_string(shape));
  };
  if (spec.ndim && shape.rank() != *spec.ndim) reject("expected ndim=" + std::to_string(*spec.ndim));
  if (spec.min_ndim && shape.rank() < *spec.min_ndim) reject("expected min_ndim=" + std::to_string(*spec.min_ndim));
  for (auto [axis, size] : spec.axes) {
    int64_t a = axis < 0 ? axis + shape.rank() : axis;
    if (a < 0 || a >= shape.rank()) reject("expected axis " + std::to_string(axis) + " to exist");
    int64_t d = shape.dim(size_t(a));
    if (d >= 0 && size >= 0 && d != size)
      reject("expected axis " + std::to_string(axis) + " of input shape to have value " + std::to_string(size));
  }
}

Tensor Layer::operator()(const Tensor& inputs, bool training) {
  if (!inputs.defined()) fail<InvalidArgument>(name(), "layer '", name(), "' was called with an undefined tensor");
  ensure_built(inputs.shape());
  check_input(inputs.shape());
  Tensor out;
  try {
    out = call(inputs, training);
  } catch (const InvalidArgument& e) {
    // add the layer's context once, at the innermost layer (as Keras reports it)
    if (std::string_view(e.what()).find(kCallContext) != std::string_view::npos) throw;
    fail<InvalidArgument>(name(), kCallContext, " '", name(), "' (type ", type_name(), "): ", e.what(),
                          ". Call arguments received by layer '", name(),
                          "': ", describe_input(inputs.shape(), inputs.dtype()));
  }
  if (!output_shape_ && out.defined() && !ops::tracing()) {
    Shape s = out.shape();
    if (s.rank() > 0) s.mut(0) = -1;
    output_shape_ = s;
  }
  return out;
}

std::pair<Shape, DType> Layer::compute_output_type(const Shape& input_shape, DType input_dtype) {
  Shape out;
  DType dtype = input_dtype;
  // trace `call` on a placeholder: ops infer the output type, nothing runs
  trace::trace_concrete(
      name() + "_output_shape", {TensorSpec(input_shape, input_dtype, "inputs")},
      [&](std::span<const Tensor> in) {
        Tensor y = call(in[0], false);
        out = y.shape();
        dtype = y.dtype();
        return std::vector<Tensor>{y};
      },
      backend::BackendKind::Interpreter);
  for (int64_t i = 0; i < out.rank(); ++i)
    if (out.dim(size_t(i)) < 0) out.mut(size_t(i)) = -1;
  return {out, dtype};
}

SymbolicTensor Layer::operator()(const SymbolicTensor& inputs) {
  if (!inputs.defined())
    fail<InvalidArgument>(name(), "layer '", name(), "' was applied to an undefined symbolic tensor");
  auto self = std::static_pointer_cast<Layer>(weak_from_this().lock());
  if (!self)
    fail<InvalidArgument>(name(), "layer '", name(),
                          "' is not held by a handle; the functional API needs layers made as nn::Dense(...) or "
                          "std::make_shared");
  ensure_built(inputs.shape());
  check_input(inputs.shape());
  auto node = std::make_shared<SymbolicNode>();
  node->layer = self;
  node->inputs.push_back(inputs.node());
  try {
    std::tie(node->shape, node->dtype) = compute_output_type(inputs.shape(), inputs.dtype());
  } catch (const InvalidArgument& e) {
    if (std::string_view(e.what()).find(kCallContext) != std::string_view::npos) throw;
    fail<InvalidArgument>(name(), kCallContext, " '", name(), "' (type ", type_name(), "): ", e.what(),
                          ". Call arguments received by layer '", name(),
                          "': ", describe_input(inputs.shape(), inputs.dtype()));
  }
  if (!output_shape_) output_shape_ = node->shape;
  return SymbolicTensor(node);
}

std::string Layer::output_shape_string() const { return output_shape_ ? shape_string(*output_shape_) : "multiple"; }

int64_t Layer::count_params() const {
  int64_t n = 0;
  for (auto& v : variables()) n += v.shape().num_elements();
  return n;
}

Variable Layer::add_weight(const std::string& name, const Shape& shape, const Initializer& init, bool trainable,
                           DType dtype) {
  if (!shape.is_fully_defined())
    fail<InvalidArgument>(this->name(), "weight '", name, "' needs a fully known shape, got ", shape_string(shape));
  WeightBudget::charge(shape.num_elements(), this->name() + "/" + name);
  Tensor initial;
  {
    ops::EagerScope eager;
    initial = init(shape, dtype);
  }
  return register_variable(name, initial, trainable);
}

nlohmann::json Layer::get_config() const { return {{"name", name()}, {"trainable", trainable()}}; }

std::vector<Tensor> Layer::get_weights() const {
  std::vector<Tensor> out;
  for (const Variable& v : variables()) out.push_back(v.read_value());
  return out;
}

void Layer::set_weights(const std::vector<Tensor>& weights) {
  std::vector<Variable> vars = variables();
  if (weights.size() != vars.size())
    fail<InvalidArgument>(name(), "set_weights got ", weights.size(), " values for the ", vars.size(),
                          " weights of layer '", name(), "'");
  // check everything first, so a mismatch changes nothing
  for (size_t i = 0; i < vars.size(); ++i) {
    const Tensor& w = weights[i];
    if (!w.defined() || w.dtype() != vars[i].dtype() || w.shape() != vars[i].shape())
      fail<InvalidArgument>(name(), "set_weights: value ", i, " for weight '", vars[i].name(), "' (",
                            dtype_name(vars[i].dtype()), ", shape ", vars[i].shape().to_string(), ") is ",
                            w.defined() ? std::string(dtype_name(w.dtype())) + ", shape " + w.shape().to_string()
                                        : std::string("undefined"));
  }
  for (size_t i = 0; i < vars.size(); ++i) vars[i].assign(weights[i]);
}

namespace {
thread_local WeightBudget* current_budget = nullptr;
}  // namespace

WeightBudget::WeightBudget(int64_t max_elements) : max_(max_elements), left_(max_elements), outer_(current_budget) {
  current_budget = this;
}

WeightBudget::~WeightBudget() { current_budget = outer_; }

void WeightBudget::charge(int64_t n, const std::string& what) {
  WeightBudget* b = current_budget;
  if (!b) return;
  if (n > b->left_)
    fail<InvalidArgument>("WeightBudget", "weight '", what, "' has ", n, " elements, past the limit of ", b->max_,
                          " weight elements in all (", b->max_ - b->left_, " used)");
  b->left_ -= n;
}

InputLayerImpl::InputLayerImpl(const Shape& shape, DType dtype, std::string name)
    : Layer(std::move(name)), dtype_(dtype) {
  shape_ = shape;
  shape_.insert(0, -1);
  for (int64_t d : shape)
    if (d < -1) fail<InvalidArgument>("Input", "shape ", shape.to_list_string(), " has a dim below -1");
  set_built(shape_);
}

nlohmann::json InputLayerImpl::get_config() const {
  nlohmann::json c = Layer::get_config();
  nlohmann::json dims = nlohmann::json::array();
  for (int64_t d : shape_) dims.push_back(d < 0 ? nlohmann::json(nullptr) : nlohmann::json(d));
  c["batch_input_shape"] = dims;
  c["dtype"] = std::string(dtype_name(dtype_));
  c["sparse"] = false;
  c["ragged"] = false;
  return c;
}

std::string InputLayerImpl::output_shape_string() const { return "[" + shape_string(shape_) + "]"; }

SymbolicTensor Input(const Shape& shape, DType dtype, std::string name) {
  InputLayer layer(shape, dtype, std::move(name));
  auto node = std::make_shared<SymbolicNode>();
  node->layer = layer.ptr();
  node->shape = layer->batch_shape();
  node->dtype = dtype;
  return SymbolicTensor(node);
}

}  // namespace kiln::nn
