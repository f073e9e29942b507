// The type-independent half of `function`: the signature cache (lock-free for readers in the
// sense that readers share a lock and never allocate), tracing with retrace logging, compiling
// through the pass pipeline, concrete-function calls (direct, inlined, or one `call` op under a
// tape) and graph replay.
#include "compiler/trace/function.h"

#include <atomic>
#include <condition_variable>
#include <cstdlib>
#include <mutex>
#include <shared_mutex>
#include <thread>
#include <unordered_map>

#include "compiler/ir/verifier.h"
#include "compiler/passes/pass.h"
#include "compiler/trace/control_flow.h"
#include "compiler/trace/tracer.h"
#include "runtime/logging.h"

namespace kiln {

namespace config {
namespace {
std::atomic<bool> g_eager{false};
}  // namespace
std::atomic<bool> g_timing{[] {
  const char* env = std::getenv("KILN_TIME_FUNCTIONS");
  return env && std::string_view(env) == "1";
}()};
void run_functions_eagerly(bool eager) { g_eager.store(eager, std::memory_order_relaxed); }
void time_functions(bool on) { g_timing.store(on, std::memory_order_relaxed); }
bool functions_run_eagerly() { return g_eager.load(std::memory_order_relaxed); }
}  // namespace config

std::string TensorSpec::to_string() const {
  return std::string(dtype_name(dtype)) + " Tensor, shape=" + shape.to_string();
}

bool TensorSpec::is_compatible_with(const Tensor& t) const {
  if (t.dtype() != dtype || t.ndim() != shape.rank()) return false;
  for (int64_t i = 0; i < shape.rank(); ++i) {
    int64_t d = shape.dim(size_t(i));
    if (d >= 0 && d != t.shape().dim(size_t(i))) return false;
  }
  return true;
}

namespace trace {

Tensor spec_placeholder(const TensorSpec& spec) {
  auto impl = make_ref<TensorImpl>();
  impl->dtype = spec.dtype;
  impl->shape = spec.shape;
  impl->numel = spec.shape.is_fully_defined() ? spec.shape.num_elements() : kUnknownDim;
  return Tensor(std::move(impl));
}

namespace {

double micros_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0).count();
}

uint64_t hash_words(std::span<const uint64_t> w) {
  uint64_t h = 0x9e3779b97f4a7c15ull ^ w.size();
  for (uint64_t x : w) {
    h ^= x + 0x9e3779b97f4a7c15ull + (h << 6) + (h >> 2);
    h *= 0xff51afd7ed558ccdull;
  }
  return h;
}

bool same_words(const std::vector<uint64_t>& a, std::span<const uint64_t> b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin());
}

// The symbols of a spec's unknown dims: named dims share one symbol per name.
ir::TensorType type_of_spec(const TensorSpec& s, ir::Graph& g) {
  ir::TensorType t{s.dtype, s.shape};
  for (int64_t i = 0; i < s.shape.rank(); ++i) {
    if (s.shape.dim(size_t(i)) >= 0) continue;
    bool named = size_t(i) < s.dim_names.size() && !s.dim_names[size_t(i)].empty();
    t.shape.mut(size_t(i)) = named ? g.symbol(s.dim_names[size_t(i)]) : g.new_symbol();
  }
  return t;
}

std::string top_name(const std::string& path) { return path.substr(0, path.find('[')); }

// The TraceArgs of one trace: placeholders from the chosen specs, and the printed signature.
class Session final : public TraceArgs {
 public:
  Session(Tracer& tr, ConcreteState& cs, const std::vector<TensorSpec>* specs) : tr_(tr), cs_(cs), specs_(specs) {}

  Tensor tensor(const Tensor& example, const std::string& path) override {
    TensorSpec spec = specs_ && leaf_ < specs_->size() ? (*specs_)[leaf_] : TensorSpec::from_tensor(example);
    ++leaf_;
    spec.name = path;
    cs_.input_specs.push_back(spec);
    cs_.arg_lines.push_back(path + ": " + spec.to_string());
    note(path, path, spec.to_string());
    return tr_.add_parameter(type_of_spec(spec, tr_.graph()), path);
  }

  void static_value(const std::string& path, std::string repr) override {
    note(path, path == top_name(path) ? path + "=" + repr : top_name(path), repr);
  }

  std::vector<std::string> header_items, descs;

 private:
  void note(const std::string& path, const std::string& header_item, const std::string& desc) {
    std::string top = top_name(path);
    if (tops_.empty() || tops_.back() != top) {
      tops_.push_back(top);
      header_items.push_back(header_item);
      descs.emplace_back();
    }
    descs.back() += (descs.back().empty() ? "" : "; ") + (path == top ? desc : path + ": " + desc);
  }

  Tracer& tr_;
  ConcreteState& cs_;
  const std::vector<TensorSpec>* specs_;
  size_t leaf_ = 0;
  std::vector<std::string> tops_;
};

}  // namespace

// ---------------------------------------------------------------------------------------------
// ConcreteState

void ConcreteState::check_leaves(std::span<const Tensor> leaves, std::string_view component) const {
  std::string who = component.empty() ? fn_name : std::string(component);
  std::string fn = component.empty() ? "" : "function '" + fn_name + "': ";
  if (leaves.size() != input_specs.size())
    fail<InvalidArgument>(who, fn, "expected ", input_specs.size(), " tensor arguments, got ", leaves.size());
  // named dims must agree across arguments
  std::vector<std::pair<std::string_view, int64_t>> bound;
  for (size_t i = 0; i < leaves.size(); ++i) {
    const TensorSpec& s = input_specs[i];
    const Tensor& t = leaves[i];
    if (!t.defined()) fail<InvalidArgument>(who, fn, "argument '", s.name, "' is undefined (None)");
    if (!s.is_compatible_with(t))
      fail<InvalidArgument>(who, fn, "argument '", s.name, "' must be ", s.to_string(), "; got ",
                            TensorSpec::from_tensor(t).to_string());
    for (size_t d = 0; d < s.dim_names.size() && d < size_t(t.ndim()); ++d) {
      if (s.dim_names[d].empty()) continue;
      int64_t size = t.shape().dim(d);
      auto it = std::find_if(bound.begin(), bound.end(), [&](auto& b) { return b.first == s.dim_names[d]; });
      if (it == bound.end())
        bound.emplace_back(s.dim_names[d], size);
      else if (it->second != size)
        fail<InvalidArgument>(who, fn, "dim '", s.dim_names[d], "' is ", it->second, " in one argument and ", size,
                              " in argument '", s.name, "'");
    }
  }
}

ops::TypeList ConcreteState::output_types_for(std::span<const Tensor> inputs) const {
  size_t nvars = optimized->variables.size();
  if (inputs.size() != input_specs.size() + nvars)
    fail<InvalidArgument>("call", "function '", fn_name, "' takes ", input_specs.size() + nvars, " inputs, got ",
                          inputs.size());
  check_leaves(inputs.first(input_specs.size()), "call");
  ops::TypeList t;
  for (const auto& o : out_types) {
    ops::TensorType u = o;
    for (int64_t i = 0; i < u.shape.rank(); ++i)
      if (u.shape.dim(size_t(i)) < 0) u.shape.mut(size_t(i)) = kUnknownDim;
    t.push_back(u);
  }
  return t;
}

ops::TensorList ConcreteState::run(std::span<const Tensor> inputs) const {
  return exec->run(inputs.first(input_specs.size()));
}

ops::TensorList ConcreteState::timed_run(std::span<const Tensor> leaves) const {
  calls.fetch_add(1, std::memory_order_relaxed);
  if (!config::g_timing.load(std::memory_order_relaxed)) return exec->run(leaves);
  auto t0 = std::chrono::steady_clock::now();
  ops::TensorList out = exec->run(leaves);
  run_ns.fetch_add(
      uint64_t(std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() - t0).count()),
      std::memory_order_relaxed);
  return out;
}

ops::TensorList ConcreteState::call(std::span<const Tensor> leaves) const {
  if (relaxed) check_leaves(leaves);
  if (!ops::current_level()) return timed_run(leaves);
  if (ops::tracing()) return replay(*optimized, leaves);
  if (!ops::recording_gradients()) return timed_run(leaves);
  // one `call` op for the tape; the variables' values join the inputs so their reads are seen
  SmallVector<Tensor, 8> ins(leaves.begin(), leaves.end());
  for (const auto& slot : optimized->variables) {
    std::shared_ptr<VariableImpl> v = slot.var.lock();
    if (!v)
      fail<FailedPrecondition>(fn_name, "variable '", slot.name,
                               "' captured by this function no longer exists (it was destroyed after tracing)");
    ins.push_back(ops::read_variable(*v));
  }
  ops::Attrs attrs{{"function", ops::ObjectRef(const_cast<ConcreteState*>(this))}};
  return ops::apply(ops::OpId::Call, attrs, {ins.data(), ins.size()});
}

void compile_concrete(ConcreteState& cs, std::unique_ptr<ir::Graph> graph) {
  cs.stats.nodes_traced = graph->nodes.size();
  // the pipeline verifies after each pass that changes the graph; this catches tracer bugs
  try {
    ir::verify(*graph);
  } catch (const InvalidArgument& e) {
    fail<Internal>("tracer", "the traced graph of '", cs.fn_name, "' is malformed: ", e.what());
  }
  cs.traced = std::shared_ptr<const ir::Graph>(graph->clone());
  auto t0 = std::chrono::steady_clock::now();
  ir::PassContext ctx;
  ctx.function_name = cs.fn_name;
  ir::default_pipeline().run(*graph, ctx);
  cs.stats.passes_us = micros_since(t0);
  cs.stats.nodes_optimized = graph->nodes.size();
  t0 = std::chrono::steady_clock::now();
  cs.optimized = std::shared_ptr<const ir::Graph>(std::move(graph));
  cs.exec = backend::make_executable(cs.optimized, *cs.optimized, cs.backend_kind);
  cs.stats.compile_us = micros_since(t0);
  cs.stats.backend = cs.exec->backend();
  cs.stats.codegen = cs.exec->stats();
  logging::debug("[function {}] traced {} nodes in {:.0f} us; passes {:.0f} us -> {} nodes; {} backend {:.0f} us",
                 cs.fn_name, cs.stats.nodes_traced, cs.stats.trace_us, cs.stats.passes_us, cs.stats.nodes_optimized,
                 cs.exec->backend(), cs.stats.compile_us);
}

Ref<ConcreteState> trace_concrete(std::string name, const std::vector<TensorSpec>& params,
                                  const std::function<std::vector<Tensor>(std::span<const Tensor>)>& body,
                                  backend::BackendKind backend) {
  auto cs = make_ref<ConcreteState>();
  cs->fn_name = name;
  cs->backend_kind = backend;
  auto g = std::make_unique<ir::Graph>(name);
  Tracer tr(*g, name);
  auto t0 = std::chrono::steady_clock::now();
  std::vector<Tensor> outs;
  {
    ops::LevelScope scope(tr);
    std::vector<Tensor> ps;
    for (size_t i = 0; i < params.size(); ++i) {
      TensorSpec s = params[i];
      if (s.name.empty()) s.name = "arg" + std::to_string(i);
      cs->input_specs.push_back(s);
      cs->relaxed |= !s.shape.is_fully_defined();
      ps.push_back(tr.add_parameter(type_of_spec(s, *g), s.name));
    }
    outs = body(ps);
  }
  tr.finish(outs);
  for (ir::Value* o : g->outputs) cs->out_types.push_back(o->type);
  cs->stats.trace_us = micros_since(t0);
  compile_concrete(*cs, std::move(g));
  return cs;
}

// ---------------------------------------------------------------------------------------------
// FunctionCore: the cache

struct FunctionCore::Impl {
  struct Entry {
    std::vector<uint64_t> key, structure;
    Ref<ConcreteState> cs;  // null while pending
    std::thread::id owner;
    bool primary = true;  // false: an alias key of a relaxed entry
  };
  mutable std::shared_mutex mu;
  std::condition_variable_any cv;
  std::unordered_multimap<uint64_t, std::shared_ptr<Entry>> by_key;
  std::vector<std::shared_ptr<Entry>> order;  // primary entries, oldest first
  std::atomic<size_t> traces_started{0};
  size_t traces = 0;
  size_t next_warning = 5;
  std::source_location loc;

  std::shared_ptr<Entry> find(std::span<const uint64_t> key) const {
    auto [a, b] = by_key.equal_range(hash_words(key));
    for (auto it = a; it != b; ++it)
      if (same_words(it->second->key, key)) return it->second;
    return nullptr;
  }
  void erase(const std::shared_ptr<Entry>& e) {
    auto [a, b] = by_key.equal_range(hash_words(e->key));
    for (auto it = a; it != b; ++it)
      if (it->second == e) {
        by_key.erase(it);
        return;
      }
  }
};

FunctionCore::FunctionCore(FunctionOptions opts, std::source_location loc)
    : opts_(std::move(opts)), impl_(std::make_unique<Impl>()) {
  impl_->loc = loc;
}
FunctionCore::~FunctionCore() = default;

std::string FunctionCore::arg_name(size_t i) const {
  return i < opts_.arg_names.size() ? opts_.arg_names[i] : "arg" + std::to_string(i);
}

Ref<ConcreteState> FunctionCore::lookup(const KeyBuilder& key) const {
  std::shared_lock lock(impl_->mu);
  auto [a, b] = impl_->by_key.equal_range(hash_words(key.full()));
  for (auto it = a; it != b; ++it)
    if (it->second->cs && same_words(it->second->key, key.full())) return it->second->cs;
  return {};
}

size_t FunctionCore::tracing_count() const {
  std::shared_lock lock(impl_->mu);
  return impl_->traces;
}

std::vector<Ref<ConcreteState>> FunctionCore::concrete_functions() const {
  std::shared_lock lock(impl_->mu);
  std::vector<Ref<ConcreteState>> r;
  for (auto& e : impl_->order) r.push_back(e->cs);
  return r;
}

std::string FunctionCore::pretty_printed_concrete_signatures() const {
  std::string s;
  for (auto& cs : concrete_functions()) {
    if (!s.empty()) s += "\n\n";
    s += ConcreteFunction(cs).pretty_printed_signature();
  }
  return s;
}

Ref<ConcreteState> FunctionCore::get(const KeyBuilder& key, std::span<const Tensor> leaves, const TraceBody& body) {
  Impl& m = *impl_;
  std::unique_lock lock(m.mu);
  for (;;) {
    auto e = m.find(key.full());
    if (!e) break;
    if (e->cs) return e->cs;
    if (e->owner == std::this_thread::get_id())
      fail<FailedPrecondition>(opts_.name,
                               "the function called itself with the same signature while tracing it; "
                               "recursion in traced functions needs kiln::while_loop");
    m.cv.wait(lock);  // another thread traces this signature: wait for it
  }
  // a relaxed concrete function may fit these arguments
  for (auto& e : m.order) {
    if (!e->cs->relaxed || !same_words(e->structure, key.structure())) continue;
    bool fits = leaves.size() == e->cs->input_specs.size();
    for (size_t i = 0; fits && i < leaves.size(); ++i) fits = e->cs->input_specs[i].is_compatible_with(leaves[i]);
    if (!fits) continue;
    // remember this exact key so the next call is a fast hit; the aliases are bounded (beyond
    // the bound a call takes this slower path again, which is still correct)
    if (m.by_key.size() < 8 * std::max<size_t>(1, opts_.max_cached) + 64) {
      auto alias = std::make_shared<Impl::Entry>();
      alias->key.assign(key.full().begin(), key.full().end());
      alias->cs = e->cs;
      alias->primary = false;
      m.by_key.emplace(hash_words(alias->key), alias);
    }
    return e->cs;
  }

  // choose the parameter specs: the input signature, relaxed dims, or the arguments' own
  std::vector<TensorSpec> specs;
  bool relaxed = false;
  if (opts_.input_signature) {
    specs = *opts_.input_signature;
    if (specs.size() != leaves.size())
      fail<InvalidArgument>(opts_.name, "the input signature has ", specs.size(), " tensor specs but the call has ",
                            leaves.size(), " tensor arguments");
    for (size_t i = 0; i < leaves.size(); ++i)
      if (!specs[i].is_compatible_with(leaves[i]))
        fail<InvalidArgument>(opts_.name, "tensor argument ", i, " does not match the input signature: expected ",
                              specs[i].to_string(), ", got ", TensorSpec::from_tensor(leaves[i]).to_string());
    relaxed = true;
  } else {
    for (const Tensor& t : leaves) {
      specs.push_back(TensorSpec::from_tensor(t));
      relaxed |= !t.shape().is_fully_defined();  // get_concrete_function with unknown dims
    }
    if (opts_.reduce_retracing)
      for (auto& e : m.order) {
        if (!same_words(e->structure, key.structure()) || e->cs->input_specs.size() != specs.size()) continue;
        for (size_t i = 0; i < specs.size(); ++i)
          for (int64_t d = 0; d < specs[i].shape.rank(); ++d)
            if (e->cs->input_specs[i].shape.dim(size_t(d)) != specs[i].shape.dim(size_t(d))) {
              specs[i].shape.mut(size_t(d)) = kUnknownDim;
              relaxed = true;
            }
      }
  }

  auto entry = std::make_shared<Impl::Entry>();
  entry->key.assign(key.full().begin(), key.full().end());
  entry->structure.assign(key.structure().begin(), key.structure().end());
  entry->owner = std::this_thread::get_id();
  m.by_key.emplace(hash_words(entry->key), entry);
  Ref<ConcreteState> previous = m.order.empty() ? Ref<ConcreteState>() : m.order.back()->cs;
  bool first = m.traces_started.fetch_add(1) == 0;
  lock.unlock();

  // trace without holding the lock (the function may call other functions, or this one)
  Ref<ConcreteState> cs;
  try {
    cs = make_ref<ConcreteState>();
    cs->fn_name = opts_.name;
    if (opts_.backend) cs->backend_kind = *opts_.backend;
    cs->relaxed = relaxed;
    auto g = std::make_unique<ir::Graph>(opts_.name);
    Tracer tr(*g, opts_.name);
    // the file name without its directory: stable across checkouts (printed IR, golden tests)
    std::string_view file = m.loc.file_name();
    tr.loc = {std::string(file.substr(file.find_last_of('/') + 1)), uint32_t(m.loc.line())};
    std::string fname = opts_.name;
    tr.on_variable_created = [first, fname](VariableImpl& v) {
      if (!first)
        fail<FailedPrecondition>(fname, "variable '", v.name(),
                                 "' was created on a trace other than the function's first. A traced function "
                                 "may create variables only on its first trace (later traces would create new "
                                 "ones on every new signature): create them outside the function, or once on "
                                 "the first call and keep them (e.g. in a Module)");
    };
    Session session(tr, *cs, relaxed ? &specs : nullptr);
    auto t0 = std::chrono::steady_clock::now();
    std::vector<Tensor> outputs;
    {
      ops::LevelScope scope(tr);
      body(session, outputs, cs->skeleton);
    }
    tr.finish(outputs);
    for (ir::Value* o : g->outputs) cs->out_types.push_back(o->type);
    cs->stats.trace_us = micros_since(t0);
    cs->header = opts_.name + "(";
    for (size_t i = 0; i < session.header_items.size(); ++i) cs->header += (i ? ", " : "") + session.header_items[i];
    cs->header += ")";
    cs->arg_descs = session.descs;
    compile_concrete(*cs, std::move(g));
  } catch (...) {
    lock.lock();
    m.erase(entry);
    m.cv.notify_all();
    throw;
  }

  lock.lock();
  entry->cs = cs;
  m.order.push_back(entry);
  size_t count = ++m.traces;
  while (m.order.size() > std::max<size_t>(1, opts_.max_cached)) {
    Ref<ConcreteState> old = m.order.front()->cs;
    m.order.erase(m.order.begin());
    for (auto it = m.by_key.begin(); it != m.by_key.end();)
      it = it->second->cs.get() == old.get() ? m.by_key.erase(it) : std::next(it);
  }
  bool warn = count >= m.next_warning;
  if (warn) m.next_warning *= 2;
  m.cv.notify_all();
  lock.unlock();

  // why it traced: the first argument whose type or value differs from the previous trace
  std::string reason = "first trace";
  if (previous) {
    reason = "new signature";
    for (size_t i = 0; i < cs->arg_descs.size(); ++i) {
      std::string old = i < previous->arg_descs.size() ? previous->arg_descs[i] : "(none)";
      if (old != cs->arg_descs[i]) {
        reason = "argument '" + arg_name(i) + "' changed from " + old + " to " + cs->arg_descs[i];
        break;
      }
    }
  }
  logging::info("[function {}] tracing {} ({}): {}", opts_.name, count, cs->header, reason);
  if (warn)
    logging::warn(
        "[function {}] has been traced {} times. Tracing is expensive; frequent retracing comes from calling it with "
        "tensors of many shapes (use input_signature or reduce_retracing), with many static argument values (pass "
        "tensors instead), or from creating the function repeatedly in a loop",
        opts_.name, count);
  return cs;
}

// ---------------------------------------------------------------------------------------------
// Replay: a graph's nodes applied as ops through the active levels

ops::TensorList replay(const ir::Graph& g, std::span<const Tensor> inputs, bool pure,
                       std::span<const Tensor> var_values) {
  if (inputs.size() != g.inputs.size())
    fail<InvalidArgument>(g.name, "expected ", g.inputs.size(), " inputs, got ", inputs.size());
  std::unordered_map<const ir::Value*, Tensor> env;
  for (size_t i = 0; i < inputs.size(); ++i) env[g.inputs[i]] = inputs[i];
  std::vector<Tensor> vars(var_values.begin(), var_values.end());
  if (pure && vars.size() != g.variables.size())
    fail<Internal>(g.name, "pure replay needs ", g.variables.size(), " variable values, got ", vars.size());
  auto get = [&](const ir::Value* v) -> const Tensor& {
    auto it = env.find(v);
    if (it == env.end()) fail<Internal>(g.name, "replay: value used before definition");
    return it->second;
  };
  auto live_var = [&](const ir::Node& n) {
    const auto& slot = g.variables[size_t(n.var)];
    std::shared_ptr<VariableImpl> v = slot.var.lock();
    if (!v) fail<FailedPrecondition>(g.name, "variable '", slot.name, "' captured by this function no longer exists");
    return v;
  };
  for (const auto& np : g.nodes) {
    const ir::Node& n = *np;
    std::vector<Tensor> ins;
    for (const ir::Value* v : n.inputs) ins.push_back(get(v));
    ops::TensorList outs;
    switch (n.kind) {
      case ir::NodeKind::Constant:
        outs.push_back(n.constant);
        break;
      case ir::NodeKind::Op:
        if (pure && n.def->has(ops::kIO)) continue;
        outs = ops::apply(n.def->id, n.attrs, ins);
        break;
      case ir::NodeKind::ReadVariable:
        outs.push_back(pure ? vars[size_t(n.var)] : ops::read_variable(*live_var(n)));
        break;
      case ir::NodeKind::AssignVariable:
        if (pure)
          vars[size_t(n.var)] = ins[0];
        else
          Variable::from_handle(live_var(n)).assign(ins[0]);
        break;
      case ir::NodeKind::Cond: {
        std::vector<Tensor> caps(ins.begin() + 1, ins.end());
        auto branch = [&](const ir::Graph& sub) {
          return [&sub, caps, pure]() {
            ops::TensorList r = replay(sub, caps, pure);
            return std::vector<Tensor>(r.begin(), r.end());
          };
        };
        std::vector<Tensor> r = cond(ins[0], branch(*n.subgraphs[0]), branch(*n.subgraphs[1]));
        outs = ops::TensorList(r.begin(), r.end());
        break;
      }
      case ir::NodeKind::While: {
        size_t nvars = n.num_outputs();
        std::vector<Tensor> init(ins.begin(), ins.begin() + nvars), caps(ins.begin() + nvars, ins.end());
        const ir::Graph& cg = *n.subgraphs[0];
        const ir::Graph& bg = *n.subgraphs[1];
        auto with_caps = [&](std::span<const Tensor> lv) {
          std::vector<Tensor> a(lv.begin(), lv.end());
          a.insert(a.end(), caps.begin(), caps.end());
          return a;
        };
        std::vector<Tensor> r =
            while_loop([&](std::span<const Tensor> lv) { return replay(cg, with_caps(lv), pure)[0]; },
                       [&](std::span<const Tensor> lv) {
                         ops::TensorList b = replay(bg, with_caps(lv), pure);
                         return std::vector<Tensor>(b.begin(), b.end());
                       },
                       init);
        outs = ops::TensorList(r.begin(), r.end());
        break;
      }
    }
    for (size_t k = 0; k < n.num_outputs() && k < outs.size(); ++k) env[n.output(k)] = outs[k];
  }
  ops::TensorList result;
  for (const ir::Value* o : g.outputs) result.push_back(get(o));
  return result;
}

}  // namespace trace

// ---------------------------------------------------------------------------------------------
// ConcreteFunction

std::vector<TensorSpec> ConcreteFunction::output_specs() const {
  std::vector<TensorSpec> r;
  for (const auto& t : s_->out_types) {
    TensorSpec s(t.shape, t.dtype);
    for (int64_t i = 0; i < s.shape.rank(); ++i)
      if (s.shape.dim(size_t(i)) < 0) s.shape.mut(size_t(i)) = kUnknownDim;
    r.push_back(s);
  }
  return r;
}

std::string ConcreteFunction::pretty_printed_signature() const {
  std::string s = s_->header.empty() ? s_->fn_name + "(...)" : s_->header;
  if (!s_->arg_lines.empty()) {
    s += "\n  Args:";
    for (const auto& l : s_->arg_lines) s += "\n    " + l;
  }
  s += "\n  Returns:";
  auto outs = output_specs();
  if (outs.empty()) s += "\n    None";
  for (const auto& o : outs) s += "\n    " + o.to_string();
  return s;
}

std::vector<Tensor> ConcreteFunction::operator()(std::span<const Tensor> leaves) const {
  s_->check_leaves(leaves);
  ops::TensorList out = s_->call(leaves);
  return std::vector<Tensor>(out.begin(), out.end());
}

}  // namespace kiln
