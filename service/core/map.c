/* map.c - open-addressing hash maps with linear probing and backward-shift deletion.
 * Two flavours: string keys (trie children, names) and 128-bit keys (ids, subscriptions,
 * pending requests). Both grow geometrically and never allocate per lookup. */
#include "internal.h"

#include <stdlib.h>
#include <string.h>

/* FNV-1a, then a final mix: cheap for short topic levels and names. */
static uint32_t str_hash(const char *s, size_t n)
{
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < n; i++) {
        h ^= (uint8_t)s[i];
        h *= 16777619u;
    }
    h ^= h >> 15;
    h *= 0x2c1b3c6du;
    h ^= h >> 12;
    return h;
}

/* splitmix-style mixing of two 64-bit words (pointers and ids are far from uniform). */
static uint64_t pair_hash(uint64_t a, uint64_t b)
{
    uint64_t x = a * 0x9E3779B97F4A7C15ull ^ (b + 0x632BE59BD9B4E019ull);
    x ^= x >> 30;
    x *= 0xBF58476D1CE4E5B9ull;
    x ^= x >> 27;
    x *= 0x94D049BB133111EBull;
    x ^= x >> 31;
    return x;
}

/* ---- string map ------------------------------------------------------------------------ */

/* Finds the slot of key, or the empty slot where it would go. cap must be > 0. */
static uint32_t str_slot(const aipc_strmap *m, const char *key, size_t len, uint32_t h)
{
    uint32_t mask = m->cap - 1, i = h & mask;
    for (;;) {
        const aipc_strmap_ent *e = &m->ents[i];
        if (!e->val || (e->hash == h && e->len == len && memcmp(e->key, key, len) == 0))
            return i;
        i = (i + 1) & mask;
    }
}

/* Rehashes into a table twice as large (or 4 slots) to keep the load under 3/4. */
static int str_grow(aipc_strmap *m)
{
    uint32_t ncap = m->cap ? m->cap * 2 : 4;
    aipc_strmap old = *m;
    m->ents = calloc(ncap, sizeof *m->ents);
    if (!m->ents) {
        *m = old;
        return -1;
    }
    m->cap = ncap;
    for (uint32_t i = 0; i < old.cap; i++) {
        if (old.ents[i].val) {
            uint32_t s = str_slot(m, old.ents[i].key, old.ents[i].len, old.ents[i].hash);
            m->ents[s] = old.ents[i];
        }
    }
    free(old.ents);
    return 0;
}

/* Looks a key up; NULL when absent. */
void *aipc_strmap_get(const aipc_strmap *m, const char *key, size_t len)
{
    if (!m->count)
        return NULL;
    return m->ents[str_slot(m, key, len, str_hash(key, len))].val;
}

/* Inserts or replaces; key must stay valid as long as the entry exists. */
int aipc_strmap_put(aipc_strmap *m, const char *key, size_t len, void *val)
{
    if ((m->count + 1) * 4 > m->cap * 3 && str_grow(m) != 0)
        return -1;
    uint32_t h = str_hash(key, len);
    uint32_t s = str_slot(m, key, len, h);
    if (!m->ents[s].val)
        m->count++;
    m->ents[s] = (aipc_strmap_ent){key, (uint32_t)len, h, val};
    return 0;
}

/* Removes a key, shifting the following cluster back so probing stays correct. */
void *aipc_strmap_del(aipc_strmap *m, const char *key, size_t len)
{
    if (!m->count)
        return NULL;
    uint32_t mask = m->cap - 1, i = str_slot(m, key, len, str_hash(key, len));
    void *val = m->ents[i].val;
    if (!val)
        return NULL;
    uint32_t j = i;
    for (;;) {
        j = (j + 1) & mask;
        if (!m->ents[j].val)
            break;
        uint32_t home = m->ents[j].hash & mask;
        /* Move j back into the hole i unless its home lies cyclically in (i, j]. */
        if ((j > i && (home <= i || home > j)) || (j < i && (home <= i && home > j))) {
            m->ents[i] = m->ents[j];
            i = j;
        }
    }
    m->ents[i].val = NULL;
    m->count--;
    return val;
}

/* Frees the table (not the values). */
void aipc_strmap_free(aipc_strmap *m)
{
    free(m->ents);
    memset(m, 0, sizeof *m);
}

/* ---- pair map -------------------------------------------------------------------------- */

/* Finds the slot of (a, b), or the empty slot where it would go. */
static uint32_t pair_slot(const aipc_pmap *m, uint64_t a, uint64_t b)
{
    uint32_t mask = m->cap - 1, i = (uint32_t)pair_hash(a, b) & mask;
    for (;;) {
        const aipc_pmap_ent *e = &m->ents[i];
        if (!e->val || (e->a == a && e->b == b))
            return i;
        i = (i + 1) & mask;
    }
}

/* Rehashes into a table twice as large (or 8 slots). */
static int pair_grow(aipc_pmap *m)
{
    uint32_t ncap = m->cap ? m->cap * 2 : 8;
    aipc_pmap old = *m;
    m->ents = calloc(ncap, sizeof *m->ents);
    if (!m->ents) {
        *m = old;
        return -1;
    }
    m->cap = ncap;
    for (uint32_t i = 0; i < old.cap; i++)
        if (old.ents[i].val)
            m->ents[pair_slot(m, old.ents[i].a, old.ents[i].b)] = old.ents[i];
    free(old.ents);
    return 0;
}

/* Looks (a, b) up; NULL when absent. */
void *aipc_pmap_get(const aipc_pmap *m, uint64_t a, uint64_t b)
{
    if (!m->count)
        return NULL;
    return m->ents[pair_slot(m, a, b)].val;
}

void **aipc_pmap_ref(aipc_pmap *m, uint64_t a, uint64_t b)
{
    if (!m->count)
        return NULL;
    aipc_pmap_ent *e = &m->ents[pair_slot(m, a, b)];
    return e->val ? &e->val : NULL;
}

/* Inserts or replaces (a, b). */
int aipc_pmap_put(aipc_pmap *m, uint64_t a, uint64_t b, void *val)
{
    if ((m->count + 1) * 4 > m->cap * 3 && pair_grow(m) != 0)
        return -1;
    uint32_t s = pair_slot(m, a, b);
    if (!m->ents[s].val)
        m->count++;
    m->ents[s] = (aipc_pmap_ent){a, b, val};
    return 0;
}

/* Removes (a, b) with backward shifting; returns the value or NULL. */
void *aipc_pmap_del(aipc_pmap *m, uint64_t a, uint64_t b)
{
    if (!m->count)
        return NULL;
    uint32_t mask = m->cap - 1, i = pair_slot(m, a, b);
    void *val = m->ents[i].val;
    if (!val)
        return NULL;
    uint32_t j = i;
    for (;;) {
        j = (j + 1) & mask;
        if (!m->ents[j].val)
            break;
        uint32_t home = (uint32_t)pair_hash(m->ents[j].a, m->ents[j].b) & mask;
        if ((j > i && (home <= i || home > j)) || (j < i && (home <= i && home > j))) {
            m->ents[i] = m->ents[j];
            i = j;
        }
    }
    m->ents[i].val = NULL;
    m->count--;
    return val;
}

/* Frees the table (not the values). */
void aipc_pmap_free(aipc_pmap *m)
{
    free(m->ents);
    memset(m, 0, sizeof *m);
}
