/* sbuf.c - a growable byte buffer and the JSON writers used to build outgoing metas.
 * Hand-written writers instead of cJSON_Print: no tree, no per-field allocation. */
#include "internal.h"

#include <stdlib.h>
#include <string.h>

/* Empties the buffer, keeping its memory for the next meta. */
void aipc_sbuf_reset(aipc_sbuf *s)
{
    s->len = 0;
    s->oom = false;
}

/* Releases the memory. */
void aipc_sbuf_free(aipc_sbuf *s)
{
    free(s->p);
    memset(s, 0, sizeof *s);
}

/* Makes room for n more bytes (plus a NUL), growing geometrically. */
static bool reserve(aipc_sbuf *s, size_t n)
{
    if (s->oom)
        return false;
    if (s->len + n + 1 <= s->cap)
        return true;
    size_t ncap = s->cap ? s->cap : 256;
    while (ncap < s->len + n + 1)
        ncap *= 2;
    char *p = realloc(s->p, ncap);
    if (!p) {
        s->oom = true;
        return false;
    }
    s->p = p;
    s->cap = ncap;
    return true;
}

/* Appends raw bytes. */
void aipc_sbuf_add(aipc_sbuf *s, const char *data, size_t n)
{
    if (!reserve(s, n))
        return;
    memcpy(s->p + s->len, data, n);
    s->len += n;
    s->p[s->len] = 0;
}

/* Appends a C string literal/fragment. */
void aipc_sbuf_lit(aipc_sbuf *s, const char *cstr)
{
    aipc_sbuf_add(s, cstr, strlen(cstr));
}

/* Appends an unsigned decimal without going through printf. */
void aipc_sbuf_u64(aipc_sbuf *s, uint64_t v)
{
    char tmp[24];
    int i = (int)sizeof tmp;
    do {
        tmp[--i] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    aipc_sbuf_add(s, tmp + i, sizeof tmp - (size_t)i);
}

/* Appends a signed decimal (ids echoed back as "re"). */
void aipc_sbuf_i64(aipc_sbuf *s, int64_t v)
{
    if (v < 0) {
        aipc_sbuf_add(s, "-", 1);
        aipc_sbuf_u64(s, (uint64_t)0 - (uint64_t)v);
    } else {
        aipc_sbuf_u64(s, (uint64_t)v);
    }
}

/* Appends a JSON string: quotes, backslash and control characters escaped; bytes >= 0x80 are
 * copied as they are (callers validated UTF-8 for anything that came from a client). */
void aipc_sbuf_jstr(aipc_sbuf *s, const char *str, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    aipc_sbuf_add(s, "\"", 1);
    size_t run = 0;
    for (size_t i = 0; i < n; i++) {
        uint8_t ch = (uint8_t)str[i];
        if (ch >= 0x20 && ch != '"' && ch != '\\')
            continue;
        aipc_sbuf_add(s, str + run, i - run);
        run = i + 1;
        char esc[6];
        switch (ch) {
        case '"': aipc_sbuf_add(s, "\\\"", 2); break;
        case '\\': aipc_sbuf_add(s, "\\\\", 2); break;
        case '\n': aipc_sbuf_add(s, "\\n", 2); break;
        case '\r': aipc_sbuf_add(s, "\\r", 2); break;
        case '\t': aipc_sbuf_add(s, "\\t", 2); break;
        case '\b': aipc_sbuf_add(s, "\\b", 2); break;
        case '\f': aipc_sbuf_add(s, "\\f", 2); break;
        default:
            esc[0] = '\\'; esc[1] = 'u'; esc[2] = '0'; esc[3] = '0';
            esc[4] = hex[ch >> 4]; esc[5] = hex[ch & 15];
            aipc_sbuf_add(s, esc, 6);
        }
    }
    aipc_sbuf_add(s, str + run, n - run);
    aipc_sbuf_add(s, "\"", 1);
}
