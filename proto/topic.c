/* topic.c - topic and filter validity and the one MQTT matcher (see topic.h). Portable C11. */
#include "proto/topic.h"

#include <stdint.h>
#include <string.h>

bool aipc_proto_utf8_valid(const char *s, size_t n)
{
    const uint8_t *p = (const uint8_t *)s, *e = p + n;
    while (p < e) {
        uint8_t c = *p;
        if (c < 0x80) {
            p++;
            continue;
        }
        size_t k;
        uint32_t cp;
        if (c >= 0xC2 && c <= 0xDF) { k = 1; cp = c & 0x1F; }
        else if (c >= 0xE0 && c <= 0xEF) { k = 2; cp = c & 0x0F; }
        else if (c >= 0xF0 && c <= 0xF4) { k = 3; cp = c & 0x07; }
        else return false;
        if ((size_t)(e - p) <= k)
            return false;
        for (size_t i = 1; i <= k; i++) {
            if ((p[i] & 0xC0) != 0x80)
                return false;
            cp = (cp << 6) | (p[i] & 0x3F);
        }
        if ((k == 2 && cp < 0x800) || (k == 3 && (cp < 0x10000 || cp > 0x10FFFF)) ||
            (cp >= 0xD800 && cp <= 0xDFFF))
            return false;
        p += k + 1;
    }
    return true;
}

/* What topics and filters share: length, UTF-8, no control characters, level count. */
static bool common_valid(const char *t, size_t n)
{
    if (!t || n == 0 || n > AIPC_PROTO_TOPIC_MAX_BYTES || !aipc_proto_utf8_valid(t, n))
        return false;
    size_t levels = 1;
    for (size_t i = 0; i < n; i++) {
        if ((uint8_t)t[i] < 0x20)
            return false;
        if (t[i] == '/' && ++levels > AIPC_PROTO_TOPIC_MAX_LEVELS)
            return false;
    }
    return true;
}

bool aipc_proto_topic_valid(const char *t, size_t n)
{
    if (!common_valid(t, n) || t[0] == '$')
        return false;
    return !memchr(t, '+', n) && !memchr(t, '#', n);
}

bool aipc_proto_filter_valid(const char *f, size_t n)
{
    if (!common_valid(f, n))
        return false;
    size_t start = 0;
    for (size_t i = 0; i <= n; i++) {
        if (i < n && f[i] != '/')
            continue;
        size_t len = i - start;
        const char *lvl = f + start;
        if (memchr(lvl, '+', len) || memchr(lvl, '#', len)) {
            if (len != 1)
                return false;             /* a wildcard is a whole level */
            if (lvl[0] == '#' && i != n)
                return false;             /* '#' only last */
        }
        start = i + 1;
    }
    return true;
}

size_t aipc_proto_levels(const char *s, size_t n, aipc_proto_level *out, size_t cap)
{
    size_t k = 0, start = 0;
    for (size_t i = 0; i <= n; i++) {
        if (i < n && s[i] != '/')
            continue;
        if (k == cap)
            return 0;
        out[k].s = s + start;
        out[k].len = i - start;
        k++;
        start = i + 1;
    }
    return k;
}

static bool is_wild(const aipc_proto_level *l, char w)
{
    return l->len == 1 && l->s[0] == w;
}

bool aipc_proto_match_levels(const aipc_proto_level *f, size_t nf, const aipc_proto_level *t,
                             size_t nt)
{
    bool dollar = nt > 0 && t[0].len > 0 && t[0].s[0] == '$';
    for (size_t i = 0;; i++) {
        if (i == nf)
            return i == nt;
        if (is_wild(&f[i], '#'))
            return !(i == 0 && dollar);   /* any rest, none included ("a/#" matches "a") */
        if (i == nt)
            return false;
        if (is_wild(&f[i], '+')) {
            if (i == 0 && dollar)
                return false;
        } else if (f[i].len != t[i].len || memcmp(f[i].s, t[i].s, f[i].len) != 0) {
            return false;
        }
    }
}

bool aipc_proto_topic_match(const char *filter, size_t fn, const char *topic, size_t tn)
{
    aipc_proto_level f[AIPC_PROTO_TOPIC_MAX_LEVELS], t[AIPC_PROTO_TOPIC_MAX_LEVELS];
    if (!filter || !topic)
        return false;
    size_t nf = aipc_proto_levels(filter, fn, f, AIPC_PROTO_TOPIC_MAX_LEVELS);
    size_t nt = aipc_proto_levels(topic, tn, t, AIPC_PROTO_TOPIC_MAX_LEVELS);
    return nf && nt && aipc_proto_match_levels(f, nf, t, nt);
}
