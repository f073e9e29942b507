// Optimizer updates written with ops on variables (they trace into the training step's graph),
// and learning-rate schedules.
#include "nn/optimizers.h"

#include <algorithm>
#include <cmath>

#include "nn/layer.h"
#include "ops/dispatch.h"

namespace kiln::nn::optim {
namespace {

Tensor c(const Tensor& like, double v) { return scalar_of(std::complex<double>(v), like.dtype(), "optimizer"); }
Tensor f32(double v) { return scalar<float>(static_cast<float>(v)); }

}  // namespace

ExponentialDecay::ExponentialDecay(double initial_learning_rate, int64_t decay_steps, double decay_rate, bool staircase)
    : initial_(initial_learning_rate), rate_(decay_rate), steps_(decay_steps), staircase_(staircase) {
  if (decay_steps <= 0) fail<InvalidArgument>("ExponentialDecay", "decay_steps must be positive, got ", decay_steps);
}

Tensor ExponentialDecay::operator()(const Tensor& step) const {
  Tensor p = cast(step, float32) / f32(double(steps_));
  if (staircase_) p = floor(p);
  return f32(initial_) * pow(f32(rate_), p);
}

PiecewiseConstantDecay::PiecewiseConstantDecay(std::vector<int64_t> boundaries, std::vector<double> values)
    : boundaries_(std::move(boundaries)), values_(std::move(values)) {
  if (values_.size() != boundaries_.size() + 1)
    fail<InvalidArgument>("PiecewiseConstantDecay", "needs one more value than boundaries, got ", values_.size(),
                          " values for ", boundaries_.size(), " boundaries");
  for (size_t i = 1; i < boundaries_.size(); ++i)
    if (boundaries_[i] <= boundaries_[i - 1])
      fail<InvalidArgument>("PiecewiseConstantDecay", "boundaries must increase, got ", boundaries_[i - 1], " then ",
                            boundaries_[i]);
}

Tensor PiecewiseConstantDecay::operator()(const Tensor& step) const {
  Tensor s = cast(step, int64);
  Tensor lr = f32(values_.back());
  for (size_t i = boundaries_.size(); i-- > 0;)
    lr = where(less_equal(s, scalar<int64_t>(boundaries_[i])), f32(values_[i]), lr);
  return lr;
}

VariableList::VariableList(std::initializer_list<std::reference_wrapper<const Variable>> vars) {
  for (const Variable& v : vars) vars_.push_back(Variable::from_handle(v.handle()));
}

VariableList::VariableList(const std::vector<Variable>& vars) {
  for (const Variable& v : vars) vars_.push_back(Variable::from_handle(v.handle()));
}

Optimizer::Optimizer(std::string name, LearningRate lr) : name_(std::move(name)), schedule_(lr.schedule) {
  if (!schedule_ && !(lr.value >= 0))
    fail<InvalidArgument>(name_, "the learning rate must be a non-negative number, got ", lr.value);
  ops::EagerScope eager;
  lr_ = Variable(scalar<float>(float(lr.value)), name_ + "/learning_rate", false);
  iterations_ = Variable(scalar<int64_t>(0), name_ + "/iterations", false);
}

Tensor Optimizer::learning_rate() const {
  return schedule_ ? (*schedule_)(iterations_.read_value()) : lr_.read_value();
}

void Optimizer::set_learning_rate(double lr) {
  if (schedule_) fail<InvalidArgument>(name_, "this optimizer's learning rate follows a schedule; it cannot be set");
  if (!(lr >= 0)) fail<InvalidArgument>(name_, "the learning rate must be a non-negative number, got ", lr);
  lr_.assign(scalar<float>(float(lr)));
}

const Variable& Optimizer::slot(const Variable& var, const std::string& name) {
  auto key = std::make_pair(static_cast<const VariableImpl*>(var.impl()), name);
  auto it = slots_.find(key);
  if (it == slots_.end()) {
    Variable v;
    {
      ops::EagerScope eager;
      auto d = deferred_slots_.find(key);
      Tensor initial = d != deferred_slots_.end() ? d->second : zeros(var.shape(), var.dtype());
      v = Variable(initial, name_ + "/" + name + "/" + var.impl()->name(), false);
      if (d != deferred_slots_.end()) deferred_slots_.erase(d);
    }
    slot_owners_.push_back(var.handle());
    it = slots_.emplace(key, std::make_pair(name + "/" + var.impl()->name(), std::move(v))).first;
  }
  return it->second.second;
}

std::vector<Optimizer::SlotVariable> Optimizer::slot_variables() const {
  std::vector<SlotVariable> out;
  for (auto& [key, named] : slots_) {
    std::shared_ptr<VariableImpl> owner;
    for (auto& o : slot_owners_)
      if (o.get() == key.first) owner = o;
    out.push_back({owner, key.second, Variable::from_handle(named.second.handle())});
  }
  std::sort(out.begin(), out.end(), [](const SlotVariable& a, const SlotVariable& b) {
    return a.slot != b.slot ? a.slot < b.slot : a.owner->name() < b.owner->name();
  });
  return out;
}

void Optimizer::restore_slot(const Variable& var, const std::string& name, const Tensor& value) {
  if (value.dtype() != var.dtype() || value.shape() != var.shape())
    fail<InvalidArgument>(name_, "cannot restore slot '", name, "' of variable '", var.impl()->name(), "' (",
                          dtype_name(var.dtype()), " ", var.shape().to_string(), ") from a ", dtype_name(value.dtype()),
                          " ", value.shape().to_string(), " value");
  auto key = std::make_pair(static_cast<const VariableImpl*>(var.impl()), name);
  auto it = slots_.find(key);
  if (it != slots_.end()) {
    it->second.second.assign(value);
    return;
  }
  deferred_slots_[key] = value;
  slot_owners_.push_back(var.handle());  // keeps the key's address from being reused
}

void Optimizer::build(const VariableList& vars) {
  for (auto& v : vars.vars())
    for (auto& s : slot_names()) slot(v, s);
}

void Optimizer::apply_gradients(const std::vector<Tensor>& grads, const VariableList& vars) {
  if (grads.size() != vars.size())
    fail<InvalidArgument>(name_, "apply_gradients got ", grads.size(), " gradients for ", vars.size(), " variables");
  for (size_t i = 0; i < vars.size(); ++i) {
    if (!grads[i].defined()) continue;
    if (!vars[i].defined()) fail<InvalidArgument>(name_, "variable ", i, " is undefined");
    if (grads[i].dtype() != vars[i].dtype() || grads[i].shape() != vars[i].shape())
      fail<InvalidArgument>(name_, "the gradient for '", vars[i].name(), "' has dtype ", dtype_name(grads[i].dtype()),
                            " and shape ", shape_string(grads[i].shape()), ", the variable ",
                            dtype_name(vars[i].dtype()), " and ", shape_string(vars[i].shape()));
  }
  build(vars);
  Tensor lr = learning_rate();
  Tensor step = cast(iterations_.read_value(), float32) + f32(1);
  for (size_t i = 0; i < vars.size(); ++i) {
    if (!grads[i].defined()) continue;
    DType d = vars[i].dtype();
    update(vars[i], grads[i], d == float32 ? lr : cast(lr, d), d == float32 ? step : cast(step, d));
  }
  iterations_.assign_add(scalar<int64_t>(1));
}

std::vector<std::pair<std::string, Variable>> Optimizer::variables() const {
  std::vector<std::pair<std::string, Variable>> out;
  out.emplace_back("iterations", Variable::from_handle(iterations_.handle()));
  out.emplace_back("learning_rate", Variable::from_handle(lr_.handle()));
  for (auto& [key, named] : slots_) out.emplace_back(named.first, Variable::from_handle(named.second.handle()));
  return out;
}

SGD::SGD(LearningRate lr, SGDOptions options) : Optimizer("SGD", std::move(lr)), options_(options) {
  if (!(options.momentum >= 0 && options.momentum <= 1))
    fail<InvalidArgument>("SGD", "momentum must be in [0, 1], got ", options.momentum);
}

std::vector<std::string> SGD::slot_names() const {
  return options_.momentum > 0 ? std::vector<std::string>{"momentum"} : std::vector<std::string>{};
}

void SGD::update(const Variable& var, const Tensor& g, const Tensor& lr, const Tensor& step) {
  if (options_.momentum == 0) {
    var.assign_sub(g * lr);
    return;
  }
  const Variable& m = slot(var, "momentum");
  Tensor mom = c(g, options_.momentum);
  Tensor v = m.read_value() * mom - g * lr;
  m.assign(v);
  if (options_.nesterov)
    var.assign_add(v * mom - g * lr);
  else
    var.assign_add(v);
}

Adam::Adam(LearningRate lr, AdamOptions options) : Adam("Adam", std::move(lr), options) {}

Adam::Adam(std::string name, LearningRate lr, AdamOptions options) : Optimizer(std::move(name), std::move(lr)), options_(options) {
  if (!(options.beta_1 >= 0 && options.beta_1 < 1 && options.beta_2 >= 0 && options.beta_2 < 1))
    fail<InvalidArgument>(this->name(), "beta_1 and beta_2 must be in [0, 1), got ", options.beta_1, " and ",
                          options.beta_2);
}

std::vector<std::string> Adam::slot_names() const {
  if (options_.amsgrad) return {"m", "v", "vhat"};
  return {"m", "v"};
}

void Adam::update(const Variable& var, const Tensor& g, const Tensor& lr, const Tensor& step) {
  const Variable& m = slot(var, "m");
  const Variable& v = slot(var, "v");
  Tensor b1 = c(g, options_.beta_1), b2 = c(g, options_.beta_2), one = c(g, 1);
  Tensor alpha = lr * sqrt(one - pow(b2, step)) / (one - pow(b1, step));
  Tensor m_new = m.read_value() + (g - m.read_value()) * (one - b1);
  Tensor v_new = v.read_value() + (square(g) - v.read_value()) * (one - b2);
  m.assign(m_new);
  v.assign(v_new);
  if (options_.amsgrad) {
    const Variable& vhat = slot(var, "vhat");
    v_new = maximum(vhat.read_value(), v_new);
    vhat.assign(v_new);
  }
  var.assign_sub(m_new * alpha / (sqrt(v_new) + c(g, options_.epsilon)));
}

AdamW::AdamW(LearningRate lr, double weight_decay, AdamOptions options)
    : Adam("AdamW", std::move(lr), options), weight_decay_(weight_decay) {
  if (!(weight_decay >= 0)) fail<InvalidArgument>("AdamW", "weight_decay must be non-negative, got ", weight_decay);
}

void AdamW::update(const Variable& var, const Tensor& g, const Tensor& lr, const Tensor& step) {
  var.assign_sub(var.read_value() * c(g, weight_decay_) * lr);
  Adam::update(var, g, lr, step);
}

RMSprop::RMSprop(LearningRate lr, RMSpropOptions options) : Optimizer("RMSprop", std::move(lr)), options_(options) {
  if (!(options.rho >= 0 && options.rho <= 1)) fail<InvalidArgument>("RMSprop", "rho must be in [0, 1], got ", options.rho);
  if (!(options.momentum >= 0)) fail<InvalidArgument>("RMSprop", "momentum must be non-negative, got ", options.momentum);
}

std::vector<std::string> RMSprop::slot_names() const {
  std::vector<std::string> s{"velocity"};
  if (options_.momentum > 0) s.push_back("momentum");
  if (options_.centered) s.push_back("average_gradient");
  return s;
}

void RMSprop::update(const Variable& var, const Tensor& g, const Tensor& lr, const Tensor& step) {
  const Variable& vel = slot(var, "velocity");
  Tensor rho = c(g, options_.rho), one = c(g, 1);
  Tensor v = rho * vel.read_value() + (one - rho) * square(g);
  vel.assign(v);
  Tensor denom = v;
  if (options_.centered) {
    const Variable& ag = slot(var, "average_gradient");
    Tensor a = rho * ag.read_value() + (one - rho) * g;
    ag.assign(a);
    denom = v - square(a);
  }
  Tensor increment = lr * g * rsqrt(denom + c(g, options_.epsilon));
  if (options_.momentum > 0) {
    const Variable& mom = slot(var, "momentum");
    Tensor m = c(g, options_.momentum) * mom.read_value() + increment;
    mom.assign(m);
    var.assign_sub(m);
  } else {
    var.assign_sub(increment);
  }
}

}  // namespace kiln::nn::optim
