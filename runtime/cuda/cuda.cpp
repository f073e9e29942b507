// The CUDA runtime: the driver loaded with dlopen, per-device context and stream, the caching
// device allocator and copies. Without KILN_WITH_CUDA only the "no GPU" answers remain.
#include "runtime/cuda/cuda.h"

#include <algorithm>
#include <mutex>

#include "runtime/errors.h"

#if KILN_WITH_CUDA
#include <dlfcn.h>

#include <memory>
#include <unordered_map>
#include <vector>

#include "runtime/cuda/driver_api.h"
#include "runtime/logging.h"
#endif

namespace kiln::cuda {

#if KILN_WITH_CUDA

namespace {

struct Device {
  CUdevice dev = 0;
  CUcontext ctx = nullptr;
  CUstream stream = nullptr;
  CUstream capture_stream = nullptr;                           // created by the first capture
  std::once_flag once;                                         // context and stream creation
  std::mutex mu;                                               // guards the allocator state below
  std::unordered_map<size_t, std::vector<CUdeviceptr>> cache;  // free blocks by rounded size
  MemoryStats stats;
};

struct Runtime {
  DriverApi api;
  std::string reason;  // why there is no GPU
  int count = 0;
  std::vector<std::unique_ptr<Device>> devices;
};

const char* error_name(const DriverApi& api, CUresult r) {
  const char* name = nullptr;
  if (api.cuGetErrorName && api.cuGetErrorName(r, &name) == CUDA_SUCCESS && name) return name;
  return "CUDA_ERROR_UNKNOWN";
}

// Loads libcuda.so.1, resolves the table and counts devices; failures become `reason`.
Runtime* load_runtime() {
  auto* rt = new Runtime();
  std::string err;
  void* lib = open_library({"libcuda.so.1", "libcuda.so"}, err);
  if (!lib) {
    rt->reason = "the CUDA driver library (libcuda.so.1) is not installed: " + err;
    return rt;
  }
#define KILN_CUDA_LOAD(name)                                                                      \
  rt->api.name = reinterpret_cast<decltype(rt->api.name)>(dlsym(lib, KILN_CUDA_STR(name)));       \
  if (!rt->api.name) {                                                                            \
    rt->reason = "the CUDA driver lacks " KILN_CUDA_STR(name) " (driver too old for this build)"; \
    return rt;                                                                                    \
  }
  KILN_CUDA_DRIVER_FUNCTIONS(KILN_CUDA_LOAD)
#undef KILN_CUDA_LOAD
  if (CUresult r = rt->api.cuInit(0); r != CUDA_SUCCESS) {
    rt->reason = std::string("cuInit failed: ") + error_name(rt->api, r);
    return rt;
  }
  int n = 0;
  if (CUresult r = rt->api.cuDeviceGetCount(&n); r != CUDA_SUCCESS || n == 0) {
    rt->reason =
        n == 0 ? "the CUDA driver found no GPU" : std::string("cuDeviceGetCount failed: ") + error_name(rt->api, r);
    return rt;
  }
  rt->count = n;
  for (int i = 0; i < n; ++i) rt->devices.push_back(std::make_unique<Device>());
  return rt;
}

Runtime& runtime() {
  static Runtime* rt = load_runtime();  // never destroyed: blocks may be freed during exit
  return *rt;
}

// The device's context and stream, created on first use.
Device& device(int index) {
  Runtime& rt = runtime();
  check_device("cuda", index);
  Device& d = *rt.devices[size_t(index)];
  std::call_once(d.once, [&] {
    check(rt.api.cuDeviceGet(&d.dev, index), "cuda", "cuDeviceGet");
    check(rt.api.cuDevicePrimaryCtxRetain(&d.ctx, d.dev), "cuda", "cuDevicePrimaryCtxRetain");
    check(rt.api.cuCtxSetCurrent(d.ctx), "cuda", "cuCtxSetCurrent");
    check(rt.api.cuStreamCreate(&d.stream, CU_STREAM_NON_BLOCKING), "cuda", "cuStreamCreate");
    char name[128] = {};
    rt.api.cuDeviceGetName(name, sizeof(name) - 1, d.dev);
    logging::info("[cuda] GPU:{} is {} (compute capability {})", index, name, compute_capability(index));
  });
  return d;
}

// The GPU this thread is capturing (capture_graph), and the stream it captures on.
thread_local int t_capture_device = -1;
thread_local CUstream t_capture_stream = nullptr;

// Small blocks round to 512 bytes, large ones to 2 MiB, so freed blocks fit later requests.
size_t round_size(size_t n) {
  constexpr size_t kSmall = 512, kLarge = size_t(2) << 20;
  return n < (size_t(1) << 20) ? (n + kSmall - 1) / kSmall * kSmall : (n + kLarge - 1) / kLarge * kLarge;
}

void release_cache(Device& d, const DriverApi& api) {
  for (auto& [size, blocks] : d.cache) {
    for (CUdeviceptr p : blocks) api.cuMemFree(p);
    d.stats.cached_bytes -= size * blocks.size();
  }
  d.cache.clear();
}

}  // namespace

bool built_with_cuda() { return true; }

void* open_library(std::initializer_list<const char*> names, std::string& error) {
  error.clear();
  for (const char* name : names) {
    if (void* h = dlopen(name, RTLD_NOW | RTLD_LOCAL)) return h;
    if (const char* e = dlerror()) error = e;
#ifdef KILN_CUDA_LIBRARY_DIR
    std::string path = std::string(KILN_CUDA_LIBRARY_DIR) + "/" + name;
    if (void* h = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL)) return h;
#endif
  }
  return nullptr;
}

int device_count() { return runtime().count; }

std::string unavailable_reason() { return runtime().reason; }

void check_device(std::string_view who, int index) {
  Runtime& rt = runtime();
  if (rt.count == 0) fail<InvalidArgument>(who, "no GPU is available: ", rt.reason);
  if (index < 0 || index >= rt.count)
    fail<InvalidArgument>(who, "GPU:", index, " does not exist (this machine has ", rt.count, " GPUs)");
}

const DriverApi& driver() {
  check_device("cuda", 0);
  return runtime().api;
}

void check(CUresult result, std::string_view who, const char* call) {
  if (result == CUDA_SUCCESS) return;
  const DriverApi& api = runtime().api;
  const char* desc = nullptr;
  if (api.cuGetErrorString) api.cuGetErrorString(result, &desc);
  std::string msg = detail::str_cat(call, " failed: ", error_name(api, result), " (", desc ? desc : "", ")");
  if (result == CUDA_ERROR_OUT_OF_MEMORY) throw ResourceExhausted(who, msg);
  throw Internal(who, msg);
}

int compute_capability(int index) {
  Runtime& rt = runtime();
  check_device("cuda", index);
  CUdevice dev = 0;
  check(rt.api.cuDeviceGet(&dev, index), "cuda", "cuDeviceGet");
  int major = 0, minor = 0;
  check(rt.api.cuDeviceGetAttribute(&major, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR, dev), "cuda",
        "cuDeviceGetAttribute");
  check(rt.api.cuDeviceGetAttribute(&minor, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR, dev), "cuda",
        "cuDeviceGetAttribute");
  return major * 10 + minor;
}

void set_device(int index) {
  thread_local CUcontext current = nullptr;
  Device& d = device(index);
  if (current != d.ctx) {
    check(runtime().api.cuCtxSetCurrent(d.ctx), "cuda", "cuCtxSetCurrent");
    current = d.ctx;
  }
}

void* stream(int index) {
  set_device(index);
  if (index == t_capture_device) return t_capture_stream;
  return device(index).stream;
}

void synchronize(int index, std::string_view who) {
  if (index == t_capture_device)
    fail<Internal>(who, "waits for GPU:", index, " while its work is captured into a CUDA graph");
  set_device(index);
  check(runtime().api.cuStreamSynchronize(device(index).stream), who, "cuStreamSynchronize");
}

void* device_alloc(size_t nbytes, int index) {
  if (nbytes == 0) return nullptr;
  if (index == t_capture_device)
    fail<Internal>("cuda", "allocating ", nbytes, " bytes on GPU:", index,
                   " while its work is captured into a CUDA graph (a replay would not allocate)");
  set_device(index);
  Device& d = device(index);
  const DriverApi& api = runtime().api;
  size_t size = round_size(nbytes);
  std::lock_guard lock(d.mu);
  CUdeviceptr p = 0;
  if (auto it = d.cache.find(size); it != d.cache.end() && !it->second.empty()) {
    p = it->second.back();
    it->second.pop_back();
    d.stats.cached_bytes -= size;
    ++d.stats.hits;
  } else {
    CUresult r = api.cuMemAlloc(&p, size);
    if (r == CUDA_ERROR_OUT_OF_MEMORY) {  // give the cache back and try once more
      release_cache(d, api);
      r = api.cuMemAlloc(&p, size);
    }
    if (r == CUDA_ERROR_OUT_OF_MEMORY)
      fail<ResourceExhausted>("cuda", "out of memory on GPU:", index, " allocating ", nbytes, " bytes (",
                              d.stats.allocated_bytes, " bytes in use)");
    check(r, "cuda", "cuMemAlloc");
    ++d.stats.misses;
  }
  d.stats.allocated_bytes += size;
  d.stats.peak_bytes = std::max(d.stats.peak_bytes, d.stats.allocated_bytes);
  return reinterpret_cast<void*>(p);
}

void device_free(void* p, size_t nbytes, int index) noexcept {
  if (!p) return;
  Device& d = *runtime().devices[size_t(index)];
  size_t size = round_size(nbytes);
  std::lock_guard lock(d.mu);
  d.cache[size].push_back(reinterpret_cast<CUdeviceptr>(p));
  d.stats.allocated_bytes -= size;
  d.stats.cached_bytes += size;
}

MemoryStats memory_stats(int index) {
  Device& d = device(index);
  std::lock_guard lock(d.mu);
  return d.stats;
}

void empty_cache() {
  Runtime& rt = runtime();
  for (int i = 0; i < rt.count; ++i) {
    Device& d = *rt.devices[size_t(i)];
    if (!d.ctx) continue;
    set_device(i);
    synchronize(i);
    std::lock_guard lock(d.mu);
    release_cache(d, rt.api);
  }
}

void copy_host_to_device(void* dst, const void* src, size_t nbytes, int index) {
  if (nbytes == 0) return;
  set_device(index);
  check(runtime().api.cuMemcpyHtoDAsync(reinterpret_cast<CUdeviceptr>(dst), src, nbytes, device(index).stream), "copy",
        "cuMemcpyHtoDAsync");
}

void copy_device_to_host(void* dst, const void* src, size_t nbytes, int index) {
  if (nbytes == 0) return;
  set_device(index);
  Device& d = device(index);
  check(runtime().api.cuMemcpyDtoHAsync(dst, reinterpret_cast<CUdeviceptr>(src), nbytes, d.stream), "copy",
        "cuMemcpyDtoHAsync");
  synchronize(index, "copy");
}

void copy_device_to_device(void* dst, const void* src, size_t nbytes, int index) {
  if (nbytes == 0) return;
  set_device(index);
  check(runtime().api.cuMemcpyDtoDAsync(reinterpret_cast<CUdeviceptr>(dst), reinterpret_cast<CUdeviceptr>(src), nbytes,
                                        device(index).stream),
        "copy", "cuMemcpyDtoDAsync");
}

CapturedGraph::~CapturedGraph() {
  const DriverApi& api = runtime().api;
  try {
    synchronize(device_, "cuda graph");  // a replay may still be running
  } catch (const Error&) {
  }
  api.cuGraphExecDestroy(static_cast<CUgraphExec>(exec_));
}

void CapturedGraph::launch(std::string_view who) const {
  check(runtime().api.cuGraphLaunch(static_cast<CUgraphExec>(exec_), static_cast<CUstream>(stream(device_))), who,
        "cuGraphLaunch");
}

std::unique_ptr<CapturedGraph> capture_graph(int index, std::string_view who, const std::function<void()>& work) {
  if (t_capture_device >= 0) fail<Internal>(who, "CUDA graph captures do not nest");
  set_device(index);
  Device& d = device(index);
  const DriverApi& api = runtime().api;
  {
    std::lock_guard lock(d.mu);
    if (!d.capture_stream) check(api.cuStreamCreate(&d.capture_stream, CU_STREAM_NON_BLOCKING), who, "cuStreamCreate");
  }
  // each thread captures on its own: with one capture stream per device, two threads would
  // record into one graph
  static std::mutex capture_mu;
  std::lock_guard capture_lock(capture_mu);
  // thread-local mode: only this thread's unsafe calls (allocations, waits) break the capture
  check(api.cuStreamBeginCapture(d.capture_stream, CU_STREAM_CAPTURE_MODE_THREAD_LOCAL), who, "cuStreamBeginCapture");
  CUgraph graph = nullptr;
  {
    // stream(index) answers the capture stream on this thread until the work is queued
    struct Capturing {
      Capturing(int i, CUstream s) { t_capture_device = i, t_capture_stream = s; }
      ~Capturing() { t_capture_device = -1, t_capture_stream = nullptr; }
    } capturing(index, d.capture_stream);
    try {
      work();
    } catch (...) {
      if (api.cuStreamEndCapture(d.capture_stream, &graph) == CUDA_SUCCESS && graph) api.cuGraphDestroy(graph);
      throw;
    }
  }
  check(api.cuStreamEndCapture(d.capture_stream, &graph), who, "cuStreamEndCapture");
  CUgraphExec exec = nullptr;
  CUresult r = api.cuGraphInstantiate(&exec, graph, 0);
  api.cuGraphDestroy(graph);
  check(r, who, "cuGraphInstantiate");
  return std::make_unique<CapturedGraph>(exec, index);
}

#else  // !KILN_WITH_CUDA

namespace {
[[noreturn]] void no_cuda(std::string_view who) {
  fail<InvalidArgument>(who, "no GPU is available: this build of Kiln has no CUDA support (KILN_WITH_CUDA is off)");
}
}  // namespace

bool built_with_cuda() { return false; }
int device_count() { return 0; }
std::string unavailable_reason() { return "this build of Kiln has no CUDA support (KILN_WITH_CUDA is off)"; }
void check_device(std::string_view who, int) { no_cuda(who); }
void set_device(int) { no_cuda("cuda"); }
void* stream(int) { no_cuda("cuda"); }
void synchronize(int, std::string_view who) { no_cuda(who); }
void* device_alloc(size_t, int) { no_cuda("cuda"); }
void device_free(void*, size_t, int) noexcept {}
MemoryStats memory_stats(int) { no_cuda("cuda"); }
void empty_cache() {}
void copy_host_to_device(void*, const void*, size_t, int) { no_cuda("copy"); }
void copy_device_to_host(void*, const void*, size_t, int) { no_cuda("copy"); }
void copy_device_to_device(void*, const void*, size_t, int) { no_cuda("copy"); }
CapturedGraph::~CapturedGraph() {}
void CapturedGraph::launch(std::string_view who) const { no_cuda(who); }
std::unique_ptr<CapturedGraph> capture_graph(int, std::string_view who, const std::function<void()>&) { no_cuda(who); }

#endif

}  // namespace kiln::cuda
