/*
 * shm_seg_peer.c - the other process of the shm_seg suite (test_shm_seg.c).
 *
 *   shm_seg_peer open NAME SIZE OWNER SEED     opens NAME expecting OWNER (a SID string), checks
 *                                              the pattern SEED over SIZE bytes, that every page
 *                                              is PAGE_READONLY, and that a write into the view
 *                                              faults (exit 0 from the fault handler)
 *   shm_seg_peer squat NAME READY GO           creates section Local\NAME itself (no DACL of
 *                                              ours), sets event READY, waits for event GO
 *   shm_seg_peer create SIZE SEED READY FILE   creates a segment for its own user, fills the
 *                                              pattern, writes the name to FILE, sets READY and
 *                                              waits to be killed
 *   shm_seg_peer loop PIPE                     serves shm_cmd's from the suite's pipe PIPE
 *   shm_seg_peer client PIPE SIZE SEED         opens PIPE at identification level, writes one
 *                                              byte, reads a segment name, opens it expecting
 *                                              its own user as the owner, checks the pattern and
 *                                              writes back the result (int32, as an exit code)
 * Exit codes: shm_seg_common.h.
 */
#include <windows.h>

#include <sddl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aipc_testutil.h"
#include "shm_seg.h"
#include "shm_seg_common.h"
#include "winsec.h"

/* The pattern, and every page of the view read-only. */
static int check_view(aipc__shm_seg *s, uint32_t size, uint32_t seed)
{
    if (aipc_pattern_check(s->view, size, seed) != -1)
        return SHM_PEER_BADBYTES;
    for (const uint8_t *p = s->view; p < s->view + size;) {
        MEMORY_BASIC_INFORMATION mb;
        if (VirtualQuery(p, &mb, sizeof mb) != sizeof mb || mb.Protect != PAGE_READONLY)
            return SHM_PEER_WRITABLE;
        p = (const uint8_t *)mb.BaseAddress + mb.RegionSize;
    }
    return 0;
}

static volatile uint8_t *write_target;

/* The expected fault: a write at write_target. Anything else goes on to the default handling. */
static LONG WINAPI on_fault(EXCEPTION_POINTERS *e)
{
    EXCEPTION_RECORD *r = e->ExceptionRecord;
    if (write_target && r->ExceptionCode == EXCEPTION_ACCESS_VIOLATION && r->NumberParameters >= 2 &&
        r->ExceptionInformation[0] == 1 && r->ExceptionInformation[1] == (ULONG_PTR)write_target)
        ExitProcess(0);
    return EXCEPTION_CONTINUE_SEARCH;
}

static int open_check(const char *name, uint32_t size, PSID owner, uint32_t seed, int try_write)
{
    aipc__shm_seg s;
    int rc = aipc__shm_seg_open(&s, name, size, owner);
    if (rc != 0)
        return SHM_PEER_RC(rc);
    rc = check_view(&s, size, seed);
    if (rc == 0 && try_write) {
        write_target = s.view + size - 1;
        AddVectoredExceptionHandler(1, on_fault);
        *write_target = 0x55;                    /* faults: on_fault exits 0 */
        rc = SHM_PEER_WRITABLE;
    }
    aipc__shm_seg_close(&s);
    aipc__shm_seg_close(&s);                     /* idempotent */
    return rc;
}

static int serve(const char *pipe_name)
{
    char path[256];
    snprintf(path, sizeof path, "\\\\.\\pipe\\%s", pipe_name);
    HANDLE p = CreateFileA(path, GENERIC_READ | GENERIC_WRITE, 0, NULL, OPEN_EXISTING, 0, NULL);
    if (p == INVALID_HANDLE_VALUE)
        return SHM_PEER_BADARGS;
    PSID me = aipc__sec_user_sid();
    aipc__shm_seg kept;
    memset(&kept, 0, sizeof kept);
    for (;;) {
        shm_cmd c;
        shm_reply r;
        DWORD n;
        if (!ReadFile(p, &c, sizeof c, &n, NULL) || n != sizeof c)
            break;
        memset(&r, 0, sizeof r);
        if (c.op == SHM_CMD_QUIT)
            break;
        if (c.op == SHM_CMD_CYCLE) {
            c.name[sizeof c.name - 1] = 0;
            r.rc = open_check(c.name, c.size, me, c.seed, 0);
        } else if (c.op == SHM_CMD_MAP) {
            c.name[sizeof c.name - 1] = 0;
            aipc__shm_seg_close(&kept);
            int rc = aipc__shm_seg_open(&kept, c.name, c.size, me);
            r.rc = rc ? SHM_PEER_RC(rc) : 0;
        } else if (c.op == SHM_CMD_CHECK) {
            r.rc = kept.view ? check_view(&kept, kept.size, c.seed) : SHM_PEER_BADARGS;
        } else if (c.op == SHM_CMD_UNMAP) {
            aipc__shm_seg_close(&kept);
        } else {
            aipc_memstat_take(&r.stat);
        }
        if (!WriteFile(p, &r, sizeof r, &n, NULL) || n != sizeof r)
            break;
    }
    aipc__shm_seg_close(&kept);
    free(me);
    CloseHandle(p);
    return 0;
}

static int client(const char *pipe_name, uint32_t size, uint32_t seed)
{
    char path[256], name[64];
    snprintf(path, sizeof path, "\\\\.\\pipe\\%s", pipe_name);
    HANDLE p = CreateFileA(path, GENERIC_READ | GENERIC_WRITE, 0, NULL, OPEN_EXISTING,
                           SECURITY_SQOS_PRESENT | SECURITY_IDENTIFICATION, NULL);
    DWORD n;
    if (p == INVALID_HANDLE_VALUE || !WriteFile(p, "h", 1, &n, NULL) ||
        !ReadFile(p, name, sizeof name, &n, NULL) || n != sizeof name)
        return SHM_PEER_BADARGS;
    name[sizeof name - 1] = 0;
    PSID me = aipc__sec_user_sid();
    int32_t rc = open_check(name, size, me, seed, 0);
    free(me);
    int ok = WriteFile(p, &rc, sizeof rc, &n, NULL) && n == sizeof rc;
    CloseHandle(p);
    return ok ? 0 : SHM_PEER_BADARGS;
}

int main(int argc, char **argv)
{
    if (argc == 6 && strcmp(argv[1], "open") == 0) {
        PSID owner = NULL;
        if (!ConvertStringSidToSidA(argv[4], &owner))
            return SHM_PEER_BADARGS;
        int rc = open_check(argv[2], (uint32_t)strtoul(argv[3], NULL, 10), owner,
                            (uint32_t)strtoul(argv[5], NULL, 10), 1);
        LocalFree(owner);
        return rc;
    }
    if (argc == 5 && strcmp(argv[1], "squat") == 0) {
        wchar_t w[96];
        char full[96];
        snprintf(full, sizeof full, "Local\\%s", argv[2]);
        aipc_test_wname(w, 96, full);
        HANDLE h = CreateFileMappingW(INVALID_HANDLE_VALUE, NULL, PAGE_READWRITE, 0, 65536, w);
        HANDLE ready = OpenEventA(EVENT_MODIFY_STATE, FALSE, argv[3]);
        HANDLE go = OpenEventA(SYNCHRONIZE, FALSE, argv[4]);
        if (!h || !ready || !go)
            return SHM_PEER_BADARGS;
        SetEvent(ready);
        DWORD w8 = WaitForSingleObject(go, aipc_test_wait_ms());
        CloseHandle(h);
        return w8 == WAIT_OBJECT_0 ? 0 : SHM_PEER_TIMEOUT;
    }
    if (argc == 6 && strcmp(argv[1], "create") == 0) {
        uint32_t size = (uint32_t)strtoul(argv[2], NULL, 10);
        PSID me = aipc__sec_user_sid();
        aipc__shm_seg s;
        char name[AIPC_SHM_NAME_BUF];
        int rc = aipc__shm_seg_create(&s, size, me, 0, name, sizeof name);
        if (rc != 0)
            return SHM_PEER_RC(rc);
        aipc_pattern_fill(s.view, size, (uint32_t)strtoul(argv[3], NULL, 10));
        FILE *f = fopen(argv[5], "wb");
        HANDLE ready = OpenEventA(EVENT_MODIFY_STATE, FALSE, argv[4]);
        if (!f || !ready || fputs(name, f) < 0 || fclose(f) != 0)
            return SHM_PEER_BADARGS;
        SetEvent(ready);
        HANDLE never = CreateEventW(NULL, TRUE, FALSE, NULL);   /* killed by the suite first */
        WaitForSingleObject(never, aipc_test_wait_ms());
        return SHM_PEER_TIMEOUT;
    }
    if (argc == 5 && strcmp(argv[1], "client") == 0)
        return client(argv[2], (uint32_t)strtoul(argv[3], NULL, 10), (uint32_t)strtoul(argv[4], NULL, 10));
    if (argc == 3 && strcmp(argv[1], "loop") == 0)
        return serve(argv[2]);
    fprintf(stderr, "shm_seg_peer: bad arguments\n");
    return SHM_PEER_BADARGS;
}
