/*
 * secdesc_section.h - the security descriptor of a shared-memory section, as SDDL (portable:
 * string building only; sdk/src/win/shm_seg.c converts it). docs/design/shared-memory.md
 * section 7. Pure functions, any thread.
 *
 * The descriptor of every segment:
 *   O:<creator>                               owner: the creator's user (receivers check it)
 *   D:P                                       protected DACL, nothing inherited
 *   (A;;0x20000;;;S-1-3-4)                    OWNER RIGHTS: READ_CONTROL only. It replaces the
 *                                             owner's implicit READ_CONTROL | WRITE_DAC, so a
 *                                             process of the creator's user that is not a
 *                                             reader cannot rewrite the DACL to map the section
 *   (A;;0x20005;;;<reader>)  for each reader  SECTION_QUERY 0x1 | SECTION_MAP_READ 0x4 |
 *                                             READ_CONTROL 0x20000 (for the owner check): a
 *                                             reader maps read-only or copy-on-write, never
 *                                             writes the shared copy, never changes the DACL
 *   S:(ML;;NWNR;;;S-1-16-<rid>)               mandatory label, no-write-up and no-read-up, at
 *                                             min(the readers' lowest integrity level, the
 *                                             creator's): Windows refuses a label above the
 *                                             creator's own level (STATUS_INVALID_LABEL) and
 *                                             one above it would protect nothing the creator's
 *                                             own memory does not expose (aipc__sec_section_label)
 * The creator gets no ACE: the handle CreateFileMappingW returns has all access whatever the
 * DACL says, and nobody needs to open a segment by name for writing: a same-user process
 * that is not a reader (e.g. a second instance) gets error 5, and with the OWNER RIGHTS ACE it
 * cannot grant itself access either (within one user this is hardening, not a boundary:
 * design section 7).
 * And nothing else: no ACE for Everyone, Users, Authenticated Users, Anonymous, Interactive,
 * Network, Administrators or any other group; SIDs are given as "S-1-..." strings only (no
 * SDDL aliases) and those groups are refused as readers or creator.
 */
#ifndef AIPC_SECDESC_SECTION_H
#define AIPC_SECDESC_SECTION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define AIPC__SEC_SECTION_READ_RIGHTS 0x20005u   /* SECTION_QUERY | SECTION_MAP_READ | READ_CONTROL */
#define AIPC__SEC_SECTION_OWNER_RIGHTS 0x20000u  /* READ_CONTROL, for OWNER RIGHTS S-1-3-4 */
#define AIPC__SEC_SECTION_MAX_READERS 64u
/* Integrity levels (mandatory label RIDs): untrusted 0, low, medium, medium plus, high, system. */
#define AIPC__SEC_IL_LOW    0x1000u
#define AIPC__SEC_IL_MEDIUM 0x2000u
#define AIPC__SEC_IL_HIGH   0x3000u
#define AIPC__SEC_IL_SYSTEM 0x4000u

/* Whether s is a SID string "S-1-<authority>(-<sub>){1,15}" (decimal, no leading zeros, the
 * authority < 2^48, each sub-authority < 2^32) that names one principal: false for the
 * well-known groups listed above and for SDDL aliases. */
bool aipc__sec_sid_str_ok(const char *s);

/* Writes the section descriptor's SDDL (NUL-terminated) for `creator` and readers[0..n) at
 * label RID `integrity` (0: medium; otherwise a multiple of 0x100 up to 0x4000) into out.
 * Returns its length, or 0 when cap is too small, n is 0 or above AIPC__SEC_SECTION_MAX_READERS,
 * the integrity is invalid, or a SID string is refused by aipc__sec_sid_str_ok. */
size_t aipc__sec_section_sddl(char *out, size_t cap, const char *creator,
                              const char *const *readers, size_t n, uint32_t integrity);

/* Longest SID string aipc__sec_sid_str_ok accepts: "S-1-", a 15-digit authority, 15 sub-
 * authorities of "-" and 10 digits. */
#define AIPC__SEC_SID_STR_MAX 184u
/* A capacity that always holds the SDDL of n readers (creator and readers at most
 * AIPC__SEC_SID_STR_MAX each, any valid label), NUL included: size the buffer of
 * aipc__sec_section_sddl with it (64 readers: 12.9 KB). */
#define AIPC__SEC_SECTION_SDDL_CAP(n) \
    (64u + AIPC__SEC_SID_STR_MAX + 22u + (size_t)(n) * (15u + AIPC__SEC_SID_STR_MAX) + 32u)

/* The label RID for a section: min(reader, creator), each 0 (unknown) taken as medium. Pass the
 * readers' lowest level and the creating process's token integrity. */
uint32_t aipc__sec_section_label(uint32_t reader, uint32_t creator);

#ifdef __cplusplus
}
#endif
#endif
