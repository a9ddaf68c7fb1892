/*
 * test_shm_seg.c - Win32 shared-memory segments (sdk/src/win/shm_seg.c) across real processes,
 * the other one being shm_seg_peer.exe:
 *   - a segment created for our user: the peer opens it, reads the bytes, its view is
 *     PAGE_READONLY and a write into it faults; the shared copy is untouched;
 *   - a slot rewritten by the creator while the peer keeps its view: the peer reads the new
 *     bytes every time (no private copy-on-write page freezing old bytes);
 *   - a SEC_RESERVE section and a too-small one: open refuses them (AIPC_EPROTO);
 *   - a segment granting only another SID: the peer gets AIPC_EACCESS (Wine enforces section
 *     DACLs; every process here is the same user, so nothing but the DACL refuses it);
 *   - a squatted name: create refuses it (AIPC_EUNTRUSTED), the squatter's object untouched;
 *   - owner mismatch: open refuses (AIPC_EUNTRUSTED), and bad names / missing sections;
 *   - 1000 create/open/map/unmap/close cycles: handles (count and next value), private and
 *     mapped bytes flat in both processes (and a positive control: mapped bytes grow by the
 *     segment in both while one is mapped);
 *   - the creator killed (TerminateProcess) while we map its segment: our view is intact, and
 *     the section is gone once we close it;
 *   - a pipe server learns its client's identity (sdk/src/win/win_ident.c, identification-level
 *     impersonation of the first byte) and creates a segment the client, and only it, may map.
 */
#include "check_main.h"

#include <windows.h>

#include <aclapi.h>
#include <sddl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aipc_memstat.h"
#include "aipc_testutil.h"
#include "shm_seg.h"
#include "shm_seg_common.h"
#include "win_ident.h"
#include "winsec.h"

#define SEG 262144u

static char *sid_string(PSID sid)
{
    char *s = NULL;
    ck_assert(ConvertSidToStringSidA(sid, &s));
    return s;                                   /* LocalFree */
}

/* The section's DACL as read back: protected, exactly two ACEs: OWNER RIGHTS (S-1-3-4) with
 * READ_CONTROL only (no implicit WRITE_DAC for the owner), then 0x20005 for `reader`; its owner
 * is `owner`. */
static void check_descriptor(HANDLE h, PSID owner, PSID reader)
{
    PSID o = NULL;
    PACL dacl = NULL;
    PSECURITY_DESCRIPTOR sd = NULL;
    ck_assert_uint_eq(GetSecurityInfo(h, SE_KERNEL_OBJECT, OWNER_SECURITY_INFORMATION | DACL_SECURITY_INFORMATION,
                                      &o, NULL, &dacl, NULL, &sd), ERROR_SUCCESS);
    ck_assert(o && EqualSid(o, owner));
    SECURITY_DESCRIPTOR_CONTROL ctl;
    DWORD rev;
    ck_assert(GetSecurityDescriptorControl(sd, &ctl, &rev));
    ck_assert(ctl & SE_DACL_PROTECTED);
    ck_assert_ptr_nonnull(dacl);
    ck_assert_uint_eq(dacl->AceCount, 2);
    ACCESS_ALLOWED_ACE *ace = NULL;
    PSID owner_rights = NULL;
    ck_assert(ConvertStringSidToSidA("S-1-3-4", &owner_rights));
    ck_assert(GetAce(dacl, 0, (void **)&ace));
    ck_assert_uint_eq(ace->Header.AceType, ACCESS_ALLOWED_ACE_TYPE);
    ck_assert_uint_eq(ace->Mask, READ_CONTROL);
    ck_assert(EqualSid((PSID)&ace->SidStart, owner_rights));
    LocalFree(owner_rights);
    ck_assert(GetAce(dacl, 1, (void **)&ace));
    ck_assert_uint_eq(ace->Header.AceType, ACCESS_ALLOWED_ACE_TYPE);
    ck_assert_uint_eq(ace->Mask, SECTION_QUERY | SECTION_MAP_READ | READ_CONTROL);
    ck_assert(EqualSid((PSID)&ace->SidStart, reader));
    LocalFree(sd);
}

/* Runs "shm_seg_peer open NAME SIZE OWNER SEED" and returns its exit code. */
static int peer_open(const char *name, uint32_t size, const char *owner, uint32_t seed)
{
    aipc_proc p;
    ck_assert_int_eq(aipc_proc_spawn(&p, "shm_seg_peer.exe", "open %s %u %s %u", name, size, owner, seed), 0);
    ck_assert_int_eq(aipc_proc_wait(&p, aipc_test_wait_ms()), 0);
    int rc = (int)p.exit_code;
    aipc_proc_close(&p);
    return rc;
}

START_TEST(peer_maps_read_only)
{
    PSID me = aipc__sec_user_sid();
    char *me_s = sid_string(me), name[AIPC_SHM_NAME_BUF];
    aipc__shm_seg s;
    ck_assert_int_eq(aipc__shm_seg_create(&s, SEG, me, 0, name, sizeof name), 0);
    ck_assert(aipc_shm_name_valid(name, strlen(name)));
    ck_assert_uint_eq(s.size, SEG);
    check_descriptor(s.h, me, me);
    aipc_pattern_fill(s.view, SEG, 7);
    ck_assert_int_eq(peer_open(name, SEG, me_s, 7), 0);
    /* The peer's write into its read-only view faulted: the shared copy is untouched. */
    ck_assert_int_eq(aipc_pattern_check(s.view, SEG, 7), -1);
    /* A second segment gets another name; the peer still reads ours after we change it. */
    aipc__shm_seg s2;
    char name2[AIPC_SHM_NAME_BUF];
    ck_assert_int_eq(aipc__shm_seg_create(&s2, 4096, me, 0, name2, sizeof name2), 0);
    ck_assert_str_ne(name, name2);
    aipc_pattern_fill(s.view, SEG, 8);
    ck_assert_int_eq(peer_open(name, SEG, me_s, 8), 0);
    ck_assert_int_eq(peer_open(name, SEG, me_s, 7), SHM_PEER_BADBYTES);   /* it reads what is there */
    /* Asking for more than the segment holds is refused. */
    ck_assert_int_eq(peer_open(name2, 8192, me_s, 0), SHM_PEER_RC(AIPC_EPROTO));
    aipc__shm_seg_close(&s2);
    aipc__shm_seg_close(&s);
    aipc__shm_seg_close(&s);                    /* idempotent */
    ck_assert_ptr_null(s.view);
    LocalFree(me_s);
    free(me);
}
END_TEST

START_TEST(other_sid_only_is_access_denied)
{
    PSID me = aipc__sec_user_sid(), system = NULL;
    char *me_s = sid_string(me), name[AIPC_SHM_NAME_BUF];
    ck_assert(ConvertStringSidToSidA("S-1-5-18", &system));
    aipc__shm_seg s;
    ck_assert_int_eq(aipc__shm_seg_create(&s, SEG, system, 0, name, sizeof name), 0);
    check_descriptor(s.h, me, system);
    aipc_pattern_fill(s.view, SEG, 3);
    ck_assert_int_eq(peer_open(name, SEG, me_s, 3), SHM_PEER_RC(AIPC_EACCESS));
    /* In this process too, by name: only our creation handle has access. */
    aipc__shm_seg o;
    ck_assert_int_eq(aipc__shm_seg_open(&o, name, SEG, me), AIPC_EACCESS);
    ck_assert_uint_eq(o.syserr, ERROR_ACCESS_DENIED);
    ck_assert_ptr_null(o.view);
    /* Groups are never granted. */
    PSID everyone = NULL;
    ck_assert(ConvertStringSidToSidA("S-1-1-0", &everyone));
    ck_assert_int_eq(aipc__shm_seg_create(&o, SEG, everyone, 0, name, sizeof name), AIPC_EINVAL);
    ck_assert_ptr_null(o.h);
    aipc__shm_seg_close(&s);
    LocalFree(everyone);
    LocalFree(system);
    LocalFree(me_s);
    free(me);
}
END_TEST

START_TEST(squatted_name_refused)
{
    const uint8_t rnd[16] = {0x5a, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15};
    char name[AIPC_SHM_NAME_BUF], ready[96], go[96];
    aipc_shm_name_put(name, sizeof name, GetCurrentProcessId(), rnd, 4000000000u);
    aipc_test_name(ready, sizeof ready, "shm-ready");
    aipc_test_name(go, sizeof go, "shm-go");
    HANDLE e_ready = CreateEventA(NULL, TRUE, FALSE, ready), e_go = CreateEventA(NULL, TRUE, FALSE, go);
    aipc_proc p;
    ck_assert_int_eq(aipc_proc_spawn(&p, "shm_seg_peer.exe", "squat %s %s %s", name, ready, go), 0);
    ck_assert(aipc_test_wait(e_ready, aipc_test_wait_ms()));
    PSID me = aipc__sec_user_sid();
    aipc__shm_seg s;
    ck_assert_int_eq(aipc__shm_seg_create_named(&s, SEG, me, 0, name), AIPC_EUNTRUSTED);
    ck_assert_uint_eq(s.syserr, ERROR_ALREADY_EXISTS);
    ck_assert_ptr_null(s.h);
    ck_assert_ptr_null(s.view);
    /* The squatter's object is not ours: its owner is not checked here, but a receiver
     * expecting another owner refuses it (Wine records the creator's user as owner). */
    SetEvent(e_go);
    ck_assert_int_eq(aipc_proc_wait(&p, aipc_test_wait_ms()), 0);
    ck_assert_uint_eq(p.exit_code, 0);
    aipc_proc_close(&p);
    /* Once the squatter is gone the name is free again. */
    ck_assert_int_eq(aipc__shm_seg_create_named(&s, SEG, me, 0, name), 0);
    aipc__shm_seg_close(&s);
    CloseHandle(e_ready);
    CloseHandle(e_go);
    free(me);
}
END_TEST

START_TEST(owner_mismatch_and_bad_names)
{
    PSID me = aipc__sec_user_sid(), system = NULL;
    char name[AIPC_SHM_NAME_BUF], full[96];
    ck_assert(ConvertStringSidToSidA("S-1-5-18", &system));
    aipc__shm_seg s, o;
    ck_assert_int_eq(aipc__shm_seg_create(&s, SEG, me, 0, name, sizeof name), 0);
    aipc_pattern_fill(s.view, SEG, 5);
    ck_assert_int_eq(peer_open(name, SEG, "S-1-5-18", 5), SHM_PEER_RC(AIPC_EUNTRUSTED));
    ck_assert_int_eq(aipc__shm_seg_open(&o, name, SEG, system), AIPC_EUNTRUSTED);
    ck_assert_ptr_null(o.h);
    /* The same with the right owner, under each spelling of this session's namespace. */
    ck_assert_int_eq(aipc__shm_seg_open(&o, name, SEG, me), 0);
    ck_assert_int_eq(aipc_pattern_check(o.view, SEG, 5), -1);
    aipc__shm_seg_close(&o);
    snprintf(full, sizeof full, "Local\\%s", name);
    ck_assert_int_eq(aipc__shm_seg_open(&o, full, SEG, me), 0);
    aipc__shm_seg_close(&o);
    snprintf(full, sizeof full, "Global\\%s", name);             /* another object */
    ck_assert_int_eq(aipc__shm_seg_open(&o, full, SEG, me), AIPC_ENOTFOUND);
    snprintf(full, sizeof full, "Session\\1\\%s", name);
    ck_assert_int_eq(aipc__shm_seg_open(&o, full, SEG, me), 0);  /* Wine: all in session 1 */
    aipc__shm_seg_close(&o);
    /* The namespace from the receiver's own knowledge of the creator's session. */
    DWORD own = 0;
    ck_assert(ProcessIdToSessionId(GetCurrentProcessId(), &own));
    ck_assert_uint_eq(s.session, own);
    ck_assert_int_eq(aipc__shm_seg_open_in(&o, s.session, name, SEG, me), 0);
    ck_assert_int_eq(aipc_pattern_check(o.view, SEG, 5), -1);
    ck_assert_uint_eq(o.session, own);
    aipc__shm_seg_close(&o);
    if (own != 0)                               /* another session's namespace: not ours */
        ck_assert_int_eq(aipc__shm_seg_open_in(&o, 0, name, SEG, me), AIPC_ENOTFOUND);
    snprintf(full, sizeof full, "Local\\%s", name);        /* prefixes never from the wire */
    ck_assert_int_eq(aipc__shm_seg_open_in(&o, own, full, SEG, me), AIPC_EINVAL);
    snprintf(full, sizeof full, "Global\\%s", name);
    ck_assert_int_eq(aipc__shm_seg_open_in(&o, own, full, SEG, me), AIPC_EINVAL);
    ck_assert_ptr_null(o.h);
    static const char *const bad[] = {"", "x", "aipc-1-xyz-1", "..\\aipc-1-0123456789abcdeffedcba9876543210-1",
                                      "Other\\aipc-1-0123456789abcdeffedcba9876543210-1",
                                      "Session\\x\\aipc-1-0123456789abcdeffedcba9876543210-1"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        ck_assert_msg(aipc__shm_seg_open(&o, bad[i], SEG, me) == AIPC_EINVAL, "opened: %s", bad[i]);
    name[strlen(name) - 1] = name[strlen(name) - 1] == '9' ? '8' : '9';
    ck_assert_int_eq(aipc__shm_seg_open(&o, name, SEG, me), AIPC_ENOTFOUND);
    ck_assert_int_eq(aipc__shm_seg_create(&o, 0, me, 0, name, sizeof name), AIPC_EINVAL);
    ck_assert_int_eq(aipc__shm_seg_create(&o, SEG, me, 0, name, AIPC_SHM_NAME_BUF - 1), AIPC_EINVAL);
    aipc__shm_seg_close(&s);
    LocalFree(system);
    free(me);
}
END_TEST

/* The peer's loop mode over a byte pipe. */
typedef struct loop_peer {
    aipc_proc p;
    HANDLE pipe;
} loop_peer;

static void loop_start(loop_peer *lp)
{
    char pn[96], path[128];
    aipc_test_name(pn, sizeof pn, "shm-loop");
    snprintf(path, sizeof path, "\\\\.\\pipe\\%s", pn);
    lp->pipe = CreateNamedPipeA(path, PIPE_ACCESS_DUPLEX | FILE_FLAG_FIRST_PIPE_INSTANCE,
                                PIPE_TYPE_BYTE | PIPE_REJECT_REMOTE_CLIENTS, 1, 4096, 4096, 0, NULL);
    ck_assert_ptr_ne(lp->pipe, INVALID_HANDLE_VALUE);
    ck_assert_int_eq(aipc_proc_spawn(&lp->p, "shm_seg_peer.exe", "loop %s", pn), 0);
    ck_assert(ConnectNamedPipe(lp->pipe, NULL) || GetLastError() == ERROR_PIPE_CONNECTED);
}

static shm_reply loop_call(loop_peer *lp, uint32_t op, const char *name, uint32_t size, uint32_t seed)
{
    shm_cmd c;
    shm_reply r;
    DWORD n;
    memset(&c, 0, sizeof c);
    c.op = op, c.size = size, c.seed = seed;
    if (name)
        snprintf(c.name, sizeof c.name, "%s", name);
    ck_assert(WriteFile(lp->pipe, &c, sizeof c, &n, NULL) && n == sizeof c);
    ck_assert(ReadFile(lp->pipe, &r, sizeof r, &n, NULL) && n == sizeof r);
    return r;
}

static void cycles(loop_peer *lp, PSID me, int count, uint32_t size)
{
    for (int i = 0; i < count; i++) {
        aipc__shm_seg s;
        char name[AIPC_SHM_NAME_BUF];
        ck_assert_int_eq(aipc__shm_seg_create(&s, size, me, 0, name, sizeof name), 0);
        aipc_pattern_fill(s.view, 64, (uint32_t)i);
        ck_assert_int_eq(loop_call(lp, SHM_CMD_CYCLE, name, 64, (uint32_t)i).rc, 0);
        aipc__shm_seg_close(&s);
    }
}

static void stat_print(const char *who, const aipc_memstat *a, const aipc_memstat *b)
{
    printf("shm_seg cycles, %s: handles %lld -> %lld, next handle 0x%llx -> 0x%llx, private KiB "
           "%lld -> %lld, mapped KiB %lld -> %lld\n", who, (long long)a->handles, (long long)b->handles,
           (long long)a->next_handle, (long long)b->next_handle, (long long)a->private_bytes / 1024,
           (long long)b->private_bytes / 1024, (long long)a->mapped_bytes / 1024,
           (long long)b->mapped_bytes / 1024);
}

static void stat_flat(const aipc_memstat *a, const aipc_memstat *b)
{
    ck_assert_int_eq(b->handles, a->handles);
    ck_assert_int_eq(b->next_handle, a->next_handle);
    ck_assert_int_eq(b->mapped_bytes, a->mapped_bytes);
    ck_assert_int_le(b->private_bytes - a->private_bytes, 64 * 1024);
}

/* A reused slot: the creator rewrites the same bytes while the peer keeps one view; the peer
 * reads each new payload (with its spare NUL written by the creator). */
START_TEST(rewritten_slot_seen_by_kept_view)
{
    PSID me = aipc__sec_user_sid();
    loop_peer lp;
    loop_start(&lp);
    aipc__shm_seg s;
    char name[AIPC_SHM_NAME_BUF];
    ck_assert_int_eq(aipc__shm_seg_create(&s, SEG, me, 0, name, sizeof name), 0);
    aipc_pattern_fill(s.view, SEG, 1);
    ck_assert_int_eq(loop_call(&lp, SHM_CMD_MAP, name, SEG, 0).rc, 0);
    for (uint32_t seed = 1; seed <= 20; seed++) {
        aipc_pattern_fill(s.view, SEG, seed);
        s.view[4095] ^= 0xFF;                   /* a new payload byte where the last one ended */
        ck_assert_int_eq(loop_call(&lp, SHM_CMD_CHECK, NULL, 0, seed).rc, SHM_PEER_BADBYTES);
        aipc_pattern_fill(s.view, 4096, seed);  /* restore page 0: the whole pattern again */
        ck_assert_int_eq(loop_call(&lp, SHM_CMD_CHECK, NULL, 0, seed).rc, 0);
        ck_assert_int_eq(loop_call(&lp, SHM_CMD_CHECK, NULL, 0, seed + 1).rc, SHM_PEER_BADBYTES);
    }
    loop_call(&lp, SHM_CMD_UNMAP, NULL, 0, 0);
    /* In this process too: a second (receiver) view of the same section sees every rewrite. */
    aipc__shm_seg o;
    ck_assert_int_eq(aipc__shm_seg_open(&o, name, SEG, me), 0);
    for (int i = 0; i < 3; i++) {
        s.view[0] = (uint8_t)('A' + i);
        s.view[100] = (uint8_t)('a' + i);
        ck_assert_int_eq(o.view[0], 'A' + i);
        ck_assert_int_eq(o.view[100], 'a' + i);
    }
    aipc__shm_seg_close(&o);
    aipc__shm_seg_close(&s);
    shm_cmd q = {SHM_CMD_QUIT, 0, 0, 0, {0}};
    DWORD n;
    WriteFile(lp.pipe, &q, sizeof q, &n, NULL);
    ck_assert_int_eq(aipc_proc_wait(&lp.p, aipc_test_wait_ms()), 0);
    aipc_proc_close(&lp.p);
    CloseHandle(lp.pipe);
    free(me);
}
END_TEST

/* A section of our own user named like a segment, with a descriptor admitting us. */
static HANDLE raw_section(const char *name, DWORD flags, uint32_t size)
{
    PSID me = aipc__sec_user_sid();
    char *me_s = sid_string(me), sddl[256];
    snprintf(sddl, sizeof sddl, "O:%sD:P(A;;GA;;;%s)", me_s, me_s);
    PSECURITY_DESCRIPTOR sd = NULL;
    ck_assert(ConvertStringSecurityDescriptorToSecurityDescriptorA(sddl, SDDL_REVISION_1, &sd, NULL));
    SECURITY_ATTRIBUTES sa = {sizeof sa, sd, FALSE};
    char full[96];
    wchar_t w[96];
    snprintf(full, sizeof full, "Local\\%s", name);
    aipc_test_wname(w, 96, full);
    HANDLE h = CreateFileMappingW(INVALID_HANDLE_VALUE, &sa, PAGE_READWRITE | flags, 0, size, w);
    ck_assert_ptr_nonnull(h);
    ck_assert_uint_ne(GetLastError(), ERROR_ALREADY_EXISTS);
    LocalFree(sd);
    LocalFree(me_s);
    free(me);
    return h;
}

/* Reserved (never committed) pages would fault on the receiver's first read; a section smaller
 * than announced is never mapped past its end. Both AIPC_EPROTO, nothing left mapped. */
START_TEST(reserved_or_small_section_refused)
{
    PSID me = aipc__sec_user_sid();
    uint8_t rnd[16] = {0x7e, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15};
    char name[AIPC_SHM_NAME_BUF];
    aipc_shm_name_put(name, sizeof name, GetCurrentProcessId(), rnd, 4000000001u);
    HANDLE h = raw_section(name, SEC_RESERVE, 1u << 20);
    aipc__shm_seg o;
    ck_assert_int_eq(aipc__shm_seg_open(&o, name, 1u << 20, me), AIPC_EPROTO);
    ck_assert_ptr_null(o.view);
    ck_assert_ptr_null(o.h);
    ck_assert_int_eq(aipc__shm_seg_open(&o, name, 4096, me), AIPC_EPROTO);
    CloseHandle(h);
    rnd[0] = 0x7f;
    aipc_shm_name_put(name, sizeof name, GetCurrentProcessId(), rnd, 4000000002u);
    h = raw_section(name, SEC_COMMIT, 65536);
    ck_assert_int_eq(aipc__shm_seg_open(&o, name, 65536 + 4096, me), AIPC_EPROTO);
    ck_assert_ptr_null(o.view);
    ck_assert_int_eq(aipc__shm_seg_open(&o, name, 1u << 20, me), AIPC_EPROTO);
    /* The same section at its size, or less, is fine; the view is exactly what was asked. */
    ck_assert_int_eq(aipc__shm_seg_open(&o, name, 65536, me), 0);
    aipc__shm_seg_close(&o);
    ck_assert_int_eq(aipc__shm_seg_open(&o, name, 8192, me), 0);
    MEMORY_BASIC_INFORMATION mb;
    ck_assert_uint_eq(VirtualQuery(o.view, &mb, sizeof mb), sizeof mb);
    ck_assert_uint_eq(mb.RegionSize, 8192);
    ck_assert_uint_eq(mb.Protect, PAGE_READONLY);
    aipc__shm_seg_close(&o);
    CloseHandle(h);
    free(me);
}
END_TEST

START_TEST(thousand_cycles_flat)
{
    PSID me = aipc__sec_user_sid();
    loop_peer lp;
    loop_start(&lp);
    cycles(&lp, me, 20, SEG);                   /* warm-up: heaps and caches at their size */
    {
        /* Positive control: the probe sees a mapped segment in both processes. */
        aipc_memstat a0, a1, b0, b1;
        aipc_memstat_take(&a0);
        b0 = loop_call(&lp, SHM_CMD_STAT, NULL, 0, 0).stat;
        aipc__shm_seg c;
        char cname[AIPC_SHM_NAME_BUF];
        ck_assert_int_eq(aipc__shm_seg_create(&c, SEG, me, 0, cname, sizeof cname), 0);
        ck_assert_int_eq(loop_call(&lp, SHM_CMD_MAP, cname, SEG, 0).rc, 0);
        aipc_memstat_take(&a1);
        b1 = loop_call(&lp, SHM_CMD_STAT, NULL, 0, 0).stat;
        stat_print("control, suite", &a0, &a1);
        stat_print("control, peer", &b0, &b1);
        ck_assert_int_ge(a1.mapped_bytes - a0.mapped_bytes, SEG);
        ck_assert_int_ge(b1.mapped_bytes - b0.mapped_bytes, SEG);
        loop_call(&lp, SHM_CMD_UNMAP, NULL, 0, 0);
        aipc__shm_seg_close(&c);
    }
    aipc_memstat m0, m1;
    aipc_memstat_take(&m0);
    aipc_memstat p0 = loop_call(&lp, SHM_CMD_STAT, NULL, 0, 0).stat;
    cycles(&lp, me, 1000, SEG);
    aipc_memstat_take(&m1);
    aipc_memstat p1 = loop_call(&lp, SHM_CMD_STAT, NULL, 0, 0).stat;
    stat_print("suite (creator)", &m0, &m1);
    stat_print("peer (receiver)", &p0, &p1);
    ck_assert_int_gt(m0.handles, 0);            /* the probe works under Wine */
    stat_flat(&m0, &m1);
    stat_flat(&p0, &p1);
    ck_assert_int_eq(loop_call(&lp, SHM_CMD_CYCLE, "aipc-1-0123456789abcdeffedcba9876543210-1", 64, 0).rc,
                     SHM_PEER_RC(AIPC_ENOTFOUND));
    shm_cmd q = {SHM_CMD_QUIT, 0, 0, 0, {0}};
    DWORD n;
    WriteFile(lp.pipe, &q, sizeof q, &n, NULL);
    ck_assert_int_eq(aipc_proc_wait(&lp.p, aipc_test_wait_ms()), 0);
    aipc_proc_close(&lp.p);
    CloseHandle(lp.pipe);
    free(me);
}
END_TEST

START_TEST(creator_killed_view_intact)
{
    char ready[96], file[MAX_PATH];
    aipc_test_name(ready, sizeof ready, "shm-created");
    aipc_test_temp_path(file, sizeof file, "shm-name", ".txt");
    HANDLE e_ready = CreateEventA(NULL, TRUE, FALSE, ready);
    aipc_proc p;
    ck_assert_int_eq(aipc_proc_spawn(&p, "shm_seg_peer.exe", "create %u 11 %s %s", SEG, ready, file), 0);
    ck_assert(aipc_test_wait(e_ready, aipc_test_wait_ms()));
    size_t len = 0;
    char *name = aipc_test_read_file(file, &len);
    ck_assert_ptr_nonnull(name);
    ck_assert(aipc_shm_name_valid(name, len));
    PSID me = aipc__sec_user_sid();
    aipc__shm_seg s;
    ck_assert_int_eq(aipc__shm_seg_open(&s, name, SEG, me), 0);
    ck_assert_int_eq(aipc_pattern_check(s.view, SEG, 11), -1);
    aipc_proc_kill(&p);                         /* TerminateProcess while we map it */
    ck_assert_uint_eq(p.exit_code, 99);
    aipc_proc_close(&p);
    ck_assert_int_eq(aipc_pattern_check(s.view, SEG, 11), -1);
    MEMORY_BASIC_INFORMATION mb;                /* still our read-only view */
    ck_assert_uint_eq(VirtualQuery(s.view, &mb, sizeof mb), sizeof mb);
    ck_assert_uint_eq(mb.Protect, PAGE_READONLY);
    ck_assert_uint_ge(mb.RegionSize, SEG);
    aipc__shm_seg o;                            /* the name still opens while we hold it */
    ck_assert_int_eq(aipc__shm_seg_open(&o, name, SEG, me), 0);
    ck_assert_int_eq(aipc_pattern_check(o.view, SEG, 11), -1);
    aipc__shm_seg_close(&o);
    aipc__shm_seg_close(&s);
    ck_assert_int_eq(aipc__shm_seg_open(&o, name, SEG, me), AIPC_ENOTFOUND);   /* gone with us */
    DeleteFileA(file);
    free(name);
    free(me);
    CloseHandle(e_ready);
}
END_TEST

START_TEST(server_grants_the_identified_client)
{
    char pn[96], path[128];
    aipc_test_name(pn, sizeof pn, "shm-ident");
    snprintf(path, sizeof path, "\\\\.\\pipe\\%s", pn);
    HANDLE srv = CreateNamedPipeA(path, PIPE_ACCESS_DUPLEX | FILE_FLAG_FIRST_PIPE_INSTANCE,
                                  PIPE_TYPE_BYTE | PIPE_REJECT_REMOTE_CLIENTS, 1, 4096, 4096, 0, NULL);
    ck_assert_ptr_ne(srv, INVALID_HANDLE_VALUE);
    aipc_proc p;
    ck_assert_int_eq(aipc_proc_spawn(&p, "shm_seg_peer.exe", "client %s %u 21", pn, SEG), 0);
    ck_assert(ConnectNamedPipe(srv, NULL) || GetLastError() == ERROR_PIPE_CONNECTED);
    char b;
    DWORD n;
    ck_assert(ReadFile(srv, &b, 1, &n, NULL) && n == 1);
    ULONG pid = 0;
    ck_assert(GetNamedPipeClientProcessId(srv, &pid));
    ck_assert_uint_eq(pid, p.pid);
    aipc__win_ident id;
    char why[256] = "";
    ck_assert_msg(aipc__win_ident_capture(srv, pid, 77, &id, why, sizeof why) == 0, "%s", why);
    PSID me = aipc__sec_user_sid();
    ck_assert(id.user && EqualSid(id.user, me));
    HANDLE tt = NULL;
    ck_assert_msg(!OpenThreadToken(GetCurrentThread(), TOKEN_QUERY, TRUE, &tt), "still impersonating");
    aipc__shm_seg s;
    char name[64] = {0};
    ck_assert_int_eq(aipc__shm_seg_create(&s, SEG, id.user, id.integrity, name, sizeof name), 0);
    check_descriptor(s.h, me, id.user);
    aipc_pattern_fill(s.view, SEG, 21);
    ck_assert(WriteFile(srv, name, sizeof name, &n, NULL) && n == sizeof name);
    int32_t rc = -1;
    ck_assert(ReadFile(srv, &rc, sizeof rc, &n, NULL) && n == sizeof rc);
    ck_assert_int_eq(rc, 0);
    ck_assert_int_eq(aipc_proc_wait(&p, aipc_test_wait_ms()), 0);
    ck_assert_uint_eq(p.exit_code, 0);
    aipc_proc_close(&p);
    ck_assert_int_eq(aipc_pattern_check(s.view, SEG, 21), -1);
    aipc__shm_seg_close(&s);
    aipc__win_ident_free(&id);
    aipc__win_ident_free(&id);                  /* idempotent */
    CloseHandle(srv);
    free(me);
}
END_TEST

static Suite *make_suite(void)
{
    Suite *s = suite_create("shm_seg");
    TCase *tc = tcase_create("seg");
    tcase_set_timeout(tc, 240);
    tcase_add_test(tc, peer_maps_read_only);
    tcase_add_test(tc, rewritten_slot_seen_by_kept_view);
    tcase_add_test(tc, reserved_or_small_section_refused);
    tcase_add_test(tc, other_sid_only_is_access_denied);
    tcase_add_test(tc, squatted_name_refused);
    tcase_add_test(tc, owner_mismatch_and_bad_names);
    tcase_add_test(tc, thousand_cycles_flat);
    tcase_add_test(tc, creator_killed_view_intact);
    tcase_add_test(tc, server_grants_the_identified_client);
    suite_add_tcase(s, tc);
    return s;
}

static void kill_children(void)
{
    aipc_proc_kill_all();
}

CHECK_MAIN_EX(make_suite, NULL, kill_children, 0u);
