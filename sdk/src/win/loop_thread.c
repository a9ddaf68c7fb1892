/*
 * loop_thread.c - the start of an engine's process-wide I/O thread, shared by both engines
 * (loop_apc.c, loop_iocp.c): the module is pinned first (FreeLibrary cannot unmap code the
 * thread runs), then the thread starts on `fn` with the loop as its argument.
 * Thread: the first caller of the engine's loop() (under its INIT_ONCE).
 */
#include "pipe_internal.h"

#include <errno.h>
#include <process.h>

BOOL aipc__loop_start(aipc__loop *l, const aipc__engine *eng, unsigned(__stdcall *fn)(void *),
                      const char *who)
{
    HMODULE self;
    GetModuleHandleExW(GET_MODULE_HANDLE_EX_FLAG_FROM_ADDRESS | GET_MODULE_HANDLE_EX_FLAG_PIN,
                       (LPCWSTR)(void *)fn, &self);
    l->eng = eng;
    unsigned tid = 0;
    uintptr_t th = _beginthreadex(NULL, 0, fn, l, CREATE_SUSPENDED, &tid);
    if (!th) {
        aipc_log(AIPC_LOG_ERROR, "%s: cannot start the I/O thread (errno %d)", who, errno);
        return FALSE;
    }
    l->thread = (HANDLE)th;
    l->tid = tid;
    ResumeThread(l->thread);
    aipc_log(AIPC_LOG_DEBUG, "%s: I/O thread %u started", who, tid);
    return TRUE;
}
