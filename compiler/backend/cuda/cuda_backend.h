// The CUDA backend: a traced function called on a GPU runs as one generated CUDA C program per
// concrete function and input shape, built from the same Plan the CPU backend lowers. This
// header holds the program generator (no GPU or CUDA headers needed: tests compile its output
// with NVRTC anywhere); make_cuda in executable.h builds the executable.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "compiler/backend/cpu/plan.h"

namespace kiln::backend::cuda {

/// How the CUDA backend lowers a graph: reductions stay steps of their own (a thread block per
/// output element, not accumulated in place by a fused loop), every matmul is a step (cuBLAS
/// or the eager integer kernel) without epilogues. A plan that is not a block program is
/// lowered again with Epilogues::Affine, kept when cuBLASLt takes each fused epilogue.
cpu::LowerOptions lower_options();

/// The steps of `plan` that are kernels of its program, in program order: every loop and
/// reduce step, those of cond branches and while bodies included (depth first). Kernel i is
/// named `<prefix>_k<i>`.
std::vector<const cpu::Step*> kernel_steps(const cpu::Plan& plan);

/// The buffers a loop step's kernel takes as its parameters, in order: each buffer the loop
/// loads or stores, once, by first use (loads, then stores).
std::vector<int> loop_kernel_buffers(const cpu::LoopStep& loop);

/// Whether a loop step also gets a 4-wide kernel `<name>_v4` (same parameters, n / 4 threads
/// worth of grid-stride work, 16-byte loads and stores): every buffer it touches has 4-byte
/// elements, its innermost dim is a multiple of 4, and each operand is contiguous along that
/// dim (at a multiple of 4 elements) or broadcast along it. The host launches it when every
/// buffer's address is a multiple of 16 bytes.
bool loop_vectorizable(const cpu::Plan& plan, const cpu::LoopStep& loop);

/// The kernels of `plan` without the prelude: per loop step a grid-stride kernel over the
/// loop's elements with its dims and strides as constants (and its 4-wide twin when
/// loop_vectorizable), or, for a loop with reductions over its trailing dims
/// (cpu::row_reduction), a kernel of a thread block per row; per reduce step the eager
/// reduction kernel (ops/kernels/cuda/source.h). Throws Internal for what has no kernel here
/// (a reduction fused into a loop over other dims: lower with lower_options(), or with
/// row_reductions_only).
std::string program_kernels(const cpu::Plan& plan, const std::string& prefix);

/// The whole CUDA C program of `plan`: gpu_prelude() followed by program_kernels(plan, "kiln").
std::string cuda_program_source(const cpu::Plan& plan);

/// A plan small enough to run as one kernel of one thread block: every step a loop, reduction
/// or matmul of at most 16384 work items (and 2^20 multiply-adds), every buffer at most 16384
/// elements, the steps separated by __syncthreads(). One launch a call instead of one per step
/// (power(x, 100) on 10x10 is 99 matmuls): the cost of a small graph is then one launch.
struct BlockProgram {
  bool eligible = false;
  bool shared_arena = false;  // the intermediates live in shared memory (arena <= 40 KiB)
  unsigned threads = 0;       // the block's size: the widest step's items, a multiple of 32
  std::vector<int> params;    // the kernel's buffer parameters (args, results, constants)
};
BlockProgram block_program(const cpu::Plan& plan);

/// The kernel `<name>` of a single-block program, without the prelude: parameters are the
/// buffers of `bp.params` as `unsigned char*`, then the arena's address when the arena is not
/// in shared memory. Throws Internal when `bp` is not eligible.
std::string block_program_source(const cpu::Plan& plan, const BlockProgram& bp, const std::string& name);

/// How many programs the CUDA backend has compiled with NVRTC in this process (for tests and
/// logs: a function called again with the same shapes reuses its program).
uint64_t programs_compiled();

/// Of those, the programs compiled as single-block kernels (BlockProgram); the CUDA graphs
/// captured, and the calls that replayed one (process-wide counters, for tests and logs).
uint64_t block_programs();
uint64_t graphs_captured();
uint64_t graph_replays();

/// Per-step GPU times of compiled functions, for `kiln bench --gpu` and for finding where a
/// program's time goes (no profiler needed). While on, every call of a CUDA program queues the
/// program's single-block kernel or its top-level steps one by one (no CUDA graph replay)
/// between CUDA events, waits for them, and adds each step's GPU time to a process-wide table.
/// Off by default; KILN_CUDA_PROFILE=1 turns it on from the start.
void set_profiling(bool on);

/// The table's `top` largest steps as text (share of the profiled GPU time, microseconds per
/// call, function and step as cpu::describe names it), then empties it; "" when it is empty.
std::string profile_report(size_t top = 12);

}  // namespace kiln::backend::cuda
