// CUDA C for a plan: a kernel per fused loop (the loop's expression tree over the prelude's
// functors, so values follow the eager GPU kernels' semantics) and per reduction step (the
// eager reduction kernel). Dims and strides are constants of the specialized shape.
#include <algorithm>
#include <functional>

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

std::string loop_kernel(const Plan& plan, const LoopStep& loop, const std::string& name) {
  if (!loop.reduces.empty())
    fail<Internal>("cuda", "kernel ", name,
                   ": a reduction fused into a loop has no GPU kernel (lower with cuda::lower_options())");
  const std::vector<int> bufs = loop_kernel_buffers(loop);
  auto param = [&](int b) { return "p" + std::to_string(std::find(bufs.begin(), bufs.end(), b) - bufs.begin()); };
  std::vector<bool> stored(bufs.size(), false), loaded(bufs.size(), false);
  for (const Expr& e : loop.exprs)
    if (e.kind == Expr::Kind::Load) loaded[size_t(std::find(bufs.begin(), bufs.end(), e.buffer) - bufs.begin())] = true;
  for (auto [e, b] : loop.stores) stored[size_t(std::find(bufs.begin(), bufs.end(), b) - bufs.begin())] = true;

  std::string s = "extern \"C\" __global__ void " + name + "(";
  for (size_t i = 0; i < bufs.size(); ++i) {
    const std::string T = ops::cuda::gpu_type_name(plan.buffers[size_t(bufs[i])].dtype);
    // a buffer both read and written by one loop would need plain pointers; the plan never
    // does that (stores go to fresh buffers), but the signature stays right if it did
    const char* restrict = loaded[i] && stored[i] ? "* " : "* __restrict__ ";
    s += std::string(i ? ", " : "") + (stored[i] ? "" : "const ") + T + restrict + "p" + std::to_string(i);
  }
  int64_t n = 1;
  for (int64_t d : loop.dims) n *= d;
  s += ") {\n  KILN_GRID_LOOP(i, " + num(n) + ") {\n";
  // the loop's row-major index, outermost dim first
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
        std::string offset;
        for (size_t d = 0; d < rank; ++d)
          if (e.stride[d] != 0)
            offset += (offset.empty() ? "" : " + ") + ("i" + std::to_string(d) + " * " + num(e.stride[d]));
        value = "io<" + ops::cuda::gpu_type_name(e.dtype) + ">::ld(" + param(e.buffer) + "[" +
                (offset.empty() ? "0" : offset) + "])";
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
    s += "    const " + C + " " + var(int(j)) + " = " + value + ";\n";
  }
  // stores are contiguous in the loop's order
  for (auto [e, b] : loop.stores)
    s += "    " + param(b) + "[i] = io<" + ops::cuda::gpu_type_name(plan.buffers[size_t(b)].dtype) + ">::st(" + var(e) +
         ");\n";
  s += "  }\n}\n";
  return s;
}

std::string reduce_kernel(const Plan& plan, const cpu::ReduceStep& r, const std::string& name) {
  const DType in = plan.buffers[size_t(r.in)].dtype;
  if (!ops::cuda::gpu_reduce_supported(r.op, in))
    fail<Internal>("cuda", "kernel ", name, ": ", ops::op_def(r.op).name, " of ", dtype_name(in), " has no GPU kernel");
  return ops::cuda::reduce_kernel_source(r.op, in, name);
}

}  // namespace

cpu::LowerOptions lower_options() {
  cpu::LowerOptions o;
  o.library_matmul = false;
  o.fuse_epilogues = false;
  o.fuse_reductions = false;
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
  return bufs;
}

std::string program_kernels(const Plan& plan, const std::string& prefix) {
  std::string s;
  const std::vector<const Step*> steps = kernel_steps(plan);
  for (size_t i = 0; i < steps.size(); ++i) {
    const std::string name = prefix + "_k" + std::to_string(i);
    s += steps[i]->kind == Step::Kind::Loop ? loop_kernel(plan, steps[i]->loop, name)
                                            : reduce_kernel(plan, steps[i]->reduce, name);
  }
  return s;
}

std::string cuda_program_source(const Plan& plan) { return ops::cuda::gpu_prelude() + program_kernels(plan, "kiln"); }

}  // namespace kiln::backend::cuda
