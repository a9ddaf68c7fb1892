/*
 * broker_app.c - glue between the IOCP engine and the portable broker core (see broker_app.h).
 *
 * The engine calls the handler below on its single I/O thread; the handler is the only code
 * that calls the core, so the core needs no lock. Each engine connection begins with the core's
 * aipc_conn (engine.h) and is attached as it is; the core's want_write/close callbacks (the
 * engine's own) only mark the connection (the engine starts writes after the current batch of
 * completions), so the core is never re-entered from its own callbacks.
 */
#include "broker_app.h"

#include "broker.h"
#include "client_identity.h"
#include "engine.h"
#include "engine_shm.h"
#include "frame_heap.h"
#include "path_guard.h"
#include "policy.h"
#include "security.h"
#include "wname.h"

#include "asyncipc/asyncipc.h"

#include <shlobj.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <wchar.h>

struct aipc__broker_app {
    aipc_broker_config cfg;
    wchar_t *config_path;       /* the file read, or NULL when defaults were used */
    wchar_t *pipe_path;
    broker_pipe_security sec;
    aipc_broker *core;
    HANDLE frame_heap;          /* core's frames (frame_heap.h); destroyed after the core */
    broker_engine *eng;
    HANDLE ready;
    int log_open;               /* the configured (or default) log file is open */
    int service;                /* service mode (path checks) */
    /* identity refusals (I/O thread): one WARN per IDENT_WARN_MS, the rest at DEBUG */
    uint64_t ident_warned_at;   /* GetTickCount64 of the last WARN, 0 = none yet */
    unsigned long ident_quiet;  /* refusals logged at DEBUG since that WARN */
    eng_shm shm;                /* the shared-memory backend's state (engine_shm.h): installed
                                 * in the core when config "shm" is true; outlives the core */
};

#define IDENT_WARN_MS 60000u

const char *aipc__broker_exit_text(unsigned long code)
{
    switch (code) {
    case AIPC_BROKER_EXIT_OK: return "ok";
    case AIPC_BROKER_EXIT_USAGE: return "bad command line";
    case AIPC_BROKER_EXIT_CONFIG: return "invalid configuration (see the log)";
    case AIPC_BROKER_EXIT_PIPE_BUSY: return "the pipe name is in use by another server";
    case AIPC_BROKER_EXIT_SYSTEM: return "start-up failed (see the log)";
    case AIPC_BROKER_EXIT_SERVICE: return "service control manager operation failed";
    default: return "unknown exit code";
    }
}

/* ---- engine handler (I/O thread) ----------------------------------------------------------
 * The engine's connection begins with the core's connection interface (engine.h), so it is
 * attached to the core as it is; the handler's per-connection handle is the core's client. */

static void *h_attach(void *ctx, aipc_wconn *w, unsigned long pid)
{
    aipc__broker_app *a = ctx;
    return aipc_broker_attach(a->core, aipc_wconn_conn(w), (uint32_t)pid);
}

/* First read of a connection: who the client is, from Windows, before its hello is
 * processed. A client whose identity cannot be learnt is disconnected. */
/* Level for an identity refusal: any local user can open connections without end, so like
 * the policy's refusals these must not flood the log: the first one, and then one per
 * IDENT_WARN_MS (saying how many went to DEBUG meanwhile), at WARN. */
static aipc_log_level ident_refusal_level(aipc__broker_app *a)
{
    uint64_t now = GetTickCount64();
    if (a->ident_warned_at && now - a->ident_warned_at < IDENT_WARN_MS) {
        a->ident_quiet++;
        return AIPC_LOG_DEBUG;
    }
    if (a->ident_quiet)
        aipc_log(AIPC_LOG_WARN, "broker: %lu more clients were refused for their identity in the "
                 "last %u s (logged at debug)", a->ident_quiet, IDENT_WARN_MS / 1000u);
    a->ident_warned_at = now ? now : 1;
    a->ident_quiet = 0;
    return AIPC_LOG_WARN;
}

static int h_identify(void *ctx, void *conn, HANDLE pipe, unsigned long pid)
{
    aipc__broker_app *a = ctx;
    aipc_client *cl = conn;
    aipc_peer_identity ci;
    char why[256];
    if (aipc_peer_identity_capture(pipe, (DWORD)pid, &ci, why, sizeof why) != 0) {
        aipc_log(ident_refusal_level(a), "broker: refusing the client of pid %lu: %s", pid, why);
        return -1;
    }
    int rc = aipc_client_set_identity(cl, &ci.id);
    if (rc != 0)
        aipc_log(ident_refusal_level(a), "broker: refusing the client of pid %lu: its identity "
                 "(%s) was not accepted (%s)", pid, ci.user_sid, aipc_strerror(rc));
    else
        aipc_log(AIPC_LOG_DEBUG, "broker: client pid %lu is %s, session %u, integrity 0x%x, "
                 "%u groups", pid, ci.user_sid, (unsigned)ci.id.session,
                 (unsigned)ci.id.integrity, (unsigned)ci.id.ngroups);
    aipc_peer_identity_free(&ci);
    return rc == 0 ? 0 : -1;
}

static int h_input(void *ctx, void *conn, const uint8_t *data, size_t len)
{
    aipc__broker_app *a = ctx;
    int rc = aipc_broker_input(a->core, conn, data, len);
    return rc == 0 && aipc_client_take_yield(conn) ? 1 : rc;   /* 1: the others first */
}

static void h_detach(void *ctx, void *conn)
{
    aipc__broker_app *a = ctx;
    aipc_broker_detach(a->core, conn);
}

/* The core's scatter list goes to the engine's WriteFile as it is (one aipc_iov type). */
static int h_out_next(void *ctx, void *conn, aipc_iov *iov, int max)
{
    return aipc_client_out_next(conn, iov, max);
}

static void h_out_issued(void *ctx, void *conn, int pieces)
{
    (void)ctx;
    aipc_client_out_issued(conn, pieces);
}

static void h_out_consume(void *ctx, void *conn, size_t n)
{
    aipc_client_out_consume(conn, n);
}

static uint8_t *h_read_direct(void *ctx, void *conn, size_t *want)
{
    return aipc_client_read_direct(conn, want);
}

static int h_read_commit(void *ctx, void *conn, size_t n)
{
    aipc__broker_app *a = ctx;
    int rc = aipc_client_read_commit(a->core, conn, n);
    return rc == 0 && aipc_client_take_yield(conn) ? 1 : rc;
}

/* The core's timeouts, on the engine's loop (GetTickCount64 is the core's clock). */
static DWORD h_timer(void *ctx)
{
    aipc__broker_app *a = ctx;
    uint64_t ms = aipc_broker_tick(a->core);
    return ms >= INFINITE ? INFINITE : (DWORD)ms;
}

static void h_shutdown(void *ctx)
{
    aipc__broker_app *a = ctx;
    aipc_broker_shutdown(a->core);
}

/* Routes the core's own log lines to the SDK logger. */
static void core_log(void *ctx, int level, const char *msg)
{
    aipc_log((aipc_log_level)level, "broker: %s", msg);
}

static uint64_t now_ms(void)
{
    return GetTickCount64();
}

/* ---- configuration --------------------------------------------------------------------------- */

static char *wide_to_utf8(const wchar_t *w)
{
    int n = WideCharToMultiByte(CP_UTF8, 0, w, -1, NULL, 0, NULL, NULL);
    char *s = n > 0 ? malloc((size_t)n) : NULL;
    if (s)
        WideCharToMultiByte(CP_UTF8, 0, w, -1, s, n, NULL, NULL);
    return s;
}

static wchar_t *utf8_to_wide(const char *s)
{
    int n = MultiByteToWideChar(CP_UTF8, 0, s, -1, NULL, 0);
    wchar_t *w = n > 0 ? malloc((size_t)n * sizeof *w) : NULL;
    if (w)
        MultiByteToWideChar(CP_UTF8, 0, s, -1, w, n);
    return w;
}

/* %ProgramData% (CSIDL_COMMON_APPDATA), e.g. C:\ProgramData. */
static int program_data(wchar_t out[MAX_PATH])
{
    return SUCCEEDED(SHGetFolderPathW(NULL, CSIDL_COMMON_APPDATA, NULL, 0, out)) ? 0 : -1;
}

wchar_t *aipc__broker_config_path(const wchar_t *explicit_path)
{
    wchar_t buf[MAX_PATH * 2];
    if (explicit_path) {
        DWORD n = GetFullPathNameW(explicit_path, MAX_PATH * 2, buf, NULL);
        return n && n < MAX_PATH * 2 ? _wcsdup(buf) : NULL;
    }
    wchar_t pd[MAX_PATH];
    if (program_data(pd) != 0)
        return NULL;
    _snwprintf(buf, MAX_PATH * 2, L"%ls\\AsyncIPC\\broker.json", pd);
    buf[MAX_PATH * 2 - 1] = 0;
    return _wcsdup(buf);
}

/* True for "C:\..." / "C:/..." and UNC / device paths. */
static int is_absolute(const char *p)
{
    if (((p[0] >= 'A' && p[0] <= 'Z') || (p[0] >= 'a' && p[0] <= 'z')) && p[1] == ':' &&
        (p[2] == '\\' || p[2] == '/'))
        return 1;
    return (p[0] == '\\' && p[1] == '\\');
}

char *aipc__broker_resolve_path(const char *value, const wchar_t *config_path)
{
    if (is_absolute(value))
        return _strdup(value);
    if (!config_path || value[0] == '\\' || value[0] == '/' || (value[0] && value[1] == ':'))
        return NULL;            /* drive-relative or rooted-without-drive: ambiguous, reject */
    wchar_t *wv = utf8_to_wide(value);
    if (!wv)
        return NULL;
    wchar_t dir[MAX_PATH * 2], joined[MAX_PATH * 3], full[MAX_PATH * 3];
    wcsncpy(dir, config_path, MAX_PATH * 2 - 1);
    dir[MAX_PATH * 2 - 1] = 0;
    wchar_t *slash = wcsrchr(dir, L'\\');
    wchar_t *fslash = wcsrchr(dir, L'/');
    if (fslash > slash)
        slash = fslash;
    if (!slash) {
        free(wv);
        return NULL;
    }
    *slash = 0;
    _snwprintf(joined, MAX_PATH * 3, L"%ls\\%ls", dir, wv);
    joined[MAX_PATH * 3 - 1] = 0;
    free(wv);
    DWORD n = GetFullPathNameW(joined, MAX_PATH * 3, full, NULL);
    if (!n || n >= MAX_PATH * 3)
        return NULL;
    return wide_to_utf8(full);
}

/* Reads a whole file (NUL-terminated). Returns NULL with *missing set when it does not exist. */
static char *read_file(const wchar_t *path, int *missing, DWORD *syserr)
{
    *missing = 0;
    HANDLE h = CreateFileW(path, GENERIC_READ, FILE_SHARE_READ | FILE_SHARE_WRITE, NULL,
                           OPEN_EXISTING, FILE_ATTRIBUTE_NORMAL, NULL);
    if (h == INVALID_HANDLE_VALUE) {
        *syserr = GetLastError();
        *missing = (*syserr == ERROR_FILE_NOT_FOUND || *syserr == ERROR_PATH_NOT_FOUND);
        return NULL;
    }
    LARGE_INTEGER sz;
    char *buf = NULL;
    if (GetFileSizeEx(h, &sz) && sz.QuadPart < (1 << 20)) {
        buf = malloc((size_t)sz.QuadPart + 1);
        DWORD got = 0;
        if (buf && ReadFile(h, buf, (DWORD)sz.QuadPart, &got, NULL) && got == sz.QuadPart) {
            buf[got] = 0;
        } else {
            free(buf);
            buf = NULL;
        }
    }
    *syserr = buf ? 0 : ERROR_INVALID_DATA;
    CloseHandle(h);
    return buf;
}

/* Loads the configuration into a->cfg. */
static int load_config(aipc__broker_app *a, const aipc__broker_opts *o, char *err, size_t errlen)
{
    aipc_broker_config_defaults(&a->cfg);
    wchar_t *path = aipc__broker_config_path(o->config);
    if (!path) {
        snprintf(err, errlen, "cannot determine the config file path");
        return AIPC_BROKER_EXIT_CONFIG;
    }
    int missing = 0;
    DWORD syserr = 0;
    char *text = NULL;
    if (o->service) {
        /* checked and read through one handle (path_guard.h) */
        if (aipc__guard_config_read(path, &text, &missing, err, errlen) != 0) {
            free(path);
            return AIPC_BROKER_EXIT_CONFIG;
        }
        syserr = ERROR_FILE_NOT_FOUND;
    } else {
        text = read_file(path, &missing, &syserr);
    }
    char *upath = wide_to_utf8(path);
    if (!text) {
        if (missing && !o->config) {
            free(path);                 /* no default config file: defaults */
            free(upath);
            return 0;
        }
        snprintf(err, errlen, "cannot read config file %s (error %lu)", upath ? upath : "?",
                 (unsigned long)syserr);
        free(path);
        free(upath);
        return AIPC_BROKER_EXIT_CONFIG;
    }
    const char *json = text;
    if ((unsigned char)json[0] == 0xEF && (unsigned char)json[1] == 0xBB &&
        (unsigned char)json[2] == 0xBF)
        json += 3;                      /* Notepad's UTF-8 BOM */
    char msg[512] = "";
    if (aipc_broker_config_load_json(&a->cfg, json, msg, sizeof msg) != 0) {
        snprintf(err, errlen, "config file %s: %s", upath ? upath : "?", msg);
        free(text);
        free(path);
        free(upath);
        return AIPC_BROKER_EXIT_CONFIG;
    }
    free(text);
    free(upath);
    a->config_path = path;
    return 0;
}

/* %ProgramData%\AsyncIPC\logs\broker.log as UTF-8 (malloc'd), or NULL. */
static char *default_log_path(void)
{
    wchar_t pd[MAX_PATH], buf[MAX_PATH * 2];
    if (program_data(pd) != 0)
        return NULL;
    _snwprintf(buf, MAX_PATH * 2, L"%ls\\AsyncIPC\\logs\\broker.log", pd);
    buf[MAX_PATH * 2 - 1] = 0;
    return wide_to_utf8(buf);
}

int aipc__broker_open_default_log(int service_mode)
{
    char *dp = default_log_path();
    char gerr[512];
    int rc = -1;
    /* a service never writes through an unsafe path, not even a start-up error */
    if (dp && (!service_mode || aipc__guard_log(dp, gerr, sizeof gerr) == 0) &&
        aipc_log_open_file(dp) == 0)
        rc = 0;
    free(dp);
    return rc;
}

/* Opens the log file named by the config (relative to the config's folder) or the default. */
static int open_log(aipc__broker_app *a, char *err, size_t errlen)
{
    char *path = NULL;
    if (a->cfg.log_file[0]) {
        path = aipc__broker_resolve_path(a->cfg.log_file, a->config_path);
        if (!path) {
            snprintf(err, errlen, "config key \"log_file\": \"%s\" is not an absolute path and "
                     "cannot be resolved against the config file's folder", a->cfg.log_file);
            return AIPC_BROKER_EXIT_CONFIG;
        }
    } else {
        path = default_log_path();
        if (!path) {
            snprintf(err, errlen, "cannot find %%ProgramData%% for the default log file");
            return AIPC_BROKER_EXIT_SYSTEM;
        }
    }
    if (a->service && aipc__guard_log(path, err, errlen) != 0) {
        free(path);
        return AIPC_BROKER_EXIT_CONFIG;
    }
    aipc_log_set_level((aipc_log_level)a->cfg.log_level);
    int rc = path ? aipc_log_open_file(path) : AIPC_ENOMEM;
    if (rc == 0)
        a->log_open = 1;
    if (rc != 0) {
        snprintf(err, errlen, "config key \"log_file\": cannot open %s (%s)", path ? path : "?",
                 aipc_strerror(rc));
        free(path);
        return AIPC_BROKER_EXIT_CONFIG;
    }
    free(path);
    return 0;
}

int aipc__broker_app_start(aipc__broker_app **out, const aipc__broker_opts *o, char *err,
                          size_t errlen)
{
    *out = NULL;
    aipc__broker_app *a = calloc(1, sizeof *a);
    if (!a) {
        snprintf(err, errlen, "out of memory");
        return AIPC_BROKER_EXIT_SYSTEM;
    }
    a->service = o->service;
    int rc = load_config(a, o, err, errlen);
    if (rc == 0)
        rc = open_log(a, err, errlen);
    if (rc == 0) {
        char *upipe = NULL;
        if (o->pipe) {
            upipe = wide_to_utf8(o->pipe);
        }
        a->pipe_path = aipc__wname_from_utf8(upipe ? upipe : a->cfg.pipe_name);
        if (!a->pipe_path) {
            snprintf(err, errlen, "%s: invalid pipe name \"%s\"", upipe ? "--pipe" : "config key \"pipe_name\"",
                     upipe ? upipe : a->cfg.pipe_name);
            rc = o->pipe ? AIPC_BROKER_EXIT_USAGE : AIPC_BROKER_EXIT_CONFIG;
        }
        free(upipe);
    }
    if (rc == 0 && broker_pipe_security_init(&a->sec, a->cfg.sddl[0] ? a->cfg.sddl : NULL, err,
                                           errlen) != 0)
        rc = AIPC_BROKER_EXIT_CONFIG;
    if (rc == 0) {
        a->core = aipc_broker_new(&a->cfg, now_ms);
        if (a->core)
            a->frame_heap = aipc__frame_heap_install(a->core);
        if (!a->core || !a->frame_heap) {
            snprintf(err, errlen, "out of memory creating the broker core");
            rc = AIPC_BROKER_EXIT_SYSTEM;
        } else {
            aipc_broker_set_log(a->core, core_log, a);
            if (a->cfg.shm) {       /* before any attach; without it every payload is inline */
                aipc_shm_backend be;
                eng_shm_backend(&be, &a->shm);
                if (aipc_broker_set_shm_backend(a->core, &be) != 0) {
                    snprintf(err, errlen, "cannot install the shared-memory backend");
                    rc = AIPC_BROKER_EXIT_SYSTEM;
                }
            }
        }
    }
    if (rc == 0) {
        broker_engine_config ec = { 0 };
        ec.pipe_path = a->pipe_path;
        ec.sa = &a->sec.sa;
        ec.stop_grace_ms = 3000;
        broker_engine_handler h = { a, h_attach, h_input, h_detach, h_out_next, h_out_consume,
                                    h_shutdown, NULL, h_read_direct, h_read_commit, h_identify,
                                    h_timer, h_out_issued };
        char eerr[300];
        int er = broker_engine_create(&a->eng, &ec, &h, eerr, sizeof eerr);
        if (er != BROKER_ENGINE_OK) {
            char *up = wide_to_utf8(a->pipe_path);
            snprintf(err, errlen, "cannot listen on %s: %s", up ? up : "?", eerr);
            free(up);
            rc = er == BROKER_ENGINE_PIPE_BUSY ? AIPC_BROKER_EXIT_PIPE_BUSY : AIPC_BROKER_EXIT_SYSTEM;
        }
    }
    if (rc != 0) {
        if (!a->log_open) {
            /* The configured log is unusable (or the config itself is): record the reason in
             * the default log, where an administrator looks for a service that did not start. */
            if (aipc__broker_open_default_log(a->service) == 0)
                a->log_open = 1;
        }
        aipc_log(AIPC_LOG_ERROR, "broker: start-up failed: %s", err);
        if (o->console)
            fprintf(stderr, "asyncipc-broker: %s\n", err);
        aipc__broker_app_free(a);
        return rc;
    }
    char *up = wide_to_utf8(a->pipe_path);
    aipc_log(AIPC_LOG_INFO, "broker: listening on %s (max_clients %u, max_payload %u, "
             "max_queue_bytes %llu)", up ? up : "?", a->cfg.max_clients, a->cfg.max_payload,
             (unsigned long long)a->cfg.max_queue_bytes);
    if (a->cfg.shm)
        aipc_log(AIPC_LOG_INFO, "broker: shared memory for payloads of %u bytes and more "
                 "(max_shm_bytes %llu)", a->cfg.shm_threshold, (unsigned long long)a->cfg.max_shm_bytes);
    else
        aipc_log(AIPC_LOG_INFO, "broker: shared memory off (config \"shm\": false): every payload inline");
    if (a->cfg.policy)
        aipc_log(AIPC_LOG_INFO, "broker: policy with %u rules", (unsigned)aipc_policy_rule_count(a->cfg.policy));
    else
        aipc_log(AIPC_LOG_INFO, "broker: no policy: every client may publish, subscribe, send "
                 "and request anything");
    free(up);
    if (o->ready_event) {
        a->ready = OpenEventW(EVENT_MODIFY_STATE, FALSE, o->ready_event);
        if (a->ready)
            SetEvent(a->ready);
        else
            aipc_log(AIPC_LOG_WARN, "broker: cannot open the ready event (%lu)", GetLastError());
    }
    *out = a;
    return 0;
}

int aipc__broker_app_run(aipc__broker_app *a)
{
    broker_engine_run(a->eng);
    aipc_log(AIPC_LOG_INFO, "broker: stopped");
    return 0;
}

void aipc__broker_app_stop(aipc__broker_app *a)
{
    if (a && a->eng)
        broker_engine_request_stop(a->eng);
}

void aipc__broker_app_free(aipc__broker_app *a)
{
    if (!a)
        return;
    broker_engine_free(a->eng);
    aipc_broker_free(a->core);
    aipc__frame_heap_destroy(a->frame_heap);   /* after the core: it held the frames */
    broker_pipe_security_free(&a->sec);
    if (a->ready)
        CloseHandle(a->ready);
    free(a->pipe_path);
    free(a->config_path);
    aipc_broker_config_free(&a->cfg);
    free(a);
}
