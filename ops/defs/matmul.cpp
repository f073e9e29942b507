// MatMul: batched matrix products with transpose flags and broadcast batch axes. float32 goes to
// oneDNN's sgemm and bfloat16 to a cached oneDNN matmul primitive (the only types oneDNN 2.x
// computes on a CPU); every other dtype, and tiny float32 products where a library call costs
// more than the arithmetic, use Kiln's own loops.
#include <cstring>
#include <map>
#include <tuple>
#include <vector>

#include "ops/defs/elementwise_common.h"
#include "ops/kernels/cpu/loops.h"
#include "ops/kernels/cpu/scalar_fn.h"
#include "runtime/allocator.h"

#ifdef KILN_WITH_ONEDNN
#include <oneapi/dnnl/dnnl.h>
#include <oneapi/dnnl/dnnl.hpp>
#endif

namespace kiln::ops {
namespace {

struct MatDims {
  int64_t m, n, k;
};

MatDims mat_dims(const Shape& a, const Shape& b, bool ta, bool tb) {
  int64_t ra = a.rank(), rb = b.rank();
  return {ta ? a.dim(ra - 1) : a.dim(ra - 2), tb ? b.dim(rb - 2) : b.dim(rb - 1), ta ? a.dim(ra - 2) : a.dim(ra - 1)};
}

TypeList infer_matmul(const OpDef& def, const Attrs& attrs, std::span<const Tensor> in) {
  const Tensor &a = in[0], &b = in[1];
  check_same_dtype(def.name, a, b);
  check_dtype_class(def.name, "a", a.dtype(), S | U | F | C);
  if (a.ndim() < 2 || b.ndim() < 2)
    fail<InvalidArgument>(def.name, "both operands must have rank >= 2, got shapes ", a.shape().to_list_string(),
                          " and ", b.shape().to_list_string());
  bool ta = attrs.get_bool("transpose_a"), tb = attrs.get_bool("transpose_b");
  MatDims d = mat_dims(a.shape(), b.shape(), ta, tb);
  int64_t kb = tb ? b.shape().dim(b.ndim() - 1) : b.shape().dim(b.ndim() - 2);
  if (d.k != kb && d.k >= 0 && kb >= 0)
    fail<InvalidArgument>(def.name, "inner dimensions do not match: a ", a.shape().to_list_string(),
                          ta ? " (transposed)" : "", " has ", d.k, " columns but b ", b.shape().to_list_string(),
                          tb ? " (transposed)" : "", " has ", kb, " rows");
  Shape ba(std::span<const int64_t>(a.shape().dims().data(), static_cast<size_t>(a.ndim() - 2)));
  Shape bb(std::span<const int64_t>(b.shape().dims().data(), static_cast<size_t>(b.ndim() - 2)));
  Shape out = broadcast_shapes(def.name, ba, bb);
  out.push_back(d.m);
  out.push_back(d.n);
  return {TensorType{a.dtype(), out}};
}

using cpu::acc_t;

// C[m x n] = op(A) op(B) with op(B) made row-contiguous first, so the inner loop is a saxpy.
template <class T>
void gemm_loops(const MatDims& d, const T* a, bool ta, const T* b, bool tb, T* c) {
  using Acc = acc_t<T>;
  const int64_t M = d.m, N = d.n, K = d.k;
  std::vector<Acc> bt(static_cast<size_t>(K * N));
  for (int64_t k = 0; k < K; ++k)
    for (int64_t j = 0; j < N; ++j) bt[k * N + j] = static_cast<Acc>(tb ? b[j * K + k] : b[k * N + j]);
  auto rows = [&](int64_t i0, int64_t i1) {
    std::vector<Acc> acc(static_cast<size_t>(N));
    for (int64_t i = i0; i < i1; ++i) {
      std::fill(acc.begin(), acc.end(), Acc(0));
      for (int64_t k = 0; k < K; ++k) {
        const Acc av = static_cast<Acc>(ta ? a[k * M + i] : a[i * K + k]);
        const Acc* brow = bt.data() + k * N;
        for (int64_t j = 0; j < N; ++j) acc[j] += av * brow[j];
      }
      for (int64_t j = 0; j < N; ++j) c[i * N + j] = static_cast<T>(acc[j]);
    }
  };
  int64_t work_per_row = std::max<int64_t>(1, N * K);
  parallel_for(M, std::max<int64_t>(1, cpu::kParallelGrain / work_per_row), rows);
}

// Tiny products (the `power(x, 100)` pattern): op(B) is copied into a zero-padded stack tile of
// NP columns so the inner loop has a compile-time width and vectorizes; no heap allocation.
template <class T, int NP>
void gemm_tiny_fixed(const MatDims& d, const T* a, bool ta, const T* b, bool tb, T* c) {
  using Acc = acc_t<T>;
  constexpr int kMaxK = 64;
  Acc bp[kMaxK][NP];
  for (int64_t k = 0; k < d.k; ++k)
    for (int64_t j = 0; j < NP; ++j)
      bp[k][j] = j < d.n ? static_cast<Acc>(tb ? b[j * d.k + k] : b[k * d.n + j]) : Acc(0);
  for (int64_t i = 0; i < d.m; ++i) {
    Acc acc[NP] = {};
    for (int64_t k = 0; k < d.k; ++k) {
      const Acc av = static_cast<Acc>(ta ? a[k * d.m + i] : a[i * d.k + k]);
      for (int j = 0; j < NP; ++j) acc[j] += av * bp[k][j];
    }
    for (int64_t j = 0; j < d.n; ++j) c[i * d.n + j] = static_cast<T>(acc[j]);
  }
}

template <class T>
bool gemm_tiny(const MatDims& d, const T* a, bool ta, const T* b, bool tb, T* c) {
  if (d.k > 64 || d.n > 32 || d.m > 64) return false;
  if (d.n <= 16)
    gemm_tiny_fixed<T, 16>(d, a, ta, b, tb, c);
  else
    gemm_tiny_fixed<T, 32>(d, a, ta, b, tb, c);
  return true;
}

#ifdef KILN_WITH_ONEDNN
void check_dnnl(dnnl_status_t st, const char* what) {
  if (st != dnnl_success) fail<Internal>("matmul", "oneDNN ", what, " failed with status ", static_cast<int>(st));
}

void sgemm(const MatDims& d, const float* a, bool ta, const float* b, bool tb, float* c) {
  check_dnnl(dnnl_sgemm(ta ? 'T' : 'N', tb ? 'T' : 'N', d.m, d.n, d.k, 1.0f, a, ta ? d.m : d.k, b, tb ? d.k : d.n, 0.0f,
                        c, d.n),
             "sgemm");
}

// bfloat16 through a oneDNN matmul primitive, cached per thread by problem size.
void bf16_gemm(const MatDims& d, const BFloat16* a, bool ta, const BFloat16* b, bool tb, BFloat16* c) {
  using dnnl::engine;
  using dnnl::matmul;
  using dnnl::stream;
  using mem = dnnl::memory;
  using dt = mem::data_type;
  struct Cached {
    matmul prim;
    mem::desc a, b, c;
  };
  thread_local engine eng(engine::kind::cpu, 0);
  thread_local stream strm(eng);
  thread_local std::map<std::tuple<int64_t, int64_t, int64_t, bool, bool>, Cached> cache;
  auto key = std::make_tuple(d.m, d.n, d.k, ta, tb);
  auto it = cache.find(key);
  try {
    if (it == cache.end()) {
      mem::desc amd({d.m, d.k}, dt::bf16, ta ? mem::dims{1, d.m} : mem::dims{d.k, 1});
      mem::desc bmd({d.k, d.n}, dt::bf16, tb ? mem::dims{1, d.k} : mem::dims{d.n, 1});
      mem::desc cmd({d.m, d.n}, dt::bf16, mem::dims{d.n, 1});
      matmul::primitive_desc pd(matmul::desc(amd, bmd, cmd), eng);
      if (cache.size() > 256) cache.clear();
      it = cache.emplace(key, Cached{matmul(pd), amd, bmd, cmd}).first;
    }
    mem am(it->second.a, eng, const_cast<BFloat16*>(a));
    mem bm(it->second.b, eng, const_cast<BFloat16*>(b));
    mem cm(it->second.c, eng, c);
    it->second.prim.execute(strm, {{DNNL_ARG_SRC, am}, {DNNL_ARG_WEIGHTS, bm}, {DNNL_ARG_DST, cm}});
    strm.wait();
  } catch (const dnnl::error& e) {
    fail<Internal>("matmul", "oneDNN bf16 matmul failed: ", e.what());
  }
}
#endif

template <class T>
void gemm(const MatDims& d, const T* a, bool ta, const T* b, bool tb, T* c) {
  if (d.m == 0 || d.n == 0) return;
  if (d.k == 0) {
    std::fill(c, c + d.m * d.n, T(0));
    return;
  }
  if (gemm_tiny(d, a, ta, b, tb, c)) return;
#ifdef KILN_WITH_ONEDNN
  if constexpr (std::is_same_v<T, float>) return sgemm(d, a, ta, b, tb, c);
  if constexpr (std::is_same_v<T, BFloat16>) return bf16_gemm(d, a, ta, b, tb, c);
#endif
  gemm_loops(d, a, ta, b, tb, c);
}

void kernel_matmul(KernelContext& ctx) {
  const Tensor &a = ctx.inputs[0], &b = ctx.inputs[1];
  Tensor& out = ctx.output(0);
  bool ta = ctx.attrs.get_bool("transpose_a"), tb = ctx.attrs.get_bool("transpose_b");
  MatDims d = mat_dims(a.shape(), b.shape(), ta, tb);
  // batch offsets with broadcasting: strides 0 on broadcast batch axes
  const int64_t out_rank = out.ndim(), nb = out_rank - 2;
  int64_t batches = 1;
  for (int64_t i = 0; i < nb; ++i) batches *= out.shape().dim(i);
  auto batch_strides = [&](const Shape& s) {
    SmallVector<int64_t, 6> st(static_cast<size_t>(nb), 0);
    int64_t off = nb - (s.rank() - 2), acc = s.dim(s.rank() - 1) * s.dim(s.rank() - 2);
    for (int64_t i = nb - 1; i >= off; --i) {
      int64_t dim = s.dim(i - off);
      st[i] = dim == 1 ? 0 : acc;
      acc *= dim;
    }
    return st;
  };
  auto sa = batch_strides(a.shape()), sb = batch_strides(b.shape());
  visit_dtype(out.dtype(), ctx.def.name, [&](auto tag) {
    using T = decltype(tag);
    if constexpr (!std::is_same_v<T, bool>) {
      const T* ap = static_cast<const T*>(a.raw_data());
      const T* bp = static_cast<const T*>(b.raw_data());
      T* cp = static_cast<T*>(out.mutable_raw_data());
      for (int64_t bi = 0; bi < batches; ++bi) {
        int64_t oa = 0, ob = 0, rem = bi;
        for (int64_t i = nb - 1; i >= 0; --i) {
          int64_t idx = rem % out.shape().dim(i);
          rem /= out.shape().dim(i);
          oa += idx * sa[i];
          ob += idx * sb[i];
        }
        gemm<T>(d, ap + oa, ta, bp + ob, tb, cp + bi * d.m * d.n);
      }
    }
  });
}

}  // namespace

OpDef define_MatMul() {
  OpDef d;
  d.num_inputs = 2;
  d.traits = kDifferentiable;
  d.attrs = {{"transpose_a", AttrKind::Bool}, {"transpose_b", AttrKind::Bool}};
  d.infer = infer_matmul;
  d.cpu_kernel = kernel_matmul;
  return d;
}

}  // namespace kiln::ops
