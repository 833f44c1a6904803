/* tensorc's workspace cache: the heap buffers of generated kernels, reused from call to call.
 *
 * Compiled and linked into every tensorc shared object beside the thread pool
 * (tensorc/codegen/llvm_compile.py); everything here has hidden visibility.
 *
 * A kernel's intermediate larger than the stack limit (tensorc/codegen/llvm_stmt.py) is a heap
 * block taken where its scope begins and given back where it ends -- for a block computed per
 * parallel chunk, once per chunk per call. With plain malloc/free, glibc serves blocks above its
 * mmap threshold with fresh mappings, and trims freed heap back to the system, so calls kept
 * paying page faults over whole blocks: capsule routing at batch 32 (four 5.9 MB blocks a call)
 * ran 1.5-2x slower on two threads than its compute, and more so after another library's large
 * allocations had moved glibc's thresholds. Here a block given back goes to a small cache of
 * the calling thread, and the next request that fits takes it again; the pool's workers live as
 * long as the library, so calls in a steady state allocate nothing. Per thread, so no locks, and
 * a block is reused by the thread (hence the core caches) that touched it last.
 *
 *   void *tensorc_workspace_alloc(int64_t nbytes)          64-byte aligned; NULL: out of memory
 *   void  tensorc_workspace_free(void *p, int64_t nbytes)  nbytes as given to alloc
 *
 * A thread keeps at most SLOTS blocks and CACHE_BYTES in all (the smallest block is dropped for
 * a larger one); its blocks are freed when it exits. A library unloaded while threads that used
 * it still run leaves their cached blocks behind (the thread-exit hook is removed first, since
 * its code goes away).
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>

#define HIDDEN __attribute__((visibility("hidden")))
#define SLOTS 4
#define ALIGN 64
#define CACHE_BYTES ((int64_t)1 << 30)

struct block { void *p; int64_t n; };
static __thread struct block cache[SLOTS];
static __thread int64_t cached_bytes;

static pthread_key_t exit_key;
static pthread_once_t exit_key_once = PTHREAD_ONCE_INIT;
static int have_exit_key;

static void free_cache(void *unused) {
    (void)unused;
    for (int k = 0; k < SLOTS; k++) {
        free(cache[k].p);
        cache[k].p = NULL;
        cache[k].n = 0;
    }
    cached_bytes = 0;
}

static void make_exit_key(void) { have_exit_key = pthread_key_create(&exit_key, free_cache) == 0; }

__attribute__((destructor)) static void remove_exit_key(void) {
    if (have_exit_key) pthread_key_delete(exit_key);
    have_exit_key = 0;
}

HIDDEN void *tensorc_workspace_alloc(int64_t nbytes) {
    int best = -1;
    for (int k = 0; k < SLOTS; k++)
        if (cache[k].p && cache[k].n >= nbytes && (best < 0 || cache[k].n < cache[best].n))
            best = k;
    if (best >= 0) {
        void *p = cache[best].p;
        cached_bytes -= cache[best].n;
        cache[best].p = NULL;
        cache[best].n = 0;
        return p;
    }
    size_t size = ((size_t)(nbytes > 0 ? nbytes : 1) + ALIGN - 1) / ALIGN * ALIGN;
    return aligned_alloc(ALIGN, size);
}

HIDDEN void tensorc_workspace_free(void *p, int64_t nbytes) {
    if (!p) return;
    pthread_once(&exit_key_once, make_exit_key);
    if (!have_exit_key || nbytes > CACHE_BYTES) {
        free(p);
        return;
    }
    if (!pthread_getspecific(exit_key)) pthread_setspecific(exit_key, (void *)1);
    int slot = -1;
    for (int k = 0; k < SLOTS; k++)
        if (!cache[k].p) {
            slot = k;
            break;
        }
    if (slot < 0) {  /* full: the smallest block makes room for a larger one */
        slot = 0;
        for (int k = 1; k < SLOTS; k++)
            if (cache[k].n < cache[slot].n) slot = k;
        if (cache[slot].n >= nbytes) {
            free(p);
            return;
        }
        free(cache[slot].p);
        cached_bytes -= cache[slot].n;
        cache[slot].p = NULL;
    }
    while (cached_bytes + nbytes > CACHE_BYTES) {  /* over the budget: drop the largest others */
        int big = -1;
        for (int k = 0; k < SLOTS; k++)
            if (cache[k].p && (big < 0 || cache[k].n > cache[big].n)) big = k;
        if (big < 0) break;
        free(cache[big].p);
        cached_bytes -= cache[big].n;
        cache[big].p = NULL;
        cache[big].n = 0;
    }
    cache[slot].p = p;
    cache[slot].n = nbytes;
    cached_bytes += nbytes;
}
