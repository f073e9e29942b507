// ops::apply and the thread-local level stack. The eager fast path touches no lock and no heap
// beyond the output tensor.
#include "ops/dispatch.h"

#include <array>
#include <atomic>

#include "ops/variable.h"
#include "runtime/logging.h"
#include "runtime/string_tensor.h"

namespace kiln::ops {
namespace {
thread_local Level* t_top = nullptr;
std::atomic<uint64_t> g_next_level_id{1};

[[noreturn]] void bad_input(const OpDef& def, size_t i, const char* why) {
  fail<InvalidArgument>(def.name, "input ", i, " ", why);
}

[[noreturn]] void string_input(const OpDef& def, size_t i) {
  if (def.id == OpId::Cast)
    fail<InvalidArgument>(def.name,
                          "cannot cast a string tensor to a number; parse the text with "
                          "kiln::strings::to_number");
  fail<InvalidArgument>(def.name, "input ", i, " has dtype string, which ", def.name,
                        " does not accept (string tensors work with the kiln::strings ops)");
}

// A kStringsByIndex op on string inputs: each string input becomes an int64 tensor of element ids
// (numbered across all inputs), the numeric kernel moves the ids, and every string output takes
// the strings its ids name.
TensorList execute_strings_by_index(const OpDef& def, const Attrs& attrs, std::span<const Tensor> inputs,
                                    const TypeList& types) {
  std::vector<std::string_view> pool;
  TensorList ids(inputs.begin(), inputs.end());
  for (size_t i = 0; i < inputs.size(); ++i) {
    if (inputs[i].dtype() != DType::String) continue;
    Tensor t = Tensor::empty(inputs[i].shape(), DType::Int64);
    auto* p = static_cast<int64_t*>(t.mutable_raw_data());
    for (int64_t k = 0; k < inputs[i].num_elements(); ++k) {
      p[k] = static_cast<int64_t>(pool.size());
      pool.push_back(string_at(inputs[i], k));
    }
    ids[i] = std::move(t);
  }
  TypeList id_types = types;
  for (TensorType& t : id_types)
    if (t.dtype == DType::String) t.dtype = DType::Int64;
  TensorList out = execute_eager(def, attrs, ids, id_types);
  for (size_t j = 0; j < out.size(); ++j) {
    if (types[j].dtype != DType::String) continue;
    const auto* p = static_cast<const int64_t*>(out[j].raw_data());
    std::vector<std::string_view> picked(static_cast<size_t>(out[j].num_elements()));
    for (size_t k = 0; k < picked.size(); ++k) picked[k] = pool[static_cast<size_t>(p[k])];
    out[j] = make_string_tensor(out[j].shape(), picked);
  }
  return out;
}
}  // namespace

Level::Level() : id_(g_next_level_id.fetch_add(1, std::memory_order_relaxed)) {}
Level::~Level() = default;

Tensor Level::read_variable(VariableImpl& var) { return read_variable_below(var); }

TensorList Level::process_below(const OpDef& def, const Attrs& attrs, std::span<const Tensor> inputs,
                                const TypeList& types) {
  return below_ ? below_->process(def, attrs, inputs, types) : execute_eager(def, attrs, inputs, types);
}

Tensor Level::read_variable_below(VariableImpl& var) { return below_ ? below_->read_variable(var) : var.value(); }

void Level::assign_variable(VariableImpl& var, const Tensor& value) { assign_variable_below(var, value); }

void Level::assign_variable_below(VariableImpl& var, const Tensor& value) {
  if (below_)
    below_->assign_variable(var, value);
  else
    var.write(value);
}

void Level::variable_created(VariableImpl& var) {
  if (below_) below_->variable_created(var);
}

EagerScope::EagerScope() : saved_(t_top) { t_top = nullptr; }
EagerScope::~EagerScope() { t_top = saved_; }

bool tracing() {
  for (Level* l = t_top; l; l = l->below())
    if (l->is_trace()) return true;
  return false;
}

bool recording_gradients() {
  for (Level* l = t_top; l; l = l->below())
    if (l->records_gradients()) return true;
  return false;
}

LevelScope::LevelScope(Level& level) : level_(level) {
  if (level.active_) fail<FailedPrecondition>("level", "a level cannot be entered twice");
  level.below_ = t_top;
  level.active_ = true;
  t_top = &level;
}

LevelScope::~LevelScope() {
  t_top = level_.below_;
  level_.below_ = nullptr;
  level_.active_ = false;
}

Level* current_level() { return t_top; }

bool level_active(uint64_t id) {
  for (Level* l = t_top; l; l = l->below())
    if (l->id() == id) return true;
  return false;
}

TensorList apply(OpId id, const Attrs& attrs, std::span<const Tensor> inputs) {
  const OpDef& def = op_def(id);
  if (def.num_inputs >= 0 && static_cast<size_t>(def.num_inputs) != inputs.size())
    fail<InvalidArgument>(def.name, "expects ", def.num_inputs, " inputs, got ", inputs.size());
  for (size_t i = 0; i < inputs.size(); ++i) {
    TensorImpl* t = inputs[i].impl_ref().get();
    if (!t) bad_input(def, i, "is undefined (None)");
    if (!t->storage && t->level_id != 0 && !level_active(t->level_id))
      bad_input(def, i, "is a symbolic tensor leaked from a trace that has ended");
    if (t->dtype == DType::String && !(def.traits & (kStrings | kStringsByIndex))) string_input(def, i);
  }
  // attributes against the op's schema (ops::apply is public: a wrong attribute is user input)
  for (const AttrSpec& spec : def.attrs) {
    const AttrValue* v = attrs.find_value(spec.name);
    if (!v) {
      if (spec.required) fail<InvalidArgument>(def.name, "missing attribute '", spec.name, "'");
    } else if (v->index() != static_cast<size_t>(spec.kind)) {
      fail<InvalidArgument>(def.name, "attribute '", spec.name, "' has the wrong kind");
    }
  }
  TypeList types = def.infer(def, attrs, inputs);
  if (!(def.traits & (kStrings | kStringsByIndex)))
    for (const TensorType& t : types)
      if (t.dtype == DType::String) fail<InvalidArgument>(def.name, def.name, " cannot produce string tensors");
  // every op's outputs must be allocatable; checked here once so errors name the op
  for (const TensorType& t : types)
    if (t.shape.is_fully_defined()) checked_nbytes(def.name, t.shape, t.dtype);
  if (Level* top = t_top) return top->process(def, attrs, inputs, types);
  return execute_eager(def, attrs, inputs, types);
}

Tensor apply1(OpId id, const Attrs& attrs, std::span<const Tensor> inputs) {
  TensorList out = apply(id, attrs, inputs);
  return std::move(out[0]);
}

namespace {

// The device an op runs on (DESIGN.md §2): the innermost device scope's if one is open, else
// its first GPU input's, else the CPU.
Device op_device(std::span<const Tensor> inputs) {
  if (in_device_scope()) return current_device();
  for (const Tensor& t : inputs)
    if (t.defined() && t.device().type == DeviceType::GPU) return t.device();
  return kCPU;
}

// Runs an op on a GPU: inputs elsewhere are copied there first. An op without a GPU kernel
// runs its CPU kernel on host copies and its outputs are copied back, logged once per op.
TensorList execute_gpu(const OpDef& def, const Attrs& attrs, std::span<const Tensor> inputs, const TypeList& types,
                       Device dev) {
  bool strings = false;
  for (const Tensor& t : inputs) strings = strings || (t.defined() && t.dtype() == DType::String);
  for (const TensorType& t : types) strings = strings || t.dtype == DType::String;
  static std::array<std::atomic<bool>, kNumOps> logged{};
  if (def.cuda_kernel && !strings) {
    TensorList moved;
    for (const Tensor& t : inputs) moved.push_back(t.defined() && t.device() != dev ? t.to(dev) : t);
    TensorList outputs(types.size());
    KernelContext ctx{def, attrs, moved, types, outputs};
    try {
      def.cuda_kernel(ctx);
      return outputs;
    } catch (const Unimplemented& e) {  // thrown before any launch: a dtype or layout it lacks
      if (!logged[size_t(def.id)].exchange(true))
        logging::info("[device] {}; it runs on CPU:0 and its outputs are copied to {}", e.what(), dev.to_string());
    }
  } else if (!logged[size_t(def.id)].exchange(true)) {
    logging::info("[device] {} has no GPU kernel: it runs on CPU:0 and its outputs are copied to {}", def.name,
                  dev.to_string());
  }
  TensorList host;
  for (const Tensor& t : inputs) host.push_back(t.defined() ? t.to(kCPU) : t);
  TensorList outputs;
  {
    DeviceScope cpu(kCPU);  // outputs the kernel allocates itself belong on the host
    outputs = execute_eager(def, attrs, host, types);
  }
  for (Tensor& t : outputs)
    if (t.defined() && t.dtype() != DType::String) t = t.to(dev);
  return outputs;
}

}  // namespace

TensorList execute_eager(const OpDef& def, const Attrs& attrs, std::span<const Tensor> inputs, const TypeList& types) {
  if (const Device dev = op_device(inputs); dev.type == DeviceType::GPU)
    return execute_gpu(def, attrs, inputs, types, dev);
  for (const Tensor& t : inputs)
    if (t.defined() && t.device().type != DeviceType::CPU) {  // a CPU scope over GPU inputs
      TensorList host;
      for (const Tensor& u : inputs) host.push_back(u.defined() ? u.to(kCPU) : u);
      return execute_eager(def, attrs, host, types);
    }
  TensorList outputs(types.size());
  if (def.has(kStringsByIndex))
    for (const Tensor& t : inputs)
      if (t.dtype() == DType::String) return execute_strings_by_index(def, attrs, inputs, types);
  KernelContext ctx{def, attrs, inputs, types, outputs};
  try {
    def.cpu_kernel(ctx);
  } catch (const ResourceExhausted& e) {
    // the allocator does not know which op asked; say it here
    std::string_view what = e.what();
    throw ResourceExhausted(def.name, what.substr(std::min(what.size(), e.component().size() + 3)));
  }
  return outputs;
}

Tensor read_variable(VariableImpl& var) {
  if (Level* top = t_top) return top->read_variable(var);
  return var.value();
}

}  // namespace kiln::ops

namespace kiln::ops {
void assign_variable(VariableImpl& var, const Tensor& value) {
  if (Level* top = t_top)
    top->assign_variable(var, value);
  else
    var.write(value);
}
}  // namespace kiln::ops
