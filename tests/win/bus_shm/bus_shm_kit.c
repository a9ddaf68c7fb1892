/* bus_shm_kit.c - the broker's stats and its state from outside, and a checking subscriber,
 * for the broker shared-memory suites that run it hard (see bus_shm_kit.h). */
#ifndef __USE_MINGW_ANSI_STDIO
#define __USE_MINGW_ANSI_STDIO 1
#endif
#include "bus_shm_kit.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

HANDLE bsk_progress;

void bsk_init(void)
{
    if (!bsk_progress)
        bsk_progress = CreateEventW(NULL, FALSE, FALSE, NULL);
}

/* ---- broker ------------------------------------------------------------------------------ */

const char *bsk_broker_gone(const bs_broker *b)
{
    static char text[80];
    DWORD code = 0;
    if (!b->rb.process || WaitForSingleObject(b->rb.process, 0) != WAIT_OBJECT_0)
        return "";
    GetExitCodeProcess(b->rb.process, &code);
    snprintf(text, sizeof text, " (the broker process has exited: code 0x%lx)",
             (unsigned long)code);
    return text;
}

/* ---- stats -------------------------------------------------------------------------------- */

static long long stat_of(const char *json, const char *key)
{
    char k[64];
    snprintf(k, sizeof k, "\"%s\":", key);
    const char *at = strstr(json, k);
    return at ? strtoll(at + strlen(k), NULL, 10) : -1;
}

int bsk_stats_get(aipc_bus *bus, bsk_stats *out)
{
    bt_reply r;
    bt_reply_init(&r);
    DWORD ms = aipc_test_wait_ms();
    int ok = aipc_bus_stats(bus, ms, bt_on_reply, &r) > 0 && bt_reply_wait(&r, ms + 5000) &&
             r.status == 0 && r.data;
    if (ok) {
        const char *j = (const char *)r.data;   /* NUL-terminated by bt_on_reply */
        out->clients = stat_of(j, "clients");
        out->drops = stat_of(j, "drops");
        out->msgs_out = stat_of(j, "msgs_out");
        out->shm_release_frames = stat_of(j, "shm_release_frames");
        out->shm_clients = stat_of(j, "shm_clients");
        out->shm_bytes = stat_of(j, "shm_bytes");
        out->shm_segments = stat_of(j, "shm_segments");
        out->shm_client_segments = stat_of(j, "shm_client_segments");
        out->shm_publications = stat_of(j, "shm_publications");
        out->shm_deliveries = stat_of(j, "shm_deliveries");
        out->shm_inline_fallbacks = stat_of(j, "shm_inline_fallbacks");
        out->shm_in = stat_of(j, "shm_in");
        out->shm_bad_releases = stat_of(j, "shm_bad_releases");
        out->shm_page_releases = stat_of(j, "shm_page_releases");
        out->shm_pages = stat_of(j, "shm_pages");
    }
    bt_reply_free(&r);
    return ok ? 0 : -1;
}

int bsk_stats_until(aipc_bus *via, int (*want)(const bsk_stats *, const bsk_stats *),
                    const bsk_stats *ref, bsk_stats *out)
{
    uint64_t until = aipc_test_now_ms() + aipc_test_wait_ms();
    for (;;) {
        if (bsk_stats_get(via, out) != 0)
            return 0;
        if (want(out, ref))
            return 1;
        if (aipc_test_now_ms() >= until)
            return 0;
        /* what the broker does on its own (releases, a dead pipe) sends us nothing to wait
         * on: its counters are asked again after a short pause */
        WaitForSingleObject(bsk_progress, 10);
    }
}

/* ---- the broker from outside -------------------------------------------------------------- */

int bsk_outside_take(HANDLE process, bsk_outside *out)
{
    HANDLE e = CreateEventW(NULL, TRUE, FALSE, NULL), there = NULL, back = NULL;
    if (!e)
        return -1;
    BOOL dup = DuplicateHandle(GetCurrentProcess(), e, process, &there, 0, FALSE,
                               DUPLICATE_SAME_ACCESS);
    CloseHandle(e);
    if (!dup)
        return -1;
    out->next_handle = (long long)(uintptr_t)there;
    /* close it in the broker again (brought back here and closed: DUPLICATE_CLOSE_SOURCE) */
    if (!DuplicateHandle(process, there, GetCurrentProcess(), &back, 0, FALSE,
                         DUPLICATE_CLOSE_SOURCE | DUPLICATE_SAME_ACCESS))
        return -1;
    CloseHandle(back);
    MEMORY_BASIC_INFORMATION mb;
    long long n = 0;
    for (uint8_t *p = 0; VirtualQueryEx(process, p, &mb, sizeof mb) == sizeof mb;
         p = (uint8_t *)mb.BaseAddress + mb.RegionSize)
        if (mb.State == MEM_COMMIT && mb.Type == MEM_MAPPED)
            n += (long long)mb.RegionSize;
    out->mapped_bytes = n;
    return n > 0 ? 0 : -1;
}

long long bsk_outside_handles(HANDLE process)
{
    HANDLE e = CreateEventW(NULL, TRUE, FALSE, NULL), there[BSK_PROBES];
    if (!e)
        return -1;
    int n = 0;
    uintptr_t top = 0;
    for (; n < BSK_PROBES; n++) {
        there[n] = NULL;
        if (!DuplicateHandle(GetCurrentProcess(), e, process, &there[n], 0, FALSE,
                             DUPLICATE_SAME_ACCESS))
            break;
        if ((uintptr_t)there[n] > top)
            top = (uintptr_t)there[n];
    }
    CloseHandle(e);
    int ok = n == BSK_PROBES;
    for (int i = 0; i < n; i++) {
        HANDLE back = NULL;
        if (DuplicateHandle(process, there[i], GetCurrentProcess(), &back, 0, FALSE,
                            DUPLICATE_CLOSE_SOURCE | DUPLICATE_SAME_ACCESS))
            CloseHandle(back);
        else
            ok = 0;
    }
    /* values are (slot + 1) * 4: top / 4 slots, BSK_PROBES of them ours */
    return ok ? (long long)(top / 4) - BSK_PROBES : -1;
}

/* ---- checking subscriber ------------------------------------------------------------------ */

static void note(bsk_sub *s, const char *fmt, long long a, long long b)
{
    if (!s->error[0])
        snprintf(s->error, sizeof s->error, fmt, a, b);
}

/* I/O thread (or the dispatcher's thread): order and bytes of one publication. */
static void on_message(aipc_bus *bus, void *user, const char *topic, const aipc_bus_peer *from,
                       bool retained, const void *data, size_t len)
{
    (void)bus, (void)topic, (void)from, (void)retained;
    bsk_sub *s = user;
    uint32_t seq = 0;
    if (len >= 4)
        memcpy(&seq, data, 4);
    LONG64 want = s->next_seq;
    if (len < 4 || (s->allow_gaps ? seq < want : seq != want)) {
        note(s, "publication %lld arrived when %lld was expected", (long long)seq, (long long)want);
        InterlockedIncrement64(&s->bad);
    } else {
        long long at = aipc_pattern_check(data, len, seq);
        if (at >= 0) {
            note(s, "publication %lld differs at byte %lld", (long long)seq, at);
            InterlockedIncrement64(&s->bad);
        }
    }
    InterlockedExchange64(&s->next_seq, (LONG64)seq + 1);
    if (s->stall && len >= BS_THR) {
        InterlockedExchange(&s->stalled, 1);
        SetEvent(bsk_progress);
        WaitForSingleObject(s->stall, INFINITE);   /* holds the slot until killed or released */
        s->stall = NULL;                           /* once: the test owns and closes the event */
        InterlockedExchange(&s->stalled, 0);
    } else if (s->slow && len < BS_THR) {
        WaitForSingleObject(s->slow, s->slow_ms);
    }
    InterlockedIncrement64(&s->got);
    SetEvent(bsk_progress);
}

static void on_dropped(aipc_bus *bus, void *user, uint64_t count)
{
    (void)bus;
    bsk_sub *s = user;
    InterlockedAdd64(&s->dropped, (LONG64)count);
    SetEvent(bsk_progress);
}

static void on_state(aipc_bus *bus, void *user, aipc_bus_state st, int err)
{
    (void)bus;
    bsk_sub *s = user;
    InterlockedExchange(&s->last_state, (LONG)st);
    InterlockedExchange(&s->last_error, (LONG)err);
    if (st == AIPC_BUS_CONNECTED)
        InterlockedIncrement64(&s->connected);
    InterlockedIncrement64(&s->states);
    SetEvent(bsk_progress);
}

void bsk_sub_options(bsk_sub *s, aipc_bus_options *o, const wchar_t *pipe, PipeImplType engine)
{
    bsk_init();
    aipc_bus_options_init(o);
    o->pipe_name = pipe;
    o->engine = engine;
    o->user = s;
    o->reconnect = 0;
    o->on_message = on_message;
    o->on_dropped = on_dropped;
    o->on_state = on_state;
}

int bsk_wait64(volatile LONG64 *field, long long target)
{
    return bsk_wait_pump(NULL, NULL, field, target);
}

int bsk_wait_pump(aipc_dispatcher *d, HANDLE done, volatile LONG64 *field, long long target)
{
    uint64_t until = aipc_test_now_ms() + aipc_test_wait_ms();
    for (;;) {
        if (d)
            aipc_dispatcher_run(d, 0);
        if (done ? WaitForSingleObject(done, 0) == WAIT_OBJECT_0 : *field >= target)
            return 1;
        uint64_t now = aipc_test_now_ms();
        if (now >= until)
            return 0;
        HANDLE h[3];
        DWORD n = 0;
        h[n++] = bsk_progress;
        if (done)
            h[n++] = done;
        if (d)
            h[n++] = (HANDLE)aipc_dispatcher_event(d);
        WaitForMultipleObjects(n, h, FALSE, (DWORD)(until - now < 200 ? until - now : 200));
    }
}

int bsk_sub_open(bsk_sub *s, const aipc_bus_options *o, const char *topic)
{
    if (aipc_bus_connect(o, &s->bus) != 0)
        return -1;
    if (!bsk_wait_pump(o->dispatcher, NULL, &s->connected, 1))
        return -1;
    if (topic && aipc_bus_subscribe(s->bus, topic) != 0)
        return -1;
    return bsk_sync(s->bus, o->dispatcher);
}

int bsk_sync(aipc_bus *bus, aipc_dispatcher *d)
{
    bt_reply r;
    bt_reply_init(&r);
    int ok = aipc_bus_ping(bus, aipc_test_wait_ms(), bt_on_reply, &r) > 0 &&
             bsk_wait_pump(d, r.done, NULL, 0) && r.status == 0;
    bt_reply_free(&r);
    return ok ? 0 : -1;
}

int bsk_open(bsk_sub *s, const bs_broker *b, PipeImplType engine, const char *topic)
{
    aipc_bus_options o;
    memset(s, 0, sizeof *s);
    bsk_sub_options(s, &o, b->wpipe, engine);
    return bsk_sub_open(s, &o, topic);
}

void bsk_sub_close(bsk_sub *s)
{
    if (s->bus)
        aipc_bus_close(s->bus);
    s->bus = NULL;
}

int bsk_publish(aipc_bus *pub, const char *topic, uint8_t *buf, size_t size, uint32_t seq)
{
    aipc_pattern_fill(buf, size, seq);
    uint64_t until = aipc_test_now_ms() + aipc_test_wait_ms();
    for (;;) {
        int rc = aipc_bus_publish(pub, topic, buf, size, false);
        if (rc != AIPC_EQUEUEFULL || aipc_test_now_ms() >= until)
            return rc;
        /* our queue is full until the broker releases or reads: it tells us through nothing
         * we can wait on, so give the I/O thread a moment */
        Sleep(1);
    }
}

void bsk_on_thread(LPTHREAD_START_ROUTINE fn, void *arg)
{
    HANDLE t = CreateThread(NULL, 0, fn, arg, 0, NULL);
    ck_assert_ptr_nonnull(t);
    ck_assert_int_eq(WaitForSingleObject(t, aipc_test_wait_ms()), WAIT_OBJECT_0);
    CloseHandle(t);
}

aipc_bus_counters bsk_counters(aipc_bus *bus)
{
    aipc_bus_counters c;
    memset(&c, 0, sizeof c);
    c.size = sizeof c;
    if (aipc_bus_get_counters(bus, &c) != 0)
        c.size = 0;
    return c;
}
