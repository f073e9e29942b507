// cuBLASLt matmuls (blas_lt.h): the library loaded with dlopen, a handle per device, and per
// plan the descriptors and two algorithms, one for 16-byte aligned operands and one for any
// element-aligned ones.
#include "ops/kernels/cuda/blas_lt.h"

#include <atomic>

namespace kiln::ops::cuda {
namespace {
std::atomic<uint64_t> g_planned{0};
}  // namespace

uint64_t lt_matmuls_planned() { return g_planned.load(std::memory_order_relaxed); }

}  // namespace kiln::ops::cuda

#if KILN_WITH_CUDA
#include <cublasLt.h>
#include <dlfcn.h>

#include <mutex>
#include <unordered_map>

#include "ops/kernels/cuda/kernels.h"
#include "runtime/cuda/cuda.h"
#include "runtime/cuda/driver_api.h"
#include "runtime/errors.h"

namespace kiln::ops::cuda {
namespace {

#define KILN_CUBLASLT_FUNCTIONS(X)        \
  X(cublasLtCreate)                       \
  X(cublasLtMatmulDescCreate)             \
  X(cublasLtMatmulDescSetAttribute)       \
  X(cublasLtMatmulDescDestroy)            \
  X(cublasLtMatrixLayoutCreate)           \
  X(cublasLtMatrixLayoutSetAttribute)     \
  X(cublasLtMatrixLayoutDestroy)          \
  X(cublasLtMatmulPreferenceCreate)       \
  X(cublasLtMatmulPreferenceSetAttribute) \
  X(cublasLtMatmulPreferenceDestroy)      \
  X(cublasLtMatmulAlgoGetHeuristic)       \
  X(cublasLtMatmul)

struct CublasLt {
#define KILN_MEMBER(name) decltype(&::name) name = nullptr;
  KILN_CUBLASLT_FUNCTIONS(KILN_MEMBER)
#undef KILN_MEMBER
  std::string error;
};

const CublasLt& cublas_lt() {
  static const CublasLt* api = [] {
    auto* t = new CublasLt();
    std::string err;
    void* lib =
        kiln::cuda::open_library({"libcublasLt.so." KILN_CUDA_STR(KILN_CUDA_TOOLKIT_MAJOR), "libcublasLt.so"}, err);
    if (!lib) {
      t->error = "cuBLASLt (libcublasLt.so) is not installed: " + err;
      return t;
    }
    KILN_CUBLASLT_FUNCTIONS(KILN_CUDA_RESOLVE)
    return t;
  }();
  return *api;
}

// One cuBLASLt handle per device, made with the device current.
cublasLtHandle_t lt_handle(int device) {
  static std::mutex mu;
  static std::unordered_map<int, cublasLtHandle_t> handles;
  std::lock_guard lock(mu);
  cublasLtHandle_t& h = handles[device];
  if (!h) {
    kiln::cuda::set_device(device);
    if (cublas_lt().cublasLtCreate(&h) != CUBLAS_STATUS_SUCCESS) {
      h = nullptr;
      fail<Internal>("matmul", "cublasLtCreate failed on GPU:", device);
    }
  }
  return h;
}

constexpr uint32_t kFastAlignment = 16;

cudaDataType_t cuda_type(DType d) {
  return d == DType::Float16 ? CUDA_R_16F : d == DType::BFloat16 ? CUDA_R_16BF : CUDA_R_32F;
}

}  // namespace

struct LtMatmul::Impl {
  const CublasLt& api = cublas_lt();
  cublasLtHandle_t handle = nullptr;
  cublasLtMatmulDesc_t desc = nullptr;
  cublasLtMatrixLayout_t a = nullptr, b = nullptr, d = nullptr;
  cublasLtMatmulAlgo_t fast{}, any{};  // 16-byte aligned operands; element-aligned ones
  bool has_fast = false;
  void* workspace = nullptr;
  size_t workspace_bytes = 0;
  std::mutex mu;  // the bias pointer is set in the descriptor per call

  ~Impl() {
    if (desc) api.cublasLtMatmulDescDestroy(desc);
    for (cublasLtMatrixLayout_t l : {a, b, d})
      if (l) api.cublasLtMatrixLayoutDestroy(l);
  }
};

LtMatmul::LtMatmul(int device, const LtMatmulShape& s) : device_(device), shape_(s), impl_(std::make_unique<Impl>()) {}
LtMatmul::~LtMatmul() = default;

std::unique_ptr<LtMatmul> LtMatmul::plan(int device, const LtMatmulShape& s, std::string* why) {
  if (const std::string& err = cublas_lt().error; !err.empty()) {
    *why = err;
    return nullptr;
  }
  if (s.m <= 0 || s.n <= 0 || s.k <= 0 || s.batches <= 0 || (s.bias && s.batches > 1) ||
      (s.dtype != DType::Float32 && s.dtype != DType::Float16 && s.dtype != DType::BFloat16)) {
    *why = "not a shape cuBLASLt plans here";
    return nullptr;
  }
  std::unique_ptr<LtMatmul> lt(new LtMatmul(device, s));
  Impl& im = *lt->impl_;
  const CublasLt& api = im.api;
  try {
    im.handle = lt_handle(device);
  } catch (const Error& e) {
    *why = e.what();
    return nullptr;
  }
  im.workspace = blas_workspace(device, &im.workspace_bytes);
  auto ok = [&](cublasStatus_t st, const char* call) {
    if (st != CUBLAS_STATUS_SUCCESS) *why = std::string(call) + " failed with status " + std::to_string(int(st));
    return st == CUBLAS_STATUS_SUCCESS;
  };
  // row-major D = op(A) op(B) is column-major D^T = op(B)^T op(A)^T: cuBLASLt's A is our B
  // (n x k after its op), its B our A (k x m), D is n x m with leading dimension n; the bias,
  // one per row of cuBLASLt's D, is one per column of ours
  const cublasOperation_t op_lt_a = s.tb ? CUBLAS_OP_T : CUBLAS_OP_N, op_lt_b = s.ta ? CUBLAS_OP_T : CUBLAS_OP_N;
  const cublasLtEpilogue_t epilogue = s.bias ? CUBLASLT_EPILOGUE_BIAS : CUBLASLT_EPILOGUE_DEFAULT;
  if (!ok(api.cublasLtMatmulDescCreate(&im.desc, CUBLAS_COMPUTE_32F, CUDA_R_32F), "cublasLtMatmulDescCreate") ||
      !ok(api.cublasLtMatmulDescSetAttribute(im.desc, CUBLASLT_MATMUL_DESC_TRANSA, &op_lt_a, sizeof(op_lt_a)),
          "cublasLtMatmulDescSetAttribute") ||
      !ok(api.cublasLtMatmulDescSetAttribute(im.desc, CUBLASLT_MATMUL_DESC_TRANSB, &op_lt_b, sizeof(op_lt_b)),
          "cublasLtMatmulDescSetAttribute") ||
      !ok(api.cublasLtMatmulDescSetAttribute(im.desc, CUBLASLT_MATMUL_DESC_EPILOGUE, &epilogue, sizeof(epilogue)),
          "cublasLtMatmulDescSetAttribute"))
    return nullptr;
  auto layout = [&](cublasLtMatrixLayout_t* l, uint64_t rows, uint64_t cols, int64_t ld, int64_t stride) {
    if (!ok(api.cublasLtMatrixLayoutCreate(l, cuda_type(s.dtype), rows, cols, ld), "cublasLtMatrixLayoutCreate"))
      return false;
    if (s.batches == 1) return true;
    const int32_t count = int32_t(s.batches);
    return ok(api.cublasLtMatrixLayoutSetAttribute(*l, CUBLASLT_MATRIX_LAYOUT_BATCH_COUNT, &count, sizeof(count)),
              "cublasLtMatrixLayoutSetAttribute") &&
           ok(api.cublasLtMatrixLayoutSetAttribute(*l, CUBLASLT_MATRIX_LAYOUT_STRIDED_BATCH_OFFSET, &stride,
                                                   sizeof(stride)),
              "cublasLtMatrixLayoutSetAttribute");
  };
  // the stored matrices, column-major, before their op: our B is n x k (tb) or k x n, seen
  // column-major as (tb ? k x n : n x k) with leading dimension tb ? k : n; likewise A
  if (!layout(&im.a, uint64_t(s.tb ? s.k : s.n), uint64_t(s.tb ? s.n : s.k), s.tb ? s.k : s.n, s.b_stride) ||
      !layout(&im.b, uint64_t(s.ta ? s.m : s.k), uint64_t(s.ta ? s.k : s.m), s.ta ? s.m : s.k, s.a_stride) ||
      !layout(&im.d, uint64_t(s.n), uint64_t(s.m), s.n, s.m * s.n))
    return nullptr;
  // an algorithm for operands of `align` bytes: the bias address the descriptor holds when the
  // heuristics run tells them the bias's alignment
  auto heuristic = [&](uint32_t align, cublasLtMatmulAlgo_t* algo) {
    cublasLtMatmulPreference_t pref = nullptr;
    if (!ok(api.cublasLtMatmulPreferenceCreate(&pref), "cublasLtMatmulPreferenceCreate")) return false;
    const uint64_t ws = im.workspace_bytes;
    bool set =
        ok(api.cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &ws, sizeof(ws)),
           "cublasLtMatmulPreferenceSetAttribute");
    for (auto attr : {CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES,
                      CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES})
      set = set && ok(api.cublasLtMatmulPreferenceSetAttribute(pref, attr, &align, sizeof(align)),
                      "cublasLtMatmulPreferenceSetAttribute");
    const void* bias_hint = reinterpret_cast<const void*>(uintptr_t(align));
    if (set && s.bias)
      set = ok(
          api.cublasLtMatmulDescSetAttribute(im.desc, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &bias_hint, sizeof(bias_hint)),
          "cublasLtMatmulDescSetAttribute");
    cublasLtMatmulHeuristicResult_t result{};
    int found = 0;
    if (set)
      set = ok(api.cublasLtMatmulAlgoGetHeuristic(im.handle, im.desc, im.a, im.b, im.d, im.d, pref, 1, &result, &found),
               "cublasLtMatmulAlgoGetHeuristic");
    api.cublasLtMatmulPreferenceDestroy(pref);
    if (set && found == 0) *why = "cuBLASLt has no algorithm for it";
    if (!set || found == 0) return false;
    *algo = result.algo;
    return true;
  };
  if (!heuristic(uint32_t(dtype_size(s.dtype)), &im.any)) return nullptr;
  im.has_fast = heuristic(kFastAlignment, &im.fast);
  why->clear();
  g_planned.fetch_add(1, std::memory_order_relaxed);
  return lt;
}

void LtMatmul::run(std::string_view who, const void* a, const void* b, const void* c, const void* bias, void* d) const {
  Impl& im = *impl_;
  const LtMatmulShape& s = shape_;
  bool aligned = im.has_fast;
  for (const void* p : {a, b, c, bias, static_cast<const void*>(d)})
    aligned = aligned && reinterpret_cast<uintptr_t>(p) % kFastAlignment == 0;  // null counts as aligned
  if (!c) c = d;                                                                // read only when beta != 0
  kiln::cuda::set_device(device_);
  std::lock_guard lock(im.mu);
  if (s.bias) {
    cublasStatus_t st =
        im.api.cublasLtMatmulDescSetAttribute(im.desc, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &bias, sizeof(bias));
    if (st != CUBLAS_STATUS_SUCCESS) fail<Internal>(who, "cuBLASLt: setting the bias failed with status ", int(st));
  }
  // cuBLASLt's A is our B and its B our A (see plan)
  cublasStatus_t st = im.api.cublasLtMatmul(im.handle, im.desc, &s.alpha, b, im.a, a, im.b, &s.beta, c, im.d, d, im.d,
                                            aligned ? &im.fast : &im.any, im.workspace, im.workspace_bytes,
                                            static_cast<cudaStream_t>(kiln::cuda::stream(device_)));
  if (st != CUBLAS_STATUS_SUCCESS)
    fail<Internal>(who, "cuBLASLt matmul ", s.batches, "x", s.m, "x", s.n, "x", s.k, " failed with status ", int(st));
}

}  // namespace kiln::ops::cuda
#endif  // KILN_WITH_CUDA
