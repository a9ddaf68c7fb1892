/*
 * broker_app.h - one broker instance: configuration, logging, security, core and engine.
 * Shared by the console mode (`run`) and the service mode.
 *
 * Threads: aipc__broker_app_run() runs the engine's single I/O thread (the caller's thread); the
 * broker core is only ever called from it. aipc__broker_app_stop() may be called from any thread.
 */
#ifndef AIPC_BROKER_APP_H
#define AIPC_BROKER_APP_H

#include <windows.h>
#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Process exit codes / service-specific exit codes. */
#define AIPC_BROKER_EXIT_OK        0
#define AIPC_BROKER_EXIT_USAGE     1   /* bad command line */
#define AIPC_BROKER_EXIT_CONFIG    2   /* config file unreadable or invalid */
#define AIPC_BROKER_EXIT_PIPE_BUSY 3   /* the pipe name is in use by another server */
#define AIPC_BROKER_EXIT_SYSTEM    4   /* any other start-up failure */
#define AIPC_BROKER_EXIT_SERVICE   5   /* service control manager operation failed */

/* Text for an exit code above. */
const char *aipc__broker_exit_text(unsigned long code);

typedef struct aipc__broker_app aipc__broker_app;

typedef struct aipc__broker_opts {
    const wchar_t *config;      /* --config (NULL = %ProgramData%\AsyncIPC\broker.json, optional) */
    const wchar_t *pipe;        /* --pipe (overrides the config's pipe_name) */
    const wchar_t *ready_event; /* --ready-event NAME: set once listening (for tests/supervisors) */
    int console;                /* print start-up errors to stderr as well */
    int service;                /* started by the service manager: the config and log paths
                                 * must be safe from non-administrators (path_guard.h) */
} aipc__broker_opts;

/* Loads everything and starts listening. Returns AIPC_BROKER_EXIT_OK or an exit code, with a
 * one-line message in err (also logged). */
int aipc__broker_app_start(aipc__broker_app **out, const aipc__broker_opts *o, char *err,
                          size_t errlen);
/* Serves until stopped. */
int aipc__broker_app_run(aipc__broker_app *a);
/* Requests a clean stop (bye to every client). Any thread; safe before run is entered. */
void aipc__broker_app_stop(aipc__broker_app *a);
void aipc__broker_app_free(aipc__broker_app *a);

/* Opens %ProgramData%\AsyncIPC\logs\broker.log for a start-up error (in service mode only
 * when path_guard accepts it). 0 when open. */
int aipc__broker_open_default_log(int service_mode);

/* Resolves the config path: explicit (made absolute against the working directory only when
 * given on the command line) or %ProgramData%\AsyncIPC\broker.json. Returns malloc'd text. */
wchar_t *aipc__broker_config_path(const wchar_t *explicit_path);
/* Resolves a log_file value against the config file's folder (absolute paths are kept).
 * config_path NULL: relative values are rejected (NULL returned). Returns malloc'd UTF-8. */
char *aipc__broker_resolve_path(const char *value, const wchar_t *config_path);

#ifdef __cplusplus
}
#endif
#endif
