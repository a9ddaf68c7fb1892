/*
 * shm_probe_peer.c - the peer side of shm_probe (the spawned "peer" that opens, maps, reads and
 * acknowledges what the driver shares, and the "hold" process the lifetime checks kill), plus the
 * section helpers both sides use (names, security descriptor, leak counters).
 */
#include "shm_probe.h"

#include <sddl.h>

uint8_t *probe_src, *probe_dst;
SECURITY_ATTRIBUTES probe_sa;
wchar_t probe_sid[128];
uint32_t probe_seq;
HANDLE probe_pipe;

/* GetProcessHandleCount (Wine 8 reports 0) and, as a proxy that works under Wine, the value
 * of the next handle (handle tables hand out the lowest free slot: a leak moves it up). */
int64_t probe_handle_count(void)
{
    DWORD n = 0;
    GetProcessHandleCount(GetCurrentProcess(), &n);
    HANDLE e = CreateEventW(NULL, TRUE, FALSE, NULL);
    int64_t next = (int64_t)(uintptr_t)e;
    CloseHandle(e);
    return (int64_t)n << 32 | next;
}

/* Committed bytes of regions of one type (MEM_PRIVATE, MEM_MAPPED), by a VirtualQuery walk:
 * GetProcessMemoryInfo's PrivateUsage is 0 under Wine 8; a leaked view shows up as MEM_MAPPED. */
static int64_t region_bytes(DWORD type)
{
    MEMORY_BASIC_INFORMATION mb;
    int64_t n = 0;
    for (uint8_t *p = 0; VirtualQuery(p, &mb, sizeof mb) == sizeof mb;
         p = (uint8_t *)mb.BaseAddress + mb.RegionSize)
        if (mb.State == MEM_COMMIT && mb.Type == type)
            n += (int64_t)mb.RegionSize;
    return n;
}

int64_t probe_private_bytes(void)
{
    return region_bytes(MEM_PRIVATE);
}

int64_t probe_mapped_regions(void)
{
    return region_bytes(MEM_MAPPED);
}

/* probe_sa: a security descriptor from SDDL with %ls replaced by this process's user SID. */
void probe_set_sd(const wchar_t *fmt)
{
    wchar_t sddl[256];
    _snwprintf(sddl, 256, fmt, probe_sid);
    sddl[255] = 0;
    if (probe_sa.lpSecurityDescriptor)
        LocalFree(probe_sa.lpSecurityDescriptor);
    probe_sa.nLength = sizeof probe_sa;
    probe_sa.bInheritHandle = FALSE;
    if (!ConvertStringSecurityDescriptorToSecurityDescriptorW(sddl, SDDL_REVISION_1,
                                                              &probe_sa.lpSecurityDescriptor, NULL))
        bench_fail("SDDL %ls: %lu", sddl, GetLastError());
}

void probe_init_sid(void)
{
    HANDLE tok;
    uint8_t buf[256];
    DWORD n = 0;
    wchar_t *s = NULL;
    if (!OpenProcessToken(GetCurrentProcess(), TOKEN_QUERY, &tok) ||
        !GetTokenInformation(tok, TokenUser, buf, sizeof buf, &n) ||
        !ConvertSidToStringSidW(((TOKEN_USER *)buf)->User.Sid, &s))
        bench_fail("own SID: %lu", GetLastError());
    wcsncpy(probe_sid, s, 127);
    LocalFree(s);
    CloseHandle(tok);
}

HANDLE probe_create_section(const wchar_t *name, uint64_t size)
{
    return CreateFileMappingW(INVALID_HANDLE_VALUE, &probe_sa, PAGE_READWRITE, (DWORD)(size >> 32),
                              (DWORD)size, name);
}

void probe_section_name(wchar_t *out, size_t n, const wchar_t *prefix)
{
    _snwprintf(out, n, L"%lsaipc-shm-%lu-%u", prefix, (unsigned long)GetCurrentProcessId(),
               ++probe_seq);
    out[n - 1] = 0;
}

/* Peer side: reads one payload the way the receiver would; 0 if it carries `seq`. */
int probe_consume(const uint8_t *v, uint32_t size, uint32_t mode, uint32_t seq)
{
    uint64_t first, last;
    if (mode == 0) {
        memcpy(probe_dst, v, size);
        memcpy(&first, probe_dst, 8);
        memcpy(&last, probe_dst + size - 8, 8);
    } else {
        const volatile uint64_t *w = (const volatile uint64_t *)v;
        uint64_t sum = 0;
        for (uint32_t i = 0; i < size / 8; i++)
            sum += w[i];
        first = w[0];
        last = w[size / 8 - 1] + (sum == 1 ? 1 : 0); /* keeps the sum alive */
    }
    return first == seq && last == seq ? 0 : -1;
}

void probe_stamp(uint8_t *v, uint32_t size, uint32_t seq)
{
    uint64_t s = seq;
    memcpy(v, probe_src, size);
    memcpy(v, &s, 8);
    memcpy(v + size - 8, &s, 8);
}

static int peer_fresh(HANDLE h, const probe_cmd *c, probe_reply *r)
{
    r->handles0 = probe_handle_count(), r->priv0 = probe_private_bytes(), r->maps0 = probe_mapped_regions();
    for (uint32_t i = 0; i < c->count; i++) {
        probe_desc d;
        if (bench_read_full(h, &d, sizeof d) != 0)
            return -1;
        double t0 = bench_now();
        HANDLE s = OpenFileMappingW(FILE_MAP_READ, FALSE, d.name);
        double t1 = bench_now();
        const uint8_t *v = s ? MapViewOfFile(s, FILE_MAP_READ, 0, 0, c->size) : NULL;
        double t2 = bench_now();
        if (!v) {
            fprintf(stderr, "peer: open/map %ls: %lu\n", d.name, GetLastError());
            return -1;
        }
        if (probe_consume(v, c->size, c->arg, d.seq) != 0)
            return -1;
        double t3 = bench_now();
        UnmapViewOfFile(v);
        double t4 = bench_now();
        CloseHandle(s);
        double t5 = bench_now();
        r->ph[0] += t1 - t0, r->ph[1] += t2 - t1, r->ph[2] += t3 - t2, r->ph[3] += t4 - t3;
        r->ph[4] += t5 - t4;
        if (bench_write_full(h, &d.seq, sizeof d.seq) != 0)
            return -1;
    }
    r->handles1 = probe_handle_count(), r->priv1 = probe_private_bytes(), r->maps1 = probe_mapped_regions();
    return 0;
}

static int peer_ring(HANDLE h, const probe_cmd *c, probe_reply *r)
{
    HANDLE s = OpenFileMappingW(FILE_MAP_READ, FALSE, c->name);
    const uint8_t *v = s ? MapViewOfFile(s, FILE_MAP_READ, 0, 0, 0) : NULL;
    r->err = v ? 0 : GetLastError();
    if (bench_write_full(h, r, sizeof *r) != 0 || !v)
        return -1;
    for (uint32_t i = 0; i < c->count; i++) {
        probe_desc d;
        if (bench_read_full(h, &d, sizeof d) != 0 ||
            probe_consume(v + (size_t)d.slot * c->size, c->size, c->arg, d.seq) != 0 ||
            bench_write_full(h, &d.seq, sizeof d.seq) != 0)
            return -1;
    }
    UnmapViewOfFile(v);
    CloseHandle(s);
    return 0;
}

int probe_peer(const wchar_t *name)
{
    HANDLE h = bench_open_pipe(name, 0, 10000);
    probe_dst = malloc(4 * MIB);
    if (!probe_dst)
        return 1;
    memset(probe_dst, 1, 4 * MIB);
    int rc = probe_peer_loop(h);
    CloseHandle(h);
    return rc;
}

/* Executes the commands that arrive on h (from the driver, or from a relay) until OP_QUIT. */
int probe_peer_loop(HANDLE h)
{
    uint8_t *buf = malloc(MIB);
    if (!buf)
        return 1;
    for (;;) {
        probe_cmd c;
        probe_reply r;
        memset(&r, 0, sizeof r);
        if (bench_read_full(h, &c, sizeof c) != 0)
            return 1;
        if (c.op == OP_QUIT)
            break;
        if (c.op == OP_RAW_STREAM) {
            uint64_t want = (uint64_t)c.size * c.count;
            while (r.got < want) {
                DWORD n = 0;
                if (!ReadFile(h, buf, MIB, &n, NULL) && GetLastError() != ERROR_MORE_DATA)
                    return 1;
                r.got += n;
            }
        } else if (c.op == OP_RAW_PING) {
            for (uint32_t i = 0; i < c.count; i++)
                if (bench_read_full(h, buf, c.size) != 0 || bench_write_full(h, buf, c.size) != 0)
                    return 1;
            continue;
        } else if (c.op == OP_FRESH) {
            if (peer_fresh(h, &c, &r) != 0)
                return 1;
        } else if (c.op == OP_RING) {
            if (peer_ring(h, &c, &r) != 0)
                return 1;
        } else if (c.op == OP_OPEN) {
            /* arg: the access; FILE_MAP_COPY: opened for read, mapped copy-on-write, and the
             * first word overwritten (val: what the peer reads back from its own view) */
            int cow = c.arg == FILE_MAP_COPY;
            HANDLE s = OpenFileMappingW(cow ? FILE_MAP_READ : c.arg, FALSE, c.name);
            r.err = s ? 0 : GetLastError();
            if (s) {
                uint32_t *v = MapViewOfFile(s, c.arg, 0, 0, 0);
                r.err = v ? 0 : GetLastError();
                if (v && cow)
                    v[0] = 0xc0ffee;
                if (v)
                    r.val = v[0], UnmapViewOfFile(v);
                CloseHandle(s);
            }
        } else if (c.op == OP_LINK_SERVE) {
            /* The subscriber behind a relay: serve pipe c.name, say so, then take the relay's
             * commands on it until it quits; the reply after that says we are done. */
            HANDLE l = CreateNamedPipeW(c.name, PIPE_ACCESS_DUPLEX, PIPE_TYPE_BYTE |
                                        PIPE_READMODE_BYTE | PIPE_WAIT, 1, PIPE_BUF_SZ,
                                        PIPE_BUF_SZ, 0, NULL);
            r.err = l == INVALID_HANDLE_VALUE ? GetLastError() : 0;
            if (bench_write_full(h, &r, sizeof r) != 0 || r.err)
                return 1;
            if (!ConnectNamedPipe(l, NULL) && GetLastError() != ERROR_PIPE_CONNECTED)
                return 1;
            int rc = probe_peer_loop(l);
            CloseHandle(l);
            if (rc != 0)
                return 1;
        } else if (c.op == OP_RELAY) {
            if (probe_relay(h, &c, &r) != 0)
                return 1;
        }
        if (bench_write_full(h, &r, sizeof r) != 0)
            return 1;
    }
    free(buf);
    return 0;
}

/* "hold create|open NAME EVENT": creates (and fills) or opens and maps NAME, signals EVENT,
 * and waits to be killed. */
int probe_hold(const wchar_t *how, const wchar_t *name, const wchar_t *ev)
{
    HANDLE s = wcscmp(how, L"create") == 0
                   ? CreateFileMappingW(INVALID_HANDLE_VALUE, NULL, PAGE_READWRITE, 0, MIB, name)
                   : OpenFileMappingW(FILE_MAP_READ, FALSE, name);
    uint8_t *v = s ? MapViewOfFile(s, wcscmp(how, L"create") == 0 ? FILE_MAP_WRITE : FILE_MAP_READ,
                                   0, 0, MIB) : NULL;
    HANDLE e = OpenEventW(EVENT_MODIFY_STATE, FALSE, ev);
    if (!v || !e)
        return 1;
    if (wcscmp(how, L"create") == 0)
        memset(v, 0xa5, MIB);
    SetEvent(e);
    Sleep(INFINITE);
    return 0;
}

