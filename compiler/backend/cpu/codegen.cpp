// LLVM code generation for the CPU backend: a plan becomes one module with an entry function
// (abi.h) that runs the steps in order — fused loops and reductions as loop nests in functions
// of their own (noalias buffers, split over threads through the context when large), small
// matmuls as loops, large float32 ones (with their fused epilogues) through the context's
// matmul (ahead-of-time objects: its sgemm), everything else through the context's fallback.
// Transcendental functions call SLEEF's vector functions (at the vectorizer's choice of width).
// The module is optimized at O3 for the host CPU, emitted as an object, and loaded with ORC.
#include "compiler/backend/cpu/codegen.h"

#include <chrono>
#include <mutex>
#include <sstream>

#include <llvm/Config/llvm-config.h>
#include <llvm/ExecutionEngine/Orc/ExecutionUtils.h>
#include <llvm/ExecutionEngine/Orc/JITTargetMachineBuilder.h>
#include <llvm/ExecutionEngine/Orc/LLJIT.h>
#include <llvm/IR/IRBuilder.h>
#include <llvm/IR/Intrinsics.h>
#include <llvm/IR/LegacyPassManager.h>
#include <llvm/IR/Module.h>
#include <llvm/IR/Verifier.h>
#include <llvm/MC/TargetRegistry.h>
#include <llvm/Passes/PassBuilder.h>
#include <llvm/Support/MemoryBuffer.h>
#include <llvm/Support/TargetSelect.h>
#include <llvm/Support/raw_ostream.h>
#include <llvm/Target/TargetMachine.h>
#include <llvm/Transforms/IPO/GlobalDCE.h>
#include <llvm/Transforms/Utils/ModuleUtils.h>

#include "runtime/errors.h"

// SLEEF's vector functions that generated code calls (libsleef, the 1.0-ULP "u10" variants), by
// function, ISA and lane count: X(name) for Sleef_<name>. Declared opaque here because only their
// addresses are taken (for the JIT's symbol table), and sleef.h declares the AVX-512 and AVX2
// ones only when this file itself is compiled for those ISAs.
#define KILN_SLEEF_ISA(X, fn) X(fn##f16_u10avx512f) X(fn##d8_u10avx512f) X(fn##f8_u10avx2) X(fn##d4_u10avx2)
#define KILN_SLEEF_FUNCTIONS(X) \
  KILN_SLEEF_ISA(X, exp)        \
  KILN_SLEEF_ISA(X, log)        \
  KILN_SLEEF_ISA(X, log1p)      \
  KILN_SLEEF_ISA(X, sin)        \
  KILN_SLEEF_ISA(X, cos)        \
  KILN_SLEEF_ISA(X, tan)        \
  KILN_SLEEF_ISA(X, tanh)       \
  KILN_SLEEF_ISA(X, pow)
#define KILN_SLEEF_DECLARE(name) void Sleef_##name();
extern "C" {
KILN_SLEEF_FUNCTIONS(KILN_SLEEF_DECLARE)
}
#undef KILN_SLEEF_DECLARE

namespace kiln::backend::cpu {
namespace {

using llvm::IRBuilder;
using llvm::Type;
using llvm::Value;
using ops::OpId;

double micros_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0).count();
}

// Loops whose iteration count reaches this many elements are split across threads.
constexpr int64_t kParallelElements = int64_t(1) << 16;
constexpr int64_t kParallelGrainElements = int64_t(1) << 14;

// The vector math the host runs: SLEEF's AVX-512 functions (16 floats or 8 doubles a call),
// its AVX2 ones (8 or 4), or none (scalar libm).
enum class VectorMath { None, Avx2, Avx512 };

struct Host {
  std::string triple, cpu, features, id;
  VectorMath vmath = VectorMath::None;
};

bool has_feature(const std::string& features, const std::string& name) {
  std::stringstream ss(features);
  for (std::string f; std::getline(ss, f, ',');)
    if (f == "+" + name) return true;
  return false;
}

const Host& host() {
  static const Host h = [] {
    llvm::InitializeNativeTarget();
    llvm::InitializeNativeTargetAsmPrinter();
    auto jtmb = llvm::orc::JITTargetMachineBuilder::detectHost();
    if (!jtmb) fail<Internal>("cpu backend", "cannot detect the host CPU: ", llvm::toString(jtmb.takeError()));
    Host out;
    out.triple = jtmb->getTargetTriple().str();
    out.cpu = jtmb->getCPU();
    out.features = jtmb->getFeatures().getString();
    // SLEEF's AVX2 functions use FMA as well
    if (has_feature(out.features, "avx512f"))
      out.vmath = VectorMath::Avx512;
    else if (has_feature(out.features, "avx2") && has_feature(out.features, "fma"))
      out.vmath = VectorMath::Avx2;
    out.id = out.triple + " " + out.cpu + " " + out.features + " llvm " LLVM_VERSION_STRING;
    return out;
  }();
  return h;
}

std::unique_ptr<llvm::TargetMachine> make_target_machine() {
  const Host& h = host();
  std::string err;
  const llvm::Target* target = llvm::TargetRegistry::lookupTarget(h.triple, err);
  if (!target) fail<Internal>("cpu backend", "no LLVM target for ", h.triple, ": ", err);
  llvm::TargetOptions opts;
  std::unique_ptr<llvm::TargetMachine> tm(target->createTargetMachine(
      h.triple, h.cpu, h.features, opts, llvm::Reloc::PIC_, std::nullopt, llvm::CodeGenOptLevel::Aggressive));
  if (!tm) fail<Internal>("cpu backend", "cannot create a target machine for ", h.triple);
  return tm;
}

bool is_float(DType t) { return t == DType::Float32 || t == DType::Float64; }

// A read-only, 64-byte-aligned global holding `init`. (Made through the module rather than
// `new GlobalVariable`, whose class-specific operator new GCC's -Wmismatched-new-delete flags.)
llvm::GlobalVariable* global(llvm::Module& m, const std::string& name, llvm::Constant* init,
                             llvm::GlobalValue::LinkageTypes linkage) {
  auto* gv = llvm::cast<llvm::GlobalVariable>(m.getOrInsertGlobal(name, init->getType()));
  gv->setInitializer(init);
  gv->setConstant(true);
  gv->setLinkage(linkage);
  gv->setAlignment(llvm::Align(64));
  return gv;
}
bool is_signed(DType t) { return t == DType::Int8 || t == DType::Int16 || t == DType::Int32 || t == DType::Int64; }

class Emitter {
 public:
  // `library_matmul_callback`: library matmuls call the context's matmul (the JIT, whose runtime
  // holds oneDNN primitives per step); otherwise its sgemm (ahead-of-time objects).
  Emitter(llvm::LLVMContext& ctx, llvm::Module& m, const Plan& plan, bool library_matmul_callback)
      : c_(ctx), m_(m), plan_(plan), b_(ctx), matmul_callback_(library_matmul_callback) {}

  // Emits the plan's entry function (abi.h) named `symbol`.
  llvm::Function* emit(const std::string& symbol, bool exported = true) {
    Type* ptr = b_.getPtrTy();
    auto* fty = llvm::FunctionType::get(b_.getInt32Ty(), {ptr, ptr, ptr}, false);
    entry_ = llvm::Function::Create(fty, exported ? llvm::Function::ExternalLinkage : llvm::Function::InternalLinkage,
                                    symbol, m_);
    attributes(entry_);
    ctx_ = entry_->getArg(0);
    args_ = entry_->getArg(1);
    results_ = entry_->getArg(2);
    auto* bb = llvm::BasicBlock::Create(c_, "entry", entry_);
    b_.SetInsertPoint(bb);
    arena_ = b_.CreateLoad(ptr, ctx_, "arena");
    for (size_t i = 0; i < plan_.buffers.size(); ++i) bufs_.push_back(buffer_ptr(plan_.buffers[i]));
    emit_steps(plan_.steps);
    b_.CreateRet(b_.getInt32(0));
    return entry_;
  }

 private:
  void emit_steps(const std::vector<Step>& steps) {
    for (const Step& s : steps) {
      size_t k = next_kernel_++;
      switch (s.kind) {
        case Step::Kind::Loop:
          emit_loop_step(s.loop, k);
          break;
        case Step::Kind::MatMul:
          emit_matmul(s.matmul, k);
          break;
        case Step::Kind::Reduce:
          emit_reduce(s.reduce, k);
          break;
        case Step::Kind::Fallback:
          emit_fallback(s.fallback);
          break;
        case Step::Kind::Cond:
        case Step::Kind::While:
          emit_control(s);
          break;
      }
    }
  }

  // cond and while_loop as basic blocks of the entry function
  void emit_control(const Step& s) {
    auto pred = [&] { return load(DType::Bool, bufs_[size_t(s.control.pred)], b_.getInt64(0)); };
    llvm::Function* f = entry_;
    if (s.kind == Step::Kind::Cond) {
      auto* then_bb = llvm::BasicBlock::Create(c_, "then", f);
      auto* else_bb = llvm::BasicBlock::Create(c_, "else", f);
      auto* done = llvm::BasicBlock::Create(c_, "endif", f);
      b_.CreateCondBr(pred(), then_bb, else_bb);
      b_.SetInsertPoint(then_bb);
      emit_steps(s.control.first);
      b_.CreateBr(done);
      b_.SetInsertPoint(else_bb);
      emit_steps(s.control.second);
      b_.CreateBr(done);
      b_.SetInsertPoint(done);
      return;
    }
    auto* head = llvm::BasicBlock::Create(c_, "while", f);
    auto* body = llvm::BasicBlock::Create(c_, "body", f);
    auto* done = llvm::BasicBlock::Create(c_, "endwhile", f);
    b_.CreateBr(head);
    b_.SetInsertPoint(head);
    emit_steps(s.control.first);
    b_.CreateCondBr(pred(), body, done);
    b_.SetInsertPoint(body);
    emit_steps(s.control.second);
    b_.CreateBr(head);
    b_.SetInsertPoint(done);
  }

  // ---- types and buffers ----------------------------------------------------------------

  Type* mem_type(DType t) {
    switch (t) {
      case DType::Float32:
        return b_.getFloatTy();
      case DType::Float64:
        return b_.getDoubleTy();
      case DType::Int8:
      case DType::UInt8:
      case DType::Bool:
        return b_.getInt8Ty();
      case DType::Int16:
      case DType::UInt16:
        return b_.getInt16Ty();
      case DType::Int32:
      case DType::UInt32:
        return b_.getInt32Ty();
      case DType::Int64:
      case DType::UInt64:
        return b_.getInt64Ty();
      default:
        fail<Internal>("cpu backend", "no native type for ", dtype_name(t));
    }
  }
  // bool computes as i1 and is stored as a byte
  Type* reg_type(DType t) { return t == DType::Bool ? b_.getInt1Ty() : mem_type(t); }

  void attributes(llvm::Function* f) {
    f->addFnAttr("target-cpu", host().cpu);
    f->addFnAttr("target-features", host().features);
    f->addFnAttr("prefer-vector-width", "512");
    f->addFnAttr(llvm::Attribute::NoUnwind);
  }

  Value* buffer_ptr(const Buffer& buf) {
    Type* ptr = b_.getPtrTy();
    switch (buf.kind) {
      case Buffer::Kind::Arg:
        return b_.CreateLoad(ptr, b_.CreateConstInBoundsGEP1_64(ptr, args_, uint64_t(buf.index)));
      case Buffer::Kind::Result:
        return b_.CreateLoad(ptr, b_.CreateConstInBoundsGEP1_64(ptr, results_, uint64_t(buf.index)));
      case Buffer::Kind::Temp:
        return b_.CreateConstInBoundsGEP1_64(b_.getInt8Ty(), arena_, uint64_t(buf.index));
      case Buffer::Kind::Constant:
        return constant(plan_.constants[size_t(buf.index)]);
    }
    return nullptr;
  }

  Value* constant(const Tensor& t) {
    const char* data = static_cast<const char*>(t.raw_data());
    // raw bytes: any dtype (fallback kernels read float16, complex... constants too)
    auto* init =
        llvm::ConstantDataArray::get(c_, llvm::ArrayRef<uint8_t>(reinterpret_cast<const uint8_t*>(data), t.nbytes()));
    // named by the module's global count: unique across the emitters of one AOT module
    return global(m_, "const" + std::to_string(m_.global_size()), init, llvm::GlobalValue::PrivateLinkage);
  }

  Value* load(DType t, Value* base, Value* index) {
    Value* v = b_.CreateLoad(mem_type(t), b_.CreateInBoundsGEP(mem_type(t), base, index));
    return t == DType::Bool ? b_.CreateICmpNE(v, b_.getInt8(0)) : v;
  }
  void store(DType t, Value* v, Value* base, Value* index) {
    if (t == DType::Bool) v = b_.CreateZExt(v, b_.getInt8Ty());
    b_.CreateStore(v, b_.CreateInBoundsGEP(mem_type(t), base, index));
  }

  // ---- loops ------------------------------------------------------------------------------

  // for (i = begin; i < end; ++i) body(i); leaves the builder after the loop.
  template <class Body>
  void for_range(Value* begin, Value* end, Body body) {
    llvm::Function* f = b_.GetInsertBlock()->getParent();
    auto* pre = b_.GetInsertBlock();
    auto* loop = llvm::BasicBlock::Create(c_, "loop", f);
    auto* exit = llvm::BasicBlock::Create(c_, "exit", f);
    b_.CreateCondBr(b_.CreateICmpSLT(begin, end), loop, exit);
    b_.SetInsertPoint(loop);
    llvm::PHINode* i = b_.CreatePHI(b_.getInt64Ty(), 2);
    i->addIncoming(begin, pre);
    body(static_cast<Value*>(i));
    Value* next = b_.CreateAdd(i, b_.getInt64(1), "", true, true);
    i->addIncoming(next, b_.GetInsertBlock());
    b_.CreateCondBr(b_.CreateICmpSLT(next, end), loop, exit);
    b_.SetInsertPoint(exit);
  }
  template <class Body>
  void for_n(int64_t n, Body body) {
    for_range(b_.getInt64(0), b_.getInt64(n), body);
  }

  // A kernel function `name(ptr noalias bufs..., i64 begin, i64 end)` over rows [begin, end)
  // of its outermost loop, and the call that runs it: directly, or through the context's
  // parallel-for (with a wrapper taking the buffers from an array) when `elements` is large.
  template <class Body>
  void kernel(const char* name, const std::vector<int>& buffers, int64_t rows, int64_t elements, Body body,
              bool parallel_ok = true) {
    Type* ptr = b_.getPtrTy();
    std::vector<Type*> params(buffers.size(), ptr);
    params.push_back(b_.getInt64Ty());
    params.push_back(b_.getInt64Ty());
    auto* fn = llvm::Function::Create(llvm::FunctionType::get(b_.getVoidTy(), params, false),
                                      llvm::Function::InternalLinkage, name, m_);
    attributes(fn);
    for (size_t i = 0; i < buffers.size(); ++i) fn->addParamAttr(unsigned(i), llvm::Attribute::NoAlias);
    auto saved = b_.saveIP();
    b_.SetInsertPoint(llvm::BasicBlock::Create(c_, "entry", fn));
    std::vector<Value*> ptrs;
    for (size_t i = 0; i < buffers.size(); ++i) ptrs.push_back(fn->getArg(unsigned(i)));
    body(ptrs, fn->getArg(unsigned(buffers.size())), fn->getArg(unsigned(buffers.size() + 1)));
    b_.CreateRetVoid();
    b_.restoreIP(saved);

    std::vector<Value*> call_args;
    for (int id : buffers) call_args.push_back(bufs_[size_t(id)]);
    if (!parallel_ok || elements < kParallelElements || rows < 2) {
      call_args.push_back(b_.getInt64(0));
      call_args.push_back(b_.getInt64(rows));
      b_.CreateCall(fn, call_args);
      return;
    }
    // wrapper(env, begin, end) for the parallel-for
    auto* wty = llvm::FunctionType::get(b_.getVoidTy(), {ptr, b_.getInt64Ty(), b_.getInt64Ty()}, false);
    auto* wrap = llvm::Function::Create(wty, llvm::Function::InternalLinkage, std::string(name) + ".par", m_);
    attributes(wrap);
    saved = b_.saveIP();
    b_.SetInsertPoint(llvm::BasicBlock::Create(c_, "entry", wrap));
    std::vector<Value*> inner;
    for (size_t i = 0; i < buffers.size(); ++i)
      inner.push_back(b_.CreateLoad(ptr, b_.CreateConstInBoundsGEP1_64(ptr, wrap->getArg(0), i)));
    inner.push_back(wrap->getArg(1));
    inner.push_back(wrap->getArg(2));
    b_.CreateCall(fn, inner);
    b_.CreateRetVoid();
    b_.restoreIP(saved);

    Value* env = entry_alloca(ptr, buffers.size());
    for (size_t i = 0; i < buffers.size(); ++i)
      b_.CreateStore(call_args[i], b_.CreateConstInBoundsGEP1_64(ptr, env, i));
    int64_t per_row = std::max<int64_t>(1, elements / rows);
    int64_t grain = std::max<int64_t>(1, kParallelGrainElements / per_row);
    auto* pty = llvm::FunctionType::get(b_.getVoidTy(), {b_.getInt64Ty(), b_.getInt64Ty(), ptr, ptr}, false);
    Value* par = b_.CreateLoad(ptr, b_.CreateConstInBoundsGEP1_64(ptr, ctx_, 3));
    b_.CreateCall(pty, par, {b_.getInt64(rows), b_.getInt64(grain), wrap, env});
  }

  // A scalar slot in the current function's entry block (promoted to a register by mem2reg).
  Value* function_alloca(Type* t) {
    llvm::Function* f = b_.GetInsertBlock()->getParent();
    IRBuilder<> eb(&f->getEntryBlock(), f->getEntryBlock().begin());
    return eb.CreateAlloca(t);
  }

  // An array of `n` elements in the entry block (allocas elsewhere would grow the stack per
  // step).
  Value* entry_alloca(Type* t, size_t n) {
    IRBuilder<> eb(&entry_->getEntryBlock(), entry_->getEntryBlock().begin());
    return eb.CreateAlloca(t, eb.getInt64(std::max<size_t>(n, 1)));
  }

  // ---- fused elementwise loops -------------------------------------------------------------

  void emit_loop_step(const LoopStep& loop, size_t k) {
    // the buffers the loop touches, each once
    std::vector<int> buffers;
    auto param = [&](int id) {
      auto it = std::find(buffers.begin(), buffers.end(), id);
      if (it != buffers.end()) return size_t(it - buffers.begin());
      buffers.push_back(id);
      return buffers.size() - 1;
    };
    std::vector<size_t> load_param(loop.exprs.size()), store_param, reduce_param;
    for (size_t i = 0; i < loop.exprs.size(); ++i)
      if (loop.exprs[i].kind == Expr::Kind::Load) load_param[i] = param(loop.exprs[i].buffer);
    for (auto [e, b] : loop.stores) store_param.push_back(param(b));
    for (const LoopReduce& r : loop.reduces) reduce_param.push_back(param(r.buffer));
    int64_t elements = 1;
    for (int64_t d : loop.dims) elements *= d;
    // threads split the outermost dim, so every reduction must keep it
    bool parallel_ok = true;
    for (const LoopReduce& r : loop.reduces) {
      parallel_ok &= r.stride[0] != 0;
      fill(r.buffer, reduce_identity(r.op, plan_.buffers[size_t(r.buffer)].dtype));
    }
    const size_t rank = loop.dims.size();
    kernel(("loop" + std::to_string(k)).c_str(), buffers, loop.dims[0], elements,
           [&](const std::vector<Value*>& ptrs, Value* begin, Value* end) {
             // nest: idx[d] for each loop dim
             std::vector<Value*> idx(rank);
             std::function<void(size_t)> level = [&](size_t d) {
               auto body = [&](Value* i) {
                 idx[d] = i;
                 if (d + 1 < rank) return level(d + 1);
                 emit_loop_body(loop, ptrs, load_param, store_param, reduce_param, idx);
               };
               if (d == 0)
                 for_range(begin, end, body);
               else
                 for_n(loop.dims[d], body);
             };
             level(0);
           },
           parallel_ok);
    for (const LoopReduce& r : loop.reduces)
      if (r.op == OpId::ReduceMean) {
        const Buffer& b = plan_.buffers[size_t(r.buffer)];
        Type* et = reg_type(b.dtype);
        for_n(b.shape.num_elements(), [&](Value* i) {
          store(b.dtype,
                b_.CreateFDiv(load(b.dtype, bufs_[size_t(r.buffer)], i), llvm::ConstantFP::get(et, double(r.count))),
                bufs_[size_t(r.buffer)], i);
        });
      }
  }

  // Sets every element of buffer `id` to `v` (in the entry function).
  void fill(int id, Value* v) {
    const Buffer& b = plan_.buffers[size_t(id)];
    for_n(b.shape.num_elements(), [&](Value* i) { store(b.dtype, v, bufs_[size_t(id)], i); });
  }

  void emit_loop_body(const LoopStep& loop, const std::vector<Value*>& ptrs, const std::vector<size_t>& load_param,
                      const std::vector<size_t>& store_param, const std::vector<size_t>& reduce_param,
                      const std::vector<Value*>& idx) {
    std::vector<Value*> val(loop.exprs.size());
    auto offset = [&](std::span<const int64_t> stride) {
      Value* off = b_.getInt64(0);
      for (size_t d = 0; d < idx.size(); ++d)
        if (stride[d] != 0) off = b_.CreateAdd(off, b_.CreateMul(idx[d], b_.getInt64(stride[d])));
      return off;
    };
    for (size_t i = 0; i < loop.exprs.size(); ++i) {
      const Expr& e = loop.exprs[i];
      switch (e.kind) {
        case Expr::Kind::Load:
          val[i] = load(e.dtype, ptrs[load_param[i]], offset(e.stride));
          break;
        case Expr::Kind::Unary:
          val[i] = unary(e.op, loop.exprs[size_t(e.a)].dtype, e.dtype, val[size_t(e.a)]);
          break;
        case Expr::Kind::Binary:
          val[i] = binary(e.op, loop.exprs[size_t(e.a)].dtype, e.dtype, val[size_t(e.a)], val[size_t(e.b)]);
          break;
        case Expr::Kind::Where:
          val[i] = b_.CreateSelect(val[size_t(e.a)], val[size_t(e.b)], val[size_t(e.c)]);
          break;
        case Expr::Kind::Cast:
          val[i] = cast(val[size_t(e.a)], loop.exprs[size_t(e.a)].dtype, e.dtype);
          break;
      }
    }
    // stores are contiguous in the loop's row-major order
    SmallVector<int64_t, 6> contiguous(idx.size(), 1);
    for (size_t d = idx.size() - 1; d-- > 0;) contiguous[d] = contiguous[d + 1] * loop.dims[d + 1];
    Value* out = offset(contiguous);
    for (size_t s = 0; s < loop.stores.size(); ++s) {
      const Expr& e = loop.exprs[size_t(loop.stores[s].first)];
      store(e.dtype, val[size_t(loop.stores[s].first)], ptrs[store_param[s]], out);
    }
    for (size_t s = 0; s < loop.reduces.size(); ++s) {
      const LoopReduce& r = loop.reduces[s];
      DType t = loop.exprs[size_t(r.expr)].dtype;
      Value* at = offset(r.stride);
      Value* acc = load(t, ptrs[reduce_param[s]], at);
      store(t, combine(r.op, t, acc, val[size_t(r.expr)]), ptrs[reduce_param[s]], at);
    }
  }

  // ---- scalar functions (the semantics of ops/kernels/cpu/scalar_fn.h) ---------------------

  Value* intrinsic(llvm::Intrinsic::ID id, std::initializer_list<Value*> args) {
    llvm::Function* f = llvm::Intrinsic::getDeclaration(&m_, id, {(*args.begin())->getType()});
    return b_.CreateCall(f, llvm::ArrayRef<Value*>(args.begin(), args.size()));
  }
  Value* libm(const char* name, Value* x) {
    bool f32 = x->getType()->isFloatTy();
    std::string n = std::string(name) + (f32 ? "f" : "");
    llvm::FunctionCallee fn = m_.getOrInsertFunction(n, x->getType(), x->getType());
    if (auto* f = llvm::dyn_cast<llvm::Function>(fn.getCallee())) f->setDoesNotThrow();
    return b_.CreateCall(fn, {x});
  }

  // ---- vector math (SLEEF) ----------------------------------------------------------------

  // SLEEF's `fn` (exp, log, log1p, sin, cos, tan, tanh, pow) of `args` (one or two, all float or
  // all double) where the host has vector math, else `scalar()`. The call goes to an internal
  // function computing one lane of SLEEF's vector function, whose "vector-function-abi-variant"
  // attribute lets the loop vectorizer call the vector function itself, at its native width and
  // (through small internal functions) at half and twice that width: every element gets the
  // same bits whether its loop iteration was vectorized or not.
  template <class Scalar>
  Value* vector_math(const char* fn, std::initializer_list<Value*> args, Scalar scalar) {
    if (host().vmath == VectorMath::None) return scalar();
    Type* et = (*args.begin())->getType();
    const std::string name = std::string("kiln.vm.") + fn + (et->isFloatTy() ? "f" : "d");
    llvm::Function* f = m_.getFunction(name);
    if (!f) f = define_vector_math(fn, et, unsigned(args.size()), name);
    return b_.CreateCall(f, llvm::ArrayRef<Value*>(args.begin(), args.size()));
  }

  // The scalar function `name` of vector_math and its vector variants.
  llvm::Function* define_vector_math(const std::string& fn, Type* et, unsigned nargs, const std::string& name) {
    const bool avx512 = host().vmath == VectorMath::Avx512, f32 = et->isFloatTy();
    const unsigned lanes = (f32 ? 8u : 4u) * (avx512 ? 2u : 1u);
    auto fty = [&](Type* t) { return llvm::FunctionType::get(t, llvm::SmallVector<Type*, 2>(nargs, t), false); };
    auto vty = [&](unsigned n) { return llvm::FixedVectorType::get(et, n); };
    // no memory access, no unwinding: calls to these vectorize, and duplicates fold
    auto pure = [](llvm::Function* f) {
      f->setDoesNotThrow();
      f->setDoesNotAccessMemory();
      f->setWillReturn();
    };
    auto sleef = [&](const std::string& f) {
      const std::string sym =
          "Sleef_" + f + (f32 ? "f" : "d") + std::to_string(lanes) + "_u10" + (avx512 ? "avx512f" : "avx2");
      auto* decl = llvm::cast<llvm::Function>(m_.getOrInsertFunction(sym, fty(vty(lanes))).getCallee());
      pure(decl);
      return decl;
    };
    // an internal function of type `t` returning `body(builder, arguments)`
    auto define = [&](const std::string& fname, Type* t, auto body) {
      auto* f = llvm::Function::Create(fty(t), llvm::Function::InternalLinkage, fname, m_);
      attributes(f);
      pure(f);
      IRBuilder<> b(llvm::BasicBlock::Create(c_, "entry", f));
      std::vector<Value*> a;
      for (llvm::Argument& arg : f->args()) a.push_back(&arg);
      b.CreateRet(body(b, a));
      return f;
    };
    auto iota = [](unsigned from, unsigned n, unsigned mod) {
      llvm::SmallVector<int, 32> mask;
      for (unsigned i = 0; i < n; ++i) mask.push_back(int(from + i % mod));
      return mask;
    };
    const std::string native_name = name + ".x" + std::to_string(lanes);
    llvm::Function* native = sleef(fn);
    if (fn == "sin" || fn == "tan" || fn == "tanh" || fn == "log1p") {
      // f(x) = x near 0 (x is the correctly rounded result below these bounds: |f(x) - x| stays
      // under a quarter ULP), where SLEEF flushes subnormal results to zero and is 1 ULP off
      // for tanh; log1p returns inf above 1e38 (float) and 1e307 (double), where log(x) is
      // log1p(x) to the last bit
      llvm::Function* log = fn == "log1p" ? sleef("log") : nullptr;
      native = define(native_name, vty(lanes), [&](IRBuilder<>& b, const std::vector<Value*>& a) {
        Value* x = a[0];
        auto splat = [&](double v) { return llvm::ConstantFP::get(vty(lanes), v); };
        Value* y = b.CreateCall(sleef(fn), {x});
        Value* ax = b.CreateUnaryIntrinsic(llvm::Intrinsic::fabs, x);
        const double tiny = fn == "log1p" ? (f32 ? 0x1p-26 : 0x1p-55) : (f32 ? 0x1p-13 : 0x1p-28);
        y = b.CreateSelect(b.CreateFCmpOLT(ax, splat(tiny)), x, y);
        if (!log) return y;
        Value* big = b.CreateFCmpOGT(x, splat(f32 ? 1e38 : 1e307));
        llvm::Function* f = b.GetInsertBlock()->getParent();
        auto* head = b.GetInsertBlock();
        auto* fix = llvm::BasicBlock::Create(c_, "big", f);
        auto* done = llvm::BasicBlock::Create(c_, "done", f);
        b.CreateCondBr(b.CreateOrReduce(big), fix, done);
        b.SetInsertPoint(fix);
        Value* fixed = b.CreateSelect(big, b.CreateCall(log, {x}), y);
        b.CreateBr(done);
        b.SetInsertPoint(done);
        llvm::PHINode* out = b.CreatePHI(vty(lanes), 2);
        out->addIncoming(y, head);
        out->addIncoming(fixed, fix);
        return static_cast<Value*>(out);
      });
    }
    // one lane: the argument in every lane, lane 0 of the result
    llvm::Function* scalar = define(name, et, [&](IRBuilder<>& b, std::vector<Value*> a) {
      for (Value*& v : a) v = b.CreateVectorSplat(lanes, v);
      return b.CreateExtractElement(b.CreateCall(native, a), uint64_t(0));
    });
    // kept out of loops until the vectorizer has seen the call
    scalar->addFnAttr(llvm::Attribute::NoInline);
    // half width: the vector twice over, the first half of the result
    llvm::Function* half =
        define(name + ".x" + std::to_string(lanes / 2), vty(lanes / 2), [&](IRBuilder<>& b, std::vector<Value*> a) {
          for (Value*& v : a) v = b.CreateShuffleVector(v, iota(0, lanes, lanes / 2));
          return b.CreateShuffleVector(b.CreateCall(native, a), iota(0, lanes / 2, lanes));
        });
    // twice the width: two calls
    llvm::Function* twice = define(name + ".x" + std::to_string(lanes * 2), vty(lanes * 2),
                                   [&](IRBuilder<>& b, const std::vector<Value*>& a) {
                                     std::vector<Value*> lo, hi;
                                     for (Value* v : a) {
                                       lo.push_back(b.CreateShuffleVector(v, iota(0, lanes, lanes)));
                                       hi.push_back(b.CreateShuffleVector(v, iota(lanes, lanes, lanes)));
                                     }
                                     return b.CreateShuffleVector(b.CreateCall(native, lo), b.CreateCall(native, hi),
                                                                  iota(0, lanes * 2, lanes * 2));
                                   });
    // _ZGV_LLVM_N<lanes><v per argument>_<scalar>(<vector function>)
    const std::string params(nargs, 'v');
    auto variant = [&](unsigned n, llvm::Function* f) {
      return "_ZGV_LLVM_N" + std::to_string(n) + params + "_" + name + "(" + f->getName().str() + ")";
    };
    scalar->addFnAttr("vector-function-abi-variant",
                      variant(lanes, native) + "," + variant(lanes / 2, half) + "," + variant(lanes * 2, twice));
    // the variants have no users until the vectorizer runs; ModuleBuild::finish drops the
    // unused ones afterwards
    llvm::GlobalValue* variants[] = {native, half, twice};
    llvm::appendToCompilerUsed(m_, variants);
    return scalar;
  }

  Value* fconst(Value* like, double v) { return llvm::ConstantFP::get(like->getType(), v); }
  Value* iconst(Value* like, int64_t v) { return llvm::ConstantInt::get(like->getType(), uint64_t(v), true); }
  Value* is_nan(Value* x) { return b_.CreateFCmpUNO(x, x); }

  // exp for float32 with exp_f32's algorithm and constants (ops/kernels/cpu/scalar_fn.h), so
  // results match the interpreter's bit for bit and the loop vectorizes without a library call
  Value* exp_f32(Value* x) {
    auto F = [&](float v) { return llvm::ConstantFP::get(b_.getFloatTy(), v); };
    Value* nan = is_nan(x);
    Value* xc = b_.CreateSelect(nan, F(0.0f), x);
    xc = b_.CreateSelect(b_.CreateFCmpOLT(xc, F(-103.97f)), F(-103.97f), xc);
    xc = b_.CreateSelect(b_.CreateFCmpOGT(xc, F(88.72283172607421875f)), F(88.72283172607421875f), xc);
    Value* m = intrinsic(llvm::Intrinsic::floor, {b_.CreateFAdd(b_.CreateFMul(xc, F(1.44269504088896341f)), F(0.5f))});
    auto fma = [&](Value* a, Value* b, Value* c) { return intrinsic(llvm::Intrinsic::fma, {a, b, c}); };
    Value* r = fma(m, F(-0.693359375f), xc);
    r = fma(m, F(2.12194440e-4f), r);
    Value* r2 = b_.CreateFMul(r, r);
    Value* p = fma(F(1.9875691500e-4f), r, F(1.3981999507e-3f));
    p = fma(p, r, F(8.3334519073e-3f));
    p = fma(p, r, F(4.1665795894e-2f));
    p = fma(p, r, F(1.6666665459e-1f));
    p = fma(p, r, F(5.0000001201e-1f));
    Value* y = fma(p, r2, b_.CreateFAdd(r, F(1.0f)));
    Value* mi = b_.CreateFPToSI(m, b_.getInt32Ty());
    Value* m1 = b_.CreateSDiv(mi, b_.getInt32(2));  // by a constant: no trap possible
    Value* m2 = b_.CreateSub(mi, m1);
    auto scale = [&](Value* e) {
      return b_.CreateBitCast(b_.CreateShl(b_.CreateAdd(e, b_.getInt32(127)), 23), b_.getFloatTy());
    };
    Value* out = b_.CreateFMul(b_.CreateFMul(y, scale(m1)), scale(m2));
    out =
        b_.CreateSelect(b_.CreateFCmpOGT(x, F(88.72283172607421875f)), F(std::numeric_limits<float>::infinity()), out);
    out = b_.CreateSelect(b_.CreateFCmpOLT(x, F(-103.97f)), F(0.0f), out);
    return b_.CreateSelect(nan, x, out);
  }
  Value* exp(Value* x) {
    if (x->getType()->isFloatTy()) return exp_f32(x);
    return vector_math("exp", {x}, [&] { return intrinsic(llvm::Intrinsic::exp, {x}); });
  }

  // tanh for float32 as a rational function (odd degree-13 over even degree-6 polynomial, the
  // approximation Eigen uses): within 3e-7 relative error, vectorizes, no library call
  Value* tanh_f32(Value* x) {
    auto F = [&](double v) { return llvm::ConstantFP::get(b_.getFloatTy(), v); };
    constexpr double kClamp = 7.90531110763549805;
    Value* xc = b_.CreateSelect(b_.CreateFCmpOLT(x, F(-kClamp)), F(-kClamp), x);
    xc = b_.CreateSelect(b_.CreateFCmpOGT(xc, F(kClamp)), F(kClamp), xc);
    Value* x2 = b_.CreateFMul(xc, xc);
    auto horner = [&](std::initializer_list<double> c) {
      Value* acc = F(*c.begin());
      for (auto it = c.begin() + 1; it != c.end(); ++it) acc = b_.CreateFAdd(b_.CreateFMul(acc, x2), F(*it));
      return acc;
    };
    Value* p = b_.CreateFMul(
        xc, horner({-2.76076847742355e-16, 2.00018790482477e-13, -8.60467152213735e-11, 5.12229709037114e-08,
                    1.48572235717979e-05, 6.37261928875436e-04, 4.89352455891786e-03}));
    Value* q = horner({1.19825839466702e-06, 1.18534705686654e-04, 2.26843463243900e-03, 4.89352518554385e-03});
    Value* tiny = b_.CreateFCmpOLT(intrinsic(llvm::Intrinsic::fabs, {x}), F(0.0004));
    return b_.CreateSelect(tiny, x, b_.CreateFDiv(p, q));
  }

  Value* log1p(Value* x) {
    return vector_math("log1p", {x}, [&] { return libm("log1p", x); });
  }

  Value* unary(OpId op, DType in, DType out, Value* x) {
    if (is_float(in)) {
      switch (op) {
        case OpId::Negative:
          return b_.CreateFNeg(x);
        case OpId::Abs:
          return intrinsic(llvm::Intrinsic::fabs, {x});
        case OpId::Sign: {
          Value* s = b_.CreateSelect(b_.CreateFCmpOGT(x, fconst(x, 0)), fconst(x, 1),
                                     b_.CreateSelect(b_.CreateFCmpOLT(x, fconst(x, 0)), fconst(x, -1), fconst(x, 0)));
          return b_.CreateSelect(is_nan(x), x, s);
        }
        case OpId::Exp:
          return exp(x);
        case OpId::Log:
          return vector_math("log", {x}, [&] { return intrinsic(llvm::Intrinsic::log, {x}); });
        case OpId::Log1p:
          return log1p(x);
        case OpId::Sqrt:
          return intrinsic(llvm::Intrinsic::sqrt, {x});
        case OpId::Rsqrt:
          return b_.CreateFDiv(fconst(x, 1), intrinsic(llvm::Intrinsic::sqrt, {x}));
        case OpId::Square:
          return b_.CreateFMul(x, x);
        case OpId::Sin:
          return vector_math("sin", {x}, [&] { return intrinsic(llvm::Intrinsic::sin, {x}); });
        case OpId::Cos:
          return vector_math("cos", {x}, [&] { return intrinsic(llvm::Intrinsic::cos, {x}); });
        case OpId::Tan:
          return vector_math("tan", {x}, [&] { return libm("tan", x); });
        case OpId::Tanh:
          // float32: the rational function (SLEEF's 1-ULP tanhf is 6x slower)
          if (x->getType()->isFloatTy()) return tanh_f32(x);
          return vector_math("tanh", {x}, [&] { return libm("tanh", x); });
        case OpId::Sigmoid: {
          // as SigmoidFn: 1/(1+e^-x) for x >= 0, e^x/(1+e^x) below, so e never overflows
          Value* e = exp(b_.CreateSelect(b_.CreateFCmpOGE(x, fconst(x, 0)), b_.CreateFNeg(x), x));
          Value* pos = b_.CreateFDiv(fconst(x, 1), b_.CreateFAdd(fconst(x, 1), e));
          Value* neg = b_.CreateFDiv(e, b_.CreateFAdd(fconst(x, 1), e));
          return b_.CreateSelect(b_.CreateFCmpOGE(x, fconst(x, 0)), pos, neg);
        }
        case OpId::Softplus: {
          Value* relu = b_.CreateSelect(b_.CreateFCmpOGT(x, fconst(x, 0)), x, fconst(x, 0));
          Value* e = exp(b_.CreateFNeg(intrinsic(llvm::Intrinsic::fabs, {x})));
          return b_.CreateFAdd(relu, log1p(e));
        }
        case OpId::Relu:
          return b_.CreateSelect(b_.CreateFCmpUGT(x, fconst(x, 0)), x, fconst(x, 0));
        case OpId::Floor:
          return intrinsic(llvm::Intrinsic::floor, {x});
        case OpId::Ceil:
          return intrinsic(llvm::Intrinsic::ceil, {x});
        case OpId::Round:
          return intrinsic(llvm::Intrinsic::nearbyint, {x});
        default:
          break;
      }
    } else if (in == DType::Bool) {
      if (op == OpId::LogicalNot) return b_.CreateNot(x);
    } else {
      bool sgn = is_signed(in);
      Value* zero = iconst(x, 0);
      switch (op) {
        case OpId::Negative:
          return b_.CreateSub(zero, x);
        case OpId::Abs:
          return sgn ? b_.CreateSelect(b_.CreateICmpSLT(x, zero), b_.CreateSub(zero, x), x) : x;
        case OpId::Sign:
          if (!sgn) return b_.CreateZExt(b_.CreateICmpUGT(x, zero), x->getType());
          return b_.CreateSub(b_.CreateZExt(b_.CreateICmpSGT(x, zero), x->getType()),
                              b_.CreateZExt(b_.CreateICmpSLT(x, zero), x->getType()));
        case OpId::Square:
          return b_.CreateMul(x, x);
        case OpId::Relu:
          return sgn ? b_.CreateSelect(b_.CreateICmpSGT(x, zero), x, zero) : x;
        default:
          break;
      }
    }
    fail<Internal>("cpu backend", "no code for ", ops::op_def(op).name, " on ", dtype_name(in), " -> ",
                   dtype_name(out));
  }

  Value* binary(OpId op, DType in, DType out, Value* a, Value* b) {
    if (op == OpId::Divide && !is_float(in)) {
      a = cast(a, in, out);
      b = cast(b, in, out);
      in = out;
    }
    if (is_float(in)) {
      switch (op) {
        case OpId::Add:
          return b_.CreateFAdd(a, b);
        case OpId::Subtract:
          return b_.CreateFSub(a, b);
        case OpId::Multiply:
          return b_.CreateFMul(a, b);
        case OpId::Divide:
          return b_.CreateFDiv(a, b);
        case OpId::FloorDiv:
          return intrinsic(llvm::Intrinsic::floor, {b_.CreateFDiv(a, b)});
        case OpId::Mod: {
          Value* r = b_.CreateFRem(a, b);
          Value* z = fconst(a, 0);
          Value* fix =
              b_.CreateAnd(b_.CreateFCmpUNE(r, z), b_.CreateXor(b_.CreateFCmpOLT(r, z), b_.CreateFCmpOLT(b, z)));
          return b_.CreateSelect(fix, b_.CreateFAdd(r, b), r);
        }
        case OpId::Pow:
          return vector_math("pow", {a, b}, [&] { return intrinsic(llvm::Intrinsic::pow, {a, b}); });
        case OpId::Maximum:
        case OpId::Minimum: {
          Value* pick = op == OpId::Maximum ? b_.CreateSelect(b_.CreateFCmpOLT(a, b), b, a)
                                            : b_.CreateSelect(b_.CreateFCmpOLT(b, a), b, a);
          return b_.CreateSelect(is_nan(a), a, b_.CreateSelect(is_nan(b), b, pick));
        }
        case OpId::Equal:
          return b_.CreateFCmpOEQ(a, b);
        case OpId::NotEqual:
          return b_.CreateFCmpUNE(a, b);
        case OpId::Less:
          return b_.CreateFCmpOLT(a, b);
        case OpId::LessEqual:
          return b_.CreateFCmpOLE(a, b);
        case OpId::Greater:
          return b_.CreateFCmpOGT(a, b);
        case OpId::GreaterEqual:
          return b_.CreateFCmpOGE(a, b);
        default:
          break;
      }
    } else {
      bool sgn = is_signed(in);
      switch (op) {
        case OpId::Add:
          return b_.CreateAdd(a, b);
        case OpId::Subtract:
          return b_.CreateSub(a, b);
        case OpId::Multiply:
          return b_.CreateMul(a, b);
        case OpId::Maximum:
          return b_.CreateSelect(sgn ? b_.CreateICmpSLT(a, b) : b_.CreateICmpULT(a, b), b, a);
        case OpId::Minimum:
          return b_.CreateSelect(sgn ? b_.CreateICmpSLT(b, a) : b_.CreateICmpULT(b, a), b, a);
        case OpId::Equal:
          return b_.CreateICmpEQ(a, b);
        case OpId::NotEqual:
          return b_.CreateICmpNE(a, b);
        case OpId::Less:
          return sgn ? b_.CreateICmpSLT(a, b) : b_.CreateICmpULT(a, b);
        case OpId::LessEqual:
          return sgn ? b_.CreateICmpSLE(a, b) : b_.CreateICmpULE(a, b);
        case OpId::Greater:
          return sgn ? b_.CreateICmpSGT(a, b) : b_.CreateICmpUGT(a, b);
        case OpId::GreaterEqual:
          return sgn ? b_.CreateICmpSGE(a, b) : b_.CreateICmpUGE(a, b);
        case OpId::LogicalAnd:
          return b_.CreateAnd(a, b);
        case OpId::LogicalOr:
          return b_.CreateOr(a, b);
        case OpId::LogicalXor:
          return b_.CreateXor(a, b);
        default:
          break;
      }
    }
    fail<Internal>("cpu backend", "no code for ", ops::op_def(op).name, " on ", dtype_name(in), " -> ",
                   dtype_name(out));
  }

  // The conversions of ops/defs/cast.cpp: floats to integers truncate and saturate (NaN to
  // 0), integers wrap, anything to bool compares with zero.
  Value* cast(Value* x, DType from, DType to) {
    if (from == to) return x;
    Type* t = reg_type(to);
    if (to == DType::Bool) return is_float(from) ? b_.CreateFCmpUNE(x, fconst(x, 0)) : b_.CreateICmpNE(x, iconst(x, 0));
    if (from == DType::Bool) return is_float(to) ? b_.CreateUIToFP(x, t) : b_.CreateZExt(x, t);
    if (is_float(from) && is_float(to)) return b_.CreateFPCast(x, t);
    if (is_float(to)) return is_signed(from) ? b_.CreateSIToFP(x, t) : b_.CreateUIToFP(x, t);
    if (is_float(from)) {
      auto id = is_signed(to) ? llvm::Intrinsic::fptosi_sat : llvm::Intrinsic::fptoui_sat;
      llvm::Function* f = llvm::Intrinsic::getDeclaration(&m_, id, {t, x->getType()});
      return b_.CreateCall(f, {x});
    }
    return b_.CreateIntCast(x, t, is_signed(from));
  }

  // ---- matmul ----------------------------------------------------------------------------

  void emit_matmul(const MatMulStep& mm, size_t k) {
    const Buffer& out = plan_.buffers[size_t(mm.out)];
    if (mm.library && matmul_callback_) {
      // the context's matmul: every batch and the epilogue in one call, given the post-ops'
      // operand buffers
      Type* ptr = b_.getPtrTy();
      std::vector<int> operands;
      for (const PostOp& p : mm.epilogue)
        if (p.buffer >= 0) operands.push_back(p.buffer);
      Value* ops = entry_alloca(ptr, operands.size());
      for (size_t i = 0; i < operands.size(); ++i)
        b_.CreateStore(bufs_[size_t(operands[i])], b_.CreateConstInBoundsGEP1_64(ptr, ops, i));
      auto* fty = llvm::FunctionType::get(b_.getInt32Ty(), {ptr, b_.getInt32Ty(), ptr, ptr, ptr, ptr}, false);
      Value* fn = b_.CreateLoad(ptr, b_.CreateConstInBoundsGEP1_64(ptr, ctx_, 5));
      Value* state = b_.CreateLoad(ptr, b_.CreateConstInBoundsGEP1_64(ptr, ctx_, 1));
      return_if_failed(b_.CreateCall(
          fty, fn, {state, b_.getInt32(mm.id), bufs_[size_t(mm.a)], bufs_[size_t(mm.b)], bufs_[size_t(mm.out)], ops}));
      return;
    }
    if (mm.library) {
      // the context's sgemm, one call per batch (ahead-of-time plans have no epilogues)
      if (!mm.epilogue.empty()) fail<Internal>("cpu backend", "a matmul epilogue needs the context's matmul");
      Type* ptr = b_.getPtrTy();
      Type* i64 = b_.getInt64Ty();
      Type* i32 = b_.getInt32Ty();
      auto* fty = llvm::FunctionType::get(i32, {i32, i32, i64, i64, i64, ptr, i64, ptr, i64, ptr, i64}, false);
      Value* fn = b_.CreateLoad(ptr, b_.CreateConstInBoundsGEP1_64(ptr, ctx_, 4));
      int64_t lda = mm.ta ? mm.m : mm.k, ldb = mm.tb ? mm.k : mm.n;
      for_n(mm.batch, [&](Value* bi) {
        Value* a =
            b_.CreateInBoundsGEP(b_.getFloatTy(), bufs_[size_t(mm.a)], b_.CreateMul(bi, b_.getInt64(mm.a_stride)));
        Value* bb =
            b_.CreateInBoundsGEP(b_.getFloatTy(), bufs_[size_t(mm.b)], b_.CreateMul(bi, b_.getInt64(mm.b_stride)));
        Value* c =
            b_.CreateInBoundsGEP(b_.getFloatTy(), bufs_[size_t(mm.out)], b_.CreateMul(bi, b_.getInt64(mm.m * mm.n)));
        Value* rc = b_.CreateCall(fty, fn,
                                  {b_.getInt32(mm.ta), b_.getInt32(mm.tb), b_.getInt64(mm.m), b_.getInt64(mm.n),
                                   b_.getInt64(mm.k), a, b_.getInt64(lda), bb, b_.getInt64(ldb), c, b_.getInt64(mm.n)});
        return_if_failed(rc);
      });
      return;
    }
    DType t = out.dtype;
    if (mm.batch == 1 && mm.m > 0 && mm.n > 0 && mm.k > 0 && mm.n <= 64 && mm.m * mm.k <= 1024) {
      b_.CreateCall(small_matmul(mm, t), {bufs_[size_t(mm.a)], bufs_[size_t(mm.b)], bufs_[size_t(mm.out)]});
      return;
    }
    int64_t rows = mm.batch * mm.m;
    // A[i, kk] at i*sai + kk*sak; B[kk, j] at kk*sbk + j*sbj
    int64_t sai = mm.ta ? 1 : mm.k, sak = mm.ta ? mm.m : 1;
    int64_t sbk = mm.tb ? 1 : mm.n, sbj = mm.tb ? mm.k : 1;
    kernel(("matmul" + std::to_string(k)).c_str(), {mm.a, mm.b, mm.out}, rows, rows * mm.n * std::max<int64_t>(mm.k, 1),
           [&](const std::vector<Value*>& p, Value* begin, Value* end) {
             // row r = (batch, i) of C, in chunks of up to four vector registers of columns held
             // across the whole k loop: acc[v] += a[r, kk] * B[kk, chunk]
             Type* et = reg_type(t);
             const unsigned lanes = unsigned(64 / dtype_size(t));
             auto* vt = llvm::FixedVectorType::get(et, lanes);
             llvm::Align align(dtype_size(t));
             bool fl = is_float(t);
             std::vector<Value*> accs;
             for (int v = 0; v < 4; ++v) accs.push_back(function_alloca(vt));
             for_range(begin, end, [&](Value* r) {
               Value* bi = b_.CreateSDiv(r, b_.getInt64(mm.m));  // by a nonzero constant
               Value* i = b_.CreateSRem(r, b_.getInt64(mm.m));
               Value* a0 = b_.CreateAdd(b_.CreateMul(bi, b_.getInt64(mm.a_stride)), b_.CreateMul(i, b_.getInt64(sai)));
               Value* b0 = b_.CreateMul(bi, b_.getInt64(mm.b_stride));
               Value* c0 = b_.CreateMul(r, b_.getInt64(mm.n));
               for (int64_t j0 = 0; j0 < mm.n; j0 += 4 * int64_t(lanes)) {
                 const int64_t width = std::min<int64_t>(mm.n - j0, 4 * int64_t(lanes));
                 const int nvec = int((width + lanes - 1) / lanes);
                 // the last vector of a chunk may be partial: masked, nothing past the row is touched
                 auto mask_for = [&](int v) -> Value* {
                   int64_t valid = std::min<int64_t>(lanes, width - int64_t(v) * lanes);
                   if (valid == int64_t(lanes)) return nullptr;
                   std::vector<llvm::Constant*> m;
                   for (unsigned l = 0; l < lanes; ++l) m.push_back(b_.getInt1(int64_t(l) < valid));
                   return llvm::ConstantVector::get(m);
                 };
                 for (int v = 0; v < nvec; ++v) b_.CreateStore(llvm::Constant::getNullValue(vt), accs[size_t(v)]);
                 for_n(mm.k, [&](Value* kk) {
                   Value* aik =
                       b_.CreateVectorSplat(lanes, load(t, p[0], b_.CreateAdd(a0, b_.CreateMul(kk, b_.getInt64(sak)))));
                   Value* row = b_.CreateAdd(b0, b_.CreateMul(kk, b_.getInt64(sbk)));
                   for (int v = 0; v < nvec; ++v) {
                     Value* first = b_.CreateAdd(row, b_.getInt64((j0 + v * int64_t(lanes)) * sbj));
                     Value* m = mask_for(v);
                     Value* bv;
                     if (sbj == 1) {
                       Value* at = b_.CreateInBoundsGEP(et, p[1], first);
                       bv = m ? static_cast<Value*>(
                                    b_.CreateMaskedLoad(vt, at, align, m, llvm::Constant::getNullValue(vt)))
                              : b_.CreateAlignedLoad(vt, at, align);
                     } else {
                       // transpose_b: a column of B, gathered
                       std::vector<llvm::Constant*> offs;
                       for (unsigned l = 0; l < lanes; ++l) offs.push_back(b_.getInt64(int64_t(l) * sbj));
                       Value* idx = b_.CreateAdd(b_.CreateVectorSplat(lanes, first), llvm::ConstantVector::get(offs));
                       Value* ptrs = b_.CreateInBoundsGEP(et, p[1], idx);
                       std::vector<llvm::Constant*> all(lanes, b_.getInt1(true));
                       bv = b_.CreateMaskedGather(vt, ptrs, align, m ? m : llvm::ConstantVector::get(all),
                                                  llvm::Constant::getNullValue(vt));
                     }
                     Value* acc = b_.CreateLoad(vt, accs[size_t(v)]);
                     Value* prod = fl ? b_.CreateFMul(aik, bv) : b_.CreateMul(aik, bv);
                     b_.CreateStore(fl ? b_.CreateFAdd(acc, prod) : b_.CreateAdd(acc, prod), accs[size_t(v)]);
                   }
                 });
                 for (int v = 0; v < nvec; ++v) {
                   Value* at = b_.CreateInBoundsGEP(et, p[2], b_.CreateAdd(c0, b_.getInt64(j0 + v * int64_t(lanes))));
                   Value* acc = b_.CreateLoad(vt, accs[size_t(v)]);
                   if (Value* m = mask_for(v))
                     b_.CreateMaskedStore(acc, at, align, m);
                   else
                     b_.CreateAlignedStore(acc, at, align);
                 }
               }
             });
           });
  }

  // A small matmul fully unrolled over m and k with a row of C in one vector register: the
  // rows of op(B) are loaded once, each row of C is a sum of broadcast A elements times them.
  // One function per shape, shared by every step with that shape (power(x, 100) has 100).
  llvm::Function* small_matmul(const MatMulStep& mm, DType t) {
    std::string name = "matmul_small_" + std::string(dtype_name(t)) + "_" + std::to_string(mm.m) + "x" +
                       std::to_string(mm.n) + "x" + std::to_string(mm.k) + (mm.ta ? "_ta" : "") + (mm.tb ? "_tb" : "");
    if (llvm::Function* f = m_.getFunction(name)) return f;
    Type* ptr = b_.getPtrTy();
    auto* fn = llvm::Function::Create(llvm::FunctionType::get(b_.getVoidTy(), {ptr, ptr, ptr}, false),
                                      llvm::Function::InternalLinkage, name, m_);
    attributes(fn);
    for (unsigned i = 0; i < 3; ++i) fn->addParamAttr(i, llvm::Attribute::NoAlias);
    auto saved = b_.saveIP();
    b_.SetInsertPoint(llvm::BasicBlock::Create(c_, "entry", fn));
    Value *a = fn->getArg(0), *b = fn->getArg(1), *c = fn->getArg(2);
    Type* et = reg_type(t);
    // rows padded to a power-of-two vector (a full register for 9..16 float32 lanes), read and
    // written with masks so nothing beyond a row is touched
    unsigned width = 1;
    while (width < unsigned(mm.n)) width *= 2;
    auto* vt = llvm::FixedVectorType::get(et, width);
    llvm::Align align(dtype_size(t));
    std::vector<llvm::Constant*> lanes;
    for (unsigned j = 0; j < width; ++j) lanes.push_back(b_.getInt1(j < unsigned(mm.n)));
    Value* mask = llvm::ConstantVector::get(lanes);
    bool masked = width != unsigned(mm.n);
    auto load_row = [&](Value* p) -> Value* {
      if (!masked) return b_.CreateAlignedLoad(vt, p, align);
      return b_.CreateMaskedLoad(vt, p, align, mask, llvm::Constant::getNullValue(vt));
    };
    std::vector<Value*> brow;
    for (int64_t kk = 0; kk < mm.k; ++kk) {
      if (!mm.tb) {
        brow.push_back(load_row(b_.CreateConstInBoundsGEP1_64(et, b, uint64_t(kk * mm.n))));
        continue;
      }
      Value* v = llvm::Constant::getNullValue(vt);
      for (int64_t j = 0; j < mm.n; ++j)
        v = b_.CreateInsertElement(v, load(t, b, b_.getInt64(j * mm.k + kk)), uint64_t(j));
      brow.push_back(v);
    }
    bool fl = is_float(t);
    for (int64_t i = 0; i < mm.m; ++i) {
      Value* acc = llvm::Constant::getNullValue(vt);
      for (int64_t kk = 0; kk < mm.k; ++kk) {
        Value* aik = b_.CreateVectorSplat(width, load(t, a, b_.getInt64(mm.ta ? kk * mm.m + i : i * mm.k + kk)));
        acc = fl ? b_.CreateFAdd(acc, b_.CreateFMul(aik, brow[size_t(kk)]))
                 : b_.CreateAdd(acc, b_.CreateMul(aik, brow[size_t(kk)]));
      }
      Value* dst = b_.CreateConstInBoundsGEP1_64(et, c, uint64_t(i * mm.n));
      if (masked)
        b_.CreateMaskedStore(acc, dst, align, mask);
      else
        b_.CreateAlignedStore(acc, dst, align);
    }
    b_.CreateRetVoid();
    b_.restoreIP(saved);
    return fn;
  }

  // ---- reductions ------------------------------------------------------------------------

  Value* reduce_identity(OpId op, DType t) {
    Type* et = reg_type(t);
    bool fl = is_float(t), sgn = is_signed(t);
    switch (op) {
      case OpId::ReduceSum:
      case OpId::ReduceMean:
        return fl ? llvm::ConstantFP::get(et, 0.0) : llvm::ConstantInt::get(et, 0);
      case OpId::ReduceProd:
        return fl ? llvm::ConstantFP::get(et, 1.0) : llvm::ConstantInt::get(et, 1);
      case OpId::ReduceMax:
        return fl ? llvm::ConstantFP::getInfinity(et, true)
                  : llvm::ConstantInt::get(et, sgn ? llvm::APInt::getSignedMinValue(et->getIntegerBitWidth())
                                                   : llvm::APInt::getMinValue(et->getIntegerBitWidth()));
      case OpId::ReduceMin:
        return fl ? llvm::ConstantFP::getInfinity(et, false)
                  : llvm::ConstantInt::get(et, sgn ? llvm::APInt::getSignedMaxValue(et->getIntegerBitWidth())
                                                   : llvm::APInt::getMaxValue(et->getIntegerBitWidth()));
      default:
        fail<Internal>("cpu backend", "no code for ", ops::op_def(op).name);
    }
  }

  // acc op x. Float sums and products may reassociate (a stated tolerance against the
  // interpreter) so that reduction loops vectorize; max and min propagate NaN.
  Value* combine(OpId op, DType t, Value* acc, Value* x) {
    bool fl = is_float(t), sgn = is_signed(t);
    llvm::FastMathFlags fmf;
    fmf.setAllowReassoc();
    IRBuilder<>::FastMathFlagGuard guard(b_);
    b_.setFastMathFlags(fmf);
    switch (op) {
      case OpId::ReduceSum:
      case OpId::ReduceMean:
        return fl ? b_.CreateFAdd(acc, x) : b_.CreateAdd(acc, x);
      case OpId::ReduceProd:
        return fl ? b_.CreateFMul(acc, x) : b_.CreateMul(acc, x);
      case OpId::ReduceMax:
        return fl ? intrinsic(llvm::Intrinsic::maximum, {acc, x})
                  : b_.CreateSelect(sgn ? b_.CreateICmpSLT(acc, x) : b_.CreateICmpULT(acc, x), x, acc);
      default:
        return fl ? intrinsic(llvm::Intrinsic::minimum, {acc, x})
                  : b_.CreateSelect(sgn ? b_.CreateICmpSLT(x, acc) : b_.CreateICmpULT(x, acc), x, acc);
    }
  }

  void emit_reduce(const ReduceStep& r, size_t k) {
    DType t = plan_.buffers[size_t(r.in)].dtype;
    Type* et = reg_type(t);
    Value* init = reduce_identity(r.op, t);
    auto combine = [&](Value* acc, Value* x) { return this->combine(r.op, t, acc, x); };
    auto finish = [&](Value* acc) {
      return r.op == OpId::ReduceMean ? b_.CreateFDiv(acc, llvm::ConstantFP::get(et, double(r.reduced))) : acc;
    };
    kernel(("reduce" + std::to_string(k)).c_str(), {r.in, r.out}, r.outer, r.outer * r.reduced * r.inner,
           [&](const std::vector<Value*>& p, Value* begin, Value* end) {
             for_range(begin, end, [&](Value* o) {
               Value* in0 = b_.CreateMul(o, b_.getInt64(r.reduced * r.inner));
               Value* out0 = b_.CreateMul(o, b_.getInt64(r.inner));
               if (r.inner == 1) {
                 Value* acc = function_alloca(et);
                 b_.CreateStore(init, acc);
                 for_n(r.reduced, [&](Value* i) {
                   b_.CreateStore(combine(b_.CreateLoad(et, acc), load(t, p[0], b_.CreateAdd(in0, i))), acc);
                 });
                 store(t, finish(b_.CreateLoad(et, acc)), p[1], out0);
                 return;
               }
               for_n(r.inner, [&](Value* j) { store(t, init, p[1], b_.CreateAdd(out0, j)); });
               for_n(r.reduced, [&](Value* i) {
                 Value* row = b_.CreateAdd(in0, b_.CreateMul(i, b_.getInt64(r.inner)));
                 for_n(r.inner, [&](Value* j) {
                   Value* oi = b_.CreateAdd(out0, j);
                   store(t, combine(load(t, p[1], oi), load(t, p[0], b_.CreateAdd(row, j))), p[1], oi);
                 });
               });
               if (r.op == OpId::ReduceMean)
                 for_n(r.inner, [&](Value* j) {
                   Value* oi = b_.CreateAdd(out0, j);
                   store(t, finish(load(t, p[1], oi)), p[1], oi);
                 });
             });
           });
  }

  // ---- fallbacks -------------------------------------------------------------------------

  void return_if_failed(Value* rc) {
    llvm::Function* f = b_.GetInsertBlock()->getParent();
    auto* bad = llvm::BasicBlock::Create(c_, "failed", f);
    auto* ok = llvm::BasicBlock::Create(c_, "ok", f);
    b_.CreateCondBr(b_.CreateICmpNE(rc, b_.getInt32(0)), bad, ok);
    b_.SetInsertPoint(bad);
    b_.CreateRet(rc);
    b_.SetInsertPoint(ok);
  }

  void emit_fallback(const FallbackStep& f) {
    Type* ptr = b_.getPtrTy();
    Value* ins = entry_alloca(ptr, f.ins.size());
    Value* outs = entry_alloca(ptr, f.outs.size());
    for (size_t i = 0; i < f.ins.size(); ++i)
      b_.CreateStore(bufs_[size_t(f.ins[i])], b_.CreateConstInBoundsGEP1_64(ptr, ins, i));
    for (size_t i = 0; i < f.outs.size(); ++i)
      b_.CreateStore(bufs_[size_t(f.outs[i])], b_.CreateConstInBoundsGEP1_64(ptr, outs, i));
    auto* fty = llvm::FunctionType::get(b_.getInt32Ty(), {ptr, b_.getInt32Ty(), ptr, ptr}, false);
    Value* fn = b_.CreateLoad(ptr, b_.CreateConstInBoundsGEP1_64(ptr, ctx_, 2));
    Value* state = b_.CreateLoad(ptr, b_.CreateConstInBoundsGEP1_64(ptr, ctx_, 1));
    return_if_failed(b_.CreateCall(fty, fn, {state, b_.getInt32(f.id), ins, outs}));
  }

  llvm::LLVMContext& c_;
  llvm::Module& m_;
  const Plan& plan_;
  IRBuilder<> b_;
  llvm::Function* entry_ = nullptr;
  Value *ctx_ = nullptr, *args_ = nullptr, *results_ = nullptr, *arena_ = nullptr;
  std::vector<Value*> bufs_;
  size_t next_kernel_ = 0;  // numbers the kernel functions
  bool matmul_callback_ = true;
};

// One JIT for the process; each loaded object gets a JITDylib of its own, removed when its
// NativeCode goes (so evicted functions free their code).
struct Jit {
  std::unique_ptr<llvm::orc::LLJIT> lljit;
  std::mutex mu;
  uint64_t counter = 0;

  static Jit& get() {
    static Jit* j = [] {
      host();
      auto* jit = new Jit;  // lives for the process: code may run until exit
      auto built = llvm::orc::LLJITBuilder().create();
      if (!built) fail<Internal>("cpu backend", "cannot start the LLVM JIT: ", llvm::toString(built.takeError()));
      jit->lljit = std::move(*built);
      return jit;
    }();
    return *j;
  }
};

class LoadedCode final : public NativeCode {
 public:
  llvm::orc::JITDylib* dylib = nullptr;
  ~LoadedCode() override {
    Jit& jit = Jit::get();
    std::lock_guard lock(jit.mu);
    llvm::consumeError(jit.lljit->getExecutionSession().removeJITDylib(*dylib));
  }
};

}  // namespace

const std::string& target_id() { return host().id; }

namespace {

struct ModuleBuild {
  llvm::LLVMContext ctx;
  std::unique_ptr<llvm::TargetMachine> tm = make_target_machine();
  std::unique_ptr<llvm::Module> m;
  explicit ModuleBuild(const std::string& name) : m(std::make_unique<llvm::Module>(name, ctx)) {
    m->setTargetTriple(host().triple);
    m->setDataLayout(tm->createDataLayout());
  }

  // Verifies and optimizes at O3.
  void optimize(const std::string& name, CodegenTimes* times) {
    std::string err;
    llvm::raw_string_ostream es(err);
    if (llvm::verifyModule(*m, &es))
      fail<Internal>("cpu backend", "generated invalid LLVM IR for '", name, "': ", es.str());
    auto t0 = std::chrono::steady_clock::now();
    llvm::LoopAnalysisManager lam;
    llvm::FunctionAnalysisManager fam;
    llvm::CGSCCAnalysisManager cgam;
    llvm::ModuleAnalysisManager mam;
    llvm::PassBuilder pb(tm.get());
    pb.registerModuleAnalyses(mam);
    pb.registerCGSCCAnalyses(cgam);
    pb.registerFunctionAnalyses(fam);
    pb.registerLoopAnalyses(lam);
    pb.crossRegisterProxies(lam, fam, cgam, mam);
    llvm::ModulePassManager mpm = pb.buildPerModuleDefaultPipeline(llvm::OptimizationLevel::O3);
    mpm.run(*m, mam);
    // the vector math variants that no loop calls (Emitter::vector_math) go now
    if (llvm::GlobalVariable* used = m->getNamedGlobal("llvm.compiler.used")) {
      used->eraseFromParent();
      mam.clear();
      llvm::ModulePassManager dce;
      dce.addPass(llvm::GlobalDCEPass());
      dce.run(*m, mam);
    }
    if (times) times->optimize_us = micros_since(t0);
  }

  // Verifies, optimizes at O3 and emits an object.
  std::string finish(const std::string& name, CodegenTimes* times) {
    optimize(name, times);
    auto t0 = std::chrono::steady_clock::now();
    llvm::SmallVector<char, 0> obj;
    {
      llvm::raw_svector_ostream os(obj);
      llvm::legacy::PassManager pm;
      if (tm->addPassesToEmitFile(pm, os, nullptr, llvm::CodeGenFileType::ObjectFile))
        fail<Internal>("cpu backend", "the target cannot emit object files");
      pm.run(*m);
    }
    if (times) times->emit_us = micros_since(t0);
    return std::string(obj.data(), obj.size());
  }
};

// The runtime side of abi.h inside an ahead-of-time object: a serial parallel-for, a fallback
// and a matmul that fail (AOT plans have no fallbacks and call sgemm for library matmuls,
// without epilogues), and sgemm from oneDNN or a failing stub (AOT plans lower matmuls inline
// unless oneDNN is asked for).
struct AotRuntime {
  llvm::Function *parallel, *fallback, *matmul, *sgemm;

  AotRuntime(llvm::Module& m, bool onednn) {
    llvm::LLVMContext& c = m.getContext();
    IRBuilder<> b(c);
    Type *ptr = b.getPtrTy(), *i64 = b.getInt64Ty(), *i32 = b.getInt32Ty();
    auto make = [&](const char* name, llvm::FunctionType* ty) {
      auto* f = llvm::Function::Create(ty, llvm::Function::InternalLinkage, name, m);
      f->addFnAttr(llvm::Attribute::NoUnwind);
      b.SetInsertPoint(llvm::BasicBlock::Create(c, "entry", f));
      return f;
    };
    parallel = make("kiln_aot_parallel", llvm::FunctionType::get(b.getVoidTy(), {i64, i64, ptr, ptr}, false));
    auto* body_ty = llvm::FunctionType::get(b.getVoidTy(), {ptr, i64, i64}, false);
    b.CreateCall(body_ty, parallel->getArg(2), {parallel->getArg(3), b.getInt64(0), parallel->getArg(0)});
    b.CreateRetVoid();
    fallback = make("kiln_aot_fallback", llvm::FunctionType::get(i32, {ptr, i32, ptr, ptr}, false));
    b.CreateRet(b.getInt32(1));
    matmul = make("kiln_aot_matmul", llvm::FunctionType::get(i32, {ptr, i32, ptr, ptr, ptr, ptr}, false));
    b.CreateRet(b.getInt32(1));
    sgemm = make("kiln_aot_sgemm",
                 llvm::FunctionType::get(i32, {i32, i32, i64, i64, i64, ptr, i64, ptr, i64, ptr, i64}, false));
    if (!onednn) {
      b.CreateRet(b.getInt32(1));
      return;
    }
    // dnnl_status_t dnnl_sgemm(char transa, char transb, dnnl_dim_t M, N, K, float alpha,
    //                          const float* A, dnnl_dim_t lda, const float* B, ldb, float beta, float* C, ldc)
    Type* i8 = b.getInt8Ty();
    llvm::FunctionCallee dnnl = m.getOrInsertFunction(
        "dnnl_sgemm",
        llvm::FunctionType::get(
            i32, {i8, i8, i64, i64, i64, b.getFloatTy(), ptr, i64, ptr, i64, b.getFloatTy(), ptr, i64}, false));
    auto trans = [&](Value* t) {
      return b.CreateSelect(b.CreateICmpNE(t, b.getInt32(0)), b.getInt8('T'), b.getInt8('N'));
    };
    llvm::Function* f = sgemm;
    Value* rc =
        b.CreateCall(dnnl, {trans(f->getArg(0)), trans(f->getArg(1)), f->getArg(2), f->getArg(3), f->getArg(4),
                            llvm::ConstantFP::get(b.getFloatTy(), 1.0), f->getArg(5), f->getArg(6), f->getArg(7),
                            f->getArg(8), llvm::ConstantFP::get(b.getFloatTy(), 0.0), f->getArg(9), f->getArg(10)});
    b.CreateRet(b.CreateZExt(b.CreateICmpNE(rc, b.getInt32(0)), i32));
  }
};

}  // namespace

std::string emit_object(const Plan& plan, const std::string& symbol, CodegenTimes* times) {
  auto t0 = std::chrono::steady_clock::now();
  ModuleBuild mb(symbol);
  Emitter(mb.ctx, *mb.m, plan, true).emit(symbol);
  if (times) times->ir_us = micros_since(t0);
  return mb.finish(symbol, times);
}

std::string optimized_ir(const Plan& plan, const std::string& symbol) {
  ModuleBuild mb(symbol);
  Emitter(mb.ctx, *mb.m, plan, true).emit(symbol);
  mb.optimize(symbol, nullptr);
  std::string ir;
  llvm::raw_string_ostream os(ir);
  mb.m->print(os, nullptr);
  return ir;
}

std::string emit_aot_object(std::span<const AotEntry> entries, const AotObjectOptions& options) {
  ModuleBuild mb("kiln_aot");
  llvm::Module& m = *mb.m;
  IRBuilder<> b(mb.ctx);
  Type* ptr = b.getPtrTy();
  AotRuntime rt(m, options.onednn);
  for (const AotEntry& e : entries) {
    llvm::Function* entry = Emitter(mb.ctx, m, *e.plan, false).emit(e.symbol + ".entry", false);
    // int32_t symbol(void* const* args, void* const* results, void* arena)
    auto* fn = llvm::Function::Create(llvm::FunctionType::get(b.getInt32Ty(), {ptr, ptr, ptr}, false),
                                      llvm::Function::ExternalLinkage, e.symbol, m);
    fn->addFnAttr(llvm::Attribute::NoUnwind);
    b.SetInsertPoint(llvm::BasicBlock::Create(mb.ctx, "entry", fn));
    auto* ctx_ty = llvm::StructType::get(mb.ctx, {ptr, ptr, ptr, ptr, ptr, ptr});
    Value* ctx = b.CreateAlloca(ctx_ty);
    Value* fields[] = {fn->getArg(2), llvm::ConstantPointerNull::get(b.getPtrTy()), rt.fallback, rt.parallel, rt.sgemm,
                       rt.matmul};
    for (unsigned i = 0; i < 6; ++i) b.CreateStore(fields[i], b.CreateStructGEP(ctx_ty, ctx, i));
    b.CreateRet(b.CreateCall(entry, {ctx, fn->getArg(0), fn->getArg(1)}));
  }
  if (!options.data_symbol.empty()) {
    auto* init = llvm::ConstantDataArray::get(
        mb.ctx, llvm::ArrayRef<uint8_t>(reinterpret_cast<const uint8_t*>(options.data.data()), options.data.size()));
    global(m, options.data_symbol, init, llvm::GlobalValue::ExternalLinkage);
  }
  return mb.finish("kiln_aot", nullptr);
}

Ref<NativeCode> load_object(const std::string& object, const std::string& symbol) {
  Jit& jit = Jit::get();
  std::lock_guard lock(jit.mu);
  auto code = make_ref<LoadedCode>();
  auto dylib = jit.lljit->createJITDylib("kiln" + std::to_string(jit.counter++));
  if (!dylib) fail<Internal>("cpu backend", "cannot create a JIT library: ", llvm::toString(dylib.takeError()));
  code->dylib = &*dylib;
  // libm (expf, tanhf, ...) and the C library resolve from this process
  auto gen =
      llvm::orc::DynamicLibrarySearchGenerator::GetForCurrentProcess(jit.lljit->getDataLayout().getGlobalPrefix());
  if (!gen) fail<Internal>("cpu backend", "cannot search process symbols: ", llvm::toString(gen.takeError()));
  code->dylib->addGenerator(std::move(*gen));
  // SLEEF's functions by address: no search of the process, and a reference that keeps libsleef
  // linked
  llvm::orc::SymbolMap sleef;
#define KILN_SLEEF_SYMBOL(name)                                                 \
  sleef[jit.lljit->mangleAndIntern("Sleef_" #name)] = {                         \
      llvm::orc::ExecutorAddr::fromPtr(reinterpret_cast<void*>(&Sleef_##name)), \
      llvm::JITSymbolFlags::Exported | llvm::JITSymbolFlags::Callable};
  KILN_SLEEF_FUNCTIONS(KILN_SLEEF_SYMBOL)
#undef KILN_SLEEF_SYMBOL
  if (auto e = code->dylib->define(llvm::orc::absoluteSymbols(std::move(sleef))))
    fail<Internal>("cpu backend", "cannot define the vector math symbols: ", llvm::toString(std::move(e)));
  auto buf = llvm::MemoryBuffer::getMemBufferCopy(llvm::StringRef(object.data(), object.size()), symbol);
  if (auto e = jit.lljit->addObjectFile(*code->dylib, std::move(buf)))
    fail<Internal>("cpu backend", "cannot load the object for '", symbol, "': ", llvm::toString(std::move(e)));
  auto sym = jit.lljit->lookup(*code->dylib, symbol);
  if (!sym) fail<Internal>("cpu backend", "cannot find '", symbol, "': ", llvm::toString(sym.takeError()));
  code->entry = sym->toPtr<KilnCpuEntry>();
  return code;
}

}  // namespace kiln::backend::cpu
