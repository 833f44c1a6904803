/* tensorc_cuda_emu.h: run kernel-only CUDA C on the CPU, unchanged, with g++ -std=c++17.
 *
 * Force-included (g++ -include) before the CUDA source, so the very text that nvcc compiles is
 * what runs here; that is the point: a kernel verified on the emulator is the kernel a GPU runs.
 *
 * Execution model. A launch runs its blocks on a few OS threads, each taking the next block from
 * an atomic counter and running it to completion before taking another. Within a block every CUDA
 * thread is a fiber with its own stack; an OS thread switches between the fibers of its block
 * only where CUDA threads synchronize (__syncthreads, warp shuffles, __syncwarp). So:
 *   - __shared__ is `static thread_local`: one instance per OS thread is one instance per block,
 *     since an OS thread runs one block at a time and its fibers never migrate; like real shared
 *     memory it starts with whatever the previous block left there.
 *   - fibers of a block run one at a time in thread order (or reversed, `order` 1), each until it
 *     blocks; a race-free kernel gives the same result in both orders, a kernel that reads another
 *     thread's shared-memory write without a barrier in between usually does not.
 *   - a barrier that not every thread of the block reaches (a thread exits, or threads wait at
 *     different __syncthreads) is reported as an error naming the kernel, block and threads,
 *     never a hang.
 *   - atomics between fibers of a block need nothing, but blocks run concurrently on different OS
 *     threads, so atomicAdd uses real atomic instructions.
 */
#ifndef TENSORC_CUDA_EMU_H
#define TENSORC_CUDA_EMU_H

#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <type_traits>
#include <utility>

#if !defined(__x86_64__) && !defined(TENSORC_EMU_UCONTEXT)
#define TENSORC_EMU_UCONTEXT  /* the hand-written fiber switch exists for x86-64 only */
#endif
#ifdef TENSORC_EMU_UCONTEXT
#include <ucontext.h>
#endif

/* ---- CUDA C keywords: __restrict__ is a g++ keyword already; #pragma unroll is ignored. ---- */
#define __global__
#define __device__
#define __host__
#define __forceinline__ inline __attribute__((always_inline))
#define __launch_bounds__(...)
#define __shared__ static thread_local

struct uint3 { unsigned int x, y, z; };
struct dim3 {
  unsigned int x, y, z;
  constexpr dim3(unsigned int x_ = 1, unsigned int y_ = 1, unsigned int z_ = 1)
      : x(x_), y(y_), z(z_) {}
};

/* The current fiber's coordinates: set by the scheduler before every switch into a fiber. */
inline thread_local uint3 threadIdx;
inline thread_local uint3 blockIdx;
inline thread_local dim3 blockDim;
inline thread_local dim3 gridDim;
constexpr int warpSize = 32;

/* ---- vector types ---- */
struct alignas(8) float2 { float x, y; };
struct alignas(16) float4 { float x, y, z, w; };
struct alignas(8) int2 { int x, y; };
struct alignas(16) int4 { int x, y, z, w; };
inline float2 make_float2(float x, float y) { return {x, y}; }
inline float4 make_float4(float x, float y, float z, float w) { return {x, y, z, w}; }
inline int2 make_int2(int x, int y) { return {x, y}; }
inline int4 make_int4(int x, int y, int z, int w) { return {x, y, z, w}; }

/* ---- math beyond <math.h> ---- */
inline float rsqrtf(float x) { return 1.0f / sqrtf(x); }
inline double rsqrt(double x) { return 1.0 / sqrt(x); }
inline float __expf(float x) { return expf(x); }
inline float __logf(float x) { return logf(x); }
inline float __powf(float x, float y) { return powf(x, y); }
inline float __sinf(float x) { return sinf(x); }
inline float __cosf(float x) { return cosf(x); }
inline float __fdividef(float x, float y) { return x / y; }
inline float __int_as_float(int i) { float f; memcpy(&f, &i, 4); return f; }
inline int __float_as_int(float f) { int i; memcpy(&i, &f, 4); return i; }
inline float __uint_as_float(unsigned int i) { float f; memcpy(&f, &i, 4); return f; }
inline unsigned int __float_as_uint(float f) { unsigned int i; memcpy(&i, &f, 4); return i; }

/* CUDA's min/max take any two arithmetic arguments; mixed types meet in their common type. */
template <class A, class B>
inline std::common_type_t<A, B> min(A a, B b) {
  return b < a ? std::common_type_t<A, B>(b) : std::common_type_t<A, B>(a);
}
template <class A, class B>
inline std::common_type_t<A, B> max(A a, B b) {
  return a < b ? std::common_type_t<A, B>(b) : std::common_type_t<A, B>(a);
}

/* ---- atomics: relaxed like CUDA's, and real atomic instructions: blocks run in parallel ---- */
inline int atomicAdd(int* p, int v) { return __atomic_fetch_add(p, v, __ATOMIC_RELAXED); }
inline unsigned int atomicAdd(unsigned int* p, unsigned int v) {
  return __atomic_fetch_add(p, v, __ATOMIC_RELAXED);
}
inline unsigned long long atomicAdd(unsigned long long* p, unsigned long long v) {
  return __atomic_fetch_add(p, v, __ATOMIC_RELAXED);
}
template <class F>
inline F tc_emu_atomic_add_float(F* p, F v) {
  F old, sum;
  __atomic_load(p, &old, __ATOMIC_RELAXED);
  do {
    sum = old + v;
  } while (!__atomic_compare_exchange(p, &old, &sum, true, __ATOMIC_RELAXED, __ATOMIC_RELAXED));
  return old;
}
inline float atomicAdd(float* p, float v) { return tc_emu_atomic_add_float(p, v); }
inline double atomicAdd(double* p, double v) { return tc_emu_atomic_add_float(p, v); }

namespace tc_emu {

/* ---- fiber switching ---- */
#ifdef TENSORC_EMU_UCONTEXT
/* Portable but slow: glibc's swapcontext makes a system call (the signal mask) per switch. */
struct Context { ucontext_t uc; };
inline void switch_to(Context& save, Context& to) { swapcontext(&save.uc, &to.uc); }
/* makecontext passes int arguments only, so each pointer travels as two 32-bit halves. */
inline void ucontext_entry(unsigned fn_hi, unsigned fn_lo, unsigned arg_hi, unsigned arg_lo) {
  auto fn = reinterpret_cast<void (*)(void*)>((uintptr_t(fn_hi) << 32) | fn_lo);
  fn(reinterpret_cast<void*>((uintptr_t(arg_hi) << 32) | arg_lo));
}
inline void start_context(Context& c, char* stack, size_t size, void (*fn)(void*), void* arg) {
  getcontext(&c.uc);
  c.uc.uc_stack.ss_sp = stack;
  c.uc.uc_stack.ss_size = size;
  c.uc.uc_link = nullptr;
  uintptr_t f = reinterpret_cast<uintptr_t>(fn), a = reinterpret_cast<uintptr_t>(arg);
  makecontext(&c.uc, reinterpret_cast<void (*)()>(ucontext_entry), 4, unsigned(f >> 32),
              unsigned(f), unsigned(a >> 32), unsigned(a));
}
#else
/* x86-64 System V: a switch saves the callee-saved registers on the old stack and pops them from
 * the new one, a few nanoseconds against swapcontext's system call. A new fiber's stack is laid
 * out as if it had switched away just before entering tc_emu_fiber_start, which calls fn(arg)
 * (held in r13 and r12) with the stack 16-byte aligned. */
extern "C" void tc_emu_switch(void** save_sp, void* to_sp);
extern "C" void tc_emu_fiber_start();
asm(R"(
  .text
  .globl tc_emu_switch
  .hidden tc_emu_switch
  .type tc_emu_switch, @function
  .p2align 4
tc_emu_switch:
  pushq %rbp
  pushq %rbx
  pushq %r12
  pushq %r13
  pushq %r14
  pushq %r15
  movq %rsp, (%rdi)
  movq %rsi, %rsp
  popq %r15
  popq %r14
  popq %r13
  popq %r12
  popq %rbx
  popq %rbp
  ret
  .size tc_emu_switch, .-tc_emu_switch
  .globl tc_emu_fiber_start
  .hidden tc_emu_fiber_start
  .type tc_emu_fiber_start, @function
  .p2align 4
tc_emu_fiber_start:
  movq %r12, %rdi
  callq *%r13
  ud2
  .size tc_emu_fiber_start, .-tc_emu_fiber_start
)");
struct Context { void* sp; };
inline void switch_to(Context& save, Context& to) { tc_emu_switch(&save.sp, to.sp); }
inline void start_context(Context& c, char* stack, size_t size, void (*fn)(void*), void* arg) {
  void** sp = reinterpret_cast<void**>(reinterpret_cast<uintptr_t>(stack + size) & ~uintptr_t(15));
  *--sp = reinterpret_cast<void*>(&tc_emu_fiber_start); /* popped by ret */
  *--sp = nullptr;                                      /* rbp */
  *--sp = nullptr;                                      /* rbx */
  *--sp = arg;                                          /* r12 */
  *--sp = reinterpret_cast<void*>(fn);                  /* r13 */
  *--sp = nullptr;                                      /* r14 */
  *--sp = nullptr;                                      /* r15 */
  c.sp = sp;
}
#endif

#ifndef TENSORC_EMU_STACK_BYTES
#define TENSORC_EMU_STACK_BYTES (256 * 1024)
#endif

/* ---- one launch, one block, one fiber ---- */
struct Launch {
  const char* name;
  unsigned grid[3], block[3];
  int order;                        /* 0: fibers in thread order; 1: reversed */
  void (*kernel)();                 /* the kernel, type-erased */
  void (*call)(void (*)(), void**); /* calls it with the argument pointers */
  void** args;
};

enum class Wait : uint8_t { Runnable, Barrier, Warp, Done };
enum class WarpOp : uint8_t { Sync, Down, Up, Xor, Idx };

struct Fiber {
  Context ctx;
  Wait wait;
  WarpOp op;
  int line;           /* source line of the barrier or warp operation it waits at */
  uint3 idx;
  int src;            /* warp lane a shuffle reads, -1 for its own value */
  uint64_t value;     /* what it offers a shuffle, and then what it gets */
};

constexpr int kErrorBytes = 1024;

/* Runs whole blocks on the calling OS thread; owns the fiber stacks, reused from block to block.
 * (Plain C allocation and pthreads rather than the standard library: every kernel module compiles
 * this header, and <thread>, <string> and <vector> would triple its compile time.) */
struct Worker {
  const Launch* L;
  unsigned n;                        /* CUDA threads per block */
  Fiber* fibers;
  unsigned* warp_arrived;
  char* stacks;
  size_t page, stack, slot, mapped;
  Context scheduler;
  Fiber* cur;
  char error[kErrorBytes];           /* empty while all is well */
};

inline thread_local Worker* worker;

/* Appends to the worker's error message, printf-style. */
__attribute__((format(printf, 2, 3))) inline void report(Worker& w, const char* fmt, ...) {
  size_t used = strlen(w.error);
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(w.error + used, sizeof w.error - used, fmt, ap);
  va_end(ap);
}

inline void report_block(Worker& w) {
  report(w, "kernel '%s' block (%u,%u,%u): ", w.L->name, blockIdx.x, blockIdx.y, blockIdx.z);
}

#define TC_EMU_XYZ(f) (f)->idx.x, (f)->idx.y, (f)->idx.z

inline bool worker_init(Worker& w, const Launch* L) {
  memset(&w, 0, sizeof w);
  w.L = L;
  w.n = L->block[0] * L->block[1] * L->block[2];
  w.page = size_t(sysconf(_SC_PAGESIZE));
  w.stack = (size_t(TENSORC_EMU_STACK_BYTES) + w.page - 1) / w.page * w.page;
  w.slot = w.stack + w.page;
  w.fibers = static_cast<Fiber*>(calloc(w.n, sizeof(Fiber)));
  w.warp_arrived = static_cast<unsigned*>(calloc((w.n + 31) / 32, sizeof(unsigned)));
  /* Each stack sits above an inaccessible guard page, so an overflow faults at once. */
  void* m = mmap(nullptr, w.slot * w.n, PROT_READ | PROT_WRITE,
                 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (!w.fibers || !w.warp_arrived || m == MAP_FAILED) {
    report(w, "kernel '%s': out of memory for the %u fibers of a block", L->name, w.n);
    return false;
  }
  w.stacks = static_cast<char*>(m);
  w.mapped = w.slot * w.n;
  for (unsigned i = 0; i < w.n; ++i) {
    mprotect(w.stacks + i * w.slot, w.page, PROT_NONE);
    unsigned bx = L->block[0], by = L->block[1];
    w.fibers[i].idx = {i % bx, i / bx % by, i / (bx * by)};
  }
  return true;
}

inline void worker_free(Worker& w) {
  if (w.mapped) munmap(w.stacks, w.mapped);
  free(w.fibers);
  free(w.warp_arrived);
}

inline void fiber_main(void* self) {
  Worker* w = static_cast<Worker*>(self);
  w->L->call(w->L->kernel, w->L->args);
  w->cur->wait = Wait::Done;
  switch_to(w->cur->ctx, w->scheduler);
}

/* Called on a fiber: park it in state `why`; the scheduler runs others until it resumes this one. */
inline void park(Wait why, int line) {
  Worker& w = *worker;
  w.cur->wait = why;
  w.cur->line = line;
  switch_to(w.cur->ctx, w.scheduler);
}

/* The last lane of warp `k` arrived: every lane gets the offer of the lane it asked for. */
inline bool release_warp(Worker& w, unsigned k) {
  unsigned first = k * 32, end = first + 32 < w.n ? first + 32 : w.n;
  Fiber* f = w.fibers;
  for (unsigned i = first + 1; i < end; ++i) {
    if (f[i].op != f[first].op) {
      report_block(w);
      report(w, "threads (%u,%u,%u) and (%u,%u,%u) of one warp wait at different warp operations "
             "(lines %d and %d)", TC_EMU_XYZ(f + first), TC_EMU_XYZ(f + i), f[first].line,
             f[i].line);
      return false;
    }
  }
  uint64_t offered[32];
  for (unsigned i = first; i < end; ++i) offered[i - first] = f[i].value;
  for (unsigned i = first; i < end; ++i) {
    if (f[i].src >= 0 && unsigned(f[i].src) < end - first) f[i].value = offered[f[i].src];
    f[i].wait = Wait::Runnable;
  }
  w.warp_arrived[k] = 0;
  return true;
}

/* Nothing can run: either the block is finished, or every fiber waits at the same __syncthreads
 * (release them all), or the block can never finish (an error). */
inline bool resolve(Worker& w, bool* finished) {
  const Fiber *done = nullptr, *barrier = nullptr, *warp = nullptr;
  for (const Fiber* f = w.fibers; f != w.fibers + w.n; ++f) {
    if (f->wait == Wait::Done && !done) done = f;
    if (f->wait == Wait::Warp && !warp) warp = f;
    if (f->wait != Wait::Barrier) continue;
    if (barrier && f->line != barrier->line) {
      report_block(w);
      report(w, "threads (%u,%u,%u) and (%u,%u,%u) wait at different __syncthreads (lines %d and "
             "%d): a barrier must be reached by every thread of the block", TC_EMU_XYZ(barrier),
             TC_EMU_XYZ(f), barrier->line, f->line);
      return false;
    }
    if (!barrier) barrier = f;
  }
  *finished = !warp && !barrier;
  if (*finished) return true;
  if (warp) {
    unsigned first = unsigned(warp - w.fibers) / 32 * 32;
    const Fiber* missing = w.fibers + first;
    while (missing->wait == Wait::Warp) ++missing; /* the warp is incomplete, so one lane is not */
    report_block(w);
    report(w, "thread (%u,%u,%u) waits at a warp operation (line %d) that thread (%u,%u,%u) of its "
           "warp never reaches (it ", TC_EMU_XYZ(warp), warp->line, TC_EMU_XYZ(missing));
    if (missing->wait == Wait::Done) report(w, "exited)");
    else report(w, "waits at __syncthreads, line %d)", missing->line);
    return false;
  }
  if (done) {
    report_block(w);
    report(w, "thread (%u,%u,%u) exited without reaching the __syncthreads (line %d) where thread "
           "(%u,%u,%u) waits: a barrier must be reached by every thread of the block",
           TC_EMU_XYZ(done), barrier->line, TC_EMU_XYZ(barrier));
    return false;
  }
  for (unsigned i = 0; i < w.n; ++i) w.fibers[i].wait = Wait::Runnable;
  return true;
}

/* Runs every fiber until it blocks, in thread order or reversed, until none can run. */
inline bool run_block(Worker& w, size_t linear) {
  const Launch& L = *w.L;
  blockIdx = {unsigned(linear % L.grid[0]), unsigned(linear / L.grid[0] % L.grid[1]),
              unsigned(linear / (size_t(L.grid[0]) * L.grid[1]))};
  for (unsigned i = 0; i < w.n; ++i) {
    w.fibers[i].wait = Wait::Runnable;
    start_context(w.fibers[i].ctx, w.stacks + i * w.slot + w.page, w.stack, fiber_main, &w);
  }
  for (;;) {
    bool ran = false;
    for (unsigned k = 0; k < w.n; ++k) {
      Fiber& f = w.fibers[L.order ? w.n - 1 - k : k];
      if (f.wait != Wait::Runnable) continue;
      ran = true;
      w.cur = &f;
      threadIdx = f.idx;
      switch_to(w.scheduler, f.ctx);
      if (f.wait == Wait::Warp) {
        unsigned warp = unsigned(&f - w.fibers) / 32;
        unsigned lanes = w.n - warp * 32 < 32 ? w.n - warp * 32 : 32;
        if (++w.warp_arrived[warp] == lanes && !release_warp(w, warp)) return false;
      }
    }
    bool finished = false;
    if (!ran && (!resolve(w, &finished) || finished)) return finished;
  }
}

inline unsigned lane() { return unsigned(worker->cur - worker->fibers) % 32; }

inline void syncthreads(int line) { park(Wait::Barrier, line); }

/* A warp operation: offer `v`, wait for every lane of the warp, get lane `src`'s offer. */
template <class T>
inline T warp_exchange(WarpOp op, int line, T v, int src) {
  static_assert(sizeof(T) <= 8, "warp shuffles exchange values of at most 8 bytes");
  Fiber* f = worker->cur;
  f->op = op;
  f->src = src;
  f->value = 0;
  memcpy(&f->value, &v, sizeof(T));
  park(Wait::Warp, line);
  T r;
  memcpy(&r, &f->value, sizeof(T));
  return r;
}

/* Lanes form segments of `width`; a source outside the caller's segment yields its own value. */
template <class T>
inline T shfl_down(int line, unsigned, T v, unsigned delta, int width = 32) {
  int l = int(lane()), end = (l / width + 1) * width, src = l + int(delta);
  return warp_exchange(WarpOp::Down, line, v, src < end ? src : -1);
}
template <class T>
inline T shfl_up(int line, unsigned, T v, unsigned delta, int width = 32) {
  int l = int(lane()), begin = l / width * width, src = l - int(delta);
  return warp_exchange(WarpOp::Up, line, v, src >= begin ? src : -1);
}
template <class T>
inline T shfl_xor(int line, unsigned, T v, int mask, int width = 32) {
  int l = int(lane()), begin = l / width * width, src = l ^ mask;
  return warp_exchange(WarpOp::Xor, line, v, src >= begin && src < begin + width ? src : -1);
}
template <class T>
inline T shfl_idx(int line, unsigned, T v, int src_lane, int width = 32) {
  int l = int(lane());
  int src = l / width * width + (src_lane % width + width) % width;
  return warp_exchange(WarpOp::Idx, line, v, src);
}
inline void syncwarp(int line) { warp_exchange(WarpOp::Sync, line, 0, -1); }

/* What the OS threads of one launch share: the next block to take, and the first error. */
struct Pool {
  const Launch* L;
  size_t blocks;
  size_t next;
  int failed;
  pthread_mutex_t lock;
  char message[kErrorBytes];
};

inline void* work(void* arg) {
  Pool& p = *static_cast<Pool*>(arg);
  Worker w;
  bool ok = worker_init(w, p.L);
  worker = &w;
  blockDim = dim3(p.L->block[0], p.L->block[1], p.L->block[2]);
  gridDim = dim3(p.L->grid[0], p.L->grid[1], p.L->grid[2]);
  while (ok && !__atomic_load_n(&p.failed, __ATOMIC_RELAXED)) {
    size_t i = __atomic_fetch_add(&p.next, 1, __ATOMIC_RELAXED);
    if (i >= p.blocks) break;
    ok = run_block(w, i);
  }
  worker = nullptr;
  if (!ok) {
    pthread_mutex_lock(&p.lock);
    if (!p.failed) snprintf(p.message, sizeof p.message, "%s", w.error);
    __atomic_store_n(&p.failed, 1, __ATOMIC_RELAXED);
    pthread_mutex_unlock(&p.lock);
  }
  worker_free(w);
  return nullptr;
}

inline int run(const Launch& L, int num_threads, char* err, int errlen) {
  const unsigned *b = L.block, *g = L.grid;
  if (!b[0] || !b[1] || !b[2] || !g[0] || !g[1] || !g[2]) {
    snprintf(err, size_t(errlen), "kernel '%s': grid and block dimensions must be positive",
             L.name);
    return 1;
  }
  if (size_t(b[0]) * b[1] * b[2] > 1024 || b[2] > 64) {
    snprintf(err, size_t(errlen), "kernel '%s': block (%u,%u,%u) exceeds CUDA's limits (1024 "
             "threads, z at most 64)", L.name, b[0], b[1], b[2]);
    return 1;
  }
  if (g[0] > 2147483647u || g[1] > 65535 || g[2] > 65535) {
    snprintf(err, size_t(errlen), "kernel '%s': grid (%u,%u,%u) exceeds CUDA's limits (x at most "
             "2^31-1, y and z at most 65535)", L.name, g[0], g[1], g[2]);
    return 1;
  }
  Pool p;
  p.L = &L;
  p.blocks = size_t(g[0]) * g[1] * g[2];
  p.next = 0;
  p.failed = 0;
  p.message[0] = 0;
  pthread_mutex_init(&p.lock, nullptr);
  size_t threads = num_threads < 1 ? 1 : size_t(num_threads);
  if (threads > p.blocks) threads = p.blocks;
  pthread_t* pool = static_cast<pthread_t*>(calloc(threads, sizeof(pthread_t)));
  size_t started = 0;
  /* If fewer OS threads start than asked for, those that did (and this one) share the blocks. */
  while (pool && started + 1 < threads && pthread_create(&pool[started], nullptr, work, &p) == 0)
    ++started;
  work(&p);
  for (size_t t = 0; t < started; ++t) pthread_join(pool[t], nullptr);
  free(pool);
  pthread_mutex_destroy(&p.lock);
  if (!p.failed) return 0;
  snprintf(err, size_t(errlen), "%s", p.message);
  return 1;
}

template <class... P, size_t... I>
inline void call_with(void (*k)(P...), void** a, std::index_sequence<I...>) {
  k(static_cast<P>(a[I])...);
}

/* The generated launcher of each kernel calls this with the kernel itself, so the parameter
 * types come from the source and the launcher needs only the kernel's name. */
template <class... P>
inline int launch(void (*kernel)(P...), const char* name, const unsigned* grid,
                  const unsigned* block, void** args, int nargs, int order, int num_threads,
                  char* err, int errlen) {
  static_assert((std::is_pointer_v<P> && ...), "cuda-emu: kernel parameters must be pointers");
  if (nargs != int(sizeof...(P))) {
    snprintf(err, size_t(errlen), "kernel '%s' takes %d arguments, the launch passes %d", name,
             int(sizeof...(P)), nargs);
    return 1;
  }
  Launch L{name, {grid[0], grid[1], grid[2]}, {block[0], block[1], block[2]}, order,
           reinterpret_cast<void (*)()>(kernel),
           [](void (*k)(), void** a) {
             call_with(reinterpret_cast<void (*)(P...)>(k), a, std::index_sequence_for<P...>{});
           },
           args};
  return run(L, num_threads, err, errlen);
}

}  // namespace tc_emu

/* The synchronizing intrinsics record their source line, to name it in error reports. */
#define __syncthreads() tc_emu::syncthreads(__LINE__)
#define __syncwarp(...) tc_emu::syncwarp(__LINE__)
#define __shfl_sync(...) tc_emu::shfl_idx(__LINE__, __VA_ARGS__)
#define __shfl_up_sync(...) tc_emu::shfl_up(__LINE__, __VA_ARGS__)
#define __shfl_down_sync(...) tc_emu::shfl_down(__LINE__, __VA_ARGS__)
#define __shfl_xor_sync(...) tc_emu::shfl_xor(__LINE__, __VA_ARGS__)

#endif /* TENSORC_CUDA_EMU_H */
