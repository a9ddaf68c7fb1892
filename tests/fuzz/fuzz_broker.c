/* fuzz_broker.c - libFuzzer target for the broker core: arbitrary bytes, fed in arbitrary chunks,
 * from one fake connection, while a second, well-behaved client (subscribed to everything,
 * answering requests) must never see an error, a close or a malformed frame, and must still get
 * its pong at the end. ASan/UBSan/LeakSanitizer catch crashes and leaks.
 *
 * Input layout: byte 0 = chunk size seed, byte 1 = flags:
 *   bit 0: prepend a valid hello for the fuzz client
 *   bit 1: the fuzz client never reads (its queue fills: drops, queue_full, cut-off paths)
 *   bit 2: structured mode: the rest is records {kind, len, bytes} turned into frames with
 *          meaningful metas (so the fuzzer reaches deep paths without a corpus)
 *   bit 3: the good client reads in 5-byte writes (partial consumes)
 *   bit 4: a policy is configured and both clients have identities (the good one is SYSTEM,
 *          allowed everything; the fuzz client is a user under %u/%s rules, reserved names)
 * The broker's clock advances 3 ms per chunk with small timeouts (hello 1 s, requests 300 ms)
 * and small limits (16 subscriptions, 8 pending requests, 64 KiB of partial frames), ticked
 * after every chunk, so the limits act in the middle of inputs.
 * otherwise the rest is raw wire bytes. */
#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "asyncipc/asyncipc.h"
#include "broker.h"
#include "proto/frame.h"

#define CHECK(cond)                                                                           \
    do {                                                                                      \
        if (!(cond)) {                                                                        \
            fprintf(stderr, "fuzz_broker: check failed: %s (line %d)\n", #cond, __LINE__);   \
            abort();                                                                          \
        }                                                                                     \
    } while (0)

typedef struct fz_conn {
    aipc_conn conn;
    aipc_broker *b;
    bool good;                /* the well-behaved client */
    bool stalled;
    size_t chunk;             /* write size, 0 = all */
    int closes, aborts;
    aipc_decoder dec;
    int pongs;
    /* replies the good client owes (req frames it received) */
    uint64_t rep_to[16];
    int64_t rep_re[16];
    int nrep;
} fz_conn;

/* Every frame the broker writes must be a JSON object with an op; the good client must never
 * be told off. */
static int on_out(void *ctx, const uint8_t *meta, uint32_t ml, const uint8_t *pl, uint32_t pn)
{
    fz_conn *c = ctx;
    (void)pl;
    (void)pn;
    cJSON *j = cJSON_ParseWithLength((const char *)meta, ml);
    CHECK(cJSON_IsObject(j));
    const cJSON *op = cJSON_GetObjectItemCaseSensitive(j, "op");
    CHECK(cJSON_IsString(op));
    if (c->good) {
        CHECK(strcmp(op->valuestring, "error") != 0);
        CHECK(strcmp(op->valuestring, "bye") != 0);
        if (strcmp(op->valuestring, "pong") == 0)
            c->pongs++;
        if (strcmp(op->valuestring, "req") == 0 && c->nrep < 16) {
            const cJSON *from = cJSON_GetObjectItemCaseSensitive(j, "from");
            const cJSON *fid = cJSON_GetObjectItemCaseSensitive(from, "id");
            const cJSON *id = cJSON_GetObjectItemCaseSensitive(j, "id");
            CHECK(cJSON_IsNumber(fid) && cJSON_IsNumber(id));
            c->rep_to[c->nrep] = (uint64_t)fid->valuedouble;
            c->rep_re[c->nrep] = (int64_t)id->valuedouble;
            c->nrep++;
        }
    }
    cJSON_Delete(j);
    return 0;
}

/* Drains what the core queued, like an engine's write completions. */
static void drain(fz_conn *c)
{
    while (c->conn.client && !c->stalled) {
        aipc_iov iov[4];
        int n = aipc_client_out_next(c->conn.client, iov, 4);
        if (n <= 0)
            break;
        size_t budget = c->chunk ? c->chunk : SIZE_MAX, used = 0;
        for (int i = 0; i < n && used < budget; i++) {
            size_t take = iov[i].len < budget - used ? iov[i].len : budget - used;
            CHECK(aipc_decoder_feed(&c->dec, iov[i].base, take, on_out, c, NULL) == 0);
            used += take;
        }
        aipc_client_out_consume(c->conn.client, used);
    }
}

static void fz_want_write(aipc_conn *conn)
{
    drain((fz_conn *)conn);
}

static void fz_close(aipc_conn *conn)
{
    fz_conn *c = (fz_conn *)conn;
    c->closes++;
    CHECK(!c->good || c->stalled);              /* the good client is only closed at shutdown */
}

/* The close did not drain (close_linger_ms): the engine would cut it. Only the fuzz client
 * (stalled, closed) may get there; the loop below stops feeding it. */
static void fz_abort(aipc_conn *conn)
{
    fz_conn *c = (fz_conn *)conn;
    CHECK(!c->good && c->closes == 1);
    c->aborts++;
}

static const aipc_conn_ops fz_ops = {fz_want_write, fz_close, fz_abort};

/* Encodes one frame onto a growing buffer. */
static void put_frame(uint8_t **buf, size_t *len, size_t *cap, const char *meta, size_t ml,
                      const uint8_t *pl, size_t pn)
{
    size_t need = *len + 8 + ml + pn;
    if (need > *cap) {
        *cap = need * 2;
        *buf = realloc(*buf, *cap);
        CHECK(*buf);
    }
    aipc_frame_put_header(*buf + *len, (uint32_t)ml, (uint32_t)pn);
    memcpy(*buf + *len + 8, meta, ml);
    if (pn)
        memcpy(*buf + *len + 8 + ml, pl, pn);
    *len = need;
}

/* Appends s as the inside of a JSON string: escaped (valid JSON) or raw (fuzzed JSON). */
static size_t put_str(char *out, const uint8_t *s, size_t n, bool escape)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        uint8_t ch = s[i];
        if (escape && (ch == '"' || ch == '\\' || ch < 0x20)) {
            o += (size_t)sprintf(out + o, "\\u%04x", ch);
        } else {
            out[o++] = (char)ch;
        }
    }
    out[o] = 0;
    return o;
}

/* Structured mode: turns {kind, len, bytes} records into frames with real metas. */
static void build_structured(const uint8_t *d, size_t n, uint8_t **buf, size_t *len, size_t *cap)
{
    static const char *const ok_topics[] = {"a", "a/b", "t/x", "#", "a/+", "$bus/#", "+/b", ""};
    char meta[2048], s[1600];
    size_t i = 0;
    while (i + 2 <= n) {
        uint8_t kind = d[i], l = d[i + 1];
        i += 2;
        size_t take = l < n - i ? l : n - i;
        const uint8_t *str = d + i;
        i += take;
        bool esc = (kind & 0x80) == 0;
        put_str(s, str, take > 255 ? 255 : take, esc);
        const char *t = ok_topics[(kind >> 4) & 7];
        int ml = 0;
        const uint8_t *pl = str;
        size_t pn = take;
        switch (kind % 13) {
        case 0: ml = snprintf(meta, sizeof meta, "{\"op\":\"hello\",\"proto\":1,\"name\":\"%s\"}", s); break;
        case 1: ml = snprintf(meta, sizeof meta, "{\"op\":\"sub\",\"topic\":\"%s\",\"id\":%u}", s, l); break;
        case 2: ml = snprintf(meta, sizeof meta, "{\"op\":\"unsub\",\"topic\":\"%s\"}", s); break;
        case 3: ml = snprintf(meta, sizeof meta, "{\"op\":\"pub\",\"topic\":\"%s\",\"retain\":%s}", s,
                              (kind & 0x10) ? "true" : "false"); break;
        case 4: ml = snprintf(meta, sizeof meta, "{\"op\":\"pub\",\"topic\":\"%s\",\"retain\":%s,\"id\":1}",
                              t[0] == '#' || t[0] == '$' || !t[0] || strchr(t, '+') ? "t/x" : t,
                              (kind & 0x20) ? "true" : "false"); break;
        case 5: ml = snprintf(meta, sizeof meta, "{\"op\":\"send\",\"to\":\"%s\"}", s); break;
        case 6: ml = snprintf(meta, sizeof meta, "{\"op\":\"req\",\"to\":\"good\",\"id\":%u}", l); break;
        case 7: ml = snprintf(meta, sizeof meta, "{\"op\":\"rep\",\"to\":%u,\"re\":%u}", kind >> 4, l); break;
        case 8: ml = snprintf(meta, sizeof meta, "{\"op\":\"ping\",\"id\":%u}", l); pn = 0; break;
        case 9: ml = snprintf(meta, sizeof meta, "{\"op\":\"stats\"}"); pn = 0; break;
        case 10: ml = (int)put_str(meta, str, take > 255 ? 255 : take, false); break;
        case 11: ml = snprintf(meta, sizeof meta, "{\"op\":\"send\",\"to\":\"good\",\"id\":2}"); break;
        default: ml = snprintf(meta, sizeof meta, "{\"op\":\"sub\",\"topic\":\"%s\"}", t[0] ? t : "z"); break;
        }
        if (ml < 0)
            ml = 0;
        put_frame(buf, len, cap, meta, (size_t)ml, pl, pn);
    }
}

/* The broker's clock: moves 3 ms per chunk fed, so the timeouts (small in this config) fire
 * in the middle of long inputs; aipc_broker_tick runs after every chunk. */
static uint64_t fz_clock;

static uint64_t fz_now(void)
{
    return fz_clock;
}

/* The good client's scripted part: hello, subscriptions, and answers to requests. */
static void good_send(aipc_broker *b, fz_conn *g, const char *meta, const char *pl)
{
    uint8_t *buf = NULL;
    size_t len = 0, cap = 0;
    put_frame(&buf, &len, &cap, meta, strlen(meta), (const uint8_t *)pl, pl ? strlen(pl) : 0);
    CHECK(aipc_broker_input(b, g->conn.client, buf, len) == 0);
    free(buf);
    drain(g);
}

/* Sends the replies the good client owes. */
static void good_reply(aipc_broker *b, fz_conn *g)
{
    while (g->nrep > 0) {
        g->nrep--;
        char meta[128];
        snprintf(meta, sizeof meta, "{\"op\":\"rep\",\"to\":%llu,\"re\":%lld}",
                 (unsigned long long)g->rep_to[g->nrep], (long long)g->rep_re[g->nrep]);
        uint8_t *buf = NULL;
        size_t len = 0, cap = 0;
        put_frame(&buf, &len, &cap, meta, strlen(meta), (const uint8_t *)"r", 1);
        /* The requester may have left meanwhile: then an error about this reply is
         * legitimate, so the answer to the rep is written without being checked. Nothing else
         * is queued to the good client here (drain() emptied its queue before). */
        g->stalled = true;
        CHECK(aipc_broker_input(b, g->conn.client, buf, len) == 0);
        free(buf);
        aipc_iov iov[4];
        int n;
        while ((n = aipc_client_out_next(g->conn.client, iov, 4)) > 0) {
            size_t used = 0;
            for (int i = 0; i < n; i++)
                used += iov[i].len;
            aipc_client_out_consume(g->conn.client, used);
        }
        g->stalled = false;
    }
}

/* The policy of bit 4, parsed once. */
static struct aipc_policy *fz_policy(void)
{
    static aipc_broker_config pc;
    static int loaded;
    if (!loaded) {
        char err[256];
        CHECK(aipc_broker_config_load_json(
                  &pc,
                  "{\"policy\":{\"rules\":["
                  "{\"allow\":[\"*\"],\"who\":\"SY\"},"
                  "{\"deny\":[\"sub\"],\"topic\":\"secret/#\"},"
                  "{\"allow\":[\"pub\",\"sub\"],\"topic\":\"user/%u/#\"},"
                  "{\"allow\":[\"pub\",\"sub\"],\"topic\":\"s/%s/+/x\"},"
                  "{\"allow\":[\"send\"],\"to\":\"go*\",\"to_session\":\"%s\"},"
                  "{\"deny\":[\"req\"],\"to_user\":\"%u\"},"
                  "{\"allow\":[\"req\"],\"to_user\":\"SY\"}],"
                  "\"names\":{\"good\":\"SY\",\"ev*\":\"BU\"}}}",
                  err, sizeof err) == 0);
        loaded = 1;
    }
    return pc.policy;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    size_t chunk = (size_t)data[0] % 97 + 1;
    uint8_t flags = data[1];
    data += 2;
    size -= 2;

    aipc_broker_config cfg;
    aipc_broker_config_defaults(&cfg);
    cfg.max_payload = 4096;
    cfg.max_queue_bytes = 65536;
    cfg.max_clients = 4;
    cfg.hello_timeout_ms = 1000;
    cfg.max_subscriptions = 16;
    cfg.max_subscription_bytes = 8192;
    cfg.max_pending_requests = 8;
    cfg.request_timeout_ms = 300;
    cfg.max_incomplete_bytes = 65536;
    cfg.frame_timeout_ms = 100;
    cfg.close_linger_ms = 50;
    fz_clock = 0;
    if (flags & 16)
        cfg.policy = fz_policy();             /* the broker keeps its own copy */
    aipc_broker *b = aipc_broker_new(&cfg, fz_now);
    CHECK(b);

    fz_conn good = {.conn = {.ops = &fz_ops}, .b = b, .good = true};
    fz_conn evil = {.conn = {.ops = &fz_ops}, .b = b};
    aipc_decoder_init(&good.dec, 0, 0x7fffffffu);
    aipc_decoder_init(&evil.dec, 0, 0x7fffffffu);
    good.chunk = (flags & 8) ? 5 : 0;
    CHECK(aipc_broker_attach(b, &good.conn, 1));
    static const aipc_identity_group sys_groups[] = {{"S-1-5-32-544", 0}, {"S-1-1-0", 0}};
    static const aipc_identity_group user_groups[] = {{"S-1-5-32-545", 0}, {"S-1-5-32-544", 1}};
    static const aipc_identity sys = {"S-1-5-18", 0, 0x4000, sys_groups, 2};
    static const aipc_identity user = {"S-1-5-21-1-2-3-1001", 1, 0x2000, user_groups, 2};
    if (flags & 16)
        CHECK(aipc_client_set_identity(good.conn.client, &sys) == 0);
    good_send(b, &good, "{\"op\":\"hello\",\"proto\":1,\"name\":\"good\"}", NULL);
    good_send(b, &good, "{\"op\":\"sub\",\"topic\":\"#\"}", NULL);
    good_send(b, &good, "{\"op\":\"sub\",\"topic\":\"$bus/#\"}", NULL);

    evil.stalled = (flags & 2) != 0;
    CHECK(aipc_broker_attach(b, &evil.conn, 2));
    if (flags & 16)
        CHECK(aipc_client_set_identity(evil.conn.client, &user) == 0);

    uint8_t *buf = NULL;
    size_t len = 0, cap = 0;
    if (flags & 1) {
        const char *h = "{\"op\":\"hello\",\"proto\":1,\"name\":\"evil\"}";
        put_frame(&buf, &len, &cap, h, strlen(h), NULL, 0);
    }
    if (flags & 4) {
        build_structured(data, size, &buf, &len, &cap);
    } else if (size) {
        if (len + size > cap) {
            cap = len + size;
            buf = realloc(buf, cap);
            CHECK(buf);
        }
        memcpy(buf + len, data, size);
        len += size;
    }

    bool cut = false;
    for (size_t i = 0; i < len && !cut; i += chunk) {
        size_t n = len - i < chunk ? len - i : chunk;
        int rc = aipc_broker_input(b, evil.conn.client, buf + i, n);
        if (rc < 0)
            cut = true;                           /* engine: close now, no flush */
        fz_clock += 3;
        aipc_broker_tick(b);
        drain(&evil);
        drain(&good);
        good_reply(b, &good);
        if (evil.closes)
            break;                                /* engine: flush, then disconnect */
    }
    free(buf);
    CHECK(evil.closes <= 1);
    aipc_broker_detach(b, evil.conn.client);
    CHECK(evil.conn.client == NULL);

    /* The good client is undisturbed: it still gets its pong. */
    drain(&good);
    good_reply(b, &good);
    int before = good.pongs;
    good_send(b, &good, "{\"op\":\"ping\",\"id\":1}", NULL);
    CHECK(good.pongs == before + 1);
    CHECK(good.closes == 0);

    good.stalled = true;                          /* its bye is not checked */
    aipc_broker_shutdown(b);
    CHECK(good.closes == 1);
    aipc_broker_detach(b, good.conn.client);
    aipc_decoder_free(&good.dec);
    aipc_decoder_free(&evil.dec);
    aipc_broker_free(b);
    return 0;
}
