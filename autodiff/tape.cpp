// The gradient tape: a dispatch level that records differentiable ops touching tracked tensors,
// and the reverse sweep that applies gradient rules to them.
#include "autodiff/tape.h"

#include "autodiff/rules.h"
#include "runtime/logging.h"

namespace kiln {

class GradientTape::Recorder final : public ops::Level {
 public:
  explicit Recorder(GradientTape& tape) : tape_(tape) {}
  ops::TensorList process(const ops::OpDef& def, const ops::Attrs& attrs, std::span<const Tensor> inputs,
                          const ops::TypeList& types) override {
    ops::TensorList out = process_below(def, attrs, inputs, types);
    if (tape_.recording_) tape_.record(def, attrs, inputs, out);
    return out;
  }
  Tensor read_variable(VariableImpl& var) override {
    Tensor v = read_variable_below(var);
    if (tape_.recording_) tape_.on_variable_read(var, v);
    return v;
  }
  bool records_gradients() const override { return tape_.recording_; }
  GradientTape& tape() const { return tape_; }

 private:
  GradientTape& tape_;
};

GradientTape::GradientTape(bool persistent, bool watch_accessed_variables)
    : persistent_(persistent),
      watch_accessed_variables_(watch_accessed_variables),
      level_(std::make_unique<Recorder>(*this)),
      scope_(std::make_unique<ops::LevelScope>(*level_)) {}

GradientTape::~GradientTape() = default;

bool GradientTape::is_tracked(const Tensor& t) const { return t.defined() && tracked_.count(t.impl_ref().get()) != 0; }

void GradientTape::watch(const Tensor& t) {
  if (!t.defined()) fail<InvalidArgument>("GradientTape", "cannot watch an undefined (None) tensor");
  if (!is_inexact(t.dtype())) {
    logging::warn(
        "[GradientTape] watch() of a tensor of dtype {} is ignored: gradients flow only through floating and complex "
        "tensors",
        dtype_name(t.dtype()));
    return;
  }
  if (tracked_.insert(t.impl_ref().get()).second) watched_tensors_.push_back(t);
}

void GradientTape::watch(const Variable& v) {
  const auto& h = v.handle();
  if (!h) fail<InvalidArgument>("GradientTape", "cannot watch an undefined variable");
  bool known = false;
  for (const auto& w : watched_vars_) known |= (w == h);
  if (!known) watched_vars_.push_back(h);
  if (!is_inexact(h->dtype()))
    logging::warn(
        "[GradientTape] watch() of a variable of dtype {} has no effect: gradients flow only through floating and "
        "complex values",
        dtype_name(h->dtype()));
  on_variable_read(*h, h->value());
}

void GradientTape::on_variable_read(VariableImpl& var, const Tensor& value) {
  bool known = false;
  for (const auto& w : watched_vars_) known |= (w.get() == &var);
  if (!known) {
    if (!watch_accessed_variables_ || !var.trainable() || !is_inexact(value.dtype())) return;
    watched_vars_.push_back(var.shared_from_this());
  }
  if (!is_inexact(value.dtype())) return;
  auto& reads = var_reads_[&var];
  for (const Tensor& r : reads)
    if (r.is_same(value)) return;
  reads.push_back(value);
  tracked_.insert(value.impl_ref().get());
}

std::vector<Variable> GradientTape::watched_variables() const {
  std::vector<Variable> out;
  for (const auto& w : watched_vars_) out.push_back(Variable::from_handle(w));
  return out;
}

void GradientTape::record(const ops::OpDef& def, const ops::Attrs& attrs, std::span<const Tensor> inputs,
                          const ops::TensorList& outputs) {
  if (autodiff::is_non_differentiable(def.id)) return;
  bool connected = false;
  for (const Tensor& t : inputs) connected |= is_tracked(t);
  if (!connected) return;
  bool inexact_out = false;
  for (const Tensor& t : outputs) inexact_out |= is_inexact(t.dtype());
  if (!inexact_out) return;  // e.g. a cast to an integer type: gradients stop here
  Entry e{&def, attrs, {inputs.begin(), inputs.end()}, {outputs.begin(), outputs.end()}, nullptr};
  for (const Tensor& t : outputs)
    if (is_inexact(t.dtype())) tracked_.insert(t.impl_ref().get());
  entries_.push_back(std::move(e));
}

void GradientTape::record_custom(std::span<const Tensor> inputs, std::span<const Tensor> outputs,
                                 std::shared_ptr<const CustomBackward> backward) {
  bool connected = false;
  for (const Tensor& t : inputs) connected |= is_tracked(t);
  if (!connected) return;
  for (const Tensor& t : outputs)
    if (is_inexact(t.dtype())) tracked_.insert(t.impl_ref().get());
  entries_.push_back(
      Entry{nullptr, {}, {inputs.begin(), inputs.end()}, {outputs.begin(), outputs.end()}, std::move(backward)});
}

GradientTape* GradientTape::tape_of(ops::Level* level) {
  auto* recorder = dynamic_cast<Recorder*>(level);
  return recorder ? &recorder->tape() : nullptr;
}

void GradientTape::reset() {
  recording_ = true;  // as TensorFlow: a reset tape records again, even after gradient()
  entries_.clear();
  tracked_.clear();
  watched_tensors_.clear();
  watched_vars_.clear();
  var_reads_.clear();
  used_ = false;
}

void GradientTape::begin_use() {
  if (used_ && !persistent_)
    fail<FailedPrecondition>("GradientTape",
                             "a non-persistent GradientTape can only be used to compute one set of gradients; "
                             "construct it with persistent=true to call gradient() more than once");
  used_ = true;
}

void GradientTape::end_use() {
  if (persistent_) return;
  // a non-persistent tape is done: it records nothing more and frees what it held
  recording_ = false;
  entries_.clear();
}

std::vector<Tensor> GradientTape::sweep(const std::vector<Tensor>& targets, const std::vector<Tensor>& seeds,
                                        const std::vector<Source>& sources, UnconnectedGradients unconnected) {
  // the backward pass is not recorded by this tape (outer tapes do record it: higher orders)
  StopRecording pause(*this);
  std::unordered_map<const TensorImpl*, Tensor> grads;
  auto accumulate = [&](const Tensor& t, const Tensor& g) {
    auto [it, fresh] = grads.try_emplace(t.impl_ref().get(), g);
    if (!fresh) it->second = add(it->second, g);
  };
  for (size_t i = 0; i < targets.size(); ++i) {
    const Tensor& t = targets[i];
    if (!t.defined()) fail<InvalidArgument>("GradientTape", "the target is undefined (None)");
    if (is_inexact(t.dtype())) accumulate(t, seeds.empty() || !seeds[i].defined() ? ones_like(t) : seeds[i]);
  }
  // source tensors keep their gradient even when they are also intermediate results
  std::unordered_set<const TensorImpl*> keep;
  for (const Source& s : sources) {
    if (s.tensor().defined()) keep.insert(s.tensor().impl_ref().get());
    if (s.variable())
      if (auto it = var_reads_.find(s.variable().get()); it != var_reads_.end())
        for (const Tensor& r : it->second) keep.insert(r.impl_ref().get());
  }

  std::vector<Tensor> out_grads;
  for (size_t i = entries_.size(); i-- > 0;) {
    const Entry& e = entries_[i];
    bool any = false;
    out_grads.assign(e.outputs.size(), Tensor());
    for (size_t k = 0; k < e.outputs.size(); ++k) {
      auto it = grads.find(e.outputs[k].impl_ref().get());
      if (it == grads.end()) continue;
      out_grads[k] = it->second;
      any = true;
      if (!keep.count(it->first)) grads.erase(it);
    }
    if (!any) continue;
    for (size_t k = 0; k < e.outputs.size(); ++k)
      if (!out_grads[k].defined()) out_grads[k] = zeros_like(e.outputs[k]);
    std::vector<Tensor> in_grads;
    if (e.custom) {
      in_grads = (*e.custom)(out_grads);
    } else {
      autodiff::GradFn rule = autodiff::grad_rule(e.def->id);
      if (!rule) fail<LookupError>(e.def->name, "gradient registry has no entry for: ", e.def->name);
      in_grads = rule(autodiff::GradContext{*e.def, e.attrs, e.inputs, e.outputs, out_grads});
    }
    for (size_t j = 0; j < e.inputs.size() && j < in_grads.size(); ++j) {
      if (!in_grads[j].defined() || !is_tracked(e.inputs[j])) continue;
      const Tensor& g = in_grads[j];
      accumulate(e.inputs[j], g.dtype() == e.inputs[j].dtype() ? g : cast(g, e.inputs[j].dtype()));
    }
  }

  std::vector<Tensor> result;
  result.reserve(sources.size());
  for (const Source& s : sources) {
    Tensor g, like;
    if (s.variable()) {
      like = s.variable()->value();
      if (auto it = var_reads_.find(s.variable().get()); it != var_reads_.end())
        for (const Tensor& r : it->second)
          if (auto gi = grads.find(r.impl_ref().get()); gi != grads.end())
            g = g.defined() ? add(g, gi->second) : gi->second;
    } else {
      like = s.tensor();
      if (!like.defined()) fail<InvalidArgument>("GradientTape", "a source is undefined (None)");
      if (auto gi = grads.find(like.impl_ref().get()); gi != grads.end()) g = gi->second;
    }
    if (!is_inexact(like.dtype())) {
      logging::warn(
          "[GradientTape] the gradient with respect to a source of dtype {} is None: gradients flow only through "
          "floating and complex tensors",
          dtype_name(like.dtype()));
      g = Tensor();
    }
    if (!g.defined() && unconnected == UnconnectedGradients::Zero) g = zeros_like(like);
    result.push_back(std::move(g));
  }
  return result;
}

std::vector<Tensor> GradientTape::gradient(const std::vector<Tensor>& targets, const std::vector<Source>& sources,
                                           const std::vector<Tensor>& output_gradients,
                                           UnconnectedGradients unconnected) {
  if (output_gradients.size() != targets.size())
    fail<InvalidArgument>("GradientTape", "got ", output_gradients.size(), " output gradients for ", targets.size(),
                          " targets");
  for (size_t i = 0; i < targets.size(); ++i)
    if (output_gradients[i].defined() && targets[i].defined() &&
        (output_gradients[i].dtype() != targets[i].dtype() ||
         (output_gradients[i].shape().is_fully_defined() && targets[i].shape().is_fully_defined() &&
          output_gradients[i].shape() != targets[i].shape())))
      fail<InvalidArgument>("GradientTape", "output gradient ", i, " has dtype ",
                            dtype_name(output_gradients[i].dtype()), " and shape ",
                            output_gradients[i].shape().to_string(), " but its target has dtype ",
                            dtype_name(targets[i].dtype()), " and shape ", targets[i].shape().to_string());
  begin_use();
  std::vector<Tensor> g = sweep(targets, output_gradients, sources, unconnected);
  end_use();
  return g;
}

std::vector<Tensor> GradientTape::compute(const std::vector<Tensor>& targets, const std::vector<Source>& sources,
                                          UnconnectedGradients unconnected) {
  begin_use();
  std::vector<Tensor> g = sweep(targets, {}, sources, unconnected);
  end_use();
  return g;
}

Tensor GradientTape::jacobian(const Tensor& target, const Source& source, UnconnectedGradients unconnected) {
  begin_use();
  const Shape& ts = target.shape();
  int64_t n = target.num_elements();
  std::vector<Tensor> rows;
  rows.reserve(static_cast<size_t>(n));
  Tensor like = source.variable() ? source.variable()->value() : source.tensor();
  for (int64_t i = 0; i < n; ++i) {
    // one backward sweep per element of the target, seeded with a one-hot cotangent
    Tensor seed = reshape(one_hot(scalar<int64_t>(i), n, 1, 0, -1, target.dtype()), ts);
    Tensor g = sweep({target}, {seed}, {source}, unconnected)[0];
    if (!g.defined()) {
      end_use();
      return Tensor();
    }
    rows.push_back(g);
  }
  end_use();
  Shape out = ts;
  for (int64_t d : like.shape()) out.push_back(d);
  if (rows.empty()) return zeros(out, like.dtype());
  return reshape(stack(rows), out);
}

Tensor GradientTape::batch_jacobian(const Tensor& target, const Tensor& source, UnconnectedGradients unconnected) {
  if (target.ndim() < 1 || source.ndim() < 1 || target.shape().dim(0) != source.shape().dim(0))
    fail<InvalidArgument>("batch_jacobian", "target ", target.shape().to_string(), " and source ",
                          source.shape().to_string(), " need the same leading (batch) dimension");
  begin_use();
  const int64_t b = target.shape().dim(0);
  const int64_t per = b ? target.num_elements() / b : 0;
  std::vector<Tensor> cols;
  for (int64_t j = 0; j < per; ++j) {
    // the cotangent is one at column j of every row; rows are independent, so the gradient's
    // row b is d target[b, j] / d source[b]
    Tensor seed =
        reshape(broadcast_to(one_hot(scalar<int64_t>(j), per, 1, 0, -1, target.dtype()), {b, per}), target.shape());
    Tensor g = sweep({target}, {seed}, {Source(source)}, unconnected)[0];
    if (!g.defined()) {
      end_use();
      return Tensor();
    }
    cols.push_back(reshape(g, {b, -1}));
  }
  end_use();
  Shape out{b};
  for (int64_t i = 1; i < target.ndim(); ++i) out.push_back(target.shape().dim(i));
  for (int64_t i = 1; i < source.ndim(); ++i) out.push_back(source.shape().dim(i));
  if (cols.empty()) return zeros(out, source.dtype());
  return reshape(stack(cols, 1), out);
}

Tensor GradientTape::gradient(const Tensor& target, const Source& source, UnconnectedGradients unconnected) {
  return compute({target}, {source}, unconnected)[0];
}

std::vector<Tensor> GradientTape::gradient(const Tensor& target, const std::vector<Source>& sources,
                                           UnconnectedGradients unconnected) {
  return compute({target}, sources, unconnected);
}

std::vector<Tensor> GradientTape::gradient(const std::vector<Tensor>& targets, const std::vector<Source>& sources,
                                           UnconnectedGradients unconnected) {
  return compute(targets, sources, unconnected);
}

std::map<std::string, Tensor> GradientTape::gradient(const Tensor& target, const std::map<std::string, Source>& sources,
                                                     UnconnectedGradients unconnected) {
  std::vector<Source> list;
  for (const auto& [name, s] : sources) list.push_back(s);
  std::vector<Tensor> g = compute({target}, list, unconnected);
  std::map<std::string, Tensor> out;
  size_t i = 0;
  for (const auto& [name, s] : sources) out.emplace(name, g[i++]);
  return out;
}

}  // namespace kiln
