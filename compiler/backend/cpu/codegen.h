// LLVM code generation for CPU plans, behind an interface free of LLVM types (only
// codegen.cpp includes LLVM headers).
#pragma once

#include <span>
#include <string>

#include "compiler/backend/cpu/abi.h"
#include "compiler/backend/cpu/plan.h"

namespace kiln::backend::cpu {

/// Machine code loaded into this process; `entry` stays valid while the object lives.
class NativeCode : public RefCounted {
 public:
  KilnCpuEntry entry = nullptr;
};

/// Times spent in each phase of code generation, in microseconds.
struct CodegenTimes {
  double ir_us = 0, optimize_us = 0, emit_us = 0, load_us = 0;
};

/// Compiles `plan` for the host CPU (AVX-512 where present, 512-bit vectors preferred) into a
/// relocatable object whose entry function, named `symbol`, follows abi.h. Constants are
/// embedded; the code references no absolute address.
std::string emit_object(const Plan& plan, const std::string& symbol, CodegenTimes* times = nullptr);

/// The module emit_object would compile for `plan`, after optimization, as LLVM IR text (for
/// tests and debugging: e.g. which loops call vector math).
std::string optimized_ir(const Plan& plan, const std::string& symbol);

/// One entry function of an ahead-of-time object.
struct AotEntry {
  const Plan* plan = nullptr;
  /// The exported C function: `int32_t symbol(void* const* args, void* const* results, void*
  /// arena)`; it runs the plan with a context of the object's own (serial parallel-for, no
  /// fallbacks, sgemm from oneDNN or none).
  std::string symbol;
};

/// What an ahead-of-time object carries besides its entries.
struct AotObjectOptions {
  /// Call oneDNN's dnnl_sgemm for plans with library matmuls (the object then needs libdnnl).
  bool onednn = false;
  /// A read-only data symbol (64-byte aligned) holding `data`, e.g. the initial variable values.
  std::string data_symbol;
  std::string data;
};

/// Compiles several plans into one object with exported C entry points that need no Kiln
/// runtime (only the C library, libm and libsleef, and libdnnl with `onednn`).
std::string emit_aot_object(std::span<const AotEntry> entries, const AotObjectOptions& options);

/// Links an object from emit_object into the process and resolves `symbol`. Throws Internal
/// when the object does not load.
Ref<NativeCode> load_object(const std::string& object, const std::string& symbol);

/// The target the code is generated for: triple, CPU, features and LLVM version (part of the
/// on-disk cache key).
const std::string& target_id();

}  // namespace kiln::backend::cpu
