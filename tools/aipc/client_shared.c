/*
 * client_shared.c - what every aipc command shares: one-line messages and exit codes,
 * argument checks, the bus connection (options, state reporting, reconnection), waits,
 * request completions and stdin.
 *
 * Connection states as the user sees them (sub and serve, which reconnect by default):
 *   first connection fails            -> exit 1 "cannot connect to the broker on PIPE: ..."
 *   connection lost, reconnect on     -> stderr "aipc: disconnected from PIPE: CAUSE; reconnecting"
 *   connected again                   -> stderr "aipc: connected to PIPE"
 *   connection lost, reconnect off    -> exit 1 "lost the connection to the broker on PIPE: CAUSE"
 * Every other command connects once and never reconnects.
 */
#include "aipc_cli.h"

#include <shellapi.h>

#include <fcntl.h>
#include <io.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

/* The running command, for the console control handler. */
static aipc_cli *g_running;

/* ---- messages ----------------------------------------------------------------------------- */

static void vline(const char *fmt, va_list ap)
{
    char text[1024];
    vsnprintf(text, sizeof text, fmt, ap);
    fprintf(stderr, "aipc: %s\n", text);   /* one write per line: lines from two threads never mix */
    fflush(stderr);
}

void cli_line(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vline(fmt, ap);
    va_end(ap);
}

int cli_bad_args(const char *fmt, ...)
{
    char text[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    cli_line("%s (see aipc --help)", text);
    return EXIT_USAGE;
}

static void set_failed(aipc_cli *c, int err, int code, const char *suffix, const char *fmt,
                       va_list ap)
{
    EnterCriticalSection(&c->lock);
    if (!c->failed) {
        int n = vsnprintf(c->message, sizeof c->message, fmt, ap);
        if (n >= 0 && (size_t)n < sizeof c->message)
            snprintf(c->message + n, sizeof c->message - (size_t)n, "%s", suffix);
        c->error = err;
        c->exit_code = code;
        InterlockedExchange(&c->failed, 1);
    }
    LeaveCriticalSection(&c->lock);
    SetEvent(c->ev_state);
    SetEvent(c->ev_done);
    SetEvent(c->ev_reply);
}

void cli_set_failed(aipc_cli *c, int err, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    set_failed(c, err, EXIT_FAIL, "", fmt, ap);
    va_end(ap);
}

void cli_set_usage(aipc_cli *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    set_failed(c, AIPC_EINVAL, EXIT_USAGE, " (see aipc --help)", fmt, ap);
    va_end(ap);
}

/* The cause of a failed or lost connection, in words. */
static const char *cause_text(int err)
{
    switch (err) {
    case AIPC_ENOTFOUND: return "no broker is listening";
    case AIPC_ETIMEDOUT: return "timed out";
    case AIPC_EDISCONNECTED:
    case AIPC_ECLOSED: return "the connection was closed";
    default: return aipc_strerror(err);
    }
}

/* ---- argument checks (names, topics, filters and pipe names are checked before connecting
 * with proto/'s functions, the ones the SDK and the broker apply, so that bad arguments are
 * exit code 2 with a precise message) ------------------------------------------------------ */

int cli_parse_u32(const char *s, uint32_t *out)
{
    char *end = NULL;
    if (!s || !*s || *s == '-' || *s == '+' || *s == ' ')
        return 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (*end || v > 0xFFFFFFFFull)
        return 0;
    *out = (uint32_t)v;
    return 1;
}

int cli_parse_engine(const char *s, PipeImplType *out)
{
    if (_stricmp(s, "apc") == 0)
        *out = PIPE_ASYNC;
    else if (_stricmp(s, "iocp") == 0)
        *out = PIPE_OVERLAPPED;
    else
        return 0;
    return 1;
}

char **cli_utf8_args(int *argc)
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

/* ---- callbacks (I/O thread) --------------------------------------------------------------- */

static void on_state(aipc_bus *bus, void *user, aipc_bus_state st, int err)
{
    aipc_cli *c = user;
    int cause = err ? err : AIPC_EDISCONNECTED;
    (void)bus;
    if (st == AIPC_BUS_CONNECTED) {
        if (!c->connected) {
            InterlockedExchange(&c->connected, 1);
            SetEvent(c->ev_state);
        } else if (InterlockedExchange(&c->down, 0)) {
            cli_line("connected to %s", c->pipe);
        }
        return;
    }
    if (st != AIPC_BUS_DISCONNECTED && st != AIPC_BUS_RECONNECTING)
        return;   /* CLOSED: our own aipc_bus_close */
    if (!c->connected) {
        /* the first connection is never retried: a typo in --pipe fails at once */
        cli_set_failed(c, cause, "cannot connect to the broker on %s: %s", c->pipe, cause_text(cause));
    } else if (c->a->reconnect) {
        if (!InterlockedExchange(&c->down, 1))
            cli_line("disconnected from %s: %s; reconnecting", c->pipe, cause_text(cause));
    } else {
        cli_set_failed(c, cause, "lost the connection to the broker on %s: %s", c->pipe,
                       cause_text(cause));
    }
}

static void on_error(aipc_bus *bus, void *user, int err, const char *code, const char *msg)
{
    aipc_cli *c = user;
    (void)bus;
    int local = !code || !code[0];
    if (c->long_running && c->connected && (c->a->cmd == CMD_SERVE || local))
        /* serve keeps serving; a malformed stream (local error) is followed by a reconnect */
        cli_line("broker error %s: %s", local ? "(local)" : code, msg ? msg : "");
    else
        cli_set_failed(c, err, "broker refused: %s", msg && msg[0] ? msg : local ? "error" : code);
}

void cli_on_reply(aipc_bus *bus, void *user, int status, const aipc_bus_peer *from,
                  const void *data, size_t len)
{
    aipc_cli *c = user;
    (void)bus;
    (void)from;
    if (status != 0) {
        if (status == AIPC_EREFUSED)
            cli_set_failed(c, status, "%s refused by the broker: %.*s", c->what, (int)len,
                           (const char *)data);
        else if (status == AIPC_ETIMEDOUT)
            cli_set_failed(c, status, "%s timed out", c->what);
        else
            cli_set_failed(c, status, "%s failed: %s", c->what, aipc_strerror(status));
        return;
    }
    EnterCriticalSection(&c->lock);
    free(c->reply);
    c->reply = malloc(len + 1);
    if (c->reply) {
        memcpy(c->reply, data, len);
        c->reply[len] = 0;
        c->reply_len = len;
    }
    LeaveCriticalSection(&c->lock);
    SetEvent(c->ev_reply);
}

/* Ctrl+C / Ctrl+Break (a thread Windows creates): finish like --count reached. */
static BOOL WINAPI on_ctrl(DWORD type)
{
    (void)type;
    if (g_running)
        SetEvent(g_running->ev_done);
    return TRUE;
}

/* ---- connection (main thread) ------------------------------------------------------------- */

int cli_init(aipc_cli *c, const aipc_args *a, aipc_bus_options *o)
{
    memset(c, 0, sizeof *c);
    c->a = a;
    c->ev_state = CreateEventW(NULL, TRUE, FALSE, NULL);
    c->ev_done = CreateEventW(NULL, TRUE, FALSE, NULL);
    c->ev_reply = CreateEventW(NULL, FALSE, FALSE, NULL);
    c->ev_drained = CreateEventW(NULL, TRUE, FALSE, NULL);
    InitializeCriticalSection(&c->lock);
    c->long_running = a->cmd == CMD_SUB || a->cmd == CMD_SERVE;
    c->what = a->cmd_name;
    if (!c->ev_state || !c->ev_done || !c->ev_reply || !c->ev_drained) {
        cli_line("cannot create events (error %lu)", (unsigned long)GetLastError());
        return EXIT_FAIL;
    }
    if (!aipc_proto_pipe_name(a->pipe ? a->pipe : "asyncipc.broker", c->pipe))
        return cli_bad_args("bad pipe name '%s' (NAME or \\\\.\\pipe\\NAME; NAME without "
                            "backslashes or control characters)", a->pipe);
    aipc_bus_options_init(o);
    if (a->pipe) {
        c->wpipe = to_wide(a->pipe);
        if (!c->wpipe)
            return cli_bad_args("bad pipe name '%s'", a->pipe);
        o->pipe_name = c->wpipe;
    }
    o->name = a->name;            /* serve sets its NAME argument after this */
    o->engine = a->engine;
    o->user = c;
    o->reconnect = a->reconnect;
    o->connect_timeout_ms = a->connect_timeout_ms;
    o->on_state = on_state;
    o->on_error = on_error;
    return 0;
}

int cli_connect(aipc_cli *c, const aipc_bus_options *o, aipc_bus **bus)
{
    *bus = NULL;
    int rc = aipc_bus_connect(o, bus);
    if (rc == AIPC_EINVAL)
        return o->name ? cli_bad_args("bad client name '%s' or pipe name", o->name)
                       : cli_bad_args("bad pipe name");
    if (rc != 0) {
        cli_line("cannot start the bus client: %s", aipc_strerror(rc));
        return EXIT_FAIL;
    }
    g_running = c;
    SetConsoleCtrlHandler(on_ctrl, TRUE);
    /* bounded: the SDK reports the outcome within the connect timeout (open + welcome) */
    DWORD w = WaitForSingleObject(c->ev_state, 2 * c->a->connect_timeout_ms + 5000);
    if (!c->failed && (w != WAIT_OBJECT_0 || !c->connected))
        cli_set_failed(c, AIPC_ETIMEDOUT, "cannot connect to the broker on %s: timed out", c->pipe);
    return c->failed ? cli_finish(c, *bus, 0) : 0;
}

int cli_open(aipc_cli *c, const aipc_args *a, aipc_bus_options *o, aipc_bus **bus)
{
    int rc = cli_init(c, a, o);
    return rc ? rc : cli_connect(c, o, bus);
}

int cli_wait_done(aipc_cli *c)
{
    WaitForSingleObject(c->ev_done, INFINITE);
    return !c->failed;
}

int cli_wait_reply(aipc_cli *c)
{
    HANDLE hs[2] = {c->ev_reply, c->ev_done};
    DWORD w = WaitForMultipleObjects(2, hs, FALSE, c->a->timeout_ms + 5000);
    if (c->failed)
        return 0;
    if (w == WAIT_OBJECT_0 + 1) {
        cli_set_failed(c, AIPC_ECLOSED, "%s interrupted", c->what);
        return 0;
    }
    if (w != WAIT_OBJECT_0) {
        cli_set_failed(c, AIPC_ETIMEDOUT, "%s timed out", c->what);
        return 0;
    }
    return 1;
}

int cli_barrier(aipc_cli *c, aipc_bus *bus, const char *what)
{
    c->what = what;
    int64_t id = aipc_bus_ping(bus, c->a->timeout_ms, cli_on_reply, c);
    if (id < 0) {
        cli_set_failed(c, (int)id, "%s failed: %s", what, aipc_strerror((int)id));
        return 0;
    }
    return cli_wait_reply(c);
}

/* The pong of a drain: any outcome ends the wait (a broker gone has nothing left to receive). */
static void on_drained(aipc_bus *bus, void *user, int status, const aipc_bus_peer *from,
                       const void *data, size_t len)
{
    aipc_cli *c = user;
    (void)bus;
    (void)status;
    (void)from;
    (void)data;
    (void)len;
    SetEvent(c->ev_drained);
}

void cli_drain(aipc_cli *c, aipc_bus *bus)
{
    if (aipc_bus_ping(bus, c->a->timeout_ms, on_drained, c) > 0)
        WaitForSingleObject(c->ev_drained, c->a->timeout_ms + 5000);
}

int cli_print_answer(aipc_cli *c, aipc_bus *bus, int64_t id, const char *what)
{
    if (id < 0)
        cli_set_failed(c, (int)id, "%s failed: %s", what, aipc_strerror((int)id));
    int ok = id > 0 && cli_wait_reply(c);
    if (ok && c->reply) {
        fwrite(c->reply, 1, c->reply_len, stdout);
        putchar('\n');
    }
    return cli_finish(c, bus, ok);
}

void cli_count_seen(aipc_cli *c)
{
    LONG64 n = InterlockedIncrement64(&c->seen);
    if (c->a->count && n >= c->a->count)
        SetEvent(c->ev_done);
}

int cli_finish(aipc_cli *c, aipc_bus *bus, int ok)
{
    fflush(stdout);
    if (bus)
        aipc_bus_close(bus);   /* the last callback has run when it returns */
    g_running = NULL;
    if (!ok || c->failed) {
        cli_line("%s", c->message[0] ? c->message : "failed");
        return c->exit_code ? c->exit_code : EXIT_FAIL;
    }
    return 0;
}

/* ---- stdin -------------------------------------------------------------------------------- */

char *cli_read_stdin(size_t *len)
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

int cli_read_line(char **buf, size_t *cap, size_t *len)
{
    static int binary;
    if (!binary) {
        _setmode(_fileno(stdin), _O_BINARY);
        binary = 1;
    }
    size_t n = 0;
    int ch;
    while ((ch = getc(stdin)) != EOF) {
        if (n + 1 >= *cap) {
            size_t nc = *cap ? *cap * 2 : 4096;
            char *nb = realloc(*buf, nc);
            if (!nb)
                return -1;
            *buf = nb;
            *cap = nc;
        }
        if (ch == '\n')
            break;
        (*buf)[n++] = (char)ch;
    }
    if (ch == EOF && n == 0)
        return 0;   /* end of input (a last line without "\n" was returned before) */
    if (ch == '\n' && n > 0 && (*buf)[n - 1] == '\r')
        n--;
    *len = n;
    return 1;
}
