/*
 * secdesc_section.h - the security descriptor of a shared-memory section, as SDDL (portable:
 * string building only; sdk/src/win/shm_seg.c converts it). docs/design/shared-memory.md
 * section 7. Pure functions, any thread.
 *
 * The descriptor of every segment:
 *   O:<creator>                               owner: the creator's user (receivers check it)
 *   D:P                                       protected DACL, nothing inherited
 *   (A;;0x20005;;;<reader>)  for each reader  SECTION_QUERY 0x1 | SECTION_MAP_READ 0x4 |
 *                                             READ_CONTROL 0x20000 (for the owner check): a
 *                                             reader maps read-only or copy-on-write, never
 *                                             writes the shared copy, never changes the DACL
 *   S:(ML;;NWNR;;;S-1-16-<rid>)               mandatory label at the readers' lowest integrity
 *                                             level, no-write-up and no-read-up
 * The creator gets no ACE: the handle CreateFileMappingW returns has all access whatever the
 * DACL says, and nobody needs to open a segment by name for writing (so a same-user process
 * that is not a receiver, e.g. a second instance, gets error 5 too unless it is a reader).
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

#ifdef __cplusplus
}
#endif
#endif
