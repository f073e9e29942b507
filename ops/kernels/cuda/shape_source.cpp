// The CUDA C generator for the shape, indexing, creation and random ops' eager GPU kernels
// (shape_source.h). The semantics are those of the CPU kernels in ops/defs/{shape,index,
// segment,creation_ops,reduce,elementwise}.cpp, restated for one thread per element.
#include "ops/kernels/cuda/shape_source.h"

#include "ops/kernels/cuda/source.h"
#include "runtime/errors.h"

namespace kiln::ops::cuda {
namespace {

constexpr const char* kShapePrelude = R"CUDA(
// a 16-byte element (complex128), moved as raw bits
struct kiln_b16 { unsigned long long lo, hi; };
// a strided copy over at most 16 merged dims (element strides; negative: reversed, 0: broadcast)
struct KilnCopy { int rank; long long dims[16], src[16], dst[16]; };
// three operands broadcast to the output (where): output dims and each operand's strides
struct KilnBroadcast3 { int rank; long long dims[8], s0[8], s1[8], s2[8]; };

// Philox4x32-10 block `n` of the stream (seed, offset), as runtime/philox.h
__device__ void kiln_philox(unsigned long long seed, unsigned long long n, unsigned long long offset, unsigned* c) {
  c[0] = (unsigned)n; c[1] = (unsigned)(n >> 32); c[2] = (unsigned)offset; c[3] = (unsigned)(offset >> 32);
  unsigned k0 = (unsigned)seed, k1 = (unsigned)(seed >> 32);
  for (int round = 0; round < 10; ++round) {
    const unsigned long long p0 = 0xD2511F53ULL * c[0], p1 = 0xCD9E8D57ULL * c[2];
    const unsigned n0 = (unsigned)(p1 >> 32) ^ c[1] ^ k0, n1 = (unsigned)p1, n2 = (unsigned)(p0 >> 32) ^ c[3] ^ k1,
                   n3 = (unsigned)p0;
    c[0] = n0; c[1] = n1; c[2] = n2; c[3] = n3;
    k0 += 0x9E3779B9u; k1 += 0xBB67AE85u;
  }
}
// a double in [0, 1) from 53 random bits (Philox::to_unit_double)
__device__ double kiln_unit_double(unsigned hi, unsigned lo) {
  const unsigned long long v = ((unsigned long long)hi << 21) ^ (lo >> 11);
  return (double)(v & ((1ULL << 53) - 1)) * (1.0 / 9007199254740992.0);
}
// a + b * c as the CPU build computes it: fused when the host compiler contracts it
__device__ double kiln_madd(double a, double b, double c, int fused) { return fused ? fma(b, c, a) : __dadd_rn(a, __dmul_rn(b, c)); }
)CUDA";

const char* elem_type(int64_t esize) {
  switch (esize) {
    case 1:
      return "unsigned char";
    case 2:
      return "unsigned short";
    case 4:
      return "unsigned int";
    case 8:
      return "unsigned long long";
    case 16:
      return "kiln_b16";
    default:
      fail<Internal>("cuda", "no GPU element type of ", esize, " bytes");
  }
}

std::string head(const std::string& name, const std::string& params) {
  return "extern \"C\" __global__ void " + name + "(" + params + ") {\n";
}

// `v` (a double or long long) converted to `out` as the CPU's static_cast<T> does (the 16-bit
// floats round through float, as Half(double) does).
std::string store(DType out, const std::string& v) {
  return "io<" + gpu_type_name(out) + ">::st((" + gpu_compute_type_name(out) + ")(" + v + "))";
}

void check_index(DType index) {
  if (index != DType::Int32 && index != DType::Int64 && index != DType::UInt8)
    fail<Internal>("cuda", "no GPU index type ", dtype_name(index));
}

}  // namespace

std::string gpu_shape_prelude() { return kShapePrelude; }

bool gpu_elem_size_supported(int64_t esize) {
  return esize == 1 || esize == 2 || esize == 4 || esize == 8 || esize == 16;
}

std::string copy_kernel_source(int64_t esize, const std::string& name) {
  const std::string E = elem_type(esize);
  return head(name, "const " + E + "* __restrict__ s, " + E + "* __restrict__ d, long long n, KilnCopy c") +
         "  KILN_GRID_LOOP(i, n) {\n"
         "    long long rem = i, so = 0, dd = 0;\n"
         "    for (int k = c.rank - 1; k >= 0; --k) {\n"
         "      const long long idx = rem % c.dims[k]; rem /= c.dims[k];\n"
         "      so += idx * c.src[k]; dd += idx * c.dst[k];\n"
         "    }\n"
         "    d[dd] = s[so];\n"
         "  }\n}\n";
}

std::string fill_kernel_source(int64_t esize, const std::string& name) {
  const std::string E = elem_type(esize);
  return head(name, E + "* __restrict__ d, long long n, " + E + " v") + "  KILN_GRID_LOOP(i, n) d[i] = v;\n}\n";
}

std::string fill_from_kernel_source(int64_t esize, const std::string& name) {
  const std::string E = elem_type(esize);
  return head(name, "const " + E + "* __restrict__ v, " + E + "* __restrict__ d, long long n") + "  const " + E +
         " x = *v;\n  KILN_GRID_LOOP(i, n) d[i] = x;\n}\n";
}

std::string where_kernel_source(int64_t esize, const std::string& name) {
  const std::string E = elem_type(esize);
  return head(name, "const bool* __restrict__ c, const " + E + "* __restrict__ x, const " + E + "* __restrict__ y, " +
                        E + "* __restrict__ o, long long n, KilnBroadcast3 b") +
         "  KILN_GRID_LOOP(i, n) {\n"
         "    long long i0 = i, i1 = i, i2 = i;\n"
         "    if (b.rank > 0) {\n"
         "      long long rem = i; i0 = i1 = i2 = 0;\n"
         "      for (int k = b.rank - 1; k >= 0; --k) {\n"
         "        const long long idx = rem % b.dims[k]; rem /= b.dims[k];\n"
         "        i0 += idx * b.s0[k]; i1 += idx * b.s1[k]; i2 += idx * b.s2[k];\n"
         "      }\n"
         "    }\n"
         "    o[i] = c[i0] ? x[i1] : y[i2];\n"
         "  }\n}\n";
}

bool gpu_arg_supported(DType in) { return in == DType::Bool || is_integer(in) || is_floating(in); }

std::string arg_kernel_source(bool is_max, DType in, DType out, const std::string& name) {
  if (!gpu_arg_supported(in) || (out != DType::Int32 && out != DType::Int64))
    fail<Internal>("cuda", "no GPU argmax/argmin from ", dtype_name(in), " to ", dtype_name(out));
  const std::string T = gpu_type_name(in), O = gpu_type_name(out);
  const std::string C = in == DType::Bool ? "int" : gpu_compute_type_name(in);
  const std::string load = in == DType::Bool ? "(x[off] ? 1 : 0)" : "io<" + T + ">::ld(x[off])";
  // whether (v, vi) replaces (b, bi): a NaN is the extreme, ties go to the smaller index
  std::string better = "  if (bi < 0) return true;\n";
  if (is_floating(in))
    better += "  const bool vn = v != v, bn = b != b;\n  if (vn || bn) return vn && bn ? vi < bi : vn;\n";
  better += std::string("  if (") + (is_max ? "v > b" : "v < b") + ") return true;\n  return v == b && vi < bi;\n";
  const std::string fn = name + "_better";
  return "__device__ bool " + fn + "(" + C + " v, long long vi, " + C + " b, long long bi) {\n" + better + "}\n" +
         head(name, "const " + T + "* __restrict__ x, " + O +
                        "* __restrict__ o, long long outputs, long long red, long long inner") +
         "  __shared__ " + C +
         " sv[256];\n"
         "  __shared__ long long si[256];\n"
         "  for (long long e = blockIdx.x; e < outputs; e += gridDim.x) {\n"
         "    const long long base = (e / inner) * red * inner + e % inner;\n"
         "    " +
         C +
         " bv = 0; long long bi = -1;\n"
         "    for (long long j = threadIdx.x; j < red; j += blockDim.x) {\n"
         "      const long long off = base + j * inner;\n"
         "      const " +
         C + " v = " + load + ";\n      if (" + fn +
         "(v, j, bv, bi)) { bv = v; bi = j; }\n"
         "    }\n"
         "    sv[threadIdx.x] = bv; si[threadIdx.x] = bi;\n"
         "    __syncthreads();\n"
         "    for (unsigned s = blockDim.x / 2; s > 0; s >>= 1) {\n"
         "      if (threadIdx.x < s && si[threadIdx.x + s] >= 0 &&\n"
         "          " +
         fn +
         "(sv[threadIdx.x + s], si[threadIdx.x + s], sv[threadIdx.x], si[threadIdx.x])) {\n"
         "        sv[threadIdx.x] = sv[threadIdx.x + s]; si[threadIdx.x] = si[threadIdx.x + s];\n"
         "      }\n"
         "      __syncthreads();\n"
         "    }\n"
         "    if (threadIdx.x == 0) o[e] = (" +
         O +
         ")si[0];\n"
         "    __syncthreads();\n"
         "  }\n}\n";
}

std::string index_check_kernel_source(DType index, const std::string& name) {
  check_index(index);
  const std::string I = gpu_type_name(index);
  return head(name, "const " + I + "* __restrict__ idx, long long count, long long n, unsigned long long* first") +
         "  KILN_GRID_LOOP(i, count) {\n"
         "    const long long v = (long long)idx[i];\n"
         "    if (v < 0 || v >= n) atomicMin(first, (unsigned long long)i);\n"
         "  }\n}\n";
}

std::string gather_kernel_source(int64_t esize, DType index, const std::string& name) {
  check_index(index);
  const std::string E = elem_type(esize), I = gpu_type_name(index);
  return head(name, "const " + E + "* __restrict__ s, const " + I + "* __restrict__ idx, " + E +
                        "* __restrict__ d, long long total, long long n, long long O, long long I, long long inner") +
         "  KILN_GRID_LOOP(e, total) {\n"
         "    const long long j = e % inner, row = e / inner, i = row % I, bo = row / I;\n"
         "    const long long k = (long long)idx[bo / O * I + i];\n"
         "    if (k < 0 || k >= n) continue;\n"
         "    d[e] = s[(bo * n + k) * inner + j];\n"
         "  }\n}\n";
}

bool gpu_segment_sum_supported(DType data) { return is_integer(data) || is_floating(data); }

DType gpu_segment_acc_dtype(DType data) {
  if (is_integer(data)) return dtype_size(data) == 8 ? DType::UInt64 : DType::UInt32;
  return data == DType::Float64 ? DType::Float64 : DType::Float32;
}

std::string segment_sum_kernel_source(DType data, DType index, const std::string& name) {
  if (!gpu_segment_sum_supported(data) || (index != DType::Int32 && index != DType::Int64))
    fail<Internal>("cuda", "no GPU unsorted_segment_sum of ", dtype_name(data), " by ", dtype_name(index));
  const std::string T = gpu_type_name(data), I = gpu_type_name(index), A = gpu_type_name(gpu_segment_acc_dtype(data));
  // integers convert to the unsigned accumulator modulo 2^bits (their sums wrap as the CPU's)
  const std::string load = is_integer(data) ? "(" + A + ")(long long)x[e]" : "(" + A + ")io<" + T + ">::ld(x[e])";
  return head(name, "const " + T + "* __restrict__ x, const " + I + "* __restrict__ seg, " + A +
                        "* acc, long long total, long long inner, long long nseg") +
         "  KILN_GRID_LOOP(e, total) {\n"
         "    const long long sg = (long long)seg[e / inner];\n"
         "    if (sg < 0 || sg >= nseg) continue;\n"
         "    atomicAdd(acc + sg * inner + e % inner, " +
         load + ");\n  }\n}\n";
}

std::string segment_finish_kernel_source(DType data, const std::string& name) {
  const std::string T = gpu_type_name(data), A = gpu_type_name(gpu_segment_acc_dtype(data));
  return head(name, "const " + A + "* __restrict__ acc, " + T + "* __restrict__ o, long long n") +
         "  KILN_GRID_LOOP(i, n) o[i] = " + (is_integer(data) ? "(" + T + ")acc[i]" : "io<" + T + ">::st(acc[i])") +
         ";\n}\n";
}

std::string one_hot_kernel_source(int64_t esize, DType index, const std::string& name) {
  check_index(index);
  const std::string E = elem_type(esize), I = gpu_type_name(index);
  return head(name, "const " + I + "* __restrict__ idx, " + E +
                        "* __restrict__ d, long long total, long long depth, long long inner, " + E + " on, " + E +
                        " off") +
         "  KILN_GRID_LOOP(e, total) {\n"
         "    const long long i = e % inner, r = e / inner, k = r % depth, o = r / depth;\n"
         "    d[e] = (long long)idx[o * inner + i] == k ? on : off;\n"
         "  }\n}\n";
}

bool gpu_iota_supported(IotaKind kind, DType out) {
  switch (kind) {
    case IotaKind::RangeLike:
      return out == DType::Int32 || out == DType::Int64;
    case IotaKind::IntRange:
      return is_integer(out);
    case IotaKind::Range:
    case IotaKind::Linspace:
      return is_floating(out);
    case IotaKind::Eye:
      return out == DType::Bool || is_integer(out) || is_floating(out);
  }
  return false;
}

std::string iota_kernel_source(IotaKind kind, DType out, const std::string& name) {
  if (!gpu_iota_supported(kind, out))
    fail<Internal>("cuda", "no GPU iota kernel ", int(kind), " for ", dtype_name(out));
  const std::string O = gpu_type_name(out) + "* __restrict__ o, long long n, ";
  switch (kind) {
    case IotaKind::RangeLike:
      return head(name, O + "long long len, long long inner") +
             "  KILN_GRID_LOOP(i, n) o[i] = " + store(out, "(i / inner) % len") + ";\n}\n";
    case IotaKind::IntRange:
      return head(name, O + "long long start, long long delta") + "  KILN_GRID_LOOP(i, n) o[i] = " +
             store(out, "(long long)((unsigned long long)start + (unsigned long long)i * (unsigned long long)delta)") +
             ";\n}\n";
    case IotaKind::Range:
      return head(name, O + "double start, double delta, int fused") +
             "  KILN_GRID_LOOP(i, n) o[i] = " + store(out, "kiln_madd(start, (double)i, delta, fused)") + ";\n}\n";
    case IotaKind::Linspace:
      return head(name, O + "double start, double step, double stop, int fused") + "  KILN_GRID_LOOP(i, n) o[i] = " +
             store(out, "(n > 1 && i == n - 1) ? stop : kiln_madd(start, (double)i, step, fused)") + ";\n}\n";
    case IotaKind::Eye:
      return head(name, O + "long long cols") +
             "  KILN_GRID_LOOP(i, n) o[i] = " + store(out, "(i / cols == i % cols) ? 1 : 0") + ";\n}\n";
  }
  return "";
}

bool gpu_random_supported(bool normal, DType out) {
  return normal ? is_floating(out) : is_integer(out) || is_floating(out);
}

std::string random_kernel_source(bool normal, DType out, const std::string& name) {
  if (!gpu_random_supported(normal, out))
    fail<Internal>("cuda", "no GPU ", normal ? "random_normal" : "random_uniform", " of ", dtype_name(out));
  const std::string T = gpu_type_name(out);
  std::string s = head(name, T + "* __restrict__ p, long long n, unsigned long long seed, unsigned long long offset, "
                                 "double a, double b, int fused") +
                  "  KILN_GRID_LOOP(j, (n + 1) / 2) {\n"
                  "    unsigned w[4];\n"
                  "    kiln_philox(seed, (unsigned long long)j, offset, w);\n";
  if (normal) {
    // Box-Muller on a pair, as kernel_random_normal (2 * M_PI folds to one constant there too)
    s += "    const double u1 = kiln_unit_double(w[0], w[1]), u2 = kiln_unit_double(w[2], w[3]);\n"
         "    const double r = sqrt(-2.0 * log(1.0 - u1));\n"
         "    const double t = 6.283185307179586 * u2;\n"
         "    const double z0 = r * cos(t), z1 = r * sin(t);\n"
         "    p[2 * j] = " +
         store(out, "kiln_madd(a, b, z0, fused)") +
         ";\n    if (2 * j + 1 < n) p[2 * j + 1] = " + store(out, "kiln_madd(a, b, z1, fused)") + ";\n";
  } else {
    s += "    for (int k = 0; k < 2 && 2 * j + k < n; ++k) {\n"
         "      const unsigned hi32 = w[2 * k], lo32 = w[2 * k + 1];\n";
    if (is_integer(out)) {
      // [a, b) by multiply-shift on 64 random bits, as the CPU
      s += "      const unsigned long long range = (unsigned long long)((long long)b - (long long)a);\n"
           "      const unsigned long long r = ((unsigned long long)hi32 << 32) | lo32;\n"
           "      p[2 * j + k] = (" +
           T + ")((long long)a + (long long)__umul64hi(range, r));\n";
    } else {
      s += "      const double v = kiln_madd(a, b - a, kiln_unit_double(hi32, lo32), fused);\n"
           "      " +
           T + " t = " + store(out, "v") + ";\n      if (!((double)io<" + T + ">::ld(t) < b)) t = " + store(out, "a") +
           ";\n      p[2 * j + k] = t;\n";
    }
    s += "    }\n";
  }
  return s + "  }\n}\n";
}

}  // namespace kiln::ops::cuda
