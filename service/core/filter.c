/* filter.c - relations between MQTT topic filters for the policy (policy.h): does one filter
 * cover another, do two filters overlap (whether a filter matches a topic is proto/topic.h's).
 * Iterative, one pass over the levels (at most AIPC_PROTO_TOPIC_MAX_LEVELS), no allocation.
 *
 * MQTT's "$" rule applies throughout: a filter whose first level is '+' or '#' matches no topic
 * whose first level starts with '$'. */
#include "internal.h"
#include "policy.h"

#include <string.h>

/* A cursor over the '/'-separated levels of s[0..n). Exhausted when pos > n. */
typedef struct lvl {
    const char *s;
    size_t n, pos;
    const char *p;            /* current level */
    size_t len;
} lvl;

static void lvl_init(lvl *l, const char *s, size_t n)
{
    l->s = s;
    l->n = n;
    l->pos = 0;
}

/* Loads the level at pos; false when exhausted. */
static bool lvl_get(lvl *l)
{
    if (l->pos > l->n)
        return false;
    const char *start = l->s + l->pos;
    const char *slash = memchr(start, '/', l->n - l->pos);
    l->p = start;
    l->len = slash ? (size_t)(slash - start) : l->n - l->pos;
    return true;
}

static void lvl_next(lvl *l)
{
    l->pos += l->len + 1;
}

static bool is_hash(const lvl *l)
{
    return l->len == 1 && l->p[0] == '#';
}

static bool is_plus(const lvl *l)
{
    return l->len == 1 && l->p[0] == '+';
}

static bool is_wild(const lvl *l)
{
    return is_hash(l) || is_plus(l);
}

/* A literal level that a leading wildcard must not match. */
static bool is_dollar(const lvl *l)
{
    return !is_wild(l) && l->len > 0 && l->p[0] == '$';
}

static bool same(const lvl *a, const lvl *b)
{
    return a->len == b->len && memcmp(a->p, b->p, a->len) == 0;
}

bool aipc_filter_covers(const char *outer, size_t on, const char *inner, size_t in)
{
    lvl o, i;
    lvl_init(&o, outer, on);
    lvl_init(&i, inner, in);
    for (bool first = true;; first = false) {
        bool oh = lvl_get(&o), ih = lvl_get(&i);
        if (oh && is_hash(&o))
            return !(first && ih && is_dollar(&i));
        if (!oh || !ih)
            return !oh && !ih;            /* one has levels the other cannot match */
        if (is_hash(&i))
            return false;                 /* inner reaches any depth, outer does not */
        if (is_plus(&o)) {
            if (first && is_dollar(&i))
                return false;
        } else if (is_plus(&i) || !same(&o, &i)) {
            return false;
        }
        lvl_next(&o);
        lvl_next(&i);
    }
}

bool aipc_filter_overlaps(const char *a, size_t an, const char *b, size_t bn)
{
    lvl x, y;
    lvl_init(&x, a, an);
    lvl_init(&y, b, bn);
    for (bool first = true;; first = false) {
        bool xh = lvl_get(&x), yh = lvl_get(&y);
        if ((xh && is_hash(&x)) || (yh && is_hash(&y))) {
            if (first && ((xh && is_dollar(&x)) || (yh && is_dollar(&y))))
                return false;             /* the '#' side is the leading wildcard */
            return true;
        }
        if (!xh || !yh)
            return !xh && !yh;
        if (is_plus(&x) || is_plus(&y)) {
            if (first && (is_dollar(&x) || is_dollar(&y)))
                return false;
        } else if (!same(&x, &y)) {
            return false;
        }
        lvl_next(&x);
        lvl_next(&y);
    }
}
