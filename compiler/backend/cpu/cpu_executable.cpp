// The CPU backend's executable: native code for each static shape of a graph, with the
// runtime side of the calling convention (abi.h) — the arena, the fallback that runs eager
// kernels and cond/while subgraphs on raw buffers, parallel-for and sgemm.
#include <array>
#include <chrono>
#include <cstring>
#include <mutex>
#include <shared_mutex>

#include "compiler/backend/cpu/code_cache.h"
#include "compiler/backend/cpu/codegen.h"
#include "compiler/backend/executable.h"
#include "ops/variable.h"
#include "runtime/logging.h"
#include "runtime/parallel.h"

#ifdef KILN_WITH_ONEDNN
#include <oneapi/dnnl/dnnl.h>
#endif

namespace kiln::backend {
namespace {

using cpu::Buffer;

double micros_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0).count();
}
using cpu::Plan;
using cpu::Step;

// Specializations kept per executable for graphs with unknown dims; later shapes run on the
// interpreter (logged once).
constexpr size_t kMaxSpecializations = 8;

Tensor wrap(void* data, DType dtype, const Shape& shape) {
  auto impl = make_ref<TensorImpl>();
  impl->dtype = dtype;
  impl->shape = shape;
  impl->numel = shape.num_elements();
  impl->storage = Storage::wrap(data, impl->numel * int64_t(dtype_size(dtype)), kCPU, {});
  return Tensor(std::move(impl));
}

Tensor view_as(const Tensor& t, const Shape& shape) {
  if (t.shape() == shape) return t;
  auto impl = make_ref<TensorImpl>();
  impl->dtype = t.dtype();
  impl->shape = shape;
  impl->numel = t.num_elements();
  impl->storage = t.impl()->storage;
  impl->offset = t.impl()->offset;
  return Tensor(std::move(impl));
}

void* data_of(const Tensor& t) { return t.num_elements() ? t.mutable_raw_data() : nullptr; }

int32_t sgemm(int32_t ta, int32_t tb, int64_t m, int64_t n, int64_t k, const float* a, int64_t lda, const float* b,
              int64_t ldb, float* c, int64_t ldc) {
#ifdef KILN_WITH_ONEDNN
  return dnnl_sgemm(ta ? 'T' : 'N', tb ? 'T' : 'N', m, n, k, 1.0f, a, lda, b, ldb, 0.0f, c, ldc) == dnnl_success ? 0
                                                                                                                 : 1;
#else
  for (int64_t i = 0; i < m; ++i)
    for (int64_t j = 0; j < n; ++j) {
      float acc = 0;
      for (int64_t p = 0; p < k; ++p)
        acc += (ta ? a[p * lda + i] : a[i * lda + p]) * (tb ? b[j * ldb + p] : b[p * ldb + j]);
      c[i * ldc + j] = acc;
    }
  return 0;
#endif
}

KILN_CALLS_GENERATED_CODE int32_t call_entry(KilnCpuEntry entry, const KilnCpuContext* ctx, void* const* args,
                                             void* const* results) {
  return entry(ctx, args, results);
}

// Native code for one static graph.
class Program {
 public:
  Program(std::shared_ptr<const ir::Graph> root, std::shared_ptr<const ir::Graph> graph)
      : root_(std::move(root)), graph_(std::move(graph)) {
    auto t0 = std::chrono::steady_clock::now();
    plan_ = cpu::lower(*graph_);
    stats_.lower_us = micros_since(t0);
    // per call, the results are allocated in result order (found once here, not per call)
    result_buffers_.resize(plan_.num_results);
    for (const Buffer& b : plan_.buffers)
      if (b.kind == Buffer::Kind::Result) result_buffers_[size_t(b.index)] = &b;
    subs_.resize(plan_.fallback_steps.size());
    for (size_t k = 0; k < plan_.fallback_steps.size(); ++k)
      for (size_t i = 0; i < plan_.fallback_steps[k].node->subgraphs.size() && i < 2; ++i)
        subs_[k][i] = make_executable(root_, *plan_.fallback_steps[k].node->subgraphs[i]);
    // one JIT library per object, so every object names its entry the same (and cached
    // objects load in any process)
    constexpr const char* kSymbol = "kiln_entry";
    cpu::CodegenTimes times;
    auto t1 = std::chrono::steady_clock::now();
    std::string object = cpu::cached_object(
        cpu::code_key(*graph_), [&] { return cpu::emit_object(plan_, kSymbol, &times); }, &stats_.code_source);
    stats_.codegen_us = micros_since(t1);
    t1 = std::chrono::steady_clock::now();
    code_ = cpu::load_object(object, kSymbol);
    stats_.load_us = micros_since(t1);
    stats_.steps = plan_.steps.size();
    for (const Step& s : plan_.steps)
      if (s.kind == Step::Kind::Loop) {
        ++stats_.loops;
        stats_.fused_nodes += s.loop.nodes.size();
      }
    stats_.fallbacks = plan_.fallbacks.size();
    logging::debug(
        "[cpu] '{}': {} steps ({} loops fusing {} nodes), arena {} B; lower {:.0f} us, code {} in {:.0f} us "
        "(IR {:.0f}, O3 {:.0f}, emit {:.0f}), load {:.0f} us; total {:.0f} us",
        graph_->name, plan_.steps.size(), stats_.loops, stats_.fused_nodes, plan_.arena_bytes, stats_.lower_us,
        stats_.code_source, stats_.codegen_us, times.ir_us, times.optimize_us, times.emit_us, stats_.load_us,
        micros_since(t0));
    if (!plan_.fallbacks.empty()) {
      std::string list;
      for (const auto& f : plan_.fallbacks) list += (list.empty() ? "" : ", ") + f;
      logging::info("[cpu] '{}': {} node(s) run on eager kernels: {}", graph_->name, plan_.fallbacks.size(), list);
    }
  }

  const Plan& plan() const { return plan_; }
  const BackendStats& stats() const { return stats_; }

  ops::TensorList run(std::span<const Tensor> inputs) const {
    const ir::Graph& g = *graph_;
    SmallVector<void*, 16> args, results;
    SmallVector<Tensor, 8> vars, outs;
    for (const Tensor& t : inputs) args.push_back(data_of(t));
    for (const auto& slot : g.variables) {
      std::shared_ptr<VariableImpl> v = slot.var.lock();
      if (!v)
        fail<FailedPrecondition>(g.name, "variable '", slot.name,
                                 "' captured by this function no longer exists (it was destroyed after tracing)");
      vars.push_back(v->value());
      args.push_back(data_of(vars.back()));
    }
    for (const Buffer* b : result_buffers_) {
      outs.push_back(Tensor::empty(b->shape, b->dtype));
      results.push_back(data_of(outs.back()));
    }
    Ref<Storage> arena;
    if (plan_.arena_bytes) arena = Storage::allocate(plan_.arena_bytes);
    CallState state{this, {}};
    KilnCpuContext ctx{arena ? static_cast<char*>(arena->data()) : nullptr, &state, &fallback, &detail::parallel_run,
                       &sgemm};
    if (int32_t rc = call_entry(code_->entry, &ctx, args.data(), results.data())) {
      if (state.error) std::rethrow_exception(state.error);
      fail<Internal>(g.name, "generated code failed with code ", rc);
    }
    auto tensor_of = [&](int id) -> Tensor {
      const Buffer& b = plan_.buffers[size_t(id)];
      switch (b.kind) {
        case Buffer::Kind::Arg:
          return size_t(b.index) < inputs.size() ? inputs[size_t(b.index)] : vars[size_t(b.index) - inputs.size()];
        case Buffer::Kind::Constant:
          return plan_.constants[size_t(b.index)];
        case Buffer::Kind::Result:
          return outs[size_t(b.index)];
        case Buffer::Kind::Temp:
          break;
      }
      fail<Internal>(g.name, "an output lives in the arena");
    };
    for (auto [slot, id] : plan_.assigns) {
      std::shared_ptr<VariableImpl> v = g.variables[size_t(slot)].var.lock();
      // results are fresh buffers of this call: the variable takes them without a copy
      if (v) v->replace(view_as(tensor_of(id), v->shape()));
    }
    ops::TensorList out;
    for (const cpu::OutputRef& o : plan_.outputs) out.push_back(view_as(tensor_of(o.buffer), o.shape));
    return out;
  }

 private:
  struct CallState {
    const Program* program;
    std::exception_ptr error;
  };

  static int32_t fallback(void* state, int32_t step, void* const* ins, void* const* outs) noexcept {
    auto* st = static_cast<CallState*>(state);
    try {
      st->program->run_fallback(size_t(step), ins, outs);
      return 0;
    } catch (...) {
      st->error = std::current_exception();
      return 1;
    }
  }

  void run_fallback(size_t id, void* const* ins, void* const* outs) const {
    const cpu::FallbackStep& f = plan_.fallback_steps[id];
    const ir::Node& n = *f.node;
    SmallVector<Tensor, 4> in;
    for (size_t i = 0; i < f.ins.size(); ++i) {
      const Buffer& b = plan_.buffers[size_t(f.ins[i])];
      in.push_back(wrap(ins[i], b.dtype, n.inputs[i]->type.shape));
    }
    std::span<const Tensor> in_span(in.data(), in.size());
    ops::TensorList result;
    if (n.kind == ir::NodeKind::Op) {
      ops::TypeList types;
      for (const auto& o : n.outputs) types.push_back(o->type);
      result.resize(types.size());
      for (size_t k = 0; k < types.size(); ++k) result[k] = wrap(outs[k], types[k].dtype, types[k].shape);
      ops::KernelContext ctx{*n.def, n.attrs, in_span, types, result};
      n.def->cpu_kernel(ctx);
    } else {
      const auto& sub = subs_[id];
      result = n.kind == ir::NodeKind::Cond ? run_cond(*sub[0], *sub[1], in_span)
                                            : run_while(*sub[0], *sub[1], in_span, n.outputs.size());
    }
    // kernels that made their own output (or a view) are copied into the planned buffer
    for (size_t k = 0; k < n.outputs.size(); ++k)
      if (result[k].num_elements() && result[k].raw_data() != outs[k])
        std::memcpy(outs[k], result[k].raw_data(), result[k].nbytes());
  }

  std::shared_ptr<const ir::Graph> root_, graph_;
  Plan plan_;
  std::vector<const Buffer*> result_buffers_;         // by result index
  std::vector<std::array<Ref<Executable>, 2>> subs_;  // per fallback: its cond/while subgraphs
  Ref<cpu::NativeCode> code_;
  BackendStats stats_;
};

class CpuExecutable final : public Executable {
 public:
  CpuExecutable(std::shared_ptr<const ir::Graph> root, const ir::Graph& g) : root_(std::move(root)), g_(g) {
    if (cpu::is_static(g_)) {
      // the graph object is the caller's: share ownership through the root
      main_ = std::make_shared<Program>(root_, std::shared_ptr<const ir::Graph>(root_, &g_));
    }
    interp_ = make_interpreter(root_, g_);
  }

  std::string_view backend() const override { return "cpu"; }
  size_t arena_bytes() const override { return main_ ? main_->plan().arena_bytes : 0; }
  BackendStats stats() const override {
    if (main_) return main_->stats();
    std::shared_lock lock(mu_);
    return specs_.empty() ? BackendStats{} : specs_.front().second->stats();
  }

  ops::TensorList run(std::span<const Tensor> inputs) const override {
    if (runs_on_gpu(inputs)) return interp_->run(inputs);
    if (main_) return main_->run(inputs);
    if (const Program* p = specialization(inputs)) return p->run(inputs);
    return interp_->run(inputs);
  }

 private:
  bool matches(const std::vector<Shape>& key, std::span<const Tensor> inputs) const {
    for (size_t i = 0; i < key.size(); ++i)
      if (key[i] != inputs[i].shape()) return false;
    return true;
  }

  const Program* specialization(std::span<const Tensor> inputs) const {
    {
      std::shared_lock lock(mu_);
      for (const auto& [key, p] : specs_)
        if (matches(key, inputs)) return p.get();
      if (gave_up_) return nullptr;
    }
    std::unique_lock lock(mu_);
    for (const auto& [key, p] : specs_)
      if (matches(key, inputs)) return p.get();
    if (specs_.size() >= kMaxSpecializations) {
      if (!gave_up_)
        logging::warn("[cpu] '{}' has run with {} different input shapes; further new shapes run on the interpreter",
                      g_.name, specs_.size());
      gave_up_ = true;
      return nullptr;
    }
    std::vector<Shape> key;
    for (const Tensor& t : inputs) key.push_back(t.shape());
    std::shared_ptr<const ir::Graph> spec(cpu::specialize(g_, key));
    if (!spec) {
      logging::info("[cpu] '{}': some shapes depend on values; it runs on the interpreter", g_.name);
      gave_up_ = true;
      return nullptr;
    }
    try {
      specs_.emplace_back(std::move(key), std::make_shared<Program>(spec, spec));
    } catch (const Internal& e) {
      logging::warn("[cpu] '{}' could not be compiled, it runs on the interpreter: {}", g_.name, e.what());
      gave_up_ = true;
      return nullptr;
    }
    return specs_.back().second.get();
  }

  std::shared_ptr<const ir::Graph> root_;
  const ir::Graph& g_;
  std::shared_ptr<Program> main_;
  Ref<Executable> interp_;
  mutable std::shared_mutex mu_;
  mutable std::vector<std::pair<std::vector<Shape>, std::shared_ptr<Program>>> specs_;
  mutable bool gave_up_ = false;
};

}  // namespace

Ref<Executable> make_cpu(std::shared_ptr<const ir::Graph> root, const ir::Graph& graph) {
  try {
    return make_ref<CpuExecutable>(root, graph);
  } catch (const Internal& e) {
    logging::warn("[cpu] '{}' could not be compiled, it runs on the interpreter: {}", graph.name, e.what());
    return make_interpreter(std::move(root), graph);
  }
}

}  // namespace kiln::backend
