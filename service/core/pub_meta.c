/* pub_meta.c - the fast path for the hot op: recognising a pub meta without cJSON.
 * Publications dominate the broker's work, and parsing their meta with cJSON (7 allocations,
 * key lookups by strcmp) cost about half of the routing time. aipc__pub_meta_scan recognises
 * the common shape - a flat object with the keys op (= "pub"), topic, optional retain and id,
 * each at most once, no escapes, no other keys - and the router hands it to the same do_pub.
 * Anything else (escapes, other keys, duplicates, odd numbers, NUL bytes) returns false and
 * takes the cJSON path, so the accepted language and every answer stay exactly the same. */
#include "internal.h"

#include <string.h>

static const char *skip_ws(const char *p, const char *end)
{
    while (p < end && (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n'))
        p++;
    return p;
}

/* A string without escapes or control characters: sets s and n, returns the byte after it. */
static const char *plain_str(const char *p, const char *end, const char **s, size_t *n)
{
    if (p >= end || *p != '"')
        return NULL;
    const char *q = ++p;
    while (q < end && *q != '"') {
        if (*q == '\\' || (unsigned char)*q < 0x20)
            return NULL;
        q++;
    }
    if (q >= end)
        return NULL;
    *s = p;
    *n = (size_t)(q - p);
    return q + 1;
}

/* Returns true when meta is a pub in the common shape, with its fields in *out. */
bool aipc__pub_meta_scan(const uint8_t *meta, size_t len, aipc_pub_meta *out)
{
    const char *p = (const char *)meta, *end = p + len;
    const char *t = NULL;
    size_t tn = 0;
    bool op_ok = false, have_retain = false, retain = false, have_id = false;
    int64_t id = 0;
    p = skip_ws(p, end);
    if (p >= end || *p++ != '{')
        return false;
    for (;;) {
        const char *k;
        size_t kn;
        p = skip_ws(p, end);
        if (!(p = plain_str(p, end, &k, &kn)))
            return false;
        p = skip_ws(p, end);
        if (p >= end || *p++ != ':')
            return false;
        p = skip_ws(p, end);
        if (kn == 2 && memcmp(k, "op", 2) == 0 && !op_ok) {
            const char *v;
            size_t vn;
            if (!(p = plain_str(p, end, &v, &vn)) || vn != 3 || memcmp(v, "pub", 3) != 0)
                return false;
            op_ok = true;
        } else if (kn == 5 && memcmp(k, "topic", 5) == 0 && !t) {
            if (!(p = plain_str(p, end, &t, &tn)))
                return false;
        } else if (kn == 6 && memcmp(k, "retain", 6) == 0 && !have_retain) {
            if (end - p >= 4 && memcmp(p, "true", 4) == 0) {
                retain = true;
                p += 4;
            } else if (end - p >= 5 && memcmp(p, "false", 5) == 0) {
                p += 5;
            } else {
                return false;
            }
            have_retain = true;
        } else if (kn == 2 && memcmp(k, "id", 2) == 0 && !have_id) {
            /* Plain integers of up to 15 digits only: exact in a double, as get_int wants. */
            bool neg = p < end && *p == '-';
            const char *d = neg ? p + 1 : p;
            int digits = 0;
            int64_t v = 0;
            while (d < end && *d >= '0' && *d <= '9' && digits < 16) {
                v = v * 10 + (*d++ - '0');
                digits++;
            }
            if (digits == 0 || digits > 15 || (digits > 1 && d[-digits] == '0') ||
                (d < end && (*d == '.' || *d == 'e' || *d == 'E' || (*d >= '0' && *d <= '9'))))
                return false;
            id = neg ? -v : v;
            have_id = true;
            p = d;
        } else {
            return false;
        }
        p = skip_ws(p, end);
        if (p < end && *p == ',') {
            p++;
            continue;
        }
        if (p < end && *p == '}')
            break;
        return false;
    }
    if (skip_ws(p + 1, end) != end || !op_ok || !t)
        return false;
    out->topic = t;
    out->tlen = tn;
    out->retain = retain;
    out->has_id = have_id;
    out->id = id;
    return true;
}
