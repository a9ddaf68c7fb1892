/* fuzz_pub_fast.c - differential libFuzzer target: the broker's fast path for pub metas
 * (pub_fast in service/core/router.c) must answer exactly like the cJSON path.
 *
 * The input is one frame's meta. Two brokers with the same configuration and clock get the
 * same script: a publisher and a subscriber (to "#") say hello, the publisher sends the fuzzed
 * meta with a small payload, a late client subscribes to "#" (so a retained message shows),
 * and the publisher pings. Broker A routes as the broker does (fast path on); broker B has
 * pub_fast_off, so every meta goes through cJSON. Every byte each client is sent, whether it
 * was closed, the input results and the statistics must be identical: accept or refuse, the
 * error code and message, the id echoed, the topic, payload and retain flag delivered.
 * ASan/UBSan catch crashes and leaks as in the other targets. Seeds: corpus/fuzz_pub_fast. */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "asyncipc/asyncipc.h"
#include "broker.h"
#include "proto/frame.h"
#include "internal.h"

#define CHECK(cond)                                                                           \
    do {                                                                                      \
        if (!(cond)) {                                                                        \
            fprintf(stderr, "fuzz_pub_fast: check failed: %s (line %d)\n", #cond, __LINE__); \
            abort();                                                                          \
        }                                                                                     \
    } while (0)

/* A fake connection that records every byte the broker writes to it. */
typedef struct dz_conn {
    aipc_conn conn;
    uint8_t *out;
    size_t len, cap;
    int closes, aborts;
} dz_conn;

static void dz_drain(dz_conn *c)
{
    while (c->conn.client) {
        aipc_iov iov[4];
        int n = aipc_client_out_next(c->conn.client, iov, 4);
        if (n <= 0)
            break;
        size_t used = 0;
        for (int i = 0; i < n; i++) {
            if (c->len + iov[i].len > c->cap) {
                c->cap = (c->len + iov[i].len) * 2;
                c->out = realloc(c->out, c->cap);
                CHECK(c->out);
            }
            memcpy(c->out + c->len, iov[i].base, iov[i].len);
            c->len += iov[i].len;
            used += iov[i].len;
        }
        aipc_client_out_consume(c->conn.client, used);
    }
}

static void dz_want_write(aipc_conn *conn)
{
    dz_drain((dz_conn *)conn);
}

static void dz_close(aipc_conn *conn)
{
    ((dz_conn *)conn)->closes++;
}

static void dz_abort(aipc_conn *conn)
{
    ((dz_conn *)conn)->aborts++;
}

static const aipc_conn_ops dz_ops = {dz_want_write, dz_close, dz_abort};

static uint64_t dz_now(void)
{
    return 1000;
}

/* One side of the comparison. */
typedef struct side {
    dz_conn pub, sub, late;
    int rc_meta;                   /* aipc_broker_input for the fuzzed frame */
    char stats[2048];
    size_t nstats;
} side;

static int send_frame(aipc_broker *b, dz_conn *c, const void *meta, size_t ml, const char *pl)
{
    size_t pn = pl ? strlen(pl) : 0;
    uint8_t *buf = malloc(8 + ml + pn);
    CHECK(buf);
    aipc_frame_put_header(buf, (uint32_t)ml, (uint32_t)pn);
    if (ml)
        memcpy(buf + 8, meta, ml);
    if (pn)
        memcpy(buf + 8 + ml, pl, pn);
    int rc = c->conn.client ? aipc_broker_input(b, c->conn.client, buf, 8 + ml + pn) : -1;
    free(buf);
    dz_drain(c);
    return rc;
}

static int send_text(aipc_broker *b, dz_conn *c, const char *meta)
{
    return send_frame(b, c, meta, strlen(meta), NULL);
}

static void run_side(side *s, bool fast, const uint8_t *meta, size_t ml)
{
    aipc_broker_config cfg;
    aipc_broker_config_defaults(&cfg);
    cfg.max_payload = 4096;
    cfg.max_queue_bytes = 1 << 20;
    aipc_broker *b = aipc_broker_new(&cfg, dz_now);
    CHECK(b);
    b->pub_fast_off = !fast;
    memset(s, 0, sizeof *s);
    s->pub.conn.ops = s->sub.conn.ops = s->late.conn.ops = &dz_ops;
    CHECK(aipc_broker_attach(b, &s->pub.conn, 1));
    CHECK(aipc_broker_attach(b, &s->sub.conn, 2));
    CHECK(send_text(b, &s->pub, "{\"op\":\"hello\",\"proto\":1,\"name\":\"pub\"}") == 0);
    CHECK(send_text(b, &s->sub, "{\"op\":\"hello\",\"proto\":1,\"name\":\"sub\"}") == 0);
    CHECK(send_text(b, &s->sub, "{\"op\":\"sub\",\"topic\":\"#\"}") == 0);

    s->rc_meta = send_frame(b, &s->pub, meta, ml, "payload");
    dz_drain(&s->sub);

    CHECK(aipc_broker_attach(b, &s->late.conn, 3));
    CHECK(send_text(b, &s->late, "{\"op\":\"hello\",\"proto\":1,\"name\":\"late\"}") == 0);
    CHECK(send_text(b, &s->late, "{\"op\":\"sub\",\"topic\":\"#\",\"id\":7}") == 0);
    for (int i = 0; i < 4; i++) {           /* retained delivery may continue in ticks */
        aipc_broker_tick(b);
        dz_drain(&s->late);
    }
    send_text(b, &s->pub, "{\"op\":\"ping\",\"id\":9}");
    s->nstats = aipc_broker_stats_json(b, s->stats, sizeof s->stats);
    CHECK(s->nstats < sizeof s->stats);

    aipc_broker_detach(b, s->pub.conn.client);
    aipc_broker_detach(b, s->sub.conn.client);
    aipc_broker_detach(b, s->late.conn.client);
    aipc_broker_free(b);
}

static void same_conn(const dz_conn *a, const dz_conn *b)
{
    CHECK(a->len == b->len);
    CHECK(a->len == 0 || memcmp(a->out, b->out, a->len) == 0);
    CHECK(a->closes == b->closes);
    CHECK(a->aborts == b->aborts);
}

static void free_side(side *s)
{
    free(s->pub.out);
    free(s->sub.out);
    free(s->late.out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > AIPC_MAX_META)
        return 0;
    static side fast, slow;
    run_side(&fast, true, data, size);
    run_side(&slow, false, data, size);
    CHECK(fast.rc_meta == slow.rc_meta);
    same_conn(&fast.pub, &slow.pub);
    same_conn(&fast.sub, &slow.sub);
    same_conn(&fast.late, &slow.late);
    CHECK(fast.nstats == slow.nstats && memcmp(fast.stats, slow.stats, fast.nstats) == 0);
    free_side(&fast);
    free_side(&slow);
    return 0;
}
