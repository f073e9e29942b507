// CUDA C for a plan: a kernel per fused loop (the loop's expression tree over the prelude's
// functors, so values follow the eager GPU kernels' semantics; a block per row when the loop
// ends in row reductions) and per reduction step (the eager reduction kernel). Dims and strides
// are constants of the specialized shape.
#include <algorithm>
#include <functional>
#include <optional>

#include "compiler/backend/cuda/cuda_backend.h"
#include "ops/kernels/cuda/source.h"
#include "runtime/errors.h"

namespace kiln::backend::cuda {
namespace {

using cpu::Expr;
using cpu::LoopStep;
using cpu::Plan;
using cpu::Step;
using ops::OpId;

std::string num(int64_t v) { return std::to_string(v) + "LL"; }
std::string var(int i) { return "v" + std::to_string(i); }

// The functor of an elementwise expression; every op the plan fuses is in scalar_fn.def.
std::string functor(const Expr& e, const std::string& kernel) {
  std::string f = ops::cuda::gpu_functor(e.op);
  if (f.empty()) fail<Internal>("cuda", "kernel ", kernel, ": ", ops::op_def(e.op).name, " has no GPU functor");
  return f;
}

// The statements computing element `i` of a fused loop, `ptr(b)` naming buffer b's typed pointer.
// The loop's row-major index i split over its dims (i0 outermost).
std::string loop_index(const LoopStep& loop) {
  std::string s;
  const size_t rank = loop.dims.size();
  if (rank == 1) {
    s += "    const long long i0 = i;\n";
  } else {
    s += "    long long r = i;\n";
    for (size_t d = rank; d-- > 1;)
      s += "    const long long i" + std::to_string(d) + " = r % " + num(loop.dims[d]) + "; r /= " + num(loop.dims[d]) +
           ";\n";
    s += "    const long long i0 = r;\n";
  }
  return s;
}

// The offset of a load at the loop's index (i0, i1, ...).
std::string load_offset(const Expr& e) {
  std::string offset;
  for (size_t d = 0; d < e.stride.size(); ++d)
    if (e.stride[d] != 0)
      offset += (offset.empty() ? "" : " + ") + ("i" + std::to_string(d) + " * " + num(e.stride[d]));
  return offset.empty() ? "0" : offset;
}

// The statements computing element i of a fused loop (after loop_index), `ptr(b)` naming buffer
// b's typed pointer. `lane` >= 0: lane `lane` of a 4-wide kernel (loop_kernel_v4), whose
// contiguous loads were read into L<j> and whose stores go to S<k>.
// Reductions fused into the loop are not computed here (row_reduce_kernel does).
std::string loop_body(const Plan& plan, const LoopStep& loop, const std::string& name,
                      const std::function<std::string(int)>& ptr, int lane = -1) {
  std::string s;
  const size_t rank = loop.dims.size();
  for (size_t j = 0; j < loop.exprs.size(); ++j) {
    const Expr& e = loop.exprs[j];
    const std::string C = ops::cuda::gpu_compute_type_name(e.dtype);
    std::string value;
    switch (e.kind) {
      case Expr::Kind::Load: {
        const DType stored_as = plan.buffers[size_t(e.buffer)].dtype;
        if (stored_as != e.dtype)
          fail<Internal>("cuda", "kernel ", name, ": a load of ", dtype_name(e.dtype), " from a buffer of ",
                         dtype_name(stored_as));
        if (e.stride.size() != rank) fail<Internal>("cuda", "kernel ", name, ": a load's strides do not fit the loop");
        const std::string T = ops::cuda::gpu_type_name(e.dtype);
        if (lane >= 0 && e.stride.back() == 1)
          value = "io<" + T + ">::ld(L" + std::to_string(j) + ".v[" + std::to_string(lane) + "])";
        else
          value = "io<" + T + ">::ld(" + ptr(e.buffer) + "[" + load_offset(e) + "])";
        break;
      }
      case Expr::Kind::Unary:
        value = "(" + C + ")" + functor(e, name) + "()(" + var(e.a) + ")";
        break;
      case Expr::Kind::Binary: {
        // integer true division computes in the result's float type, as the CPU backend does
        const DType in = loop.exprs[size_t(e.a)].dtype;
        std::string a = var(e.a), b = var(e.b);
        if (e.op == OpId::Divide && !is_floating(in)) {
          const std::string F = ops::cuda::gpu_compute_type_name(e.dtype);
          a = "(" + F + ")" + a;
          b = "(" + F + ")" + b;
        }
        value = "(" + C + ")" + functor(e, name) + "()(" + a + ", " + b + ")";
        break;
      }
      case Expr::Kind::Where:
        value = var(e.a) + " ? " + var(e.b) + " : " + var(e.c);
        break;
      case Expr::Kind::Cast: {
        const DType in = loop.exprs[size_t(e.a)].dtype;
        value = in == e.dtype ? var(e.a) : ops::cuda::gpu_cast_expr(in, e.dtype, var(e.a));
        break;
      }
    }
    // a 16-bit float rounds after every op, as the eager kernels store it
    if ((e.dtype == DType::Float16 || e.dtype == DType::BFloat16) && e.kind != Expr::Kind::Load &&
        e.kind != Expr::Kind::Where) {
      const std::string T = ops::cuda::gpu_type_name(e.dtype);
      value = "io<" + T + ">::ld(io<" + T + ">::st(" + value + "))";
    }
    s += "    const " + C + " " + var(int(j)) + " = " + value + ";\n";
  }
  // stores are contiguous in the loop's order
  for (size_t k = 0; k < loop.stores.size(); ++k) {
    const auto [e, b] = loop.stores[k];
    const std::string st = "io<" + ops::cuda::gpu_type_name(plan.buffers[size_t(b)].dtype) + ">::st(" + var(e) + ")";
    s += lane >= 0 ? "    S" + std::to_string(k) + ".v[" + std::to_string(lane) + "] = " + st + ";\n"
                   : "    " + ptr(b) + "[i] = " + st + ";\n";
  }
  return s;
}

int64_t loop_elements(const LoopStep& loop) {
  int64_t n = 1;
  for (int64_t d : loop.dims) n *= d;
  return n;
}

// `extern "C" __global__ void <name>(...) {` of a loop kernel: a pointer per buffer of
// loop_kernel_buffers (const for loads, restrict unless both loaded and stored), named p0, p1...
std::string loop_signature(const Plan& plan, const LoopStep& loop, const std::vector<int>& bufs,
                           const std::string& name) {
  std::vector<bool> stored(bufs.size(), false), loaded(bufs.size(), false);
  for (const Expr& e : loop.exprs)
    if (e.kind == Expr::Kind::Load) loaded[size_t(std::find(bufs.begin(), bufs.end(), e.buffer) - bufs.begin())] = true;
  for (auto [e, b] : loop.stores) stored[size_t(std::find(bufs.begin(), bufs.end(), b) - bufs.begin())] = true;
  for (const cpu::LoopReduce& r : loop.reduces)
    stored[size_t(std::find(bufs.begin(), bufs.end(), r.buffer) - bufs.begin())] = true;
  std::string s = "extern \"C\" __global__ void " + name + "(";
  for (size_t i = 0; i < bufs.size(); ++i) {
    const std::string T = ops::cuda::gpu_type_name(plan.buffers[size_t(bufs[i])].dtype);
    // a buffer both read and written by one loop would need plain pointers; the plan never
    // does that (stores go to fresh buffers), but the signature stays right if it did
    const char* restrict = loaded[i] && stored[i] ? "* " : "* __restrict__ ";
    s += std::string(i ? ", " : "") + (stored[i] ? "" : "const ") + T + restrict + "p" + std::to_string(i);
  }
  return s + ") {\n";
}

std::string loop_kernel(const Plan& plan, const LoopStep& loop, const std::string& name) {
  const std::vector<int> bufs = loop_kernel_buffers(loop);
  auto param = [&](int b) { return "p" + std::to_string(std::find(bufs.begin(), bufs.end(), b) - bufs.begin()); };
  return loop_signature(plan, loop, bufs, name) + "  KILN_GRID_LOOP(i, " + num(loop_elements(loop)) + ") {\n" +
         loop_index(loop) + loop_body(plan, loop, name, param) + "  }\n}\n";
}

// The 4-wide version of a vectorizable loop (loop_vectorizable): each thread takes 4
// consecutive elements, reading each contiguous operand and writing each result with one
// 16-byte access (kv4), so that a memory-bound loop keeps 4 times as many bytes in flight.
std::string loop_kernel_v4(const Plan& plan, const LoopStep& loop, const std::string& name) {
  const std::vector<int> bufs = loop_kernel_buffers(loop);
  auto param = [&](int b) { return "p" + std::to_string(std::find(bufs.begin(), bufs.end(), b) - bufs.begin()); };
  std::string s = loop_signature(plan, loop, bufs, name) + "  KILN_GRID_LOOP(q, " + num(loop_elements(loop) / 4) +
                  ") {\n    const long long i = q * 4;\n" + loop_index(loop);
  for (size_t j = 0; j < loop.exprs.size(); ++j) {
    const Expr& e = loop.exprs[j];
    if (e.kind != Expr::Kind::Load || e.stride.back() != 1) continue;
    const std::string T = ops::cuda::gpu_type_name(e.dtype);
    s += "    const kv4<" + T + "> L" + std::to_string(j) + " = *(const kv4<" + T + ">*)(" + param(e.buffer) + " + " +
         load_offset(e) + ");\n";
  }
  for (size_t k = 0; k < loop.stores.size(); ++k)
    s += "    kv4<" + ops::cuda::gpu_type_name(plan.buffers[size_t(loop.stores[k].second)].dtype) + "> S" +
         std::to_string(k) + ";\n";
  for (int lane = 0; lane < 4; ++lane) {
    // the lane's innermost index, for the operands broadcast along it
    s += "    {\n" + loop_body(plan, loop, name, param, lane) + "    }\n";
  }
  for (size_t k = 0; k < loop.stores.size(); ++k) {
    const int b = loop.stores[k].second;  // stores are contiguous
    s += "    *(kv4<" + ops::cuda::gpu_type_name(plan.buffers[size_t(b)].dtype) + ">*)(" + param(b) + " + i) = S" +
         std::to_string(k) + ";\n";
  }
  return s + "  }\n}\n";
}

// A loop with reductions over its trailing dims (cpu::row_reduction): a thread block per row
// (blocks stride over the rows), its threads striding over the row's elements, each computing
// the loop's values, storing what the loop stores and accumulating each reduction, which a
// shared-memory tree then combines as the eager reduction kernel does (same accumulator types
// and NaN rules); thread 0 writes the row's results.
std::string row_reduce_kernel(const Plan& plan, const LoopStep& loop, const std::string& name) {
  const std::optional<cpu::RowReduction> rr = cpu::row_reduction(loop);
  if (!rr) fail<Internal>("cuda", "kernel ", name, ": its reductions are not over the loop's trailing dims");
  const std::vector<int> bufs = loop_kernel_buffers(loop);
  auto param = [&](int b) { return "p" + std::to_string(std::find(bufs.begin(), bufs.end(), b) - bufs.begin()); };
  std::vector<ops::cuda::ReduceParts> parts;
  for (const cpu::LoopReduce& r : loop.reduces)
    parts.push_back(ops::cuda::reduce_parts(r.op, loop.exprs[size_t(r.expr)].dtype));
  auto each = [&](const std::function<std::string(size_t, const std::string&)>& f) {
    std::string out;
    for (size_t j = 0; j < parts.size(); ++j) out += f(j, std::to_string(j));
    return out;
  };
  std::string s = loop_signature(plan, loop, bufs, name);
  s += each([&](size_t j, const std::string& k) {
    return "  typedef " + parts[j].acc + " A" + k + ";\n  __shared__ A" + k + " part" + k + "[256];\n";
  });
  s += "  const long long n = " + num(rr->length) + ";\n  for (long long row = blockIdx.x; row < " + num(rr->rows) +
       "; row += gridDim.x) {\n";
  s += each([&](size_t j, const std::string& k) {
    return "    A" + k + " acc" + k + " = (A" + k + ")(" + parts[j].init + ");\n";
  });
  s += "    for (long long c = threadIdx.x; c < n; c += blockDim.x) {\n      const long long i = row * n + c;\n" +
       loop_index(loop) + loop_body(plan, loop, name, param);
  s += each([&](size_t j, const std::string& k) {
    return "      { const A" + k + " a = acc" + k + ", b = (A" + k + ")" + var(loop.reduces[j].expr) + "; acc" + k +
           " = " + parts[j].merge + "; }\n";
  });
  s += "    }\n";
  s += each([&](size_t, const std::string& k) { return "    part" + k + "[threadIdx.x] = acc" + k + ";\n"; });
  s += "    __syncthreads();\n    for (unsigned s = blockDim.x / 2; s > 0; s >>= 1) {\n      if (threadIdx.x < s) {\n";
  s += each([&](size_t j, const std::string& k) {
    return "        { const A" + k + " a = part" + k + "[threadIdx.x], b = part" + k + "[threadIdx.x + s]; part" + k +
           "[threadIdx.x] = " + parts[j].merge + "; }\n";
  });
  s += "      }\n      __syncthreads();\n    }\n    if (threadIdx.x == 0) {\n";
  s += each([&](size_t j, const std::string& k) {
    return "      { const A" + k + " a = part" + k + "[0]; " + param(loop.reduces[j].buffer) + "[row] = io<" +
           parts[j].out_type + ">::st(" + parts[j].finish + "); }\n";
  });
  return s + "    }\n    __syncthreads();\n  }\n}\n";
}

std::string reduce_kernel(const Plan& plan, const cpu::ReduceStep& r, const std::string& name) {
  const DType in = plan.buffers[size_t(r.in)].dtype;
  if (!ops::cuda::gpu_reduce_supported(r.op, in))
    fail<Internal>("cuda", "kernel ", name, ": ", ops::op_def(r.op).name, " of ", dtype_name(in), " has no GPU kernel");
  return ops::cuda::reduce_kernel_source(r.op, in, name);
}

// Single-block programs: what one step may do (parallel items, multiply-adds), the arena that
// fits in shared memory, and the most steps in one kernel.
constexpr int64_t kBlockMaxItems = 16384, kBlockMaxMacs = int64_t(1) << 20, kBlockMaxSteps = 4096;
constexpr size_t kBlockSharedArena = 40 * 1024;

// The work items of a step run by a single-block program (0 for steps it cannot run).
int64_t block_items(const Plan& plan, const Step& s) {
  switch (s.kind) {
    case Step::Kind::Loop:
      return s.loop.reduces.empty() ? loop_elements(s.loop) : 0;
    case Step::Kind::Reduce:
      return ops::cuda::gpu_reduce_supported(s.reduce.op, plan.buffers[size_t(s.reduce.in)].dtype)
                 ? s.reduce.outer * s.reduce.inner
                 : 0;
    case Step::Kind::MatMul:
      return s.matmul.m * s.matmul.n * s.matmul.batch * s.matmul.k <= kBlockMaxMacs
                 ? s.matmul.m * s.matmul.n * s.matmul.batch
                 : 0;
    default:
      return 0;
  }
}

std::string matmul_block_step(const Plan& plan, const cpu::MatMulStep& mm, const std::function<std::string(int)>& ptr) {
  const DType dt = plan.buffers[size_t(mm.out)].dtype;
  const std::string T = ops::cuda::gpu_type_name(dt), CT = ops::cuda::gpu_compute_type_name(dt);
  // accumulate as the eager matmul kernel: wrapping unsigned for integers
  const std::string acc = is_integer(dt) ? "typename kt<" + T + ">::U" : CT;
  const std::string a = ptr(mm.a), b = ptr(mm.b);
  const std::string ia = mm.ta ? "k * " + num(mm.m) + " + i" : "i * " + num(mm.k) + " + k";
  const std::string ib = mm.tb ? "j * " + num(mm.k) + " + k" : "k * " + num(mm.n) + " + j";
  return "  for (long long e = threadIdx.x; e < " + num(mm.m * mm.n * mm.batch) +
         "; e += blockDim.x) {\n"
         "    const long long bi = e / " +
         num(mm.m * mm.n) + ", r = e % " + num(mm.m * mm.n) + ", i = r / " + num(mm.n) + ", j = r % " + num(mm.n) +
         ";\n"
         "    const " +
         T + "* A = " + a + " + bi * " + num(mm.a_stride) + "; const " + T + "* B = " + b + " + bi * " +
         num(mm.b_stride) + ";\n    " + acc + " sum = 0;\n    for (long long k = 0; k < " + num(mm.k) +
         "; ++k) sum += (" + acc + ")io<" + T + ">::ld(A[" + ia + "]) * (" + acc + ")io<" + T + ">::ld(B[" + ib +
         "]);\n    " + ptr(mm.out) + "[e] = io<" + T + ">::st((" + CT + ")sum);\n  }\n";
}

std::string reduce_block_step(const Plan& plan, const cpu::ReduceStep& r, const std::function<std::string(int)>& ptr) {
  const ops::cuda::ReduceParts p = ops::cuda::reduce_parts(r.op, plan.buffers[size_t(r.in)].dtype);
  // a thread per output element, summing in order
  return "  {\n    typedef " + p.acc + " A;\n    const auto* x = " + ptr(r.in) + ";\n    auto* o = " + ptr(r.out) +
         ";\n    const long long n = " + num(r.reduced) + ";\n    for (long long e = threadIdx.x; e < " +
         num(r.outer * r.inner) + "; e += blockDim.x) {\n      const long long base = (e / " + num(r.inner) + ") * " +
         num(r.reduced * r.inner) + " + e % " + num(r.inner) + ";\n      A acc = (A)(" + p.init +
         ");\n      for (long long j = 0; j < n; ++j) { const long long off = base + j * " + num(r.inner) +
         "; const A a = acc, b = " + p.load + "; acc = " + p.merge + "; }\n      { const A a = acc; o[e] = io<" +
         p.out_type + ">::st(" + p.finish + "); }\n    }\n  }\n";
}

}  // namespace

BlockProgram block_program(const Plan& plan) {
  BlockProgram bp;
  if (plan.steps.empty() || int64_t(plan.steps.size()) > kBlockMaxSteps) return bp;
  int64_t most = 1;
  for (const Step& s : plan.steps) {
    const int64_t items = block_items(plan, s);
    if (items <= 0 || items > kBlockMaxItems) return bp;
    most = std::max(most, items);
  }
  for (const cpu::Buffer& b : plan.buffers) {
    if (is_complex(b.dtype) || b.dtype == DType::String || b.shape.num_elements() > kBlockMaxItems) return bp;
  }
  auto add = [&](int b) {
    if (plan.buffers[size_t(b)].kind != cpu::Buffer::Kind::Temp &&
        std::find(bp.params.begin(), bp.params.end(), b) == bp.params.end())
      bp.params.push_back(b);
  };
  for (const Step& s : plan.steps) {
    if (s.kind == Step::Kind::Loop) {
      for (int b : loop_kernel_buffers(s.loop)) add(b);
    } else if (s.kind == Step::Kind::Reduce) {
      add(s.reduce.in);
      add(s.reduce.out);
    } else {
      add(s.matmul.a);
      add(s.matmul.b);
      add(s.matmul.out);
    }
  }
  bp.eligible = true;
  bp.shared_arena = plan.arena_bytes <= kBlockSharedArena;
  bp.threads = unsigned(std::clamp<int64_t>((most + 31) / 32 * 32, 32, 1024));
  return bp;
}

std::string block_program_source(const Plan& plan, const BlockProgram& bp, const std::string& name) {
  if (!bp.eligible) fail<Internal>("cuda", "kernel ", name, ": this plan does not run as a single-block program");
  const bool global_arena = !bp.shared_arena && plan.arena_bytes > 0;
  std::string s = "extern \"C\" __global__ void __launch_bounds__(1024) " + name + "(";
  for (size_t i = 0; i < bp.params.size(); ++i)
    s += (i ? ", " : "") + std::string("unsigned char* q") + std::to_string(i);
  if (global_arena) s += std::string(bp.params.empty() ? "" : ", ") + "unsigned char* arena";
  s += ") {\n";
  if (bp.shared_arena && plan.arena_bytes > 0)
    s += "  __shared__ __align__(16) unsigned char arena[" + std::to_string(plan.arena_bytes) + "];\n";
  auto ptr = [&](int b) {
    const cpu::Buffer& buf = plan.buffers[size_t(b)];
    const std::string T = ops::cuda::gpu_type_name(buf.dtype);
    if (buf.kind == cpu::Buffer::Kind::Temp) return "((" + T + "*)(arena + " + std::to_string(buf.index) + "))";
    return "((" + T + "*)q" + std::to_string(std::find(bp.params.begin(), bp.params.end(), b) - bp.params.begin()) +
           ")";
  };
  for (const Step& st : plan.steps) {
    switch (st.kind) {
      case Step::Kind::Loop:
        s += "  for (long long i = threadIdx.x; i < " + num(loop_elements(st.loop)) + "; i += blockDim.x) {\n" +
             loop_index(st.loop) + loop_body(plan, st.loop, name, ptr) + "  }\n";
        break;
      case Step::Kind::Reduce:
        s += reduce_block_step(plan, st.reduce, ptr);
        break;
      default:
        s += matmul_block_step(plan, st.matmul, ptr);
        break;
    }
    s += "  __syncthreads();\n";
  }
  return s + "}\n";
}

cpu::LowerOptions lower_options() {
  cpu::LowerOptions o;
  o.library_matmul = false;
  o.epilogues = cpu::LowerOptions::Epilogues::None;
  o.fuse_reductions = false;
  o.half_floats = true;
  return o;
}

std::vector<const Step*> kernel_steps(const Plan& plan) {
  std::vector<const Step*> out;
  std::function<void(const std::vector<Step>&)> walk = [&](const std::vector<Step>& list) {
    for (const Step& s : list) {
      if (s.kind == Step::Kind::Loop || s.kind == Step::Kind::Reduce) out.push_back(&s);
      if (s.kind == Step::Kind::Cond || s.kind == Step::Kind::While) {
        walk(s.control.first);
        walk(s.control.second);
      }
    }
  };
  walk(plan.steps);
  return out;
}

std::vector<int> loop_kernel_buffers(const LoopStep& loop) {
  std::vector<int> bufs;
  auto add = [&](int b) {
    if (std::find(bufs.begin(), bufs.end(), b) == bufs.end()) bufs.push_back(b);
  };
  for (const Expr& e : loop.exprs)
    if (e.kind == Expr::Kind::Load) add(e.buffer);
  for (auto [e, b] : loop.stores) add(b);
  for (const cpu::LoopReduce& r : loop.reduces) add(r.buffer);
  return bufs;
}

bool loop_vectorizable(const Plan& plan, const LoopStep& loop) {
  if (loop.dims.empty() || loop.dims.back() % 4 != 0 || !loop.reduces.empty()) return false;
  for (const Expr& e : loop.exprs) {
    if (e.kind != Expr::Kind::Load) continue;
    if (dtype_size(e.dtype) != 4 || (e.stride.back() != 0 && e.stride.back() != 1)) return false;
    // a 16-byte access needs the 4 lanes' first element at a multiple of 4
    for (size_t d = 0; d + 1 < e.stride.size(); ++d)
      if (e.stride.back() == 1 && e.stride[d] % 4 != 0) return false;
  }
  for (auto [e, b] : loop.stores)
    if (dtype_size(plan.buffers[size_t(b)].dtype) != 4) return false;
  return true;
}

std::string program_kernels(const Plan& plan, const std::string& prefix) {
  std::string s;
  const std::vector<const Step*> steps = kernel_steps(plan);
  for (size_t i = 0; i < steps.size(); ++i) {
    const std::string name = prefix + "_k" + std::to_string(i);
    if (steps[i]->kind != Step::Kind::Loop) {
      s += reduce_kernel(plan, steps[i]->reduce, name);
      continue;
    }
    if (!steps[i]->loop.reduces.empty()) {
      s += row_reduce_kernel(plan, steps[i]->loop, name);
      continue;
    }
    s += loop_kernel(plan, steps[i]->loop, name);
    if (loop_vectorizable(plan, steps[i]->loop)) s += loop_kernel_v4(plan, steps[i]->loop, name + "_v4");
  }
  return s;
}

std::string cuda_program_source(const Plan& plan) { return ops::cuda::gpu_prelude() + program_kernels(plan, "kiln"); }

}  // namespace kiln::backend::cuda
