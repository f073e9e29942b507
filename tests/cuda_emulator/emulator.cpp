// A CUDA emulator for testing Kiln's GPU code on machines without a GPU: one shared library
// exporting the driver, NVRTC, cuBLAS and cuBLASLt functions Kiln loads with dlopen, installed
// under the names libcuda.so.1, libnvrtc.so.N, libcublas.so.N and libcublasLt.so.N so that
// LD_LIBRARY_PATH selects it.
//   - Device memory is host memory, filled with 0xCD when allocated (so reads of memory nobody
//     wrote show up); copies, memsets and kernel arguments are checked to point into live
//     device allocations, which is where a real GPU would fault.
//   - "NVRTC" compiles the program with the host C++ compiler after device_shim.h into a shared
//     object (cached by content), whose path is the "cubin"; a launch runs the grid on the
//     calling thread, GPU threads as fibers.
//   - Streams run their work at once, in order. Stream capture records the work into a graph
//     that cuGraphLaunch replays; while a capture is under way, allocating, freeing or waiting
//     for the capturing stream fails with CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED and invalidates
//     the capture, as the driver does in the global capture mode.
//   - cuBLAS's strided-batched GEMMs and cuBLASLt's float32 matmuls (with their bias epilogue)
//     are plain loops.
// Environment: KILN_CUDA_EMULATOR_CXX (compiler, default c++), KILN_CUDA_EMULATOR_CACHE (folder
// of compiled programs), KILN_CUDA_EMULATOR_MEMORY_MB (device memory, default 8192),
// KILN_CUDA_EMULATOR_VERBOSE (log compiles to stderr).
#include <cublasLt.h>
#include <cublas_v2.h>
#include <cuda.h>
#include <dlfcn.h>
#include <nvrtc.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "runtime/half.h"

#ifndef KILN_EMU_SHIM
#error "KILN_EMU_SHIM (the path of device_shim.h) must be defined"
#endif

namespace {

using Work = std::function<void()>;

struct Graph {
  std::vector<Work> nodes;
};
struct Stream {
  CUstreamCaptureMode mode = CU_STREAM_CAPTURE_MODE_GLOBAL;
  std::thread::id owner;  // the thread that began the capture
  bool capturing = false;
  bool invalidated = false;
  Graph* graph = nullptr;
};
struct Module {
  void* handle = nullptr;
};
using BindFn = void* (*)(void**, int (*)(const void*), int*);
using RunFn = void (*)(void*, const unsigned*, const unsigned*);
using FreeFn = void (*)(void*);
struct Function {
  BindFn bind = nullptr;
  RunFn run = nullptr;
  FreeFn free = nullptr;
};

struct State {
  std::recursive_mutex mu;  // one grid, copy or GEMM at a time, like one GPU stream
  bool initialized = false;
  std::map<uintptr_t, size_t> allocations;  // base -> bytes
  size_t used = 0;
  size_t limit = size_t(8192) << 20;
  std::vector<Stream*> streams;
  int ctx_token = 0;
};

State& state() {
  static State* s = [] {
    auto* st = new State();
    if (const char* mb = getenv("KILN_CUDA_EMULATOR_MEMORY_MB")) st->limit = size_t(atoll(mb)) << 20;
    return st;
  }();
  return *s;
}

// Whether a capture under way forbids the calling thread's unsafe calls (allocating, freeing,
// waiting): every global-mode capture does, a thread-local one only on its own thread.
bool capture_forbids(State& s) {
  for (Stream* st : s.streams)
    if (st->capturing && (st->mode == CU_STREAM_CAPTURE_MODE_GLOBAL ||
                          (st->mode == CU_STREAM_CAPTURE_MODE_THREAD_LOCAL && st->owner == std::this_thread::get_id())))
      return true;
  return false;
}

// An unsafe call during a capture that forbids it: those captures are invalidated.
CUresult refuse_in_capture(State& s) {
  for (Stream* st : s.streams)
    if (st->capturing && (st->mode == CU_STREAM_CAPTURE_MODE_GLOBAL || st->owner == std::this_thread::get_id()))
      st->invalidated = true;
  return CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED;
}

// Whether [p, p + n) lies in one live device allocation (a null pointer with n == 0 does).
bool in_device_memory(const void* p, size_t n) {
  State& s = state();
  const auto a = reinterpret_cast<uintptr_t>(p);
  if (a == 0) return n == 0;
  auto it = s.allocations.upper_bound(a);
  if (it == s.allocations.begin()) return false;
  --it;
  return a + n <= it->first + it->second;
}

int is_device_pointer(const void* p) {
  return p == nullptr || in_device_memory(p, 0) || in_device_memory(static_cast<const char*>(p) - 1, 1);
}

// Runs `work` now, or records it when `stream` is being captured.
CUresult enqueue(CUstream stream, Work work) {
  auto* st = reinterpret_cast<Stream*>(stream);
  if (st && st->capturing) {
    if (!st->invalidated) st->graph->nodes.push_back(std::move(work));
    return CUDA_SUCCESS;
  }
  work();
  return CUDA_SUCCESS;
}

uint64_t fnv1a(const std::string& s) {
  uint64_t h = 1469598103934665603ull;
  for (unsigned char c : s) h = (h ^ c) * 1099511628211ull;
  return h;
}

std::string cache_dir() {
  std::string dir;
  if (const char* d = getenv("KILN_CUDA_EMULATOR_CACHE"); d && *d)
    dir = d;
  else
    dir = std::string(getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp") + "/kiln-cuda-emulator-" + std::to_string(getuid());
  mkdir(dir.c_str(), 0700);
  return dir;
}

// The parameter types of every `extern "C" __global__` function of `src`, by name.
std::vector<std::pair<std::string, std::vector<std::string>>> kernels_of(const std::string& src) {
  std::vector<std::pair<std::string, std::vector<std::string>>> out;
  const std::string marker = "extern \"C\" __global__ void ";
  for (size_t pos = src.find(marker); pos != std::string::npos; pos = src.find(marker, pos + 1)) {
    size_t p = pos + marker.size();
    if (src.compare(p, 18, "__launch_bounds__(") == 0) p = src.find(')', p) + 1;
    while (p < src.size() && isspace(static_cast<unsigned char>(src[p]))) ++p;
    size_t open = src.find('(', p);
    std::string name = src.substr(p, open - p);
    while (!name.empty() && isspace(static_cast<unsigned char>(name.back()))) name.pop_back();
    std::vector<std::string> types;
    int depth = 0;
    std::string cur;
    size_t i = open + 1;
    for (; i < src.size(); ++i) {
      char c = src[i];
      if (depth == 0 && (c == ',' || c == ')')) {
        // drop the parameter's name: the identifier at the end
        size_t e = cur.find_last_not_of(" \t\n");
        if (e != std::string::npos) {
          size_t b = e;
          while (b > 0 && (isalnum(static_cast<unsigned char>(cur[b - 1])) || cur[b - 1] == '_')) --b;
          std::string t = cur.substr(0, b);
          for (size_t r; (r = t.find("__restrict__")) != std::string::npos;) t.erase(r, 12);
          if (t.find_first_not_of(" \t\n") != std::string::npos) types.push_back(t);
        }
        cur.clear();
        if (c == ')') break;
        continue;
      }
      if (c == '(' || c == '<' || c == '[') ++depth;
      if (c == ')' || c == '>' || c == ']') --depth;
      cur += c;
    }
    out.emplace_back(name, types);
  }
  return out;
}

bool is_pointer_type(const std::string& t) {
  size_t e = t.find_last_not_of(" \t\n");
  return e != std::string::npos && t[e] == '*';
}

// The host program for a CUDA C source: the shim, the source, and per kernel the entry points
// the driver calls (bind the arguments, run a grid, free the arguments).
std::string host_program(const std::string& source, const std::string& name) {
  const bool syncs = source.find("__syncthreads") != std::string::npos;
  std::ostringstream s;
  s << "#include \"" << KILN_EMU_SHIM << "\"\n#line 1 \"" << name << "\"\n" << source << "\n";
  for (const auto& [k, types] : kernels_of(source)) {
    s << "namespace { struct kiln_emu_args_" << k << " {";
    for (size_t i = 0; i < types.size(); ++i) s << " " << types[i] << " a" << i << ";";
    s << " };\nvoid kiln_emu_body_" << k << "(void* p) { auto* x = static_cast<kiln_emu_args_" << k << "*>(p); " << k
      << "(";
    for (size_t i = 0; i < types.size(); ++i) s << (i ? ", " : "") << "x->a" << i;
    s << "); } }\n";
    s << "extern \"C\" void* kiln_emu_bind_" << k << "(void** p, int (*dev)(const void*), int* bad) {\n";
    for (size_t i = 0; i < types.size(); ++i)
      if (is_pointer_type(types[i]))
        s << "  if (!dev(*static_cast<const void* const*>(p[" << i << "]))) { *bad = " << i << "; return nullptr; }\n";
    s << "  return new kiln_emu_args_" << k << "{";
    for (size_t i = 0; i < types.size(); ++i)
      s << (i ? ", " : "") << "*static_cast<" << types[i] << "*>(p[" << i << "])";
    s << "};\n}\n";
    s << "extern \"C\" void kiln_emu_run_" << k
      << "(void* a, const unsigned* g, const unsigned* b) { kiln_emu::run_grid(g, b, " << (syncs ? "true" : "false")
      << ", kiln_emu_body_" << k << ", a); }\n";
    s << "extern \"C\" void kiln_emu_free_" << k << "(void* a) { delete static_cast<kiln_emu_args_" << k
      << "*>(a); }\n";
  }
  return s.str();
}

struct Program {
  std::string source, name, log, image;
};

}  // namespace

extern "C" {

// ---- driver ----

CUresult cuInit(unsigned int) {
  state().initialized = true;
  return CUDA_SUCCESS;
}
CUresult cuDriverGetVersion(int* v) {
  *v = 13000;
  return CUDA_SUCCESS;
}
CUresult cuDeviceGetCount(int* n) {
  if (!state().initialized) return CUDA_ERROR_NOT_INITIALIZED;
  *n = 1;
  return CUDA_SUCCESS;
}
CUresult cuDeviceGet(CUdevice* d, int ordinal) {
  if (ordinal != 0) return CUDA_ERROR_INVALID_DEVICE;
  *d = 0;
  return CUDA_SUCCESS;
}
CUresult cuDeviceGetAttribute(int* v, CUdevice_attribute attr, CUdevice) {
  switch (attr) {
    case CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR:
      *v = 9;
      break;
    case CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR:
      *v = 0;
      break;
    case CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT:
      *v = 132;
      break;
    case CU_DEVICE_ATTRIBUTE_MAX_THREADS_PER_BLOCK:
      *v = 1024;
      break;
    case CU_DEVICE_ATTRIBUTE_WARP_SIZE:
      *v = 32;
      break;
    case CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK:
      *v = 49152;
      break;
    default:
      *v = 0;
  }
  return CUDA_SUCCESS;
}
CUresult cuDeviceGetName(char* name, int len, CUdevice) {
  snprintf(name, size_t(len), "%s", "Kiln CUDA emulator");
  return CUDA_SUCCESS;
}
CUresult cuDevicePrimaryCtxRetain(CUcontext* ctx, CUdevice) {
  *ctx = reinterpret_cast<CUcontext>(&state().ctx_token);
  return CUDA_SUCCESS;
}
CUresult cuCtxSetCurrent(CUcontext) { return CUDA_SUCCESS; }
CUresult cuCtxGetCurrent(CUcontext* ctx) {
  *ctx = reinterpret_cast<CUcontext>(&state().ctx_token);
  return CUDA_SUCCESS;
}

CUresult cuStreamCreate(CUstream* stream, unsigned int) {
  State& s = state();
  std::lock_guard lock(s.mu);
  auto* st = new Stream();
  s.streams.push_back(st);
  *stream = reinterpret_cast<CUstream>(st);
  return CUDA_SUCCESS;
}
CUresult cuStreamSynchronize(CUstream stream) {
  State& s = state();
  std::lock_guard lock(s.mu);
  auto* st = reinterpret_cast<Stream*>(stream);
  if (st && st->capturing) return refuse_in_capture(s);
  return CUDA_SUCCESS;
}
CUresult cuStreamBeginCapture(CUstream stream, CUstreamCaptureMode mode) {
  State& s = state();
  std::lock_guard lock(s.mu);
  auto* st = reinterpret_cast<Stream*>(stream);
  if (!st) return CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED;  // the legacy stream cannot be captured
  if (st->capturing) return CUDA_ERROR_ILLEGAL_STATE;
  st->capturing = true;
  st->mode = mode;
  st->owner = std::this_thread::get_id();
  st->invalidated = false;
  st->graph = new Graph();
  return CUDA_SUCCESS;
}
CUresult cuStreamEndCapture(CUstream stream, CUgraph* graph) {
  State& s = state();
  std::lock_guard lock(s.mu);
  auto* st = reinterpret_cast<Stream*>(stream);
  if (!st || !st->capturing) return CUDA_ERROR_ILLEGAL_STATE;
  st->capturing = false;
  if (st->invalidated) {
    delete st->graph;
    st->graph = nullptr;
    *graph = nullptr;
    return CUDA_ERROR_STREAM_CAPTURE_INVALIDATED;
  }
  *graph = reinterpret_cast<CUgraph>(st->graph);
  st->graph = nullptr;
  return CUDA_SUCCESS;
}
CUresult cuStreamIsCapturing(CUstream stream, CUstreamCaptureStatus* status) {
  State& s = state();
  std::lock_guard lock(s.mu);
  auto* st = reinterpret_cast<Stream*>(stream);
  *status = !st || !st->capturing ? CU_STREAM_CAPTURE_STATUS_NONE
            : st->invalidated     ? CU_STREAM_CAPTURE_STATUS_INVALIDATED
                                  : CU_STREAM_CAPTURE_STATUS_ACTIVE;
  return CUDA_SUCCESS;
}
CUresult cuGraphInstantiate(CUgraphExec* exec, CUgraph graph, unsigned long long) {
  if (!graph) return CUDA_ERROR_INVALID_VALUE;
  *exec = reinterpret_cast<CUgraphExec>(new Graph(*reinterpret_cast<Graph*>(graph)));
  return CUDA_SUCCESS;
}
CUresult cuGraphLaunch(CUgraphExec exec, CUstream stream) {
  State& s = state();
  std::lock_guard lock(s.mu);
  if (!exec) return CUDA_ERROR_INVALID_VALUE;
  auto* st = reinterpret_cast<Stream*>(stream);
  if (st && st->capturing) return CUDA_ERROR_NOT_SUPPORTED;
  for (const Work& w : reinterpret_cast<Graph*>(exec)->nodes) w();
  return CUDA_SUCCESS;
}
CUresult cuGraphExecDestroy(CUgraphExec exec) {
  delete reinterpret_cast<Graph*>(exec);
  return CUDA_SUCCESS;
}

// Events: the host time at which the stream reached them (streams run their work at once).
struct CUevent_st {
  std::chrono::steady_clock::time_point at{};
  bool recorded = false;
};
CUresult cuEventCreate(CUevent* e, unsigned int) {
  *e = new CUevent_st();
  return CUDA_SUCCESS;
}
CUresult cuEventRecord(CUevent e, CUstream stream) {
  if (!e) return CUDA_ERROR_INVALID_HANDLE;
  std::lock_guard lock(state().mu);
  return enqueue(stream, [e] {
    e->at = std::chrono::steady_clock::now();
    e->recorded = true;
  });
}
CUresult cuEventSynchronize(CUevent e) { return e ? CUDA_SUCCESS : CUDA_ERROR_INVALID_HANDLE; }
CUresult cuEventElapsedTime(float* ms, CUevent start, CUevent end) {
  if (!ms || !start || !end) return CUDA_ERROR_INVALID_HANDLE;
  if (!start->recorded || !end->recorded) return CUDA_ERROR_NOT_READY;
  *ms = std::chrono::duration<float, std::milli>(end->at - start->at).count();
  return CUDA_SUCCESS;
}
CUresult cuEventDestroy(CUevent e) {
  delete e;
  return CUDA_SUCCESS;
}
CUresult cuGraphDestroy(CUgraph graph) {
  delete reinterpret_cast<Graph*>(graph);
  return CUDA_SUCCESS;
}

CUresult cuMemAlloc(CUdeviceptr* p, size_t bytes) {
  State& s = state();
  std::lock_guard lock(s.mu);
  if (capture_forbids(s)) return refuse_in_capture(s);
  if (bytes == 0) return CUDA_ERROR_INVALID_VALUE;
  const size_t size = (bytes + 255) / 256 * 256;
  if (s.used + size > s.limit) return CUDA_ERROR_OUT_OF_MEMORY;
  void* mem = aligned_alloc(256, size);
  if (!mem) return CUDA_ERROR_OUT_OF_MEMORY;
  memset(mem, 0xCD, size);
  s.allocations[reinterpret_cast<uintptr_t>(mem)] = size;
  s.used += size;
  *p = reinterpret_cast<CUdeviceptr>(mem);
  return CUDA_SUCCESS;
}
CUresult cuMemFree(CUdeviceptr p) {
  State& s = state();
  std::lock_guard lock(s.mu);
  if (capture_forbids(s)) return refuse_in_capture(s);
  auto it = s.allocations.find(uintptr_t(p));
  if (it == s.allocations.end()) return CUDA_ERROR_INVALID_VALUE;
  s.used -= it->second;
  s.allocations.erase(it);
  free(reinterpret_cast<void*>(p));
  return CUDA_SUCCESS;
}
CUresult cuMemGetInfo(size_t* free_bytes, size_t* total) {
  State& s = state();
  std::lock_guard lock(s.mu);
  *free_bytes = s.limit - s.used;
  *total = s.limit;
  return CUDA_SUCCESS;
}

CUresult cuMemcpyHtoDAsync(CUdeviceptr dst, const void* src, size_t n, CUstream stream) {
  State& s = state();
  std::lock_guard lock(s.mu);
  void* d = reinterpret_cast<void*>(dst);
  if (!in_device_memory(d, n) || in_device_memory(src, 1)) return CUDA_ERROR_INVALID_VALUE;
  return enqueue(stream, [=] { memcpy(d, src, n); });
}
CUresult cuMemcpyDtoHAsync(void* dst, CUdeviceptr src, size_t n, CUstream stream) {
  State& s = state();
  std::lock_guard lock(s.mu);
  const void* p = reinterpret_cast<const void*>(src);
  if (!in_device_memory(p, n) || in_device_memory(dst, 1)) return CUDA_ERROR_INVALID_VALUE;
  return enqueue(stream, [=] { memcpy(dst, p, n); });
}
CUresult cuMemcpyDtoDAsync(CUdeviceptr dst, CUdeviceptr src, size_t n, CUstream stream) {
  State& s = state();
  std::lock_guard lock(s.mu);
  void* d = reinterpret_cast<void*>(dst);
  const void* p = reinterpret_cast<const void*>(src);
  if (!in_device_memory(d, n) || !in_device_memory(p, n)) return CUDA_ERROR_INVALID_VALUE;
  return enqueue(stream, [=] { memmove(d, p, n); });
}
CUresult cuMemsetD8Async(CUdeviceptr dst, unsigned char v, size_t n, CUstream stream) {
  State& s = state();
  std::lock_guard lock(s.mu);
  void* d = reinterpret_cast<void*>(dst);
  if (!in_device_memory(d, n)) return CUDA_ERROR_INVALID_VALUE;
  return enqueue(stream, [=] { memset(d, v, n); });
}

CUresult cuModuleLoadData(CUmodule* module, const void* image) {
  static const char kMagic[] = "KILNEMU\n";
  const char* img = static_cast<const char*>(image);
  if (strncmp(img, kMagic, sizeof(kMagic) - 1) != 0) return CUDA_ERROR_INVALID_IMAGE;
  std::string path(img + sizeof(kMagic) - 1);
  void* h = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (!h) {
    fprintf(stderr, "[cuda emulator] %s\n", dlerror());
    return CUDA_ERROR_INVALID_IMAGE;
  }
  *module = reinterpret_cast<CUmodule>(new Module{h});
  return CUDA_SUCCESS;
}
CUresult cuModuleUnload(CUmodule module) {
  auto* m = reinterpret_cast<Module*>(module);
  if (!m) return CUDA_ERROR_INVALID_HANDLE;
  // the shared object stays loaded: captured graphs may still hold its functions
  delete m;
  return CUDA_SUCCESS;
}
CUresult cuModuleGetFunction(CUfunction* fn, CUmodule module, const char* name) {
  auto* m = reinterpret_cast<Module*>(module);
  if (!m) return CUDA_ERROR_INVALID_HANDLE;
  const std::string n = name;
  Function f;
  f.bind = reinterpret_cast<BindFn>(dlsym(m->handle, ("kiln_emu_bind_" + n).c_str()));
  f.run = reinterpret_cast<RunFn>(dlsym(m->handle, ("kiln_emu_run_" + n).c_str()));
  f.free = reinterpret_cast<FreeFn>(dlsym(m->handle, ("kiln_emu_free_" + n).c_str()));
  if (!f.bind || !f.run || !f.free) return CUDA_ERROR_NOT_FOUND;
  *fn = reinterpret_cast<CUfunction>(new Function(f));  // lives as long as the process
  return CUDA_SUCCESS;
}

CUresult cuLaunchKernel(CUfunction fn, unsigned gx, unsigned gy, unsigned gz, unsigned bx, unsigned by, unsigned bz,
                        unsigned shared_bytes, CUstream stream, void** params, void** extra) {
  State& s = state();
  std::lock_guard lock(s.mu);
  auto* f = reinterpret_cast<Function*>(fn);
  if (!f) return CUDA_ERROR_INVALID_HANDLE;
  if (extra || shared_bytes > 0) return CUDA_ERROR_NOT_SUPPORTED;  // not used by Kiln's kernels
  if (gx == 0 || gy == 0 || gz == 0 || bx == 0 || by == 0 || bz == 0 || gy > 65535 || gz > 65535 ||
      size_t(bx) * by * bz > 1024 || bz > 64)
    return CUDA_ERROR_INVALID_VALUE;
  int bad = -1;
  void* args = f->bind(params, is_device_pointer, &bad);
  if (!args) {
    fprintf(stderr, "[cuda emulator] kernel argument %d is not device memory\n", bad);
    return CUDA_ERROR_ILLEGAL_ADDRESS;
  }
  std::shared_ptr<void> held(args, f->free);
  const unsigned grid[3] = {gx, gy, gz}, block[3] = {bx, by, bz};
  RunFn run = f->run;
  return enqueue(stream, [=] {
    std::lock_guard inner(state().mu);
    run(held.get(), grid, block);
  });
}

CUresult cuGetErrorName(CUresult r, const char** out) {
  switch (r) {
#define KILN_EMU_ERR(x) \
  case x:               \
    *out = #x;          \
    return CUDA_SUCCESS;
    KILN_EMU_ERR(CUDA_SUCCESS)
    KILN_EMU_ERR(CUDA_ERROR_INVALID_VALUE)
    KILN_EMU_ERR(CUDA_ERROR_OUT_OF_MEMORY)
    KILN_EMU_ERR(CUDA_ERROR_NOT_INITIALIZED)
    KILN_EMU_ERR(CUDA_ERROR_INVALID_DEVICE)
    KILN_EMU_ERR(CUDA_ERROR_INVALID_IMAGE)
    KILN_EMU_ERR(CUDA_ERROR_INVALID_HANDLE)
    KILN_EMU_ERR(CUDA_ERROR_NOT_FOUND)
    KILN_EMU_ERR(CUDA_ERROR_ILLEGAL_ADDRESS)
    KILN_EMU_ERR(CUDA_ERROR_ILLEGAL_STATE)
    KILN_EMU_ERR(CUDA_ERROR_NOT_SUPPORTED)
    KILN_EMU_ERR(CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED)
    KILN_EMU_ERR(CUDA_ERROR_STREAM_CAPTURE_INVALIDATED)
#undef KILN_EMU_ERR
    default:
      *out = nullptr;
      return CUDA_ERROR_INVALID_VALUE;
  }
}
CUresult cuGetErrorString(CUresult r, const char** out) {
  CUresult rc = cuGetErrorName(r, out);
  if (rc == CUDA_SUCCESS) *out = "reported by the Kiln CUDA emulator";
  return rc;
}

// ---- NVRTC ----

const char* nvrtcGetErrorString(nvrtcResult r) {
  return r == NVRTC_SUCCESS             ? "NVRTC_SUCCESS"
         : r == NVRTC_ERROR_COMPILATION ? "NVRTC_ERROR_COMPILATION"
                                        : "NVRTC_ERROR";
}
nvrtcResult nvrtcVersion(int* major, int* minor) {
  *major = 13;
  *minor = 0;
  return NVRTC_SUCCESS;
}
nvrtcResult nvrtcCreateProgram(nvrtcProgram* prog, const char* src, const char* name, int, const char* const*,
                               const char* const*) {
  auto* p = new Program();
  p->source = src;
  p->name = name ? name : "program.cu";
  *prog = reinterpret_cast<nvrtcProgram>(p);
  return NVRTC_SUCCESS;
}
nvrtcResult nvrtcDestroyProgram(nvrtcProgram* prog) {
  delete reinterpret_cast<Program*>(*prog);
  *prog = nullptr;
  return NVRTC_SUCCESS;
}
nvrtcResult nvrtcCompileProgram(nvrtcProgram prog, int, const char* const*) {
  auto* p = reinterpret_cast<Program*>(prog);
  const char* cxx = getenv("KILN_CUDA_EMULATOR_CXX");
  const std::string compiler = cxx && *cxx ? cxx : "c++";
  const std::string flags = "-std=c++17 -O1 -ffp-contract=off -fPIC -shared -w";
  const std::string program = host_program(p->source, p->name);
  char key[32];
  snprintf(key, sizeof(key), "%016llx", static_cast<unsigned long long>(fnv1a(compiler + flags + program)));
  const std::string dir = cache_dir(), base = dir + "/" + key, so = base + ".so";
  struct stat sb;
  if (stat(so.c_str(), &sb) != 0) {
    const std::string tmp = base + "." + std::to_string(getpid());
    std::ofstream(tmp + ".cpp") << program;
    const std::string cmd = compiler + " " + flags + " -o " + tmp + ".so " + tmp + ".cpp > " + tmp + ".log 2>&1";
    if (getenv("KILN_CUDA_EMULATOR_VERBOSE")) fprintf(stderr, "[cuda emulator] %s\n", cmd.c_str());
    const int rc = system(cmd.c_str());
    std::ifstream log(tmp + ".log");
    p->log.assign(std::istreambuf_iterator<char>(log), std::istreambuf_iterator<char>());
    remove((tmp + ".log").c_str());
    if (rc != 0) {
      remove((tmp + ".so").c_str());
      return NVRTC_ERROR_COMPILATION;
    }
    remove((tmp + ".cpp").c_str());
    rename((tmp + ".so").c_str(), so.c_str());  // atomic: other processes see all or nothing
  }
  p->image = "KILNEMU\n" + so;
  return NVRTC_SUCCESS;
}
nvrtcResult nvrtcGetProgramLogSize(nvrtcProgram prog, size_t* n) {
  *n = reinterpret_cast<Program*>(prog)->log.size() + 1;
  return NVRTC_SUCCESS;
}
nvrtcResult nvrtcGetProgramLog(nvrtcProgram prog, char* log) {
  const std::string& l = reinterpret_cast<Program*>(prog)->log;
  memcpy(log, l.c_str(), l.size() + 1);
  return NVRTC_SUCCESS;
}
nvrtcResult nvrtcGetCUBINSize(nvrtcProgram prog, size_t* n) {
  *n = reinterpret_cast<Program*>(prog)->image.size() + 1;
  return NVRTC_SUCCESS;
}
nvrtcResult nvrtcGetCUBIN(nvrtcProgram prog, char* out) {
  const std::string& img = reinterpret_cast<Program*>(prog)->image;
  memcpy(out, img.c_str(), img.size() + 1);
  return NVRTC_SUCCESS;
}

// ---- cuBLAS ----

struct cublasContext {
  CUstream stream = nullptr;
  bool user_workspace = false;  // cuBLAS forgets it when the stream is set
};

cublasStatus_t cublasCreate_v2(cublasHandle_t* h) {
  *h = new cublasContext();
  return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasSetStream_v2(cublasHandle_t h, cudaStream_t s) {
  h->stream = reinterpret_cast<CUstream>(s);
  h->user_workspace = false;
  return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasSetWorkspace_v2(cublasHandle_t h, void* workspace, size_t bytes) {
  std::lock_guard lock(state().mu);
  if (!in_device_memory(workspace, bytes)) {
    fprintf(stderr, "[cuda emulator] cublasSetWorkspace: %zu bytes at %p are not device memory\n", bytes, workspace);
    return CUBLAS_STATUS_INVALID_VALUE;
  }
  h->user_workspace = true;
  return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasSetMathMode(cublasHandle_t, cublasMath_t) { return CUBLAS_STATUS_SUCCESS; }

}  // extern "C"

namespace {

// Column-major C = alpha op(A) op(B) + beta C for each batch, as cuBLAS defines it.
template <class T>
cublasStatus_t gemm(cublasHandle_t h, cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k, const T* alpha,
                    const T* A, int lda, long long sa, const T* B, int ldb, long long sb, const T* beta, T* C, int ldc,
                    long long sc, int batches) {
  State& s = state();
  std::lock_guard lock(s.mu);
  if (m < 0 || n < 0 || k < 0 || batches < 0) return CUBLAS_STATUS_INVALID_VALUE;
  auto* st = reinterpret_cast<Stream*>(h->stream);
  if (st && st->capturing && !h->user_workspace) {
    // cuBLAS would take workspace from its pool, which a capture cannot replay reliably
    fprintf(stderr, "[cuda emulator] a GEMM captured without cublasSetWorkspace\n");
    return CUBLAS_STATUS_NOT_SUPPORTED;
  }
  if (m == 0 || n == 0 || batches == 0) return CUBLAS_STATUS_SUCCESS;
  const size_t last = size_t(batches - 1);
  const size_t a_extent = (ta == CUBLAS_OP_N ? size_t(lda) * (k ? k - 1 : 0) + m : size_t(lda) * (m - 1) + k);
  const size_t b_extent = (tb == CUBLAS_OP_N ? size_t(ldb) * (n - 1) + k : size_t(ldb) * (k ? k - 1 : 0) + n);
  if ((k > 0 && (!in_device_memory(A, (last * size_t(sa) + a_extent) * sizeof(T)) ||
                 !in_device_memory(B, (last * size_t(sb) + b_extent) * sizeof(T)))) ||
      !in_device_memory(C, (last * size_t(sc) + size_t(ldc) * (n - 1) + m) * sizeof(T)))
    return CUBLAS_STATUS_EXECUTION_FAILED;
  const T al = *alpha, be = *beta;
  enqueue(h->stream, [=] {
    for (int b = 0; b < batches; ++b) {
      const T* a = A + b * sa;
      const T* bb = B + b * sb;
      T* c = C + b * sc;
      for (int j = 0; j < n; ++j)
        for (int i = 0; i < m; ++i) {
          T sum = 0;
          for (int l = 0; l < k; ++l)
            sum += (ta == CUBLAS_OP_N ? a[i + size_t(l) * lda] : a[l + size_t(i) * lda]) *
                   (tb == CUBLAS_OP_N ? bb[l + size_t(j) * ldb] : bb[j + size_t(l) * ldb]);
          T& out = c[i + size_t(j) * ldc];
          out = be == T(0) ? al * sum : al * sum + be * out;
        }
    }
  });
  return CUBLAS_STATUS_SUCCESS;
}

}  // namespace

extern "C" {
cublasStatus_t cublasSgemmStridedBatched(cublasHandle_t h, cublasOperation_t ta, cublasOperation_t tb, int m, int n,
                                         int k, const float* alpha, const float* A, int lda, long long sa,
                                         const float* B, int ldb, long long sb, const float* beta, float* C, int ldc,
                                         long long sc, int batches) {
  return gemm(h, ta, tb, m, n, k, alpha, A, lda, sa, B, ldb, sb, beta, C, ldc, sc, batches);
}
cublasStatus_t cublasDgemmStridedBatched(cublasHandle_t h, cublasOperation_t ta, cublasOperation_t tb, int m, int n,
                                         int k, const double* alpha, const double* A, int lda, long long sa,
                                         const double* B, int ldb, long long sb, const double* beta, double* C, int ldc,
                                         long long sc, int batches) {
  return gemm(h, ta, tb, m, n, k, alpha, A, lda, sa, B, ldb, sb, beta, C, ldc, sc, batches);
}
}

// ---- cuBLASLt ----
// The subset Kiln uses: column-major D = alpha op(A) op(B) + beta C (+ a bias per row of D) of
// float32, float16 or bfloat16 matrices (all of one type, float32 sums), strided batches, the
// DEFAULT and BIAS epilogues. The heuristics hand out one
// "algorithm" that records the alignment it was chosen for; a matmul whose operands are less
// aligned fails, as an algorithm using wider loads would.

struct cublasLtContext {};
struct cublasLtMatmulDescOpaque_emu {
  cublasComputeType_t compute{};
  cudaDataType_t scale{};
  int32_t ta = CUBLAS_OP_N, tb = CUBLAS_OP_N;
  uint32_t epilogue = CUBLASLT_EPILOGUE_DEFAULT;
  const void* bias = nullptr;
};
struct cublasLtMatrixLayoutOpaque_emu {
  cudaDataType_t type{};
  uint64_t rows = 0, cols = 0;
  int64_t ld = 0;
  int32_t batches = 1;
  int64_t stride = 0;
};
struct cublasLtMatmulPreferenceOpaque_emu {
  uint64_t workspace = 0;
  uint32_t align[4] = {256, 256, 256, 256};  // A, B, C, D: cuBLASLt's defaults
};

namespace {

using LtDesc = cublasLtMatmulDescOpaque_emu;
using LtLayout = cublasLtMatrixLayoutOpaque_emu;

template <class T>
cublasStatus_t set_value(T& field, const void* buf, size_t size) {
  if (!buf || size != sizeof(T)) return CUBLAS_STATUS_INVALID_VALUE;
  memcpy(&field, buf, sizeof(T));
  return CUBLAS_STATUS_SUCCESS;
}

// Whether the matmul's shapes agree: op(A) is M x K, op(B) K x N, C and D M x N, batch counts
// equal, float32 everywhere, an epilogue this emulator knows.
bool lt_valid(const LtDesc* d, const LtLayout* a, const LtLayout* b, const LtLayout* c, const LtLayout* dd) {
  if (!dd || (dd->type != CUDA_R_32F && dd->type != CUDA_R_16F && dd->type != CUDA_R_16BF)) return false;
  for (const LtLayout* l : {a, b, c, dd})
    if (!l || l->type != dd->type || l->ld < int64_t(l->rows) || l->batches != dd->batches) return false;
  const uint64_t m = d->ta == CUBLAS_OP_N ? a->rows : a->cols, k = d->ta == CUBLAS_OP_N ? a->cols : a->rows;
  const uint64_t kb = d->tb == CUBLAS_OP_N ? b->rows : b->cols, n = d->tb == CUBLAS_OP_N ? b->cols : b->rows;
  return d->compute == CUBLAS_COMPUTE_32F && d->scale == CUDA_R_32F && k == kb && c->rows == m && c->cols == n &&
         dd->rows == m && dd->cols == n && c->ld == dd->ld &&
         (d->epilogue == CUBLASLT_EPILOGUE_DEFAULT || d->epilogue == CUBLASLT_EPILOGUE_BIAS);
}

cublasStatus_t not_emulated(const char* call, int attr) {
  fprintf(stderr, "[cuda emulator] %s: attribute %d is not emulated\n", call, attr);
  return CUBLAS_STATUS_NOT_SUPPORTED;
}

uint32_t alignment_of(const void* p) {
  const auto v = reinterpret_cast<uintptr_t>(p);
  return v == 0 ? 256u : uint32_t(std::min<uintptr_t>(256, v & (~v + 1)));
}

size_t element_size(cudaDataType_t t) { return t == CUDA_R_32F ? 4 : 2; }

// Element i of a matrix of type t, as float; storing one rounds to nearest even.
float lt_load(const void* p, cudaDataType_t t, int64_t i) {
  if (t == CUDA_R_32F) return static_cast<const float*>(p)[i];
  const uint16_t bits = static_cast<const uint16_t*>(p)[i];
  return t == CUDA_R_16F ? kiln::detail::half_bits_to_float(bits) : kiln::detail::bf16_bits_to_float(bits);
}
void lt_store(void* p, cudaDataType_t t, int64_t i, float v) {
  if (t == CUDA_R_32F) {
    static_cast<float*>(p)[i] = v;
    return;
  }
  static_cast<uint16_t*>(p)[i] =
      t == CUDA_R_16F ? kiln::detail::float_to_half_bits(v) : kiln::detail::float_to_bf16_bits(v);
}

size_t extent(const LtLayout* l) {
  return size_t(l->batches - 1) * size_t(l->stride) + size_t(l->ld) * (l->cols - 1) + l->rows;
}

}  // namespace

extern "C" {

cublasStatus_t cublasLtCreate(cublasLtHandle_t* h) {
  *h = new cublasLtContext();
  return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasLtDestroy(cublasLtHandle_t h) {
  delete h;
  return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasLtMatmulDescCreate(cublasLtMatmulDesc_t* d, cublasComputeType_t compute, cudaDataType_t scale) {
  auto* desc = new LtDesc();
  desc->compute = compute;
  desc->scale = scale;
  *d = reinterpret_cast<cublasLtMatmulDesc_t>(desc);
  return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasLtMatmulDescDestroy(cublasLtMatmulDesc_t d) {
  delete reinterpret_cast<LtDesc*>(d);
  return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasLtMatmulDescSetAttribute(cublasLtMatmulDesc_t desc, cublasLtMatmulDescAttributes_t attr,
                                              const void* buf, size_t size) {
  auto* d = reinterpret_cast<LtDesc*>(desc);
  switch (attr) {
    case CUBLASLT_MATMUL_DESC_TRANSA:
      return set_value(d->ta, buf, size);
    case CUBLASLT_MATMUL_DESC_TRANSB:
      return set_value(d->tb, buf, size);
    case CUBLASLT_MATMUL_DESC_EPILOGUE:
      return set_value(d->epilogue, buf, size);
    case CUBLASLT_MATMUL_DESC_BIAS_POINTER:
      return set_value(d->bias, buf, size);
    default:
      return not_emulated("cublasLtMatmulDescSetAttribute", int(attr));
  }
}
cublasStatus_t cublasLtMatrixLayoutCreate(cublasLtMatrixLayout_t* l, cudaDataType type, uint64_t rows, uint64_t cols,
                                          int64_t ld) {
  auto* layout = new LtLayout();
  layout->type = type;
  layout->rows = rows;
  layout->cols = cols;
  layout->ld = ld;
  *l = reinterpret_cast<cublasLtMatrixLayout_t>(layout);
  return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasLtMatrixLayoutDestroy(cublasLtMatrixLayout_t l) {
  delete reinterpret_cast<LtLayout*>(l);
  return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasLtMatrixLayoutSetAttribute(cublasLtMatrixLayout_t layout, cublasLtMatrixLayoutAttribute_t attr,
                                                const void* buf, size_t size) {
  auto* l = reinterpret_cast<LtLayout*>(layout);
  switch (attr) {
    case CUBLASLT_MATRIX_LAYOUT_BATCH_COUNT:
      return set_value(l->batches, buf, size);
    case CUBLASLT_MATRIX_LAYOUT_STRIDED_BATCH_OFFSET:
      return set_value(l->stride, buf, size);
    default:
      return not_emulated("cublasLtMatrixLayoutSetAttribute", int(attr));
  }
}
cublasStatus_t cublasLtMatmulPreferenceCreate(cublasLtMatmulPreference_t* p) {
  *p = reinterpret_cast<cublasLtMatmulPreference_t>(new cublasLtMatmulPreferenceOpaque_emu());
  return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasLtMatmulPreferenceDestroy(cublasLtMatmulPreference_t p) {
  delete reinterpret_cast<cublasLtMatmulPreferenceOpaque_emu*>(p);
  return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasLtMatmulPreferenceSetAttribute(cublasLtMatmulPreference_t pref,
                                                    cublasLtMatmulPreferenceAttributes_t attr, const void* buf,
                                                    size_t size) {
  auto* p = reinterpret_cast<cublasLtMatmulPreferenceOpaque_emu*>(pref);
  switch (attr) {
    case CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES:
      return set_value(p->workspace, buf, size);
    case CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES:
    case CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES:
    case CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES:
    case CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES:
      return set_value(p->align[attr - CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES], buf, size);
    default:
      return not_emulated("cublasLtMatmulPreferenceSetAttribute", int(attr));
  }
}

// One algorithm: data[0] the alignment (bytes) every operand must have, the least the
// preference allows (and the bias address in the descriptor, for a bias epilogue).
cublasStatus_t cublasLtMatmulAlgoGetHeuristic(cublasLtHandle_t, cublasLtMatmulDesc_t desc, cublasLtMatrixLayout_t a,
                                              cublasLtMatrixLayout_t b, cublasLtMatrixLayout_t c,
                                              cublasLtMatrixLayout_t d, cublasLtMatmulPreference_t pref, int requested,
                                              cublasLtMatmulHeuristicResult_t results[], int* found) {
  auto* dsc = reinterpret_cast<const LtDesc*>(desc);
  auto* p = reinterpret_cast<const cublasLtMatmulPreferenceOpaque_emu*>(pref);
  if (requested < 1 || !found) return CUBLAS_STATUS_INVALID_VALUE;
  *found = 0;
  if (!lt_valid(dsc, reinterpret_cast<const LtLayout*>(a), reinterpret_cast<const LtLayout*>(b),
                reinterpret_cast<const LtLayout*>(c), reinterpret_cast<const LtLayout*>(d)))
    return CUBLAS_STATUS_NOT_SUPPORTED;
  uint32_t align = std::min(std::min(p->align[0], p->align[1]), std::min(p->align[2], p->align[3]));
  if (dsc->epilogue == CUBLASLT_EPILOGUE_BIAS) align = std::min(align, alignment_of(dsc->bias));
  if (align < element_size(reinterpret_cast<const LtLayout*>(d)->type))
    return CUBLAS_STATUS_SUCCESS;  // no algorithm reads elements that unaligned
  results[0] = cublasLtMatmulHeuristicResult_t{};
  results[0].algo.data[0] = align;
  results[0].state = CUBLAS_STATUS_SUCCESS;
  results[0].wavesCount = 1;
  *found = 1;
  return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasLtMatmul(cublasLtHandle_t, cublasLtMatmulDesc_t desc, const void* alpha, const void* A,
                              cublasLtMatrixLayout_t adesc, const void* B, cublasLtMatrixLayout_t bdesc,
                              const void* beta, const void* C, cublasLtMatrixLayout_t cdesc, void* D,
                              cublasLtMatrixLayout_t ddesc, const cublasLtMatmulAlgo_t* algo, void* workspace,
                              size_t workspace_bytes, cudaStream_t stream) {
  const LtDesc dsc = *reinterpret_cast<const LtDesc*>(desc);  // the call's values: the descriptor may change after
  const LtLayout la = *reinterpret_cast<const LtLayout*>(adesc), lb = *reinterpret_cast<const LtLayout*>(bdesc),
                 lc = *reinterpret_cast<const LtLayout*>(cdesc), ld = *reinterpret_cast<const LtLayout*>(ddesc);
  if (!algo || !alpha || !beta || !lt_valid(&dsc, &la, &lb, &lc, &ld)) return CUBLAS_STATUS_INVALID_VALUE;
  State& s = state();
  std::lock_guard lock(s.mu);
  const float al = *static_cast<const float*>(alpha), be = *static_cast<const float*>(beta);
  const bool bias = dsc.epilogue == CUBLASLT_EPILOGUE_BIAS;
  const cudaDataType_t t = ld.type;
  const size_t es = element_size(t);
  const uint32_t need = uint32_t(algo->data[0]);
  for (const void* p : {A, B, C, static_cast<const void*>(D), bias ? dsc.bias : nullptr})
    if (p && alignment_of(p) < need) {
      fprintf(stderr, "[cuda emulator] cublasLtMatmul: %p is not aligned to the %u bytes its algorithm needs\n", p,
              need);
      return CUBLAS_STATUS_NOT_SUPPORTED;
    }
  if ((workspace_bytes && !in_device_memory(workspace, workspace_bytes)) || !in_device_memory(A, extent(&la) * es) ||
      !in_device_memory(B, extent(&lb) * es) || (be != 0 && !in_device_memory(C, extent(&lc) * es)) ||
      !in_device_memory(D, extent(&ld) * es) || (bias && !in_device_memory(dsc.bias, ld.rows * es)))
    return CUBLAS_STATUS_EXECUTION_FAILED;
  const int64_t m = int64_t(ld.rows), n = int64_t(ld.cols);
  const int64_t k = int64_t(dsc.ta == CUBLAS_OP_N ? la.cols : la.rows);
  const void* bv = dsc.bias;
  enqueue(reinterpret_cast<CUstream>(stream), [=] {
    for (int64_t b = 0; b < ld.batches; ++b) {
      const int64_t oa = b * la.stride, ob = b * lb.stride, oc = b * lc.stride, od = b * ld.stride;
      for (int64_t j = 0; j < n; ++j)
        for (int64_t i = 0; i < m; ++i) {
          float sum = 0;
          for (int64_t l = 0; l < k; ++l)
            sum += lt_load(A, t, oa + (dsc.ta == CUBLAS_OP_N ? i + l * la.ld : l + i * la.ld)) *
                   lt_load(B, t, ob + (dsc.tb == CUBLAS_OP_N ? l + j * lb.ld : j + l * lb.ld));
          float v = al * sum;
          if (be != 0) v += be * lt_load(C, t, oc + i + j * lc.ld);
          if (bias) v += lt_load(bv, t, i);
          lt_store(D, t, od + i + j * ld.ld, v);
        }
    }
  });
  return CUBLAS_STATUS_SUCCESS;
}

}  // extern "C"
