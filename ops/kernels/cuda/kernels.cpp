// Launching the eager GPU kernels: NVRTC and cuBLAS loaded with dlopen, a cache of compiled
// kernels per (device, kernel name), broadcasting set-up and the launch grid.
#include "ops/kernels/cuda/kernels.h"

#include <algorithm>

#include "runtime/errors.h"

#if KILN_WITH_CUDA
#include <cublas_v2.h>
#include <dlfcn.h>
#include <nvrtc.h>

#include <algorithm>
#include <atomic>
#include <functional>
#include <map>
#include <mutex>
#include <tuple>
#include <unordered_map>
#include <vector>

#include "ops/defs/reduce.h"
#include "ops/kernels/cuda/blas_lt.h"
#include "ops/kernels/cuda/launch.h"
#include "ops/kernels/cuda/source.h"
#include "runtime/code_cache.h"
#include "runtime/cuda/cuda.h"
#include "runtime/cuda/driver_api.h"
#include "runtime/errors.h"
#include "runtime/logging.h"
#endif

namespace kiln::ops::cuda {

// Host arithmetic only: also in builds without CUDA (tests check the plans anywhere).
ReducePlan reduce_plan(long long outputs, const ReduceLayout& r) {
  ReducePlan p;
  p.chunk = r.count;
  // `count` elements in at most `most` chunks of at least `least` (rounded to whole chunks)
  auto divide = [&](long long least, long long most) {
    p.splits = std::min<long long>((r.count + least - 1) / least, most);
    p.chunk = (r.count + p.splits - 1) / p.splits;
    p.splits = (r.count + p.chunk - 1) / p.chunk;
    if (p.splits > 1) p.scratch_bytes = size_t(outputs * p.splits) * 16;
  };
  // [outer, reduced, inner]: one reduced axis just outside a contiguous inner output axis
  const int ro = r.rank_out;
  if (r.rank_red == 1 && r.count > 1 && ro >= 1 && ro <= 2 && r.out_strides[ro - 1] == 1 && r.out_dims[ro - 1] >= 32 &&
      r.red_strides[0] == r.out_dims[ro - 1] && (ro == 1 || r.out_strides[0] == r.count * r.out_dims[1])) {
    p.kind = ReducePlan::Kind::Columns;
    p.inner = r.out_dims[ro - 1];
    p.outer = ro == 2 ? r.out_dims[0] : 1;
    divide(128, std::max<long long>(1, 1024 / ((p.inner + 31) / 32 * p.outer)));
  } else if (outputs < kReduceSplitMaxOutputs && r.count >= kReduceSplitMinCount) {
    p.kind = ReducePlan::Kind::Split;
    divide(8192, std::max<long long>(2, 1024 / outputs));
  }
  return p;
}

#if KILN_WITH_CUDA

namespace {

#define KILN_NVRTC_FUNCTIONS(X) \
  X(nvrtcCreateProgram)         \
  X(nvrtcCompileProgram)        \
  X(nvrtcDestroyProgram)        \
  X(nvrtcGetProgramLogSize)     \
  X(nvrtcGetProgramLog) X(nvrtcGetCUBINSize) X(nvrtcGetCUBIN) X(nvrtcGetErrorString) X(nvrtcVersion)
#define KILN_CUBLAS_FUNCTIONS(X) \
  X(cublasCreate_v2)             \
  X(cublasSetStream_v2)          \
  X(cublasSetWorkspace_v2) X(cublasSetMathMode) X(cublasSgemmStridedBatched) X(cublasDgemmStridedBatched)

struct Nvrtc {
#define KILN_MEMBER(name) decltype(&::name) name = nullptr;
  KILN_NVRTC_FUNCTIONS(KILN_MEMBER)
  std::string error;
  std::string identity;  // the library's file and version, for cache keys
};
struct Cublas {
  KILN_CUBLAS_FUNCTIONS(KILN_MEMBER)
#undef KILN_MEMBER
  std::string error;
};

const Nvrtc& nvrtc() {
  static const Nvrtc* api = [] {
    auto* t = new Nvrtc();
    std::string err;
    void* lib = kiln::cuda::open_library({"libnvrtc.so." KILN_CUDA_STR(KILN_CUDA_TOOLKIT_MAJOR), "libnvrtc.so"}, err);
    if (!lib) {
      t->error = "NVRTC (libnvrtc.so) is not installed: " + err;
      return t;
    }
    KILN_NVRTC_FUNCTIONS(KILN_CUDA_RESOLVE)
    if (t->error.empty()) {
      int major = 0, minor = 0;
      t->nvrtcVersion(&major, &minor);
      Dl_info info{};
      dladdr(reinterpret_cast<void*>(t->nvrtcCompileProgram), &info);
      t->identity = std::string(info.dli_fname ? info.dli_fname : "nvrtc") + " " + std::to_string(major) + "." +
                    std::to_string(minor);
    }
    return t;
  }();
  return *api;
}

const Cublas& cublas() {
  static const Cublas* api = [] {
    auto* t = new Cublas();
    std::string err;
    void* lib = kiln::cuda::open_library({"libcublas.so." KILN_CUDA_STR(KILN_CUDA_TOOLKIT_MAJOR), "libcublas.so"}, err);
    if (!lib) {
      t->error = "cuBLAS (libcublas.so) is not installed: " + err;
      return t;
    }
    KILN_CUBLAS_FUNCTIONS(KILN_CUDA_RESOLVE)
    return t;
  }();
  if (!api->error.empty()) fail<InvalidArgument>("matmul", api->error);
  return *api;
}

// Compiled kernels by device and name; modules stay loaded for the life of the process.
struct KernelCache {
  std::mutex mu;
  std::unordered_map<std::string, CUfunction> functions;
};

KernelCache& kernel_cache() {
  static auto* c = new KernelCache();
  return *c;
}

}  // namespace

CUfunction get_kernel(int device, const std::string& name, const std::function<std::string()>& make_source) {
  KernelCache& cache = kernel_cache();
  const std::string key = std::to_string(device) + "/" + name;
  {
    std::lock_guard lock(cache.mu);
    if (auto it = cache.functions.find(key); it != cache.functions.end()) return it->second;
  }
  // compile outside the lock: NVRTC takes a while and other kernels may be wanted meanwhile
  std::string cubin = cached_cubin(gpu_prelude() + make_source(), name, kiln::cuda::compute_capability(device));
  kiln::cuda::set_device(device);
  const auto& api = kiln::cuda::driver();
  std::lock_guard lock(cache.mu);
  if (auto it = cache.functions.find(key); it != cache.functions.end()) return it->second;
  CUmodule module = nullptr;
  kiln::cuda::check(api.cuModuleLoadData(&module, cubin.data()), "cuda", "cuModuleLoadData");
  CUfunction fn = nullptr;
  kiln::cuda::check(api.cuModuleGetFunction(&fn, module, name.c_str()), "cuda", "cuModuleGetFunction");
  cache.functions.emplace(key, fn);
  return fn;
}

void launch_blocks(std::string_view who, int device, CUfunction fn, unsigned blocks, unsigned threads, void** args) {
  kiln::cuda::check(
      kiln::cuda::driver().cuLaunchKernel(fn, blocks, 1, 1, threads, 1, 1, 0,
                                          static_cast<CUstream>(kiln::cuda::stream(device)), args, nullptr),
      who, "cuLaunchKernel");
}

void launch(std::string_view who, int device, CUfunction fn, int64_t n, void** args) {
  if (n == 0) return;
  constexpr int64_t kBlock = 256, kMaxBlocks = 65536;
  launch_blocks(who, device, fn, static_cast<unsigned>(std::min((n + kBlock - 1) / kBlock, kMaxBlocks)),
                unsigned(kBlock), args);
}

std::string kernel_name(std::string_view kind, std::string_view op, DType a, DType b) {
  return "kiln_" + std::string(kind) + "_" + std::string(op) + "_" + std::string(dtype_name(a)) + "_" +
         std::string(dtype_name(b));
}

namespace {

void check_supported(const OpDef& def, DType in) {
  if (!gpu_elementwise_supported(def.id, in))
    fail<Unimplemented>(def.name, "has no GPU kernel for ", dtype_name(in), " in this build");
}

void kernel_unary(KernelContext& ctx) {
  const Tensor& x = ctx.inputs[0];
  check_supported(ctx.def, x.dtype());
  Tensor& y = ctx.output(0);
  const int dev = x.device().index;
  std::string name = kernel_name("unary", ctx.def.name, x.dtype(), y.dtype());
  CUfunction fn = get_kernel(dev, name, [&] { return unary_kernel_source(ctx.def.id, x.dtype(), y.dtype(), name); });
  void* a = data_ptr(x);
  void* o = data_ptr(y);
  long long n = y.num_elements();
  void* args[] = {&a, &o, &n};
  launch(ctx.def.name, dev, fn, n, args);
}

// The broadcast layout of a binary op: output dims with input strides (0 on broadcast axes),
// adjacent axes merged where both inputs are contiguous across them.
struct Broadcast {
  int rank;
  long long dims[kMaxGpuRank];
  long long sa[kMaxGpuRank];
  long long sb[kMaxGpuRank];
};

Broadcast broadcast_layout(std::string_view who, const Shape& out, const Shape& a, const Shape& b) {
  Broadcast bc{};
  if (a == b) return bc;  // rank 0: same index everywhere
  // one side a single element (x * 2.0f): no index arithmetic per element
  if (b.num_elements() == 1 && a == out) {
    bc.rank = -1;
    return bc;
  }
  if (a.num_elements() == 1 && b == out) {
    bc.rank = -2;
    return bc;
  }
  const int64_t r = out.rank();
  std::vector<long long> dims, sa, sb;
  auto strides = [&](const Shape& s) {
    std::vector<long long> st(size_t(r), 0);
    long long acc = 1;
    for (int64_t i = s.rank() - 1; i >= 0; --i) {
      st[size_t(r - s.rank() + i)] = s.dim(i) == 1 ? 0 : acc;
      acc *= s.dim(i);
    }
    return st;
  };
  std::vector<long long> all_a = strides(a), all_b = strides(b);
  for (int64_t i = 0; i < r; ++i) {
    long long d = out.dim(i);
    if (d == 1) continue;
    if (!dims.empty() && sa.back() == all_a[size_t(i)] * d && sb.back() == all_b[size_t(i)] * d) {
      dims.back() *= d;
      sa.back() = all_a[size_t(i)];
      sb.back() = all_b[size_t(i)];
      continue;
    }
    dims.push_back(d);
    sa.push_back(all_a[size_t(i)]);
    sb.push_back(all_b[size_t(i)]);
  }
  if (dims.size() > size_t(kMaxGpuRank))
    fail<Unimplemented>(who, "broadcasting ", a.to_string(), " with ", b.to_string(), " needs ", dims.size(),
                        " axes on the GPU, more than ", kMaxGpuRank);
  if (dims.empty()) {  // every dim is 1
    dims.push_back(1);
    sa.push_back(0);
    sb.push_back(0);
  }
  bc.rank = int(dims.size());
  for (size_t i = 0; i < dims.size(); ++i) {
    bc.dims[i] = dims[i];
    bc.sa[i] = sa[i];
    bc.sb[i] = sb[i];
  }
  return bc;
}

void kernel_binary(KernelContext& ctx) {
  const Tensor &x = ctx.inputs[0], &y = ctx.inputs[1];
  check_supported(ctx.def, x.dtype());
  Tensor& out = ctx.output(0);
  const int dev = out.device().index;
  std::string name = kernel_name("binary", ctx.def.name, x.dtype(), out.dtype());
  CUfunction fn = get_kernel(dev, name, [&] { return binary_kernel_source(ctx.def.id, x.dtype(), out.dtype(), name); });
  Broadcast bc = broadcast_layout(ctx.def.name, out.shape(), x.shape(), y.shape());
  // integer division and powers report bad divisors through a flag the host reads back
  const bool checked = is_integer(x.dtype()) && (ctx.def.id == OpId::FloorDiv || ctx.def.id == OpId::Mod ||
                                                 (ctx.def.id == OpId::Pow && is_signed_integer(x.dtype())));
  Tensor flag;
  void* err = nullptr;
  if (checked) {
    flag = Tensor::empty(Shape{}, DType::Int32, out.device());
    err = data_ptr(flag);
    kiln::cuda::check(kiln::cuda::driver().cuMemsetD8Async(reinterpret_cast<CUdeviceptr>(err), 0, 4,
                                                           static_cast<CUstream>(kiln::cuda::stream(dev))),
                      ctx.def.name, "cuMemsetD8Async");
  }
  void* a = data_ptr(x);
  void* b = data_ptr(y);
  void* o = data_ptr(out);
  long long n = out.num_elements();
  void* args[] = {&a, &b, &o, &n, &bc, &err};
  launch(ctx.def.name, dev, fn, n, args);
  if (checked) {
    int32_t code = 0;
    kiln::cuda::copy_device_to_host(&code, err, sizeof(code), dev);
    if (code == 1) fail<InvalidArgument>(ctx.def.name, "integer division by zero");
    if (code == 2) fail<InvalidArgument>(ctx.def.name, "integers to negative integer powers are not allowed");
  }
}

void kernel_cast(KernelContext& ctx) {
  const Tensor& x = ctx.inputs[0];
  Tensor& y = ctx.output(0);
  if (is_complex(x.dtype()) || is_complex(y.dtype()) || x.dtype() == DType::String)
    fail<Unimplemented>("cast", "casting ", dtype_name(x.dtype()), " to ", dtype_name(y.dtype()),
                        " has no GPU kernel in this build");
  const int dev = x.device().index;
  std::string name = kernel_name("cast", "cast", x.dtype(), y.dtype());
  CUfunction fn = get_kernel(dev, name, [&] { return cast_kernel_source(x.dtype(), y.dtype(), name); });
  void* a = data_ptr(x);
  void* o = data_ptr(y);
  long long n = y.num_elements();
  void* args[] = {&a, &o, &n};
  launch("cast", dev, fn, n, args);
}

void kernel_reduce(KernelContext& ctx) {
  const Tensor& x = ctx.inputs[0];
  if (!gpu_reduce_supported(ctx.def.id, x.dtype()))
    fail<Unimplemented>(ctx.def.name, "has no GPU kernel for ", dtype_name(x.dtype()), " in this build");
  Tensor& out = ctx.output(0);
  const std::vector<int64_t> axes = normalize_reduction_axes(ctx.def.name, ctx.attrs.get_ints("axes"), x.ndim());
  std::vector<bool> reduced(size_t(x.ndim()), false);
  for (int64_t a : axes) reduced[size_t(a)] = true;
  ReduceLayout r;
  long long stride = 1;
  for (int64_t i = x.ndim() - 1; i >= 0; --i) {  // innermost first, then reversed below
    const long long d = x.shape().dim(i);
    if (reduced[size_t(i)]) r.count *= d;
    if (d != 1) {
      int& rank = reduced[size_t(i)] ? r.rank_red : r.rank_out;
      if (rank == kMaxGpuRank)
        fail<Unimplemented>(ctx.def.name, "reducing ", x.shape().to_string(), " over ", axes.size(),
                            " axes has no GPU kernel (more than ", kMaxGpuRank, " axes)");
      (reduced[size_t(i)] ? r.red_dims : r.out_dims)[rank] = d;
      (reduced[size_t(i)] ? r.red_strides : r.out_strides)[rank] = stride;
      ++rank;
    }
    stride *= d;
  }
  std::reverse(r.out_dims, r.out_dims + r.rank_out);
  std::reverse(r.out_strides, r.out_strides + r.rank_out);
  std::reverse(r.red_dims, r.red_dims + r.rank_red);
  std::reverse(r.red_strides, r.red_strides + r.rank_red);
  const long long outputs = out.num_elements();
  if (outputs == 0) return;
  const ReducePlan plan = reduce_plan(outputs, r);
  Tensor scratch;  // freed in stream order: safe while the kernels still use it
  if (plan.scratch_bytes) scratch = Tensor::empty({int64_t(plan.scratch_bytes)}, DType::UInt8, out.device());
  reduce_on_device(ctx.def.name, out.device().index, ctx.def.id, x.dtype(), x.device_data(), data_ptr(out), outputs, r,
                   plan, scratch.defined() ? data_ptr(scratch) : nullptr);
}

// One cuBLAS handle per device, used under its lock (handles are not thread-safe), with a
// workspace of its own: cuBLAS would otherwise take one from its pool, which a CUDA graph
// capture cannot replay. Setting a stream resets the workspace, so both change together.
struct BlasHandle {
  static constexpr size_t kWorkspaceBytes = size_t(32) << 20;  // cuBLAS's advice for Hopper
  std::mutex mu;
  cublasHandle_t handle = nullptr;
  void* workspace = nullptr;
  cudaStream_t stream = nullptr;
};

BlasHandle& blas_handle(int dev) {
  static std::mutex mu;
  static std::unordered_map<int, BlasHandle*> handles;
  std::lock_guard lock(mu);
  BlasHandle*& h = handles[dev];
  if (!h) {
    const Cublas& api = cublas();
    kiln::cuda::set_device(dev);
    auto* fresh = new BlasHandle();
    if (api.cublasCreate_v2(&fresh->handle) != CUBLAS_STATUS_SUCCESS)
      fail<Internal>("matmul", "cublasCreate failed on GPU:", dev);
    // float32 stays float32: no TF32 tensor-core rounding (CUBLAS_DEFAULT_MATH allows none)
    api.cublasSetMathMode(fresh->handle, CUBLAS_PEDANTIC_MATH);
    fresh->workspace = kiln::cuda::device_alloc(BlasHandle::kWorkspaceBytes, dev);  // kept for the process
    h = fresh;
  }
  return *h;
}

// The cuBLASLt plans of 16-bit float matmuls by device and shape; null where cuBLASLt offers
// none (the generated kernel runs). A program of many shapes starts over after 256 of them.
std::shared_ptr<const LtMatmul> half_matmul_plan(int device, const LtMatmulShape& s) {
  using Key = std::tuple<int, DType, int64_t, int64_t, int64_t, int64_t, bool, bool, int64_t, int64_t>;
  static std::mutex mu;
  static std::map<Key, std::shared_ptr<const LtMatmul>> plans;
  const Key key{device, s.dtype, s.m, s.n, s.k, s.batches, s.ta, s.tb, s.a_stride, s.b_stride};
  std::lock_guard lock(mu);
  if (auto it = plans.find(key); it != plans.end()) return it->second;
  if (plans.size() >= 256) plans.clear();
  std::string why;
  std::shared_ptr<const LtMatmul> plan = LtMatmul::plan(device, s, &why);
  if (!plan)
    logging::debug("[cuda] no cuBLASLt matmul for {} {}x{}x{}x{}: {}", dtype_name(s.dtype), s.batches, s.m, s.n, s.k,
                   why);
  plans.emplace(key, plan);
  return plan;
}

struct MatmulShape {
  long long m, n, k, batches;
  int ta, tb;
  long long sa, sb;
};

void kernel_matmul(KernelContext& ctx) {
  const Tensor &a = ctx.inputs[0], &b = ctx.inputs[1];
  Tensor& out = ctx.output(0);
  const bool ta = ctx.attrs.get_bool("transpose_a"), tb = ctx.attrs.get_bool("transpose_b");
  const DType dt = out.dtype();
  if (is_complex(dt) || dt == DType::Bool)
    fail<Unimplemented>("matmul", "matmul of ", dtype_name(dt), " has no GPU kernel in this build");
  const int64_t m = out.shape().dim(out.ndim() - 2), n = out.shape().dim(out.ndim() - 1);
  const int64_t k = ta ? a.shape().dim(a.ndim() - 2) : a.shape().dim(a.ndim() - 1);
  const int64_t batches = m * n == 0 ? 0 : out.num_elements() / (m * n);
  // operands repeat along broadcast batch axes only when they have no batch axes at all
  auto batch_stride = [&](const Tensor& t) -> int64_t {
    int64_t mats = t.num_elements() / std::max<int64_t>(1, t.shape().dim(t.ndim() - 1) * t.shape().dim(t.ndim() - 2));
    if (mats == batches) return t.shape().dim(t.ndim() - 1) * t.shape().dim(t.ndim() - 2);
    if (mats == 1) return 0;
    fail<Unimplemented>("matmul", "broadcasting batch axes ", a.shape().to_string(), " with ", b.shape().to_string(),
                        " has no GPU kernel in this build");
  };
  const int64_t sa = batch_stride(a), sb = batch_stride(b);
  if (out.num_elements() == 0) return;
  matmul_on_device("matmul", out.device().index, dt, a.device_data(), b.device_data(), data_ptr(out), m, n, k, batches,
                   ta, tb, sa, sb);
}

}  // namespace

bool nvrtc_available(std::string& why) {
  why = nvrtc().error;
  return why.empty();
}

void matmul_on_device(std::string_view who, int device, DType dtype, const void* a, const void* b, void* c, int64_t m,
                      int64_t n, int64_t k, int64_t batches, bool ta, bool tb, int64_t a_stride, int64_t b_stride) {
  if (is_complex(dtype) || dtype == DType::Bool || dtype == DType::String)
    fail<Unimplemented>(who, "matmul of ", dtype_name(dtype), " has no GPU kernel in this build");
  if (m * n * batches == 0) return;
  if (k == 0) {
    kiln::cuda::check(kiln::cuda::driver().cuMemsetD8Async(reinterpret_cast<CUdeviceptr>(c), 0,
                                                           size_t(m * n * batches) * dtype_size(dtype),
                                                           static_cast<CUstream>(kiln::cuda::stream(device))),
                      who, "cuMemsetD8Async");
    return;
  }
  if (dtype == DType::Float32 || dtype == DType::Float64) {
    // row-major C = op(A) op(B) is column-major C^T = op(B)^T op(A)^T: swap the operands
    BlasHandle& h = blas_handle(device);
    std::lock_guard lock(h.mu);
    const Cublas& api = cublas();
    if (auto stream = static_cast<cudaStream_t>(kiln::cuda::stream(device)); stream != h.stream) {
      api.cublasSetStream_v2(h.handle, stream);
      if (api.cublasSetWorkspace_v2(h.handle, h.workspace, BlasHandle::kWorkspaceBytes) != CUBLAS_STATUS_SUCCESS)
        fail<Internal>(who, "cublasSetWorkspace failed on GPU:", device);
      h.stream = stream;
    }
    const cublasOperation_t opb = tb ? CUBLAS_OP_T : CUBLAS_OP_N, opa = ta ? CUBLAS_OP_T : CUBLAS_OP_N;
    const int ldb = int(tb ? k : n), lda = int(ta ? m : k), ldc = int(n);
    cublasStatus_t st;
    if (dtype == DType::Float32) {
      const float one = 1.0f, zero = 0.0f;
      st = api.cublasSgemmStridedBatched(h.handle, opb, opa, int(n), int(m), int(k), &one, static_cast<const float*>(b),
                                         ldb, b_stride, static_cast<const float*>(a), lda, a_stride, &zero,
                                         static_cast<float*>(c), ldc, m * n, int(batches));
    } else {
      const double one = 1.0, zero = 0.0;
      st = api.cublasDgemmStridedBatched(h.handle, opb, opa, int(n), int(m), int(k), &one,
                                         static_cast<const double*>(b), ldb, b_stride, static_cast<const double*>(a),
                                         lda, a_stride, &zero, static_cast<double*>(c), ldc, m * n, int(batches));
    }
    if (st != CUBLAS_STATUS_SUCCESS) fail<Internal>(who, "cuBLAS gemm failed with status ", int(st));
    return;
  }
  if (dtype == DType::Float16 || dtype == DType::BFloat16) {
    // cuBLASLt, accumulating in float32 like the CPU (and the kernel below, where it has none)
    LtMatmulShape shape{dtype, m, n, k, batches, ta, tb, a_stride, b_stride};
    if (std::shared_ptr<const LtMatmul> lt = half_matmul_plan(device, shape)) {
      lt->run(who, a, b, nullptr, nullptr, c);
      return;
    }
  }
  std::string name = kernel_name("matmul", "matmul", dtype, dtype);
  CUfunction fn = get_kernel(device, name, [&] { return matmul_kernel_source(dtype, name); });
  MatmulShape s{m, n, k, batches, ta, tb, a_stride, b_stride};
  void* pa = const_cast<void*>(a);
  void* pb = const_cast<void*>(b);
  void* pc = c;
  void* args[] = {&pa, &pb, &pc, &s};
  launch(who, device, fn, m * n * batches, args);
}

void reduce_on_device(std::string_view who, int device, OpId op, DType in, const void* x, void* o, long long outputs,
                      const ReduceLayout& layout, const ReducePlan& plan, void* scratch) {
  if (outputs == 0) return;
  if (plan.scratch_bytes && !scratch) fail<Internal>(who, "a reduction spread over blocks needs scratch memory");
  ReduceLayout r = layout;
  long long n = r.count, splits = plan.splits, chunk = plan.chunk, outer = plan.outer, inner = plan.inner;
  void* px = const_cast<void*>(x);
  auto threads_for = [](long long count) {
    unsigned t = 32;
    while (t < 256 && t < count) t *= 2;
    return t;
  };
  auto blocks = [](long long b) { return unsigned(std::min<long long>(b, 1 << 20)); };
  // the kernel `kind` of op and dtype (any and all reduce bools to bools, the others keep the dtype)
  auto kernel = [&](std::string_view kind, const std::function<std::string(const std::string&)>& source) {
    const std::string name = kernel_name(kind, op_def(op).name, in, in);
    return get_kernel(device, name, [&] { return source(name); });
  };
  switch (plan.kind) {
    case ReducePlan::Kind::Rows: {
      CUfunction fn = kernel("reduce", [&](const std::string& nm) { return reduce_kernel_source(op, in, nm); });
      void* args[] = {&px, &o, &outputs, &r};
      launch_blocks(who, device, fn, blocks(outputs), threads_for(n), args);
      return;
    }
    case ReducePlan::Kind::Split: {
      CUfunction fp =
          kernel("reduce_part", [&](const std::string& nm) { return reduce_kernel_source(op, in, nm, true); });
      CUfunction fj =
          kernel("reduce_join", [&](const std::string& nm) { return reduce_join_kernel_source(op, in, nm); });
      void* part_args[] = {&px, &scratch, &outputs, &r, &splits, &chunk};
      launch_blocks(who, device, fp, blocks(outputs * splits), threads_for(chunk), part_args);
      void* join_args[] = {&scratch, &o, &outputs, &splits, &n};
      launch_blocks(who, device, fj, blocks(outputs), threads_for(splits), join_args);
      return;
    }
    case ReducePlan::Kind::Columns: {
      CUfunction fc =
          kernel("reduce_columns", [&](const std::string& nm) { return reduce_columns_kernel_source(op, in, nm); });
      void* args[] = {&px, &o, &scratch, &outer, &n, &inner, &splits, &chunk};
      launch_blocks(who, device, fc, blocks((inner + 31) / 32 * outer * splits), 256, args);
      if (splits == 1) return;
      CUfunction fj = kernel("reduce_columns_join",
                             [&](const std::string& nm) { return reduce_columns_join_kernel_source(op, in, nm); });
      void* join_args[] = {&scratch, &o, &outputs, &splits, &n};
      launch(who, device, fj, outputs, join_args);
      return;
    }
  }
}

void* blas_workspace(int device, size_t* bytes) {
  *bytes = BlasHandle::kWorkspaceBytes;
  return blas_handle(device).workspace;
}

void copy_many_on_device(std::string_view who, int device, std::span<const DeviceCopy> copies) {
  struct CopyList {
    int n;
    unsigned long long dst[kMaxCopies], src[kMaxCopies], bytes[kMaxCopies];
  };
  CUfunction fn = get_kernel(device, "kiln_copy_many", [] { return copy_many_kernel_source(); });
  CopyList l{};
  size_t largest = 0;
  auto flush = [&] {
    if (l.n == 0) return;
    constexpr unsigned kThreads = 256;
    const auto blocks = unsigned(std::clamp<size_t>((largest / 8 + kThreads - 1) / kThreads, 1, 1024));
    void* args[] = {&l};
    kiln::cuda::check(
        kiln::cuda::driver().cuLaunchKernel(fn, blocks, unsigned(l.n), 1, kThreads, 1, 1, 0,
                                            static_cast<CUstream>(kiln::cuda::stream(device)), args, nullptr),
        who, "cuLaunchKernel");
    l = CopyList{};
    largest = 0;
  };
  for (const DeviceCopy& c : copies) {
    if (c.bytes == 0) continue;
    l.dst[l.n] = reinterpret_cast<unsigned long long>(c.dst);
    l.src[l.n] = reinterpret_cast<unsigned long long>(c.src);
    l.bytes[l.n] = c.bytes;
    largest = std::max(largest, c.bytes);
    if (++l.n == kMaxCopies) flush();
  }
  flush();
}

// Bumped whenever the generated CUDA C or its compile options change meaning.
constexpr const char* kCudaCodegenVersion = "kiln-cuda-1";
std::atomic<uint64_t> g_nvrtc_compiles{0};

std::string cached_cubin(const std::string& source, const std::string& name, int arch, std::string* from) {
  const Nvrtc& api = nvrtc();
  if (!api.error.empty()) fail<InvalidArgument>("cuda", "cannot compile GPU kernels: ", api.error);
  const std::string salt = std::string(kCudaCodegenVersion) + "|sm_" + std::to_string(arch) + "|" + api.identity;
  const std::string key = code_cache::hex(code_cache::fnv1a(source, code_cache::fnv1a(salt))) +
                          code_cache::hex(code_cache::fnv1a(salt, code_cache::fnv1a(source)));
  return code_cache::cached(
      "cuda", key, [&] { return compile_cubin(source, name, arch); }, from);
}

uint64_t nvrtc_compiles() { return g_nvrtc_compiles.load(std::memory_order_relaxed); }

std::string compile_cubin(const std::string& source, const std::string& name, int arch) {
  const Nvrtc& api = nvrtc();
  if (!api.error.empty()) fail<InvalidArgument>("cuda", "cannot compile GPU kernels: ", api.error);
  g_nvrtc_compiles.fetch_add(1, std::memory_order_relaxed);
  nvrtcProgram prog = nullptr;
  if (api.nvrtcCreateProgram(&prog, source.c_str(), (name + ".cu").c_str(), 0, nullptr, nullptr) != NVRTC_SUCCESS)
    fail<Internal>("cuda", "nvrtcCreateProgram failed for ", name);
  const std::string arch_opt = "--gpu-architecture=sm_" + std::to_string(arch);
  // no contraction into FMAs, so float results stay those of the CPU kernels; 128-bit integers
  // for the means of 64-bit integers
  const char* opts[] = {arch_opt.c_str(), "-std=c++17", "--fmad=false", "--device-int128"};
  nvrtcResult rc = api.nvrtcCompileProgram(prog, 4, opts);
  std::string log;
  size_t log_size = 0;
  if (api.nvrtcGetProgramLogSize(prog, &log_size) == NVRTC_SUCCESS && log_size > 1) {
    log.resize(log_size);
    api.nvrtcGetProgramLog(prog, log.data());
  }
  std::string cubin;
  size_t size = 0;
  if (rc == NVRTC_SUCCESS && api.nvrtcGetCUBINSize(prog, &size) == NVRTC_SUCCESS) {
    cubin.resize(size);
    api.nvrtcGetCUBIN(prog, cubin.data());
  }
  api.nvrtcDestroyProgram(&prog);
  if (rc != NVRTC_SUCCESS)
    fail<Internal>("cuda", "NVRTC could not compile ", name, " for sm_", arch, ": ", api.nvrtcGetErrorString(rc), "\n",
                   log);
  return cubin;
}

KernelFn kernel_for(OpId op) {
  switch (op) {
#define KILN_UNARY(Id, Fn, Classes, Rule) case OpId::Id:
#define KILN_BINARY(Id, Fn, Classes, Rule, Traits, Kind)
#include "ops/scalar_fn.def"
#undef KILN_UNARY
#undef KILN_BINARY
    return kernel_unary;
#define KILN_UNARY(Id, Fn, Classes, Rule)
#define KILN_BINARY(Id, Fn, Classes, Rule, Traits, Kind) case OpId::Id:
#include "ops/scalar_fn.def"
#undef KILN_UNARY
#undef KILN_BINARY
    return kernel_binary;
    case OpId::Cast:
      return kernel_cast;
    case OpId::ReduceSum:
    case OpId::ReduceMean:
    case OpId::ReduceProd:
    case OpId::ReduceMax:
    case OpId::ReduceMin:
    case OpId::ReduceAny:
    case OpId::ReduceAll:
      return kernel_reduce;
    case OpId::MatMul:
      return kernel_matmul;
    default:
      return shape_kernel_for(op);
  }
}

#else  // !KILN_WITH_CUDA

KernelFn kernel_for(OpId) { return nullptr; }

bool nvrtc_available(std::string& why) {
  why = "this build of Kiln has no CUDA support (KILN_WITH_CUDA is off)";
  return false;
}

void matmul_on_device(std::string_view who, int, DType, const void*, const void*, void*, int64_t, int64_t, int64_t,
                      int64_t, bool, bool, int64_t, int64_t) {
  fail<InvalidArgument>(who, "no GPU is available: this build of Kiln has no CUDA support");
}

void copy_plan_on_device(const OpDef& def, int, const CopyPlan&, int64_t, const void*, void*) {
  fail<InvalidArgument>(def.name, "no GPU is available: this build of Kiln has no CUDA support");
}

void copy_many_on_device(std::string_view who, int, std::span<const DeviceCopy>) {
  fail<InvalidArgument>(who, "no GPU is available: this build of Kiln has no CUDA support");
}

std::string cached_cubin(const std::string&, const std::string&, int, std::string*) {
  fail<InvalidArgument>("cuda", "cannot compile GPU kernels: this build of Kiln has no CUDA support");
}

uint64_t nvrtc_compiles() { return 0; }

std::string compile_cubin(const std::string&, const std::string&, int) {
  fail<InvalidArgument>("cuda", "cannot compile GPU kernels: this build of Kiln has no CUDA support");
}

#endif

}  // namespace kiln::ops::cuda
