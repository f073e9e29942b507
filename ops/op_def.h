// OpId (from op_list.def) and OpDef: everything about a primitive in one place — traits,
// attribute schema, shape/dtype inference and the eager kernel per device (DESIGN.md §4).
#pragma once

#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

#include "ops/attrs.h"
#include "runtime/small_vector.h"
#include "runtime/tensor.h"

namespace kiln::ops {

enum class OpId : uint16_t {
#define KILN_OP(Id, name) Id,
#include "ops/op_list.def"
#undef KILN_OP
};

inline constexpr int kNumOps = 0
#define KILN_OP(Id, name) +1
#include "ops/op_list.def"
#undef KILN_OP
    ;

/// Op traits, combined as a bit mask.
enum OpTrait : uint32_t {
  kElementwise = 1u << 0,     // output[i] depends only on input[i] (after broadcasting)
  kFusible = 1u << 1,         // can join a fused loop
  kStateful = 1u << 2,        // has effects or varies between calls (random, I/O): never folded
  kDifferentiable = 1u << 3,  // has a gradient rule (for inexact inputs)
  kCommutative = 1u << 4,
  kView = 1u << 5,      // output may share the input's storage (reshape)
  kVariadic = 1u << 6,  // takes any number of inputs (concat)
  kStrings = 1u << 7,   // the kernel accepts string tensors itself (the kiln::strings ops)
  // moves elements without reading them: string inputs run through the numeric kernel as int64
  // element ids, and the outputs pick their strings by id (gather, concat, strided_slice...)
  kStringsByIndex = 1u << 8,
  kIO = 1u << 9,  // an I/O effect (print, assert): ordered by the I/O token, never pruned
};

/// The dtype and shape of an op's output.
struct TensorType {
  DType dtype = DType::Float32;
  Shape shape;
  friend bool operator==(const TensorType&, const TensorType&) = default;
};

using TensorList = SmallVector<Tensor, 2>;
using TypeList = SmallVector<TensorType, 2>;

struct OpDef;

/// What a kernel sees: the inputs, the inferred output types, and the outputs to fill.
struct KernelContext {
  const OpDef& def;
  const Attrs& attrs;
  std::span<const Tensor> inputs;
  const TypeList& types;
  TensorList& outputs;

  /// Output `i`, allocated on first use from the inferred type.
  Tensor& output(size_t i) {
    if (!outputs[i].defined()) outputs[i] = Tensor::empty(types[i].shape, types[i].dtype, device());
    return outputs[i];
  }
  /// Sets output `i` to an existing tensor (view ops).
  void set_output(size_t i, Tensor t) { outputs[i] = std::move(t); }
  Device device() const { return inputs.empty() ? current_device() : inputs[0].device(); }
};

/// Infers output types from inputs and attributes; throws InvalidArgument for bad input.
using InferFn = TypeList (*)(const OpDef& def, const Attrs& attrs, std::span<const Tensor> inputs);
/// Computes outputs eagerly on one device.
using KernelFn = void (*)(KernelContext& ctx);

/// One attribute in an op's schema.
struct AttrSpec {
  std::string_view name;
  AttrKind kind;
  bool required = true;
};

/// Everything about a primitive.
struct OpDef {
  OpId id{};
  std::string_view name;
  uint32_t traits = 0;
  int num_inputs = 1;  // -1: variadic
  std::vector<AttrSpec> attrs;
  InferFn infer = nullptr;
  KernelFn cpu_kernel = nullptr;
  /// The GPU kernel (ops/kernels/cuda), null where the op has none: dispatch then runs
  /// cpu_kernel on host copies.
  KernelFn cuda_kernel = nullptr;

  bool has(OpTrait t) const { return (traits & t) != 0; }
};

/// The registry, built from op_list.def on first use.
const OpDef& op_def(OpId id);
/// Looks an op up by its IR name; throws NotFound.
const OpDef& op_def(std::string_view name);
/// All ops, in op_list.def order.
std::span<const OpDef> all_ops();

// One definition function per op, each in ops/defs/*.cpp.
#define KILN_OP(Id, name) OpDef define_##Id();
#include "ops/op_list.def"
#undef KILN_OP

}  // namespace kiln::ops
