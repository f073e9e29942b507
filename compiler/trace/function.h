// function(f): trace a C++ callable into typed graphs, one concrete function per signature,
// cached and retraced as TensorFlow's tf.function does (DESIGN.md §1, §5; docs/functions.md).
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <source_location>
#include <string>
#include <tuple>
#include <type_traits>
#include <vector>

#include "compiler/backend/executable.h"
#include "compiler/ir/ir.h"
#include "compiler/trace/composite_traits.h"
#include "compiler/trace/signature.h"
#include "ops/call.h"
#include "ops/dispatch.h"

namespace kiln {

namespace config {
/// When true, every `function` runs its C++ code eagerly on each call instead of a graph
/// (TensorFlow's tf.config.run_functions_eagerly), for debugging. Process-wide.
void run_functions_eagerly(bool eager);
/// Times every call of every concrete function (ConcreteFunction::total_run_us); off by default,
/// since reading the clock twice costs about a fifth of a cache-hit call. KILN_TIME_FUNCTIONS=1
/// turns it on at start-up. Process-wide.
void time_functions(bool on);
bool functions_run_eagerly();
}  // namespace config

/// Options of `function`.
struct FunctionOptions {
  /// The name used in signatures, logs, IR and errors.
  std::string name = "function";
  /// Parameter names (C++ cannot tell them); missing names are arg0, arg1, ...
  std::vector<std::string> arg_names{};
  /// When set: one spec per tensor leaf of the arguments, in order. Calls are checked against
  /// it (InvalidArgument when they do not fit) and share one graph per static-argument value.
  std::optional<std::vector<TensorSpec>> input_signature{};
  /// When a tensor argument arrives with a second shape, trace with the changed dims unknown
  /// so later shapes reuse that graph.
  bool reduce_retracing = false;
  /// Most concrete functions kept; the oldest is evicted beyond it.
  size_t max_cached = 64;
  /// Where the graphs run: native code from the CPU backend (the default, or KILN_BACKEND) or
  /// the interpreter.
  std::optional<backend::BackendKind> backend{};
};

namespace trace {

/// Timings of one concrete function (microseconds).
struct CompileStats {
  /// Tracing, the pass pipeline, and building the executable (code generation for the CPU
  /// backend; graphs with unknown dims compile per shape on first use, not counted here).
  double trace_us = 0, passes_us = 0, compile_us = 0;
  size_t nodes_traced = 0, nodes_optimized = 0;
  std::string_view backend;  // "cpu" or "interpreter"
  /// The backend's part of compile_us: lowering, code generation (or a cache hit), loading.
  backend::BackendStats codegen;
};

/// One traced graph for one signature, with its executable. Immutable after tracing and
/// thread-safe; a `call` op runs it (so a tape records a call as one op).
class ConcreteState final : public ops::CallTarget {
 public:
  std::string fn_name;
  std::string header;                          // "my_relu(x)" or "my_relu(x=2)"
  std::vector<std::string> arg_lines;          // "x: float32 Tensor, shape=()"
  std::vector<std::string> arg_descs;          // per parameter, for retrace reasons
  std::vector<TensorSpec> input_specs;         // one per tensor leaf
  std::vector<ir::TensorType> out_types;       // as traced (symbolic dims)
  std::shared_ptr<const ir::Graph> traced;     // as traced
  std::shared_ptr<const ir::Graph> optimized;  // after the pass pipeline
  Ref<backend::Executable> exec;
  std::shared_ptr<const void> skeleton;  // the result structure (a ResultTraits skeleton)
  bool relaxed = false;                  // specs have unknown dims: calls are checked
  CompileStats stats;
  mutable std::atomic<uint64_t> calls{0}, run_ns{0};
  backend::BackendKind backend_kind = backend::default_backend();
  /// The backward function, built on first use by autodiff (a ConcreteState too).
  mutable std::once_flag backward_once;
  mutable Ref<RefCounted> backward;

  /// Runs the graph on the tensor leaves of a call: directly, or as one `call` op when a tape
  /// records (then the captured variables' values are extra inputs, so their reads are seen).
  ops::TensorList call(std::span<const Tensor> leaves) const;
  /// exec->run, counted in calls and run_ns.
  ops::TensorList timed_run(std::span<const Tensor> leaves) const;
  /// Checks leaves against input_specs (for relaxed signatures); throws InvalidArgument whose
  /// message starts with `[component]` (the function's name when empty).
  void check_leaves(std::span<const Tensor> leaves, std::string_view component = {}) const;

  // ops::CallTarget: inputs are the leaves followed by the captured variables' values
  std::string_view name() const override { return fn_name; }
  ops::TypeList output_types_for(std::span<const Tensor> inputs) const;
  ops::TypeList output_types(std::span<const Tensor> inputs) const override { return output_types_for(inputs); }
  ops::TensorList run(std::span<const Tensor> inputs) const override;
};

/// Builds a concrete function by tracing `body` on parameters of the given types (graph
/// autodiff and tools use it; `function` uses the same machinery). `body` returns the outputs.
Ref<ConcreteState> trace_concrete(std::string name, const std::vector<TensorSpec>& params,
                                  const std::function<std::vector<Tensor>(std::span<const Tensor>)>& body,
                                  backend::BackendKind backend = backend::default_backend());

/// Compiles a traced graph: runs the pass pipeline and builds the executable; fills `cs`.
void compile_concrete(ConcreteState& cs, std::unique_ptr<ir::Graph> graph);

/// The type-independent part of a Function: options, the signature cache and tracing.
class FunctionCore {
 public:
  FunctionCore(FunctionOptions opts, std::source_location loc);
  ~FunctionCore();

  /// The cached concrete function for this key, or null. Does not allocate; readers do not
  /// block each other.
  Ref<ConcreteState> lookup(const KeyBuilder& key) const;
  /// The concrete function for this key: waits for another thread tracing the same signature,
  /// or traces with `body` (no lock is held while tracing). Throws what tracing throws.
  using TraceBody =
      std::function<void(TraceArgs& args, std::vector<Tensor>& outputs, std::shared_ptr<const void>& skeleton)>;
  Ref<ConcreteState> get(const KeyBuilder& key, std::span<const Tensor> leaves, const TraceBody& body);

  const FunctionOptions& options() const { return opts_; }
  size_t tracing_count() const;
  std::vector<Ref<ConcreteState>> concrete_functions() const;
  /// Each concrete function's signature in the walkthrough's format.
  std::string pretty_printed_concrete_signatures() const;
  std::string arg_name(size_t i) const;

 private:
  struct Impl;
  FunctionOptions opts_;
  std::unique_ptr<Impl> impl_;
};

template <class F>
struct CallableTraits : CallableTraits<decltype(&F::operator())> {};
template <class C, class R, class... P>
struct CallableTraits<R (C::*)(P...) const> {
  using Result = R;
  using Params = std::tuple<P...>;
};
template <class C, class R, class... P>
struct CallableTraits<R (C::*)(P...)> {
  using Result = R;
  using Params = std::tuple<P...>;
};
template <class R, class... P>
struct CallableTraits<R (*)(P...)> {
  using Result = R;
  using Params = std::tuple<P...>;
};

}  // namespace trace

/// A handle to one concrete function: a traced graph for one signature.
class ConcreteFunction {
 public:
  ConcreteFunction() = default;
  explicit ConcreteFunction(Ref<trace::ConcreteState> s) : s_(std::move(s)) {}

  /// The optimized graph that runs (print it with <<).
  const ir::Graph& graph() const { return *s_->optimized; }
  /// The graph as traced, before passes.
  const ir::Graph& traced_graph() const { return *s_->traced; }
  /// One tensor spec per tensor leaf of the arguments.
  const std::vector<TensorSpec>& input_specs() const { return s_->input_specs; }
  std::vector<TensorSpec> output_specs() const;
  /// "my_relu(x)\n  Args:\n    x: float32 Tensor, shape=()\n  Returns:\n    float32 Tensor, shape=()"
  std::string pretty_printed_signature() const;
  const trace::CompileStats& stats() const { return s_->stats; }
  /// Calls that ran the executable (not inlined into a trace), counted from every thread, and
  /// their total time in microseconds while config::time_functions is on.
  uint64_t num_calls() const { return s_->calls.load(std::memory_order_relaxed); }
  double total_run_us() const { return double(s_->run_ns.load(std::memory_order_relaxed)) / 1000.0; }
  /// Runs on the tensor leaves of the arguments (checked against input_specs; InvalidArgument if
  /// they do not fit). Inside a trace the graph is inlined into the enclosing graph.
  std::vector<Tensor> operator()(std::span<const Tensor> leaves) const;
  std::vector<Tensor> operator()(std::initializer_list<Tensor> leaves) const {
    return (*this)(std::span<const Tensor>(leaves.begin(), leaves.size()));
  }
  const Ref<trace::ConcreteState>& state() const { return s_; }

 private:
  Ref<trace::ConcreteState> s_;
};

namespace trace {
/// A stand-in tensor of a spec's dtype and shape (-1 dims allowed) for get_concrete_function:
/// it has no value and can only select and trace a signature.
Tensor spec_placeholder(const TensorSpec& spec);
/// Inlines a graph into whatever levels are active (a trace, a tape): each node is applied as
/// an op. `pure`: variable reads take `var_values` (in slot order) and writes only update them,
/// prints and asserts are skipped (for building backward graphs).
ops::TensorList replay(const ir::Graph& g, std::span<const Tensor> inputs, bool pure = false,
                       std::span<const Tensor> var_values = {});
}  // namespace trace

/// A traced function (the result of `function(f)`): callable like `f`, tracing a concrete
/// function per new signature and running cached graphs afterwards. Copies share the cache.
template <class F>
class Function;

template <class F>
class Function {
  using Traits = trace::CallableTraits<std::decay_t<F>>;
  using R = typename Traits::Result;
  using Params = typename Traits::Params;

 public:
  Function(F f, FunctionOptions opts, std::source_location loc)
      : f_(std::make_shared<F>(std::move(f))), core_(std::make_shared<trace::FunctionCore>(std::move(opts), loc)) {}

  /// Calls the function: traces on a new signature, else runs the cached graph. Inside another
  /// trace the C++ code runs and becomes part of that graph; with run_functions_eagerly it runs
  /// eagerly.
  template <class... A>
  R operator()(A&&... args) const {
    static_assert(sizeof...(A) == std::tuple_size_v<Params>, "kiln::function: wrong number of arguments");
    return call(std::index_sequence_for<A...>{}, std::forward<A>(args)...);
  }

  /// The concrete function for these arguments (TensorSpecs or example values), tracing it if
  /// needed.
  template <class... A>
  ConcreteFunction get_concrete_function(A&&... args) const {
    return get_concrete(std::index_sequence_for<A...>{}, to_arg<A>(std::forward<A>(args))...);
  }

  /// Number of traces so far.
  size_t tracing_count() const { return core_->tracing_count(); }
  std::vector<ConcreteFunction> concrete_functions() const {
    std::vector<ConcreteFunction> r;
    for (auto& s : core_->concrete_functions()) r.emplace_back(s);
    return r;
  }
  std::string pretty_printed_concrete_signatures() const { return core_->pretty_printed_concrete_signatures(); }
  const std::string& name() const { return core_->options().name; }
  /// The C++ callable.
  const F& python_function() const { return *f_; }

 private:
  template <size_t I>
  using P = std::decay_t<std::tuple_element_t<I, Params>>;

  // a TensorSpec given for a Tensor parameter stands for a tensor of that type
  template <class A>
  static decltype(auto) to_arg(A&& a) {
    if constexpr (std::is_same_v<std::decay_t<A>, TensorSpec>)
      return trace::spec_placeholder(a);
    else
      return std::forward<A>(a);
  }
  // an argument of the parameter's own type is passed by reference (a Variable must not be
  // copied: copying a Variable copies its value into a new variable)
  template <class Pt, class A>
  static decltype(auto) as_param(A&& a) {
    if constexpr (std::is_same_v<std::decay_t<A>, Pt>)
      return static_cast<const Pt&>(a);
    else
      return Pt(std::forward<A>(a));
  }

  template <size_t... I, class... A>
  R call(std::index_sequence<I...> seq, A&&... args) const {
    if (config::functions_run_eagerly() || ops::tracing()) return (*f_)(std::forward<A>(args)...);
    return run(seq, as_param<P<I>>(std::forward<A>(args))...);
  }

  // The concrete function for these arguments (traced on a miss) and their tensor leaves.
  template <size_t... I>
  std::pair<Ref<trace::ConcreteState>, trace::LeafList> concrete_for(std::index_sequence<I...> seq,
                                                                     const P<I>&... args) const {
    trace::KeyBuilder key;
    key_of(key, args...);
    trace::LeafList leaves;
    (ArgTraits<P<I>>::leaves(args, leaves), ...);
    Ref<trace::ConcreteState> cs = core_->lookup(key);
    if (!cs) cs = core_->get(key, {leaves.data(), leaves.size()}, body(seq, args...));
    return {std::move(cs), std::move(leaves)};
  }

  template <size_t... I>
  R run(std::index_sequence<I...> seq, const P<I>&... args) const {
    auto [cs, leaves] = concrete_for(seq, args...);
    ops::TensorList out = cs->call({leaves.data(), leaves.size()});
    if constexpr (std::is_void_v<R>) {
      return;
    } else {
      size_t i = 0;
      return ResultTraits<R>::rebuild(*static_cast<const R*>(cs->skeleton.get()), {out.data(), out.size()}, i);
    }
  }

  template <size_t... I>
  ConcreteFunction get_concrete(std::index_sequence<I...> seq, const P<I>&... args) const {
    return ConcreteFunction(concrete_for(seq, args...).first);
  }

  template <class... A>
  static void key_of(trace::KeyBuilder& key, const A&... args) {
    key.add(0xf00d000000000000ull | uint64_t(ops::recording_gradients()));
    Device d = current_device();
    key.add((uint64_t(d.type) << 32) | uint64_t(uint32_t(d.index)));
    (ArgTraits<A>::key(args, key), ...);
  }

  template <size_t... I>
  trace::FunctionCore::TraceBody body(std::index_sequence<I...>, const P<I>&... args) const {
    return [this, &args...](trace::TraceArgs& ta, std::vector<Tensor>& outputs, std::shared_ptr<const void>& skel) {
      // braced initialization: parameters are made in order
      std::tuple<P<I>...> traced{ArgTraits<P<I>>::trace(args, core_->arg_name(I), ta)...};
      // moved in: a Variable parameter taken by value must not be copied (that copies the variable)
      if constexpr (std::is_void_v<R>) {
        std::apply(*f_, std::move(traced));
        skel = nullptr;
      } else {
        R r = std::apply(*f_, std::move(traced));
        trace::LeafList leaves;
        ResultTraits<R>::leaves(r, leaves);
        outputs.assign(leaves.begin(), leaves.end());
        skel = std::make_shared<const R>(ResultTraits<R>::skeleton(r));
      }
    };
  }

  std::shared_ptr<F> f_;
  std::shared_ptr<trace::FunctionCore> core_;
};

/// Wraps `f` as a traced function. `f`'s parameters are tensors and static values (see
/// ArgTraits); its result a Tensor, tuple, vector or map of tensors (see ResultTraits).
template <class F>
Function<F> function(F f, FunctionOptions opts = {}, std::source_location loc = std::source_location::current()) {
  return Function<F>(std::move(f), std::move(opts), loc);
}

}  // namespace kiln
