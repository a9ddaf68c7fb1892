/*
 * cbgate.h - the callback gate of one SDK object (pipe or bus client).
 *
 * Every user callback of an object runs between aipc__gate_enter and aipc__gate_leave, on
 * whichever thread delivers it (the I/O thread or a dispatcher's thread). aipc__gate_close
 * (Exit/Release/close) shuts the gate: no callback enters afterwards, and it waits only for a
 * callback that is inside the gate at that moment on ANOTHER thread - never for queued ones.
 * The wait serves messages sent to the calling thread's windows (MsgWaitForMultipleObjectsEx
 * with QS_SENDMESSAGE, then PeekMessage(PM_NOREMOVE | PM_QS_SENDMESSAGE)), so a callback
 * blocked in SendMessage to one of them completes; it ends early when the callback's thread has
 * already exited (process exit: a static destructor in a DLL). Called on the thread that is
 * inside the gate (from the callback itself) it does not wait, nor when the runner itself waits
 * (directly or through a chain) in aipc__gate_close for a callback on the calling thread. While
 * handling a message sent by another thread it first replies to it (ReplyMessage(0)): the
 * sender may be the callback it is about to wait for.
 * Thread: any. The gate's fields are guarded by its SRW lock.
 */
#ifndef AIPC_WIN_CBGATE_H
#define AIPC_WIN_CBGATE_H

#include <windows.h>

typedef struct aipc__gate {
    SRWLOCK lock;
    DWORD running;     /* [lock] id of the thread inside the gate, 0 = none */
    int depth;         /* nested enters by that thread (changed by it alone while inside) */
    volatile LONG closed; /* [lock] to set, read without it: shut, enter fails */
    int waiters;       /* [lock] closers waiting for `idle` */
    HANDLE idle;       /* [lock] manual-reset event, made by the first waiter, set on leave */
} aipc__gate;

void aipc__gate_init(aipc__gate *g);
/* 1: the caller may run a callback (call aipc__gate_leave after it); 0: the gate is shut.
 * Nested enters by the thread inside the gate take no lock: a batch of callbacks (all the
 * messages of one read) holds the gate once, and each callback still checks it, so a close
 * waits only for the callback that is running. */
int  aipc__gate_enter(aipc__gate *g);
void aipc__gate_leave(aipc__gate *g);
/* Shuts the gate (idempotent) and waits as described above. */
void aipc__gate_close(aipc__gate *g);
/* 1 when shut (a hint: it may shut right after). */
int  aipc__gate_is_closed(aipc__gate *g);
/* Frees the event (the gate must not be used afterwards). */
void aipc__gate_free(aipc__gate *g);

/* Callback nesting on the calling thread: every user callback runs between aipc__cb_enter and
 * aipc__cb_leave (the gate does it). While the depth is non-zero the APC engine defers
 * completions and dispatchers run nothing, so callbacks never nest. */
void aipc__cb_enter(void);
void aipc__cb_leave(void);
int  aipc__cb_nested(void);

/* Waits for any of `n` (< MAXIMUM_WAIT_OBJECTS) handles while serving messages sent to the
 * calling thread's windows. Returns the WaitForMultipleObjects-style result. */
DWORD aipc__wait_serving_sent(DWORD n, const HANDLE *hs, DWORD ms);

#endif
