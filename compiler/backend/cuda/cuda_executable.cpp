// The CUDA backend's executable: per GPU and input shape, the graph's plan with its kernels
// compiled by NVRTC into one module; the host walks the plan's steps and queues them on the
// device's stream (loop and reduce kernels, matmuls through the eager GPU matmul, fallbacks as
// eager GPU ops, cond/while decided by reading the predicate back). Also the executable that
// sends each call to the CPU executable or, created on the first GPU call, to this one.
#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <map>
#include <mutex>
#include <optional>
#include <shared_mutex>
#include <unordered_map>

#include <fmt/format.h>

#include "compiler/backend/cuda/cuda_backend.h"
#include "compiler/backend/executable.h"
#include "runtime/cuda/cuda.h"
#include "runtime/logging.h"

#if KILN_WITH_CUDA
#include "ops/dispatch.h"
#include "ops/kernels/cuda/blas_lt.h"
#include "ops/kernels/cuda/kernels.h"
#include "ops/kernels/cuda/launch.h"
#include "ops/kernels/cuda/source.h"
#include "ops/variable.h"
#include "runtime/cuda/driver_api.h"
#endif

namespace kiln::backend {
namespace {

std::atomic<uint64_t> g_programs_compiled{0}, g_block_programs{0}, g_graphs_captured{0}, g_graph_replays{0};

// The step profile (cuda::set_profiling): GPU time per step of each program, by program serial
// number and step index.
struct ProfiledStep {
  std::string function, step;
  double us = 0;
  uint64_t calls = 0;
};
std::atomic<bool> g_profiling{[] {
  const char* env = std::getenv("KILN_CUDA_PROFILE");
  return env != nullptr && std::string_view(env) == "1";
}()};
std::mutex g_profile_mu;
std::map<std::pair<uint64_t, size_t>, ProfiledStep> g_profile;

// `host` for calls on the CPU; calls that run on a GPU go to the CUDA executable, made on the
// first of them so that CPU-only use never loads CUDA.
class DeviceSplit final : public Executable {
 public:
  DeviceSplit(Ref<Executable> host, std::shared_ptr<const ir::Graph> root, const ir::Graph& g)
      : host_(std::move(host)), root_(std::move(root)), g_(g) {}

  std::string_view backend() const override { return host_->backend(); }
  size_t arena_bytes() const override { return host_->arena_bytes(); }
  BackendStats stats() const override { return host_->stats(); }

  ops::TensorList run(std::span<const Tensor> inputs) const override {
    if (!runs_on_gpu(inputs)) return host_->run(inputs);
    std::call_once(once_, [this] { gpu_ = make_cuda(root_, g_); });
    return gpu_->run(inputs);
  }

 private:
  Ref<Executable> host_;
  std::shared_ptr<const ir::Graph> root_;
  const ir::Graph& g_;
  mutable std::once_flag once_;
  mutable Ref<Executable> gpu_;
};

}  // namespace

uint64_t cuda::programs_compiled() { return g_programs_compiled.load(std::memory_order_relaxed); }
uint64_t cuda::block_programs() { return g_block_programs.load(std::memory_order_relaxed); }
uint64_t cuda::graphs_captured() { return g_graphs_captured.load(std::memory_order_relaxed); }
uint64_t cuda::graph_replays() { return g_graph_replays.load(std::memory_order_relaxed); }

void cuda::set_profiling(bool on) { g_profiling.store(on, std::memory_order_relaxed); }

std::string cuda::profile_report(size_t top) {
  std::vector<ProfiledStep> steps;
  {
    std::lock_guard lock(g_profile_mu);
    for (auto& [key, step] : g_profile) steps.push_back(std::move(step));
    g_profile.clear();
  }
  if (steps.empty()) return "";
  std::sort(steps.begin(), steps.end(), [](const ProfiledStep& a, const ProfiledStep& b) { return a.us > b.us; });
  double total = 0;
  for (const ProfiledStep& p : steps) total += p.us;
  std::string out = fmt::format("    {:>6} {:>10}  {}\n", "share", "us/call", "function: step");
  for (size_t i = 0; i < steps.size() && i < top; ++i)
    out += fmt::format("    {:>5.1f}% {:>10.2f}  {}: {}\n", 100.0 * steps[i].us / std::max(total, 1e-30),
                       steps[i].us / double(std::max<uint64_t>(steps[i].calls, 1)), steps[i].function, steps[i].step);
  if (steps.size() > top) out += fmt::format("    ({} more steps)\n", steps.size() - top);
  return out;
}

Ref<Executable> with_gpu(Ref<Executable> host, std::shared_ptr<const ir::Graph> root, const ir::Graph& graph) {
  if (!::kiln::cuda::built_with_cuda()) return host;
  return make_ref<DeviceSplit>(std::move(host), std::move(root), graph);
}

#if KILN_WITH_CUDA

namespace {

using cpu::Buffer;
using cpu::Plan;
using cpu::Step;

std::atomic<uint64_t> g_next_serial{0};  // numbers programs for the profile

// Specializations kept per executable (over all GPUs); later shapes run node by node.
constexpr size_t kMaxSpecializations = 8;

double micros_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0).count();
}

// The GPU a call runs on: the device scope's, else the first GPU input's (the eager ops' rule).
Device call_device(std::span<const Tensor> inputs) {
  if (in_device_scope()) return current_device();
  for (const Tensor& t : inputs)
    if (t.defined() && t.device().type == DeviceType::GPU) return t.device();
  return kCPU;
}

// One specialization: the plan, its module and kernels on one GPU, the uploaded constants.
class Program {
 public:
  Program(std::shared_ptr<const ir::Graph> root, std::shared_ptr<const ir::Graph> graph, int device)
      : root_(std::move(root)), graph_(std::move(graph)), device_(device), gpu_{DeviceType::GPU, device} {
    auto t0 = std::chrono::steady_clock::now();
    plan_ = cpu::lower(*graph_, cuda::lower_options());
    block_ = cuda::block_program(plan_);
    if (!block_.eligible) relower();
    stats_.lower_us = micros_since(t0);
    result_buffers_.resize(plan_.num_results);
    for (const Buffer& b : plan_.buffers)
      if (b.kind == Buffer::Kind::Result) result_buffers_[size_t(b.index)] = &b;
    subs_.resize(plan_.fallback_steps.size());
    for (size_t k = 0; k < plan_.fallback_steps.size(); ++k)
      for (size_t i = 0; i < plan_.fallback_steps[k].node->subgraphs.size() && i < 2; ++i)
        subs_[k][i] = make_executable(root_, *plan_.fallback_steps[k].node->subgraphs[i]);
    const std::vector<const Step*> steps = cuda::kernel_steps(plan_);
    stats_.code_source = "none";
    if (block_.eligible) {
      launch_ = Launch::Block;
      g_block_programs.fetch_add(1, std::memory_order_relaxed);
      load_module(ops::cuda::gpu_prelude() + cuda::block_program_source(plan_, block_, "kiln_block"));
      block_fn_ = function("kiln_block");
    } else if (!steps.empty()) {
      load_module(cuda::cuda_program_source(plan_));
      size_t scratch_bytes = 0;  // for the split reductions (steps run in order: one will do)
      for (size_t i = 0; i < steps.size(); ++i) {
        Kernel k;
        k.fn = function("kiln_k" + std::to_string(i));
        if (steps[i]->kind == Step::Kind::Loop) {
          const cpu::LoopStep& loop = steps[i]->loop;
          if (cuda::loop_vectorizable(plan_, loop)) k.fn_v4 = function("kiln_k" + std::to_string(i) + "_v4");
          k.params = cuda::loop_kernel_buffers(loop);
          k.elements = 1;
          for (int64_t d : loop.dims) k.elements *= d;
          if (std::optional<cpu::RowReduction> rr = cpu::row_reduction(loop)) {
            // a block per row (row_reduce_kernel), as many threads as the row has elements
            // (a power of two from 32 to 256)
            k.threads = 32;
            while (k.threads < 256 && k.threads < uint64_t(rr->length)) k.threads *= 2;
            k.blocks = unsigned(std::min<int64_t>(rr->rows, 1 << 20));
          }
        } else {
          set_reduce_layout(steps[i]->reduce, k);
          k.spread = ops::cuda::reduce_plan(k.outputs, k.layout);
          scratch_bytes = std::max(scratch_bytes, k.spread.scratch_bytes);
        }
        kernels_.emplace(steps[i], std::move(k));
      }
      if (scratch_bytes) scratch_ = Storage::allocate(scratch_bytes, gpu_);
    }
    if (launch_ != Launch::Block) launch_ = capturable() ? Launch::Graph : Launch::Stream;
    stats_.gpu_launch = launch_ == Launch::Block ? "block" : launch_ == Launch::Graph ? "graph" : "stream";
    for (const Tensor& c : plan_.constants) constants_.push_back(c.to(gpu_));
    stats_.steps = plan_.steps.size();
    for (const Step& s : plan_.steps) {
      if (s.kind == Step::Kind::Loop) ++stats_.loops;
      stats_.fused_nodes += s.kind == Step::Kind::Loop ? s.loop.nodes.size() : s.matmul.epilogue_nodes.size();
    }
    stats_.fallbacks = plan_.fallbacks.size();
    logging::debug(
        "[cuda] '{}' on GPU:{}: {} steps ({} loops fusing {} nodes, {} kernels, launched as '{}'), arena {} B; lower "
        "{:.0f} us, NVRTC {:.0f} us, load {:.0f} us; total {:.0f} us",
        graph_->name, device_, plan_.steps.size(), stats_.loops, stats_.fused_nodes,
        launch_ == Launch::Block ? size_t(1) : steps.size(), stats_.gpu_launch, plan_.arena_bytes, stats_.lower_us,
        stats_.codegen_us, stats_.load_us, micros_since(t0));
    if (!plan_.fallbacks.empty()) {
      std::string list;
      for (const auto& f : plan_.fallbacks) list += (list.empty() ? "" : ", ") + f;
      logging::info("[cuda] '{}': {} node(s) run as eager GPU ops: {}", graph_->name, plan_.fallbacks.size(), list);
    }
  }

  ~Program() {
    cuda_graph_.reset();  // its launches use this module's kernels (it waits for its replays)
    for (CUevent e : events_) ::kiln::cuda::driver().cuEventDestroy(e);
    if (!module_) return;
    // kernels of this module may still be queued; a failure here was (or will be) reported to
    // the call that queued them
    try {
      ::kiln::cuda::synchronize(device_, graph_->name);
      ::kiln::cuda::driver().cuModuleUnload(module_);
    } catch (const Error&) {
    }
  }

  Program(const Program&) = delete;
  Program& operator=(const Program&) = delete;

  const BackendStats& stats() const { return stats_; }

  ops::TensorList run(std::span<const Tensor> inputs) const {
    const ir::Graph& g = *graph_;
    ::kiln::cuda::set_device(device_);
    Call c;
    // inputs and variables elsewhere are copied to this GPU; results are fresh GPU tensors
    for (const Tensor& t : inputs) c.args.push_back(t.device() == gpu_ ? t : t.to(gpu_));
    for (const auto& slot : g.variables) {
      std::shared_ptr<VariableImpl> v = slot.var.lock();
      if (!v)
        fail<FailedPrecondition>(g.name, "variable '", slot.name,
                                 "' captured by this function no longer exists (it was destroyed after tracing)");
      Tensor value = v->value();
      c.args.push_back(value.device() == gpu_ ? value : value.to(gpu_));
    }
    for (const Buffer* b : result_buffers_) c.outs.push_back(Tensor::empty(b->shape, b->dtype, gpu_));
    if (g_profiling.load(std::memory_order_relaxed))
      run_profiled(c);
    else
      run_launch(c);
    for (auto [slot, id] : plan_.assigns) {
      std::shared_ptr<VariableImpl> v = g.variables[size_t(slot)].var.lock();
      if (!v) continue;
      Tensor value = tensor_of(id, v->shape(), c);
      // a fresh result on the variable's device becomes its value; anything else is copied
      if (plan_.buffers[size_t(id)].kind == Buffer::Kind::Result && v->device() == gpu_)
        v->replace(std::move(value));
      else
        v->write(value);
    }
    ops::TensorList out;
    for (const cpu::OutputRef& o : plan_.outputs) out.push_back(tensor_of(o.buffer, o.shape, c));
    return out;
  }

 private:
  struct Kernel {
    CUfunction fn = nullptr;
    CUfunction fn_v4 = nullptr;      // loops: the 4-wide twin (cuda::loop_vectorizable), if any
    std::vector<int> params;         // loops: the buffers passed, in order
    int64_t elements = 0;            // loops: the grid-stride loop's length
    ops::cuda::ReduceLayout layout;  // reductions
    ops::cuda::ReducePlan spread;    // reductions: Rows runs this module's kernel, the others reduce_on_device
    long long outputs = 0;
    unsigned threads = 0, blocks = 0;  // reductions, and loops with row reductions (blocks > 0)
  };

  // What one call works on: the buffers' tensors and the arena.
  struct Call {
    SmallVector<Tensor, 16> args, outs;
    Ref<Storage> arena;
  };

  // The eager reduction kernel's layout of [outer, reduced, inner] (input strides), and its
  // launch: a block per output element (as many as 2^20, then blocks stride), a power of two
  // from 32 to 256 threads.
  static void set_reduce_layout(const cpu::ReduceStep& r, Kernel& k) {
    ops::cuda::ReduceLayout& l = k.layout;
    auto out_axis = [&](int64_t d, int64_t stride) {
      if (d == 1) return;
      l.out_dims[l.rank_out] = d;
      l.out_strides[l.rank_out++] = stride;
    };
    out_axis(r.outer, r.reduced * r.inner);
    out_axis(r.inner, 1);
    if (r.reduced != 1) {
      l.red_dims[0] = r.reduced;
      l.red_strides[0] = r.inner;
      l.rank_red = 1;
    }
    l.count = r.reduced;
    k.outputs = r.outer * r.inner;
    k.threads = 32;
    while (k.threads < 256 && k.threads < uint64_t(r.reduced)) k.threads *= 2;
    k.blocks = unsigned(std::min<long long>(k.outputs, 1 << 20));
  }

  // Lowers the graph again with what the CUDA backend fuses beyond lower_options(): reductions
  // over a loop's trailing dims join the loop (a thread block per row: row_reduce_kernel), and
  // the loops that only add a bias or a tensor of the result's shape to a float32 matmul, or
  // scale it, become its cuBLASLt epilogue (LowerOptions::Epilogues::Affine). Without the
  // epilogues when cuBLASLt does not plan one of them; the plan stays as it was when a loop's
  // reductions are not rows.
  void relower() {
    std::string why;
    for (auto epilogues : {cpu::LowerOptions::Epilogues::Affine, cpu::LowerOptions::Epilogues::None}) {
      cpu::LowerOptions o = cuda::lower_options();
      o.epilogues = epilogues;
      o.fuse_reductions = true;
      o.row_reductions_only = true;
      o.split_rows = ops::cuda::kReduceSplitMaxOutputs;
      o.split_length = ops::cuda::kReduceSplitMinCount;
      cpu::Plan fused = cpu::lower(*graph_, o);
      for (const Step* k : cuda::kernel_steps(fused))
        if (k->kind == Step::Kind::Loop && !k->loop.reduces.empty() && !cpu::row_reduction(k->loop)) {
          logging::debug("[cuda] '{}': reductions stay steps of their own: {} is not a row reduction", graph_->name,
                         cpu::describe(*k));
          return;
        }
      std::unordered_map<const Step*, LtStep> lts;
      std::function<bool(const std::vector<Step>&)> plan_all = [&](const std::vector<Step>& list) {
        for (const Step& s : list) {
          if ((s.kind == Step::Kind::Cond || s.kind == Step::Kind::While) &&
              (!plan_all(s.control.first) || !plan_all(s.control.second)))
            return false;
          if (s.kind != Step::Kind::MatMul || s.matmul.epilogue.empty()) continue;
          const cpu::MatMulStep& mm = s.matmul;
          const cpu::AffineEpilogue form = *cpu::affine_epilogue(mm.epilogue);
          ops::cuda::LtMatmulShape shape{DType::Float32, mm.m,       mm.n,      mm.k,
                                         mm.batch,       mm.ta,      mm.tb,     mm.a_stride,
                                         mm.b_stride,    form.alpha, form.beta, form.bias >= 0};
          auto lt = ops::cuda::LtMatmul::plan(device_, shape, &why);
          if (!lt) return false;
          lts.emplace(&s, LtStep{std::move(lt), form});
        }
        return true;
      };
      if (!plan_all(fused.steps)) {
        logging::debug("[cuda] '{}': matmul epilogues stay loops: {}", graph_->name, why);
        continue;
      }
      plan_ = std::move(fused);  // moving the step vectors keeps the steps' addresses
      lt_ = std::move(lts);
      return;
    }
  }

  // Compiles `source` (or finds it in the code cache) and loads it as this program's module.
  void load_module(const std::string& source) {
    auto t0 = std::chrono::steady_clock::now();
    const std::string cubin =
        ops::cuda::cached_cubin(source, graph_->name, ::kiln::cuda::compute_capability(device_), &stats_.code_source);
    stats_.codegen_us = micros_since(t0);
    g_programs_compiled.fetch_add(1, std::memory_order_relaxed);
    t0 = std::chrono::steady_clock::now();
    ::kiln::cuda::set_device(device_);
    ::kiln::cuda::check(::kiln::cuda::driver().cuModuleLoadData(&module_, cubin.data()), graph_->name,
                        "cuModuleLoadData");
    stats_.load_us = micros_since(t0);
  }

  CUfunction function(const std::string& name) const {
    CUfunction fn = nullptr;
    ::kiln::cuda::check(::kiln::cuda::driver().cuModuleGetFunction(&fn, module_, name.c_str()), graph_->name,
                        "cuModuleGetFunction");
    return fn;
  }

  // Whether the launches of a call can be captured into a CUDA graph: only kernels and library
  // calls (no eager fallbacks, which allocate; no cond/while, decided by reading the GPU), and
  // what the call returns or assigns lives in its own buffers, not in the graph's arena.
  // KILN_CUDA_GRAPHS=0 turns replays off, =1 replays every capturable plan; otherwise
  // graph_pays() decides.
  bool capturable() const {
    const char* env = std::getenv("KILN_CUDA_GRAPHS");
    const std::string_view mode = env ? env : "";
    if (mode == "0") return false;
    for (const Step& s : plan_.steps)
      if (s.kind != Step::Kind::Loop && s.kind != Step::Kind::Reduce && s.kind != Step::Kind::MatMul) return false;
    auto temp = [&](int id) { return plan_.buffers[size_t(id)].kind == Buffer::Kind::Temp; };
    for (const cpu::OutputRef& o : plan_.outputs)
      if (temp(o.buffer)) return false;
    for (auto [slot, id] : plan_.assigns)
      if (temp(id)) return false;
    return mode == "1" || graph_pays();
  }

  // Whether a replay should beat queueing the steps, by a model of the GPU: queueing costs a
  // launch (about 2.5 us of host time) per step, which the GPU hides when its own work takes
  // longer; a replay is three launches, but copies the arguments in and the results out. So
  // the MLP step at batch 64 (about 30 launches, microseconds of GPU work, 2 MB of copies)
  // replays, and relu(x * a + b) * c on 64M floats (one launch, 256 MB to copy) does not.
  bool graph_pays() const {
    constexpr double kLaunchUs = 2.5, kBytesPerUs = 2.5e6, kFlopsPerUs = 4e7;  // 2.5 TB/s, 40 TFLOP/s
    double gpu_us = 0, copy_bytes = 0;
    auto bytes = [&](int id) { return double(plan_.buffers[size_t(id)].bytes()); };
    for (const Step& s : plan_.steps) {
      if (s.kind == Step::Kind::Loop) {
        for (int b : cuda::loop_kernel_buffers(s.loop)) gpu_us += bytes(b) / kBytesPerUs;
      } else if (s.kind == Step::Kind::Reduce) {
        gpu_us += (bytes(s.reduce.in) + bytes(s.reduce.out)) / kBytesPerUs;
      } else {
        const cpu::MatMulStep& mm = s.matmul;
        gpu_us += (bytes(mm.a) + bytes(mm.b) + bytes(mm.out)) / kBytesPerUs +
                  2.0 * double(mm.m * mm.n * mm.k * mm.batch) / kFlopsPerUs;
        for (const cpu::PostOp& p : mm.epilogue)
          if (p.buffer >= 0) gpu_us += bytes(p.buffer) / kBytesPerUs;
      }
    }
    for (const Buffer& b : plan_.buffers)
      if (b.kind == Buffer::Kind::Arg || b.kind == Buffer::Kind::Result) copy_bytes += double(b.bytes());
    const double queued = std::max(double(plan_.steps.size()) * kLaunchUs, gpu_us);
    const double replayed = std::max(3 * kLaunchUs, gpu_us + 2 * copy_bytes / kBytesPerUs);
    return replayed < queued;
  }

  // A call the way launch_ says.
  void run_launch(Call& c) const {
    switch (launch_) {
      case Launch::Block:
        run_block(c);
        break;
      case Launch::Graph:
        if (replay(c)) break;
        [[fallthrough]];
      case Launch::Stream:
        if (plan_.arena_bytes) c.arena = Storage::allocate(plan_.arena_bytes, gpu_);
        run_steps(plan_.steps, c);
        warm_.store(true, std::memory_order_release);
        break;
    }
  }

  // A profiled call (cuda::set_profiling): the single-block kernel or each top-level step
  // queued between CUDA events, waited for, and each step's GPU time added to the profile.
  void run_profiled(Call& c) const {
    const ::kiln::cuda::DriverApi& d = ::kiln::cuda::driver();
    std::lock_guard lock(profile_mu_);  // the events are the program's
    const size_t n = launch_ == Launch::Block ? 1 : plan_.steps.size();
    auto check = [&](CUresult r, const char* call) { ::kiln::cuda::check(r, graph_->name, call); };
    while (events_.size() < n + 1) {
      CUevent e = nullptr;
      check(d.cuEventCreate(&e, CU_EVENT_DEFAULT), "cuEventCreate");
      events_.push_back(e);
    }
    auto stream = static_cast<CUstream>(::kiln::cuda::stream(device_));
    check(d.cuEventRecord(events_[0], stream), "cuEventRecord");
    if (launch_ == Launch::Block) {
      run_block(c);
      check(d.cuEventRecord(events_[1], stream), "cuEventRecord");
    } else {
      if (plan_.arena_bytes) c.arena = Storage::allocate(plan_.arena_bytes, gpu_);
      for (size_t i = 0; i < n; ++i) {
        run_steps({&plan_.steps[i], 1}, c);
        check(d.cuEventRecord(events_[i + 1], stream), "cuEventRecord");
      }
      warm_.store(true, std::memory_order_release);
    }
    check(d.cuEventSynchronize(events_[n]), "cuEventSynchronize");
    std::lock_guard profile_lock(g_profile_mu);
    for (size_t i = 0; i < n; ++i) {
      float ms = 0;
      check(d.cuEventElapsedTime(&ms, events_[i], events_[i + 1]), "cuEventElapsedTime");
      ProfiledStep& p = g_profile[{serial_, i}];
      if (p.calls == 0) {
        p.function = graph_->name;
        p.step = launch_ == Launch::Block ? "block program (" + std::to_string(plan_.steps.size()) + " steps)"
                                          : cpu::describe(plan_.steps[i]);
      }
      p.us += 1e3 * double(ms);
      ++p.calls;
    }
  }

  // The single-block program: one launch.
  void run_block(Call& c) const {
    SmallVector<void*, 16> ptrs, args;
    for (int b : block_.params) ptrs.push_back(ptr(b, c));
    if (!block_.shared_arena && plan_.arena_bytes) {
      c.arena = Storage::allocate(plan_.arena_bytes, gpu_);
      ptrs.push_back(c.arena->data());
    }
    for (void*& p : ptrs) args.push_back(&p);
    ops::cuda::launch_blocks(graph_->name, device_, block_fn_, 1, block_.threads, args.data());
  }

  // A call through the CUDA graph: the arguments copied into the graph's own buffers, the graph
  // replayed, its results copied into the call's. The graph is captured on the first call after
  // one that ran the steps directly (which compiled any kernel they need and made the cuBLAS
  // handle, neither of which a capture may do). False when there is no graph (yet, or the
  // capture failed): the caller runs the steps.
  bool replay(Call& c) const {
    std::lock_guard lock(graph_mu_);  // one call at a time in the graph's buffers
    if (!cuda_graph_) {
      if (capture_failed_ || !warm_.load(std::memory_order_acquire)) return false;
      capture(c);
      if (!cuda_graph_) return false;
    }
    SmallVector<ops::cuda::DeviceCopy, 16> in, out;
    for (size_t i = 0; i < c.args.size(); ++i)
      in.push_back({const_cast<void*>(fixed_.args[i].device_data()), c.args[i].device_data(), c.args[i].nbytes()});
    for (size_t i = 0; i < c.outs.size(); ++i)
      out.push_back({const_cast<void*>(c.outs[i].device_data()), fixed_.outs[i].device_data(), c.outs[i].nbytes()});
    ops::cuda::copy_many_on_device(graph_->name, device_, {in.data(), in.size()});
    cuda_graph_->launch(graph_->name);
    ops::cuda::copy_many_on_device(graph_->name, device_, {out.data(), out.size()});
    g_graph_replays.fetch_add(1, std::memory_order_relaxed);
    return true;
  }

  // Captures the steps working on buffers of the graph's own (allocated first: nothing may be
  // allocated while capturing). A failure is logged and the program keeps running its steps.
  void capture(const Call& c) const {
    try {
      Call fixed;
      for (const Tensor& t : c.args) fixed.args.push_back(Tensor::empty(t.shape(), t.dtype(), gpu_));
      for (const Tensor& t : c.outs) fixed.outs.push_back(Tensor::empty(t.shape(), t.dtype(), gpu_));
      if (plan_.arena_bytes) fixed.arena = Storage::allocate(plan_.arena_bytes, gpu_);
      cuda_graph_ = ::kiln::cuda::capture_graph(device_, graph_->name, [&] { run_steps(plan_.steps, fixed); });
      fixed_ = std::move(fixed);
      g_graphs_captured.fetch_add(1, std::memory_order_relaxed);
    } catch (const Error& e) {
      capture_failed_ = true;
      logging::warn("[cuda] '{}' could not be captured into a CUDA graph; its kernels are queued one by one: {}",
                    graph_->name, e.what());
    }
  }

  void* ptr(int id, const Call& c) const {
    const Buffer& b = plan_.buffers[size_t(id)];
    switch (b.kind) {
      case Buffer::Kind::Arg:
        return const_cast<void*>(c.args[size_t(b.index)].device_data());
      case Buffer::Kind::Constant:
        return const_cast<void*>(constants_[size_t(b.index)].device_data());
      case Buffer::Kind::Result:
        return const_cast<void*>(c.outs[size_t(b.index)].device_data());
      case Buffer::Kind::Temp:
        break;
    }
    return c.arena ? static_cast<char*>(c.arena->data()) + b.index : nullptr;
  }

  // Buffer `id` as a GPU tensor of `shape` (views of the call's tensors and arena).
  Tensor tensor_of(int id, const Shape& shape, const Call& c) const {
    const Buffer& b = plan_.buffers[size_t(id)];
    switch (b.kind) {
      case Buffer::Kind::Arg:
        return view_as(c.args[size_t(b.index)], shape);
      case Buffer::Kind::Constant:
        return view_as(constants_[size_t(b.index)], shape);
      case Buffer::Kind::Result:
        return view_as(c.outs[size_t(b.index)], shape);
      case Buffer::Kind::Temp:
        break;
    }
    if (!c.arena) return Tensor::empty(shape, b.dtype, gpu_);  // an empty buffer in an empty arena
    auto impl = make_ref<TensorImpl>();
    impl->dtype = b.dtype;
    impl->shape = shape;
    impl->numel = shape.num_elements();
    impl->storage = c.arena;
    impl->offset = size_t(b.index);
    impl->device = gpu_;  // device memory: eager ops on it must run on the GPU
    return Tensor(std::move(impl));
  }

  void run_steps(std::span<const Step> list, Call& c) const {
    for (const Step& s : list) {
      switch (s.kind) {
        case Step::Kind::Loop: {
          const Kernel& k = kernels_.at(&s);
          if (k.elements == 0) break;
          SmallVector<void*, 16> ptrs, args;
          bool aligned = k.fn_v4 != nullptr;
          for (int b : k.params) {
            ptrs.push_back(ptr(b, c));
            aligned = aligned && reinterpret_cast<uintptr_t>(ptrs.back()) % 16 == 0;
          }
          for (void*& p : ptrs) args.push_back(&p);
          if (k.blocks > 0)  // a loop with row reductions
            ops::cuda::launch_blocks(graph_->name, device_, k.fn, k.blocks, k.threads, args.data());
          else
            ops::cuda::launch(graph_->name, device_, aligned ? k.fn_v4 : k.fn, aligned ? k.elements / 4 : k.elements,
                              args.data());
          break;
        }
        case Step::Kind::Reduce: {
          const Kernel& k = kernels_.at(&s);
          if (k.outputs == 0) break;
          if (k.spread.kind != ops::cuda::ReducePlan::Kind::Rows) {
            // few outputs of many elements, or columns: spread over blocks, partials in the scratch
            ops::cuda::reduce_on_device(graph_->name, device_, s.reduce.op, plan_.buffers[size_t(s.reduce.in)].dtype,
                                        ptr(s.reduce.in, c), ptr(s.reduce.out, c), k.outputs, k.layout, k.spread,
                                        scratch_ ? scratch_->data() : nullptr);
            break;
          }
          void* in = ptr(s.reduce.in, c);
          void* out = ptr(s.reduce.out, c);
          long long outputs = k.outputs;
          ops::cuda::ReduceLayout layout = k.layout;
          void* args[] = {&in, &out, &outputs, &layout};
          ops::cuda::launch_blocks(graph_->name, device_, k.fn, k.blocks, k.threads, args);
          break;
        }
        case Step::Kind::MatMul: {
          const cpu::MatMulStep& mm = s.matmul;
          if (!mm.epilogue.empty()) {
            const LtStep& lt = lt_.at(&s);
            lt.matmul->run(graph_->name, ptr(mm.a, c), ptr(mm.b, c), lt.form.add >= 0 ? ptr(lt.form.add, c) : nullptr,
                           lt.form.bias >= 0 ? ptr(lt.form.bias, c) : nullptr, ptr(mm.out, c));
            break;
          }
          ops::cuda::matmul_on_device(graph_->name, device_, plan_.buffers[size_t(mm.out)].dtype, ptr(mm.a, c),
                                      ptr(mm.b, c), ptr(mm.out, c), mm.m, mm.n, mm.k, mm.batch, mm.ta, mm.tb,
                                      mm.a_stride, mm.b_stride);
          break;
        }
        case Step::Kind::Fallback:
          run_fallback(s.fallback, c);
          break;
        case Step::Kind::Cond:
          run_steps(predicate(s.control.pred, c) ? s.control.first : s.control.second, c);
          break;
        case Step::Kind::While:
          for (;;) {
            run_steps(s.control.first, c);
            if (!predicate(s.control.pred, c)) break;
            run_steps(s.control.second, c);
          }
          break;
      }
    }
  }

  // A cond or while predicate, read back from the GPU (which waits for the steps before it).
  bool predicate(int id, const Call& c) const {
    const Buffer& b = plan_.buffers[size_t(id)];
    if (b.shape.num_elements() != 1)
      fail<InvalidArgument>("cond", "the predicate must have one element, got shape ", b.shape.to_string());
    if (b.dtype != DType::Bool) return false;  // as the interpreter
    uint8_t value = 0;
    ::kiln::cuda::copy_device_to_host(&value, ptr(id, c), 1, device_);
    return value != 0;
  }

  // A node the kernels do not cover: its eager op on this GPU (or its subgraphs, for cond and
  // while), the results copied into the planned buffers.
  void run_fallback(const cpu::FallbackStep& f, Call& c) const {
    const ir::Node& n = *f.node;
    SmallVector<Tensor, 4> in;
    for (size_t i = 0; i < f.ins.size(); ++i) in.push_back(tensor_of(f.ins[i], n.inputs[i]->type.shape, c));
    std::span<const Tensor> in_span(in.data(), in.size());
    ops::TensorList result;
    {
      DeviceScope scope(gpu_);  // the op runs here, and tensors it makes are placed here
      if (n.kind == ir::NodeKind::Op) {
        ops::TypeList types;
        for (const auto& o : n.outputs) types.push_back(o->type);
        result = ops::execute_eager(*n.def, n.attrs, in_span, types);
      } else {
        const auto& sub = subs_[size_t(f.id)];
        result = n.kind == ir::NodeKind::Cond ? run_cond(*sub[0], *sub[1], in_span)
                                              : run_while(*sub[0], *sub[1], in_span, n.outputs.size());
      }
    }
    for (size_t k = 0; k < n.outputs.size(); ++k) {
      const Buffer& b = plan_.buffers[size_t(f.outs[k])];
      Tensor r = result[k];
      if (r.num_elements() == 0) continue;
      if (r.nbytes() != b.bytes())
        fail<Internal>(graph_->name, n.name(), " returned ", r.nbytes(), " bytes for a buffer of ", b.bytes());
      if (r.device() != gpu_) r = r.to(gpu_);
      void* dst = ptr(f.outs[k], c);
      if (r.device_data() != dst) ::kiln::cuda::copy_device_to_device(dst, r.device_data(), r.nbytes(), device_);
    }
  }

  std::shared_ptr<const ir::Graph> root_, graph_;
  int device_;
  Device gpu_;
  Plan plan_;
  std::vector<const Buffer*> result_buffers_;         // by result index
  std::vector<std::array<Ref<Executable>, 2>> subs_;  // per fallback: its cond/while subgraphs
  std::vector<Tensor> constants_;                     // plan_.constants on the GPU
  CUmodule module_ = nullptr;
  std::unordered_map<const Step*, Kernel> kernels_;
  Ref<Storage> scratch_;  // the partials of split and column reductions (reduce_plan), shared by the steps
  // matmuls with epilogues: their cuBLASLt plan and the epilogue's form (affine_epilogue)
  struct LtStep {
    std::unique_ptr<ops::cuda::LtMatmul> matmul;
    cpu::AffineEpilogue form;
  };
  std::unordered_map<const Step*, LtStep> lt_;
  BackendStats stats_;
  enum class Launch { Block, Graph, Stream };
  Launch launch_ = Launch::Stream;
  cuda::BlockProgram block_;
  CUfunction block_fn_ = nullptr;
  // Launch::Graph: the captured graph and the buffers it works on
  mutable std::mutex graph_mu_;
  mutable std::atomic<bool> warm_{false};  // a call has run the steps
  mutable std::unique_ptr<::kiln::cuda::CapturedGraph> cuda_graph_;
  mutable bool capture_failed_ = false;
  mutable Call fixed_;
  // profiled calls: CUDA events around the steps, and this program's number in the profile
  mutable std::mutex profile_mu_;
  mutable std::vector<CUevent> events_;
  const uint64_t serial_ = g_next_serial.fetch_add(1, std::memory_order_relaxed);
};

class CudaExecutable final : public Executable {
 public:
  CudaExecutable(std::shared_ptr<const ir::Graph> root, const ir::Graph& g)
      : root_(std::move(root)), g_(g), static_(cpu::is_static(g)), interp_(make_interpreter(root_, g_)) {}

  std::string_view backend() const override { return "cuda"; }
  BackendStats stats() const override {
    std::shared_lock lock(mu_);
    return specs_.empty() ? BackendStats{} : specs_.front().program->stats();
  }

  ops::TensorList run(std::span<const Tensor> inputs) const override {
    const Device d = call_device(inputs);
    if (d.type == DeviceType::GPU)
      if (const Program* p = program(d.index, inputs)) return p->run(inputs);
    return interp_->run(inputs);
  }

 private:
  struct Spec {
    int device;
    std::vector<Shape> shapes;
    std::shared_ptr<Program> program;
  };

  static bool matches(const Spec& s, int device, std::span<const Tensor> inputs) {
    if (s.device != device) return false;
    for (size_t i = 0; i < s.shapes.size(); ++i)
      if (s.shapes[i] != inputs[i].shape()) return false;
    return true;
  }

  const Program* program(int device, std::span<const Tensor> inputs) const {
    {
      std::shared_lock lock(mu_);
      for (const Spec& s : specs_)
        if (matches(s, device, inputs)) return s.program.get();
      if (gave_up_) return nullptr;
    }
    std::unique_lock lock(mu_);
    for (const Spec& s : specs_)
      if (matches(s, device, inputs)) return s.program.get();
    if (gave_up_) return nullptr;
    if (specs_.size() >= kMaxSpecializations) {
      logging::warn("[cuda] '{}' has run with {} different input shapes; further new shapes run node by node", g_.name,
                    specs_.size());
      gave_up_ = true;
      return nullptr;
    }
    std::vector<Shape> key;
    for (const Tensor& t : inputs) key.push_back(t.shape());
    std::shared_ptr<const ir::Graph> graph;
    if (static_)
      graph = std::shared_ptr<const ir::Graph>(root_, &g_);  // the caller's graph, owned through the root
    else
      graph = cpu::specialize(g_, key);
    if (!graph) {
      logging::info("[cuda] '{}': some shapes depend on values; it runs node by node", g_.name);
      gave_up_ = true;
      return nullptr;
    }
    try {
      auto p = std::make_shared<Program>(static_ ? root_ : graph, graph, device);
      specs_.push_back({device, std::move(key), std::move(p)});
    } catch (const Internal& e) {
      logging::warn("[cuda] '{}' could not be compiled, it runs node by node: {}", g_.name, e.what());
      gave_up_ = true;
      return nullptr;
    } catch (const InvalidArgument& e) {  // NVRTC missing
      logging::warn("[cuda] '{}' could not be compiled, it runs node by node: {}", g_.name, e.what());
      gave_up_ = true;
      return nullptr;
    }
    return specs_.back().program.get();
  }

  std::shared_ptr<const ir::Graph> root_;
  const ir::Graph& g_;
  bool static_;
  Ref<Executable> interp_;
  mutable std::shared_mutex mu_;
  mutable std::vector<Spec> specs_;
  mutable bool gave_up_ = false;
};

}  // namespace

Ref<Executable> make_cuda(std::shared_ptr<const ir::Graph> root, const ir::Graph& graph) {
  return make_ref<CudaExecutable>(std::move(root), graph);
}

#else  // !KILN_WITH_CUDA

Ref<Executable> make_cuda(std::shared_ptr<const ir::Graph> root, const ir::Graph& graph) {
  return make_interpreter(std::move(root), graph);  // GPU calls cannot happen in this build
}

#endif

}  // namespace kiln::backend
