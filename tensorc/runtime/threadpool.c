/* tensorc's thread pool: what generated parallel loops run on.
 *
 * Compiled once per compiler into the build cache (tensorc/codegen/llvm_compile.py) and linked
 * into every tensorc shared object, so an exported library needs nothing but libc. Everything
 * here has hidden visibility: each tensorc library in a process has its own pool (two libraries
 * used at once therefore have two sets of workers; they never clash).
 *
 * Why not libgomp's fork-join: GOMP_parallel gives every thread a fixed share of the loop and the
 * caller waits for all of them. On a loaded machine one worker is often descheduled for a whole
 * timeslice, so a 0.1 ms loop takes several ms. Here the loop is cut into a few chunks per thread
 * that whoever is awake claims with atomic counters -- the calling thread included, each thread
 * starting with its own contiguous share -- and the caller waits only for chunks somebody
 * actually claimed. A worker that wakes up after every chunk is taken finds nothing to do and
 * nobody waits for it.
 *
 *   int32_t tensorc_parallel_for(body, closure, n, grain, nthreads)
 *
 * runs body(begin, end, closure) over consecutive chunks covering [0, n), each at least `grain`
 * iterations (bar the last), on up to `nthreads` threads (<= 0: TENSORC_NUM_THREADS from the
 * environment, else the cores this process may run on), and returns 0 or the first nonzero value
 * a body returned (every chunk still runs). One chunk, or one thread, is a plain call: no thread
 * is ever created then.
 *
 * Nesting and concurrency: one job at a time per pool. A call made while the pool is busy -- from
 * inside a body (nested parallel loop) or from another application thread -- runs its whole loop
 * in the calling thread. Nothing ever waits for the pool to become free, so nothing deadlocks.
 *
 * Workers are created on first need (nthreads - 1 of them at most), spin for SPIN_NS after a job
 * in case another follows (back-to-back kernels of a model, serial code between a kernel's
 * parallel loops, a caller's loop in Python), then sleep on a futex. Waking a sleeping worker
 * can take a millisecond on a virtual machine, where an idle vCPU is descheduled: with 30 us
 * of spin, a 512^3 matmul called in a loop ran as slowly on 2 threads as on 1 (3.4 vs 3.1 ms),
 * with 100 us in 1.9-2.7 ms (benchmarks/bench_threads.py's process). They live
 * until the library is unloaded (a destructor stops and joins them) or the process ends; a forked
 * child starts with no workers and creates its own.
 */
#define _GNU_SOURCE
#include <limits.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>
#ifdef __linux__
#include <linux/futex.h>
#include <sys/syscall.h>
#endif

#define HIDDEN __attribute__((visibility("hidden")))
#define MAX_THREADS 256        /* caller + 255 workers; more requested threads are clamped */
#define CHUNKS_PER_THREAD 4    /* a late or descheduled thread leaves its work to the others */
#define SPIN_NS 100000         /* how long an idle thread spins before it sleeps (100 us) */
#define CLOSED 0xFFFFFFFFu     /* claim index of a job being set up: nothing to claim */

typedef int32_t (*body_fn)(int64_t begin, int64_t end, void *closure);

/* ---- sleeping and waking: a futex on Linux, a condition variable elsewhere ---------------- */

#ifdef __linux__
static void wait_while_equal(atomic_uint *word, unsigned value) {
    /* Returns at once if *word != value; may also return spuriously: callers loop. */
    syscall(SYS_futex, (unsigned *)word, FUTEX_WAIT_PRIVATE, value, NULL, NULL, 0);
}
static void wake_all(atomic_uint *word) {
    syscall(SYS_futex, (unsigned *)word, FUTEX_WAKE_PRIVATE, INT_MAX, NULL, NULL, 0);
}
#else
static pthread_mutex_t sleep_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t sleep_cond = PTHREAD_COND_INITIALIZER;
static void wait_while_equal(atomic_uint *word, unsigned value) {
    pthread_mutex_lock(&sleep_lock);
    while (atomic_load(word) == value) pthread_cond_wait(&sleep_cond, &sleep_lock);
    pthread_mutex_unlock(&sleep_lock);
}
static void wake_all(atomic_uint *word) {
    (void)word;  /* the waker changed *word before calling, so a waiter re-checking sees it */
    pthread_mutex_lock(&sleep_lock);
    pthread_cond_broadcast(&sleep_cond);
    pthread_mutex_unlock(&sleep_lock);
}
#endif

static inline void cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

static int64_t now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (int64_t)t.tv_sec * 1000000000 + t.tv_nsec;
}

/* ---- the pool --------------------------------------------------------------------------------
 *
 * A job's chunks are split into one contiguous shard per taking-part thread: the caller's is
 * shard 0, worker k's is shard k + 1. Each thread first claims the chunks of its own shard, in
 * order, then those left in the others. When everyone is awake this is a static split (each
 * thread works on its own contiguous part of the arrays, as the previous loop over them likely
 * did, and no two threads contend for one counter); when someone is late, the others take its
 * chunks.
 *
 * A shard's `claim` word packs the job's generation (high 32 bits) with the index of the shard's
 * next unclaimed chunk (low 32 bits). A worker claims chunk i of job g by compare-and-swapping
 * (g, i) -> (g, i + 1), so a worker still holding an older generation can never take a chunk of a
 * newer job: its CAS fails.
 *
 * The job's parameters are atomics read with relaxed loads, because a late worker may read them
 * while the next job is being written; it then never uses them, by this argument: the owner
 * stores (g, CLOSED) into every shard ever used, then a release fence, then the new parameters,
 * then opens the new job's shards with release stores. A worker loads a shard's claim word (an
 * acquire: it sees at least the parameters of that word's job), then the parameters, then an
 * acquire fence, then CASes the shard from the (g', i) it loaded. If any parameter it loaded came
 * from a later job g, the fences synchronize, so job g's (g, CLOSED) store into that shard happens
 * before the CAS, which therefore cannot find the older (g', i) and fails. (The shard is among
 * those closed: the worker only visits shards below the shard count it read, and the set of
 * shards ever used only grows.) A successful CAS thus proves the parameters read belong to the
 * job whose chunk was claimed.
 *
 * The generation is 32 bits: a worker would have to sleep between a load and its CAS through
 * exactly 2^32 jobs to be fooled.
 */
static struct {
    _Alignas(64) _Atomic uint64_t claim;  /* (generation << 32) | next chunk of this shard */
} shards[MAX_THREADS];

static struct {
    atomic_int busy;          /* try-lock: held by the thread running a job (the owner) */
    unsigned generation;      /* last job's generation; only the owner touches it */
    unsigned shards_used;     /* most shards any job had; only the owner touches it */
    atomic_uint wake;         /* futex word: generation of the last published job */
    atomic_uint sleepers;     /* workers sleeping (or about to) on `wake` */
    atomic_int stop;          /* set by the destructor: workers exit */
    /* parameters of the current job */
    _Atomic(body_fn) body;
    _Atomic(void *) closure;
    _Atomic int64_t n, chunk;
    atomic_uint nchunks, nshards;  /* workers 0 .. nshards - 2 take part */
    /* progress of the current job, on its own cache line: written once per chunk */
    _Alignas(64) atomic_uint done;  /* chunks finished; futex word for the owner */
    atomic_uint owner_asleep; /* the owner sleeps (or is about to) on `done` */
    atomic_int rc;            /* first nonzero body return */
    /* workers, touched only by the owner (and the destructor / fork handler) */
    _Alignas(64) int nworkers;
    pthread_t workers[MAX_THREADS - 1];
} P;

static inline uint64_t pack(unsigned generation, unsigned index) {
    return ((uint64_t)generation << 32) | index;
}

/* First chunk of shard s: the chunks split as evenly as they go. */
static inline unsigned shard_begin(unsigned s, unsigned nshards, unsigned nchunks) {
    return (unsigned)((uint64_t)s * nchunks / nshards);
}

static void run_chunk(body_fn body, void *closure, int64_t n, int64_t chunk, unsigned nchunks,
                      unsigned index) {
    int64_t begin = (int64_t)index * chunk;
    int32_t rc = body(begin, begin + chunk < n ? begin + chunk : n, closure);
    if (rc != 0) {
        int zero = 0;
        atomic_compare_exchange_strong(&P.rc, &zero, rc);
    }
    /* seq_cst, pairing with the owner's owner_asleep store and load: no lost wake-up. Also a
     * release: the owner, seeing every chunk done, sees their writes and rc. */
    if (atomic_fetch_add(&P.done, 1) + 1 == nchunks && atomic_load(&P.owner_asleep))
        wake_all(&P.done);
}

/* A worker's part in whatever job is current: its own shard's chunks, then the others'. */
static void help(unsigned self) {
    unsigned home = self + 1;
    for (unsigned visit = 0;; visit++) {
        unsigned nshards = atomic_load_explicit(&P.nshards, memory_order_relaxed);
        if (home >= nshards || visit >= nshards) return;  /* not wanted, or nothing left */
        unsigned s = (home + visit) % nshards;
        uint64_t seen = atomic_load_explicit(&shards[s].claim, memory_order_acquire);
        for (;;) {
            body_fn body = atomic_load_explicit(&P.body, memory_order_relaxed);
            void *closure = atomic_load_explicit(&P.closure, memory_order_relaxed);
            int64_t n = atomic_load_explicit(&P.n, memory_order_relaxed);
            int64_t chunk = atomic_load_explicit(&P.chunk, memory_order_relaxed);
            unsigned nchunks = atomic_load_explicit(&P.nchunks, memory_order_relaxed);
            unsigned count = atomic_load_explicit(&P.nshards, memory_order_relaxed);
            atomic_thread_fence(memory_order_acquire);
            /* Possibly stale or mixed values: deciding to move on is harmless (the owner never
             * waits for a worker), and running a chunk needs the CAS, which validates them. */
            unsigned index = (unsigned)seen;
            if (s >= count || index >= shard_begin(s + 1, count, nchunks)) break;
            if (atomic_compare_exchange_weak_explicit(&shards[s].claim, &seen, seen + 1,
                                                      memory_order_acq_rel,
                                                      memory_order_acquire)) {
                run_chunk(body, closure, n, chunk, nchunks, index);
                seen = atomic_load_explicit(&shards[s].claim, memory_order_acquire);
            }  /* else `seen` now holds the current value: look again */
        }
    }
}

/* Block until `wake` differs from `last` (a new job, or stop), spinning for up to spin_ns first. */
static unsigned wait_for_job(unsigned last, int64_t spin_ns) {
    unsigned current;
    if (spin_ns > 0) {
        int64_t deadline = now_ns() + spin_ns;
        for (int k = 1;; k++) {
            if ((current = atomic_load_explicit(&P.wake, memory_order_acquire)) != last)
                return current;
            cpu_relax();
            if (k % 64 == 0) {
                int64_t t = now_ns();
                /* While a job runs (the owner finishing its last chunks) the next one may
                 * follow at once: the idle spin counts from the job's end. */
                if (atomic_load_explicit(&P.busy, memory_order_relaxed)) deadline = t + spin_ns;
                else if (t > deadline) break;
            }
        }
    }
    /* seq_cst: either the owner sees us counted in `sleepers` and wakes us, or we see its new
     * `wake` here and do not sleep. */
    atomic_fetch_add(&P.sleepers, 1);
    while ((current = atomic_load(&P.wake)) == last) wait_while_equal(&P.wake, last);
    atomic_fetch_sub(&P.sleepers, 1);
    return current;
}

static void *worker_main(void *arg) {
    unsigned self = (unsigned)(intptr_t)arg;
    unsigned last = 0;       /* no job has generation 0, so a new worker looks at once */
    int64_t spin = 0;
    for (;;) {
        last = wait_for_job(last, spin);
        if (atomic_load(&P.stop)) return NULL;
        int wanted = self + 1 < atomic_load_explicit(&P.nshards, memory_order_relaxed);
        if (wanted) help(self);
        /* Only a worker the last job wanted spins for the next; one beyond the current thread
         * count (after set_num_threads lowered it) goes straight back to sleep. */
        spin = wanted ? SPIN_NS : 0;
    }
}

static void forget_workers_in_child(void) {
    /* After fork() only the forking thread exists: the workers (and any job) are gone. */
    P.nworkers = 0;
    atomic_store(&P.sleepers, 0);
    atomic_store(&P.owner_asleep, 0);
    atomic_store(&P.busy, 0);
}

static void register_fork_handler(void) { pthread_atfork(NULL, NULL, forget_workers_in_child); }

/* Start workers until there are `wanted` of them (fewer if the system refuses threads). */
static void add_workers(int wanted) {
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, register_fork_handler);
    /* Workers block every signal: signals go to the application's own threads. */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    while (P.nworkers < wanted && !atomic_load(&P.stop)) {
        if (pthread_create(&P.workers[P.nworkers], NULL, worker_main,
                           (void *)(intptr_t)P.nworkers) != 0)
            break;  /* run with the workers we have: the owner claims whatever they do not */
        P.nworkers++;
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
}

__attribute__((destructor)) static void stop_workers(void) {
    /* Runs when the library is unloaded (dlclose) or the process exits: the workers' code is
     * about to disappear, so they must be gone first. A worker in the middle of a chunk finishes
     * it (the owner is still waiting for it anyway). */
    if (P.nworkers == 0) return;
    atomic_store(&P.stop, 1);
    atomic_fetch_add(&P.wake, 1);
    wake_all(&P.wake);
    for (int k = 0; k < P.nworkers; k++) pthread_join(P.workers[k], NULL);
    P.nworkers = 0;
}

static int default_threads(void) {
    static atomic_int cached;
    int n = atomic_load_explicit(&cached, memory_order_relaxed);
    if (n > 0) return n;
    const char *env = getenv("TENSORC_NUM_THREADS");
    char *end;
    long v = env ? strtol(env, &end, 10) : 0;
    if (env && end != env && v > 0) {
        n = v > MAX_THREADS ? MAX_THREADS : (int)v;
    } else {
#ifdef __linux__
        cpu_set_t set;
        n = sched_getaffinity(0, sizeof set, &set) == 0 ? CPU_COUNT(&set) : 0;
#endif
        if (n <= 0) n = (int)sysconf(_SC_NPROCESSORS_ONLN);
        if (n <= 0) n = 1;
    }
    atomic_store_explicit(&cached, n, memory_order_relaxed);
    return n;
}

HIDDEN int32_t tensorc_parallel_for(body_fn body, void *closure, int64_t n, int64_t grain,
                                    int32_t nthreads) {
    if (n <= 0) return 0;
    if (nthreads <= 0) nthreads = default_threads();
    if (nthreads > MAX_THREADS) nthreads = MAX_THREADS;
    if (grain < 1) grain = 1;
    int64_t nchunks = (int64_t)nthreads * CHUNKS_PER_THREAD;
    if (n / grain < nchunks) nchunks = n / grain;
    if (nchunks <= 1 || nthreads == 1) return body(0, n, closure);
    int64_t chunk = (n + nchunks - 1) / nchunks;
    nchunks = (n + chunk - 1) / chunk;  /* chunk rounding can leave the last ones empty */
    if (atomic_exchange_explicit(&P.busy, 1, memory_order_acquire))
        return body(0, n, closure);  /* nested, or another thread's job is running */

    unsigned nshards = (unsigned)(nthreads < nchunks ? nthreads : nchunks);
    if (P.nworkers < (int)nshards - 1) add_workers((int)nshards - 1);

    /* Publish the job (see the comment on the pool for why in this order). */
    unsigned g = ++P.generation;
    if (g == 0) g = ++P.generation;  /* 0 means "no job yet" to a new worker */
    if (P.shards_used < nshards) P.shards_used = nshards;
    for (unsigned s = 0; s < P.shards_used; s++)
        atomic_store_explicit(&shards[s].claim, pack(g, CLOSED), memory_order_relaxed);
    atomic_thread_fence(memory_order_release);
    atomic_store_explicit(&P.body, body, memory_order_relaxed);
    atomic_store_explicit(&P.closure, closure, memory_order_relaxed);
    atomic_store_explicit(&P.n, n, memory_order_relaxed);
    atomic_store_explicit(&P.chunk, chunk, memory_order_relaxed);
    atomic_store_explicit(&P.nchunks, (unsigned)nchunks, memory_order_relaxed);
    atomic_store_explicit(&P.nshards, nshards, memory_order_relaxed);
    atomic_store_explicit(&P.rc, 0, memory_order_relaxed);
    atomic_store_explicit(&P.done, 0, memory_order_relaxed);
    for (unsigned s = 0; s < nshards; s++)
        atomic_store_explicit(&shards[s].claim, pack(g, shard_begin(s, nshards, nchunks)),
                              memory_order_release);
    atomic_store(&P.wake, g);
    if (atomic_load(&P.sleepers)) wake_all(&P.wake);

    /* The owner claims like a worker, from shard 0 on. Its view of the job is always current,
     * so it needs no CAS: an increment past a shard's end is harmless. */
    for (unsigned s = 0; s < nshards; s++) {
        unsigned end = shard_begin(s + 1, nshards, nchunks);
        for (;;) {
            unsigned index = (unsigned)atomic_fetch_add_explicit(&shards[s].claim, 1,
                                                                 memory_order_acq_rel);
            if (index >= end) break;
            run_chunk(body, closure, n, chunk, (unsigned)nchunks, index);
        }
    }

    /* Every chunk is claimed; wait for the ones still running elsewhere: spin briefly, then
     * sleep so that a descheduled worker can have this core. */
    unsigned finished;
    int64_t deadline = now_ns() + SPIN_NS;
    for (int k = 1; (finished = atomic_load_explicit(&P.done, memory_order_acquire)) !=
                    (unsigned)nchunks; k++) {
        cpu_relax();
        if (k % 64 == 0 && now_ns() > deadline) break;
    }
    while (finished != (unsigned)nchunks) {
        atomic_store(&P.owner_asleep, 1);
        if ((finished = atomic_load(&P.done)) != (unsigned)nchunks)
            wait_while_equal(&P.done, finished);
        atomic_store(&P.owner_asleep, 0);
        finished = atomic_load(&P.done);  /* seq_cst, so acquire: the chunks' writes are seen */
    }
    int32_t rc = atomic_load_explicit(&P.rc, memory_order_relaxed);
    atomic_store_explicit(&P.busy, 0, memory_order_release);
    return rc;
}
