/*
 * aipc.exe - command-line bus client (SPEC section 5).
 *
 *   aipc pub TOPIC [MSG|-] [--retain]         publish MSG (or stdin for "-" / no MSG)
 *   aipc sub FILTER... [--count N] [--json]   print publications (one line each)
 *   aipc send NAME MSG                        direct message
 *   aipc req NAME MSG [--timeout MS]          request; prints the reply
 *   aipc serve NAME [--count N]               answer requests with their own payload (echo)
 *   aipc stats                                broker counters (JSON)
 *   aipc ping                                 round trip to the broker
 *   common: --pipe NAME   --connect-timeout MS   --help
 *
 * Exit codes: 0 success; 1 the operation failed (no broker, refused, timed out, connection
 * lost); 2 bad arguments. Every failure prints one line "aipc: ..." on stderr.
 *
 * Threads: the main thread parses arguments and waits on events; the SDK's callbacks (I/O
 * thread) record results and signal those events.
 */
#include <windows.h>
#include <shellapi.h>

#include <fcntl.h>
#include <io.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "asyncipc/asyncipc.h"

#define EXIT_FAIL  1
#define EXIT_USAGE 2
#define DEFAULT_CONNECT_TIMEOUT_MS 2000u
#define DEFAULT_REQ_TIMEOUT_MS     5000u

/* Shared between the main thread and the callbacks (I/O thread). */
typedef struct cli {
    HANDLE ev_state;         /* connected, or failed */
    HANDLE ev_done;          /* the command finished (count reached, reply, error, Ctrl+C) */
    CRITICAL_SECTION lock;
    volatile LONG connected; /* 1 once CONNECTED was reported */
    volatile LONG failed;    /* an error ended the command */
    int error;               /* AIPC_E* of the failure */
    char message[512];       /* the one-line failure text */
    long long count;         /* sub/serve: stop after this many (0 = run until stopped) */
    volatile LONG64 seen;
    int json;
    int serve_echo;
    char pipe[300];          /* pipe name for messages */
    /* reply of req/stats/ping */
    int reply_status;
    char *reply;
    size_t reply_len;
} cli;

static cli g;
static const char *g_cmd = "";

/* Prints "aipc: <text>" on stderr. */
static void fail_line(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("aipc: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    fflush(stderr);
}

/* Records the first failure (any thread) and ends the wait. */
static void set_failed(int err, const char *fmt, ...)
{
    EnterCriticalSection(&g.lock);
    if (!g.failed) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(g.message, sizeof g.message, fmt, ap);
        va_end(ap);
        g.error = err;
        InterlockedExchange(&g.failed, 1);
    }
    LeaveCriticalSection(&g.lock);
    SetEvent(g.ev_state);
    SetEvent(g.ev_done);
}

static void usage(FILE *to)
{
    fputs("usage: aipc pub TOPIC [MSG|-] [--retain]\n"
          "       aipc sub FILTER... [--count N] [--json]\n"
          "       aipc send NAME MSG\n"
          "       aipc req NAME MSG [--timeout MS]\n"
          "       aipc serve NAME [--count N]\n"
          "       aipc stats\n"
          "       aipc ping\n"
          "options: --pipe NAME (default \\\\.\\pipe\\asyncipc.broker), --connect-timeout MS\n"
          "exit codes: 0 success, 1 failure, 2 bad arguments\n", to);
}

/* "aipc: <msg>" + exit 2. */
static int bad_args(const char *fmt, ...)
{
    char line[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    fail_line("%s (see aipc --help)", line);
    return EXIT_USAGE;
}

/* ---- callbacks (I/O thread) ------------------------------------------------------------ */

static void on_state(aipc_bus *bus, void *user, aipc_bus_state st, int err)
{
    if (st == AIPC_BUS_CONNECTED) {
        InterlockedExchange(&g.connected, 1);
        SetEvent(g.ev_state);
        return;
    }
    if (st == AIPC_BUS_CLOSED)
        return;
    if (!g.connected) {
        if (err == AIPC_ENOTFOUND || err == AIPC_ETIMEDOUT)
            set_failed(err, "cannot connect to the broker on %s: %s", g.pipe,
                       err == AIPC_ENOTFOUND ? "no broker is listening" : "timed out");
        else
            set_failed(err, "cannot connect to the broker on %s: %s", g.pipe, aipc_strerror(err));
    } else if (st == AIPC_BUS_DISCONNECTED || st == AIPC_BUS_RECONNECTING) {
        if (!g.serve_echo)
            set_failed(err ? err : AIPC_EDISCONNECTED, "lost the connection to the broker: %s",
                       aipc_strerror(err ? err : AIPC_EDISCONNECTED));
    }
}

static void on_error(aipc_bus *bus, void *user, int err, const char *code, const char *msg)
{
    if (g.serve_echo)
        fprintf(stderr, "aipc: broker error %s: %s\n", code, msg);
    else
        set_failed(err, "broker refused: %s", msg && msg[0] ? msg : code);
}

/* Writes a JSON string for payload bytes: text when it has no NUL, else base64. */
static void json_payload(cJSON *o, const void *data, size_t len)
{
    const unsigned char *p = data;
    if (!memchr(p, 0, len)) {
        char *s = malloc(len + 1);
        if (!s)
            return;
        memcpy(s, p, len);
        s[len] = 0;
        cJSON_AddStringToObject(o, "payload", s);
        free(s);
        return;
    }
    static const char tbl[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    char *s = malloc((len + 2) / 3 * 4 + 1), *w = s;
    if (!s)
        return;
    for (size_t i = 0; i < len; i += 3) {
        uint32_t v = (uint32_t)p[i] << 16;
        if (i + 1 < len) v |= (uint32_t)p[i + 1] << 8;
        if (i + 2 < len) v |= p[i + 2];
        *w++ = tbl[(v >> 18) & 63];
        *w++ = tbl[(v >> 12) & 63];
        *w++ = i + 1 < len ? tbl[(v >> 6) & 63] : '=';
        *w++ = i + 2 < len ? tbl[v & 63] : '=';
    }
    *w = 0;
    cJSON_AddStringToObject(o, "payload_base64", s);
    free(s);
}

static void on_message(aipc_bus *bus, void *user, const char *topic, const aipc_bus_peer *from,
                       bool retained, const void *data, size_t len)
{
    if (g.count && g.seen >= g.count)
        return;
    if (g.json) {
        cJSON *o = cJSON_CreateObject(), *f = cJSON_AddObjectToObject(o, "from");
        cJSON_AddStringToObject(o, "topic", topic);
        cJSON_AddNumberToObject(f, "id", (double)from->id);
        cJSON_AddStringToObject(f, "name", from->name);
        cJSON_AddNumberToObject(f, "pid", from->pid);
        cJSON_AddBoolToObject(o, "retained", retained);
        json_payload(o, data, len);
        char *s = cJSON_PrintUnformatted(o);
        if (s)
            printf("%s\n", s);
        cJSON_free(s);
        cJSON_Delete(o);
    } else {
        printf("%s ", topic);
        fwrite(data, 1, len, stdout);
        putchar('\n');
    }
    fflush(stdout);
    LONG64 n = InterlockedIncrement64(&g.seen);
    if (g.count && n >= g.count)
        SetEvent(g.ev_done);
}

static void on_request(aipc_bus *bus, void *user, const aipc_bus_peer *from, uint64_t req_id,
                       const void *data, size_t len)
{
    int rc = aipc_bus_reply(bus, from->id, req_id, data, len);
    if (rc != 0)
        fprintf(stderr, "aipc: cannot reply to request %llu: %s\n", (unsigned long long)req_id,
                aipc_strerror(rc));
    LONG64 n = InterlockedIncrement64(&g.seen);
    if (g.count && n >= g.count)
        SetEvent(g.ev_done);
}

/* Completion of req/stats/ping: keeps a copy of the answer. */
static void on_reply(aipc_bus *bus, void *user, int status, const aipc_bus_peer *from,
                     const void *data, size_t len)
{
    if (status != 0) {
        const char *what = user;
        if (status == AIPC_EREFUSED)
            set_failed(status, "%s refused by the broker: %.*s", what, (int)len, (const char *)data);
        else if (status == AIPC_ETIMEDOUT)
            set_failed(status, "%s timed out", what);
        else
            set_failed(status, "%s failed: %s", what, aipc_strerror(status));
        return;
    }
    EnterCriticalSection(&g.lock);
    g.reply = malloc(len + 1);
    if (g.reply) {
        memcpy(g.reply, data, len);
        g.reply[len] = 0;
        g.reply_len = len;
    }
    LeaveCriticalSection(&g.lock);
    SetEvent(g.ev_done);
}

static BOOL WINAPI on_ctrl(DWORD type)
{
    SetEvent(g.ev_done);   /* Ctrl+C / Ctrl+Break: finish normally */
    return TRUE;
}

/* ---- helpers (main thread) --------------------------------------------------------------- */

/* Parses a non-negative decimal; 0 on error. */
static int parse_u32(const char *s, uint32_t *out)
{
    char *end = NULL;
    if (!s || !*s || *s == '-')
        return 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (*end || v > 0xFFFFFFFFull)
        return 0;
    *out = (uint32_t)v;
    return 1;
}

/* Local argument checks (the same rules the SDK and the broker apply), so that bad arguments
 * are reported with exit code 2 before any connection is made. */
static int name_ok(const char *s)
{
    size_t n = 0;
    for (; s[n]; n++) {
        char c = s[n];
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-') || n >= 128)
            return 0;
    }
    return n > 0;
}

static int topic_ok(const char *s)
{
    return s[0] && s[0] != '$' && !strpbrk(s, "+#");
}

static int filter_ok(const char *s)
{
    size_t n = strlen(s);
    if (n == 0)
        return 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] != '+' && s[i] != '#')
            continue;
        if ((i > 0 && s[i - 1] != '/') || (i + 1 < n && s[i + 1] != '/'))
            return 0;
        if (s[i] == '#' && i + 1 != n)
            return 0;
    }
    return 1;
}

/* Reads all of stdin (binary). */
static char *read_stdin(size_t *len)
{
    _setmode(_fileno(stdin), _O_BINARY);
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap);
    while (buf) {
        if (n == cap) {
            char *nb = realloc(buf, cap * 2);
            if (!nb) {
                free(buf);
                return NULL;
            }
            buf = nb;
            cap *= 2;
        }
        size_t got = fread(buf + n, 1, cap - n, stdin);
        if (got == 0)
            break;
        n += got;
    }
    *len = n;
    return buf;
}

/* Waits for CONNECTED (or the failure), bounded by the connect timeout plus slack. */
static int wait_connected(uint32_t connect_timeout)
{
    DWORD w = WaitForSingleObject(g.ev_state, connect_timeout + 5000);
    if (g.failed)
        return 0;
    if (w != WAIT_OBJECT_0 || !g.connected) {
        set_failed(AIPC_ETIMEDOUT, "cannot connect to the broker on %s: timed out", g.pipe);
        return 0;
    }
    return 1;
}

/* Waits for ev_done up to ms (INFINITE allowed); returns 1 unless the command failed. */
static int wait_done(DWORD ms, const char *what)
{
    DWORD w = WaitForSingleObject(g.ev_done, ms);
    if (g.failed)
        return 0;
    if (w != WAIT_OBJECT_0) {
        set_failed(AIPC_ETIMEDOUT, "%s timed out", what);
        return 0;
    }
    return 1;
}

/* Converts the wide command line to UTF-8 arguments. */
static char **utf8_args(int *argc)
{
    wchar_t **wv = CommandLineToArgvW(GetCommandLineW(), argc);
    if (!wv)
        return NULL;
    char **v = calloc((size_t)*argc + 1, sizeof *v);
    for (int i = 0; v && i < *argc; i++) {
        int n = WideCharToMultiByte(CP_UTF8, 0, wv[i], -1, NULL, 0, NULL, NULL);
        v[i] = malloc(n > 0 ? (size_t)n : 1);
        if (!v[i] || n <= 0 || !WideCharToMultiByte(CP_UTF8, 0, wv[i], -1, v[i], n, NULL, NULL)) {
            if (v[i])
                v[i][0] = 0;
        }
    }
    LocalFree(wv);
    return v;
}

static wchar_t *to_wide(const char *s)
{
    int n = MultiByteToWideChar(CP_UTF8, 0, s, -1, NULL, 0);
    wchar_t *w = n > 0 ? malloc((size_t)n * sizeof *w) : NULL;
    if (w && !MultiByteToWideChar(CP_UTF8, 0, s, -1, w, n)) {
        free(w);
        w = NULL;
    }
    return w;
}

/* ---- main ------------------------------------------------------------------------------- */

int main(void)
{
    int argc = 0;
    char **argv = utf8_args(&argc);
    if (!argv) {
        fail_line("cannot read the command line");
        return EXIT_FAIL;
    }
    _setmode(_fileno(stdout), _O_BINARY);

    /* split options from positional arguments */
    const char *pipe = NULL, *pos[64];
    int npos = 0, retain = 0, json = 0, have_count = 0, have_timeout = 0;
    uint32_t count = 0, timeout = DEFAULT_REQ_TIMEOUT_MS, ctimeout = DEFAULT_CONNECT_TIMEOUT_MS;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0 || strcmp(a, "/?") == 0) {
            usage(stdout);
            return 0;
        } else if (strcmp(a, "--pipe") == 0 || strcmp(a, "--count") == 0 ||
                   strcmp(a, "--timeout") == 0 || strcmp(a, "--connect-timeout") == 0) {
            if (i + 1 >= argc)
                return bad_args("%s needs a value", a);
            const char *v = argv[++i];
            if (strcmp(a, "--pipe") == 0) {
                pipe = v;
            } else {
                uint32_t n;
                if (!parse_u32(v, &n) || n == 0)
                    return bad_args("%s needs a positive number, not '%s'", a, v);
                if (strcmp(a, "--count") == 0) {
                    count = n;
                    have_count = 1;
                } else if (strcmp(a, "--timeout") == 0) {
                    timeout = n;
                    have_timeout = 1;
                } else {
                    ctimeout = n;
                }
            }
        } else if (strcmp(a, "--retain") == 0) {
            retain = 1;
        } else if (strcmp(a, "--json") == 0) {
            json = 1;
        } else if (a[0] == '-' && a[1] == '-') {
            return bad_args("unknown option '%s'", a);
        } else {
            if (npos == (int)(sizeof pos / sizeof pos[0]))
                return bad_args("too many arguments");
            pos[npos++] = a;
        }
    }
    if (npos == 0)
        return bad_args("missing command");
    g_cmd = pos[0];
    const char *cmd = pos[0];
    int nargs = npos - 1;
    const char **args = pos + 1;

    /* per-command argument checks */
    int is_pub = !strcmp(cmd, "pub"), is_sub = !strcmp(cmd, "sub"), is_send = !strcmp(cmd, "send"),
        is_req = !strcmp(cmd, "req"), is_serve = !strcmp(cmd, "serve"),
        is_stats = !strcmp(cmd, "stats"), is_ping = !strcmp(cmd, "ping");
    if (!(is_pub || is_sub || is_send || is_req || is_serve || is_stats || is_ping))
        return bad_args("unknown command '%s'", cmd);
    if (retain && !is_pub)
        return bad_args("--retain is only valid with pub");
    if (json && !is_sub)
        return bad_args("--json is only valid with sub");
    if (have_count && !is_sub && !is_serve)
        return bad_args("--count is only valid with sub and serve");
    if (have_timeout && !is_req && !is_ping && !is_stats)
        return bad_args("--timeout is only valid with req, ping and stats");
    if (is_pub && (nargs < 1 || nargs > 2))
        return bad_args("pub needs TOPIC [MSG|-]");
    if (is_sub && nargs < 1)
        return bad_args("sub needs at least one FILTER");
    if ((is_send || is_req) && nargs != 2)
        return bad_args("%s needs NAME MSG", cmd);
    if (is_serve && nargs != 1)
        return bad_args("serve needs NAME");
    if ((is_stats || is_ping) && nargs != 0)
        return bad_args("%s takes no arguments", cmd);
    /* validate what the SDK would reject, with a precise message */
    if (is_pub && !topic_ok(args[0]))
        return bad_args("bad topic '%s' (no wildcards, no leading '$')", args[0]);
    for (int i = 0; is_sub && i < nargs; i++)
        if (!filter_ok(args[i]))
            return bad_args("bad filter '%s' ('+' and '#' must be whole levels, '#' last)", args[i]);
    if ((is_send || is_req || is_serve) && !name_ok(args[0]))
        return bad_args("bad client name '%s' (1-128 of A-Z a-z 0-9 . _ -)", args[0]);
    aipc_bus_options o;
    aipc_bus_options_init(&o);
    wchar_t *wpipe = NULL;
    if (pipe) {
        wpipe = to_wide(pipe);
        if (!wpipe || !wpipe[0])
            return bad_args("bad pipe name '%s'", pipe);
        o.pipe_name = wpipe;
    }
    if (is_serve)
        o.name = args[0];
    o.reconnect = is_serve;           /* an echo service survives broker restarts */
    o.connect_timeout_ms = ctimeout;
    o.on_state = on_state;
    o.on_error = on_error;
    o.on_message = on_message;
    o.on_request = on_request;

    g.ev_state = CreateEventW(NULL, TRUE, FALSE, NULL);
    g.ev_done = CreateEventW(NULL, TRUE, FALSE, NULL);
    InitializeCriticalSection(&g.lock);
    g.json = json;
    g.count = count;
    g.serve_echo = is_serve;
    snprintf(g.pipe, sizeof g.pipe, "%s%s", pipe && strncmp(pipe, "\\\\.\\pipe\\", 9) == 0 ? "" : "\\\\.\\pipe\\",
             pipe ? pipe : "asyncipc.broker");

    /* payload for pub */
    const char *msg = NULL;
    size_t msg_len = 0;
    char *stdin_buf = NULL;
    if (is_pub) {
        if (nargs < 2 || strcmp(args[1], "-") == 0) {
            stdin_buf = read_stdin(&msg_len);
            if (!stdin_buf) {
                fail_line("cannot read the message from stdin");
                return EXIT_FAIL;
            }
            msg = stdin_buf;
        } else {
            msg = args[1];
            msg_len = strlen(msg);
        }
    } else if (is_send || is_req) {
        msg = args[1];
        msg_len = strlen(msg);
    }

    aipc_bus *bus = NULL;
    int rc = aipc_bus_connect(&o, &bus);
    if (rc == AIPC_EINVAL) {
        return bad_args(is_serve ? "bad client name '%s' or pipe name" : "bad pipe name%s",
                        is_serve ? args[0] : "");
    }
    if (rc != 0) {
        fail_line("cannot start the bus client: %s", aipc_strerror(rc));
        return EXIT_FAIL;
    }
    SetConsoleCtrlHandler(on_ctrl, TRUE);
    int ok = wait_connected(ctimeout);

    if (ok && is_pub) {
        rc = aipc_bus_publish(bus, args[0], msg, msg_len, retain != 0);
        if (rc == AIPC_EINVAL) {
            aipc_bus_close(bus);
            return bad_args("bad topic '%s' (no wildcards, no leading '$')", args[0]);
        }
        if (rc != 0)
            set_failed(rc, "publish failed: %s", aipc_strerror(rc));
        /* a ping after the publication: once answered, the broker has processed it */
        else if ((rc = (int)aipc_bus_ping(bus, timeout, on_reply, "publish")) < 0)
            set_failed(rc, "publish failed: %s", aipc_strerror(rc));
        ok = !g.failed && wait_done(timeout + 5000, "publish");
    } else if (ok && is_sub) {
        for (int i = 0; i < nargs; i++) {
            rc = aipc_bus_subscribe(bus, args[i]);
            if (rc == AIPC_EINVAL) {
                aipc_bus_close(bus);
                return bad_args("bad filter '%s'", args[i]);
            }
            if (rc != 0) {
                set_failed(rc, "subscribe failed: %s", aipc_strerror(rc));
                break;
            }
        }
        ok = !g.failed && wait_done(INFINITE, "sub");
    } else if (ok && is_send) {
        rc = aipc_bus_send(bus, args[0], msg, msg_len);
        if (rc == AIPC_EINVAL) {
            aipc_bus_close(bus);
            return bad_args("bad client name '%s'", args[0]);
        }
        if (rc != 0)
            set_failed(rc, "send failed: %s", aipc_strerror(rc));
        else if ((rc = (int)aipc_bus_ping(bus, timeout, on_reply, "send")) < 0)
            set_failed(rc, "send failed: %s", aipc_strerror(rc));
        ok = !g.failed && wait_done(timeout + 5000, "send");
    } else if (ok && is_req) {
        int64_t id = aipc_bus_request(bus, args[0], msg, msg_len, timeout, on_reply, "request");
        if (id == AIPC_EINVAL) {
            aipc_bus_close(bus);
            return bad_args("bad client name '%s'", args[0]);
        }
        if (id < 0)
            set_failed((int)id, "request failed: %s", aipc_strerror((int)id));
        ok = !g.failed && wait_done(timeout + 5000, "request");
        if (ok && g.reply) {
            fwrite(g.reply, 1, g.reply_len, stdout);
            putchar('\n');
        }
    } else if (ok && is_serve) {
        fprintf(stderr, "aipc: serving '%s' (echo); Ctrl+C stops\n", args[0]);
        ok = !g.failed && wait_done(INFINITE, "serve");
    } else if (ok && (is_stats || is_ping)) {
        uint64_t t0 = GetTickCount64();
        int64_t id = is_stats ? aipc_bus_stats(bus, timeout, on_reply, "stats")
                              : aipc_bus_ping(bus, timeout, on_reply, "ping");
        if (id < 0)
            set_failed((int)id, "%s failed: %s", cmd, aipc_strerror((int)id));
        ok = !g.failed && wait_done(timeout + 5000, cmd);
        if (ok && is_stats && g.reply) {
            fwrite(g.reply, 1, g.reply_len, stdout);
            putchar('\n');
        } else if (ok && is_ping) {
            printf("pong from %s in %llu ms\n", g.pipe,
                   (unsigned long long)(GetTickCount64() - t0));
        }
    }
    fflush(stdout);
    aipc_bus_close(bus);
    if (!ok || g.failed) {
        fail_line("%s", g.message[0] ? g.message : "failed");
        return EXIT_FAIL;
    }
    free(stdin_buf);
    free(wpipe);
    return 0;
}
