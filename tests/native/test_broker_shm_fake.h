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
    struct { uint32_t id; size_t idx; } ann[FSHM_MAX];   /* broker seg id -> segs[idx] */
    size_t nann;
    int unsegs;               /* shm_unseg frames seen by fshm_next */
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

/* The fake segment the broker announced as `seg` (its name, from the announce), or NULL. */
static inline fshm_seg *fshm_by_id(fshm *f, uint32_t seg)
{
    for (size_t i = 0; i < f->nann; i++)
        if (f->ann[i].id == seg)
            return &f->segs[f->ann[i].idx];
    return NULL;
}

/* A delivery as the client sees it: inline, or resolved from the slot a descriptor names. */
typedef struct shm_rx {
    rx_frame *r;
    const uint8_t *data;
    size_t len;
    bool shared;
    uint32_t seg, off;
} shm_rx;

/* Answers an announce frame r as a client would: ok (true) or refused. */
static inline void fshm_answer(fshm *f, fake *c, const rx_frame *r, bool ok)
{
    uint32_t seg = (uint32_t)rx_num(r, "seg");
    const char *name = rx_str(r, "name");
    ck_assert_int_eq((int)rx_num(r, "id"), (int)seg);
    ck_assert_uint_eq((uint32_t)rx_num(r, "size") % 4096u, 0);
    bool known = fshm_by_id(f, seg) != NULL;
    for (size_t i = 0; i < f->nsegs && !known; i++)
        if (f->segs[i].created && strcmp(f->segs[i].name, name) == 0) {
            ck_assert_uint_lt(f->nann, FSHM_MAX);
            f->ann[f->nann].id = seg;
            f->ann[f->nann].idx = i;
            f->nann++;
            known = true;
        }
    ck_assert_msg(known, "announce of an unknown segment %s", name);
    char meta[160];
    if (ok)
        snprintf(meta, sizeof meta, "{\"op\":\"shm_seg\",\"re\":%u,\"seg\":%u,\"ok\":true}", seg,
                 seg);
    else
        snprintf(meta, sizeof meta, "{\"op\":\"shm_seg\",\"re\":%u,\"seg\":%u,\"ok\":false,"
                 "\"code\":\"access_denied\"}", seg, seg);
    ck_assert_int_eq(fake_sendt(c, meta, NULL), 0);
}

/* The next frame that is not a shm_seg announce or shm_unseg (announces are answered with ok,
 * counted in *announces when not NULL); a descriptor's payload is read from the fake segment
 * (range and spare byte checked). r is NULL when nothing is pending. */
static inline shm_rx fshm_next(fshm *f, fake *c, bool ok, int *announces)
{
    shm_rx x;
    memset(&x, 0, sizeof x);
    for (;;) {
        rx_frame *r = fake_next(c);
        if (!r)
            return x;
        const char *op = rx_str(r, "op");
        if (strcmp(op, "shm_seg") == 0) {
            fshm_answer(f, c, r, ok);
            if (announces)
                (*announces)++;
            continue;
        }
        if (strcmp(op, "shm_unseg") == 0) {
            f->unsegs++;
            continue;
        }
        x.r = r;
        const cJSON *d = cJSON_GetObjectItemCaseSensitive(r->meta, "shm");
        if (!d) {
            x.data = r->payload;
            x.len = r->plen;
            return x;
        }
        ck_assert_uint_eq(r->plen, 0);
        ck_assert_int_eq(cJSON_GetArraySize(d), 3);
        x.shared = true;
        x.seg = (uint32_t)cJSON_GetArrayItem(d, 0)->valuedouble;
        x.off = (uint32_t)cJSON_GetArrayItem(d, 1)->valuedouble;
        x.len = (size_t)cJSON_GetArrayItem(d, 2)->valuedouble;
        fshm_seg *s = fshm_by_id(f, x.seg);
        ck_assert_msg(s != NULL, "descriptor on segment %u never announced", x.seg);
        ck_assert_msg(!s->closed, "descriptor on a closed segment");
        ck_assert_uint_le((uint64_t)x.off + x.len + 1, s->size);
        ck_assert_uint_eq(x.off % 4096u, 0);
        ck_assert_uint_eq(s->mem[x.off + x.len], 0);
        x.data = s->mem + x.off;
        return x;
    }
}

/* Releases one slot: {"op":"shm_done","r":[[seg,off]]}. */
static inline void fshm_done(fake *c, uint32_t seg, uint32_t off)
{
    char meta[96];
    snprintf(meta, sizeof meta, "{\"op\":\"shm_done\",\"r\":[[%u,%u]]}", seg, off);
    ck_assert_int_eq(fake_sendt(c, meta, NULL), 0);
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
