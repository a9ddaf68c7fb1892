/*
 * shm_json.h - a strict, allocation-free JSON scanner for the shared-memory metas (proto/shm.c).
 * Internal to proto/ (aipc__sj_ prefix). Pure functions over [p, end): safe on any bytes.
 *
 * Accepted language: RFC 8259 JSON with these restrictions, each of which cJSON 1.7 either
 * shares or is laxer about (so whatever is accepted here, cJSON parses to the same values;
 * tests/fuzz/fuzz_shm_meta.c checks it):
 *   - no NUL character, raw or escaped (\u0000), no lone or reversed UTF-16 surrogate escapes;
 *   - number tokens of at most 63 characters (cJSON reads at most 63);
 *   - nesting depth at most AIPC__SJ_DEPTH;
 *   - bytes >= 0x80 in strings are passed through (not checked as UTF-8: cJSON does not check).
 */
#ifndef AIPC_PROTO_SHM_JSON_H
#define AIPC_PROTO_SHM_JSON_H

#include <stddef.h>
#include <stdint.h>

#define AIPC__SJ_DEPTH 32

/* Skips JSON whitespace (space, tab, LF, CR). */
const char *aipc__sj_ws(const char *p, const char *end);
/* Skips one value (p at its first byte); the byte after it, or NULL when malformed. */
const char *aipc__sj_skip(const char *p, const char *end, int depth);
/* Reads a string (p at '"'), decoding escapes into buf (at most cap bytes kept, no NUL added);
 * *n is the decoded length (> cap when it did not fit). The byte after it, or NULL. */
const char *aipc__sj_str(const char *p, const char *end, char *buf, size_t cap, size_t *n);
/* Reads a plain non-negative integer <= UINT32_MAX (no sign, fraction or exponent); the byte
 * after it, or NULL for anything else (another number, another value, malformed). */
const char *aipc__sj_u32(const char *p, const char *end, uint32_t *v);

/* Object members, one at a time:
 *     aipc__sj_obj o; if (aipc__sj_obj_open(&o, p, end) < 0) fail;
 *     while ((rc = aipc__sj_obj_next(&o, key, sizeof key, &kn)) == 1) {
 *         ... read the value at o.p, then set o.p to the byte after it ...
 *     }
 *     rc == 0: o.p is after the closing '}'; rc < 0: malformed. */
typedef struct aipc__sj_obj {
    const char *p, *end;
    int state;   /* 0 before the first member, 1 after a member's value, 2 closed */
} aipc__sj_obj;
int aipc__sj_obj_open(aipc__sj_obj *o, const char *p, const char *end);
int aipc__sj_obj_next(aipc__sj_obj *o, char *key, size_t cap, size_t *kn);

#endif
