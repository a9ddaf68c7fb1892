/*
 * shm_probe.c - measures the Win32 shared-memory primitives a large-payload path would be built
 * on (docs/design/shared-memory.md), against a raw pipe in the same run. Not a test, not in CI.
 *
 * Timed (medians of REPS rounds; every round runs every kind once, so the kinds are interleaved
 * and share the machine's load equally):
 *   local.*      in one process, per phase: CreateFileMappingW (named, explicit DACL), MapViewOfFile,
 *                first touch (memcpy of the payload into the fresh view: page faults + copy),
 *                UnmapViewOfFile, CloseHandle; at 64 KiB, 256 KiB, 1 MiB, 4 MiB.
 *   memcpy.1MiB  a private 1 MiB copy (buffers already faulted in).
 *   raw.*        a byte pipe with 256 KiB buffers (as bench_raw): 1 MiB, 64 KiB and 16 KiB
 *                stream MB/s, 64 B and 1 MiB ping-pong round trips.
 *   fresh.*      one fresh named section per message, across processes: the sender creates, maps,
 *                writes 1 MiB, unmaps and sends a descriptor (the name); the peer opens, maps, reads
 *                1 MiB (copy out, or checksum in place), unmaps, closes and acks; the sender closes
 *                its handle on the ack. Window 1 (round trip) and window 4 (stream).
 *   ring.*       one section of 8 slots mapped once by both: per message the sender copies 1 MiB
 *                into a slot and sends {seq, slot}; the peer reads it (copy out or in place) and
 *                acks. Window 1 (round trip) and 8 (stream); streams at 64 and 16 KiB too (the
 *                threshold question: nothing coalesces the descriptors and acks here).
 *   relay.*      the broker's path: the driver (publisher) -> a relay peer that copies each
 *                payload once into its own ring and acks -> a subscriber peer (in place).
 *   fan*.*       one ring read by 4 and 16 peers (aggregate MB/s), against raw pipes to as many.
 * Checked (CHECK lines, shm_probe_checks.c): object-name prefixes and which spellings reach the
 * same object; the DACL read back (GetSecurityInfo) and enforced on OpenFileMappingW; labels;
 * copy-on-write views with a read-only grant; the next handle value, private and mapped bytes of
 * both processes over 1000 fresh cycles; creator or receiver killed while the other maps the
 * section; a PIPE_TYPE_MESSAGE pipe used in byte mode (the p2p capability bit).
 * Usage: shm_probe [all|checks|p2p|fan] (default all; "fan" spawns 16 peers).
 *
 * "shm_probe peer PIPE" is a spawned peer; "shm_probe hold create|open NAME EVENT" is the
 * process killed by the lifetime checks. Exit code 2 if a measurement could not be made.
 */
#include "shm_probe.h"

/* ---- driver ---------------------------------------------------------------------------------- */

void probe_send_cmd(uint32_t op, uint32_t size, uint32_t count, uint32_t arg, const wchar_t *nm)
{
    probe_send_cmd2(op, size, count, arg, nm, NULL);
}

void probe_send_cmd2(uint32_t op, uint32_t size, uint32_t count, uint32_t arg, const wchar_t *nm,
                     const wchar_t *nm2)
{
    probe_cmd c;
    memset(&c, 0, sizeof c);
    c.op = op, c.size = size, c.count = count, c.arg = arg;
    if (nm)
        wcsncpy(c.name, nm, 95);
    if (nm2)
        wcsncpy(c.name2, nm2, 95);
    if (bench_write_full(probe_pipe, &c, sizeof c) != 0)
        bench_fail("pipe broke (command %u)", op);
}

void probe_get_reply(probe_reply *r)
{
    if (bench_read_full(probe_pipe, r, sizeof *r) != 0)
        bench_fail("pipe broke (reply)");
}

/* In-process cycle: seconds per phase, averaged over n cycles, into ph[0..4]. */
static void local_cycle(uint32_t size, uint32_t n, double ph[5])
{
    wchar_t nm[96];
    memset(ph, 0, 5 * sizeof *ph);
    for (uint32_t i = 0; i < n; i++) {
        probe_section_name(nm, 96, L"Local\\");
        double t0 = bench_now();
        HANDLE s = probe_create_section(nm, size);
        double t1 = bench_now();
        uint8_t *v = s ? MapViewOfFile(s, FILE_MAP_WRITE, 0, 0, size) : NULL;
        double t2 = bench_now();
        if (!v)
            bench_fail("local create/map: %lu", GetLastError());
        probe_stamp(v, size, i);
        double t3 = bench_now();
        UnmapViewOfFile(v);
        double t4 = bench_now();
        CloseHandle(s);
        double t5 = bench_now();
        ph[0] += t1 - t0, ph[1] += t2 - t1, ph[2] += t3 - t2, ph[3] += t4 - t3, ph[4] += t5 - t4;
    }
    for (int k = 0; k < 5; k++)
        ph[k] /= n;
}

static double raw_stream(uint32_t size, uint32_t count)
{
    probe_reply r;
    probe_send_cmd(OP_RAW_STREAM, size, count, 0, NULL);
    double t0 = bench_now();
    for (uint32_t i = 0; i < count; i++)
        if (bench_write_full(probe_pipe, probe_src, size) != 0)
            bench_fail("raw stream: pipe broke");
    probe_get_reply(&r);
    double dt = bench_now() - t0;
    if (r.got != (uint64_t)size * count)
        bench_fail("raw stream: lost bytes");
    return dt;
}

static double raw_ping(uint32_t size, uint32_t count)
{
    probe_send_cmd(OP_RAW_PING, size, count, 0, NULL);
    double t0 = bench_now();
    for (uint32_t i = 0; i < count; i++)
        if (bench_write_full(probe_pipe, probe_src, size) != 0 || bench_read_full(probe_pipe, probe_dst, size) != 0)
            bench_fail("raw ping: pipe broke");
    return (bench_now() - t0) / count;
}

void probe_read_ack(uint32_t want)
{
    uint32_t a;
    if (bench_read_full(probe_pipe, &a, sizeof a) != 0 || a != want)
        bench_fail("ack: pipe broke or out of order");
}

/* Fresh section per message, `window` outstanding; seconds for count messages; r: peer's reply. */
double probe_fresh_run(uint32_t size, uint32_t count, uint32_t window, uint32_t mode,
                        probe_reply *r)
{
    HANDLE hs[16];
    uint32_t seqs[16], head = 0, out = 0;
    probe_send_cmd(OP_FRESH, size, count, mode, NULL);
    double t0 = bench_now();
    for (uint32_t i = 0; i < count; i++) {
        if (out == window) {
            probe_read_ack(seqs[head % 16]);
            CloseHandle(hs[head++ % 16]);
            out--;
        }
        probe_desc d;
        memset(&d, 0, sizeof d);
        probe_section_name(d.name, 64, L"Local\\");
        d.seq = probe_seq;
        HANDLE s = probe_create_section(d.name, size);
        uint8_t *v = s ? MapViewOfFile(s, FILE_MAP_WRITE, 0, 0, size) : NULL;
        if (!v)
            bench_fail("fresh create/map: %lu", GetLastError());
        probe_stamp(v, size, d.seq);
        UnmapViewOfFile(v);
        hs[(head + out) % 16] = s, seqs[(head + out) % 16] = d.seq, out++;
        if (bench_write_full(probe_pipe, &d, sizeof d) != 0)
            bench_fail("fresh: pipe broke");
    }
    while (out) {
        probe_read_ack(seqs[head % 16]);
        CloseHandle(hs[head++ % 16]);
        out--;
    }
    probe_get_reply(r);
    return bench_now() - t0;
}

/* A fresh RING_SLOTS x size section (name into nm[96]), mapped for writing and zeroed. */
static uint8_t *new_ring(wchar_t *nm, uint32_t size, HANDLE *s)
{
    probe_section_name(nm, 96, L"Local\\");
    *s = probe_create_section(nm, (uint64_t)size * RING_SLOTS);
    uint8_t *v = *s ? MapViewOfFile(*s, FILE_MAP_WRITE, 0, 0, 0) : NULL;
    if (!v)
        bench_fail("ring create/map: %lu", GetLastError());
    memset(v, 0, (size_t)size * RING_SLOTS);
    return v;
}

/* One 8-slot section mapped once by both; seconds for count messages. With `link`, the peer on
 * probe_pipe is a relay (the broker) forwarding to the peer serving pipe `link`, and the time
 * runs until the relay reports that the last message was acked behind it. */
static double ring_run_via(uint32_t size, uint32_t count, uint32_t window, uint32_t mode,
                           const wchar_t *link)
{
    wchar_t nm[96];
    probe_reply r;
    HANDLE s;
    uint8_t *v = new_ring(nm, size, &s);
    probe_send_cmd2(link ? OP_RELAY : OP_RING, size, count, mode, nm, link);
    probe_get_reply(&r);
    if (r.err)
        bench_fail("ring: peer could not map (%u)", r.err);
    uint32_t base = probe_seq, out = 0, acked = 0;
    double t0 = bench_now();
    for (uint32_t i = 0; i < count; i++) {
        if (out == window)
            probe_read_ack(base + 1 + acked++), out--;
        probe_desc d;
        memset(&d, 0, sizeof d);
        d.seq = ++probe_seq, d.slot = i % RING_SLOTS;
        probe_stamp(v + (size_t)d.slot * size, size, d.seq);
        out++;
        if (bench_write_full(probe_pipe, &d, sizeof d) != 0)
            bench_fail("ring: pipe broke");
    }
    while (out)
        probe_read_ack(base + 1 + acked++), out--;
    double dt = bench_now() - t0;
    probe_get_reply(&r);
    if (link)
        dt = bench_now() - t0;
    UnmapViewOfFile(v);
    CloseHandle(s);
    return dt;
}

static double ring_run(uint32_t size, uint32_t count, uint32_t window, uint32_t mode)
{
    return ring_run_via(size, count, window, mode, NULL);
}

/* Results: one row per name, one value per round. */
#define MAX_ROWS 64
static const char *g_names[MAX_ROWS];
static double g_vals[MAX_ROWS][REPS];
static int g_rows;

static void put(const char *name, int rep, double v)
{
    int k = 0;
    while (k < g_rows && strcmp(g_names[k], name) != 0)
        k++;
    if (k == g_rows) {
        if (g_rows == MAX_ROWS)
            bench_fail("too many result rows");
        g_names[g_rows++] = _strdup(name);
    }
    g_vals[k][rep] = v;
}

static void report_all(void)
{
    for (int k = 0; k < g_rows; k++)
        bench_report(g_names[k], strstr(g_names[k], "mbs") ? "MB/s" : "us", g_vals[k], REPS, NULL);
    g_rows = 0;
}

static HANDLE g_pipes[FAN_MAX];
static HANDLE g_children[FAN_MAX];
static int g_npeers;

/* Fan-out: one 8-slot section mapped by n peers; each message is copied in once, its descriptor
 * written to every peer, and a slot is reused once every peer acked it. Aggregate seconds. */
static double fan_run(int n, uint32_t size, uint32_t count, uint32_t mode)
{
    wchar_t nm[96];
    probe_reply r;
    HANDLE s;
    uint8_t *v = new_ring(nm, size, &s);
    for (int i = 0; i < n; i++) {
        probe_pipe = g_pipes[i];
        probe_send_cmd(OP_RING, size, count, mode, nm);
        probe_get_reply(&r);
        if (r.err)
            bench_fail("fan: peer %d could not map (%u)", i, r.err);
    }
    uint32_t base = probe_seq, out = 0, acked = 0;
    double t0 = bench_now();
    for (uint32_t m = 0; m < count; m++) {
        if (out == RING_SLOTS) {
            for (int i = 0; i < n; i++)
                probe_pipe = g_pipes[i], probe_read_ack(base + 1 + acked);
            acked++, out--;
        }
        probe_desc d;
        memset(&d, 0, sizeof d);
        d.seq = ++probe_seq, d.slot = m % RING_SLOTS;
        probe_stamp(v + (size_t)d.slot * size, size, d.seq);
        out++;
        for (int i = 0; i < n; i++)
            if (bench_write_full(g_pipes[i], &d, sizeof d) != 0)
                bench_fail("fan: pipe broke");
    }
    while (out) {
        for (int i = 0; i < n; i++)
            probe_pipe = g_pipes[i], probe_read_ack(base + 1 + acked);
        acked++, out--;
    }
    double dt = bench_now() - t0;
    for (int i = 0; i < n; i++)
        probe_pipe = g_pipes[i], probe_get_reply(&r);
    probe_pipe = g_pipes[0];
    UnmapViewOfFile(v);
    CloseHandle(s);
    return dt;
}

/* The same bytes inline: count messages written to each of n pipes in turn. Seconds. */
static double raw_fan(int n, uint32_t size, uint32_t count)
{
    probe_reply r;
    for (int i = 0; i < n; i++)
        probe_pipe = g_pipes[i], probe_send_cmd(OP_RAW_STREAM, size, count, 0, NULL);
    double t0 = bench_now();
    for (uint32_t m = 0; m < count; m++)
        for (int i = 0; i < n; i++)
            if (bench_write_full(g_pipes[i], probe_src, size) != 0)
                bench_fail("raw fan: pipe broke");
    for (int i = 0; i < n; i++) {
        probe_pipe = g_pipes[i], probe_get_reply(&r);
        if (r.got != (uint64_t)size * count)
            bench_fail("raw fan: lost bytes");
    }
    probe_pipe = g_pipes[0];
    return bench_now() - t0;
}

/* Publisher (us) -> relay (peer 1, the broker's part) -> subscriber (peer 2); seconds. */
static double relay_run(uint32_t size, uint32_t count)
{
    wchar_t link[200];
    probe_reply r;
    _snwprintf(link, 200, L"\\\\.\\pipe\\aipc-bench-link-%lu-%u",
               (unsigned long)GetCurrentProcessId(), ++probe_seq);
    link[199] = 0;
    probe_pipe = g_pipes[2];
    probe_send_cmd(OP_LINK_SERVE, 0, 0, 0, link);
    probe_get_reply(&r);
    if (r.err)
        bench_fail("relay: subscriber cannot serve its pipe (%u)", r.err);
    probe_pipe = g_pipes[1];
    double dt = ring_run_via(size, count, RING_SLOTS, 1, link);
    probe_pipe = g_pipes[2];
    probe_get_reply(&r);
    probe_pipe = g_pipes[0];
    return dt;
}

static void timed_p2p(void)
{
    static const uint32_t lsz[4] = {64 * 1024, 256 * 1024, MIB, 4 * MIB};
    static const char *lnm[4] = {"64KiB", "256KiB", "1MiB", "4MiB"};
    static const char *phn[5] = {"create", "map", "touch", "unmap", "close"};
    static const char *pn[5] = {"open", "map", "read", "unmap", "close"};
    char nm[64];
    for (int rep = 0; rep < REPS; rep++) {
        for (int s = 0; s < 4; s++) {
            double ph[5], tot = 0;
            local_cycle(lsz[s], s == 3 ? 16 : 64, ph);
            for (int p = 0; p < 5; p++) {
                snprintf(nm, sizeof nm, "local.%s.%s", lnm[s], phn[p]);
                put(nm, rep, ph[p] * 1e6), tot += ph[p];
            }
            snprintf(nm, sizeof nm, "local.%s.total", lnm[s]);
            put(nm, rep, tot * 1e6);
        }
        double t0 = bench_now();
        for (int i = 0; i < 64; i++)
            memcpy(probe_dst, probe_src, MIB);
        put("memcpy.1MiB.mbs", rep, 64.0 * MIB / (bench_now() - t0) / 1e6);
        put("raw.stream.1MiB.mbs", rep, 32.0 * MIB / raw_stream(MIB, 32) / 1e6);
        /* the threshold question: 64 and 16 KiB messages inline vs through a ring */
        put("raw.stream.64KiB.mbs", rep, 512.0 * 65536 / raw_stream(65536, 512) / 1e6);
        put("ring.inplace.64KiB.stream.mbs", rep,
            1024.0 * 65536 / ring_run(65536, 1024, RING_SLOTS, 1) / 1e6);
        put("raw.stream.16KiB.mbs", rep, 2048.0 * 16384 / raw_stream(16384, 2048) / 1e6);
        put("ring.inplace.16KiB.stream.mbs", rep,
            4096.0 * 16384 / ring_run(16384, 4096, RING_SLOTS, 1) / 1e6);
        put("raw.pingpong.64B.rtt", rep, raw_ping(64, 400) * 1e6);
        put("raw.pingpong.1MiB.rtt", rep, raw_ping(MIB, 24) * 1e6);
        probe_reply r;
        for (uint32_t mode = 0; mode < 2; mode++) {
            const char *m = mode ? "inplace" : "copy";
            snprintf(nm, sizeof nm, "fresh.%s.1MiB.rtt", m);
            put(nm, rep, probe_fresh_run(MIB, 32, 1, mode, &r) / 32 * 1e6);
            snprintf(nm, sizeof nm, "fresh.%s.1MiB.stream.mbs", m);
            put(nm, rep, 64.0 * MIB / probe_fresh_run(MIB, 64, 4, mode, &r) / 1e6);
            snprintf(nm, sizeof nm, "ring.%s.1MiB.rtt", m);
            put(nm, rep, ring_run(MIB, 32, 1, mode) / 32 * 1e6);
            snprintf(nm, sizeof nm, "ring.%s.1MiB.stream.mbs", m);
            put(nm, rep, 128.0 * MIB / ring_run(MIB, 128, RING_SLOTS, mode) / 1e6);
        }
        put("relay.1MiB.stream.mbs", rep, 64.0 * MIB / relay_run(MIB, 64) / 1e6);
        /* the peer's own phases in the last fresh stream (in place) */
        for (int p = 0; p < 5; p++) {
            snprintf(nm, sizeof nm, "fresh.peer.%s", pn[p]);
            put(nm, rep, r.ph[p] / 64 * 1e6);
        }
        fprintf(stderr, "p2p round %d done\n", rep + 1);
    }
    report_all();
}

static void timed_fan(void)
{
    static const int ns[2] = {4, FAN_MAX};
    char nm[64];
    for (int rep = 0; rep < REPS; rep++) {
        for (int j = 0; j < 2; j++) {
            int n = ns[j] < g_npeers ? ns[j] : g_npeers;
            snprintf(nm, sizeof nm, "fan%d.raw.1MiB.aggregate.mbs", n);
            put(nm, rep, (double)n * 8 * MIB / raw_fan(n, MIB, 8) / 1e6);
            snprintf(nm, sizeof nm, "fan%d.ring.inplace.1MiB.aggregate.mbs", n);
            put(nm, rep, (double)n * 64 * MIB / fan_run(n, MIB, 64, 1) / 1e6);
        }
        fprintf(stderr, "fan round %d done\n", rep + 1);
    }
    report_all();
}

/* Starts n peers, each on its own pipe (byte mode, 256 KiB buffers, as bench_raw). */
static void spawn_peers(int n)
{
    for (int i = 0; i < n; i++) {
        wchar_t pname[200], tag[16], args[260];
        _snwprintf(tag, 16, L"shm%d", i);
        tag[15] = 0;
        bench_pipe_name(pname, 200, tag);
        g_pipes[i] = CreateNamedPipeW(pname, PIPE_ACCESS_DUPLEX, PIPE_TYPE_BYTE |
                                      PIPE_READMODE_BYTE | PIPE_WAIT, 1, PIPE_BUF_SZ, PIPE_BUF_SZ,
                                      0, NULL);
        if (g_pipes[i] == INVALID_HANDLE_VALUE)
            bench_fail("CreateNamedPipe: %lu", GetLastError());
        _snwprintf(args, 260, L"peer %ls", pname);
        args[259] = 0;
        g_children[i] = bench_spawn_self(args);
    }
    for (int i = 0; i < n; i++)
        if (!ConnectNamedPipe(g_pipes[i], NULL) && GetLastError() != ERROR_PIPE_CONNECTED)
            bench_fail("ConnectNamedPipe: %lu", GetLastError());
    g_npeers = n;
    probe_pipe = g_pipes[0];
}

/* usage: shm_probe [all|checks|p2p|fan] (default all) */
int wmain(int argc, wchar_t **argv)
{
    if (argc >= 3 && wcscmp(argv[1], L"peer") == 0)
        return probe_peer(argv[2]);
    if (argc >= 5 && wcscmp(argv[1], L"hold") == 0)
        return probe_hold(argv[2], argv[3], argv[4]);
    const wchar_t *what = argc >= 2 ? argv[1] : L"all";
    int all = wcscmp(what, L"all") == 0, fan = all || wcscmp(what, L"fan") == 0;
    probe_init_sid();
    probe_set_sd(L"D:P(A;;GA;;;%ls)");
    probe_src = malloc(4 * MIB), probe_dst = malloc(4 * MIB);
    if (!probe_src || !probe_dst)
        bench_fail("out of memory");
    memset(probe_src, 0x5a, 4 * MIB), memset(probe_dst, 0, 4 * MIB);
    spawn_peers(fan ? FAN_MAX : 3);
    if (all || wcscmp(what, L"checks") == 0) {
        printf("CHECK user SID %ls\n", probe_sid);
        probe_check_pipe_type();
        probe_check_names();
        probe_check_dacl();
        probe_check_cow();
        probe_check_kill();
        probe_check_cycles();
    }
    if (all || wcscmp(what, L"p2p") == 0)
        timed_p2p();
    if (fan)
        timed_fan();
    int bad = 0;
    for (int i = 0; i < g_npeers; i++) {
        probe_pipe = g_pipes[i];
        probe_send_cmd(OP_QUIT, 0, 0, 0, NULL);
        bad |= bench_wait_child(g_children[i], 20000, "shm peer") != 0;
        CloseHandle(g_pipes[i]);
    }
    return bad ? 2 : 0;
}
