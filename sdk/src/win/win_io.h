/*
 * win_io.h - the op record of every overlapped operation and the I/O completion port loop that
 * dispatches them (win_iocp.c), shared by the SDK's engines (loop_apc.c, loop_iocp.c), the bus
 * client and the broker's engine (service/win).
 *
 * An op starts with its OVERLAPPED, so the kernel's pointer is the op's pointer: whoever
 * dequeues a completion recovers the op with CONTAINING_RECORD and runs op->cb on its own
 * thread with the Win32 error (0 = success) and the byte count. The owner of an op keeps its
 * memory - and every buffer the operation uses - until that callback has run.
 */
#ifndef AIPC_WIN_IO_H
#define AIPC_WIN_IO_H

#include <windows.h>

typedef struct aipc__op aipc__op;
struct aipc__pipe;

typedef void (*aipc__op_cb)(aipc__op *op, DWORD err, DWORD bytes);
struct aipc__op {
    OVERLAPPED ov;
    aipc__op_cb cb;
    struct aipc__pipe *pipe; /* the pipe owning the op (NULL for bus client and broker ops) */
    HANDLE h;         /* the handle the operation was issued on (set by whoever issues it) */
    HANDLE event;     /* PIPE_ASYNC listen op: manual-reset event of ConnectNamedPipe */
    HANDLE wait;      /* PIPE_ASYNC listen op: thread-pool wait (only beyond 64 listeners) */
    aipc__op *dnext;   /* PIPE_ASYNC: completion deferred while a callback runs (loop_apc.c) */
    int skip_port;    /* h has FILE_SKIP_COMPLETION_PORT_ON_SUCCESS: an I/O that succeeds at once
                       * queues no completion; the IOCP engine then returns AIPC__IO_INLINE.
                       * Byte-mode pipes only: ERROR_MORE_DATA (message mode) is treated as
                       * pending, which skip-port does not guarantee to complete through the port */
    DWORD derr, dbytes;
};

/* An engine's read/write result: the operation succeeded at once and no completion follows
 * (op->skip_port); its result is in op->ov (GetOverlappedResult). A customer-defined code. */
#define AIPC__IO_INLINE 0x20000001u

/* Completion keys: I/O on a bound handle, or a task posted with aipc__iocp_post. */
#define AIPC__KEY_IO   1
#define AIPC__KEY_TASK 2

/* Binds handle h to the port (key AIPC__KEY_IO). 0 or the Win32 error. */
DWORD aipc__iocp_bind(HANDLE port, HANDLE h);

/* Queues op as a task: op->cb(op, 0, 0) runs on the thread dispatching the port. Any thread.
 * FALSE (logged, GetLastError set) if the port refused it. */
BOOL aipc__iocp_post(HANDLE port, aipc__op *op, const char *who);

/*
 * Waits up to `ms` for a completion on `port` and runs the callback of each dequeued op on the
 * calling thread: one entry per call when max == 1 (GetQueuedCompletionStatus), up to `max`
 * already queued ones when max > 1 (one GetQueuedCompletionStatusEx). Returns how many ran
 * (0 on timeout). A failing port is logged (`who` names the caller) and paused on for 10 ms,
 * so a loop around this never spins.
 */
ULONG aipc__iocp_dispatch(HANDLE port, DWORD ms, ULONG max, const char *who);

#endif
