/* A valgrind replacement library for heap profiles of coxswain (bench/agent.sh HEAP=FILE).
 * coxswain's global allocator is mimalloc, linked into the binary, so massif, dhat and
 * heaptrack, which replace libc's malloc, see none of the Rust heap. Preloaded under valgrind,
 * this replaces the four mimalloc entry points Rust's allocator calls (in the main executable:
 * soname NONE) with libc's, which the tool then records. Build:
 *   cc -O1 -shared -fPIC -o massif-mimalloc.so bench/massif-mimalloc.c
 * Run: LD_PRELOAD=./massif-mimalloc.so valgrind --tool=massif ... coxswain ...
 * (valgrind.h: the valgrind development headers, Debian's valgrind package has them). */
#include <malloc.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <valgrind/valgrind.h>

static void *aligned(size_t size, size_t align) {
    if (size == 0) size = 1;
    return align <= 16 ? malloc(size) : memalign(align, size);
}

void *I_REPLACE_SONAME_FNNAME_ZU(NONE, mi_malloc_aligned)(size_t size, size_t align) {
    return aligned(size, align);
}

void *I_REPLACE_SONAME_FNNAME_ZU(NONE, mi_zalloc_aligned)(size_t size, size_t align) {
    if (align <= 16) return calloc(1, size ? size : 1);
    void *p = aligned(size, align);
    if (p) memset(p, 0, size);
    return p;
}

void I_REPLACE_SONAME_FNNAME_ZU(NONE, mi_free)(void *p) { free(p); }

void *I_REPLACE_SONAME_FNNAME_ZU(NONE, mi_realloc_aligned)(void *p, size_t size, size_t align) {
    if (align <= 16) return realloc(p, size ? size : 1);
    void *q = aligned(size, align);
    if (q && p) {
        size_t old = malloc_usable_size(p);
        memcpy(q, p, old < size ? old : size);
        free(p);
    }
    return q;
}
