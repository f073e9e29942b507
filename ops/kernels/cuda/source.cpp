// The CUDA C generator for eager GPU kernels. The prelude holds one device functor per line of
// ops/scalar_fn.def, written to match ops/kernels/cpu/scalar_fn.h; a functor missing here is an
// NVRTC compile error that tests/ops/test_cuda_source.cpp finds without a GPU.
#include "ops/kernels/cuda/source.h"

#include "ops/defs/elementwise_common.h"
#include "ops/kernels/cuda/shape_source.h"
#include "runtime/errors.h"

namespace kiln::ops::cuda {
namespace {

enum class Rule { Same, ToBool, ToReal, ToFloat };

struct FnInfo {
  const char* functor = nullptr;
  unsigned classes = 0;
  Rule rule = Rule::Same;
  bool binary = false;
};

FnInfo fn_info(OpId op) {
  switch (op) {
#define KILN_UNARY(Id, Fn, Classes, R) \
  case OpId::Id:                       \
    return {#Fn, Classes, Rule::R, false};
#define KILN_BINARY(Id, Fn, Classes, R, Traits, Kind) \
  case OpId::Id:                                      \
    return {#Fn, Classes, Rule::R, true};
#include "ops/scalar_fn.def"
#undef KILN_UNARY
#undef KILN_BINARY
    default:
      return {};
  }
}

// Device-side storage type names.
const char* cuda_type(DType d) {
  switch (d) {
    case DType::Bool:
      return "bool";
    case DType::Int8:
      return "signed char";
    case DType::Int16:
      return "short";
    case DType::Int32:
      return "int";
    case DType::Int64:
      return "long long";
    case DType::UInt8:
      return "unsigned char";
    case DType::UInt16:
      return "unsigned short";
    case DType::UInt32:
      return "unsigned int";
    case DType::UInt64:
      return "unsigned long long";
    case DType::Float16:
      return "kiln_half";
    case DType::BFloat16:
      return "kiln_bf16";
    case DType::Float32:
      return "float";
    case DType::Float64:
      return "double";
    default:
      fail<Unimplemented>("cuda", "dtype ", dtype_name(d), " has no GPU kernels");
  }
}

// Everything the kernels share: 16-bit float storage types, type traits, the CPU's wrapping
// integer arithmetic and exp polynomial, and the functors of scalar_fn.def.
constexpr const char* kPrelude = R"CUDA(
struct kiln_half { unsigned short x; };
struct kiln_bf16 { unsigned short x; };
template <class T> struct kt { static const bool is_int = true, is_signed = true, is_float = false; typedef unsigned long long U; };
template <> struct kt<bool> { static const bool is_int = false, is_signed = false, is_float = false; typedef unsigned U; };
template <> struct kt<signed char> { static const bool is_int = true, is_signed = true, is_float = false; typedef unsigned U; };
template <> struct kt<short> { static const bool is_int = true, is_signed = true, is_float = false; typedef unsigned U; };
template <> struct kt<int> { static const bool is_int = true, is_signed = true, is_float = false; typedef unsigned U; };
template <> struct kt<long long> { static const bool is_int = true, is_signed = true, is_float = false; typedef unsigned long long U; };
template <> struct kt<unsigned char> { static const bool is_int = true, is_signed = false, is_float = false; typedef unsigned U; };
template <> struct kt<unsigned short> { static const bool is_int = true, is_signed = false, is_float = false; typedef unsigned U; };
template <> struct kt<unsigned int> { static const bool is_int = true, is_signed = false, is_float = false; typedef unsigned U; };
template <> struct kt<unsigned long long> { static const bool is_int = true, is_signed = false, is_float = false; typedef unsigned long long U; };
template <> struct kt<float> { static const bool is_int = false, is_signed = true, is_float = true; typedef unsigned U; };
template <> struct kt<double> { static const bool is_int = false, is_signed = true, is_float = true; typedef unsigned long long U; };

// loads and stores: the 16-bit floats compute in float, with round-to-nearest-even stores
template <class T> struct io { typedef T C; static __device__ C ld(T v) { return v; } static __device__ T st(C v) { return v; } };
#ifdef __CUDA_ARCH__
__device__ float half_to_float(unsigned short x) { float f; asm("cvt.f32.f16 %0, %1;" : "=f"(f) : "h"(x)); return f; }
__device__ unsigned short float_to_half(float f) { unsigned short x; asm("cvt.rn.f16.f32 %0, %1;" : "=h"(x) : "f"(f)); return x; }
#else  // the host compiler of the CUDA emulator (tests/cuda_emulator): the same conversions in integer code
float half_to_float(unsigned short h) {
  const unsigned sign = (h & 0x8000u) << 16, e = (h >> 10) & 0x1fu, m = h & 0x3ffu;
  if (e == 0) { const float f = (float)m * 5.9604644775390625e-8f; return sign ? -f : f; }
  return __int_as_float(int(sign | (e == 0x1fu ? 0x7f800000u | (m << 13) : ((e + 112u) << 23) | (m << 13))));
}
unsigned short float_to_half(float f) {
  const unsigned x = (unsigned)__float_as_int(f), sign = (x >> 16) & 0x8000u, a = x & 0x7fffffffu;
  if (a > 0x7f800000u) return (unsigned short)(sign | 0x7e00u | ((a >> 13) & 0x3ffu));
  if (a >= 0x477ff000u) return (unsigned short)(sign | 0x7c00u);
  if (a < 0x38800000u) return (unsigned short)(sign | (unsigned)rintf(__int_as_float(int(a)) * 16777216.0f));
  const unsigned r = a - 0x38000000u;
  return (unsigned short)(sign | ((r + 0xfffu + ((r >> 13) & 1u)) >> 13));
}
#endif
template <> struct io<kiln_half> {
  typedef float C;
  static __device__ float ld(kiln_half h) { return half_to_float(h.x); }
  static __device__ kiln_half st(float f) { kiln_half h; h.x = float_to_half(f); return h; }
};
template <> struct io<kiln_bf16> {
  typedef float C;
  static __device__ float ld(kiln_bf16 h) { return __int_as_float(int((unsigned)h.x << 16)); }
  static __device__ kiln_bf16 st(float f) {
    unsigned x = (unsigned)__float_as_int(f);
    kiln_bf16 h;
    if (f != f) { h.x = (unsigned short)((x >> 16) | 0x40u); return h; }
    h.x = (unsigned short)((x + 0x7fffu + ((x >> 16) & 1u)) >> 16);
    return h;
  }
};

template <class T> __device__ T wrap_add(T a, T b) { if constexpr (kt<T>::is_int) return (T)((typename kt<T>::U)a + (typename kt<T>::U)b); else return a + b; }
template <class T> __device__ T wrap_sub(T a, T b) { if constexpr (kt<T>::is_int) return (T)((typename kt<T>::U)a - (typename kt<T>::U)b); else return a - b; }
template <class T> __device__ T wrap_mul(T a, T b) { if constexpr (kt<T>::is_int) return (T)((typename kt<T>::U)a * (typename kt<T>::U)b); else return a * b; }

// the CPU kernel's exp polynomial, so float32 exp agrees bit for bit with the CPU
__device__ float exp_f32(float x) {
  float xc = x != x ? 0.0f : x;
  xc = xc < -103.97f ? -103.97f : xc;
  xc = xc > 88.72283172607421875f ? 88.72283172607421875f : xc;
  const float m = floorf(__fadd_rn(__fmul_rn(xc, 1.44269504088896341f), 0.5f));
  float r = fmaf(m, -0.693359375f, xc);
  r = fmaf(m, 2.12194440e-4f, r);
  const float r2 = __fmul_rn(r, r);
  float p = fmaf(1.9875691500e-4f, r, 1.3981999507e-3f);
  p = fmaf(p, r, 8.3334519073e-3f);
  p = fmaf(p, r, 4.1665795894e-2f);
  p = fmaf(p, r, 1.6666665459e-1f);
  p = fmaf(p, r, 5.0000001201e-1f);
  const float y = fmaf(p, r2, __fadd_rn(r, 1.0f));
  const int mi = (int)m;
  const int m1 = mi / 2, m2 = mi - m1;
  float out = __fmul_rn(__fmul_rn(y, __int_as_float((m1 + 127) << 23)), __int_as_float((m2 + 127) << 23));
  out = x > 88.72283172607421875f ? __int_as_float(0x7f800000) : out;
  out = x < -103.97f ? 0.0f : out;
  return x != x ? x : out;
}
__device__ float kexp(float x) { return exp_f32(x); }
__device__ double kexp(double x) { return exp(x); }

struct NegativeFn { template <class T> __device__ T operator()(T x) const {
  if constexpr (kt<T>::is_float) return -x; else return wrap_sub(T(0), x); } };
struct AbsFn { template <class T> __device__ T operator()(T x) const {
  if constexpr (kt<T>::is_float) return fabs(x);
  else if constexpr (!kt<T>::is_signed) return x;
  else return x < T(0) ? wrap_sub(T(0), x) : x; } };
struct SignFn { template <class T> __device__ T operator()(T x) const {
  if constexpr (kt<T>::is_float) { if (x != x) return x; }
  if constexpr (!kt<T>::is_signed) return x > T(0) ? T(1) : T(0);
  else return (T)((x > T(0)) - (x < T(0))); } };
struct ExpFn { template <class T> __device__ T operator()(T x) const { return kexp(x); } };
struct LogFn { template <class T> __device__ T operator()(T x) const { return log(x); } };
struct Log1pFn { template <class T> __device__ T operator()(T x) const { return log1p(x); } };
struct SqrtFn { template <class T> __device__ T operator()(T x) const { return sqrt(x); } };
struct RsqrtFn { template <class T> __device__ T operator()(T x) const { return T(1) / sqrt(x); } };
struct SquareFn { template <class T> __device__ T operator()(T x) const { return wrap_mul(x, x); } };
struct SinFn { template <class T> __device__ T operator()(T x) const { return sin(x); } };
struct CosFn { template <class T> __device__ T operator()(T x) const { return cos(x); } };
struct TanFn { template <class T> __device__ T operator()(T x) const { return tan(x); } };
struct TanhFn { template <class T> __device__ T operator()(T x) const { return tanh(x); } };
struct SigmoidFn { template <class T> __device__ T operator()(T x) const {
  if (x >= T(0)) return T(1) / (T(1) + kexp(-x));
  T e = kexp(x);
  return e / (T(1) + e); } };
struct SoftplusFn { template <class T> __device__ T operator()(T x) const { return (x > T(0) ? x : T(0)) + log1p(kexp(-fabs(x))); } };
struct ReluFn { template <class T> __device__ T operator()(T x) const {
  if constexpr (kt<T>::is_float) return x > T(0) ? x : (x != x ? x : T(0));
  else return x > T(0) ? x : T(0); } };
struct FloorFn { template <class T> __device__ T operator()(T x) const { return floor(x); } };
struct CeilFn { template <class T> __device__ T operator()(T x) const { return ceil(x); } };
struct RoundFn { template <class T> __device__ T operator()(T x) const { return rint(x); } };
struct LogicalNotFn { __device__ bool operator()(bool x) const { return !x; } };

struct AddFn { template <class T> __device__ T operator()(T a, T b) const { return wrap_add(a, b); } };
struct SubtractFn { template <class T> __device__ T operator()(T a, T b) const { return wrap_sub(a, b); } };
struct MultiplyFn { template <class T> __device__ T operator()(T a, T b) const { return wrap_mul(a, b); } };
struct DivideFn { template <class T> __device__ T operator()(T a, T b) const { return a / b; } };
struct FloorDivFn { template <class T> __device__ T operator()(T a, T b) const {
  if constexpr (kt<T>::is_float) {
    return floor(a / b);
  } else if constexpr (!kt<T>::is_signed) {
    return (T)(a / b);
  } else {
    if (b == T(-1)) return wrap_sub(T(0), a);
    T q = (T)(a / b);
    return (a % b != 0 && ((a < T(0)) != (b < T(0)))) ? (T)(q - 1) : q;
  } } };
struct ModFn {
  template <class T> __device__ T operator()(T a, T b) const {
    if constexpr (!kt<T>::is_signed) {
      return (T)(a % b);
    } else {
      if (b == T(-1)) return T(0);
      T r = (T)(a % b);
      return (r != 0 && ((r < T(0)) != (b < T(0)))) ? (T)(r + b) : r;
    } }
  __device__ float operator()(float a, float b) const { float r = fmodf(a, b); return (r != 0 && ((r < 0) != (b < 0))) ? r + b : r; }
  __device__ double operator()(double a, double b) const { double r = fmod(a, b); return (r != 0 && ((r < 0) != (b < 0))) ? r + b : r; }
};
struct PowFn {
  template <class T> __device__ T operator()(T a, T b) const {
    T r = 1, base = a;
    typename kt<T>::U e = (typename kt<T>::U)b;
    while (e) { if (e & 1) r = wrap_mul(r, base); base = wrap_mul(base, base); e >>= 1; }
    return r; }
  __device__ float operator()(float a, float b) const { return powf(a, b); }
  __device__ double operator()(double a, double b) const { return pow(a, b); }
};
struct MaximumFn { template <class T> __device__ T operator()(T a, T b) const {
  if constexpr (kt<T>::is_float) { if (a != a) return a; if (b != b) return b; }
  return a < b ? b : a; } };
struct MinimumFn { template <class T> __device__ T operator()(T a, T b) const {
  if constexpr (kt<T>::is_float) { if (a != a) return a; if (b != b) return b; }
  return b < a ? b : a; } };
struct EqualFn { template <class T> __device__ bool operator()(T a, T b) const { return a == b; } };
struct NotEqualFn { template <class T> __device__ bool operator()(T a, T b) const { return a != b; } };
struct LessFn { template <class T> __device__ bool operator()(T a, T b) const { return a < b; } };
struct LessEqualFn { template <class T> __device__ bool operator()(T a, T b) const { return a <= b; } };
struct GreaterFn { template <class T> __device__ bool operator()(T a, T b) const { return a > b; } };
struct GreaterEqualFn { template <class T> __device__ bool operator()(T a, T b) const { return a >= b; } };
struct LogicalAndFn { __device__ bool operator()(bool a, bool b) const { return a && b; } };
struct LogicalOrFn { __device__ bool operator()(bool a, bool b) const { return a || b; } };
struct LogicalXorFn { __device__ bool operator()(bool a, bool b) const { return a != b; } };

// output axes collapsed to at most 8; input strides are 0 on broadcast axes. rank 0: both
// inputs have the output's shape; -1: b is one element, -2: a is one element
struct Broadcast { int rank; long long dims[8]; long long sa[8]; long long sb[8]; };
// a reduction: output elements index the kept axes, each reduces `count` elements over the
// reduced axes (input strides of both)
struct Reduce { int rank_out, rank_red; long long out_dims[8], out_strides[8], red_dims[8], red_strides[8], count; };
// a batched matmul: batch strides sa, sb are 0 for an operand without batch axes
struct MatmulShape { long long m, n, k, batches; int ta, tb; long long sa, sb; };

// 4 elements read or written with one 16-byte access (the CUDA backend's 4-wide loop kernels)
template <class T> struct __align__(16) kv4 { T v[4]; };

#define KILN_GRID_LOOP(i, n) for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < (n); i += (long long)blockDim.x * gridDim.x)
)CUDA";

// The C type a value of `d` computes in on the device.
const char* compute_type(DType d) { return d == DType::Float16 || d == DType::BFloat16 ? "float" : cuda_type(d); }

}  // namespace

std::string gpu_prelude() { return kPrelude + gpu_shape_prelude(); }

std::string gpu_type_name(DType d) { return cuda_type(d); }

std::string gpu_compute_type_name(DType d) { return compute_type(d); }

std::string gpu_functor(OpId op) {
  const char* f = fn_info(op).functor;
  return f ? f : "";
}

bool gpu_elementwise_supported(OpId op, DType in) {
  FnInfo f = fn_info(op);
  return f.functor && (dtype_class(in) & f.classes) != 0 && !is_complex(in) && in != DType::String;
}

DType gpu_compute_dtype(OpId op, DType in) {
  if (fn_info(op).rule == Rule::ToFloat && is_integer(in)) return dtype_size(in) <= 2 ? DType::Float32 : DType::Float64;
  return in == DType::Float16 || in == DType::BFloat16 ? DType::Float32 : in;
}

std::string unary_kernel_source(OpId op, DType in, DType out, const std::string& name) {
  FnInfo f = fn_info(op);
  if (!f.functor || f.binary) fail<Internal>("cuda", "op ", int(op), " is not a unary elementwise op");
  std::string s;
  s += "extern \"C\" __global__ void " + name + "(const " + cuda_type(in) + "* __restrict__ a, " + cuda_type(out) +
       "* __restrict__ o, long long n) {\n  KILN_GRID_LOOP(i, n) o[i] = io<" + cuda_type(out) + ">::st(" + f.functor +
       "()(io<" + cuda_type(in) + ">::ld(a[i])));\n}\n";
  return s;
}

std::string binary_kernel_source(OpId op, DType in, DType out, const std::string& name) {
  FnInfo f = fn_info(op);
  if (!f.functor || !f.binary) fail<Internal>("cuda", "op ", int(op), " is not a binary elementwise op");
  const std::string T = cuda_type(in), O = cuda_type(out), Cm = cuda_type(gpu_compute_dtype(op, in));
  // the checks the CPU kernels make before computing (precheck_binary)
  std::string check;
  if (is_integer(in) && (op == OpId::FloorDiv || op == OpId::Mod))
    check = "    if (bv == (" + Cm + ")0) { *error = 1; continue; }\n";
  if (is_signed_integer(in) && op == OpId::Pow) check = "    if (bv < (" + Cm + ")0) { *error = 2; continue; }\n";
  std::string s;
  s += "extern \"C\" __global__ void " + name + "(const " + T + "* __restrict__ a, const " + T + "* __restrict__ b, " +
       O +
       "* __restrict__ o, long long n, Broadcast bc, int* error) {\n"
       "  KILN_GRID_LOOP(i, n) {\n"
       "    long long ia = i, ib = i;\n"
       "    if (bc.rank > 0) {\n"
       "      long long rem = i; ia = 0; ib = 0;\n"
       "      for (int d = bc.rank - 1; d >= 0; --d) {\n"
       "        long long idx = rem % bc.dims[d]; rem /= bc.dims[d];\n"
       "        ia += idx * bc.sa[d]; ib += idx * bc.sb[d];\n"
       "      }\n"
       "    }\n"
       "    else if (bc.rank < 0) { ia = bc.rank == -1 ? i : 0; ib = bc.rank == -1 ? 0 : i; }\n"
       "    const " +
       Cm + " av = (" + Cm + ")io<" + T +
       ">::ld(a[ia]);\n"
       "    const " +
       Cm + " bv = (" + Cm + ")io<" + T + ">::ld(b[ib]);\n" + check + "    o[i] = io<" + O + ">::st(" + f.functor +
       "()(av, bv));\n  }\n}\n";
  return s;
}

std::string gpu_cast_expr(DType in, DType out, const std::string& v) {
  const std::string O = cuda_type(out);
  if (out == DType::Bool) return "(" + v + " != 0)";
  if (is_floating(in) && is_integer(out)) {
    // truncate toward zero, saturate at the range, NaN to 0 (ops/defs/cast.cpp)
    const char* lo = nullptr;
    const char* hi = nullptr;
    switch (out) {
      case DType::Int8:
        lo = "-128.0", hi = "127.0";
        break;
      case DType::Int16:
        lo = "-32768.0", hi = "32767.0";
        break;
      case DType::Int32:
        lo = "-2147483648.0", hi = "2147483647.0";
        break;
      case DType::UInt8:
        lo = "0.0", hi = "255.0";
        break;
      case DType::UInt16:
        lo = "0.0", hi = "65535.0";
        break;
      case DType::UInt32:
        lo = "0.0", hi = "4294967295.0";
        break;
      default:
        break;
    }
    if (lo)
      return "((" + O + ")(" + v + " != " + v + " ? 0.0 : fmin(fmax((double)" + v + ", " + lo + "), " + hi + ")))";
    if (out == DType::Int64)
      return "(" + v + " != " + v + " ? 0LL : (double)" + v +
             " >= 9223372036854775808.0 ? 9223372036854775807LL : (double)" + v +
             " <= -9223372036854775808.0 ? (-9223372036854775807LL - 1) : (long long)" + v + ")";
    return "(" + v + " != " + v + " || (double)" + v + " <= -1.0 ? 0ULL : (double)" + v +
           " >= 18446744073709551616.0 ? 18446744073709551615ULL : (unsigned long long)" + v + ")";
  }
  return std::string("((") + compute_type(out) + ")" + v + ")";
}

std::string cast_kernel_source(DType in, DType out, const std::string& name) {
  const std::string T = cuda_type(in), O = cuda_type(out);
  std::string s;
  s += "extern \"C\" __global__ void " + name + "(const " + T + "* __restrict__ a, " + O +
       "* __restrict__ o, long long n) {\n  KILN_GRID_LOOP(i, n) { const " + compute_type(in) + " v = io<" + T +
       ">::ld(a[i]); o[i] = io<" + O + ">::st(" + gpu_cast_expr(in, out, "v") + "); }\n}\n";
  return s;
}

bool gpu_reduce_supported(OpId op, DType in) {
  switch (op) {
    case OpId::ReduceSum:
    case OpId::ReduceProd:
    case OpId::ReduceMean:
      return is_integer(in) || is_floating(in);
    case OpId::ReduceMax:
    case OpId::ReduceMin:
      return is_integer(in) || is_floating(in);
    case OpId::ReduceAny:
    case OpId::ReduceAll:
      return in == DType::Bool;
    default:
      return false;
  }
}

ReduceParts reduce_parts(OpId op, DType in) {
  if (!gpu_reduce_supported(op, in)) fail<Internal>("cuda", "no GPU reduction ", int(op), " for ", dtype_name(in));
  const std::string T = cuda_type(in);
  const bool f16 = in == DType::Float16 || in == DType::BFloat16;
  std::string A = f16 ? "float" : T, O = T, init = "0", merge = "a + b",
              fin = std::string("(") + compute_type(in) + ")a";
  switch (op) {
    case OpId::ReduceSum:
      if (is_integer(in)) A = "typename kt<" + T + ">::U";
      break;
    case OpId::ReduceProd:
      if (is_integer(in)) A = "typename kt<" + T + ">::U";
      init = "1", merge = "a * b";
      break;
    case OpId::ReduceMean:
      // as the CPU: integers sum in a wider type and divide truncating; an empty mean is NaN
      // for floats and 0 for integers
      if (is_integer(in)) {
        A = dtype_size(in) < 8 ? "unsigned long long" : is_signed_integer(in) ? "__int128" : "unsigned __int128";
        fin = is_signed_integer(in) && dtype_size(in) < 8 ? "(n == 0 ? (" + T + ")0 : (" + T + ")((long long)a / n))"
                                                          : "(n == 0 ? (" + T + ")0 : (" + T + ")(a / (" + A + ")n))";
      } else {
        fin = "(n == 0 ? (" + A + ")__int_as_float(0x7fc00000) : (" + A + ")(a / (" + A + ")n))";
      }
      break;
    case OpId::ReduceMax:
    case OpId::ReduceMin: {
      const bool mx = op == OpId::ReduceMax;
      if (is_floating(in)) {
        init = mx ? "-__int_as_float(0x7f800000)" : "__int_as_float(0x7f800000)";
        merge = mx ? "((b > a) || (b != b)) ? b : a" : "((b < a) || (b != b)) ? b : a";
      } else {
        // the dtype's lowest / highest value, as two's complement bit patterns
        const int bits = dtype_size(in) * 8;
        const bool sgn = is_signed_integer(in);
        if (mx)
          init = sgn ? "(" + T + ")(1ULL << " + std::to_string(bits - 1) + ")" : "(" + T + ")0";
        else
          init = sgn ? "(" + T + ")((1ULL << " + std::to_string(bits - 1) + ") - 1)" : "(" + T + ")~0ULL";
        merge = mx ? "(b > a) ? b : a" : "(b < a) ? b : a";
      }
      break;
    }
    case OpId::ReduceAny:
      A = "unsigned char", O = "bool", merge = "a | b", fin = "a != 0";
      break;
    case OpId::ReduceAll:
      A = "unsigned char", O = "bool", init = "1", merge = "a & b", fin = "a != 0";
      break;
    default:
      break;
  }
  const std::string load = in == DType::Bool ? "(x[off] ? 1 : 0)" : "(" + A + ")io<" + T + ">::ld(x[off])";
  return {A, init, merge, fin, load, O};
}

namespace {

// The shared-memory tree that combines a block's accumulators into part[0], then `last` (run by
// thread 0, with `a` the block's result).
std::string reduce_tree(const std::string& merge, const std::string& last) {
  return "    part[threadIdx.x] = acc;\n"
         "    __syncthreads();\n"
         "    for (unsigned s = blockDim.x / 2; s > 0; s >>= 1) {\n"
         "      if (threadIdx.x < s) { const A a = part[threadIdx.x], b = part[threadIdx.x + s]; part[threadIdx.x] = " +
         merge +
         "; }\n"
         "      __syncthreads();\n"
         "    }\n"
         "    if (threadIdx.x == 0) { const A a = part[0]; " +
         last +
         "; }\n"
         "    __syncthreads();\n";
}

}  // namespace

std::string reduce_kernel_source(OpId op, DType in, const std::string& name, bool partial) {
  const ReduceParts p = reduce_parts(op, in);
  const std::string T = cuda_type(in), &A = p.acc, &O = p.out_type;
  std::string s = "extern \"C\" __global__ void " + name + "(const " + T + "* __restrict__ x, ";
  s += partial
           ? "unsigned char* __restrict__ partials, long long outputs, Reduce r, long long splits, long long chunk) {\n"
           : O + "* __restrict__ o, long long outputs, Reduce r) {\n";
  s += "  typedef " + A + " A;\n  __shared__ A part[256];\n  const long long n = r.count;\n";
  // a block per output, or per chunk of an output's elements (block = e * splits + chunk index)
  s +=
      partial
          ? "  for (long long blk = blockIdx.x; blk < outputs * splits; blk += gridDim.x) {\n"
            "    const long long e = blk / splits, lo = (blk % splits) * chunk, hi = lo + chunk < n ? lo + chunk : n;\n"
          : "  for (long long e = blockIdx.x; e < outputs; e += gridDim.x) {\n    const long long lo = 0, hi = n;\n";
  s += "    long long base = 0, rem = e;\n"
       "    for (int d = r.rank_out - 1; d >= 0; --d) { long long i = rem % r.out_dims[d]; rem /= r.out_dims[d]; base "
       "+= i * r.out_strides[d]; }\n"
       "    A acc = (A)(" +
       p.init +
       ");\n"
       "    for (long long j = lo + threadIdx.x; j < hi; j += blockDim.x) {\n"
       "      long long off = base, rj = j;\n"
       "      for (int d = r.rank_red - 1; d >= 0; --d) { long long i = rj % r.red_dims[d]; rj /= r.red_dims[d]; off "
       "+= i * r.red_strides[d]; }\n"
       "      const A a = acc, b = " +
       p.load + ";\n      acc = " + p.merge + ";\n    }\n";
  s += reduce_tree(p.merge, partial ? "((A*)partials)[blk] = a" : "o[e] = io<" + O + ">::st(" + p.finish + ")");
  return s + "  }\n}\n";
}

std::string reduce_join_kernel_source(OpId op, DType in, const std::string& name) {
  const ReduceParts p = reduce_parts(op, in);
  std::string s = "extern \"C\" __global__ void " + name + "(const unsigned char* __restrict__ partials, " +
                  p.out_type + "* __restrict__ o, long long outputs, long long splits, long long n) {\n";
  s += "  typedef " + p.acc + " A;\n  __shared__ A part[256];\n";
  s += "  for (long long e = blockIdx.x; e < outputs; e += gridDim.x) {\n    A acc = (A)(" + p.init +
       ");\n    for (long long j = threadIdx.x; j < splits; j += blockDim.x) { const A a = acc, b = ((const "
       "A*)partials)[e * splits + j]; acc = " +
       p.merge + "; }\n";
  s += reduce_tree(p.merge, "o[e] = io<" + p.out_type + ">::st(" + p.finish + ")");
  return s + "  }\n}\n";
}

std::string reduce_columns_kernel_source(OpId op, DType in, const std::string& name) {
  const ReduceParts p = reduce_parts(op, in);
  std::string s = "extern \"C\" __global__ void " + name + "(const " + cuda_type(in) + "* __restrict__ x, " +
                  p.out_type +
                  "* __restrict__ o, unsigned char* __restrict__ partials, long long outer, long long reduced, long "
                  "long inner, long long chunks, long long rows) {\n";
  s += "  typedef " + p.acc + " A;\n  __shared__ A part[8][33];\n";
  s += "  const long long n = reduced, tiles = (inner + 31) / 32;\n"
       "  const int tx = threadIdx.x % 32, ty = threadIdx.x / 32;\n"
       "  for (long long blk = blockIdx.x; blk < tiles * outer * chunks; blk += gridDim.x) {\n"
       "    const long long rest = blk / tiles, oi = rest % outer, chunk = rest / outer, col = (blk % tiles) * 32 + "
       "tx;\n"
       "    const long long lo = chunk * rows, hi = lo + rows < reduced ? lo + rows : reduced;\n"
       "    A acc = (A)(" +
       p.init +
       ");\n"
       "    if (col < inner)\n"
       "      for (long long j = lo + ty; j < hi; j += 8) {\n"
       "        const long long off = (oi * reduced + j) * inner + col;\n"
       "        const A a = acc, b = " +
       p.load + ";\n        acc = " + p.merge +
       ";\n      }\n"
       "    part[ty][tx] = acc;\n"
       "    __syncthreads();\n"
       "    if (ty == 0 && col < inner) {\n"
       "      A a = part[0][tx];\n"
       "      for (int k = 1; k < 8; ++k) { const A b = part[k][tx]; a = " +
       p.merge +
       "; }\n"
       "      if (chunks == 1) o[oi * inner + col] = io<" +
       p.out_type + ">::st(" + p.finish +
       ");\n"
       "      else ((A*)partials)[(chunk * outer + oi) * inner + col] = a;\n"
       "    }\n"
       "    __syncthreads();\n"
       "  }\n}\n";
  return s;
}

std::string reduce_columns_join_kernel_source(OpId op, DType in, const std::string& name) {
  const ReduceParts p = reduce_parts(op, in);
  return "extern \"C\" __global__ void " + name + "(const unsigned char* __restrict__ partials, " + p.out_type +
         "* __restrict__ o, long long outputs, long long chunks, long long n) {\n  typedef " + p.acc +
         " A;\n  KILN_GRID_LOOP(e, outputs) {\n    A a = ((const A*)partials)[e];\n"
         "    for (long long c = 1; c < chunks; ++c) { const A b = ((const A*)partials)[c * outputs + e]; a = " +
         p.merge + "; }\n    o[e] = io<" + p.out_type + ">::st(" + p.finish + ");\n  }\n}\n";
}

std::string copy_many_kernel_source() {
  return "struct CopyList { int n; unsigned long long dst[" + std::to_string(kMaxCopies) + "], src[" +
         std::to_string(kMaxCopies) + "], bytes[" + std::to_string(kMaxCopies) +
         "]; };\n"
         "extern \"C\" __global__ void kiln_copy_many(CopyList l) {\n"
         "  const unsigned e = blockIdx.y;\n"
         "  const unsigned long long d = l.dst[e], s = l.src[e], n = l.bytes[e];\n"
         "  const unsigned long long first = blockIdx.x * (unsigned long long)blockDim.x + threadIdx.x, step = "
         "(unsigned long long)blockDim.x * gridDim.x;\n"
         "  if (((d | s | n) & 7) == 0) {\n"
         "    for (unsigned long long i = first; i < n / 8; i += step) ((unsigned long long*)d)[i] = ((const unsigned "
         "long long*)s)[i];\n"
         "  } else {\n"
         "    for (unsigned long long i = first; i < n; i += step) ((unsigned char*)d)[i] = ((const unsigned "
         "char*)s)[i];\n"
         "  }\n"
         "}\n";
}

std::string matmul_kernel_source(DType dtype, const std::string& name) {
  const std::string T = cuda_type(dtype);
  // accumulate as the CPU does: float for the 16-bit floats, unsigned (wrapping) for integers
  std::string acc = is_integer(dtype) ? "typename kt<" + T + ">::U" : compute_type(dtype);
  std::string s;
  s += "extern \"C\" __global__ void " + name + "(const " + T + "* __restrict__ a, const " + T + "* __restrict__ b, " +
       T +
       "* __restrict__ c, MatmulShape s) {\n"
       "  KILN_GRID_LOOP(e, s.m * s.n * s.batches) {\n"
       "    long long bi = e / (s.m * s.n), r = e % (s.m * s.n), i = r / s.n, j = r % s.n;\n"
       "    const " +
       T + "* A = a + bi * s.sa; const " + T +
       "* B = b + bi * s.sb;\n"
       "    " +
       acc +
       " sum = 0;\n"
       "    for (long long k = 0; k < s.k; ++k) {\n"
       "      " +
       acc + " x = (" + acc + ")io<" + T +
       ">::ld(s.ta ? A[k * s.m + i] : A[i * s.k + k]);\n"
       "      " +
       acc + " y = (" + acc + ")io<" + T +
       ">::ld(s.tb ? B[j * s.k + k] : B[k * s.n + j]);\n"
       "      sum += x * y;\n"
       "    }\n"
       "    c[e] = io<" +
       T + ">::st((" + compute_type(dtype) +
       ")sum);\n"
       "  }\n}\n";
  return s;
}

}  // namespace kiln::ops::cuda
