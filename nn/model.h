// Models (Keras' tf.keras.Model): functional models built from symbolic inputs and outputs,
// Sequential, model subclasses, summary(), and training with compile/fit/evaluate/predict.
#pragma once

#include <iosfwd>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "nn/callbacks.h"
#include "nn/data.h"
#include "nn/layer.h"
#include "nn/losses.h"
#include "nn/metrics.h"
#include "nn/optimizers.h"

namespace kiln::nn {

/// An optimizer for compile: a shared optimizer object or a name ("sgd", "adam", "adamw",
/// "rmsprop", with default settings).
struct OptimizerArg {
  std::shared_ptr<optim::Optimizer> ptr;
  template <class O>
  requires std::is_base_of_v<optim::Optimizer, O> OptimizerArg(std::shared_ptr<O> o) : ptr(std::move(o)) {}  // NOLINT
  OptimizerArg(const std::string& name);                                                                     // NOLINT
  OptimizerArg(const char* name) : OptimizerArg(std::string(name)) {}                                        // NOLINT
};

/// A metric for compile: a metric object or a name (see metrics::get).
struct MetricArg {
  std::shared_ptr<metrics::Metric> ptr;
  std::string name;
  MetricArg(std::shared_ptr<metrics::Metric> m) : ptr(std::move(m)) {}  // NOLINT
  MetricArg(std::string n) : name(std::move(n)) {}                      // NOLINT
  MetricArg(const char* n) : name(n) {}                                 // NOLINT
};

/// Options of compile.
struct CompileOptions {
  OptimizerArg optimizer = "rmsprop";
  /// The loss: a losses::Loss, a per-example function such as losses::mean_squared_error, or a
  /// name ("mse", "sparse_categorical_crossentropy", ...). Required.
  std::optional<losses::Loss> loss{};
  std::vector<MetricArg> metrics{};
  /// Runs the training step op by op instead of as one traced function (for debugging).
  bool run_eagerly = false;
};

/// Options of fit.
struct FitOptions {
  int64_t epochs = 1;
  /// Examples per step for tensor inputs (a dataset brings its own batches).
  int64_t batch_size = 32;
  /// 0: silent; 1: a progress bar on a terminal, otherwise one line per epoch; 2: one line per
  /// epoch.
  int verbose = 1;
  /// Shuffle tensor inputs before each epoch (seeded by `seed` when given).
  bool shuffle = true;
  std::optional<uint64_t> seed{};
  /// The last fraction of the tensor inputs (before shuffling) held out for validation.
  double validation_split = 0;
  /// Validation inputs and targets, evaluated after every epoch.
  std::optional<std::pair<Tensor, Tensor>> validation_data{};
  std::vector<std::shared_ptr<Callback>> callbacks{};
  int64_t initial_epoch = 0;
  /// Steps per epoch for a dataset (needed when it repeats forever).
  std::optional<int64_t> steps_per_epoch{};
  /// Where progress goes (standard output when null).
  std::ostream* out = nullptr;
  /// Print times in the progress lines (turn off for reproducible output).
  bool show_timings = true;
};

/// Options of evaluate.
struct EvaluateOptions {
  int64_t batch_size = 32;
  int verbose = 0;
  std::ostream* out = nullptr;
  bool show_timings = true;
};

/// Options of predict.
struct PredictOptions {
  int64_t batch_size = 32;
};

/// A model: a layer that can be trained. Three ways to make one, as in Keras:
/// - functional: `Model(inputs, outputs)` from symbolic tensors (`Input`, layers applied to them);
/// - Sequential: a list of layers applied in order;
/// - a subclass overriding `call`, registering its layers as sub-modules.
///
/// Training: `compile` sets the optimizer, loss and metrics; `fit` trains on tensors or a
/// dataset. Unless run_eagerly, each training step (forward, gradients, optimizer update,
/// metric updates) runs as one traced function whose batch dim is symbolic (unknown): batches of
/// every size, the last partial one included, run the graph of the first trace. Layers and
/// custom steps therefore see a batch dim of -1 while tracing (as Keras' None).
///
/// Threads: once the model is built and compiled, `predict` may run on other threads while
/// `fit` trains. Each weight a prediction reads is whole, but one prediction may combine
/// weights of consecutive steps. Building, `compile`, and two `fit` or `evaluate` calls at once
/// (they share the metrics) must not overlap.
class ModelImpl : public Layer {
 public:
  /// A model subclass (override call).
  explicit ModelImpl(std::string name = {});
  /// A functional model. Throws InvalidArgument if an output does not depend only on `inputs`.
  ModelImpl(const SymbolicTensor& inputs, const SymbolicTensor& outputs, std::string name = {});

  Tensor call(const Tensor& inputs, bool training) override;
  /// "Functional" for functional models, else the class name.
  std::string type_name() const override;
  /// "model" for functional models (as Keras), else from the class name.
  std::string default_name() const override;
  /// A functional model's config: its layers, each with the nodes that apply it, and its input
  /// and output (Keras' layout, see docs/saving.md). A model subclass has no config unless it
  /// overrides this (Unimplemented).
  nlohmann::json get_config() const override;
  /// The model's architecture as JSON, `{"class_name": ..., "config": get_config()}`, without
  /// weights (Keras' to_json); model_from_json (nn/serialization.h) rebuilds it. `indent` < 0
  /// writes one line. Throws as get_config.
  std::string to_json(int indent = -1) const;

  /// The layers: a functional model's in graph order (inputs first), a Sequential's in order, a
  /// subclass's registered layer children.
  virtual std::vector<std::shared_ptr<Layer>> layers() const;
  /// Prints Keras' summary table: each layer's name, type, output shape and parameter count,
  /// then the totals. Throws FailedPrecondition for a model that is not built yet.
  void summary(std::ostream& os) const;
  void summary() const;
  std::string summary_string() const;

  /// Sets up training. Throws InvalidArgument without a loss.
  void compile(CompileOptions options);
  /// Trains on tensors: x [N, ...], y [N, ...]. Throws InvalidArgument for mismatched N, an
  /// uncompiled model (FailedPrecondition), bad options.
  History fit(const Tensor& x, const Tensor& y, FitOptions options = {});
  /// Trains on a dataset of (x, y) batches.
  History fit(const data::Dataset& dataset, FitOptions options = {});
  /// The loss and metrics over x, y.
  Logs evaluate(const Tensor& x, const Tensor& y, EvaluateOptions options = {});
  Logs evaluate(const data::Dataset& dataset, EvaluateOptions options = {});
  /// The outputs for x in batches, concatenated.
  Tensor predict(const Tensor& x, PredictOptions options = {});

  /// One training step on a batch: forward, gradients, optimizer update, metric updates; returns
  /// the batch's mean loss. Override to customize (it is traced, with an unknown batch dim,
  /// unless run_eagerly).
  virtual Tensor train_step(const Tensor& x, const Tensor& y);
  /// One evaluation step: forward and metric updates; returns the batch's mean loss.
  virtual Tensor test_step(const Tensor& x, const Tensor& y);

  /// Set by callbacks to end fit after the current epoch.
  bool stop_training = false;
  bool compiled() const { return compiled_ != nullptr; }
  /// The compiled optimizer (null before compile).
  std::shared_ptr<optim::Optimizer> optimizer() const;
  /// The metrics fit reports: the loss tracker first, then the compiled metrics.
  std::vector<std::shared_ptr<metrics::Metric>> metrics() const;
  /// Number of traces of the training step so far (0 when run eagerly).
  size_t train_function_tracing_count() const;

 protected:
  struct FunctionalGraph;
  std::shared_ptr<FunctionalGraph> graph_;

 private:
  struct Compiled;
  struct Steps;
  void reset_metrics();
  Logs read_metrics(const std::string& prefix = "") const;
  // The step functions, made on first use; fit, evaluate and predict may run on different
  // threads, so steps_ is read and replaced only under steps_mu_.
  std::shared_ptr<Steps> steps();
  Logs run_evaluation(const std::vector<data::Element>& batches);
  History fit_batches(const std::function<std::vector<data::Element>(int64_t epoch)>& epoch_batches, int64_t steps_hint,
                      const std::vector<data::Element>& validation, FitOptions& options);
  std::shared_ptr<Compiled> compiled_;
  std::shared_ptr<Steps> steps_;
  mutable std::mutex steps_mu_;
};
KILN_MODULE(Model);

/// Layers applied in order (Keras' Sequential). Built on the first call; when the first layer is
/// an InputLayer it is built at once and each added layer is built as it is added. Adding a
/// layer to a model built by a call is a FailedPrecondition.
class SequentialImpl : public ModelImpl {
 public:
  explicit SequentialImpl(std::vector<std::shared_ptr<Layer>> layers = {}, std::string name = {});
  /// Appends a layer. Throws FailedPrecondition once the model is built.
  void add(std::shared_ptr<Layer> layer);
  void build(const Shape& input_shape) override;
  Tensor call(const Tensor& inputs, bool training) override;
  std::pair<Shape, DType> compute_output_type(const Shape& input_shape, DType input_dtype) override;
  std::vector<std::shared_ptr<Layer>> layers() const override;
  std::string type_name() const override { return "Sequential"; }
  /// The layers' configs, and the build input shape of a model built by a call.
  nlohmann::json get_config() const override;

 private:
  void apply_symbolic(Layer& layer);
  std::vector<std::shared_ptr<Layer>> layers_;
  Shape shape_;  // the output type of the layers so far, once built
  DType dtype_ = float32;
};

/// The handle of SequentialImpl: `nn::Sequential({nn::Dense(3, "relu"), nn::Dense(2)})`.
class Sequential : public ModuleHolder<SequentialImpl> {
 public:
  using ModuleHolder<SequentialImpl>::ModuleHolder;
  Sequential(std::initializer_list<std::shared_ptr<Layer>> layers, std::string name = {})
      : ModuleHolder<SequentialImpl>(std::vector<std::shared_ptr<Layer>>(layers), std::move(name)) {}
};

}  // namespace kiln::nn
