/* shm_json.c - the strict JSON scanner of the shared-memory metas (shm_json.h). */
#include "proto/shm_json.h"

#include <string.h>

const char *aipc__sj_ws(const char *p, const char *end)
{
    while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r'))
        p++;
    return p;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Four hex digits at p (p + 4 <= end checked by the caller); -1 when not hex. */
static long hex4(const char *p)
{
    long v = 0;
    for (int i = 0; i < 4; i++) {
        int h = hexval(p[i]);
        if (h < 0)
            return -1;
        v = v * 16 + h;
    }
    return v;
}

static void put(char *buf, size_t cap, size_t *n, unsigned char c)
{
    if (*n < cap)
        buf[*n] = (char)c;
    (*n)++;
}

const char *aipc__sj_str(const char *p, const char *end, char *buf, size_t cap, size_t *n)
{
    *n = 0;
    if (p >= end || *p != '"')
        return NULL;
    p++;
    while (p < end) {
        unsigned char c = (unsigned char)*p++;
        if (c == '"')
            return p;
        if (c < 0x20)
            return NULL;
        if (c != '\\') {
            put(buf, cap, n, c);
            continue;
        }
        if (p >= end)
            return NULL;
        c = (unsigned char)*p++;
        switch (c) {
        case '"': case '\\': case '/': put(buf, cap, n, c); break;
        case 'b': put(buf, cap, n, '\b'); break;
        case 'f': put(buf, cap, n, '\f'); break;
        case 'n': put(buf, cap, n, '\n'); break;
        case 'r': put(buf, cap, n, '\r'); break;
        case 't': put(buf, cap, n, '\t'); break;
        case 'u': {
            if (end - p < 4)
                return NULL;
            long u = hex4(p);
            p += 4;
            if (u <= 0 || (u >= 0xDC00 && u <= 0xDFFF))
                return NULL;                  /* \u0000, a lone low surrogate, or not hex */
            if (u >= 0xD800 && u <= 0xDBFF) {
                if (end - p < 6 || p[0] != '\\' || p[1] != 'u')
                    return NULL;
                long lo = hex4(p + 2);
                if (lo < 0xDC00 || lo > 0xDFFF)
                    return NULL;
                p += 6;
                u = 0x10000 + ((u - 0xD800) << 10) + (lo - 0xDC00);
            }
            if (u < 0x80) {
                put(buf, cap, n, (unsigned char)u);
            } else if (u < 0x800) {
                put(buf, cap, n, (unsigned char)(0xC0 | (u >> 6)));
                put(buf, cap, n, (unsigned char)(0x80 | (u & 0x3F)));
            } else if (u < 0x10000) {
                put(buf, cap, n, (unsigned char)(0xE0 | (u >> 12)));
                put(buf, cap, n, (unsigned char)(0x80 | ((u >> 6) & 0x3F)));
                put(buf, cap, n, (unsigned char)(0x80 | (u & 0x3F)));
            } else {
                put(buf, cap, n, (unsigned char)(0xF0 | (u >> 18)));
                put(buf, cap, n, (unsigned char)(0x80 | ((u >> 12) & 0x3F)));
                put(buf, cap, n, (unsigned char)(0x80 | ((u >> 6) & 0x3F)));
                put(buf, cap, n, (unsigned char)(0x80 | (u & 0x3F)));
            }
            break;
        }
        default:
            return NULL;
        }
    }
    return NULL;
}

/* A number token per RFC 8259, at most 63 characters. */
static const char *number(const char *p, const char *end)
{
    const char *s = p;
    if (p < end && *p == '-')
        p++;
    if (p >= end)
        return NULL;
    if (*p == '0') {
        p++;
    } else if (*p >= '1' && *p <= '9') {
        while (p < end && *p >= '0' && *p <= '9')
            p++;
    } else {
        return NULL;
    }
    if (p < end && *p == '.') {
        p++;
        if (p >= end || *p < '0' || *p > '9')
            return NULL;
        while (p < end && *p >= '0' && *p <= '9')
            p++;
    }
    if (p < end && (*p == 'e' || *p == 'E')) {
        p++;
        if (p < end && (*p == '+' || *p == '-'))
            p++;
        if (p >= end || *p < '0' || *p > '9')
            return NULL;
        while (p < end && *p >= '0' && *p <= '9')
            p++;
    }
    return p - s <= 63 ? p : NULL;
}

const char *aipc__sj_u32(const char *p, const char *end, uint32_t *v)
{
    const char *q = number(p, end);
    if (!q || *p == '-' || q - p > 10)
        return NULL;
    uint64_t x = 0;
    for (const char *d = p; d < q; d++) {
        if (*d < '0' || *d > '9')
            return NULL;                      /* a fraction or an exponent */
        x = x * 10 + (uint64_t)(*d - '0');
    }
    if (x > UINT32_MAX)
        return NULL;
    *v = (uint32_t)x;
    return q;
}

static const char *lit(const char *p, const char *end, const char *w)
{
    size_t n = strlen(w);
    return (size_t)(end - p) >= n && memcmp(p, w, n) == 0 ? p + n : NULL;
}

const char *aipc__sj_skip(const char *p, const char *end, int depth)
{
    if (p >= end || depth > AIPC__SJ_DEPTH)
        return NULL;
    switch (*p) {
    case '"': {
        size_t n;
        return aipc__sj_str(p, end, NULL, 0, &n);
    }
    case '{': {
        aipc__sj_obj o;
        char k[1];
        size_t kn;
        int rc;
        if (aipc__sj_obj_open(&o, p, end) < 0)
            return NULL;
        while ((rc = aipc__sj_obj_next(&o, k, 0, &kn)) == 1)
            if (!(o.p = aipc__sj_skip(o.p, end, depth + 1)))
                return NULL;
        return rc == 0 ? o.p : NULL;
    }
    case '[':
        p = aipc__sj_ws(p + 1, end);
        if (p < end && *p == ']')
            return p + 1;
        for (;;) {
            if (!(p = aipc__sj_skip(p, end, depth + 1)))
                return NULL;
            p = aipc__sj_ws(p, end);
            if (p >= end)
                return NULL;
            if (*p == ']')
                return p + 1;
            if (*p++ != ',')
                return NULL;
            p = aipc__sj_ws(p, end);
        }
    case 't': return lit(p, end, "true");
    case 'f': return lit(p, end, "false");
    case 'n': return lit(p, end, "null");
    default: return number(p, end);
    }
}

int aipc__sj_obj_open(aipc__sj_obj *o, const char *p, const char *end)
{
    o->end = end;
    o->state = 0;
    o->p = p;
    if (p >= end || *p != '{')
        return -1;
    o->p = p + 1;
    return 0;
}

int aipc__sj_obj_next(aipc__sj_obj *o, char *key, size_t cap, size_t *kn)
{
    const char *p = aipc__sj_ws(o->p, o->end), *end = o->end;
    if (o->state == 2 || p >= end)
        return -1;
    if (o->state == 0 && *p == '}') {
        o->p = p + 1;
        o->state = 2;
        return 0;
    }
    if (o->state == 1) {
        if (*p == '}') {
            o->p = p + 1;
            o->state = 2;
            return 0;
        }
        if (*p != ',')
            return -1;
        p = aipc__sj_ws(p + 1, end);
    }
    if (!(p = aipc__sj_str(p, end, key, cap, kn)))
        return -1;
    p = aipc__sj_ws(p, end);
    if (p >= end || *p != ':')
        return -1;
    o->p = aipc__sj_ws(p + 1, end);
    o->state = 1;
    return 1;
}
