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

static bool is_wild(const aipc_proto_level *l, char w)
{
    return l->len == 1 && l->s[0] == w;
}

/* The levels of a topic or filter, from an array or split off a string as the matcher goes (no
 * array to fill: a mismatch in the first level costs one level's scan). */
typedef struct cursor {
    const aipc_proto_level *arr;
    const char *s;
    size_t n, pos;            /* arr: count and next index; s: length and next offset */
} cursor;

static inline bool next_level(cursor *c, aipc_proto_level *l, bool arr)
{
    if (arr) {
        if (c->pos == c->n)
            return false;
        *l = c->arr[c->pos++];
        return true;
    }
    if (c->pos > c->n)
        return false;
    const char *start = c->s + c->pos;
    const char *slash = memchr(start, '/', c->n - c->pos);
    l->s = start;
    l->len = slash ? (size_t)(slash - start) : c->n - c->pos;
    c->pos += l->len + 1;
    return true;
}

/* The one matcher, over either kind of level source (arr: a constant at each call, so the
 * compiler drops the other kind's branch). */
static inline bool match(cursor *f, cursor *t, bool arr)
{
    aipc_proto_level fl, tl;
    bool dollar = false;
    for (bool first = true;; first = false) {
        bool fh = next_level(f, &fl, arr), th = next_level(t, &tl, arr);
        if (first)
            dollar = th && tl.len > 0 && tl.s[0] == '$';
        if (!fh)
            return !th;
        if (is_wild(&fl, '#'))
            return !(first && dollar);    /* any rest, none included ("a/#" matches "a") */
        if (!th)
            return false;
        if (is_wild(&fl, '+')) {
            if (first && dollar)
                return false;
        } else if (fl.len != tl.len || memcmp(fl.s, tl.s, fl.len) != 0) {
            return false;
        }
    }
}

bool aipc_proto_match_levels(const aipc_proto_level *f, size_t nf, const aipc_proto_level *t,
                             size_t nt)
{
    cursor fc = {f, NULL, nf, 0}, tc = {t, NULL, nt, 0};
    return match(&fc, &tc, true);
}

bool aipc_proto_topic_match(const char *filter, size_t fn, const char *topic, size_t tn)
{
    if (!filter || !topic)
        return false;
    cursor fc = {NULL, filter, fn, 0}, tc = {NULL, topic, tn, 0};
    return match(&fc, &tc, false);
}
