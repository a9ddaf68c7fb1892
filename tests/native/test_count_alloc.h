/* test_count_alloc.h - a counting aipc_allocator for the suites that check who allocates what:
 * every block it hands out is remembered (size and whether realloc made it), so a free of a
 * block it did not hand out, or a block never freed, fails the test. Header-only (static
 * functions): every test_*.c is its own executable. */
#ifndef AIPC_TEST_COUNT_ALLOC_H
#define AIPC_TEST_COUNT_ALLOC_H

#include <check.h>
#include <stdlib.h>

#include "proto/frame.h"

#define COUNT_ALLOC_MAX 4096

typedef struct count_alloc {
    aipc_allocator a;         /* a.ctx points back here */
    void *blk[COUNT_ALLOC_MAX];
    size_t len[COUNT_ALLOC_MAX];
    size_t nblk;              /* live blocks */
    size_t allocs, reallocs, frees;
    size_t live_bytes, max_alloc;   /* max_alloc: the largest alloc() (not realloc) */
} count_alloc;

static inline size_t count_find(count_alloc *c, void *p)
{
    for (size_t i = 0; i < c->nblk; i++)
        if (c->blk[i] == p)
            return i;
    ck_abort_msg("block %p was not handed out by this allocator", p);
    return 0;
}

static inline void count_add(count_alloc *c, void *p, size_t n)
{
    ck_assert_uint_lt(c->nblk, COUNT_ALLOC_MAX);
    c->blk[c->nblk] = p;
    c->len[c->nblk++] = n;
    c->live_bytes += n;
}

static inline void count_del(count_alloc *c, size_t i)
{
    c->live_bytes -= c->len[i];
    c->blk[i] = c->blk[--c->nblk];
    c->len[i] = c->len[c->nblk];
}

static inline void *count_alloc_fn(void *ctx, size_t n)
{
    count_alloc *c = ctx;
    void *p = malloc(n);
    if (p) {
        c->allocs++;
        if (n > c->max_alloc)
            c->max_alloc = n;
        count_add(c, p, n);
    }
    return p;
}

static inline void *count_realloc_fn(void *ctx, void *old, size_t n)
{
    count_alloc *c = ctx;
    if (!old)
        return count_alloc_fn(ctx, n);
    size_t i = count_find(c, old);
    void *p = realloc(old, n);
    if (p) {
        c->reallocs++;
        count_del(c, i);
        count_add(c, p, n);
    }
    return p;
}

static inline void count_free_fn(void *ctx, void *p)
{
    count_alloc *c = ctx;
    if (!p)
        return;
    count_del(c, count_find(c, p));
    c->frees++;
    free(p);
}

/* Zeroes *c and points its allocator at it. */
static inline void count_alloc_init(count_alloc *c)
{
    memset(c, 0, sizeof *c);
    c->a.alloc = count_alloc_fn;
    c->a.realloc = count_realloc_fn;
    c->a.free = count_free_fn;
    c->a.ctx = c;
}

#endif
