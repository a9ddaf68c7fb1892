/* fuzz_shm_meta.c - differential libFuzzer target: the shared-memory meta parsers (proto/shm.h)
 * against cJSON.
 *
 * The input is one frame's meta. aipc_shm_desc_find and aipc_shm_ctl_parse read it with their
 * own strict scanner; cJSON parses it too, and the same rules (shm.h) are applied to cJSON's tree
 * here (expect_desc, expect_ctl). Checked:
 *   - whatever the scanner accepts (1 or 0) cJSON parses as an object, and the tree gives the
 *     same answer and the same values (the scanner is never laxer than cJSON);
 *   - when cJSON parses an object, its strict reprint (cJSON_PrintUnformatted) gives exactly the
 *     tree's answer, malformed included (where the scanner is stricter than cJSON - escapes,
 *     "1.0", surrogates - the reprint removes the difference, so every rule is compared);
 *   - the builders' output, with values taken from the input, parses back to those values.
 * ASan/UBSan catch out-of-bounds reads and leaks. Seeds: corpus/fuzz_shm_meta. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "asyncipc/asyncipc.h"
#include "proto/shm.h"
#include "proto/shm_json.h"

#define CHECK(cond)                                                                           \
    do {                                                                                      \
        if (!(cond)) {                                                                        \
            fprintf(stderr, "fuzz_shm_meta: check failed: %s (line %d)\n", #cond, __LINE__); \
            abort();                                                                          \
        }                                                                                     \
    } while (0)

static int depth_of(const cJSON *j)
{
    int d = 0;
    for (const cJSON *c = j->child; c; c = c->next) {
        int k = 1 + depth_of(c);
        d = k > d ? k : d;
    }
    return d;
}

static int count(const cJSON *o, const char *key, const cJSON **first)
{
    int n = 0;
    *first = NULL;
    for (const cJSON *c = o->child; c; c = c->next) {
        if (c->string && strcmp(c->string, key) == 0 && n++ == 0)
            *first = c;
    }
    return n;
}

static int u32_of(const cJSON *v, uint32_t *out)
{
    if (!cJSON_IsNumber(v))
        return 0;
    double d = v->valuedouble;
    if (signbit(d))                       /* -0 too: cJSON prints it "-0", and "no sign" is a rule */
        return 0;
    if (!(d >= 0 && d <= 4294967295.0) || floor(d) != d)
        return 0;
    *out = (uint32_t)d;
    return 1;
}

/* The one member `key`, a u32. */
static int member_u32(const cJSON *o, const char *key, uint32_t *out)
{
    const cJSON *v;
    return count(o, key, &v) == 1 && u32_of(v, out);
}

static int u32_array(const cJSON *a, uint32_t *v, int n)
{
    if (!cJSON_IsArray(a) || cJSON_GetArraySize(a) != n)
        return 0;
    int i = 0;
    for (const cJSON *c = a->child; c; c = c->next)
        if (!u32_of(c, &v[i++]))
            return 0;
    return 1;
}

static int well_formed(const cJSON *j)
{
    return j && cJSON_IsObject(j) && depth_of(j) <= AIPC__SJ_DEPTH;
}

static int expect_desc(const cJSON *j, aipc_shm_desc *d)
{
    const cJSON *v;
    if (!well_formed(j))
        return AIPC_EPROTO;
    int n = count(j, "shm", &v);
    if (n == 0)
        return 0;
    uint32_t x[3];
    if (n > 1 || !u32_array(v, x, 3))
        return AIPC_EPROTO;
    *d = (aipc_shm_desc){x[0], x[1], x[2]};
    return 1;
}

static int code_ok(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n >= AIPC_SHM_CODE_BUF)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= 'a' && s[i] <= 'z') || s[i] == '_'))
            return 0;
    return 1;
}

static int expect_ctl(const cJSON *j, aipc_shm_ctl *c, aipc_shm_ref *refs, size_t cap)
{
    const cJSON *op, *v;
    memset(c, 0, sizeof *c);
    if (!well_formed(j))
        return AIPC_EPROTO;
    int nop = count(j, "op", &op);
    if (nop > 1)
        return AIPC_EPROTO;
    if (nop == 0 || !cJSON_IsString(op) || strlen(op->valuestring) > 15)
        return 0;
    const char *s = op->valuestring;
    if (strcmp(s, "shm_seg") == 0 && count(j, "re", &v) == 0) {
        c->op = AIPC_SHM_OP_SEG;
        if (!member_u32(j, "seg", &c->seg) || !member_u32(j, "size", &c->size) || c->size == 0 ||
            !member_u32(j, "session", &c->session) || !member_u32(j, "id", &c->id) ||
            count(j, "name", &v) != 1 || !cJSON_IsString(v) ||
            strlen(v->valuestring) >= AIPC_SHM_NAME_BUF ||
            !aipc_shm_name_valid(v->valuestring, strlen(v->valuestring)))
            return AIPC_EPROTO;
        strcpy(c->name, v->valuestring);
        int nr = count(j, "rel", &v);
        uint32_t rel;
        if (nr > 1 || (nr == 1 && (!u32_of(v, &rel) || rel != 1)))
            return AIPC_EPROTO;
        c->rel = nr == 1;
        return 1;
    }
    if (strcmp(s, "shm_seg") == 0) {
        c->op = AIPC_SHM_OP_SEG_ANSWER;
        if (count(j, "name", &v) || !member_u32(j, "re", &c->id) || !member_u32(j, "seg", &c->seg) ||
            count(j, "ok", &v) != 1 || !cJSON_IsBool(v))
            return AIPC_EPROTO;
        c->ok = cJSON_IsTrue(v);
        int nc = count(j, "code", &v);
        if (nc > 1 || (nc == 1 && (c->ok || !cJSON_IsString(v) || !code_ok(v->valuestring))))
            return AIPC_EPROTO;
        if (nc == 1)
            strcpy(c->code, v->valuestring);
        return 1;
    }
    if (strcmp(s, "shm_done") == 0) {
        c->op = AIPC_SHM_OP_DONE;
        if (count(j, "r", &v) != 1 || !cJSON_IsArray(v))
            return AIPC_EPROTO;
        size_t n = (size_t)cJSON_GetArraySize(v);
        if (n == 0 || n > cap || n > AIPC_SHM_DONE_MAX)
            return AIPC_EPROTO;
        size_t i = 0;
        for (const cJSON *e = v->child; e; e = e->next, i++) {
            uint32_t x[2];
            if (!u32_array(e, x, 2))
                return AIPC_EPROTO;
            refs[i] = (aipc_shm_ref){x[0], x[1]};
        }
        c->nrefs = n;
        return 1;
    }
    if (strcmp(s, "shm_unseg") == 0) {
        c->op = AIPC_SHM_OP_UNSEG;
        return member_u32(j, "seg", &c->seg) ? 1 : AIPC_EPROTO;
    }
    if (strcmp(s, "p2p") == 0) {
        c->op = AIPC_SHM_OP_HELLO;
        if (!member_u32(j, "v", &c->v) || c->v == 0)
            return AIPC_EPROTO;
        int ns = count(j, "shm", &v);
        if (ns == 0)
            return 1;
        if (ns > 1 || !cJSON_IsObject(v) || !member_u32(v, "v", &c->shm_v) || c->shm_v == 0)
            return AIPC_EPROTO;
        return 1;
    }
    return 0;
}

static void same_ctl(const aipc_shm_ctl *a, const aipc_shm_ref *ra, const aipc_shm_ctl *b,
                     const aipc_shm_ref *rb)
{
    CHECK(a->op == b->op);
    CHECK(a->seg == b->seg && a->id == b->id && a->size == b->size && a->session == b->session);
    CHECK(a->rel == b->rel);
    CHECK(strcmp(a->name, b->name) == 0 && strcmp(a->code, b->code) == 0 && a->ok == b->ok);
    CHECK(a->v == b->v && a->shm_v == b->shm_v && a->nrefs == b->nrefs);
    CHECK(memcmp(ra, rb, a->nrefs * sizeof *ra) == 0);
}

/* Ours on text[0..n) must give exactly what the tree gives. */
static void agree_exactly(const char *text, size_t n, const cJSON *j)
{
    static aipc_shm_ref r1[AIPC_SHM_DONE_MAX], r2[AIPC_SHM_DONE_MAX];
    aipc_shm_desc d1 = {0}, d2 = {0};
    int a = aipc_shm_desc_find(text, n, &d1), b = expect_desc(j, &d2);
    CHECK(a == b);
    CHECK(a != 1 || memcmp(&d1, &d2, sizeof d1) == 0);
    aipc_shm_ctl c1, c2;
    a = aipc_shm_ctl_parse(text, n, &c1, r1, AIPC_SHM_DONE_MAX);
    b = expect_ctl(j, &c2, r2, AIPC_SHM_DONE_MAX);
    CHECK(a == b);
    if (a == 1)
        same_ctl(&c1, r1, &c2, r2);
}

static uint32_t rd32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* Builders -> parsers with values from the input. */
static void builders(const uint8_t *data, size_t size)
{
    if (size < 32)
        return;
    char m[4096];
    aipc_shm_desc d = {rd32(data), rd32(data + 4), rd32(data + 8)}, back;
    m[0] = '{';
    size_t n = aipc_shm_desc_put(m + 1, sizeof m - 2, &d);
    CHECK(n > 0);
    m[n + 1] = '}';
    CHECK(aipc_shm_desc_find(m, n + 2, &back) == 1 && memcmp(&d, &back, sizeof d) == 0);
    char name[AIPC_SHM_NAME_BUF];
    uint32_t pid = rd32(data + 12) | 1;
    CHECK(aipc_shm_name_put(name, sizeof name, pid, data + 16, d.seg) > 0);
    aipc_shm_ctl c;
    aipc_shm_ref refs[AIPC_SHM_DONE_MAX];
    n = aipc_shm_seg_put(m, sizeof m, d.seg, name, d.len | 1, d.off, pid);
    CHECK(n > 0 && aipc_shm_ctl_parse(m, n, &c, NULL, 0) == 1);
    CHECK(c.op == AIPC_SHM_OP_SEG && c.seg == d.seg && c.size == (d.len | 1) && c.session == d.off &&
          c.id == pid && strcmp(c.name, name) == 0 && !c.rel);
    n = aipc_shm_relpage_put(m, sizeof m, d.seg, name, d.len | 1, d.off, pid);
    CHECK(n > 0 && aipc_shm_ctl_parse(m, n, &c, NULL, 0) == 1);
    CHECK(c.op == AIPC_SHM_OP_SEG && c.seg == d.seg && c.size == (d.len | 1) && c.session == d.off &&
          c.id == pid && strcmp(c.name, name) == 0 && c.rel);
    size_t k = 1 + data[0] % AIPC_SHM_DONE_MAX;
    aipc_shm_ref r[AIPC_SHM_DONE_MAX];
    for (size_t i = 0; i < k; i++)
        r[i] = (aipc_shm_ref){rd32(data + (i % 7) * 4) + (uint32_t)i, rd32(data + 28) ^ (uint32_t)i};
    n = aipc_shm_done_put(m, sizeof m, r, k);
    CHECK(n > 0 && aipc_shm_ctl_parse(m, n, &c, refs, AIPC_SHM_DONE_MAX) == 1);
    CHECK(c.op == AIPC_SHM_OP_DONE && c.nrefs == k && memcmp(refs, r, k * sizeof r[0]) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static aipc_shm_ref r1[AIPC_SHM_DONE_MAX], r2[AIPC_SHM_DONE_MAX];
    const char *text = (const char *)data;
    char *buf = malloc(size + 1);
    CHECK(buf);
    memcpy(buf, data, size);
    buf[size] = 0;
    cJSON *j = cJSON_ParseWithLengthOpts(buf, size + 1, NULL, 1);

    /* Whatever ours accepts, cJSON parses to the same answer. */
    aipc_shm_desc d1 = {0}, d2 = {0};
    int a = aipc_shm_desc_find(text, size, &d1);
    CHECK(a == 1 || a == 0 || a == AIPC_EPROTO);
    if (a != AIPC_EPROTO) {
        CHECK(j && expect_desc(j, &d2) == a);
        CHECK(a == 0 || memcmp(&d1, &d2, sizeof d1) == 0);
    }
    aipc_shm_ctl c1, c2;
    a = aipc_shm_ctl_parse(text, size, &c1, r1, AIPC_SHM_DONE_MAX);
    CHECK(a == 1 || a == 0 || a == AIPC_EPROTO);
    if (a != AIPC_EPROTO) {
        CHECK(j && expect_ctl(j, &c2, r2, AIPC_SHM_DONE_MAX) == a);
        if (a == 1)
            same_ctl(&c1, r1, &c2, r2);
    }
    /* cJSON's strict reprint: every rule compared. */
    if (j && cJSON_IsObject(j)) {
        char *p = cJSON_PrintUnformatted(j);
        if (p) {
            agree_exactly(p, strlen(p), j);
            cJSON_free(p);
        }
    }
    cJSON_Delete(j);
    free(buf);
    builders(data, size);
    return 0;
}
