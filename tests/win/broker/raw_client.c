/*
 * raw_client.c - raw-protocol helper process for the broker suites (no SDK).
 *
 *   raw_client pub  PIPE NAME PUBIDX COUNT GO_EVENT [CREDIT_SEMAPHORE]
 *       hello as NAME, wait for GO_EVENT, publish COUNT messages on t/p<PUBIDX>/k<i%4> with
 *       raw_msg_size/raw_msg_seed payloads (batched), then ping-sync; exit 0. With a credit
 *       semaphore, publishes in blocks of 100 and stays at most two blocks ahead of the
 *       subscriber that releases it (flow control for tests that need a reader to keep up).
 *   raw_client sub  PIPE NAME READY_EVENT DONE_EVENT EXPECT [--credit=SEMAPHORE] FILTER...
 *       hello, subscribe to every FILTER, set READY_EVENT; receive EXPECT publications checking
 *       topic-vs-filters, publisher order and payload bytes; after DONE_EVENT, ping-sync and
 *       check that nothing more arrived; exit 0 if all exact.
 *   raw_client hold PIPE N READY_EVENT RELEASE_EVENT
 *       open N connections (hello each), set READY_EVENT, wait for RELEASE_EVENT, close; exit 0.
 *   raw_client midframe PIPE READY_EVENT
 *       hello, then write a header and half of its meta, set READY_EVENT and wait to be killed.
 * Exit codes: 0 ok, 2 usage, 3 connect/hello failed, 4 verification failed, 5 timeout.
 */
#include "raw_proto.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define WAIT_MS 60000u

static HANDLE open_event(const char *name)
{
    HANDLE h = OpenEventA(EVENT_MODIFY_STATE | SYNCHRONIZE, FALSE, name);
    if (!h)
        fprintf(stderr, "raw_client: cannot open event %s (%lu)\n", name, GetLastError());
    return h;
}

/* pub mode (see the file comment). */
static int do_pub(const char *pipe, const char *name, unsigned idx, unsigned count, const char *go,
                  const char *credit)
{
    HANDLE ev = open_event(go);
    HANDLE sem = credit ? OpenSemaphoreA(SYNCHRONIZE, FALSE, credit) : NULL;
    if (credit && !sem)
        return 3;
    raw_conn *c = raw_connect(pipe, WAIT_MS);
    if (!ev || !c || raw_hello(c, name, WAIT_MS) <= 0)
        return 3;
    if (WaitForSingleObject(ev, WAIT_MS) != WAIT_OBJECT_0)
        return 5;
    uint8_t *buf = malloc(65536);
    for (unsigned i = 0; i < count; i++) {
        char meta[128];
        snprintf(meta, sizeof meta, "{\"op\":\"pub\",\"topic\":\"t/p%u/k%u\"}", idx, i % 4);
        uint32_t n = raw_msg_size(idx, i);
        aipc_pattern_fill(buf, n, raw_msg_seed(idx, i));
        raw_queue(c, meta, buf, n);
        if (sem && i % 100 == 99) {
            if (raw_flush(c, WAIT_MS) != 0)
                return 3;
            if (i >= 199 && WaitForSingleObject(sem, WAIT_MS) != WAIT_OBJECT_0)
                return 5;   /* block (i/100 - 1) was not received in time */
        }
        if (c->wlen >= 192 * 1024 && raw_flush(c, WAIT_MS) != 0)
            return 3;
    }
    if (raw_flush(c, WAIT_MS) != 0 || raw_sync(c, 999999, WAIT_MS) != 0)
        return 3;
    free(buf);
    raw_close(c);
    CloseHandle(ev);
    return 0;
}

/* Checks one publication against the filters and the per-publisher order; 0 if good. */
static int check_msg(const raw_frame *f, char **filters, int nf, long long *last)
{
    const char *topic = raw_str(f, "topic");
    int ok = 0;
    for (int i = 0; topic && i < nf; i++)
        ok |= raw_topic_match(filters[i], topic);
    if (!ok) {
        fprintf(stderr, "raw_client: unexpected topic %s\n", topic ? topic : "(none)");
        return -1;
    }
    if (f->payload_len < 4) {
        fprintf(stderr, "raw_client: short payload on %s\n", topic);
        return -1;
    }
    uint32_t seed = (uint32_t)f->payload[0] | ((uint32_t)f->payload[1] << 8) |
                    ((uint32_t)f->payload[2] << 16) | ((uint32_t)f->payload[3] << 24);
    unsigned pub = seed >> 20, seq = seed & 0xFFFFF;
    char expect_topic[64], expect_name[32];
    snprintf(expect_topic, sizeof expect_topic, "t/p%u/k%u", pub, seq % 4);
    const cJSON *from = cJSON_GetObjectItemCaseSensitive(f->meta, "from");
    const cJSON *fname = cJSON_GetObjectItemCaseSensitive(from, "name");
    snprintf(expect_name, sizeof expect_name, "pub%u", pub);
    if (pub >= 64 || strcmp(topic, expect_topic) != 0 || !cJSON_IsString(fname) ||
        strcmp(fname->valuestring, expect_name) != 0) {
        fprintf(stderr, "raw_client: message %u/%u on %s from %s does not belong there\n", pub, seq,
                topic, cJSON_IsString(fname) ? fname->valuestring : "?");
        return -1;
    }
    if (f->payload_len != raw_msg_size(pub, seq) ||
        aipc_pattern_check(f->payload, f->payload_len, seed) != -1) {
        fprintf(stderr, "raw_client: payload of %u/%u corrupt (len %u)\n", pub, seq, f->payload_len);
        return -1;
    }
    if ((long long)seq <= last[pub]) {
        fprintf(stderr, "raw_client: %u/%u after %lld: out of order\n", pub, seq, last[pub]);
        return -1;
    }
    last[pub] = seq;
    return 0;
}

/* sub mode (see the file comment). */
static int do_sub(const char *pipe, const char *name, const char *ready, const char *done,
                  unsigned expect, char **filters, int nf)
{
    HANDLE rev = open_event(ready), dev = open_event(done), sem = NULL;
    if (nf > 0 && strncmp(filters[0], "--credit=", 9) == 0) {
        sem = OpenSemaphoreA(SEMAPHORE_MODIFY_STATE, FALSE, filters[0] + 9);
        if (!sem)
            return 3;
        filters++;
        nf--;
    }
    raw_conn *c = raw_connect(pipe, WAIT_MS);
    if (!rev || !dev || !c || raw_hello(c, name, WAIT_MS) <= 0)
        return 3;
    for (int i = 0; i < nf; i++)
        if (raw_sub(c, filters[i], 100 + i, WAIT_MS) != 0)
            return 3;
    SetEvent(rev);
    long long last[64];
    for (int i = 0; i < 64; i++)
        last[i] = -1;
    unsigned got = 0;
    while (got < expect) {
        raw_frame f;
        int r = raw_recv(c, &f, WAIT_MS);
        if (r != 1) {
            fprintf(stderr, "raw_client %s: got %u of %u, then %s\n", name, got, expect,
                    r == 0 ? "timeout" : "closed");
            return 5;
        }
        if (strcmp(raw_op(&f), "msg") == 0) {
            if (check_msg(&f, filters, nf, last) != 0)
                return 4;
            got++;
            if (sem && got % 100 == 0)
                ReleaseSemaphore(sem, 1, NULL);
        } else {
            fprintf(stderr, "raw_client %s: unexpected %s\n", name, f.meta_text);
            return 4;
        }
        raw_frame_free(&f);
    }
    if (WaitForSingleObject(dev, WAIT_MS) != WAIT_OBJECT_0)
        return 5;
    /* Everything published before DONE is queued ahead of the pong: nothing more may come. */
    if (raw_queue(c, "{\"op\":\"ping\",\"id\":777}", NULL, 0) != 0 || raw_flush(c, WAIT_MS) != 0)
        return 3;
    for (;;) {
        raw_frame f;
        if (raw_recv(c, &f, WAIT_MS) != 1)
            return 5;
        int is_ans = raw_num(&f, "re") == 777;
        if (!is_ans) {
            fprintf(stderr, "raw_client %s: extra frame after %u: %s\n", name, got, f.meta_text);
            return 4;
        }
        raw_frame_free(&f);
        break;
    }
    raw_close(c);
    return 0;
}

/* hold mode (see the file comment). */
static int do_hold(const char *pipe, unsigned n, const char *ready, const char *release)
{
    HANDLE rev = open_event(ready), lev = open_event(release);
    if (!rev || !lev)
        return 3;
    raw_conn **cs = calloc(n, sizeof *cs);
    for (unsigned i = 0; i < n; i++) {
        char name[64];
        snprintf(name, sizeof name, "hold%lu-%u", GetCurrentProcessId(), i);
        cs[i] = raw_connect(pipe, WAIT_MS);
        if (!cs[i]) {
            fprintf(stderr, "raw_client hold: connection %u failed\n", i);
            return 3;
        }
        /* hello for all first, welcomes after: one round trip for the whole batch */
        char meta[128];
        snprintf(meta, sizeof meta, "{\"op\":\"hello\",\"proto\":1,\"name\":\"%s\"}", name);
        if (raw_send(cs[i], meta, NULL, 0, WAIT_MS) != 0)
            return 3;
    }
    for (unsigned i = 0; i < n; i++) {
        raw_frame f;
        if (raw_expect(cs[i], &f, "welcome", -1, WAIT_MS) != 1) {
            fprintf(stderr, "raw_client hold: no welcome on %u\n", i);
            return 3;
        }
        raw_frame_free(&f);
    }
    SetEvent(rev);
    if (WaitForSingleObject(lev, WAIT_MS) != WAIT_OBJECT_0)
        return 5;
    for (unsigned i = 0; i < n; i++)
        raw_close(cs[i]);
    free(cs);
    return 0;
}

/* midframe mode (see the file comment). */
static int do_midframe(const char *pipe, const char *ready)
{
    HANDLE rev = open_event(ready);
    raw_conn *c = raw_connect(pipe, WAIT_MS);
    if (!rev || !c || raw_hello(c, "midframe", WAIT_MS) <= 0)
        return 3;
    static const char meta[] = "{\"op\":\"pub\",\"topic\":\"t/mid\"}";
    uint8_t hdr[8 + 10];
    uint32_t ml = (uint32_t)strlen(meta), pl = 1000;
    memcpy(hdr, &ml, 4);
    memcpy(hdr + 4, &pl, 4);
    memcpy(hdr + 8, meta, 10);
    if (raw_write(c, hdr, sizeof hdr, WAIT_MS) != 0)
        return 3;
    SetEvent(rev);
    Sleep(WAIT_MS);     /* parked until the suite kills this process (bounded) */
    return 5;
}

int main(int argc, char **argv)
{
    if ((argc == 7 || argc == 8) && strcmp(argv[1], "pub") == 0)
        return do_pub(argv[2], argv[3], (unsigned)atoi(argv[4]), (unsigned)atoi(argv[5]), argv[6],
                      argc == 8 ? argv[7] : NULL);
    if (argc >= 8 && strcmp(argv[1], "sub") == 0)
        return do_sub(argv[2], argv[3], argv[4], argv[5], (unsigned)atoi(argv[6]), argv + 7,
                      argc - 7);
    if (argc == 6 && strcmp(argv[1], "hold") == 0)
        return do_hold(argv[2], (unsigned)atoi(argv[3]), argv[4], argv[5]);
    if (argc == 4 && strcmp(argv[1], "midframe") == 0)
        return do_midframe(argv[2], argv[3]);
    fprintf(stderr, "usage: raw_client pub|sub|hold|midframe ... (see raw_client.c)\n");
    return 2;
}
