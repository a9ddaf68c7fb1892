/*
 * chat_text.c - text helpers for gui_chat: UTF-8 <-> UTF-16 and printable message copies.
 * Thread: any (no shared state).
 */
#include "chat.h"

#include <stdlib.h>
#include <string.h>

wchar_t *chat_widen(const char *utf8)
{
    int n = MultiByteToWideChar(CP_UTF8, 0, utf8, -1, NULL, 0);
    if (n <= 0)
        return NULL;
    wchar_t *w = malloc((size_t)n * sizeof *w);
    if (w && MultiByteToWideChar(CP_UTF8, 0, utf8, -1, w, n) <= 0) {
        free(w);
        w = NULL;
    }
    return w;
}

char *chat_narrow(const wchar_t *w)
{
    int n = WideCharToMultiByte(CP_UTF8, 0, w, -1, NULL, 0, NULL, NULL);
    if (n <= 0)
        return NULL;
    char *s = malloc((size_t)n);
    if (s && WideCharToMultiByte(CP_UTF8, 0, w, -1, s, n, NULL, NULL) <= 0) {
        free(s);
        s = NULL;
    }
    return s;
}

char *chat_printable(char *out, size_t cap, const void *data, size_t len)
{
    static const char cut[] = "...";
    const unsigned char *p = data;
    if (cap == 0)
        return out;
    size_t room = cap - 1, n = len;
    if (n > room) {
        n = room >= sizeof cut - 1 ? room - (sizeof cut - 1) : 0;
        /* do not cut a UTF-8 sequence in half: back up to a lead byte */
        while (n > 0 && (p[n] & 0xC0) == 0x80)
            n--;
    }
    for (size_t i = 0; i < n; i++)
        out[i] = (p[i] < 0x20 || p[i] == 0x7F) ? '.' : (char)p[i];
    size_t end = n;
    if (n < len && room - n >= sizeof cut - 1) {
        memcpy(out + n, cut, sizeof cut - 1);
        end += sizeof cut - 1;
    }
    out[end] = 0;
    return out;
}

bool chat_valid_name(const char *s, size_t max)
{
    size_t n = strlen(s);
    if (n == 0 || n > max)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                  c == '.' || c == '_' || c == '-';
        if (!ok)
            return false;
    }
    return true;
}
