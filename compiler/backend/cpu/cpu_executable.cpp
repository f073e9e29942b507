// The CPU backend's executable: native code for each static shape of a graph, with the
// runtime side of the calling convention (abi.h) — the arena, the fallback that runs eager
// kernels and cond/while subgraphs on raw buffers, parallel-for, sgemm, and library matmuls
// with their epilogues (oneDNN primitives created with the program).
#include <algorithm>
#include <array>
#include <atomic>
#include <bit>
#include <chrono>
#include <cmath>
#include <cstring>
#include <limits>
#include <mutex>
#include <optional>
#include <shared_mutex>

#include "compiler/backend/cpu/codegen.h"
#include "compiler/backend/executable.h"
#include "ops/kernels/cpu/scalar_fn.h"
#include "ops/variable.h"
#include "runtime/code_cache.h"
#include "runtime/logging.h"
#include "runtime/parallel.h"

#ifdef KILN_WITH_ONEDNN
#include <oneapi/dnnl/dnnl.h>
#include <oneapi/dnnl/dnnl.hpp>
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

// Bumped whenever generated code changes meaning for the same graph.
constexpr const char* kCodegenVersion = "kiln-cpu-3";

// The cache key of `g`'s object code: its structural hash and a hash of its IR text, both with
// the target (CPU, features, LLVM version) and the code generator's version mixed in.
std::string code_key(const ir::Graph& g) {
  const std::string salt = std::string(kCodegenVersion) + "|" + cpu::target_id();
  return code_cache::hex(code_cache::fnv1a(salt, g.structural_hash())) +
         code_cache::hex(code_cache::fnv1a(g.to_string(), code_cache::fnv1a(salt)));
}

Tensor wrap(void* data, DType dtype, const Shape& shape) {
  auto impl = make_ref<TensorImpl>();
  impl->dtype = dtype;
  impl->shape = shape;
  impl->numel = shape.num_elements();
  impl->storage = Storage::wrap(data, impl->numel * int64_t(dtype_size(dtype)), kCPU, {});
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

// Applies `mm`'s epilogue to batch `bi` of its result `c` (m x n) in place, element by element
// with the eager kernels' scalar functions: the path without a oneDNN primitive.
void apply_epilogue(const cpu::MatMulStep& mm, int64_t bi, float* c, void* const* operands) {
  const int64_t size = mm.m * mm.n;
  size_t next = 0;
  for (const cpu::PostOp& p : mm.epilogue) {
    const float* x = p.buffer >= 0 ? static_cast<const float*>(operands[next++]) : nullptr;
    switch (p.kind) {
      case cpu::PostOp::Kind::Bias:
        for (int64_t i = 0; i < size; ++i) c[i] += x[i % mm.n];
        break;
      case cpu::PostOp::Kind::Add:
        x += bi * size;
        for (int64_t i = 0; i < size; ++i) c[i] += x[i];
        break;
      case cpu::PostOp::Kind::Scale:
        for (int64_t i = 0; i < size; ++i) c[i] *= p.scale;
        break;
      case cpu::PostOp::Kind::Relu:
        std::transform(c, c + size, c, [](float v) { return ::kiln::cpu::ReluFn{}(v); });
        break;
      case cpu::PostOp::Kind::Tanh:
        std::transform(c, c + size, c, [](float v) { return ::kiln::cpu::TanhFn{}(v); });
        break;
      case cpu::PostOp::Kind::Sigmoid:
        std::transform(c, c + size, c, [](float v) { return ::kiln::cpu::SigmoidFn{}(v); });
        break;
    }
  }
}

#ifdef KILN_WITH_ONEDNN
// The largest |x| over p[0, n), or +inf when an element is infinite or NaN. A float's magnitude
// bits order like an unsigned integer, so this is an integer max (which vectorizes).
float max_abs(const float* p, int64_t n) {
  std::atomic<uint32_t> top{0};
  parallel_for(n, int64_t(1) << 15, [&](int64_t begin, int64_t end) {
    uint32_t m = 0;
    for (int64_t i = begin; i < end; ++i) m = std::max(m, std::bit_cast<uint32_t>(p[i]) & 0x7fffffffu);
    uint32_t seen = top.load(std::memory_order_relaxed);
    while (m > seen && !top.compare_exchange_weak(seen, m, std::memory_order_relaxed)) {
    }
  });
  uint32_t m = top.load(std::memory_order_relaxed);
  return m >= 0x7f800000u ? std::numeric_limits<float>::infinity() : std::bit_cast<float>(m);
}

// True when no value that reaches a relu of `mm`'s epilogue can be NaN. oneDNN's relu post-op
// turns NaN into 0 where Kiln's relu keeps it, so the primitive may run only then. The values
// are bounded from the inputs' largest magnitudes: every partial sum of the product stays
// within k·max|A|·max|B| (half of FLT_MAX leaves room for rounding), and finite values give no
// NaN through the post-ops.
bool nan_free_before_relu(const cpu::MatMulStep& mm, int64_t bi, const float* a, const float* b,
                          void* const* operands) {
  double bound = double(mm.k) * max_abs(a, mm.m * mm.k) * max_abs(b, mm.k * mm.n);
  constexpr double kLimit = std::numeric_limits<float>::max() / 2.0;
  size_t next = 0;
  for (const cpu::PostOp& p : mm.epilogue) {
    const float* x = p.buffer >= 0 ? static_cast<const float*>(operands[next++]) : nullptr;
    switch (p.kind) {
      case cpu::PostOp::Kind::Bias:
        bound += max_abs(x, mm.n);
        break;
      case cpu::PostOp::Kind::Add:
        bound += max_abs(x + bi * mm.m * mm.n, mm.m * mm.n);
        break;
      case cpu::PostOp::Kind::Scale:
        bound *= std::fabs(double(p.scale));
        break;
      case cpu::PostOp::Kind::Tanh:
      case cpu::PostOp::Kind::Sigmoid:
        if (bound <= kLimit) bound = 1.0;  // otherwise NaN may already have come in
        break;
      case cpu::PostOp::Kind::Relu:
        if (!(bound <= kLimit)) return false;
        break;
    }
  }
  return true;
}

// One engine for every program (never destroyed: streams and primitives refer to it); a stream
// per thread, since a stream is not for concurrent use.
const dnnl::engine& dnnl_engine() {
  static const auto* e = new dnnl::engine(dnnl::engine::kind::cpu, 0);
  return *e;
}
dnnl::stream& dnnl_stream() {
  thread_local dnnl::stream s(dnnl_engine());
  return s;
}
#endif

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
    make_library_matmuls();
    subs_.resize(plan_.fallback_steps.size());
    for (size_t k = 0; k < plan_.fallback_steps.size(); ++k)
      for (size_t i = 0; i < plan_.fallback_steps[k].node->subgraphs.size() && i < 2; ++i)
        subs_[k][i] = make_executable(root_, *plan_.fallback_steps[k].node->subgraphs[i]);
    // one JIT library per object, so every object names its entry the same (and cached
    // objects load in any process)
    constexpr const char* kSymbol = "kiln_entry";
    cpu::CodegenTimes times;
    auto t1 = std::chrono::steady_clock::now();
    std::string object = code_cache::cached(
        "cpu", code_key(*graph_), [&] { return cpu::emit_object(plan_, kSymbol, &times); }, &stats_.code_source);
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
    for (const cpu::MatMulStep& mm : plan_.library_matmuls) stats_.fused_nodes += mm.epilogue_nodes.size();
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
    // the arena, then the oneDNN primitives' scratchpad (one at a time: steps run in order)
    Ref<Storage> arena;
    if (scratch_offset_ + scratch_bytes_) arena = Storage::allocate(scratch_offset_ + scratch_bytes_);
    char* base = arena ? static_cast<char*>(arena->data()) : nullptr;
    CallState state{this, {}, base ? base + scratch_offset_ : nullptr};
    KilnCpuContext ctx{base, &state, &fallback, &detail::parallel_run, &sgemm, &library_matmul};
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
    char* scratch;  // the oneDNN primitives' scratchpad in this call's arena
  };

  // The runtime side of one library matmul step: a oneDNN primitive with the epilogue as
  // post-ops, created once with the program, or none (sgemm, then the epilogue in C++).
  struct LibraryMatmul {
    const cpu::MatMulStep* step = nullptr;
#ifdef KILN_WITH_ONEDNN
    std::optional<dnnl::matmul> prim;
    dnnl::memory::desc a, b, c, scratch;
    struct Operand {
      int arg = 0;           // DNNL_ARG_BIAS or DNNL_ARG_ATTR_MULTIPLE_POST_OP(i) | DNNL_ARG_SRC_1
      bool batched = false;  // an add's operand: one matrix per batch
      dnnl::memory::desc desc;
    };
    std::vector<Operand> operands;  // the bias and add post-ops' operands, in order
    bool relu = false;              // the epilogue has a relu: check its inputs per call
#endif
  };

  // Steps with an epilogue get a primitive with post-ops; plain ones call dnnl_sgemm, which
  // costs less per call for the same kernels (docs/performance.md).
  static bool use_primitive(const cpu::MatMulStep& mm) { return !mm.epilogue.empty(); }

  void make_library_matmuls() {
    matmuls_.resize(plan_.library_matmuls.size());
    for (size_t id = 0; id < matmuls_.size(); ++id) {
      const cpu::MatMulStep& mm = plan_.library_matmuls[id];
      matmuls_[id].step = &mm;
#ifdef KILN_WITH_ONEDNN
      if (!use_primitive(mm)) continue;
      using dnnl::algorithm;
      using md = dnnl::memory::desc;
      using dims = dnnl::memory::dims;
      constexpr auto f32 = dnnl::memory::data_type::f32;
      LibraryMatmul& lm = matmuls_[id];
      try {
        // transposes are strides: row-major A is [m, k] with strides {k, 1}, transposed {1, m}
        lm.a = md({mm.m, mm.k}, f32, mm.ta ? dims{1, mm.m} : dims{mm.k, 1});
        lm.b = md({mm.k, mm.n}, f32, mm.tb ? dims{1, mm.k} : dims{mm.n, 1});
        lm.c = md({mm.m, mm.n}, f32, dims{mm.n, 1});
        // a leading bias is the matmul's own bias argument, which costs oneDNN less than a
        // binary post-op
        std::optional<md> bias;
        dnnl::post_ops po;
        for (const cpu::PostOp& p : mm.epilogue) {
          int index = po.len();
          if (&p == &mm.epilogue.front() && p.kind == cpu::PostOp::Kind::Bias) {
            bias = md({1, mm.n}, f32, dims{mm.n, 1});
            lm.operands.push_back({DNNL_ARG_BIAS, false, *bias});
            continue;
          }
          switch (p.kind) {
            case cpu::PostOp::Kind::Bias:
            case cpu::PostOp::Kind::Add: {
              bool row = p.kind == cpu::PostOp::Kind::Bias;
              md d({row ? 1 : mm.m, mm.n}, f32, dims{mm.n, 1});
              po.append_binary(algorithm::binary_add, d);
              lm.operands.push_back({DNNL_ARG_ATTR_MULTIPLE_POST_OP(index) | DNNL_ARG_SRC_1, !row, d});
              break;
            }
            case cpu::PostOp::Kind::Scale:
              po.append_eltwise(1.0f, algorithm::eltwise_linear, p.scale, 0.0f);
              break;
            case cpu::PostOp::Kind::Relu:
              po.append_eltwise(1.0f, algorithm::eltwise_relu, 0.0f, 0.0f);
              break;
            case cpu::PostOp::Kind::Tanh:
              po.append_eltwise(1.0f, algorithm::eltwise_tanh, 0.0f, 0.0f);
              break;
            case cpu::PostOp::Kind::Sigmoid:
              po.append_eltwise(1.0f, algorithm::eltwise_logistic, 0.0f, 0.0f);
              break;
          }
        }
        dnnl::primitive_attr attr;
        attr.set_post_ops(po);
        // the caller's scratchpad: the primitive holds no memory of its own, so any number of
        // threads may run it at once
        attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
        dnnl::matmul::primitive_desc pd(
            bias ? dnnl::matmul::desc(lm.a, lm.b, *bias, lm.c) : dnnl::matmul::desc(lm.a, lm.b, lm.c), attr,
            dnnl_engine());
        lm.scratch = pd.scratchpad_desc();
        lm.prim.emplace(pd);
        lm.relu = std::any_of(mm.epilogue.begin(), mm.epilogue.end(),
                              [](const cpu::PostOp& p) { return p.kind == cpu::PostOp::Kind::Relu; });
        scratch_bytes_ = std::max(scratch_bytes_, lm.scratch.get_size());
      } catch (const dnnl::error& e) {
        // a post-op combination this oneDNN does not implement: sgemm and the epilogue in C++
        logging::debug("[cpu] '{}': no oneDNN matmul primitive for {}x{}x{} with {} post-op(s) ({}): sgemm instead",
                       graph_->name, mm.m, mm.n, mm.k, mm.epilogue.size(), e.what());
        lm.prim.reset();
        lm.operands.clear();
      }
#endif
    }
    scratch_offset_ = (plan_.arena_bytes + 63) / 64 * 64;  // 64-byte aligned, as the arena
  }

  static int32_t library_matmul(void* state, int32_t step, const float* a, const float* b, float* c,
                                void* const* operands) noexcept {
    auto* st = static_cast<CallState*>(state);
    try {
      st->program->run_matmul(size_t(step), a, b, c, operands, st->scratch);
      return 0;
    } catch (...) {
      st->error = std::current_exception();
      return 1;
    }
  }

  void run_matmul(size_t id, const float* a, const float* b, float* c, void* const* operands, char* scratch) const {
    const LibraryMatmul& lm = matmuls_[id];
    const cpu::MatMulStep& mm = *lm.step;
    for (int64_t bi = 0; bi < mm.batch; ++bi) {
      const float* ab = a + bi * mm.a_stride;
      const float* bb = b + bi * mm.b_stride;
      float* cb = c + bi * mm.m * mm.n;
#ifdef KILN_WITH_ONEDNN
      // (inputs that could make NaN before a relu take the path below, which keeps NaN)
      if (lm.prim && (!lm.relu || nan_free_before_relu(mm, bi, ab, bb, operands))) {
        const dnnl::engine& eng = dnnl_engine();
        try {
          std::unordered_map<int, dnnl::memory> args{
              {DNNL_ARG_SRC, dnnl::memory(lm.a, eng, const_cast<float*>(ab))},
              {DNNL_ARG_WEIGHTS, dnnl::memory(lm.b, eng, const_cast<float*>(bb))},
              {DNNL_ARG_DST, dnnl::memory(lm.c, eng, cb)}};
          for (size_t i = 0; i < lm.operands.size(); ++i) {
            float* x = static_cast<float*>(operands[i]) + (lm.operands[i].batched ? bi * mm.m * mm.n : 0);
            args.emplace(lm.operands[i].arg, dnnl::memory(lm.operands[i].desc, eng, x));
          }
          if (lm.scratch.get_size()) args.emplace(DNNL_ARG_SCRATCHPAD, dnnl::memory(lm.scratch, eng, scratch));
          dnnl::stream& s = dnnl_stream();
          lm.prim->execute(s, args);
          s.wait();
        } catch (const dnnl::error& e) {
          fail<Internal>(graph_->name, "oneDNN matmul ", mm.m, "x", mm.n, "x", mm.k, " failed: ", e.what());
        }
        continue;
      }
#endif
      (void)scratch;
      int64_t lda = mm.ta ? mm.m : mm.k, ldb = mm.tb ? mm.k : mm.n;
      if (sgemm(mm.ta, mm.tb, mm.m, mm.n, mm.k, ab, lda, bb, ldb, cb, mm.n))
        fail<Internal>(graph_->name, "sgemm ", mm.m, "x", mm.n, "x", mm.k, " failed");
      apply_epilogue(mm, bi, cb, operands);
    }
  }

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
  std::vector<LibraryMatmul> matmuls_;                // per library matmul step
  size_t scratch_offset_ = 0, scratch_bytes_ = 0;     // the scratchpad's place in the arena
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
