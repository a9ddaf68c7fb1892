/* shm.c - the shared-memory wire forms: descriptors, segment names, control metas (shm.h). */
#include "proto/shm.h"

#include <stdio.h>
#include <string.h>

#include "asyncipc/asyncipc.h"
#include "proto/shm_json.h"

/* --- the members this module reads, indexed in one pass -------------------------------------- */

enum { K_OP, K_SEG, K_NAME, K_SIZE, K_SESSION, K_ID, K_RE, K_OK, K_CODE, K_R, K_V, K_SHM, K_REL,
       K_N };
static const char *const key_names[K_N] = {"op", "seg", "name", "size", "session", "id",
                                           "re", "ok", "code", "r", "v", "shm", "rel"};

typedef struct idx {
    const char *at[K_N];   /* first value of each key */
    int n[K_N];            /* how many times it appears */
    const char *end;
} idx;

/* Checks that p[0..len) is one strict JSON object (whitespace around allowed) and records where
 * the known keys' values are. 0 or -1 (malformed). */
static int index_obj(const char *p, size_t len, idx *x)
{
    memset(x, 0, sizeof *x);
    if (!p)
        return -1;
    const char *end = p + len;
    x->end = end;
    aipc__sj_obj o;
    char key[8];
    size_t kn;
    int rc;
    if (aipc__sj_obj_open(&o, aipc__sj_ws(p, end), end) < 0)
        return -1;
    while ((rc = aipc__sj_obj_next(&o, key, sizeof key, &kn)) == 1) {
        for (int k = 0; k < K_N; k++) {
            if (kn == strlen(key_names[k]) && memcmp(key, key_names[k], kn) == 0) {
                if (x->n[k]++ == 0)
                    x->at[k] = o.p;
                break;
            }
        }
        if (!(o.p = aipc__sj_skip(o.p, end, 1)))
            return -1;
    }
    if (rc < 0 || aipc__sj_ws(o.p, end) != end)
        return -1;
    return 0;
}

/* A u32 value that must be the whole value (the index has checked the JSON already). */
static bool get_u32(const idx *x, int k, uint32_t *v)
{
    return x->n[k] == 1 && aipc__sj_u32(x->at[k], x->end, v) != NULL;
}

/* --- descriptors ------------------------------------------------------------------------------ */

size_t aipc_shm_desc_put(char *out, size_t cap, const aipc_shm_desc *d)
{
    char tmp[48];
    if (!out || !d)
        return 0;
    int n = snprintf(tmp, sizeof tmp, "\"shm\":[%lu,%lu,%lu]", (unsigned long)d->seg,
                     (unsigned long)d->off, (unsigned long)d->len);
    if (n <= 0 || (size_t)n > cap)
        return 0;
    memcpy(out, tmp, (size_t)n);
    return (size_t)n;
}

/* [a,b,...] of exactly n u32 at p; the byte after it or NULL. */
static const char *u32_array(const char *p, const char *end, uint32_t *v, int n)
{
    if (p >= end || *p != '[')
        return NULL;
    p++;
    for (int i = 0; i < n; i++) {
        p = aipc__sj_ws(p, end);
        if (!(p = aipc__sj_u32(p, end, &v[i])))
            return NULL;
        p = aipc__sj_ws(p, end);
        if (p >= end || *p++ != (i + 1 < n ? ',' : ']'))
            return NULL;
    }
    return p;
}

int aipc_shm_desc_find(const char *meta, size_t len, aipc_shm_desc *d)
{
    idx x;
    if (index_obj(meta, len, &x) < 0 || x.n[K_SHM] > 1)
        return AIPC_EPROTO;
    if (x.n[K_SHM] == 0)
        return 0;
    uint32_t v[3];
    if (!u32_array(x.at[K_SHM], x.end, v, 3))
        return AIPC_EPROTO;
    if (d) {
        d->seg = v[0];
        d->off = v[1];
        d->len = v[2];
    }
    return 1;
}

/* --- names ------------------------------------------------------------------------------------ */

/* A decimal without leading zeros in 0..UINT32_MAX at s[0..n). */
static bool dec_u32(const char *s, size_t n, uint32_t *v)
{
    if (n == 0 || n > 10 || (n > 1 && s[0] == '0'))
        return false;
    uint64_t x = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        x = x * 10 + (uint64_t)(s[i] - '0');
    }
    *v = (uint32_t)x;
    return x <= UINT32_MAX;
}

bool aipc_shm_name_valid(const char *name, size_t len)
{
    if (!name || len < 5 || len >= AIPC_SHM_NAME_BUF || memcmp(name, "aipc-", 5) != 0)
        return false;
    const char *p = name + 5, *end = name + len;
    const char *dash = memchr(p, '-', (size_t)(end - p));
    uint32_t v;
    if (!dash || !dec_u32(p, (size_t)(dash - p), &v) || v == 0)
        return false;
    p = dash + 1;
    if (end - p < 34 || p[32] != '-')
        return false;
    for (int i = 0; i < 32; i++)
        if (!((p[i] >= '0' && p[i] <= '9') || (p[i] >= 'a' && p[i] <= 'f')))
            return false;
    p += 33;
    return dec_u32(p, (size_t)(end - p), &v);
}

size_t aipc_shm_name_put(char *out, size_t cap, uint32_t pid, const uint8_t rnd[16], uint32_t seg)
{
    static const char hex[] = "0123456789abcdef";
    char h[33];
    if (!out || !rnd || pid == 0 || cap < AIPC_SHM_NAME_BUF)
        return 0;
    for (int i = 0; i < 16; i++) {
        h[2 * i] = hex[rnd[i] >> 4];
        h[2 * i + 1] = hex[rnd[i] & 15];
    }
    h[32] = 0;
    int n = snprintf(out, cap, "aipc-%lu-%s-%lu", (unsigned long)pid, h, (unsigned long)seg);
    return n > 0 ? (size_t)n : 0;
}

/* --- control metas ---------------------------------------------------------------------------- */

/* A string value decoded into buf (NUL-terminated); false when not a string or too long. */
static bool get_str(const idx *x, int k, char *buf, size_t cap)
{
    size_t n;
    if (x->n[k] != 1 || !aipc__sj_str(x->at[k], x->end, buf, cap - 1, &n) || n > cap - 1)
        return false;
    buf[n] = 0;
    return true;
}

static bool code_valid(const char *s, size_t n)
{
    if (n == 0 || n >= AIPC_SHM_CODE_BUF)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= 'a' && s[i] <= 'z') || s[i] == '_'))
            return false;
    return true;
}

static int parse_done(const idx *x, aipc_shm_ctl *c, aipc_shm_ref *refs, size_t cap)
{
    const char *p = x->at[K_R], *end = x->end;
    size_t max = cap < AIPC_SHM_DONE_MAX ? cap : AIPC_SHM_DONE_MAX;
    if (x->n[K_R] != 1 || *p != '[')
        return AIPC_EPROTO;
    p = aipc__sj_ws(p + 1, end);
    for (size_t i = 0;; i++) {
        uint32_t v[2];
        if (i == max || !(p = u32_array(p, end, v, 2)))
            return AIPC_EPROTO;
        refs[i].seg = v[0];
        refs[i].off = v[1];
        p = aipc__sj_ws(p, end);
        if (*p == ']') {                       /* the index has checked the array is closed */
            c->nrefs = i + 1;
            return 1;
        }
        if (*p != ',')
            return AIPC_EPROTO;
        p = aipc__sj_ws(p + 1, end);
    }
}

static int parse_hello(const idx *x, aipc_shm_ctl *c)
{
    if (!get_u32(x, K_V, &c->v) || c->v == 0 || x->n[K_SHM] > 1)
        return AIPC_EPROTO;
    if (x->n[K_SHM] == 0)
        return 1;
    aipc__sj_obj o;
    char key[4];
    size_t kn;
    int rc, seen = 0;
    if (aipc__sj_obj_open(&o, x->at[K_SHM], x->end) < 0)
        return AIPC_EPROTO;
    while ((rc = aipc__sj_obj_next(&o, key, sizeof key, &kn)) == 1) {
        if (kn == 1 && key[0] == 'v') {
            if (seen++ || !(o.p = aipc__sj_u32(o.p, x->end, &c->shm_v)) || c->shm_v == 0)
                return AIPC_EPROTO;
        } else if (!(o.p = aipc__sj_skip(o.p, x->end, 2))) {
            return AIPC_EPROTO;
        }
    }
    return rc == 0 && seen ? 1 : AIPC_EPROTO;
}

int aipc_shm_ctl_parse(const char *meta, size_t len, aipc_shm_ctl *c, aipc_shm_ref *refs, size_t cap)
{
    idx x;
    char op[16];
    if (!c)
        return AIPC_EPROTO;
    memset(c, 0, sizeof *c);                   /* no stale fields after a failure */
    if (index_obj(meta, len, &x) < 0 || x.n[K_OP] > 1)
        return AIPC_EPROTO;
    if (x.n[K_OP] == 0 || *x.at[K_OP] != '"' || !get_str(&x, K_OP, op, sizeof op))
        return 0;                              /* no op, not a string, or a long one: not ours */
    if (strcmp(op, "shm_seg") == 0 && x.n[K_RE] == 0) {
        c->op = AIPC_SHM_OP_SEG;
        if (!get_u32(&x, K_SEG, &c->seg) || !get_u32(&x, K_SIZE, &c->size) || c->size == 0 ||
            !get_u32(&x, K_SESSION, &c->session) || !get_u32(&x, K_ID, &c->id) ||
            !get_str(&x, K_NAME, c->name, sizeof c->name) ||
            !aipc_shm_name_valid(c->name, strlen(c->name)))
            return AIPC_EPROTO;
        if (x.n[K_REL]) {                      /* "rel":1 exactly */
            uint32_t rel;
            if (!get_u32(&x, K_REL, &rel) || rel != 1)
                return AIPC_EPROTO;
            c->rel = true;
        }
        return 1;
    }
    if (strcmp(op, "shm_seg") == 0) {
        c->op = AIPC_SHM_OP_SEG_ANSWER;
        if (x.n[K_NAME] || !get_u32(&x, K_RE, &c->id) || !get_u32(&x, K_SEG, &c->seg) ||
            x.n[K_OK] != 1 || x.n[K_CODE] > 1)
            return AIPC_EPROTO;
        const char *v = x.at[K_OK];
        if (aipc__sj_skip(v, x.end, 1) - v == 4 && memcmp(v, "true", 4) == 0)
            c->ok = true;
        else if (!(aipc__sj_skip(v, x.end, 1) - v == 5 && memcmp(v, "false", 5) == 0))
            return AIPC_EPROTO;
        if (x.n[K_CODE] && (c->ok || !get_str(&x, K_CODE, c->code, sizeof c->code) ||
                            !code_valid(c->code, strlen(c->code))))
            return AIPC_EPROTO;
        return 1;
    }
    if (strcmp(op, "shm_done") == 0) {
        c->op = AIPC_SHM_OP_DONE;
        return refs || cap == 0 ? parse_done(&x, c, refs, refs ? cap : 0) : AIPC_EPROTO;
    }
    if (strcmp(op, "shm_unseg") == 0) {
        c->op = AIPC_SHM_OP_UNSEG;
        return get_u32(&x, K_SEG, &c->seg) ? 1 : AIPC_EPROTO;
    }
    if (strcmp(op, "p2p") == 0) {
        c->op = AIPC_SHM_OP_HELLO;
        return parse_hello(&x, c);
    }
    return 0;
}

/* --- builders --------------------------------------------------------------------------------- */

static size_t fit(char *out, size_t cap, const char *tmp, int n)
{
    if (!out || n <= 0 || (size_t)n > cap)
        return 0;
    memcpy(out, tmp, (size_t)n);
    return (size_t)n;
}

static size_t seg_put(char *out, size_t cap, uint32_t seg, const char *name, uint32_t size,
                      uint32_t session, uint32_t id, bool rel)
{
    char tmp[192];
    if (!name || !aipc_shm_name_valid(name, strlen(name)) || size == 0)
        return 0;
    int n = snprintf(tmp, sizeof tmp,
                     "{\"op\":\"shm_seg\",\"seg\":%lu,\"name\":\"%s\",\"size\":%lu,\"session\":%lu,\"id\":%lu%s}",
                     (unsigned long)seg, name, (unsigned long)size, (unsigned long)session,
                     (unsigned long)id, rel ? ",\"rel\":1" : "");
    return fit(out, cap, tmp, n);
}

size_t aipc_shm_seg_put(char *out, size_t cap, uint32_t seg, const char *name, uint32_t size,
                        uint32_t session, uint32_t id)
{
    return seg_put(out, cap, seg, name, size, session, id, false);
}

size_t aipc_shm_relpage_put(char *out, size_t cap, uint32_t seg, const char *name, uint32_t size,
                            uint32_t session, uint32_t id)
{
    return seg_put(out, cap, seg, name, size, session, id, true);
}

size_t aipc_shm_answer_put(char *out, size_t cap, uint32_t re, uint32_t seg, bool ok, const char *code)
{
    char tmp[128];
    int n;
    if (ok || !code || !*code) {
        if (ok && code && *code)
            return 0;
        n = snprintf(tmp, sizeof tmp, "{\"op\":\"shm_seg\",\"re\":%lu,\"seg\":%lu,\"ok\":%s}",
                     (unsigned long)re, (unsigned long)seg, ok ? "true" : "false");
    } else {
        if (!code_valid(code, strlen(code)))
            return 0;
        n = snprintf(tmp, sizeof tmp,
                     "{\"op\":\"shm_seg\",\"re\":%lu,\"seg\":%lu,\"ok\":false,\"code\":\"%s\"}",
                     (unsigned long)re, (unsigned long)seg, code);
    }
    return fit(out, cap, tmp, n);
}

size_t aipc_shm_done_put(char *out, size_t cap, const aipc_shm_ref *r, size_t n)
{
    static const char head[] = "{\"op\":\"shm_done\",\"r\":[";
    size_t at = sizeof head - 1;
    if (!out || !r || n == 0 || n > AIPC_SHM_DONE_MAX || cap < at)
        return 0;
    memcpy(out, head, at);
    for (size_t i = 0; i < n; i++) {
        char tmp[32];
        int k = snprintf(tmp, sizeof tmp, "%s[%lu,%lu]", i ? "," : "", (unsigned long)r[i].seg,
                         (unsigned long)r[i].off);
        if (k <= 0 || cap - at < (size_t)k)
            return 0;
        memcpy(out + at, tmp, (size_t)k);
        at += (size_t)k;
    }
    if (cap - at < 2)
        return 0;
    memcpy(out + at, "]}", 2);
    return at + 2;
}

size_t aipc_shm_unseg_put(char *out, size_t cap, uint32_t seg)
{
    char tmp[48];
    int n = snprintf(tmp, sizeof tmp, "{\"op\":\"shm_unseg\",\"seg\":%lu}", (unsigned long)seg);
    return fit(out, cap, tmp, n);
}

size_t aipc_shm_hello_put(char *out, size_t cap, bool with_shm)
{
    const char *s = with_shm ? "{\"op\":\"p2p\",\"v\":1,\"shm\":{\"v\":1}}" : "{\"op\":\"p2p\",\"v\":1}";
    return fit(out, cap, s, (int)strlen(s));
}
