/*
 * raw_proto.c - raw wire-protocol client and broker process control (see raw_proto.h).
 */
#include "raw_proto.h"

#include <psapi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "wine_procmem.h"

#define RAW_HDR 8u

/* Little-endian u32 helpers (the header format of SPEC section 3). */
static void put32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); p[2] = (uint8_t)(v >> 16); p[3] = (uint8_t)(v >> 24);
}

static uint32_t get32(const uint8_t *p)
{
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}

raw_conn *raw_connect(const char *pipe, DWORD timeout_ms)
{
    char path[300];
    if (strncmp(pipe, "\\\\.\\pipe\\", 9) == 0)
        snprintf(path, sizeof path, "%s", pipe);
    else
        snprintf(path, sizeof path, "\\\\.\\pipe\\%s", pipe);
    uint64_t until = aipc_test_now_ms() + timeout_ms;
    HANDLE h = INVALID_HANDLE_VALUE;
    for (;;) {
        h = CreateFileA(path, GENERIC_READ | GENERIC_WRITE, 0, NULL, OPEN_EXISTING,
                        FILE_FLAG_OVERLAPPED | SECURITY_SQOS_PRESENT | SECURITY_IDENTIFICATION,
                        NULL);
        if (h != INVALID_HANDLE_VALUE)
            break;
        DWORD er = GetLastError();
        uint64_t now = aipc_test_now_ms();
        if (now >= until || (er != ERROR_PIPE_BUSY && er != ERROR_FILE_NOT_FOUND))
            return NULL;
        /* Busy: wait for an instance (bounded); not created yet: WaitNamedPipe fails at once,
         * so the loop is bounded by the deadline and by WaitNamedPipe's own timeout. */
        if (!WaitNamedPipeA(path, (DWORD)(until - now > 200 ? 200 : until - now)) &&
            GetLastError() == ERROR_FILE_NOT_FOUND)
            Sleep(5);   /* the server is not up yet and there is nothing to wait on */
    }
    raw_conn *c = calloc(1, sizeof *c);
    c->h = h;
    c->rev = CreateEventW(NULL, TRUE, FALSE, NULL);
    c->wev = CreateEventW(NULL, TRUE, FALSE, NULL);
    c->rcap = 256 * 1024;
    c->rbuf = malloc(c->rcap);
    return c;
}

void raw_close(raw_conn *c)
{
    if (!c)
        return;
    CloseHandle(c->h);
    CloseHandle(c->rev);
    CloseHandle(c->wev);
    free(c->rbuf);
    free(c->wbuf);
    free(c);
}

int raw_write(raw_conn *c, const void *data, size_t len, DWORD timeout_ms)
{
    const uint8_t *p = data;
    uint64_t until = aipc_test_now_ms() + timeout_ms;
    while (len > 0) {
        DWORD chunk = len > (1u << 20) ? (1u << 20) : (DWORD)len;
        OVERLAPPED ov = { 0 };
        ov.hEvent = c->wev;
        ResetEvent(c->wev);
        DWORD n = 0;
        if (!WriteFile(c->h, p, chunk, NULL, &ov)) {
            if (GetLastError() != ERROR_IO_PENDING)
                return -1;
            uint64_t now = aipc_test_now_ms();
            DWORD left = until > now ? (DWORD)(until - now) : 0;
            if (WaitForSingleObject(c->wev, left) != WAIT_OBJECT_0) {
                CancelIoEx(c->h, &ov);
                GetOverlappedResult(c->h, &ov, &n, TRUE);
                return -1;
            }
        }
        if (!GetOverlappedResult(c->h, &ov, &n, TRUE) || n == 0)
            return -1;
        p += n;
        len -= n;
    }
    return 0;
}

int raw_queue(raw_conn *c, const char *meta, const void *payload, uint32_t payload_len)
{
    size_t ml = meta ? strlen(meta) : 0;
    size_t need = c->wlen + RAW_HDR + ml + payload_len;
    if (need > c->wcap) {
        size_t cap = c->wcap ? c->wcap : 65536;
        while (cap < need)
            cap *= 2;
        uint8_t *nb = realloc(c->wbuf, cap);
        if (!nb)
            return -1;
        c->wbuf = nb;
        c->wcap = cap;
    }
    put32(c->wbuf + c->wlen, (uint32_t)ml);
    put32(c->wbuf + c->wlen + 4, payload_len);
    memcpy(c->wbuf + c->wlen + RAW_HDR, meta, ml);
    if (payload_len)
        memcpy(c->wbuf + c->wlen + RAW_HDR + ml, payload, payload_len);
    c->wlen = need;
    return 0;
}

int raw_flush(raw_conn *c, DWORD timeout_ms)
{
    int rc = c->wlen ? raw_write(c, c->wbuf, c->wlen, timeout_ms) : 0;
    c->wlen = 0;
    return rc;
}

int raw_send(raw_conn *c, const char *meta, const void *payload, uint32_t payload_len,
             DWORD timeout_ms)
{
    if (raw_queue(c, meta, payload, payload_len) != 0)
        return -1;
    return raw_flush(c, timeout_ms);
}

/* Reads more bytes into rbuf (bounded). Returns 1 read something, 0 timeout, -1 closed. */
static int fill(raw_conn *c, DWORD timeout_ms)
{
    if (c->closed)
        return -1;
    if (c->rpos > 0) {
        memmove(c->rbuf, c->rbuf + c->rpos, c->rhave - c->rpos);
        c->rhave -= c->rpos;
        c->rpos = 0;
    }
    if (c->rcap - c->rhave < 65536) {
        size_t cap = c->rcap * 2;
        uint8_t *nb = realloc(c->rbuf, cap);
        if (!nb)
            return -1;
        c->rbuf = nb;
        c->rcap = cap;
    }
    OVERLAPPED ov = { 0 };
    ov.hEvent = c->rev;
    ResetEvent(c->rev);
    DWORD n = 0;
    if (!ReadFile(c->h, c->rbuf + c->rhave, (DWORD)(c->rcap - c->rhave), NULL, &ov)) {
        DWORD er = GetLastError();
        if (er != ERROR_IO_PENDING) {
            c->closed = 1;
            return -1;
        }
        if (WaitForSingleObject(c->rev, timeout_ms) != WAIT_OBJECT_0) {
            CancelIoEx(c->h, &ov);
            if (GetOverlappedResult(c->h, &ov, &n, TRUE) && n > 0) {
                c->rhave += n;          /* data raced the cancel: keep it */
                return 1;
            }
            return 0;
        }
    }
    if (!GetOverlappedResult(c->h, &ov, &n, TRUE)) {
        if (GetLastError() != ERROR_MORE_DATA) {
            c->closed = 1;
            return -1;
        }
    }
    c->rhave += n;
    return 1;
}

int raw_recv(raw_conn *c, raw_frame *f, DWORD timeout_ms)
{
    memset(f, 0, sizeof *f);
    uint64_t until = aipc_test_now_ms() + timeout_ms;
    for (;;) {
        size_t avail = c->rhave - c->rpos;
        if (avail >= RAW_HDR) {
            uint32_t ml = get32(c->rbuf + c->rpos), pl = get32(c->rbuf + c->rpos + 4);
            if (ml > (1u << 20) || pl > (1u << 30))
                return -1;
            if (avail >= RAW_HDR + (size_t)ml + pl) {
                const uint8_t *m = c->rbuf + c->rpos + RAW_HDR;
                f->meta_len = ml;
                f->meta_text = malloc(ml + 1);
                memcpy(f->meta_text, m, ml);
                f->meta_text[ml] = 0;
                f->payload_len = pl;
                f->payload = malloc((size_t)pl + 1);
                memcpy(f->payload, m + ml, pl);
                f->payload[pl] = 0;
                f->meta = cJSON_ParseWithLength(f->meta_text, ml);
                c->rpos += RAW_HDR + (size_t)ml + pl;
                return 1;
            }
            if (RAW_HDR + (size_t)ml + pl > c->rcap - c->rpos) {
                size_t cap = c->rcap;
                while (cap < RAW_HDR + (size_t)ml + pl + 65536)
                    cap *= 2;
                uint8_t *nb = realloc(c->rbuf, cap);
                if (!nb)
                    return -1;
                c->rbuf = nb;
                c->rcap = cap;
            }
        }
        uint64_t now = aipc_test_now_ms();
        if (now >= until)
            return 0;
        int r = fill(c, (DWORD)(until - now));
        if (r <= 0)
            return r;
    }
}

void raw_frame_free(raw_frame *f)
{
    cJSON_Delete(f->meta);
    free(f->meta_text);
    free(f->payload);
    memset(f, 0, sizeof *f);
}

const char *raw_op(const raw_frame *f)
{
    const char *s = raw_str(f, "op");
    return s ? s : "";
}

const char *raw_str(const raw_frame *f, const char *key)
{
    const cJSON *v = f->meta ? cJSON_GetObjectItemCaseSensitive(f->meta, key) : NULL;
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

double raw_num(const raw_frame *f, const char *key)
{
    const cJSON *v = f->meta ? cJSON_GetObjectItemCaseSensitive(f->meta, key) : NULL;
    return cJSON_IsNumber(v) ? v->valuedouble : -1;
}

int raw_expect(raw_conn *c, raw_frame *f, const char *op, long long re, DWORD timeout_ms)
{
    uint64_t until = aipc_test_now_ms() + timeout_ms;
    for (;;) {
        uint64_t now = aipc_test_now_ms();
        int r = raw_recv(c, f, now < until ? (DWORD)(until - now) : 0);
        if (r <= 0)
            return r;
        const char *o = raw_op(f);
        if (strcmp(o, op) == 0 && (re < 0 || raw_num(f, "re") == (double)re))
            return 1;
        if (strcmp(o, "error") == 0 && strcmp(op, "error") != 0)
            return -2;
        raw_frame_free(f);
    }
}

long long raw_hello(raw_conn *c, const char *name, DWORD timeout_ms)
{
    char meta[300];
    if (name)
        snprintf(meta, sizeof meta, "{\"op\":\"hello\",\"proto\":1,\"name\":\"%s\"}", name);
    else
        snprintf(meta, sizeof meta, "{\"op\":\"hello\",\"proto\":1}");
    if (raw_send(c, meta, NULL, 0, timeout_ms) != 0)
        return -1;
    raw_frame f;
    if (raw_expect(c, &f, "welcome", -1, timeout_ms) != 1) {
        raw_frame_free(&f);
        return -1;
    }
    long long id = (long long)raw_num(&f, "id");
    raw_frame_free(&f);
    return id;
}

int raw_sub(raw_conn *c, const char *filter, long long id, DWORD timeout_ms)
{
    char meta[600];
    snprintf(meta, sizeof meta, "{\"op\":\"sub\",\"topic\":\"%s\",\"id\":%lld}", filter, id);
    if (raw_send(c, meta, NULL, 0, timeout_ms) != 0)
        return -1;
    raw_frame f;
    int r = raw_expect(c, &f, "ok", id, timeout_ms);
    raw_frame_free(&f);
    return r == 1 ? 0 : -1;
}

int raw_sync(raw_conn *c, long long id, DWORD timeout_ms)
{
    char meta[100];
    snprintf(meta, sizeof meta, "{\"op\":\"ping\",\"id\":%lld}", id);
    if (raw_queue(c, meta, NULL, 0) != 0 || raw_flush(c, timeout_ms) != 0)
        return -1;
    /* The answer to a ping with an id: pong (and/or ok) carrying re == id. */
    uint64_t until = aipc_test_now_ms() + timeout_ms;
    for (;;) {
        raw_frame f;
        uint64_t now = aipc_test_now_ms();
        int r = raw_recv(c, &f, now < until ? (DWORD)(until - now) : 0);
        if (r <= 0)
            return -1;
        int done = raw_num(&f, "re") == (double)id;
        raw_frame_free(&f);
        if (done)
            return 0;
    }
}

int raw_topic_match(const char *filter, const char *topic)
{
    if ((filter[0] == '+' || filter[0] == '#') && topic[0] == '$')
        return 0;
    const char *f = filter, *t = topic;
    for (;;) {
        const char *fe = strchr(f, '/'), *te = strchr(t, '/');
        size_t fl = fe ? (size_t)(fe - f) : strlen(f);
        size_t tl = te ? (size_t)(te - t) : strlen(t);
        if (fl == 1 && f[0] == '#')
            return 1;
        if (!(fl == 1 && f[0] == '+') && (fl != tl || memcmp(f, t, fl) != 0))
            return 0;
        if (!fe || !te) {
            if (!fe && !te)
                return 1;
            /* "a/#" matches "a" as well (MQTT: # includes the parent level). */
            return fe && !te && strcmp(fe + 1, "#") == 0;
        }
        f = fe + 1;
        t = te + 1;
    }
}

double raw_stat(raw_conn *c, const char *key, long long id, DWORD timeout_ms)
{
    char meta[64];
    snprintf(meta, sizeof meta, "{\"op\":\"stats\",\"id\":%lld}", id);
    raw_frame f;
    if (!c || raw_send(c, meta, NULL, 0, timeout_ms) != 0 ||
        raw_expect(c, &f, "stats", id, timeout_ms) != 1)
        return -1;
    cJSON *st = cJSON_ParseWithLength((const char *)f.payload, f.payload_len);
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(st, key);
    double d = cJSON_IsNumber(v) ? v->valuedouble : -1;
    cJSON_Delete(st);
    raw_frame_free(&f);
    return d;
}

void raw_flat_filter(char *out, size_t cap, int i)
{
    snprintf(out, cap, "flood/%d/#", i);
}

void raw_deep_topic(char *out, size_t cap, int i)
{
    int n = snprintf(out, cap, "d%d", i);
    for (int l = 1; l < 256 && (size_t)n + 3 < cap; l++) {
        out[n++] = '/';
        out[n++] = 'x';
    }
    out[n] = 0;
}

/* ---- broker process -------------------------------------------------------------------------- */

int raw_broker_start(raw_broker *b, const char *tag, const char *extra_json)
{
    return raw_broker_start_exe(b, NULL, tag, extra_json);
}

int raw_broker_start_exe(raw_broker *b, const char *exe, const char *tag, const char *extra_json)
{
    memset(b, 0, sizeof *b);
    aipc_test_name(b->pipe, sizeof b->pipe, tag);
    aipc_test_temp_path(b->config, sizeof b->config, tag, ".json");
    aipc_test_temp_path(b->log, sizeof b->log, tag, ".log");
    char json[2048], logesc[2 * MAX_PATH];
    size_t j = 0;
    for (const char *p = b->log; *p && j + 2 < sizeof logesc; p++) {
        if (*p == '\\')
            logesc[j++] = '\\';
        logesc[j++] = *p;
    }
    logesc[j] = 0;
    snprintf(json, sizeof json, "{\"pipe_name\":\"%s\",\"log_file\":\"%s\",\"log_level\":\"info\"%s%s}",
             b->pipe, logesc, extra_json ? "," : "", extra_json ? extra_json : "");
    FILE *fp = fopen(b->config, "wb");
    if (!fp)
        return -1;
    fputs(json, fp);
    fclose(fp);

    char evname[128], dir[MAX_PATH], app[MAX_PATH], cmd[3 * MAX_PATH];
    aipc_test_name(evname, sizeof evname, "ready");
    aipc_test_name(b->stop_name, sizeof b->stop_name, "stop");
    HANDLE ev = CreateEventA(NULL, TRUE, FALSE, evname);
    b->stop_event = CreateEventA(NULL, TRUE, FALSE, b->stop_name);
    DWORD n = GetModuleFileNameA(NULL, dir, MAX_PATH);
    while (n > 0 && dir[n - 1] != '\\')
        n--;
    dir[n] = 0;
    snprintf(app, sizeof app, "%s%s", exe ? "" : dir, exe ? exe : "asyncipc-broker.exe");
    snprintf(cmd, sizeof cmd, "\"%s\" run --config \"%s\" --ready-event %s --stop-event %s", app,
             b->config, evname, b->stop_name);
    STARTUPINFOA si = { sizeof si };
    PROCESS_INFORMATION pi;
    if (!aipc_test_create_process(app, cmd, FALSE, CREATE_NEW_PROCESS_GROUP, &si, &pi)) {
        fprintf(stderr, "raw_broker_start: CreateProcess(%s) failed: %lu\n", app, GetLastError());
        CloseHandle(ev);
        return -1;
    }
    /* in the suite's kill-on-close job: a suite that ends with a failed assertion (or dies)
     * takes its broker along, which would otherwise hold ctest's output pipe open */
    aipc_test_job_assign(pi.hProcess);
    CloseHandle(pi.hThread);
    b->process = pi.hProcess;
    b->pid = pi.dwProcessId;
    HANDLE hs[2] = { ev, pi.hProcess };
    DWORD w = WaitForMultipleObjects(2, hs, FALSE, AIPC_TEST_WAIT_MS);
    CloseHandle(ev);
    if (w != WAIT_OBJECT_0) {
        fprintf(stderr, "raw_broker_start: broker did not become ready (%lu)\n", w);
        raw_broker_stop(b, 0);
        return -1;
    }
    aipc_procmem_find(b->procdir, sizeof b->procdir, b->stop_name, "asyncipc-broker");
    return 0;
}

int raw_broker_stop(raw_broker *b, DWORD ms)
{
    if (!b->process)
        return -1;
    int rc = -1;
    if (ms > 0) {
        /* The clean-stop path of `run` without a console (Ctrl+C needs one; Wine test
         * processes have none): the broker's --stop-event. */
        SetEvent(b->stop_event);
        if (WaitForSingleObject(b->process, ms) == WAIT_OBJECT_0) {
            DWORD code = 0;
            GetExitCodeProcess(b->process, &code);
            rc = (int)code;
        }
    }
    if (rc < 0) {
        TerminateProcess(b->process, 99);
        WaitForSingleObject(b->process, 5000);
    }
    CloseHandle(b->process);
    b->process = NULL;
    CloseHandle(b->stop_event);
    b->stop_event = NULL;
    return rc;
}

size_t raw_broker_private_bytes(const raw_broker *b)
{
    if (b->procdir[0]) {
        double v = aipc_procmem_vmdata(b->procdir);
        return v > 0 ? (size_t)v : 0;
    }
    PROCESS_MEMORY_COUNTERS_EX pmc = { 0 };
    pmc.cb = sizeof pmc;
    if (!GetProcessMemoryInfo(b->process, (PROCESS_MEMORY_COUNTERS *)&pmc, sizeof pmc))
        return 0;
    return pmc.PrivateUsage ? pmc.PrivateUsage : pmc.PagefileUsage;
}

int raw_broker_threads(const raw_broker *b)
{
    return (int)aipc_procmem_status(b->procdir, "Threads:");
}

uint32_t raw_msg_seed(unsigned pub, unsigned seq)
{
    return ((uint32_t)pub << 20) | (uint32_t)seq;
}

uint32_t raw_msg_size(unsigned pub, unsigned seq)
{
    /* Mostly small messages; every 97th is large enough to be written in place (40 KiB). */
    if (seq % 97 == 13)
        return 40000 + pub;
    return 4 + (seq * 37 + pub * 11) % 300;
}
