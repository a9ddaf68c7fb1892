/*
 * win_iocp.c - binding, posting and dispatching on an I/O completion port (win_io.h). The SDK's
 * PIPE_OVERLAPPED thread (loop_iocp.c) and the broker's loop (service/win/engine.c) both run
 * aipc__iocp_dispatch.
 *
 * Single entries or batches: under Wine each dequeue is a wineserver request, and
 * GetQueuedCompletionStatusEx asks once more after the last entry it found (a request on the
 * critical path of every wake-up), so the loops take one entry per call there; on Windows a
 * batch is cheaper (service/win/README.md has the measurement).
 */
#include "win_io.h"

#include "asyncipc/asyncipc.h"

#include <string.h>

#define DISPATCH_MAX 64

DWORD aipc__iocp_bind(HANDLE port, HANDLE h)
{
    if (CreateIoCompletionPort(h, port, AIPC__KEY_IO, 0) != port) {
        DWORD e = GetLastError();
        return e ? e : ERROR_GEN_FAILURE;
    }
    return 0;
}

BOOL aipc__iocp_post(HANDLE port, aipc__op *op, const char *who)
{
    memset(&op->ov, 0, sizeof op->ov);
    if (PostQueuedCompletionStatus(port, 0, AIPC__KEY_TASK, &op->ov))
        return TRUE;
    DWORD e = GetLastError();
    aipc_log(AIPC_LOG_ERROR, "%s: PostQueuedCompletionStatus failed (%lu)", who, e);
    SetLastError(e);
    return FALSE;
}

/* Win32 error of a finished operation (0 on success; ERROR_MORE_DATA is passed through). */
static DWORD op_error(aipc__op *op)
{
    if (op->ov.Internal == 0)
        return 0;
    DWORD bytes;
    if (GetOverlappedResult(op->h, &op->ov, &bytes, FALSE))
        return 0;
    DWORD e = GetLastError();
    return e ? e : ERROR_GEN_FAILURE;
}

static void run_entry(ULONG_PTR key, OVERLAPPED *ov, DWORD bytes)
{
    aipc__op *op = CONTAINING_RECORD(ov, aipc__op, ov);
    op->cb(op, key == AIPC__KEY_IO ? op_error(op) : 0, bytes);
}

static void port_failed(const char *who, const char *call, DWORD e)
{
    aipc_log(AIPC_LOG_ERROR, "%s: %s failed (%lu)", who, call, e);
    Sleep(10);   /* never spin on a broken port */
}

ULONG aipc__iocp_dispatch(HANDLE port, DWORD ms, ULONG max, const char *who)
{
    if (max <= 1) {
        DWORD bytes = 0;
        ULONG_PTR key = 0;
        OVERLAPPED *ov = NULL;
        BOOL ok = GetQueuedCompletionStatus(port, &bytes, &key, &ov, ms);
        if (!ov) {                       /* timeout, or the port itself failed */
            DWORD e = ok ? 0 : GetLastError();
            if (!ok && e != WAIT_TIMEOUT)
                port_failed(who, "GetQueuedCompletionStatus", e);
            return 0;
        }
        run_entry(key, ov, bytes);
        return 1;
    }
    OVERLAPPED_ENTRY ent[DISPATCH_MAX];
    ULONG n = 0;
    if (!GetQueuedCompletionStatusEx(port, ent, max < DISPATCH_MAX ? max : DISPATCH_MAX, &n, ms,
                                     FALSE)) {
        DWORD e = GetLastError();
        if (e != WAIT_TIMEOUT)
            port_failed(who, "GetQueuedCompletionStatusEx", e);
        return 0;
    }
    ULONG ran = 0;
    for (ULONG i = 0; i < n; i++) {
        if (!ent[i].lpOverlapped)
            continue;
        run_entry(ent[i].lpCompletionKey, ent[i].lpOverlapped, ent[i].dwNumberOfBytesTransferred);
        ran++;
    }
    return ran;
}
