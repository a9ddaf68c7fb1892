/* secdesc_section.c - the SDDL of a shared-memory section's descriptor (secdesc_section.h). */
#include "secdesc_section.h"

#include <stdio.h>
#include <string.h>

/* Groups that must never be granted a section (or own one): everybody, every user, every
 * logged-on user, anonymous, interactive / network / batch / service logons, this
 * organisation, and the whole BUILTIN domain (Administrators, Users, Guests, ...), all
 * application packages. */
static const char *const forbidden[] = {
    "S-1-1-0", "S-1-2-0", "S-1-2-1", "S-1-3-0", "S-1-3-1", "S-1-5-1", "S-1-5-2", "S-1-5-3",
    "S-1-5-4", "S-1-5-6", "S-1-5-7", "S-1-5-11", "S-1-5-13", "S-1-5-14", "S-1-5-15",
    "S-1-5-113", "S-1-5-114", "S-1-15-2-1", "S-1-15-2-2",
};

/* A decimal of 1..maxd digits without a leading zero, value <= max; the byte after it or NULL. */
static const char *dec(const char *p, int maxd, unsigned long long max)
{
    unsigned long long v = 0;
    int n = 0;
    if (*p == '0' && p[1] >= '0' && p[1] <= '9')
        return NULL;
    while (*p >= '0' && *p <= '9') {
        if (++n > maxd)
            return NULL;
        v = v * 10 + (unsigned long long)(*p++ - '0');
    }
    return n > 0 && v <= max ? p : NULL;
}

bool aipc__sec_sid_str_ok(const char *s)
{
    if (!s || strncmp(s, "S-1-", 4) != 0)
        return false;
    const char *p = dec(s + 4, 15, 0xFFFFFFFFFFFFull);
    int subs = 0;
    while (p && *p == '-') {
        if (++subs > 15)
            return false;
        p = dec(p + 1, 10, 0xFFFFFFFFull);
    }
    if (!p || *p != 0 || subs == 0)
        return false;
    for (size_t i = 0; i < sizeof forbidden / sizeof forbidden[0]; i++)
        if (strcmp(s, forbidden[i]) == 0)
            return false;
    return strncmp(s, "S-1-5-32-", 9) != 0;     /* BUILTIN\* */
}

size_t aipc__sec_section_sddl(char *out, size_t cap, const char *creator,
                              const char *const *readers, size_t n, uint32_t integrity)
{
    if (!out || cap == 0 || !readers || n == 0 || n > AIPC__SEC_SECTION_MAX_READERS ||
        !aipc__sec_sid_str_ok(creator))
        return 0;
    if (integrity == 0)
        integrity = AIPC__SEC_IL_MEDIUM;
    if (integrity % 0x100 != 0 || integrity > AIPC__SEC_IL_SYSTEM)
        return 0;
    size_t at = 0;
    /* OWNER RIGHTS: the owner gets READ_CONTROL only (no implicit WRITE_DAC). */
    int k = snprintf(out, cap, "O:%sD:P(A;;0x%X;;;S-1-3-4)", creator, AIPC__SEC_SECTION_OWNER_RIGHTS);
    if (k < 0 || (size_t)k >= cap)
        return 0;
    at = (size_t)k;
    for (size_t i = 0; i < n; i++) {
        if (!aipc__sec_sid_str_ok(readers[i]))
            return 0;
        k = snprintf(out + at, cap - at, "(A;;0x%X;;;%s)", AIPC__SEC_SECTION_READ_RIGHTS, readers[i]);
        if (k < 0 || (size_t)k >= cap - at)
            return 0;
        at += (size_t)k;
    }
    k = snprintf(out + at, cap - at, "S:(ML;;NWNR;;;S-1-16-%lu)", (unsigned long)integrity);
    if (k < 0 || (size_t)k >= cap - at)
        return 0;
    return at + (size_t)k;
}

uint32_t aipc__sec_section_label(uint32_t reader, uint32_t creator)
{
    if (reader == 0)
        reader = AIPC__SEC_IL_MEDIUM;
    if (creator == 0)
        creator = AIPC__SEC_IL_MEDIUM;
    return reader < creator ? reader : creator;
}
