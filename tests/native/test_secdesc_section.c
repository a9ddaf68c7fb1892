/* test_secdesc_section.c - the SDDL of a shared-memory section (sdk/src/core/secdesc_section.h):
 * exact ACEs and label, nothing for any group, SID strings checked. */
#include "check_main.h"
#include <string.h>

#include "secdesc_section.h"

#define ME "S-1-5-21-1004336348-1177238915-682003330-1000"
#define PEER "S-1-5-21-1004336348-1177238915-682003330-1001"

/* Every ACE has the six fields of SDDL: type;flags;rights;object;inherited object;SID. */
static void six_fields(const char *sddl)
{
    int aces = 0;
    for (const char *p = strchr(sddl, '('); p; p = strchr(p + 1, '(')) {
        int semis = 0;
        const char *q = p + 1;
        for (; *q && *q != ')'; q++)
            semis += *q == ';';
        ck_assert_msg(*q == ')' && semis == 5, "bad ACE in %s", sddl);
        aces++;
    }
    ck_assert_int_gt(aces, 0);
}

START_TEST(exact_descriptor_one_reader)
{
    char out[512];
    const char *r[] = {PEER};
    size_t n = aipc__sec_section_sddl(out, sizeof out, ME, r, 1, 0);
    ck_assert_str_eq(out, "O:" ME "D:P(A;;0x20000;;;S-1-3-4)(A;;0x20005;;;" PEER ")S:(ML;;NWNR;;;S-1-16-8192)");
    ck_assert_uint_eq(n, strlen(out));
    /* Too small by one: refused whole, never truncated into a different descriptor. */
    ck_assert_uint_eq(aipc__sec_section_sddl(out, n, ME, r, 1, 0), 0);
    ck_assert_uint_eq(aipc__sec_section_sddl(out, n + 1, ME, r, 1, 0), n);
    six_fields(out);
}
END_TEST

START_TEST(readers_and_labels)
{
    char out[1024];
    const char *r[] = {"S-1-5-18", PEER, "S-1-5-80-1-2-3-4-5"};
    aipc__sec_section_sddl(out, sizeof out, ME, r, 3, AIPC__SEC_IL_LOW);
    ck_assert_str_eq(out, "O:" ME "D:P(A;;0x20000;;;S-1-3-4)(A;;0x20005;;;S-1-5-18)(A;;0x20005;;;" PEER
                          ")(A;;0x20005;;;S-1-5-80-1-2-3-4-5)S:(ML;;NWNR;;;S-1-16-4096)");
    six_fields(out);
    ck_assert_uint_gt(aipc__sec_section_sddl(out, sizeof out, ME, r, 1, AIPC__SEC_IL_HIGH), 0);
    ck_assert_ptr_nonnull(strstr(out, "S:(ML;;NWNR;;;S-1-16-12288)"));
    ck_assert_uint_gt(aipc__sec_section_sddl(out, sizeof out, ME, r, 1, AIPC__SEC_IL_SYSTEM), 0);
    ck_assert_ptr_nonnull(strstr(out, "S-1-16-16384)"));
    ck_assert_uint_gt(aipc__sec_section_sddl(out, sizeof out, ME, r, 1, 0x2100), 0);
    ck_assert_ptr_nonnull(strstr(out, "S-1-16-8448)"));
    ck_assert_uint_eq(aipc__sec_section_sddl(out, sizeof out, ME, r, 1, 0x2001), 0);
    ck_assert_uint_eq(aipc__sec_section_sddl(out, sizeof out, ME, r, 1, 0x5000), 0);
    ck_assert_uint_eq(aipc__sec_section_sddl(out, sizeof out, ME, r, 0, 0), 0);
    const char *many[AIPC__SEC_SECTION_MAX_READERS + 1];
    for (size_t i = 0; i <= AIPC__SEC_SECTION_MAX_READERS; i++)
        many[i] = PEER;
    static char big[8192];
    ck_assert_uint_gt(aipc__sec_section_sddl(big, sizeof big, ME, many, AIPC__SEC_SECTION_MAX_READERS, 0), 0);
    ck_assert_uint_eq(aipc__sec_section_sddl(big, sizeof big, ME, many, AIPC__SEC_SECTION_MAX_READERS + 1, 0), 0);
}
END_TEST

/* No group of any kind as reader or creator, and no alias: only single principals' SIDs. */
START_TEST(groups_and_aliases_refused)
{
    static const char *const bad[] = {
        "S-1-1-0" /* Everyone */, "S-1-5-32-545" /* Users */, "S-1-5-11" /* Authenticated Users */,
        "S-1-5-7" /* Anonymous */, "S-1-5-4" /* Interactive */, "S-1-5-2" /* Network */,
        "S-1-5-32-544" /* Administrators */, "S-1-5-32-546" /* Guests */, "S-1-2-0" /* Local */,
        "S-1-15-2-1" /* All application packages */, "S-1-3-0" /* Creator owner */,
        "WD", "BU", "AU", "AN", "BA", "SY", "%U", "", "S-1-", "S-1-5", "S-1-5-", "S-1-5-18-",
        "S-1-05-18", "S-1-5-018", "S-2-5-18", "s-1-5-18", "S-1-5-18)(A;;GA;;;WD)", "S-1-5-18 ",
        "S-1-5-4294967296", "S-1-281474976710656-1", "S-1-5-1-2-3-4-5-6-7-8-9-10-11-12-13-14-15-16",
    };
    char out[512];
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        const char *r[] = {PEER, bad[i]};
        ck_assert_msg(!aipc__sec_sid_str_ok(bad[i]), "accepted: %s", bad[i]);
        ck_assert_msg(aipc__sec_section_sddl(out, sizeof out, ME, r, 2, 0) == 0, "reader: %s", bad[i]);
        ck_assert_msg(aipc__sec_section_sddl(out, sizeof out, bad[i], r, 1, 0) == 0, "creator: %s", bad[i]);
    }
    ck_assert(aipc__sec_sid_str_ok("S-1-5-18"));
    ck_assert(aipc__sec_sid_str_ok("S-1-5-80-956008885-3418522649-1831038044-1853292631-2271478464"));
    ck_assert(aipc__sec_sid_str_ok("S-1-281474976710655-1"));
    ck_assert(aipc__sec_sid_str_ok("S-1-5-1-2-3-4-5-6-7-8-9-10-11-12-13-14-15"));
    ck_assert(!aipc__sec_sid_str_ok(NULL));
}
END_TEST

/* OWNER RIGHTS (S-1-3-4) gets exactly READ_CONTROL, once, before every reader: the owner's
 * implicit WRITE_DAC is gone whatever the readers. */
START_TEST(owner_rights_read_control_only)
{
    char out[1024];
    const char *r[] = {PEER, "S-1-5-18"};
    ck_assert_uint_gt(aipc__sec_section_sddl(out, sizeof out, ME, r, 2, 0), 0);
    const char *ace = strstr(out, "(A;;0x20000;;;S-1-3-4)");
    ck_assert_ptr_nonnull(ace);
    ck_assert_ptr_eq(ace, strstr(out, "D:P") + 3);
    ck_assert_ptr_null(strstr(ace + strlen("(A;;0x20000;;;S-1-3-4)"), "S-1-3-4"));
    ck_assert_ptr_null(strstr(out, "WD"));     /* no WRITE_DAC alias, no Everyone */
    ck_assert_ptr_null(strstr(out, ";GA;"));
}
END_TEST

/* The label is min(reader, creator), 0 meaning medium on either side: a low-IL creator never
 * labels above itself (Windows: STATUS_INVALID_LABEL), a System creator labels at the reader. */
START_TEST(label_clamped_to_creator)
{
    ck_assert_uint_eq(aipc__sec_section_label(0, 0), AIPC__SEC_IL_MEDIUM);
    ck_assert_uint_eq(aipc__sec_section_label(AIPC__SEC_IL_HIGH, AIPC__SEC_IL_MEDIUM), AIPC__SEC_IL_MEDIUM);
    ck_assert_uint_eq(aipc__sec_section_label(AIPC__SEC_IL_SYSTEM, AIPC__SEC_IL_HIGH), AIPC__SEC_IL_HIGH);
    ck_assert_uint_eq(aipc__sec_section_label(AIPC__SEC_IL_MEDIUM, AIPC__SEC_IL_SYSTEM), AIPC__SEC_IL_MEDIUM);
    ck_assert_uint_eq(aipc__sec_section_label(AIPC__SEC_IL_LOW, AIPC__SEC_IL_SYSTEM), AIPC__SEC_IL_LOW);
    ck_assert_uint_eq(aipc__sec_section_label(0, AIPC__SEC_IL_LOW), AIPC__SEC_IL_LOW);
    ck_assert_uint_eq(aipc__sec_section_label(AIPC__SEC_IL_HIGH, 0), AIPC__SEC_IL_MEDIUM);
    ck_assert_uint_eq(aipc__sec_section_label(0x2100, AIPC__SEC_IL_HIGH), 0x2100);
    /* And into the descriptor: a high reader of a medium creator is labelled medium. */
    char out[512];
    const char *r[] = {PEER};
    ck_assert_uint_gt(aipc__sec_section_sddl(out, sizeof out, ME, r, 1,
                                             aipc__sec_section_label(AIPC__SEC_IL_HIGH, AIPC__SEC_IL_MEDIUM)), 0);
    ck_assert_ptr_nonnull(strstr(out, "S:(ML;;NWNR;;;S-1-16-8192)"));
}
END_TEST

/* AIPC__SEC_SECTION_SDDL_CAP(n) holds n readers of the longest SID accepted (and a creator of
 * that length) at the longest label; one character more is no SID. */
START_TEST(cap_holds_longest_sids)
{
    char longest[AIPC__SEC_SID_STR_MAX + 16];
    strcpy(longest, "S-1-281474976710655");
    for (int i = 0; i < 15; i++)
        strcat(longest, "-4294967295");
    ck_assert_uint_eq(strlen(longest), AIPC__SEC_SID_STR_MAX);
    ck_assert(aipc__sec_sid_str_ok(longest));
    char over[AIPC__SEC_SID_STR_MAX + 16];
    strcpy(over, longest);
    strcat(over, "-1");                          /* a 16th sub-authority */
    ck_assert(!aipc__sec_sid_str_ok(over));
    const char *many[AIPC__SEC_SECTION_MAX_READERS];
    for (size_t i = 0; i < AIPC__SEC_SECTION_MAX_READERS; i++)
        many[i] = longest;
    static char big[AIPC__SEC_SECTION_SDDL_CAP(AIPC__SEC_SECTION_MAX_READERS)];
    for (size_t n = 1; n <= AIPC__SEC_SECTION_MAX_READERS; n++) {
        size_t len = aipc__sec_section_sddl(big, AIPC__SEC_SECTION_SDDL_CAP(n), longest, many, n,
                                            AIPC__SEC_IL_SYSTEM);
        ck_assert_uint_gt(len, 0);
        ck_assert_uint_lt(len, AIPC__SEC_SECTION_SDDL_CAP(n));
        six_fields(big);
    }
    ck_assert_uint_gt(aipc__sec_section_sddl(big, sizeof big, longest, many,
                                             AIPC__SEC_SECTION_MAX_READERS, AIPC__SEC_IL_SYSTEM), 0);
}
END_TEST

static Suite *make_suite(void)
{
    Suite *s = suite_create("secdesc_section");
    TCase *tc = tcase_create("sddl");
    tcase_add_test(tc, exact_descriptor_one_reader);
    tcase_add_test(tc, readers_and_labels);
    tcase_add_test(tc, groups_and_aliases_refused);
    tcase_add_test(tc, owner_rights_read_control_only);
    tcase_add_test(tc, label_clamped_to_creator);
    tcase_add_test(tc, cap_holds_longest_sids);
    suite_add_tcase(s, tc);
    return s;
}

CHECK_MAIN(make_suite);
