/* test_broker_fake.h - in-memory fake connections for the broker core's Check suites.
 * A fake implements aipc_conn_ops, drains what the core queues to it through out_next/
 * out_consume (like an engine would), decodes the bytes with the real frame decoder and keeps
 * every received frame (meta parsed with cJSON) for the test to inspect. Header-only (static
 * functions) because every test_*.c is its own executable. */
#ifndef AIPC_TEST_BROKER_FAKE_H
#define AIPC_TEST_BROKER_FAKE_H

#include <check.h>
#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "asyncipc/asyncipc.h"
#include "broker.h"
#include "proto/frame.h"

typedef struct rx_frame {
    cJSON *meta;              /* NULL when the meta was not JSON (never expected) */
    uint8_t *payload;         /* NUL-terminated copy */
    size_t plen;
} rx_frame;

typedef struct fake {
    aipc_conn conn;           /* first member, as engines do */
    aipc_broker *b;
    aipc_client *cl;
    int want_write_calls, close_calls, abort_calls;
    bool stalled;             /* true: the "pipe" is not written, output piles up */
    size_t write_chunk;       /* 0: consume everything; else at most this per write */
    aipc_decoder dec;
    rx_frame *rx;
    size_t nrx, caprx, rpos;
} fake;

static uint64_t fake_clock_ms = 1000;

/* Test clock: tests move it to check uptime. */
static inline uint64_t fake_now(void)
{
    return fake_clock_ms;
}

/* Decoder callback: keeps one received frame. */
static inline int fake_on_frame(void *ctx, const uint8_t *meta, uint32_t ml, const uint8_t *pl,
                         uint32_t pn)
{
    fake *f = ctx;
    if (f->nrx == f->caprx) {
        f->caprx = f->caprx ? f->caprx * 2 : 16;
        f->rx = realloc(f->rx, f->caprx * sizeof *f->rx);
    }
    rx_frame *r = &f->rx[f->nrx++];
    r->meta = cJSON_ParseWithLength((const char *)meta, ml);
    r->payload = malloc(pn + 1);
    memcpy(r->payload, pl, pn);
    r->payload[pn] = 0;
    r->plen = pn;
    return 0;
}

/* Writes (drains) what is queued, in write_chunk pieces, unless stalled. */
static inline void fake_pump(fake *f)
{
    if (!f->cl)
        return;
    while (!f->stalled) {
        aipc_iov iov[8];
        int n = aipc_client_out_next(f->cl, iov, 8);
        if (n <= 0)
            break;
        size_t budget = f->write_chunk ? f->write_chunk : SIZE_MAX, used = 0;
        for (int i = 0; i < n && used < budget; i++) {
            size_t take = iov[i].len < budget - used ? iov[i].len : budget - used;
            ck_assert_int_eq(aipc_decoder_feed(&f->dec, iov[i].base, take, fake_on_frame, f, NULL),
                             0);
            used += take;
        }
        aipc_client_out_consume(f->cl, used);
    }
}

/* Like an engine whose write completes at once: drains right away unless stalled. */
static inline void fake_want_write(aipc_conn *c)
{
    fake *f = (fake *)c;
    f->want_write_calls++;
    if (f->cl)
        fake_pump(f);
}

static inline void fake_close(aipc_conn *c)
{
    ((fake *)c)->close_calls++;
}

/* The core's linger ran out: a real engine would cancel and detach; tests detach themselves. */
static inline void fake_abort(aipc_conn *c)
{
    ((fake *)c)->abort_calls++;
}

static const aipc_conn_ops fake_ops = {fake_want_write, fake_close, fake_abort};

/* A new connection (attached); NULL client if the broker refused it. */
static inline fake *fake_new(aipc_broker *b, uint32_t pid)
{
    fake *f = calloc(1, sizeof *f);
    f->conn.ops = &fake_ops;
    f->b = b;
    aipc_decoder_init(&f->dec, 0, 0x7fffffffu);
    f->cl = aipc_broker_attach(b, &f->conn, pid);
    if (f->cl)
        ck_assert_ptr_eq(f->conn.client, f->cl);
    return f;
}

/* Encodes one frame and feeds it to the broker (in `chunk`-byte pieces when chunk > 0). */
static inline int fake_send_chunked(fake *f, const char *meta, const void *pl, size_t pn, size_t chunk)
{
    size_t ml = strlen(meta);
    size_t len = 8 + ml + pn;
    uint8_t *buf = malloc(len);
    aipc_frame_put_header(buf, (uint32_t)ml, (uint32_t)pn);
    memcpy(buf + 8, meta, ml);
    if (pn)
        memcpy(buf + 8 + ml, pl, pn);
    int rc = 0;
    if (!chunk)
        chunk = len;
    for (size_t i = 0; i < len && rc == 0; i += chunk)
        rc = aipc_broker_input(f->b, f->cl, buf + i, len - i < chunk ? len - i : chunk);
    free(buf);
    return rc;
}

static inline int fake_send(fake *f, const char *meta, const void *pl, size_t pn)
{
    return fake_send_chunked(f, meta, pl, pn, 0);
}

/* Sends a text payload. */
static inline int fake_sendt(fake *f, const char *meta, const char *text)
{
    return fake_send(f, meta, text, text ? strlen(text) : 0);
}

/* The next received frame not looked at yet (pumps first), or NULL. */
static inline rx_frame *fake_next(fake *f)
{
    fake_pump(f);
    if (f->rpos >= f->nrx)
        return NULL;
    return &f->rx[f->rpos++];
}

/* Number of received frames not looked at yet. */
static inline size_t fake_pending(fake *f)
{
    fake_pump(f);
    return f->nrx - f->rpos;
}

/* A string member of a received meta ("" when missing). */
static inline const char *rx_str(const rx_frame *r, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(r->meta, key);
    return cJSON_IsString(v) ? v->valuestring : "";
}

/* A numeric member (-1 when missing). */
static inline double rx_num(const rx_frame *r, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(r->meta, key);
    return cJSON_IsNumber(v) ? v->valuedouble : -1;
}

static inline bool rx_has(const rx_frame *r, const char *key)
{
    return cJSON_GetObjectItemCaseSensitive(r->meta, key) != NULL;
}

/* The from.<key> member of a delivery. */
static inline double rx_from_num(const rx_frame *r, const char *key)
{
    const cJSON *from = cJSON_GetObjectItemCaseSensitive(r->meta, "from");
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(from, key);
    return cJSON_IsNumber(v) ? v->valuedouble : -1;
}

static inline const char *rx_from_str(const rx_frame *r, const char *key)
{
    const cJSON *from = cJSON_GetObjectItemCaseSensitive(r->meta, "from");
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(from, key);
    return cJSON_IsString(v) ? v->valuestring : "";
}

/* Asserts the next frame has this op and returns it. */
static inline rx_frame *fake_expect(fake *f, const char *op)
{
    rx_frame *r = fake_next(f);
    ck_assert_msg(r != NULL, "expected op %s, got nothing", op);
    ck_assert_msg(r->meta != NULL, "received a non-JSON meta");
    ck_assert_msg(strcmp(rx_str(r, "op"), op) == 0, "expected op %s, got %s (%s)", op,
                  rx_str(r, "op"), rx_str(r, "code"));
    return r;
}

/* Asserts the next frame is an error with this code. */
static inline rx_frame *fake_expect_error(fake *f, const char *code)
{
    rx_frame *e = fake_expect(f, "error");
    ck_assert_msg(strcmp(rx_str(e, "code"), code) == 0, "expected error %s, got %s", code,
                  rx_str(e, "code"));
    ck_assert(rx_has(e, "message"));
    return e;
}

/* Skips $bus presence publications (tests that do not look at them). */
static inline rx_frame *fake_next_nonpresence(fake *f)
{
    for (;;) {
        rx_frame *r = fake_next(f);
        if (!r || strncmp(rx_str(r, "topic"), "$bus/", 5) != 0)
            return r;
    }
}

/* hello with an optional name; asserts the welcome and returns the id. */
static inline uint64_t fake_hello(fake *f, const char *name)
{
    char meta[256];
    if (name)
        snprintf(meta, sizeof meta, "{\"op\":\"hello\",\"proto\":1,\"name\":\"%s\"}", name);
    else
        snprintf(meta, sizeof meta, "{\"op\":\"hello\",\"proto\":1}");
    ck_assert_int_eq(fake_send(f, meta, NULL, 0), 0);
    rx_frame *w = fake_expect(f, "welcome");
    ck_assert_int_eq((int)rx_num(w, "proto"), 1);
    double id = rx_num(w, "id");
    ck_assert(id > 0);
    return (uint64_t)id;
}

/* Forgets received frames so far. */
static inline void fake_skip_all(fake *f)
{
    fake_pump(f);
    f->rpos = f->nrx;
}

/* Detaches (pipe gone) and frees the fake. */
static inline void fake_free(fake *f)
{
    if (f->cl)
        aipc_broker_detach(f->b, f->cl);
    ck_assert_ptr_null(f->conn.client);
    for (size_t i = 0; i < f->nrx; i++) {
        cJSON_Delete(f->rx[i].meta);
        free(f->rx[i].payload);
    }
    free(f->rx);
    aipc_decoder_free(&f->dec);
    free(f);
}

/* A broker with the test clock; small queue when max_queue != 0. */
static inline aipc_broker *test_broker(uint64_t max_queue, uint32_t max_payload, uint32_t max_clients)
{
    aipc_broker_config cfg;
    aipc_broker_config_defaults(&cfg);
    if (max_queue)
        cfg.max_queue_bytes = max_queue;
    if (max_payload)
        cfg.max_payload = max_payload;
    if (max_clients)
        cfg.max_clients = max_clients;
    aipc_broker *b = aipc_broker_new(&cfg, fake_now);
    ck_assert_ptr_nonnull(b);
    return b;
}

/* The broker's counters now. */
static inline aipc_broker_stats fake_stats(aipc_broker *b)
{
    aipc_broker_stats st;
    aipc_broker_get_stats(b, &st);
    return st;
}

#endif
