/*
 * aipc_testutil.h - shared helpers for the Windows test suites and their helper programs.
 *
 *   processes  spawn a helper exe from the suite's own folder, bounded waits, kill, and a
 *              registry so a failed test's teardown can kill whatever it left running;
 *   names      unique pipe/event/file names (pid + counter) so suites may run in parallel;
 *   waits      bounded waits on handles and on "run this call with a deadline" (deadlock check);
 *   handles    this process's handle count for leak checks (works under Wine too);
 *   patterns   checkable payload bytes (with NULs) shared by the suites and the helpers;
 *   probe      a test-side aipc_pipe_delegate recording every callback (see aipc_probe.h).
 * Nothing here sleeps to synchronise: every wait is on an event, a process or a condition.
 */
#ifndef AIPC_TESTUTIL_H
#define AIPC_TESTUTIL_H

#include <windows.h>

#include <stddef.h>
#include <stdint.h>

#include "asyncipc/asyncipc.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The default bound for any single wait in a test (a hang fails instead of blocking CI). */
#define AIPC_TEST_WAIT_MS 30000u
/* That bound, or the environment variable AIPC_TEST_WAIT_MS (milliseconds) when set: a
 * developer checking that a test really fails can make a broken run end quickly. */
DWORD aipc_test_wait_ms(void);

/* ---- processes ---------------------------------------------------------------------------- */
typedef struct aipc_proc {
    HANDLE process;       /* NULL when not running / closed */
    HANDLE thread;
    DWORD pid;
    DWORD exit_code;      /* valid after aipc_proc_wait returned 0 */
} aipc_proc;

/* Puts a child process into the suite's one kill-on-close job object: if the suite dies, its
 * children go with it (best effort: without jobs, the ctest timeout covers it). Every spawner
 * of the suites uses it (aipc_proc_spawn, bt_child_start, cp_start, raw_broker_start_exe). */
void aipc_test_job_assign(HANDLE process);

/* CreateProcessA for the suites: retries (a few times, 200 ms apart) when Wine reports a
 * transient failure - ERROR_INTERNAL_ERROR (1359) was seen while other tests booted fresh Wine
 * prefixes on the same two cores. Any other error is returned at once. */
BOOL aipc_test_create_process(const char *app, char *cmd, BOOL inherit, DWORD flags,
                              STARTUPINFOA *si, PROCESS_INFORMATION *pi);

/* Starts `exe` (a file name in the suite's own folder, e.g. "p2p_peer.exe") with the
 * printf-formatted argument string. Its stdout/stderr are the suite's. Registers it for
 * aipc_proc_kill_all. Returns 0 or AIPC_ESYS. */
int aipc_proc_spawn(aipc_proc *p, const char *exe, const char *args_fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(gnu_printf, 3, 4)))
#endif
    ;
/* Waits up to `ms` for the process to exit. Returns 0 (exit code in p->exit_code) or
 * AIPC_ETIMEDOUT. */
int aipc_proc_wait(aipc_proc *p, DWORD ms);
/* TerminateProcess (exit code 99) and a bounded wait for it to be gone. */
void aipc_proc_kill(aipc_proc *p);
/* Closes the handles (after wait or kill) and unregisters the process. */
void aipc_proc_close(aipc_proc *p);
/* Kills and closes every process spawned and not yet closed (for teardown after a failure). */
void aipc_proc_kill_all(void);

/* ---- names, paths, time ------------------------------------------------------------------- */
/* "aipc-test-<tag>-<pid>-<counter>-<run>" (a short pipe name; the SDK adds \\.\pipe\); <run> is a
 * clock value taken once per process, so names differ between Wine prefixes too. */
void aipc_test_name(char *out, size_t cap, const char *tag);
/* The same name as UTF-16. */
void aipc_test_wname(wchar_t *out, size_t cap, const char *narrow);
/* A unique path in the temp folder: %TEMP%\aipc-test-<tag>-<pid>-<n>-<run>-<clock><ext>. */
void aipc_test_temp_path(char *out, size_t cap, const char *tag, const char *ext);
/* Reads a whole file (NUL-terminated copy, caller frees); NULL if it cannot be read. */
char *aipc_test_read_file(const char *path, size_t *len);
/* Milliseconds from a monotonic clock. */
uint64_t aipc_test_now_ms(void);

/* ---- engines ------------------------------------------------------------------------------ */
/* The engine the suites' bus clients run on: PIPE_OVERLAPPED when the environment variable
 * AIPC_TEST_BUS_ENGINE is "iocp" (the suites' "_iocp" ctest variants), else PIPE_ASYNC. */
PipeImplType aipc_test_bus_engine(void);

/* ---- waits -------------------------------------------------------------------------------- */
/* 1 if `h` is signalled within `ms`, else 0. */
int aipc_test_wait(HANDLE h, DWORD ms);
/* Runs fn(arg) on a new thread and waits up to `ms` for it to return. Returns 1 if it did;
 * 0 if it is still running (a deadlock: the thread is left behind, the test must fail). */
int aipc_test_call_bounded(void (*fn)(void *), void *arg, DWORD ms);

/* ---- handles ------------------------------------------------------------------------------ */
/* The number of handles this process holds (GetProcessHandleCount, or the system handle
 * table where that answers 0, as Wine 8 does). */
DWORD aipc_test_handle_count(void);

/* ---- payload patterns --------------------------------------------------------------------- */
/* Fills buf with bytes derived from (seed, index); many of them are 0. If n >= 4 the first
 * four bytes are the seed (little-endian) so a message identifies itself. */
void aipc_pattern_fill(uint8_t *buf, size_t n, uint32_t seed);
/* Offset of the first byte that differs from aipc_pattern_fill(seed), or -1 if all match. */
long long aipc_pattern_check(const uint8_t *buf, size_t n, uint32_t seed);

#ifdef __cplusplus
}
#endif
#endif
