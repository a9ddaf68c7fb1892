/*
 * shm_probe_relay.c - a peer acting as the broker between a publisher (the driver) and one
 * subscriber (another peer): it maps the publisher's ring read-only, copies each payload once
 * into its own ring, releases the publisher's slot at once (the ack), and forwards a descriptor
 * to the subscriber, reusing a slot of its own ring once the subscriber acked it. This is the
 * path docs/design/shared-memory.md proposes for broker fan-out, with one subscriber.
 */
#include "shm_probe.h"

static int fail(const char *what)
{
    fprintf(stderr, "relay: %s (%lu)\n", what, GetLastError());
    return -1;
}

static int sub_ack(HANDLE l, uint32_t want)
{
    uint32_t a;
    return bench_read_full(l, &a, sizeof a) == 0 && a == want ? 0 : fail("subscriber ack");
}

/* c->name: the publisher's ring, c->name2: the subscriber's pipe; size, count as for OP_RING.
 * Answers once when both rings are mapped (r->err), then relays; *r is the final answer. */
int probe_relay(HANDLE h, const probe_cmd *c, probe_reply *r)
{
    static int sd_ready;
    if (!sd_ready) {
        probe_init_sid();
        probe_set_sd(L"D:P(A;;GA;;;%ls)");
        sd_ready = 1;
    }
    size_t size = c->size;
    HANDLE ps = OpenFileMappingW(FILE_MAP_READ, FALSE, c->name);
    const uint8_t *pv = ps ? MapViewOfFile(ps, FILE_MAP_READ, 0, 0, 0) : NULL;
    wchar_t nm[96];
    probe_section_name(nm, 96, L"Local\\");
    HANDLE ss = probe_create_section(nm, (uint64_t)size * RING_SLOTS);
    uint8_t *sv = ss ? MapViewOfFile(ss, FILE_MAP_WRITE, 0, 0, 0) : NULL;
    if (!pv || !sv)
        return fail("map the rings");
    HANDLE l = bench_open_pipe(c->name2, 0, 10000);
    probe_cmd rc;
    probe_reply rr;
    memset(&rc, 0, sizeof rc);
    rc.op = OP_RING, rc.size = c->size, rc.count = c->count, rc.arg = 1;
    wcsncpy(rc.name, nm, 95);
    if (bench_write_full(l, &rc, sizeof rc) != 0 || bench_read_full(l, &rr, sizeof rr) != 0 ||
        rr.err)
        return fail("subscriber setup");
    r->err = 0;
    if (bench_write_full(h, r, sizeof *r) != 0)
        return fail("setup answer");
    uint32_t seqs[RING_SLOTS], out = 0, acked = 0;
    for (uint32_t i = 0; i < c->count; i++) {
        probe_desc d;
        if (bench_read_full(h, &d, sizeof d) != 0)
            return fail("publisher descriptor");
        if (out == RING_SLOTS) {
            if (sub_ack(l, seqs[acked++ % RING_SLOTS]) != 0)
                return -1;
            out--;
        }
        uint32_t slot = i % RING_SLOTS;
        memcpy(sv + slot * size, pv + (size_t)d.slot * size, size); /* the one copy */
        if (bench_write_full(h, &d.seq, sizeof d.seq) != 0)             /* publisher's slot free */
            return fail("publisher ack");
        probe_desc o;
        memset(&o, 0, sizeof o);
        o.seq = d.seq, o.slot = slot;
        seqs[slot] = d.seq, out++;
        if (bench_write_full(l, &o, sizeof o) != 0)
            return fail("subscriber descriptor");
    }
    while (out) {
        if (sub_ack(l, seqs[acked++ % RING_SLOTS]) != 0)
            return -1;
        out--;
    }
    memset(&rc, 0, sizeof rc);
    rc.op = OP_QUIT;
    if (bench_read_full(l, &rr, sizeof rr) != 0 || bench_write_full(l, &rc, sizeof rc) != 0)
        return fail("subscriber end");
    CloseHandle(l);
    UnmapViewOfFile(sv);
    CloseHandle(ss);
    UnmapViewOfFile(pv);
    CloseHandle(ps);
    memset(r, 0, sizeof *r);
    return 0;
}
