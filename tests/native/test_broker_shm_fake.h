/* test_broker_shm_fake.h - a fake shared-memory backend (service/core/shm_backend.h) for the
 * broker core's Check suites: `create` hands out malloc'd "segments" and counts them; `open`
 * looks the name up in a table of client segments the test fills (or fails with the code the
 * test set). Every segment records whether `close` was called once. Header-only. */
#ifndef AIPC_TEST_BROKER_SHM_FAKE_H
#define AIPC_TEST_BROKER_SHM_FAKE_H

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker.h"

#define FSHM_MAX 256

typedef struct fshm_seg {
    bool created;             /* by create (else opened) */
    bool closed;
    uint32_t size;
    uint8_t *mem;             /* created: owned here */
    char name[AIPC_SHM_NAME_BUF];
    char readers[AIPC_SHM_BACKEND_MAX_READERS][200];
    size_t nreaders;
    uint32_t min_integrity;
    aipc_conn *conn;          /* opened: by whom */
} fshm_seg;

typedef struct fshm_client_seg {   /* a segment a client "created", that open finds by name */
    char name[AIPC_SHM_NAME_BUF];
    uint8_t *mem;
    uint32_t size;
} fshm_client_seg;

typedef struct fshm {
    fshm_seg segs[FSHM_MAX];
    size_t nsegs;
    int creates, opens, closes;
    bool fail_create;
    const char *fail_open;    /* non-NULL: open fails with this code */
    fshm_client_seg csegs[16];
    size_t ncsegs;
} fshm;

static inline void *fshm_create(void *ctx, uint32_t size, const char *const *readers, size_t n,
                                uint32_t min_integrity, uint8_t **base, char *name,
                                uint32_t *session)
{
    fshm *f = ctx;
    ck_assert_uint_eq(size % 4096u, 0);
    ck_assert(n >= 1 && n <= AIPC_SHM_BACKEND_MAX_READERS);
    if (f->fail_create || f->nsegs == FSHM_MAX)
        return NULL;
    fshm_seg *s = &f->segs[f->nsegs];
    memset(s, 0, sizeof *s);
    s->created = true;
    s->size = size;
    s->mem = calloc(1, size);
    ck_assert_ptr_nonnull(s->mem);
    for (size_t i = 0; i < n; i++)
        snprintf(s->readers[i], sizeof s->readers[i], "%s", readers[i]);
    s->nreaders = n;
    s->min_integrity = min_integrity;
    snprintf(s->name, sizeof s->name, "aipc-77-0123456789abcdef0123456789abcdef-%u",
             (unsigned)f->nsegs);
    memcpy(name, s->name, strlen(s->name) + 1);
    *base = s->mem;
    *session = 1;
    f->nsegs++;
    f->creates++;
    return s;
}

static inline void *fshm_open(void *ctx, aipc_conn *conn, const char *name, uint32_t size,
                              const uint8_t **base, const char **code)
{
    fshm *f = ctx;
    if (f->fail_open) {
        *code = f->fail_open;
        return NULL;
    }
    for (size_t i = 0; i < f->ncsegs; i++)
        if (strcmp(f->csegs[i].name, name) == 0 && f->nsegs < FSHM_MAX) {
            if (size > f->csegs[i].size) {
                *code = "bad_segment";
                return NULL;
            }
            fshm_seg *s = &f->segs[f->nsegs++];
            memset(s, 0, sizeof *s);
            s->size = size;
            s->conn = conn;
            snprintf(s->name, sizeof s->name, "%s", name);
            *base = f->csegs[i].mem;
            f->opens++;
            return s;
        }
    *code = "not_found";
    return NULL;
}

static inline void fshm_close(void *ctx, void *seg)
{
    fshm *f = ctx;
    fshm_seg *s = seg;
    ck_assert_msg(!s->closed, "segment %s closed twice", s->name);
    s->closed = true;
    free(s->mem);
    s->mem = NULL;
    f->closes++;
}

/* Installs a fresh fake backend into b (before any attach). */
static inline fshm *fshm_install(aipc_broker *b)
{
    fshm *f = calloc(1, sizeof *f);
    ck_assert_ptr_nonnull(f);
    aipc_shm_backend be = {f, fshm_create, fshm_open, fshm_close};
    ck_assert_int_eq(aipc_broker_set_shm_backend(b, &be), 0);
    return f;
}

/* Adds a client segment that open finds (its memory is the test's, zero-filled). */
static inline fshm_client_seg *fshm_client_segment(fshm *f, const char *name, uint32_t size)
{
    ck_assert_uint_lt(f->ncsegs, 16);
    fshm_client_seg *c = &f->csegs[f->ncsegs++];
    snprintf(c->name, sizeof c->name, "%s", name);
    c->size = size;
    c->mem = calloc(1, size);
    ck_assert_ptr_nonnull(c->mem);
    return c;
}

/* After aipc_broker_free: every segment was closed exactly once. Frees the fake. */
static inline void fshm_free(fshm *f)
{
    for (size_t i = 0; i < f->nsegs; i++)
        ck_assert_msg(f->segs[i].closed, "segment %s never closed", f->segs[i].name);
    for (size_t i = 0; i < f->ncsegs; i++)
        free(f->csegs[i].mem);
    free(f);
}

#endif
