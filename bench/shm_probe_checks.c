/*
 * shm_probe_checks.c - what Wine supports, printed as CHECK lines: object-name prefixes, the DACL
 * read back and enforced, a killed creator or receiver, leaks over 1000 cycles, pipe types.
 */
#include "shm_probe.h"

#include <aclapi.h>
#include <sddl.h>

void probe_check_names(void)
{
    static const wchar_t *pre[] = {L"", L"Local\\", L"Global\\", L"Session\\0\\", L"Session\\1\\",
                                   L"Session\\2\\"};
    for (int i = 0; i < 6; i++) {
        wchar_t nm[96];
        probe_section_name(nm, 96, pre[i]);
        HANDLE s = probe_create_section(nm, 4096);
        DWORD ce = GetLastError();
        probe_reply r;
        memset(&r, 0, sizeof r);
        if (s) {
            probe_send_cmd(OP_OPEN, 0, 0, FILE_MAP_READ, nm);
            probe_get_reply(&r);
        }
        printf("CHECK name '%ls...': create %s (%lu), peer open %s (%u)\n", pre[i],
               s ? "ok" : "FAILED", (unsigned long)(s ? 0 : ce), s && !r.err ? "ok" : "FAILED",
               r.err);
        if (s)
            CloseHandle(s);
    }
    /* Is Local\X the same object as Session\<own session>\X (the name a service in session 0
     * would use), and what do the other spellings reach? */
    DWORD sess = 0;
    ProcessIdToSessionId(GetCurrentProcessId(), &sess);
    static const wchar_t *cre[2] = {L"Local\\", L"Global\\"};
    for (int i = 0; i < 2; i++) {
        wchar_t nm[96], base[96], alt[4][120];
        probe_section_name(base, 96, L"");
        _snwprintf(nm, 96, L"%ls%ls", cre[i], base);
        HANDLE s = probe_create_section(nm, 4096);
        if (!s)
            bench_fail("name cross check: %lu", GetLastError());
        _snwprintf(alt[0], 120, L"%ls", base);
        _snwprintf(alt[1], 120, L"Local\\%ls", base);
        _snwprintf(alt[2], 120, L"Global\\%ls", base);
        _snwprintf(alt[3], 120, L"Session\\%lu\\%ls", (unsigned long)sess, base);
        for (int j = 0; j < 4; j++) {
            probe_reply r;
            probe_send_cmd(OP_OPEN, 0, 0, FILE_MAP_READ, alt[j]);
            probe_get_reply(&r);
            printf("CHECK created '%ls' (session %lu), peer opens '%ls': %s (%u)\n", nm,
                   (unsigned long)sess, alt[j], r.err ? "FAILED" : "ok", r.err);
        }
        CloseHandle(s);
    }
}

/* Receivers would map copy-on-write (FILE_MAP_COPY) so that OnRecv may write into the buffer
 * (today's contract lets it NUL-terminate in place) without touching the shared copy. The DACL
 * grants the receiver SECTION_MAP_READ only. */
void probe_check_cow(void)
{
    wchar_t nm[96];
    probe_set_sd(L"D:P(A;;0x4;;;%ls)");
    probe_section_name(nm, 96, L"Local\\");
    HANDLE s = probe_create_section(nm, 65536);
    probe_set_sd(L"D:P(A;;GA;;;%ls)");
    uint32_t *v = s ? MapViewOfFile(s, FILE_MAP_WRITE, 0, 0, 0) : NULL;
    if (!v) {
        printf("CHECK cow: creator create/map for write with a read-only DACL FAILED (%lu)\n",
               GetLastError());
        if (s)
            CloseHandle(s);
        return;
    }
    v[0] = 0x11111111;
    probe_reply r;
    probe_send_cmd(OP_OPEN, 0, 0, FILE_MAP_COPY, nm);
    probe_get_reply(&r);
    printf("CHECK cow: creator maps for write despite a read-only DACL: ok; peer FILE_MAP_COPY %s "
           "(%u), peer reads back its write 0x%x; creator's view still 0x%x (%s)\n",
           r.err ? "FAILED" : "ok", r.err, r.val, v[0],
           v[0] == 0x11111111 ? "shared copy untouched" : "SHARED COPY CHANGED");
    UnmapViewOfFile(v);
    CloseHandle(s);
}

void probe_check_dacl(void)
{
    static const wchar_t *sd[] = {L"D:P(A;;GA;;;%ls)", L"D:P(A;;0x4;;;%ls)", L"D:P(A;;GA;;;SY)",
                                  L"D:P", L"D:P(A;;GA;;;%ls)S:(ML;;NRNW;;;ME)",
                                  L"D:P(A;;GA;;;%ls)S:(ML;;NRNW;;;SI)"};
    HANDLE tok;
    uint8_t til[64];
    DWORD n = 0;
    if (OpenProcessToken(GetCurrentProcess(), TOKEN_QUERY, &tok)) {
        if (GetTokenInformation(tok, TokenIntegrityLevel, til, sizeof til, &n)) {
            PSID sid = ((TOKEN_MANDATORY_LABEL *)til)->Label.Sid;
            printf("CHECK own integrity level RID 0x%lx\n",
                   (unsigned long)*GetSidSubAuthority(sid, *GetSidSubAuthorityCount(sid) - 1));
        } else {
            printf("CHECK own integrity level: GetTokenInformation failed (%lu)\n", GetLastError());
        }
        CloseHandle(tok);
    }
    for (int i = 0; i < 6; i++) {
        wchar_t nm[96], *str = NULL;
        probe_set_sd(sd[i]);
        probe_section_name(nm, 96, L"Local\\");
        HANDLE s = probe_create_section(nm, 4096);
        if (!s) {
            printf("CHECK dacl set '%ls': create FAILED (%lu)\n", sd[i], GetLastError());
            continue;
        }
        PSECURITY_DESCRIPTOR got = NULL;
        SECURITY_INFORMATION si = DACL_SECURITY_INFORMATION | LABEL_SECURITY_INFORMATION;
        DWORD e = GetSecurityInfo(s, SE_KERNEL_OBJECT, si, NULL, NULL, NULL, NULL, &got);
        if (e == 0)
            ConvertSecurityDescriptorToStringSecurityDescriptorW(got, SDDL_REVISION_1, si, &str,
                                                                 NULL);
        probe_reply rr, rw;
        probe_send_cmd(OP_OPEN, 0, 0, FILE_MAP_READ, nm);
        probe_get_reply(&rr);
        probe_send_cmd(OP_OPEN, 0, 0, FILE_MAP_WRITE, nm);
        probe_get_reply(&rw);
        HANDLE o = OpenFileMappingW(FILE_MAP_READ, FALSE, nm);
        printf("CHECK dacl set '%ls': GetSecurityInfo %lu -> '%ls'; peer open READ %u, WRITE %u; "
               "creator re-open READ %lu\n", sd[i], (unsigned long)e, str ? str : L"(none)",
               rr.err, rw.err, (unsigned long)(o ? 0 : GetLastError()));
        if (o)
            CloseHandle(o);
        if (str)
            LocalFree(str);
        if (got)
            LocalFree(got);
        CloseHandle(s);
    }
    probe_set_sd(L"D:P(A;;GA;;;%ls)");
}

void probe_check_cycles(void)
{
    probe_reply r;
    probe_fresh_run(MIB, 10, 1, 1, &r); /* warm-up */
    int64_t h0 = probe_handle_count(), p0 = probe_private_bytes(), m0 = probe_mapped_regions();
    double t = probe_fresh_run(MIB, 1000, 1, 1, &r);
    int64_t h1 = probe_handle_count(), p1 = probe_private_bytes(), m1 = probe_mapped_regions();
    printf("CHECK 1000 fresh cycles (%.1f s): sender: GetProcessHandleCount %lld -> %lld, next "
           "handle 0x%llx -> 0x%llx, private KiB %lld -> %lld, mapped KiB %lld -> %lld\n", t,
           (long long)(h0 >> 32), (long long)(h1 >> 32), (long long)(h0 & 0xffffffff),
           (long long)(h1 & 0xffffffff), (long long)p0 / 1024, (long long)p1 / 1024,
           (long long)m0 / 1024, (long long)m1 / 1024);
    printf("CHECK 1000 fresh cycles: receiver: GetProcessHandleCount %lld -> %lld, next handle "
           "0x%llx -> 0x%llx, private KiB %lld -> %lld, mapped KiB %lld -> %lld\n",
           (long long)(r.handles0 >> 32), (long long)(r.handles1 >> 32),
           (long long)(r.handles0 & 0xffffffff), (long long)(r.handles1 & 0xffffffff),
           (long long)r.priv0 / 1024, (long long)r.priv1 / 1024, (long long)r.maps0 / 1024,
           (long long)r.maps1 / 1024);
}

static HANDLE spawn_hold(const wchar_t *how, const wchar_t *nm, const wchar_t *ev)
{
    wchar_t args[300];
    _snwprintf(args, 300, L"hold %ls %ls %ls", how, nm, ev);
    args[299] = 0;
    return bench_spawn_self(args);
}

void probe_check_kill(void)
{
    wchar_t nm[96], ev[96];
    probe_section_name(nm, 96, L"Local\\");
    probe_section_name(ev, 96, L"Local\\ev-");
    HANDLE e = CreateEventW(NULL, TRUE, FALSE, ev);
    HANDLE child = spawn_hold(L"create", nm, ev);
    if (WaitForSingleObject(e, 20000) != WAIT_OBJECT_0)
        bench_fail("hold create did not signal");
    HANDLE s = OpenFileMappingW(FILE_MAP_READ, FALSE, nm);
    const uint8_t *v = s ? MapViewOfFile(s, FILE_MAP_READ, 0, 0, MIB) : NULL;
    if (!v)
        bench_fail("open creator's section: %lu", GetLastError());
    TerminateProcess(child, 9);
    WaitForSingleObject(child, 10000);
    CloseHandle(child);
    uint32_t bad = 0;
    for (uint32_t i = 0; i < MIB; i++)
        bad += v[i] != 0xa5;
    HANDLE again = OpenFileMappingW(FILE_MAP_READ, FALSE, nm);
    DWORD ea = again ? 0 : GetLastError();
    if (again)
        CloseHandle(again);
    UnmapViewOfFile(v);
    CloseHandle(s);
    HANDLE gone = OpenFileMappingW(FILE_MAP_READ, FALSE, nm);
    printf("CHECK creator killed while mapped: receiver's view intact %s (%u bad bytes); name still "
           "opens %s (%lu); after the receiver closed: open %s (%lu)\n", bad ? "NO" : "yes", bad,
           ea ? "no" : "yes", (unsigned long)ea, gone ? "STILL OPENS" : "fails",
           (unsigned long)(gone ? 0 : GetLastError()));
    if (gone)
        CloseHandle(gone);

    probe_section_name(nm, 96, L"Local\\");
    ResetEvent(e);
    s = probe_create_section(nm, MIB);
    child = spawn_hold(L"open", nm, ev);
    if (WaitForSingleObject(e, 20000) != WAIT_OBJECT_0)
        bench_fail("hold open did not signal");
    CloseHandle(s);
    HANDLE held = OpenFileMappingW(FILE_MAP_READ, FALSE, nm);
    DWORD eh = held ? 0 : GetLastError();
    if (held)
        CloseHandle(held);
    TerminateProcess(child, 9);
    WaitForSingleObject(child, 10000);
    CloseHandle(child);
    gone = OpenFileMappingW(FILE_MAP_READ, FALSE, nm);
    printf("CHECK receiver killed while mapped (creator closed first): name opens while it lives %s "
           "(%lu); after TerminateProcess: open %s (%lu)\n", eh ? "no" : "yes", (unsigned long)eh,
           gone ? "STILL OPENS" : "fails", (unsigned long)(gone ? 0 : GetLastError()));
    if (gone)
        CloseHandle(gone);
    CloseHandle(e);
}


/* The capability bit the p2p negotiation could use: a pipe created PIPE_TYPE_MESSAGE but read
 * and written in byte mode. Does the client see the type (GetNamedPipeInfo), and do byte-mode
 * reads still run across message boundaries (so an old peer notices nothing)? In one process. */
void probe_check_pipe_type(void)
{
    static const DWORD types[2] = {PIPE_TYPE_BYTE, PIPE_TYPE_MESSAGE};
    for (int t = 0; t < 2; t++) {
        wchar_t nm[200];
        bench_pipe_name(nm, 200, t ? L"type-msg" : L"type-byte");
        HANDLE sv = CreateNamedPipeW(nm, PIPE_ACCESS_DUPLEX, types[t] | PIPE_READMODE_BYTE |
                                     PIPE_WAIT, 1, 65536, 65536, 0, NULL);
        HANDLE cl = CreateFileW(nm, GENERIC_READ | GENERIC_WRITE, 0, NULL, OPEN_EXISTING,
                                SECURITY_SQOS_PRESENT | SECURITY_IDENTIFICATION, NULL);
        if (sv == INVALID_HANDLE_VALUE || cl == INVALID_HANDLE_VALUE)
            bench_fail("pipe type check: %lu", GetLastError());
        if (!ConnectNamedPipe(sv, NULL) && GetLastError() != ERROR_PIPE_CONNECTED)
            bench_fail("pipe type check: connect %lu", GetLastError());
        DWORD fl = 0, st = 0, got_s = 0, got_c = 0, put = 0;
        BOOL info = GetNamedPipeInfo(cl, &fl, NULL, NULL, NULL);
        GetNamedPipeHandleStateW(cl, &st, NULL, NULL, NULL, NULL, 0);
        uint8_t buf[100];
        for (int i = 0; i < 3; i++) {
            WriteFile(cl, "0123456789", 10, &put, NULL);
            WriteFile(sv, "abcdefghij", 10, &put, NULL);
        }
        BOOL rs = ReadFile(sv, buf, sizeof buf, &got_s, NULL);
        DWORD es = rs ? 0 : GetLastError();
        BOOL rc = ReadFile(cl, buf, sizeof buf, &got_c, NULL);
        DWORD ec = rc ? 0 : GetLastError();
        printf("CHECK pipe created %s, read mode byte: client GetNamedPipeInfo %s flags 0x%lx "
               "(PIPE_TYPE_MESSAGE %s), client state 0x%lx; 3 x 10 B written each way, one 100 B "
               "read: server got %lu (err %lu), client got %lu (err %lu)\n",
               t ? "PIPE_TYPE_MESSAGE" : "PIPE_TYPE_BYTE", info ? "ok" : "FAILED",
               (unsigned long)fl, fl & PIPE_TYPE_MESSAGE ? "set" : "clear", (unsigned long)st,
               (unsigned long)got_s, (unsigned long)es, (unsigned long)got_c, (unsigned long)ec);
        CloseHandle(cl);
        CloseHandle(sv);
    }
}
