// Functional models, Sequential, summary, and compile/fit/evaluate/predict with a traced
// training step.
#include "nn/model.h"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <iostream>
#include <nlohmann/json.hpp>
#include <numeric>
#include <random>
#include <set>
#include <sstream>

#include "autodiff/tape.h"
#include "compiler/trace/function.h"
#include "nn/serialization.h"

namespace kiln::nn {

// ---------------------------------------------------------------------------------------------
// Functional graphs

struct ModelImpl::FunctionalGraph {
  std::shared_ptr<const SymbolicNode> input, output;
  std::vector<std::shared_ptr<const SymbolicNode>> order;  // topological, the input first
};

ModelImpl::ModelImpl(std::string name) : Layer(std::move(name)) {}

ModelImpl::ModelImpl(const SymbolicTensor& inputs, const SymbolicTensor& outputs, std::string name)
    : Layer(std::move(name)) {
  if (!inputs.defined() || !outputs.defined())
    fail<InvalidArgument>("Model", "inputs and outputs must be symbolic tensors made by Input and layers");
  auto g = std::make_shared<FunctionalGraph>();
  g->input = inputs.node();
  g->output = outputs.node();
  if (!dynamic_cast<const InputLayerImpl*>(g->input->layer.get()))
    fail<InvalidArgument>("Model", "inputs must come from nn::Input");
  std::set<const SymbolicNode*> done;
  auto visit = [&](auto& self, const std::shared_ptr<const SymbolicNode>& n) -> void {
    if (done.count(n.get())) return;
    if (n->inputs.empty() && n != g->input)
      fail<InvalidArgument>("Model", "the outputs depend on the input '", n->layer->name(),
                            "', which is not among the model's inputs");
    for (auto& in : n->inputs) self(self, in);
    done.insert(n.get());
    g->order.push_back(n);
  };
  visit(visit, g->output);
  if (g->order.front() != g->input) fail<InvalidArgument>("Model", "the outputs do not depend on the given input");
  std::set<const Layer*> registered;
  for (auto& n : g->order) {
    if (!registered.insert(n->layer.get()).second) continue;
    register_module(n->layer->name(), std::static_pointer_cast<Module>(n->layer));
  }
  graph_ = g;
  const Shape& in_shape = g->input->shape;
  InputSpec spec;
  spec.ndim = in_shape.rank();
  for (int64_t i = 1; i < in_shape.rank(); ++i)
    if (in_shape.dim(size_t(i)) >= 0) spec.axes[i] = in_shape.dim(size_t(i));
  input_spec = spec;
  set_built(in_shape);
}

std::string ModelImpl::default_name() const {
  std::string t = Layer::type_name();
  return t == "Model" ? unique_name("model") : Layer::default_name();
}

std::string ModelImpl::type_name() const {
  std::string t = Layer::type_name();
  return t == "Model" ? "Functional" : t;
}

Tensor ModelImpl::call(const Tensor& inputs, bool training) {
  if (!graph_) fail<Unimplemented>(name(), "a model subclass must override call(inputs, training)");
  std::map<const SymbolicNode*, Tensor> values;
  values[graph_->input.get()] = inputs;
  for (auto& n : graph_->order) {
    if (n == graph_->input) continue;
    values[n.get()] = (*n->layer)(values.at(n->inputs[0].get()), training);
  }
  return values.at(graph_->output.get());
}

std::vector<std::shared_ptr<Layer>> ModelImpl::layers() const {
  std::vector<std::shared_ptr<Layer>> out;
  if (graph_) {
    for (auto& n : graph_->order)
      if (std::find(out.begin(), out.end(), n->layer) == out.end()) out.push_back(n->layer);
    return out;
  }
  for (auto& [name, m] : children())
    if (auto l = std::dynamic_pointer_cast<Layer>(m)) out.push_back(l);
  return out;
}

nlohmann::json ModelImpl::get_config() const {
  if (!graph_)
    fail<Unimplemented>(name(), "model subclass '", type_name(),
                        "' has no config: override get_config and register a factory with nn::register_layer "
                        "to save its architecture as JSON");
  using nlohmann::json;
  // a node is named by its layer and its index among that layer's nodes in this model (a shared
  // layer has several)
  std::map<const SymbolicNode*, std::pair<std::string, int64_t>> node_ref;
  std::map<const Layer*, int64_t> count;
  for (auto& n : graph_->order) node_ref[n.get()] = {n->layer->name(), count[n->layer.get()]++};
  auto tensor_ref = [&](const SymbolicNode* n) {
    auto& [layer, index] = node_ref.at(n);
    return json::array({layer, index, 0});
  };
  json layers = json::array();
  for (const std::shared_ptr<Layer>& l : this->layers()) {
    json entry = serialize_layer(*l);
    entry["name"] = l->name();
    json nodes = json::array();
    for (auto& n : graph_->order) {
      if (n->layer != l || n->inputs.empty()) continue;
      json inbound = tensor_ref(n->inputs[0].get());
      inbound.push_back(json::object());
      nodes.push_back(json::array({inbound}));
    }
    entry["inbound_nodes"] = nodes;
    layers.push_back(std::move(entry));
  }
  json c = Layer::get_config();
  c["layers"] = std::move(layers);
  c["input_layers"] = json::array({tensor_ref(graph_->input.get())});
  c["output_layers"] = json::array({tensor_ref(graph_->output.get())});
  return c;
}

std::string ModelImpl::to_json(int indent) const { return serialize_layer(*this).dump(indent); }

// ---------------------------------------------------------------------------------------------
// Sequential

SequentialImpl::SequentialImpl(std::vector<std::shared_ptr<Layer>> layers, std::string name)
    : ModelImpl(std::move(name)) {
  for (auto& l : layers) add(std::move(l));
}

void SequentialImpl::add(std::shared_ptr<Layer> layer) {
  if (!layer) fail<InvalidArgument>(name(), "cannot add a null layer");
  const bool input_first = !layers_.empty() && std::dynamic_pointer_cast<InputLayerImpl>(layers_[0]) != nullptr;
  if (built() && !input_first)
    fail<FailedPrecondition>(name(), "cannot add layer '", layer->name(), "' to a built Sequential model");
  auto in = std::dynamic_pointer_cast<InputLayerImpl>(layer);
  if (in && !layers_.empty()) fail<InvalidArgument>(name(), "an InputLayer can only be the first layer");
  layers_.push_back(layer);
  register_module(layer->name(), std::static_pointer_cast<Module>(layer));
  if (in) {
    ensure_built(in->batch_shape());
  } else if (built()) {
    // a model that starts with an InputLayer builds each layer as it is added, as Keras does
    apply_symbolic(*layer);
  }
}

void SequentialImpl::apply_symbolic(Layer& l) {
  SymbolicTensor t(std::make_shared<SymbolicNode>(SymbolicNode{nullptr, {}, shape_, dtype_}));
  l.ensure_built(shape_);
  std::tie(shape_, dtype_) = l.compute_output_type(shape_, dtype_);
  // records the output shape for summary(), as a symbolic application does
  l(t);
}

void SequentialImpl::build(const Shape& input_shape) {
  shape_ = input_shape;
  if (shape_.rank() > 0) shape_.mut(0) = -1;
  // an InputLayer first declares the dtype (int ids for an Embedding); otherwise float32
  auto* input = layers_.empty() ? nullptr : dynamic_cast<InputLayerImpl*>(layers_.front().get());
  dtype_ = input ? input->dtype() : float32;
  for (auto& l : layers_) apply_symbolic(*l);
  InputSpec spec;
  spec.ndim = input_shape.rank();
  input_spec = spec;
}

Tensor SequentialImpl::call(const Tensor& inputs, bool training) {
  Tensor x = inputs;
  for (auto& l : layers_) x = (*l)(x, training);
  return x;
}

std::pair<Shape, DType> SequentialImpl::compute_output_type(const Shape& input_shape, DType input_dtype) {
  Shape s = input_shape;
  DType d = input_dtype;
  for (auto& l : layers_) std::tie(s, d) = l->compute_output_type(s, d);
  return {s, d};
}

std::vector<std::shared_ptr<Layer>> SequentialImpl::layers() const { return layers_; }

nlohmann::json SequentialImpl::get_config() const {
  nlohmann::json c = Layer::get_config();
  nlohmann::json layers = nlohmann::json::array();
  for (auto& l : layers_) layers.push_back(serialize_layer(*l));
  c["layers"] = std::move(layers);
  // a model built by a call records the shape it was built for (an InputLayer first declares it)
  const bool input_first = !layers_.empty() && dynamic_cast<const InputLayerImpl*>(layers_[0].get());
  if (built() && !input_first && build_input_shape()) {
    nlohmann::json dims = nlohmann::json::array();
    for (int64_t i = 0; i < build_input_shape()->rank(); ++i) {
      int64_t d = build_input_shape()->dim(size_t(i));
      dims.push_back(i == 0 || d < 0 ? nlohmann::json(nullptr) : nlohmann::json(d));
    }
    c["build_input_shape"] = dims;
  }
  return c;
}

// ---------------------------------------------------------------------------------------------
// summary()

namespace {

constexpr int kLineLength = 65;
constexpr int kPositions[3] = {29, 55, 65};

// Keras' print_row: each field is cut to its column (2 spaces between columns) and the rest
// continues on the next lines; trailing blanks are trimmed.
void print_row(std::ostream& os, std::vector<std::string> fields) {
  while (std::any_of(fields.begin(), fields.end(), [](const std::string& f) { return !f.empty(); })) {
    std::string line;
    for (size_t col = 0; col < fields.size(); ++col) {
      int start = col > 0 ? kPositions[col - 1] : 0;
      int space = col + 1 != fields.size() ? 2 : 0;
      size_t cutoff = size_t(kPositions[col] - start - space);
      std::string fit = fields[col].substr(0, cutoff);
      // prefer breaking after the end of a tuple
      size_t best = std::string::npos;
      for (const char* b : {"),", "},", "],", "',"})
        if (size_t p = fit.find(b); p != std::string::npos) best = std::min(best, p + 2);
      if (best != std::string::npos) {
        cutoff = best;
        fit = fit.substr(0, cutoff);
      }
      if (col == 0) line += " ";
      line += fit;
      line += std::string(size_t(space), ' ');
      fields[col] = fields[col].size() > cutoff ? fields[col].substr(cutoff) : "";
      if (int(line.size()) < kPositions[col]) line += std::string(size_t(kPositions[col]) - line.size(), ' ');
    }
    while (!line.empty() && line.back() == ' ') line.pop_back();
    os << line << "\n";
  }
}

int64_t count(const std::vector<Variable>& vs) {
  int64_t n = 0;
  for (auto& v : vs) n += v.shape().num_elements();
  return n;
}

std::string with_commas(int64_t n) {
  std::string s = std::to_string(n), out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (i && (s.size() - i) % 3 == 0) out += ',';
    out += s[i];
  }
  return out;
}

}  // namespace

void ModelImpl::summary(std::ostream& os) const {
  if (!built())
    fail<FailedPrecondition>(name(),
                             "this model has not yet been built: call it on data, or give it an input shape "
                             "(an InputLayer, or the functional API), before summary()");
  os << "Model: \"" << name() << "\"\n";
  os << std::string(kLineLength, '_') << "\n";
  print_row(os, {"Layer (type)", "Output Shape", "Param #"});
  os << std::string(kLineLength, '=') << "\n";
  for (auto& l : layers()) {
    print_row(os, {l->name() + " (" + l->type_name() + ")", l->output_shape_string(), with_commas(l->count_params())});
    os << "\n";
  }
  os << std::string(kLineLength, '=') << "\n";
  int64_t total = count(variables()), trainable = count(trainable_variables());
  os << "Total params: " << with_commas(total) << "\n";
  os << "Trainable params: " << with_commas(trainable) << "\n";
  os << "Non-trainable params: " << with_commas(total - trainable) << "\n";
  os << std::string(kLineLength, '_') << "\n";
}

void ModelImpl::summary() const { summary(std::cout); }

std::string ModelImpl::summary_string() const {
  std::ostringstream os;
  summary(os);
  return os.str();
}

// ---------------------------------------------------------------------------------------------
// compile

OptimizerArg::OptimizerArg(const std::string& name) {
  if (name == "sgd" || name == "SGD")
    ptr = std::make_shared<optim::SGD>();
  else if (name == "adam" || name == "Adam")
    ptr = std::make_shared<optim::Adam>();
  else if (name == "adamw" || name == "AdamW")
    ptr = std::make_shared<optim::AdamW>();
  else if (name == "rmsprop" || name == "RMSprop")
    ptr = std::make_shared<optim::RMSprop>();
  else
    fail<InvalidArgument>("optimizers", "unknown optimizer '", name, "'; known: sgd, adam, adamw, rmsprop");
}

struct ModelImpl::Compiled {
  std::shared_ptr<optim::Optimizer> optimizer;
  losses::Loss loss;
  std::shared_ptr<metrics::Mean> loss_tracker;
  std::vector<std::shared_ptr<metrics::Metric>> metrics;
  bool run_eagerly = false;
};

// The step functions: traced `function`s, or the C++ steps themselves when run eagerly.
struct ModelImpl::Steps {
  std::function<Tensor(const Tensor&, const Tensor&)> train, test;
  std::function<Tensor(const Tensor&)> predict;
  std::function<size_t()> train_traces;
};

namespace {

// A step function traced once per relaxed argument type: the first (batch) dim unknown and
// named "batch" in every argument, so they share one symbol, the other dims as given. Batches of
// any size, the last partial one included, run the same graph (the CPU backend compiles it per
// concrete shape, a few of which it keeps).
template <class Fn>
class BatchFunction {
 public:
  BatchFunction(Fn fn, std::string name, std::vector<std::string> arg_names)
      : fn_(std::move(fn)), name_(std::move(name)), arg_names_(std::move(arg_names)) {}

  template <class... T>
  Tensor operator()(const T&... args) const {
    return for_args({args...})(args...);
  }
  size_t tracing_count() const {
    std::lock_guard lock(mu_);
    size_t n = 0;
    for (auto& e : entries_) n += e.second.tracing_count();
    return n;
  }

 private:
  using Traced = decltype(function(std::declval<Fn>()));

  static bool fits(const std::vector<TensorSpec>& specs, std::initializer_list<Tensor> args) {
    size_t i = 0;
    for (const Tensor& t : args) {
      const TensorSpec& s = specs[i++];
      if (s.dtype != t.dtype() || s.shape.rank() != t.ndim()) return false;
      for (int64_t d = 1; d < t.ndim(); ++d)
        if (s.shape.dim(size_t(d)) != t.shape().dim(size_t(d))) return false;
    }
    return true;
  }

  Traced for_args(std::initializer_list<Tensor> args) const {
    std::lock_guard lock(mu_);
    for (auto& [specs, f] : entries_)
      if (fits(specs, args)) return f;
    std::vector<TensorSpec> specs;
    size_t i = 0;
    for (const Tensor& t : args) {
      TensorSpec s(t.shape(), t.dtype(), arg_names_[i++]);
      if (s.shape.rank() > 0) {
        s.shape.mut(0) = -1;
        s.dim_names = {"batch"};
      }
      specs.push_back(std::move(s));
    }
    FunctionOptions o{.name = name_, .arg_names = arg_names_, .input_signature = specs};
    entries_.emplace_back(specs, function(fn_, std::move(o)));
    return entries_.back().second;
  }

  Fn fn_;
  std::string name_;
  std::vector<std::string> arg_names_;
  mutable std::mutex mu_;
  mutable std::vector<std::pair<std::vector<TensorSpec>, Traced>> entries_;
};

}  // namespace

void ModelImpl::compile(CompileOptions options) {
  if (!options.loss) fail<InvalidArgument>(name(), "compile needs a loss");
  if (!options.optimizer.ptr) fail<InvalidArgument>(name(), "compile needs an optimizer");
  auto c = std::make_shared<Compiled>(Compiled{options.optimizer.ptr, *options.loss, nullptr, {}, options.run_eagerly});
  c->loss_tracker = std::make_shared<metrics::Mean>("loss");
  for (auto& m : options.metrics) {
    if (m.ptr)
      c->metrics.push_back(m.ptr);
    else
      c->metrics.push_back(metrics::get(m.name, c->loss.accuracy_kind()));
  }
  compiled_ = std::move(c);
  std::lock_guard lock(steps_mu_);
  steps_.reset();
}

std::shared_ptr<optim::Optimizer> ModelImpl::optimizer() const { return compiled_ ? compiled_->optimizer : nullptr; }

std::vector<std::shared_ptr<metrics::Metric>> ModelImpl::metrics() const {
  std::vector<std::shared_ptr<metrics::Metric>> out;
  if (!compiled_) return out;
  out.push_back(compiled_->loss_tracker);
  for (auto& m : compiled_->metrics) out.push_back(m);
  return out;
}

size_t ModelImpl::train_function_tracing_count() const {
  std::shared_ptr<Steps> s;
  {
    std::lock_guard lock(steps_mu_);
    s = steps_;
  }
  return s && s->train_traces ? s->train_traces() : 0;
}

void ModelImpl::reset_metrics() {
  for (auto& m : metrics()) m->reset_state();
}

Logs ModelImpl::read_metrics(const std::string& prefix) const {
  Logs logs;
  for (auto& m : metrics()) logs[prefix + m->name()] = double(m->result().item<float>());
  return logs;
}

namespace {
// The examples in a batch, the loss metric's weight for it (a custom loss may return a scalar).
Tensor examples(const Tensor& per_example, const Tensor& y) {
  if (per_example.ndim() == 1) return cast(size(per_example), float32);
  return cast(shape_of(y).index({0}), float32);
}
}  // namespace

Tensor ModelImpl::train_step(const Tensor& x, const Tensor& y) {
  Compiled& c = *compiled_;
  GradientTape tape;
  Tensor pred = (*this)(x, /*training=*/true);
  Tensor per = c.loss.per_example(y, pred);
  Tensor loss = reduce_mean(per);
  std::vector<Variable> vars = trainable_variables();
  std::vector<Source> sources(vars.begin(), vars.end());
  std::vector<Tensor> grads = tape.gradient(loss, sources);
  c.optimizer->apply_gradients(grads, vars);
  // the epoch's loss is the mean over examples: each batch counts with its size
  c.loss_tracker->update(loss, examples(per, y));
  for (auto& m : c.metrics) m->update_state(y, pred);
  return loss;
}

Tensor ModelImpl::test_step(const Tensor& x, const Tensor& y) {
  Compiled& c = *compiled_;
  Tensor pred = (*this)(x, /*training=*/false);
  Tensor per = c.loss.per_example(y, pred);
  Tensor loss = reduce_mean(per);
  c.loss_tracker->update(loss, examples(per, y));
  for (auto& m : c.metrics) m->update_state(y, pred);
  return loss;
}

std::shared_ptr<ModelImpl::Steps> ModelImpl::steps() {
  std::lock_guard lock(steps_mu_);
  if (steps_) return steps_;
  auto s = std::make_shared<Steps>();
  using Step2 = std::function<Tensor(Tensor, Tensor)>;
  using Step1 = std::function<Tensor(Tensor)>;
  auto predict_fn = std::make_shared<BatchFunction<Step1>>([this](Tensor x) { return (*this)(x, false); },
                                                           "predict_function", std::vector<std::string>{"x"});
  if (!compiled_) {
    // predict works without compile: only the prediction function is needed
    s->predict = [predict_fn](const Tensor& t) { return (*predict_fn)(t); };
  } else if (compiled_->run_eagerly) {
    s->train = [this](const Tensor& x, const Tensor& y) { return train_step(x, y); };
    s->test = [this](const Tensor& x, const Tensor& y) { return test_step(x, y); };
    s->predict = [this](const Tensor& x) { return (*this)(x, false); };
  } else {
    auto train = std::make_shared<BatchFunction<Step2>>([this](Tensor x, Tensor y) { return train_step(x, y); },
                                                        "train_function", std::vector<std::string>{"x", "y"});
    auto test = std::make_shared<BatchFunction<Step2>>([this](Tensor x, Tensor y) { return test_step(x, y); },
                                                       "test_function", std::vector<std::string>{"x", "y"});
    s->train = [train](const Tensor& x, const Tensor& y) { return (*train)(x, y); };
    s->test = [test](const Tensor& x, const Tensor& y) { return (*test)(x, y); };
    s->predict = [predict_fn](const Tensor& x) { return (*predict_fn)(x); };
    s->train_traces = [train] { return train->tracing_count(); };
  }
  steps_ = s;
  return s;
}

// ---------------------------------------------------------------------------------------------
// Batching

namespace {

// Rows `idx` of t (gather along the first axis).
Tensor rows(const Tensor& t, const std::vector<int64_t>& idx) {
  return gather(t, constant(idx, Shape{int64_t(idx.size())}), 0);
}

// Checks that a batch from a dataset holds (x, y) with as many rows in y as in x.
void check_batch(const data::Element& e, std::string_view who) {
  if (e.size() < 2 || e[0].ndim() == 0)
    fail<InvalidArgument>(who, "dataset elements must be batches (x, y); batch the dataset first (got ", e.size(),
                          " components, the first of shape ", e.empty() ? std::string("()") : e[0].shape().to_string(),
                          ")");
  if (e[1].ndim() == 0 || e[1].shape().dim(0) != e[0].shape().dim(0))
    fail<InvalidArgument>(who, "x and y must have the same number of rows, got shapes ", e[0].shape().to_string(),
                          " and ", e[1].shape().to_string());
}

void check_xy(std::string_view who, const Tensor& x, const Tensor& y) {
  if (!x.defined() || !y.defined()) fail<InvalidArgument>(who, "x and y must be defined");
  if (x.ndim() == 0 || y.ndim() == 0)
    fail<InvalidArgument>(who, "x and y need a first (example) axis, got shapes ", x.shape().to_string(), " and ",
                          y.shape().to_string());
  if (x.shape().dim(0) != y.shape().dim(0))
    fail<InvalidArgument>(who, "x and y must have the same number of examples, got ", x.shape().dim(0), " and ",
                          y.shape().dim(0));
}

// The batches of one pass over (x, y) in `order`: `step_batch` rows each, the last one smaller when
// the examples do not divide evenly.
std::vector<data::Element> tensor_batches(const Tensor& x, const Tensor& y, const std::vector<int64_t>& order,
                                          int64_t step_batch) {
  std::vector<data::Element> out;
  const int64_t n = int64_t(order.size());
  bool identity = true;
  for (int64_t i = 0; i < n && identity; ++i) identity = order[size_t(i)] == i;
  for (int64_t start = 0; start < n; start += step_batch) {
    int64_t end = std::min(n, start + step_batch);
    data::Element e;
    if (identity && start == 0 && end == x.shape().dim(0)) {
      e = {x, y};
    } else {
      std::vector<int64_t> idx(order.begin() + start, order.begin() + end);
      e = {rows(x, idx), rows(y, idx)};
    }
    out.push_back(std::move(e));
  }
  return out;
}

bool is_terminal(std::ostream* os) { return (os == nullptr || os == &std::cout) && isatty(STDOUT_FILENO); }

std::string format_value(double v) {
  char buf[64];
  if (std::fabs(v) > 1e-3 || v == 0)
    std::snprintf(buf, sizeof buf, "%.4f", v);
  else
    std::snprintf(buf, sizeof buf, "%.4e", v);
  return buf;
}

std::string format_logs(const Logs& logs, const std::vector<std::string>& order) {
  std::string s;
  for (auto& k : order)
    if (auto it = logs.find(k); it != logs.end()) s += " - " + k + ": " + format_value(it->second);
  return s;
}

std::string per_step(double seconds) {
  char buf[64];
  if (seconds >= 1)
    std::snprintf(buf, sizeof buf, "%.0fs/step", seconds);
  else if (seconds >= 1e-3)
    std::snprintf(buf, sizeof buf, "%.0fms/step", seconds * 1e3);
  else
    std::snprintf(buf, sizeof buf, "%.0fus/step", seconds * 1e6);
  return buf;
}

// Keras' progress bar: "12/50 [=====>........................]".
std::string bar(int64_t current, int64_t target) {
  int digits = int(std::to_string(target).size());
  char head[64];
  std::snprintf(head, sizeof head, "%*lld/%lld [", digits, (long long)current, (long long)target);
  std::string s = head;
  int width = target > 0 ? int(30.0 * double(current) / double(target)) : 30;
  if (width > 0) {
    s += std::string(size_t(width - 1), '=');
    s += current < target ? '>' : '=';
  }
  s += std::string(size_t(30 - width), '.');
  return s + "]";
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// fit / evaluate / predict

Logs ModelImpl::run_evaluation(const std::vector<data::Element>& batches) {
  std::shared_ptr<Steps> s = steps();
  reset_metrics();
  for (auto& b : batches) s->test(b[0], b[1]);
  return read_metrics();
}

History ModelImpl::fit_batches(const std::function<std::vector<data::Element>(int64_t epoch)>& epoch_batches,
                               int64_t steps_hint, const std::vector<data::Element>& validation, FitOptions& o) {
  if (o.verbose < 0 || o.verbose > 2) fail<InvalidArgument>(name(), "verbose must be 0, 1 or 2, got ", o.verbose);
  if (o.epochs < 0 || o.initial_epoch < 0)
    fail<InvalidArgument>(name(), "epochs and initial_epoch must be non-negative, got ", o.epochs, " and ",
                          o.initial_epoch);
  std::ostream& os = o.out ? *o.out : std::cout;
  const bool tty = o.verbose == 1 && is_terminal(o.out);
  std::shared_ptr<Steps> s = steps();
  optimizer()->build(trainable_variables());
  History history;
  std::vector<std::shared_ptr<Callback>> callbacks = o.callbacks;
  for (auto& cb : callbacks) cb->model = this;
  stop_training = false;
  for (auto& cb : callbacks) cb->on_train_begin({});
  std::vector<std::string> names;
  for (auto& m : metrics()) names.push_back(m->name());
  std::vector<std::string> all_names = names;
  if (!validation.empty())
    for (auto& n : names) all_names.push_back("val_" + n);
  Logs logs;
  for (int64_t epoch = o.initial_epoch; epoch < o.epochs && !stop_training; ++epoch) {
    for (auto& cb : callbacks) cb->on_epoch_begin(epoch, {});
    if (o.verbose) os << "Epoch " << epoch + 1 << "/" << o.epochs << "\n";
    reset_metrics();
    std::vector<data::Element> batches = epoch_batches(epoch);
    const int64_t steps = int64_t(batches.size());
    auto t0 = std::chrono::steady_clock::now();
    for (int64_t b = 0; b < steps; ++b) {
      for (auto& cb : callbacks) cb->on_train_batch_begin(b, {});
      s->train(batches[size_t(b)][0], batches[size_t(b)][1]);
      if (!callbacks.empty() || tty) {
        Logs batch_logs = read_metrics();
        for (auto& cb : callbacks) cb->on_train_batch_end(b, batch_logs);
        if (tty && b + 1 < steps)
          os << "\r" << bar(b + 1, steps) << " - ETA: ..." << format_logs(batch_logs, names) << std::flush;
      }
    }
    double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    logs = read_metrics();
    if (!validation.empty()) {
      Logs val = run_evaluation(validation);
      for (auto& [k, v] : val) logs["val_" + k] = v;
    }
    if (o.verbose == 1) {
      if (tty) os << "\r";
      os << bar(steps, steps);
      if (o.show_timings) {
        char t[32];
        std::snprintf(t, sizeof t, " - %.0fs ", secs);
        os << t << per_step(steps ? secs / double(steps) : 0);
      }
      os << format_logs(logs, all_names) << "\n";
    } else if (o.verbose == 2) {
      os << steps << "/" << steps;
      if (o.show_timings) {
        char t[32];
        std::snprintf(t, sizeof t, " - %.0fs", secs);
        os << t;
      }
      os << format_logs(logs, all_names);
      if (o.show_timings) {
        char t[64];
        std::snprintf(t, sizeof t, " - %.0fms/epoch - ", secs * 1e3);
        os << t << per_step(steps ? secs / double(steps) : 0);
      }
      os << "\n";
    }
    history.epoch.push_back(epoch);
    for (auto& [k, v] : logs) history.history[k].push_back(v);
    for (auto& cb : callbacks) cb->on_epoch_end(epoch, logs);
  }
  for (auto& cb : callbacks) cb->on_train_end(logs);
  (void)steps_hint;
  return history;
}

History ModelImpl::fit(const Tensor& x, const Tensor& y, FitOptions options) {
  if (!compiled_) fail<FailedPrecondition>(name(), "the model must be compiled before fit (call compile)");
  check_xy("fit", x, y);
  if (options.batch_size <= 0) fail<InvalidArgument>("fit", "batch_size must be positive, got ", options.batch_size);
  if (!(options.validation_split >= 0 && options.validation_split < 1))
    fail<InvalidArgument>("fit", "validation_split must be in [0, 1), got ", options.validation_split);
  const int64_t n = x.shape().dim(0);
  // Keras holds out the last examples, before shuffling
  const int64_t n_val = int64_t(std::floor(double(n) * options.validation_split));
  const int64_t n_train = n - n_val;
  if (n_train <= 0)
    fail<InvalidArgument>("fit", "no training examples (", n, " examples, validation_split ", options.validation_split,
                          ")");
  Tensor xt = x, yt = y;
  std::vector<data::Element> validation;
  const int64_t step_batch = std::min(options.batch_size, n_train);
  if (n_val > 0) {
    std::vector<int64_t> tr(static_cast<size_t>(n_train)), va(static_cast<size_t>(n_val));
    std::iota(tr.begin(), tr.end(), 0);
    std::iota(va.begin(), va.end(), n_train);
    xt = rows(x, tr), yt = rows(y, tr);
    std::vector<int64_t> order(static_cast<size_t>(n_val));
    std::iota(order.begin(), order.end(), 0);
    validation = tensor_batches(rows(x, va), rows(y, va), order, std::min(options.batch_size, n_val));
  }
  if (options.validation_data) {
    auto& [xv, yv] = *options.validation_data;
    check_xy("fit (validation_data)", xv, yv);
    std::vector<int64_t> order(static_cast<size_t>(xv.shape().dim(0)));
    std::iota(order.begin(), order.end(), 0);
    validation = tensor_batches(xv, yv, order, std::min(options.batch_size, int64_t(order.size())));
  }
  if (!built()) (*this)(rows(xt, {0}));
  const uint64_t seed = options.seed ? *options.seed : std::random_device{}();
  auto epoch_batches = [&](int64_t epoch) {
    std::vector<int64_t> order(static_cast<size_t>(n_train));
    std::iota(order.begin(), order.end(), 0);
    if (options.shuffle) {
      std::mt19937_64 rng(seed + uint64_t(epoch) * 0x9E3779B97F4A7C15ull);
      std::shuffle(order.begin(), order.end(), rng);
    }
    return tensor_batches(xt, yt, order, step_batch);
  };
  return fit_batches(epoch_batches, (n_train + step_batch - 1) / step_batch, validation, options);
}

History ModelImpl::fit(const data::Dataset& dataset, FitOptions options) {
  if (!compiled_) fail<FailedPrecondition>(name(), "the model must be compiled before fit (call compile)");
  if (options.steps_per_epoch && *options.steps_per_epoch <= 0)
    fail<InvalidArgument>("fit", "steps_per_epoch must be positive, got ", *options.steps_per_epoch);
  if (dataset.cardinality() == -2 && !options.steps_per_epoch)
    fail<InvalidArgument>("fit", "the dataset repeats forever: give steps_per_epoch");
  std::vector<data::Element> validation;
  if (options.validation_data) {
    auto& [xv, yv] = *options.validation_data;
    check_xy("fit (validation_data)", xv, yv);
    std::vector<int64_t> order(static_cast<size_t>(xv.shape().dim(0)));
    std::iota(order.begin(), order.end(), 0);
    validation = tensor_batches(xv, yv, order, std::min(options.batch_size, int64_t(order.size())));
  }
  std::unique_ptr<data::Iterator> it;
  auto epoch_batches = [&](int64_t) {
    std::vector<data::Element> out;
    // with steps_per_epoch an epoch continues the same iteration, as Keras does
    if (!it || !options.steps_per_epoch) it = dataset.begin_iteration();
    for (int64_t s = 0; !options.steps_per_epoch || s < *options.steps_per_epoch; ++s) {
      std::optional<data::Element> e = it->next();
      if (!e) {
        it.reset();
        break;
      }
      check_batch(*e, "fit");
      if (!built()) (*this)((*e)[0]);
      out.push_back(std::move(*e));
    }
    return out;
  };
  return fit_batches(epoch_batches, options.steps_per_epoch.value_or(dataset.cardinality()), validation, options);
}

Logs ModelImpl::evaluate(const Tensor& x, const Tensor& y, EvaluateOptions options) {
  if (!compiled_) fail<FailedPrecondition>(name(), "the model must be compiled before evaluate (call compile)");
  check_xy("evaluate", x, y);
  if (options.batch_size <= 0)
    fail<InvalidArgument>("evaluate", "batch_size must be positive, got ", options.batch_size);
  std::vector<int64_t> order(static_cast<size_t>(x.shape().dim(0)));
  std::iota(order.begin(), order.end(), 0);
  if (!built()) (*this)(rows(x, {0}));
  auto batches = tensor_batches(x, y, order, std::min(options.batch_size, int64_t(order.size())));
  Logs logs = run_evaluation(batches);
  if (options.verbose) {
    std::ostream& os = options.out ? *options.out : std::cout;
    std::vector<std::string> names;
    for (auto& m : metrics()) names.push_back(m->name());
    int64_t steps = int64_t(batches.size());
    os << bar(steps, steps) << format_logs(logs, names) << "\n";
  }
  return logs;
}

Logs ModelImpl::evaluate(const data::Dataset& dataset, EvaluateOptions options) {
  if (!compiled_) fail<FailedPrecondition>(name(), "the model must be compiled before evaluate (call compile)");
  if (dataset.cardinality() == -2) fail<InvalidArgument>("evaluate", "the dataset repeats forever");
  std::vector<data::Element> batches;
  for (const data::Element& e : dataset) {
    check_batch(e, "evaluate");
    if (!built()) (*this)(e[0]);
    batches.push_back(e);
  }
  return run_evaluation(batches);
}

Tensor ModelImpl::predict(const Tensor& x, PredictOptions options) {
  if (!x.defined() || x.ndim() == 0) fail<InvalidArgument>("predict", "x needs a first (example) axis");
  if (options.batch_size <= 0)
    fail<InvalidArgument>("predict", "batch_size must be positive, got ", options.batch_size);
  const int64_t n = x.shape().dim(0);
  if (n == 0) fail<InvalidArgument>("predict", "x has no examples");
  if (!built()) (*this)(rows(x, {0}));
  std::shared_ptr<Steps> s = steps();
  const int64_t b = std::min(options.batch_size, n);
  std::vector<Tensor> outs;
  for (int64_t start = 0; start < n; start += b) {
    int64_t end = std::min(n, start + b);
    outs.push_back(s->predict((start == 0 && end == n) ? x : x.index({Slice(start, end)})));
  }
  return outs.size() == 1 ? outs[0] : concat(outs, 0);
}

}  // namespace kiln::nn
