// The CUDA C dialect Kiln's generated kernels use, for the host: the CUDA emulator
// (tests/cuda_emulator/emulator.cpp) compiles each NVRTC program with the host compiler after
// this header and runs a launch's grid block by block on one thread, each GPU thread a fiber
// that yields at __syncthreads(). Test infrastructure only: it checks the launch logic and the
// generated code's arithmetic, not the GPU's timing, memory model or instruction set.
#pragma once

#include <math.h>
#include <stdint.h>
#include <string.h>
#include <ucontext.h>

#include <vector>

#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __noinline__
#define __shared__ static
#define __launch_bounds__(...)
#define __align__(n) __attribute__((aligned(n)))

struct dim3 {
  unsigned x = 1, y = 1, z = 1;
};
static dim3 threadIdx, blockIdx, blockDim, gridDim;

// float and integer bit casts, and the explicitly rounded operations (the host rounds to
// nearest by default)
inline float __int_as_float(int x) {
  float f;
  memcpy(&f, &x, 4);
  return f;
}
inline int __float_as_int(float f) {
  int x;
  memcpy(&x, &f, 4);
  return x;
}
inline unsigned __float_as_uint(float f) { return unsigned(__float_as_int(f)); }
inline float __uint_as_float(unsigned x) { return __int_as_float(int(x)); }
inline double __longlong_as_double(long long x) {
  double d;
  memcpy(&d, &x, 8);
  return d;
}
inline long long __double_as_longlong(double d) {
  long long x;
  memcpy(&x, &d, 8);
  return x;
}
inline float __fadd_rn(float a, float b) { return a + b; }
inline float __fsub_rn(float a, float b) { return a - b; }
inline float __fmul_rn(float a, float b) { return a * b; }
inline float __fdiv_rn(float a, float b) { return a / b; }
inline double __dadd_rn(double a, double b) { return a + b; }
inline double __dmul_rn(double a, double b) { return a * b; }
inline unsigned __umulhi(unsigned a, unsigned b) { return unsigned((unsigned long long)a * b >> 32); }
inline unsigned long long __umul64hi(unsigned long long a, unsigned long long b) {
  return (unsigned long long)((unsigned __int128)a * b >> 64);
}
template <class T>
inline T min(T a, T b) {
  return b < a ? b : a;
}
template <class T>
inline T max(T a, T b) {
  return a < b ? b : a;
}

// One host thread runs the whole grid, so atomics are plain read-modify-writes.
template <class T>
inline T atomicAdd(T* p, T v) {
  T old = *p;
  *p = old + v;
  return old;
}
template <class T>
inline T atomicMax(T* p, T v) {
  T old = *p;
  *p = old < v ? v : old;
  return old;
}
template <class T>
inline T atomicMin(T* p, T v) {
  T old = *p;
  *p = v < old ? v : old;
  return old;
}
template <class T>
inline T atomicOr(T* p, T v) {
  T old = *p;
  *p = old | v;
  return old;
}
template <class T>
inline T atomicAnd(T* p, T v) {
  T old = *p;
  *p = old & v;
  return old;
}
template <class T>
inline T atomicExch(T* p, T v) {
  T old = *p;
  *p = v;
  return old;
}
template <class T>
inline T atomicCAS(T* p, T expected, T v) {
  T old = *p;
  if (old == expected) *p = v;
  return old;
}
inline void __threadfence() {}

namespace kiln_emu {

// The threads of one block as fibers: each runs until it reaches __syncthreads() or returns,
// then the next one runs; a round ends when every thread has done so.
struct Block {
  ucontext_t scheduler;
  std::vector<ucontext_t> threads;
  std::vector<char> done;
  size_t current = 0;
  void (*body)(void*) = nullptr;
  void* arg = nullptr;
};
static Block* g_block = nullptr;

inline void set_thread(size_t t) {
  threadIdx.x = unsigned(t % blockDim.x);
  threadIdx.y = unsigned(t / blockDim.x % blockDim.y);
  threadIdx.z = unsigned(t / (size_t(blockDim.x) * blockDim.y));
}

inline void fiber_main() {
  g_block->body(g_block->arg);
  g_block->done[g_block->current] = 1;
}

inline void run_block_fibers(void (*body)(void*), void* arg, size_t nthreads) {
  constexpr size_t kStack = 128 * 1024;
  static std::vector<char> stacks;
  if (stacks.size() < nthreads * kStack) stacks.resize(nthreads * kStack);
  Block b;
  b.threads.resize(nthreads);
  b.done.assign(nthreads, 0);
  b.body = body;
  b.arg = arg;
  g_block = &b;
  for (size_t t = 0; t < nthreads; ++t) {
    getcontext(&b.threads[t]);
    b.threads[t].uc_stack.ss_sp = stacks.data() + t * kStack;
    b.threads[t].uc_stack.ss_size = kStack;
    b.threads[t].uc_link = &b.scheduler;
    makecontext(&b.threads[t], fiber_main, 0);
  }
  for (size_t left = nthreads; left > 0;) {
    left = 0;
    for (size_t t = 0; t < nthreads; ++t) {
      if (b.done[t]) continue;
      b.current = t;
      set_thread(t);
      swapcontext(&b.scheduler, &b.threads[t]);
      if (!b.done[t]) ++left;
    }
  }
  g_block = nullptr;
}

// Runs `body` for every thread of the grid. Programs without __syncthreads() run their threads
// one after another without fibers.
inline void run_grid(const unsigned* grid, const unsigned* block, bool syncs, void (*body)(void*), void* arg) {
  gridDim = {grid[0], grid[1], grid[2]};
  blockDim = {block[0], block[1], block[2]};
  const size_t nthreads = size_t(block[0]) * block[1] * block[2];
  for (unsigned bz = 0; bz < grid[2]; ++bz)
    for (unsigned by = 0; by < grid[1]; ++by)
      for (unsigned bx = 0; bx < grid[0]; ++bx) {
        blockIdx = {bx, by, bz};
        if (syncs) {
          run_block_fibers(body, arg, nthreads);
        } else {
          for (size_t t = 0; t < nthreads; ++t) {
            set_thread(t);
            body(arg);
          }
        }
      }
}

}  // namespace kiln_emu

inline void __syncthreads() {
  kiln_emu::Block* b = kiln_emu::g_block;
  if (!b) return;  // a program that syncs only here runs without fibers: nothing to wait for
  swapcontext(&b->threads[b->current], &b->scheduler);
}
