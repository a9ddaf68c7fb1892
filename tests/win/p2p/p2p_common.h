/*
 * p2p_common.h - shared by the point-to-point suites: the per-test fixture (whatever a failed
 * test leaves behind is cleaned up: peers killed, probes released, log file closed) and short
 * ways to start probes and peers.
 *
 * Check runs in no-fork mode under Wine: a failed ck_assert jumps back to Check on the test's
 * thread, and the teardown below then runs in the same process.
 */
#ifndef P2P_COMMON_H
#define P2P_COMMON_H

#ifndef __USE_MINGW_ANSI_STDIO
#define __USE_MINGW_ANSI_STDIO 1
#endif
#include "check_main.h"
/* check.h declares its assertion printf with format(printf), which mingw GCC checks as the
 * Microsoft dialect (no %jd); the library itself formats with C99 rules. Silence that false
 * alarm for the ck_assert_* macros. */
#if defined(__MINGW32__) && defined(__GNUC__)
#pragma GCC diagnostic ignored "-Wformat"
#pragma GCC diagnostic ignored "-Wformat-extra-args"
#endif
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aipc_probe.h"
#include "aipc_testutil.h"

/* Every wait is bounded by this (30 s, or AIPC_TEST_WAIT_MS from the environment). */
#define WAIT_MS ((unsigned)aipc_test_wait_ms())

static aipc_probe *g_probes[8];
static int g_log_opened;
static char g_log_path[MAX_PATH];   /* deleted by the teardown */

/* Engine names as the peer's --engine takes them. */
static inline const char *engine_arg(PipeImplType e)
{
    return e == PIPE_OVERLAPPED ? "overlapped" : "async";
}

/* A new probe owned by the fixture (released in teardown if the test does not). */
static inline aipc_probe *new_probe(void)
{
    aipc_probe *p = aipc_probe_new();
    ck_assert_ptr_nonnull(p);
    for (int i = 0; i < 8; i++)
        if (!g_probes[i]) {
            g_probes[i] = p;
            return p;
        }
    ck_abort_msg("too many probes in one test");
    return NULL;
}

/* Releases a probe now (bounded) and forgets it; fails the test on a deadlock. */
static inline void free_probe(aipc_probe *p)
{
    for (int i = 0; i < 8; i++)
        if (g_probes[i] == p)
            g_probes[i] = NULL;
    ck_assert_msg(aipc_probe_free(p, WAIT_MS), "Release did not return within %u ms", WAIT_MS);
}

/* Starts a probe and waits for OnCreate(true). */
static inline aipc_probe *start_probe(aipc_probe *p, PipeImplType engine, PipeType role,
                                      const char *name, uint32_t connect_timeout_ms,
                                      uint64_t max_message)
{
    int rc = aipc_probe_start(p, engine, role, name, connect_timeout_ms, max_message);
    ck_assert_msg(rc == AIPC_OK, "aipc_probe_start: %s", aipc_strerror(rc));
    ck_assert_msg(aipc_probe_wait(p, &p->created, 1, WAIT_MS), "no OnCreate within %u ms", WAIT_MS);
    ck_assert_msg(p->create_ok == 1, "OnCreate(false)");
    return p;
}

/* Waits for a counter and fails the test with `what` if it stops moving for WAIT_MS before
 * reaching the target (or has not got there after 4 * WAIT_MS). */
#define WAIT_FOR(p, field, target, what)                                                        \
    ck_assert_msg(aipc_probe_wait_progress((p), &(p)->field, (target), WAIT_MS, 4 * WAIT_MS),    \
                  "%s: " #field " = %lld, want %lld (stalled for %u ms)", (what),                \
                  aipc_probe_get((p), &(p)->field), (long long)(target), WAIT_MS)

/* The probe kept its threading promises (checked at the end of each test). */
#define ASSERT_PROBE_CLEAN(p)                                                                   \
    do {                                                                                        \
        EnterCriticalSection(&(p)->lock);                                                       \
        char err_[256];                                                                         \
        strcpy(err_, (p)->error);                                                               \
        LeaveCriticalSection(&(p)->lock);                                                       \
        ck_assert_msg(err_[0] == 0, "SDK promise broken: %s", err_);                           \
        ck_assert_msg((p)->late_callbacks == 0, "%ld callbacks after Exit/Release returned",     \
                      (long)(p)->late_callbacks);                                                \
    } while (0)

/* Waits for a peer to end and checks its exit code. */
#define PEER_DONE(proc, want_code)                                                              \
    do {                                                                                        \
        ck_assert_msg(aipc_proc_wait((proc), WAIT_MS) == AIPC_OK, "peer %lu still running",      \
                      (unsigned long)(proc)->pid);                                               \
        ck_assert_msg((proc)->exit_code == (DWORD)(want_code), "peer exit code %lu, want %d",    \
                      (unsigned long)(proc)->exit_code, (int)(want_code));                       \
        aipc_proc_close(proc);                                                                  \
    } while (0)

/* Opens a fresh log file for this test (read back by the protocol-violation tests). */
static inline void open_test_log(char *path, size_t cap, const char *tag)
{
    aipc_test_temp_path(path, cap, tag, ".log");
    ck_assert_int_eq(aipc_log_open_file(path), AIPC_OK);
    g_log_opened = 1;
    snprintf(g_log_path, sizeof g_log_path, "%s", path);
}

static void p2p_setup(void)
{
    memset(g_probes, 0, sizeof g_probes);
}

static void p2p_teardown(void)
{
    aipc_proc_kill_all();
    for (int i = 0; i < 8; i++)
        if (g_probes[i]) {
            if (!aipc_probe_free(g_probes[i], WAIT_MS))
                fprintf(stderr, "teardown: a pipe's Release did not return (leaked)\n");
            g_probes[i] = NULL;
        }
    if (g_log_opened) {
        aipc_log_open_file(NULL);
        g_log_opened = 0;
    }
    if (g_log_path[0]) {
        DeleteFileA(g_log_path);
        g_log_path[0] = 0;
    }
}

#endif
