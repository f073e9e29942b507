// Variable state, assignment with copy-on-write, and printing.
#include "ops/variable.h"

#include <cstring>
#include <ostream>

#include "ops/dispatch.h"
#include "runtime/printing.h"

namespace kiln {
namespace {
std::atomic<uint64_t> g_next_variable_id{1};

Tensor copy_of(const Tensor& t, Device device) {
  Tensor c = Tensor::empty(t.shape(), t.dtype(), device);
  copy_into(c, t);
  return c;
}
}  // namespace

VariableImpl::VariableImpl(Tensor value, std::string name, bool trainable)
    : value_(std::move(value)),
      name_(std::move(name)),
      trainable_(trainable),
      dtype_(value_.dtype()),
      shape_(value_.shape()),
      device_(value_.device()),
      id_(g_next_variable_id.fetch_add(1)) {}

Tensor VariableImpl::value() const {
  std::lock_guard lock(mu_);
  return value_;
}

void VariableImpl::write(const Tensor& v) {
  std::lock_guard updates(update_mu_);
  std::lock_guard lock(mu_);
  TensorImpl* cur = value_.impl();
  // In place only when nobody else can observe the old contents: this variable holds the only
  // reference to both the tensor and its storage.
  if (cur->use_count() == 1 && cur->storage && cur->storage->unique() && !v.is_same(value_)) {
    copy_into(value_, v);
  } else {
    value_ = copy_of(v, device_);
  }
}

void VariableImpl::replace(Tensor v) {
  std::lock_guard updates(update_mu_);
  std::lock_guard lock(mu_);
  value_ = std::move(v);
}

Variable::Variable(const Tensor& initial, std::string name, bool trainable) {
  if (!initial.defined()) fail<InvalidArgument>("Variable", "the initial value is undefined (None)");
  if (initial.is_symbolic())
    fail<InvalidArgument>("Variable", "variables are created eagerly; a symbolic initial value came from a trace");
  if (initial.dtype() == DType::String)
    fail<InvalidArgument>("Variable", "variables hold numeric or bool tensors, not dtype string");
  if (name.empty()) name = "Variable";
  impl_ = std::make_shared<VariableImpl>(copy_of(initial, current_device()), std::move(name), trainable);
  if (ops::Level* top = ops::current_level()) top->variable_created(*impl_);
}

Variable::Variable(const Variable& other) {
  if (other.impl_)
    impl_ = std::make_shared<VariableImpl>(copy_of(other.impl_->value(), other.device()), "Variable",
                                           other.impl_->trainable());
}

Variable& Variable::operator=(const Variable& other) {
  if (this != &other) *this = Variable(other);
  return *this;
}

Variable Variable::from_handle(std::shared_ptr<VariableImpl> impl) {
  Variable v;
  v.impl_ = std::move(impl);
  return v;
}

VariableImpl* Variable::impl() const {
  if (!impl_) fail<FailedPrecondition>("Variable", "the variable is undefined");
  return impl_.get();
}

Tensor Variable::read_value() const { return ops::read_variable(*impl()); }

const Variable& Variable::assign(const Tensor& value) const {
  VariableImpl* v = impl();
  if (!value.defined()) fail<InvalidArgument>("assign", "cannot assign an undefined (None) value to ", name());
  if (value.dtype() != v->dtype())
    fail<InvalidArgument>("assign", "cannot assign a value of dtype ", dtype_name(value.dtype()), " to variable ",
                          name(), " of dtype ", dtype_name(v->dtype()));
  if (!(value.shape() == v->shape()))
    fail<InvalidArgument>("assign", "cannot assign to variable ", name(), " due to variable shape ",
                          v->shape().to_string(), " and value shape ", value.shape().to_string(), " are incompatible");
  ops::assign_variable(*v, value);
  return *this;
}

const Variable& Variable::assign(const NestedList& value) const { return assign(constant(value, dtype())); }

// The read, the sum and the write happen under the variable's update lock, so that concurrent
// updates are never lost. The sum is computed before assigning so the read's reference is gone
// and the write can reuse the variable's buffer.
const Variable& Variable::assign_add(const Tensor& delta) const {
  auto lock = impl()->lock_updates();
  Tensor sum = add(read_value(), delta);
  return assign(sum);
}
const Variable& Variable::assign_add(const NestedList& delta) const { return assign_add(constant(delta, dtype())); }
const Variable& Variable::assign_sub(const Tensor& delta) const {
  auto lock = impl()->lock_updates();
  Tensor diff = subtract(read_value(), delta);
  return assign(diff);
}
const Variable& Variable::assign_sub(const NestedList& delta) const { return assign_sub(constant(delta, dtype())); }

std::string Variable::name() const { return impl()->name() + ":0"; }

std::string Variable::to_string() const {
  if (!impl_) return "None";
  // as TensorFlow: a multi-line value starts on its own line
  std::string value = numpy_repr(impl_->value());
  if (value.find('\n') != std::string::npos) value.insert(0, "\n");
  return "<kiln.Variable '" + name() + "' shape=" + shape().to_string() + " dtype=" + std::string(dtype_name(dtype())) +
         ", numpy=" + value + ">";
}

std::ostream& operator<<(std::ostream& os, const Variable& v) { return os << v.to_string(); }

}  // namespace kiln
