/* router.c - one incoming frame: parse the meta (cJSON), check the common fields, and run the
 * op (hello, sub, unsub, pub, send, req, rep, ping, stats). Answers are built by outframe.c. */
#include "internal.h"

#include "asyncipc/asyncipc.h"

#include <inttypes.h>
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

/* What every op handler gets. */
typedef struct opctx {
    aipc_broker *b;
    aipc_client *c;
    const cJSON *j;
    bool has_id;
    int64_t id;
    const uint8_t *payload;
    size_t plen;
    const uint8_t *meta;      /* the frame's meta as received (for shm_client.c's parser) */
    size_t meta_len;
    bool shm_in;              /* payload is a range of the client's segment (shm_in.c) */
} opctx;

/* Reads an integer that JSON numbers carry exactly (|v| <= 2^53 - 1). */
static bool get_int(const cJSON *v, int64_t *out)
{
    if (!cJSON_IsNumber(v))
        return false;
    double d = v->valuedouble;
    if (!(d >= -AIPC_PROTO_ID_MAX_EXACT && d <= AIPC_PROTO_ID_MAX_EXACT) || floor(d) != d)
        return false;
    *out = (int64_t)d;
    return true;
}

/* The error answer for the current op. */
static void fail(opctx *x, const char *code, const char *message)
{
    aipc__send_error(x->c, x->has_id, x->id, code, message);
}

/* A required string member; NULL (and bad_request sent) when missing or not a string. */
static const char *need_str(opctx *x, const char *key, size_t *len)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(x->j, key);
    if (!cJSON_IsString(v) || !v->valuestring) {
        char msg[96];
        snprintf(msg, sizeof msg, "\"%s\" must be a string", key);
        fail(x, "bad_request", msg);
        return NULL;
    }
    *len = strlen(v->valuestring);
    return v->valuestring;
}

/* Resolves "to": a name (string) or a numeric id; only clients that said hello count. */
static aipc_client *resolve_to(opctx *x)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(x->j, "to");
    aipc_client *t = NULL;
    int64_t id;
    if (cJSON_IsString(v) && v->valuestring) {
        t = aipc_registry_find_name(x->b, v->valuestring, strlen(v->valuestring));
    } else if (get_int(v, &id)) {
        t = id > 0 ? aipc_registry_find_id(x->b, (uint64_t)id) : NULL;
    } else {
        fail(x, "bad_request", "\"to\" must be a client name or id");
        return NULL;
    }
    if (!t || t->state != AIPC_CL_READY) {
        fail(x, "no_such_client", "no client with that name or id");
        return NULL;
    }
    return t;
}

/* ---- policy ------------------------------------------------------------------------------- */

/* Counts and logs a refusal (a client's first at info, later ones at debug: a client hammering
 * the policy cannot flood the log), then answers with `code`. */
static void refuse(opctx *x, const char *code, const char *what, const char *res, size_t rlen,
                   int rule)
{
    aipc_broker *b = x->b;
    aipc_client *c = x->c;
    const aipc_identity *id = aipc_client_identity(c);
    b->st.denied++;
    char by[32];
    if (rule >= 0)
        snprintf(by, sizeof by, "rule %d", rule);
    else
        snprintf(by, sizeof by, "the default");
    aipc__logf(b, c->denied++ ? AIPC_LOG_DEBUG : AIPC_LOG_INFO,
              "policy: client %" PRIu64 " (pid %u, %s, session %u) may not %s \"%.*s\" (%s)",
              c->id, c->pid, id ? id->user_sid : "no identity", id ? (unsigned)id->session : 0u,
              what, (int)(rlen > 200 ? 200 : rlen), res, by);
    fail(x, code, rule == -2 ? "this name is reserved for another account"
                             : "the broker's policy does not allow this");
}

/* The policy's verdict on a pub or sub of `t` (true without a policy). */
static bool topic_allowed(opctx *x, unsigned op, const char *t, size_t n)
{
    if (!x->b->policy)
        return true;
    aipc_policy_verdict v =
        aipc_policy_check_topic(x->b->policy, aipc_client_identity(x->c), op, t, n);
    if (!v.allow)
        refuse(x, "forbidden", op == AIPC_POLICY_PUB ? "publish on" : "subscribe to", t, n,
               v.rule);
    return v.allow;
}

/* The policy's verdict on a send or req to client t (true without a policy). */
static bool target_allowed(opctx *x, unsigned op, const aipc_client *t)
{
    if (!x->b->policy)
        return true;
    aipc_policy_verdict v = aipc_policy_check_target(x->b->policy, aipc_client_identity(x->c),
                                                     op, t->name, aipc_client_identity(t));
    if (!v.allow) {
        char who[160];
        snprintf(who, sizeof who, "%s (id %" PRIu64 ")", t->name_len ? t->name : "anonymous",
                 t->id);
        refuse(x, "forbidden", op == AIPC_POLICY_SEND ? "send to" : "send a request to", who,
               strlen(who), v.rule);
    }
    return v.allow;
}

/* hello: proto check, optional unique name, id assignment, welcome, $bus/joined. */
static void op_hello(opctx *x)
{
    aipc_client *c = x->c;
    if (c->state == AIPC_CL_READY) {
        fail(x, "bad_request", "hello was already done");
        return;
    }
    int64_t proto;
    if (!get_int(cJSON_GetObjectItemCaseSensitive(x->j, "proto"), &proto) ||
        proto != AIPC_PROTO_VERSION) {
        fail(x, "proto_mismatch", "this broker speaks proto 1");
        return;
    }
    const cJSON *nm = cJSON_GetObjectItemCaseSensitive(x->j, "name");
    const char *name = "";
    size_t nlen = 0;
    if (nm && !cJSON_IsNull(nm)) {
        if (!cJSON_IsString(nm) || !nm->valuestring ||
            !aipc_proto_name_valid(nm->valuestring, strlen(nm->valuestring))) {
            fail(x, "bad_name", "names are 1..128 of [A-Za-z0-9._-]");
            return;
        }
        name = nm->valuestring;
        nlen = strlen(name);
        if (x->b->policy && !aipc_policy_check_name(x->b->policy, aipc_client_identity(c), name)) {
            refuse(x, "name_reserved", "take the name", name, nlen, -2);
            return;
        }
        if (aipc_registry_find_name(x->b, name, nlen)) {
            fail(x, "name_taken", "another client uses this name");
            aipc__request_close(c);
            return;
        }
    }
    if (aipc_registry_add(x->b, c, name, nlen) != 0) {
        fail(x, "internal", "out of memory");
        return;
    }
    c->state = AIPC_CL_READY;
    aipc_dq_remove(&x->b->hello_q, &c->t_hello);
    aipc_shm_negotiate(x->b, c, x->j);
    aipc__send_welcome(c, x->has_id, x->id);
    aipc__logf(x->b, AIPC_LOG_INFO, "client %" PRIu64 " (%s, pid %u) joined", c->id,
              nlen ? c->name : "anonymous", c->pid);
    aipc__presence(x->b, c, true);
}

/* The "topic" of sub/unsub, a valid filter; NULL (and bad_request or bad_topic sent) if not. */
static const char *need_filter(opctx *x, size_t *n)
{
    const char *f = need_str(x, "topic", n);
    if (f && !aipc_proto_filter_valid(f, *n)) {
        fail(x, "bad_topic", "invalid topic filter");
        return NULL;
    }
    return f;
}

/* sub: add the filter, answer ok, then deliver the retained matches. */
static void op_sub(opctx *x)
{
    size_t n;
    const char *f = need_filter(x, &n);
    if (!f)
        return;
    if (!topic_allowed(x, AIPC_POLICY_SUB, f, n))
        return;
    aipc_sub *s = NULL;
    int rc = aipc__subscribe(x->b, x->c, f, n, &s);
    if (rc == AIPC_SUB_TOO_MANY || rc == AIPC_SUB_TOO_BIG || rc == AIPC_SUB_TOTAL_FULL) {
        x->b->st.subs_refused++;
        aipc__logf(x->b, AIPC_LOG_DEBUG, "client %" PRIu64 " (pid %u): subscription refused (%s)",
                  x->c->id, x->c->pid, rc == AIPC_SUB_TOO_MANY  ? "max_subscriptions"
                                       : rc == AIPC_SUB_TOO_BIG ? "max_subscription_bytes"
                                                                : "max_total_subscription_bytes");
        fail(x, "too_many_subscriptions",
             rc == AIPC_SUB_TOO_MANY
                 ? "you hold max_subscriptions filters: unsubscribe first"
             : rc == AIPC_SUB_TOO_BIG
                 ? "your filters would take more than max_subscription_bytes: unsubscribe first"
                 : "the broker's subscriptions would take more than max_total_subscription_bytes");
        return;
    }
    if (rc != 0) {
        fail(x, "internal", "out of memory");
        return;
    }
    aipc__send_ok(x->c, x->has_id, x->id);
    aipc_retained_deliver(x->b, s);
}

/* unsub: drop the filter (not subscribed is fine). */
static void op_unsub(opctx *x)
{
    size_t n;
    const char *f = need_filter(x, &n);
    if (!f)
        return;
    aipc__unsubscribe(x->b, x->c, f, n);
    aipc__send_ok(x->c, x->has_id, x->id);
}

/* A retain refused by max_retained_bytes: the publisher gets retained_full (the publication
 * was still delivered). The operator gets one warning per episode (until a retain or clear
 * succeeds again), so a client hammering a full store cannot flood the log. */
static void retained_full(opctx *x, size_t tlen)
{
    aipc_broker *b = x->b;
    if (!b->retained_full_logged) {
        b->retained_full_logged = true;
        aipc__logf(b, AIPC_LOG_WARN,
                  "retained store full (%" PRIu64 " of max_retained_bytes %" PRIu64
                  "): client %" PRIu64 " could not retain %" PRIu64 " bytes on a %" PRIu64
                  "-byte topic", b->retained_bytes, b->cfg.max_retained_bytes, x->c->id,
                  (uint64_t)x->plen, (uint64_t)tlen);
    }
    fail(x, "retained_full",
         "the broker's retained store is full (max_retained_bytes): delivered but not retained");
}

/* The part of pub shared by the cJSON path and the fast path (pub_fast). */
static void do_pub(opctx *x, const char *t, size_t n, bool retain)
{
    if (!aipc_proto_topic_valid(t, n)) {
        fail(x, "bad_topic", "invalid topic (wildcards or a leading '$')");
        return;
    }
    if (!topic_allowed(x, AIPC_POLICY_PUB, t, n))
        return;
    int rc = aipc__publish(x->b, t, n, x->c->from, x->c->from_len, x->payload, x->plen, retain);
    if (rc == AIPC_PUB_RETAINED_FULL) {
        retained_full(x, n);
        return;
    }
    if (retain && rc == 0)
        x->b->retained_full_logged = false;
    if (rc < 0)
        fail(x, "internal", "out of memory: delivered but not retained");
    else
        aipc__send_ok(x->c, x->has_id, x->id);
}

/* pub: route to subscribers; retain stores (or clears with an empty payload). */
static void op_pub(opctx *x)
{
    size_t n;
    const char *t = need_str(x, "topic", &n);
    if (!t)
        return;
    const cJSON *r = cJSON_GetObjectItemCaseSensitive(x->j, "retain");
    if (r && !cJSON_IsBool(r)) {
        fail(x, "bad_request", "\"retain\" must be true or false");
        return;
    }
    if (x->shm_in && cJSON_IsTrue(r)) {
        fail(x, "bad_request", "a retained publication cannot come through shared memory");
        return;
    }
    do_pub(x, t, n, cJSON_IsTrue(r));
}

/* send: one direct message to a name or id. */
static void op_send(opctx *x)
{
    aipc_client *t = resolve_to(x);
    if (!t || !target_allowed(x, AIPC_POLICY_SEND, t))
        return;
    int rc = aipc_shm_deliver_one(x->b, t, "direct", x->c->from, x->c->from_len, NULL, false, 0,
                                  x->payload, x->plen);
    if (rc == AIPC_ENOMEM)
        fail(x, "internal", "out of memory");
    else if (rc != 0)
        fail(x, "queue_full", "the target's queue is full");
    else
        aipc__send_ok(x->c, x->has_id, x->id);
}

/* req: forward with the requester's id and remember it; the answer is the rep (or an error),
 * never an ok. */
static void op_req(opctx *x)
{
    if (!x->has_id) {
        fail(x, "bad_request", "req needs an integer \"id\"");
        return;
    }
    aipc_client *t = resolve_to(x);
    if (!t || !target_allowed(x, AIPC_POLICY_REQ, t))
        return;
    if (aipc_reqs_find(x->b, x->c->id, x->id)) {
        fail(x, "bad_request", "a request with this id is still pending");
        return;
    }
    if (!aipc_reqs_room(x->b, x->c)) {
        x->b->st.reqs_refused++;
        fail(x, "too_many_requests",
             "you have max_pending_requests requests waiting for an answer");
        return;
    }
    if (!aipc_reqs_total_room(x->b)) {
        x->b->st.reqs_refused++;
        fail(x, "too_many_requests",
             "the broker has max_total_pending_requests requests waiting for an answer");
        return;
    }
    if (aipc_reqs_add(x->b, x->c, t, x->id) != 0) {
        fail(x, "internal", "out of memory");
        return;
    }
    int rc = aipc_shm_deliver_one(x->b, t, "req", x->c->from, x->c->from_len, "id", true, x->id,
                                  x->payload, x->plen);
    if (rc != 0) {
        aipc_reqs_remove(x->b, aipc_reqs_find(x->b, x->c->id, x->id));
        if (rc == AIPC_ENOMEM)
            fail(x, "internal", "out of memory");
        else
            fail(x, "queue_full", "the target's queue is full");
    }
}

/* rep: forwarded only if it answers a request pending on this client. */
static void op_rep(opctx *x)
{
    int64_t to, re;
    if (!get_int(cJSON_GetObjectItemCaseSensitive(x->j, "to"), &to) ||
        !get_int(cJSON_GetObjectItemCaseSensitive(x->j, "re"), &re)) {
        fail(x, "bad_request", "rep needs integer \"to\" and \"re\"");
        return;
    }
    aipc_req *r = to > 0 ? aipc_reqs_find(x->b, (uint64_t)to, re) : NULL;
    if (!r || r->target != x->c) {
        if (to <= 0 || !aipc_registry_find_id(x->b, (uint64_t)to))
            fail(x, "no_such_client", "the requester is gone");
        else
            fail(x, "no_such_request", "no such request is pending on you");
        return;
    }
    aipc_client *req = r->requester;
    aipc_reqs_remove(x->b, r);
    if (!aipc__client_can_queue(req)) {
        fail(x, "no_such_client", "the requester is leaving");
        return;
    }
    int rc = aipc_shm_deliver_one(x->b, req, "rep", x->c->from, x->c->from_len, "re", true, re,
                                  x->payload, x->plen);
    if (rc == AIPC_ENOMEM) {
        fail(x, "internal", "out of memory");
        aipc__send_answer_error(req, re, "no_reply", "the reply was lost (out of memory)");
        return;
    }
    if (rc != 0) {
        fail(x, "queue_full", "the requester's queue is full");
        aipc__send_answer_error(req, re, "queue_full", "the reply did not fit your queue");
        return;
    }
    aipc__send_ok(x->c, x->has_id, x->id);
}

/* stats: {"op":"stats","re":id?} + the counters as a JSON payload. */
static void op_stats(opctx *x)
{
    char json[4096];
    aipc_shm_rel_drain_all(x->b);      /* shm_bytes exact: released pages applied */
    size_t n = aipc_broker_stats_json(x->b, json, sizeof json);
    if (n >= sizeof json)
        n = sizeof json - 1;
    aipc_sbuf *m = &x->b->meta;
    aipc_sbuf_reset(m);
    aipc_sbuf_lit(m, "{\"op\":\"stats\"");
    if (x->has_id) {
        aipc_sbuf_lit(m, ",\"re\":");
        aipc_sbuf_i64(m, x->id);
    }
    aipc_sbuf_lit(m, "}");
    aipc_frame *f = NULL;
    if (!m->oom)
        f = aipc__frame_make(x->b, AIPC_FK_CONTROL, m->p, m->len, (const uint8_t *)json, n);
    if (!f) {
        fail(x, "internal", "out of memory");
        return;
    }
    aipc__queue_frame(x->c, f);
    aipc__frame_unref(x->b, f);
}

/* shm_seg, shm_done, shm_unseg: shared memory's control frames (shm_client.c). */
static void op_shm(opctx *x)
{
    aipc_shm_control(x->b, x->c, x->meta, x->meta_len, x->payload, x->plen);
}

/* ping: pong. */
static void op_ping(opctx *x)
{
    aipc__send_simple(x->c, "pong", x->has_id, x->id);
}

static const struct {
    const char *name;
    void (*fn)(opctx *x);
} ops[] = {
    {"pub", op_pub},   {"sub", op_sub},     {"unsub", op_unsub}, {"send", op_send},
    {"req", op_req},   {"rep", op_rep},     {"ping", op_ping},   {"stats", op_stats},
    {"hello", op_hello},
    {"shm_seg", op_shm}, {"shm_done", op_shm}, {"shm_unseg", op_shm},
};

/* A protocol error before hello closes the connection (hello must come first). */
static void reject(opctx *x, const char *code, const char *message)
{
    fail(x, code, message);
    if (x->c->state == AIPC_CL_NEW)
        aipc__request_close(x->c);
}

/* cJSON strings are C strings: a NUL (raw or escaped as \u0000) would silently cut a name or
 * topic short, so metas carrying one are refused as a whole. */
static bool has_nul(const uint8_t *m, size_t n)
{
    if (memchr(m, 0, n))
        return true;
    for (size_t i = 0; i + 1 < n; i++) {
        if (m[i] != '\\')
            continue;
        if (m[i + 1] == 'u' && i + 5 < n && m[i + 2] == '0' && m[i + 3] == '0' &&
            m[i + 4] == '0' && m[i + 5] == '0')
            return true;
        i++;                           /* skip the escaped character (handles "\\\\") */
    }
    return false;
}

/* Parses the meta as exactly one JSON value (trailing bytes other than whitespace: invalid). */
static cJSON *parse_meta(const uint8_t *meta, size_t len)
{
    const char *end = NULL;
    cJSON *j = cJSON_ParseWithLengthOpts((const char *)meta, len, &end, 0);
    if (!j)
        return NULL;
    const char *stop = (const char *)meta + len;
    while (end && end < stop && (*end == ' ' || *end == '\t' || *end == '\r' || *end == '\n'))
        end++;
    if (end != stop) {
        cJSON_Delete(j);
        return NULL;
    }
    return j;
}

/* The fast path for the hot op (pub_meta.c): true when the frame was a pub in the common
 * shape and has been handled. */
static bool pub_fast(opctx *x, const uint8_t *meta, size_t len)
{
    aipc_pub_meta pm;
    if (!aipc__pub_meta_scan(meta, len, &pm))
        return false;
    x->has_id = pm.has_id;
    x->id = pm.id;
    do_pub(x, pm.topic, pm.tlen, pm.retain);
    return true;
}

/* Handles one frame. Returns non-zero to stop decoding this client's input (closing). */
int aipc_router_frame(aipc_broker *b, aipc_client *c, const uint8_t *meta, uint32_t meta_len,
                      const uint8_t *payload, uint32_t payload_len)
{
    b->st.msgs_in++;
    if (c->state == AIPC_CL_CLOSING || b->shutting_down)
        return 1;
    opctx x = {b, c, NULL, false, 0, payload, payload_len, meta, meta_len, false};
    cJSON *j = NULL;
    if (c->state == AIPC_CL_READY && !b->pub_fast_off && !memchr(meta, 0, meta_len) &&
        pub_fast(&x, meta, meta_len))
        goto done;
    if (has_nul(meta, meta_len)) {
        reject(&x, "bad_meta", "NUL characters are not allowed in the meta");
        goto done;
    }
    j = meta_len ? parse_meta(meta, meta_len) : NULL;
    x.j = j;
    if (!cJSON_IsObject(j)) {
        reject(&x, "bad_meta", "the meta must be a JSON object");
        goto done;
    }
    const cJSON *idv = cJSON_GetObjectItemCaseSensitive(j, "id");
    if (idv) {
        if (!get_int(idv, &x.id)) {
            reject(&x, "bad_request", "\"id\" must be an integer");
            goto done;
        }
        x.has_id = true;
    }
    const cJSON *opv = cJSON_GetObjectItemCaseSensitive(j, "op");
    const char *op = cJSON_IsString(opv) ? opv->valuestring : NULL;
    void (*fn)(opctx *) = NULL;
    for (size_t i = 0; op && i < sizeof ops / sizeof ops[0]; i++)
        if (strcmp(op, ops[i].name) == 0)
            fn = ops[i].fn;
    if (!fn) {
        reject(&x, "unknown_op", "missing or unknown \"op\"");
        goto done;
    }
    if (c->state == AIPC_CL_NEW && fn != op_hello) {
        reject(&x, "hello_required", "the first frame must be a hello");
        goto done;
    }
    if ((fn == op_pub || fn == op_send || fn == op_req || fn == op_rep) &&
        cJSON_GetObjectItemCaseSensitive(j, "shm")) {   /* the payload is in its segment */
        const char *why;
        if (aipc_shm_in_resolve(b, c, meta, meta_len, payload_len, &x.payload, &x.plen,
                                &why) != 1) {
            fail(&x, "bad_request", why);
            aipc__request_close(c);
            goto done;
        }
        x.shm_in = true;
    }
    fn(&x);
done:
    cJSON_Delete(j);
    return (c->state == AIPC_CL_CLOSING || c->kill) ? 1 : 0;
}
