/*
 * asyncipc.h - AsyncIPC public C API (asyncipc.dll).
 *
 * Two layers share this header:
 *   - the classic point-to-point pipe API (INamedPipe / IPipeDelegate / CreateInstance /
 *     InitEasyLog), as C structs of function pointers, plus the same operations as flat
 *     aipc_pipe_* functions for FFI (C#, Python ctypes, ...);
 *   - the bus client (aipc_bus_*), which talks to the AsyncIPC broker.
 *
 * Conventions
 *   - Every function that can fail returns 0 (AIPC_OK) or a negative AIPC_E* code;
 *     aipc_strerror() turns a code into text. Codes are append-only.
 *   - Handles are opaque. Public structs that the caller fills start with a `size`/version
 *     field and only ever grow at the end.
 *   - Threads: see "Threading contract" below; calls may be made from any thread.
 *
 * C++ users: include <asyncipc/asyncipc.hpp> for the classic classes instead of the C structs.
 */
#ifndef ASYNCIPC_ASYNCIPC_H
#define ASYNCIPC_ASYNCIPC_H

#include <stddef.h>
#include <stdint.h>
#include <wchar.h>
#ifndef __cplusplus
#include <stdbool.h>
#endif

/* ---- export macro ------------------------------------------------------------------------ */
#if defined(_WIN32)
#  if defined(ASYNCIPC_STATIC)
#    define ASYNCIPC_API
#  elif defined(ASYNCIPC_BUILDING_DLL)
#    define ASYNCIPC_API __declspec(dllexport)
#  else
#    define ASYNCIPC_API __declspec(dllimport)
#  endif
#else
#  define ASYNCIPC_API __attribute__((visibility("default")))
#endif

#ifdef __cplusplus
extern "C" {
#endif

/*
 * Threading contract (the same text is in asyncipc.h, asyncipc.hpp, bus.hpp and docs/sdk.md)
 *
 * Where callbacks run
 *   - Default: on the SDK's I/O thread of the object's engine - one process-wide thread per
 *     engine: PIPE_ASYNC pipes and bus clients (aipc_bus_options.engine, default PIPE_ASYNC)
 *     on the APC thread, PIPE_OVERLAPPED pipes and bus clients on the completion-port thread.
 *   - With a dispatcher (aipc_pipe_set_dispatcher, aipc_bus_options.dispatcher, C++
 *     SetDispatcher / BusOptions::dispatcher): on the application's thread.
 *     AIPC_DISPATCH_WINDOW: inside the message loop of the thread that created the dispatcher
 *     (a hidden message-only window; the loop must pump: GetMessage/DispatchMessage, a dialog's
 *     or a modal loop). AIPC_DISPATCH_MANUAL: inside aipc_dispatcher_run(), on the thread that
 *     calls it, typically when aipc_dispatcher_event() is signalled.
 *   - Always: callbacks of one object run one at a time, in the order the events happened.
 *     Pointers a callback receives are valid during the call only. A callback never runs nested
 *     inside another callback of the same thread: a modal loop, a message box or an alertable
 *     wait inside a callback does not deliver further callbacks; they follow when it returns.
 *   - The bus client's final callbacks (pending requests completing with AIPC_ECLOSED,
 *     on_state(AIPC_BUS_CLOSED)) run on the thread that calls aipc_bus_close, before it returns.
 *
 * Which calls wait, and for what
 *   - Never wait: CreateInstance/aipc_pipe_new, Create/aipc_pipe_create/aipc_pipe_create_ex (a
 *     server creates its pipe instance, a client starts connecting; OnCreate/OnConnected or
 *     on_create/on_connected follow as callbacks), Send/SendData/aipc_pipe_send,
 *     aipc_pipe_set_option, and every aipc_bus_* call except aipc_bus_close.
 *   - Exit/Release/aipc_pipe_exit/aipc_pipe_free/aipc_bus_close and the C++ destructors wait
 *     only for a callback of the same object that is running at that moment on another thread:
 *     never for queued callbacks, I/O, or the I/O thread. While they wait they serve messages
 *     sent to the calling thread's windows, as COM's modal loop does (a callback blocked in
 *     SendMessage to a window of the calling thread completes). Called on the thread that runs
 *     the object's callbacks (inside a callback, or on its dispatcher's thread) they never wait.
 *   - After they return no callback of the object starts; called inside one of its callbacks,
 *     none starts after that callback returns. The I/O itself (cancel, close the handle) is
 *     finished by the I/O thread afterwards; the SDK keeps its buffers alive until then.
 *   - Still a deadlock: a callback running on the I/O thread that waits for the thread calling
 *     Exit/close by other means than a sent message (an event that thread sets, a message
 *     posted to it, a COM call into its apartment). Code like that belongs on a dispatcher:
 *     its callbacks then run on that thread itself, and Exit/close there never waits.
 *   - At process exit, when the thread running a callback is already gone (a static destructor
 *     in a DLL, an atexit handler after ExitProcess), they return without waiting.
 */

/* ---- version ----------------------------------------------------------------------------- */
#define AIPC_VERSION_MAJOR 0
#define AIPC_VERSION_MINOR 1
#define AIPC_VERSION_PATCH 0
#define AIPC_VERSION_STRING "0.1.0"
/* Encodes a version as one comparable number: AIPC_MAKE_VERSION(0,1,0) == 0x000100. */
#define AIPC_MAKE_VERSION(ma, mi, pa) (((ma) << 16) | ((mi) << 8) | (pa))
#define AIPC_VERSION AIPC_MAKE_VERSION(AIPC_VERSION_MAJOR, AIPC_VERSION_MINOR, AIPC_VERSION_PATCH)

/* The version of the DLL actually loaded (compare with AIPC_VERSION, the one compiled against). */
ASYNCIPC_API uint32_t aipc_version(void);
ASYNCIPC_API const char *aipc_version_string(void);

/* Wire protocol version spoken by this SDK (docs/protocol.md). */
#define AIPC_PROTO_VERSION 1

/* ---- errors (append-only; always negative) ------------------------------------------------ */
/* One list of every code: XX(NAME, value, text). Append-only. aipc_strerror and aipc_err_name
 * are generated from it; the #defines below repeat the values for #if and switch use (the SDK
 * checks at build time that they agree). */
#define AIPC_ERRNO_MAP(XX)                                                                       \
    XX(EINVAL,        -1, "invalid argument")                                                    \
    XX(ENOMEM,        -2, "out of memory")                                                       \
    XX(ETOOBIG,       -3, "message too large")                                                   \
    XX(ECLOSED,       -4, "pipe closed")                                                         \
    XX(ESTATE,        -5, "invalid state for this call")                                         \
    XX(ESYS,          -6, "system call failed")                                                  \
    XX(ETIMEDOUT,     -7, "timed out")                                                           \
    XX(EPROTO,        -8, "protocol error")                                                      \
    XX(ENOTFOUND,     -9, "not found")                                                           \
    XX(EBUSY,        -10, "busy")                                                                \
    XX(EQUEUEFULL,   -11, "queue full")                                                          \
    XX(EDISCONNECTED,-12, "disconnected")                                                        \
    XX(EREFUSED,     -13, "refused by the broker")                                               \
    XX(ENOTSUP,      -14, "not supported")                                                       \
    XX(EACCESS,      -15, "access denied")                                                       \
    XX(EUNTRUSTED,   -16, "the server is not owned by an expected principal")

#define AIPC_OK             0
#define AIPC_EINVAL        (-1)   /* invalid argument */
#define AIPC_ENOMEM        (-2)   /* out of memory */
#define AIPC_ETOOBIG       (-3)   /* message or frame larger than the configured limit */
#define AIPC_ECLOSED       (-4)   /* the pipe/connection is closed or was never opened */
#define AIPC_ESTATE        (-5)   /* call not valid in the current state (e.g. Create twice) */
#define AIPC_ESYS          (-6)   /* a Win32 call failed; aipc_last_syserr (a call's result),
                                     aipc_pipe_get_error and aipc_bus_get_error (a failure
                                     reported by a callback) give its code */
#define AIPC_ETIMEDOUT     (-7)   /* a wait or request timed out */
#define AIPC_EPROTO        (-8)   /* malformed frame or protocol violation */
#define AIPC_ENOTFOUND     (-9)   /* pipe/broker/client not found */
#define AIPC_EBUSY         (-10)  /* all pipe instances busy */
#define AIPC_EQUEUEFULL    (-11)  /* an outbound queue is full */
#define AIPC_EDISCONNECTED (-12)  /* the peer or broker went away before completion */
#define AIPC_EREFUSED      (-13)  /* the broker refused the operation (see its error code) */
#define AIPC_ENOTSUP       (-14)  /* not supported by this engine/build */
#define AIPC_EACCESS       (-15)  /* access denied: the pipe's descriptor does not let us in */
#define AIPC_EUNTRUSTED    (-16)  /* the server's owner is not an expected principal: nothing
                                     was sent (see aipc_pipe_set_security and
                                     aipc_bus_options.server_owners) */

/* Text for an AIPC_E* code; never NULL ("unknown error" for codes this version doesn't know). */
ASYNCIPC_API const char *aipc_strerror(int code);
/* The code's name without the prefix ("EINVAL", "OK"); never NULL ("UNKNOWN"). */
ASYNCIPC_API const char *aipc_err_name(int code);
/* The Win32 error (a GetLastError code) behind the last AIPC_ESYS that an aipc_* call returned
 * on the calling thread, as errno is: read it right after such a call; other calls leave it
 * unchanged. 0 if no call of this thread has returned AIPC_ESYS. Failures that arrive by
 * callback are kept per object instead: aipc_pipe_get_error, aipc_bus_get_error. */
ASYNCIPC_API uint32_t aipc_last_syserr(void);

/* ---- limits ------------------------------------------------------------------------------ */
#define AIPC_FRAME_HEADER_SIZE   8u                   /* u32 meta_len, u32 payload_len (LE) */
#define AIPC_MAX_META            65536u               /* meta_len limit (docs/protocol.md 1) */
#define AIPC_DEFAULT_MAX_PAYLOAD (16u * 1024u * 1024u) /* default payload_len limit */
#define AIPC_DEFAULT_CONNECT_TIMEOUT_MS 5000u          /* client waits this long for a server */
#define AIPC_DEFAULT_MAX_QUEUE   (64u * 1024u * 1024u) /* pipe send queue (see AIPC_PIPE_OPT_MAX_QUEUE) */

/* Default broker pipe. Everywhere a pipe name is taken, "\\.\pipe\NAME" and "NAME" both work. */
#define AIPC_DEFAULT_BROKER_PIPE L"\\\\.\\pipe\\asyncipc.broker"

/* ======================================================================================== */
/* Point-to-point pipe API (classic AsyncIPC)                                               */
/* ======================================================================================== */

/*
 * Behaviour of the point-to-point pipes (both engines, any engine talks to any other):
 *   - Wire: every message is one frame {u32 meta_len = 0, u32 payload_len} + payload
 *     on a pipe read and written in byte mode. A peer frame over the maximum message size, or
 *     with a meta (meta_len != 0) that is not one of the control frames of shared-memory
 *     negotiation (docs/protocol.md, point to point), is a protocol error: it is logged at ERROR
 *     and the connection is closed (OnDisconnected). Peers that never negotiate (older SDKs,
 *     raw clients, AIPC_SHM_OFF) only ever see and send meta_len = 0 frames.
 *   - Threads: PIPE_ASYNC runs every PIPE_ASYNC pipe of the process on one I/O thread (APCs,
 *     ReadFileEx/WriteFileEx); PIPE_OVERLAPPED runs every PIPE_OVERLAPPED pipe on one I/O thread
 *     waiting on an I/O completion port. Both start on first use and live until process exit.
 *     Callbacks run there or on a dispatcher's thread: see "Threading contract" above.
 *   - Server: one pipe instance, one peer at a time; after the peer leaves: OnDisconnected,
 *     then it listens again (OnConnected(true) for the next peer). Messages sent while no peer
 *     is connected are kept for the next peer; messages not yet written when a peer leaves are
 *     discarded (no OnSend for them).
 *   - Client: retries a missing or busy pipe (backoff 10..200 ms on the I/O thread) until the
 *     connect timeout, then OnConnected(false). A client connects once: after OnConnected(false)
 *     or OnDisconnected, Send returns AIPC_ECLOSED (create a new pipe object to reconnect).
 *   - Send copies the message into a batch; the I/O thread writes whole batches with one
 *     WriteFile and reports OnSend(size) per message once its batch is written. The queue is
 *     bounded (AIPC_PIPE_OPT_MAX_QUEUE): when a sender outpaces its reader, Send returns
 *     AIPC_EQUEUEFULL (the classic void Send logs a warning) until OnSend reports progress.
 *   - Exit discards queued and in-flight messages (cancelled with CancelIoEx) and closes the
 *     handle once the cancelled operations have completed; the object memory lives until then.
 */
/* Where callbacks run (see "Dispatchers" below). */
typedef struct aipc_dispatcher aipc_dispatcher;

typedef enum { PIPE_ASYNC = 0, PIPE_OVERLAPPED = 1 } PipeImplType;  /* APC | overlapped I/O */
typedef enum { PIPE_SERVER = 0, PIPE_CLIENT = 1 } PipeType;

/*
 * The delegate receives a pipe's events. Embed it as the FIRST member of your own struct to
 * carry state, and cast `self` back. Any member may be NULL (event ignored).
 * Thread: every member is called on the SDK's I/O thread (one per process per engine), or on
 * the pipe's dispatcher thread when it has one; never concurrently for one pipe, and never
 * after Exit()/Release() has returned (see "Threading contract").
 */
typedef struct aipc_pipe_delegate aipc_pipe_delegate;
struct aipc_pipe_delegate {
    /* Create() finished setting up: server - the pipe instance exists and is listening;
     * client - the connect attempt has started. ok=false: it failed (see the log). */
    void (*OnCreate)(aipc_pipe_delegate *self, bool ok);
    /* A peer connected (ok=true), or a client gave up after its connect timeout (ok=false). */
    void (*OnConnected)(aipc_pipe_delegate *self, bool ok);
    /* One message (of `size` payload bytes) was fully written to the pipe. */
    void (*OnSend)(aipc_pipe_delegate *self, int size);
    /* One whole message arrived. `data` is valid only during the call (NUL-terminated for
     * convenience: data[size] == 0, not counted in size). */
    void (*OnRecv)(aipc_pipe_delegate *self, void *data, int size);
    /* The connected peer went away (or the connection was closed for a protocol error).
     * A server then listens again for the next peer. */
    void (*OnDisconnected)(aipc_pipe_delegate *self);
};

/*
 * A pipe object: a table of operations whose first argument is the pipe itself, as in
 * `p->Send(p, "hello")`. Created by CreateInstance()/aipc_pipe_new(); the SDK owns the memory.
 * Members only ever get appended.
 */
typedef struct aipc_named_pipe aipc_named_pipe;
struct aipc_named_pipe {
    bool (*Create)(aipc_named_pipe *self, const wchar_t *pipe_name, PipeType type,
                   aipc_pipe_delegate *d);                          /* = aipc_pipe_create */
    void (*Exit)(aipc_named_pipe *self);                             /* = aipc_pipe_exit */
    void (*Send)(aipc_named_pipe *self, const char *msg);            /* NUL-terminated text */
    int  (*SendData)(aipc_named_pipe *self, const void *data, size_t size); /* binary-safe */
    void (*Release)(aipc_named_pipe *self);                          /* = aipc_pipe_free */
};

#ifndef ASYNCIPC_NO_CLASSIC_C_NAMES
/* The classic names (C). asyncipc.hpp defines C++ classes with these names instead. */
typedef aipc_pipe_delegate IPipeDelegate;
typedef aipc_named_pipe INamedPipe;
/* Creates a pipe object using `engine`. Returns 0 and sets *pipe, or AIPC_E* (< 0). */
ASYNCIPC_API int CreateInstance(PipeImplType engine, INamedPipe **pipe);
#endif
/* Starts the SDK's file log: AsyncIPC_<process_name>_<yyyymmdd>.log under
 * %LOCALAPPDATA%\AsyncIPC\logs (timestamp, level, pid, tid, message). Safe to call again
 * (switches the file). Payload bytes are never logged at the default level. */
ASYNCIPC_API void InitEasyLog(const char *process_name);

/* ---- flat functions (FFI); the struct members above call these ---------------------------- */

/* Same as CreateInstance. */
ASYNCIPC_API int  aipc_pipe_new(PipeImplType engine, aipc_named_pipe **pipe);
/* Sets a pipe option before Create (returns AIPC_ESTATE after). */
#define AIPC_PIPE_OPT_CONNECT_TIMEOUT_MS 1  /* client: how long to wait for a server (default 5000;
                                               0 = one attempt; up to 0xFFFFFFFE) */
#define AIPC_PIPE_OPT_MAX_MESSAGE        2  /* largest message in bytes, both ways (default 16 MiB;
                                               1 .. 1 GiB) */
#define AIPC_PIPE_OPT_MAX_QUEUE          3  /* bytes Send accepted and not yet written (8-byte frame
                                               headers included); a Send beyond it returns
                                               AIPC_EQUEUEFULL and queues nothing. A message into
                                               an empty queue is always accepted. Default: the
                                               larger of 64 MiB and 4 x (max message + 8);
                                               0 = unbounded */
#define AIPC_PIPE_OPT_MAX_DISPATCH       4  /* with a dispatcher: bytes of received messages (plus
                                               AIPC_DISPATCH_ITEM_OVERHEAD per callback) queued
                                               for the application's thread. Beyond it the pipe
                                               stops reading until the application has run them
                                               (the peer's writes then wait: nothing is lost).
                                               Default AIPC_DEFAULT_MAX_DISPATCH or one largest
                                               message if that is more; 1 .. 4 GiB. With a
                                               dispatcher, messages written but not yet reported
                                               by OnSend also count against AIPC_PIPE_OPT_MAX_QUEUE */
#define AIPC_PIPE_OPT_SHM                5  /* shared memory for large messages (docs/sdk.md):
                                               AIPC_SHM_AUTO (default: a server offers it, a
                                               client asks for it, each side may keep any message
                                               inline) or AIPC_SHM_OFF (inline only; a server
                                               then creates a plain byte pipe as before) */
#define AIPC_PIPE_OPT_SHM_THRESHOLD      6  /* messages of at least this many bytes go through
                                               shared memory when the connection negotiated it
                                               (default AIPC_DEFAULT_SHM_THRESHOLD; 0 = never send
                                               shared, still accept; up to 1 GiB) */
#define AIPC_SHM_AUTO 0
#define AIPC_SHM_OFF  1
#define AIPC_DEFAULT_SHM_THRESHOLD (64u * 1024u)
ASYNCIPC_API int  aipc_pipe_set_option(aipc_named_pipe *pipe, int option, uint64_t value);
/*
 * Security of a pipe (before Create; AIPC_ESTATE after; NULL keeps a default). Strings are
 * copied. See docs/security.md.
 *   server_sddl    server: the pipe's security descriptor in SDDL; "%U" stands for this
 *                  process's user SID. Default "D:P(A;;FA;;;SY)(A;;FA;;;%U)": SYSTEM and the
 *                  creating user only. Without an owner part, "O:<this user>" is added.
 *   server_owners  client: who may own the server's pipe, checked right after opening it and
 *                  before anything is sent; ';'-separated SID strings or SDDL aliases ("SY",
 *                  "BA", "S-1-5-21-..."), "self" (our own user), "service:NAME" (the virtual
 *                  account NT SERVICE\NAME) or "*" (no check). Default "self". A server owned
 *                  by anyone else is refused: OnConnected(false), aipc_pipe_get_error() ==
 *                  AIPC_EUNTRUSTED, a WARN log line.
 * Returns 0, AIPC_EINVAL (a string that does not parse), AIPC_ENOMEM or AIPC_ESTATE.
 */
ASYNCIPC_API int  aipc_pipe_set_security(aipc_named_pipe *pipe, const char *server_sddl,
                                         const char *server_owners);
/* Why the pipe last failed (setup, connect, or a lost connection): an AIPC_E* code, 0 if it did
 * not; *win32 (may be NULL) gets the Win32 error behind it (0 if none). Any thread. */
ASYNCIPC_API int  aipc_pipe_get_error(aipc_named_pipe *pipe, uint32_t *win32);
/* Counters of a pipe's current connection (aipc_pipe_get_stats). Members are only ever
 * appended: set `size` = sizeof(aipc_pipe_stats); the call fills the first `size` bytes (an
 * older caller's struct) and leaves `size` as it was. shm, shm_bytes and shm_segments
 * describe the current connection (0 while no peer is connected); the message counters count
 * since the pipe was created. */
typedef struct aipc_pipe_stats {
    uint32_t size;            /* sizeof(aipc_pipe_stats) as compiled by the caller */
    uint32_t shm;             /* 1: shared memory was negotiated with the connected peer */
    uint64_t shm_bytes;       /* payload bytes of our shared messages the peer has not released */
    uint32_t shm_segments;    /* shared segments in use: ours the peer confirmed + the peer's
                                 we mapped */
    uint32_t shm_reserved;
    uint64_t shm_sent;        /* messages sent through shared memory */
    uint64_t shm_received;    /* messages received through shared memory */
    uint64_t shm_inline_fallbacks; /* messages at/above the threshold that went inline anyway */
    uint64_t shm_map_failures;     /* segments we or the peer could not map */
    /* -- zero-copy buffers (see "Zero-copy buffers" below) -- */
    uint64_t buf_bytes;       /* capacity of aipc_pipe_alloc buffers not yet sent or released */
    uint64_t buf_shm_bytes;   /* ... of those, the ones that are slots of our shared segments */
    uint64_t recv_buf_bytes;  /* bytes of received buffers (aipc_pipe_set_recv_ref) not yet
                                 released with aipc_buf_release */
    uint64_t shm_pinned_bytes; /* bytes of our shared segments already released by the peer
                                 but not reusable yet: they wait behind an older slot still
                                 held (a buffer the peer keeps, one we allocated and keep
                                 unsent). Grows with long holds; see "Zero-copy buffers" */
} aipc_pipe_stats;
/* Fills *out (see aipc_pipe_stats). 0, or AIPC_EINVAL (NULL, or `size` below 8). Any thread. */
ASYNCIPC_API int  aipc_pipe_get_stats(aipc_named_pipe *pipe, aipc_pipe_stats *out);
/* Runs every callback of the pipe through dispatcher `d` (before Create; AIPC_ESTATE after).
 * The pipe keeps `d` alive; NULL goes back to the I/O thread. See "Dispatchers" below. */
ASYNCIPC_API int  aipc_pipe_set_dispatcher(aipc_named_pipe *pipe, aipc_dispatcher *d);
/* Starts the pipe as server or client on `pipe_name` ("\\.\pipe\NAME" or "NAME") and returns
 * without waiting for any callback. True if the setup started: a server has created its pipe
 * instance (false: the name is taken or invalid - OnCreate(false) follows too), a client has
 * started connecting. OnCreate and then OnConnected follow as callbacks.
 * `d` must stay valid until Exit/Release returns. */
ASYNCIPC_API bool aipc_pipe_create(aipc_named_pipe *pipe, const wchar_t *pipe_name, PipeType type,
                                   aipc_pipe_delegate *d);
/* Queues one message (copied; the caller keeps `data`). Non-blocking and thread-safe; a message
 * sent before the peer connects is kept and delivered once it does. Returns 0 or
 * AIPC_EINVAL / AIPC_ETOOBIG / AIPC_ECLOSED (after Exit) / AIPC_ENOMEM /
 * AIPC_EQUEUEFULL (over AIPC_PIPE_OPT_MAX_QUEUE: retry after an OnSend). */
ASYNCIPC_API int  aipc_pipe_send(aipc_named_pipe *pipe, const void *data, size_t size);
/* Closes the connection (and stops listening). After it returns no callback of this pipe runs
 * (unless called from inside a callback: then none after that callback returns). Any thread;
 * waits only for a callback of this pipe running on another thread, serving sent messages
 * meanwhile (see "Threading contract"). */
ASYNCIPC_API void aipc_pipe_exit(aipc_named_pipe *pipe);
/* Exit if needed, then frees the pipe. Any thread, including inside the pipe's own callback. */
ASYNCIPC_API void aipc_pipe_free(aipc_named_pipe *pipe);

/*
 * Versioned pipe events: the delegate for new code (the classic aipc_pipe_delegate keeps
 * working; both run on the same code path). Fill an aipc_pipe_events with `size` =
 * sizeof(aipc_pipe_events) and start the pipe with aipc_pipe_create_ex instead of Create.
 *   - Ownership: aipc_pipe_create_ex copies the struct (it need not outlive the call); `user`
 *     belongs to the application and is handed to every callback untouched - the SDK never
 *     reads or frees it. `user` must stay valid while callbacks can run: until
 *     aipc_pipe_exit/aipc_pipe_free has returned (or, called inside a callback, until that
 *     callback returns).
 *   - Versions: members are only ever appended. A program built against an older header passes
 *     its smaller `size` and gets exactly the callbacks it has (a member counts only if it lies
 *     wholly inside `size`); a `size` larger than this DLL knows is accepted and the members it
 *     does not know are never called (compare aipc_version() with the version that added
 *     them). A `size` below AIPC_PIPE_EVENTS_MIN_SIZE (0 included) is refused (AIPC_EINVAL).
 *   - Any callback may be NULL (event ignored). Each receives the pipe and `user`.
 *   - Thread: every member is called on the SDK's I/O thread (one per process per engine), or
 *     on the pipe's dispatcher thread when it has one; never concurrently for one pipe, in the
 *     order the events happened, and never after aipc_pipe_exit/aipc_pipe_free has returned
 *     (see "Threading contract"). Pointers a callback receives are valid during the call only.
 */
typedef struct aipc_pipe_events aipc_pipe_events;
struct aipc_pipe_events {
    uint32_t size;   /* sizeof(aipc_pipe_events) as compiled by the caller: the version */
    void *user;      /* the application's; passed to every callback */
    /* -- first version (AsyncIPC 0.1) -- */
    /* Setup finished: server - the pipe instance exists and is listening; client - the connect
     * attempt has started. ok=false: it failed (aipc_pipe_get_error says why). */
    void (*on_create)(aipc_named_pipe *pipe, void *user, bool ok);
    /* A peer connected (ok=true; a server: once per peer), or a client gave up (ok=false:
     * connect timeout, refused owner, ... - aipc_pipe_get_error says why). */
    void (*on_connected)(aipc_named_pipe *pipe, void *user, bool ok);
    /* One message of `size` payload bytes was fully written to the pipe. */
    void (*on_send)(aipc_named_pipe *pipe, void *user, size_t size);
    /* One whole message arrived: `size` bytes at `data`, followed by a NUL not counted in
     * `size`; valid during the call only. */
    void (*on_recv)(aipc_named_pipe *pipe, void *user, const void *data, size_t size);
    /* The connected peer went away (or the connection was closed for a protocol error). A
     * server then listens again for the next peer. */
    void (*on_disconnected)(aipc_named_pipe *pipe, void *user);
};
/* The smallest accepted `size`: the header (size and user) without any callback. */
#define AIPC_PIPE_EVENTS_MIN_SIZE ((uint32_t)offsetof(aipc_pipe_events, on_create))

/* aipc_pipe_create with versioned events: starts the pipe as server or client on `pipe_name`
 * and returns without waiting for any callback. Returns 0 when the setup started (a server
 * has created its pipe instance, a client has started connecting; on_create and then
 * on_connected follow), or:
 *   AIPC_EINVAL   NULL pipe or events, a `size` below AIPC_PIPE_EVENTS_MIN_SIZE, a bad type
 *                 or pipe name (no callback follows)
 *   AIPC_ESTATE   the pipe was already created or exited (no callback follows)
 *   another code  a server could not create its pipe instance: AIPC_EACCESS or AIPC_EBUSY (the
 *                 name is taken), AIPC_ESYS (refused: aipc_pipe_get_error() gives the Win32
 *                 error), ...; on_create(false) follows too. */
ASYNCIPC_API int  aipc_pipe_create_ex(aipc_named_pipe *pipe, const wchar_t *pipe_name,
                                      PipeType type, const aipc_pipe_events *events);

/*
 * Zero-copy buffers (point to point; docs/sdk.md "Zero-copy buffers",
 * docs/design/shared-memory.md section 13). Optional: Send/aipc_pipe_send and OnRecv/on_recv
 * work as before.
 *
 * Send without a copy: aipc_pipe_alloc returns a buffer to fill in place - a slot of this
 * pipe's shared segments when the connection negotiated shared memory and `size` is at least
 * AIPC_PIPE_OPT_SHM_THRESHOLD (the peer then reads it where it was written), otherwise (below
 * the threshold, shared memory off or declined, not connected yet, no room in the segments) a
 * heap buffer that aipc_pipe_send_buf copies into the pipe's queue like aipc_pipe_send. Fill
 * buf->data[0 .. len) and pass it to aipc_pipe_send_buf: it is queued in order with the pipe's
 * other sends, and on success belongs to the SDK (never touch it again); or give it back
 * unsent with aipc_buf_release. A buffer's capacity counts against AIPC_PIPE_OPT_MAX_QUEUE from
 * aipc_pipe_alloc on (AIPC_EQUEUEFULL when there is no room, with the same "an empty queue
 * always accepts one" rule as aipc_pipe_send), so aipc_pipe_send_buf never fails for room.
 * A buffer outlives its connection: sent after the peer changed, it goes inline (copied).
 *
 * Receive without a copy: aipc_pipe_set_recv_ref installs a callback that gets every received
 * message as a buffer instead of on_recv/OnRecv (which are then not called). A shared message's
 * buffer points into the peer's segment (READ-ONLY: writing faults); an inline one is a heap
 * copy. The callback may keep the buffer past its return and must release it with
 * aipc_buf_release, from any thread, at any time (also after aipc_pipe_free: the pipe's memory
 * stays until its last buffer is released). A shared message's slot stays charged to the
 * peer's queue and pool until then: a receiver that holds buffers makes the peer's sends go
 * inline and then return AIPC_EQUEUEFULL, never lose or block anything; if the peer is killed
 * or disconnects, held buffers stay readable until released. The buffers' bytes appear in
 * aipc_pipe_stats.recv_buf_bytes.
 * Holding costs more than the held bytes: a segment's slots are reclaimed in ring order, so a
 * held slot (a received buffer kept, or an allocated one kept unsent) keeps every later slot of
 * its segment from being reused, even once released: the sender takes further segments and,
 * at its pool bound (its queue bound), sends inline. The sender's
 * aipc_pipe_stats.shm_pinned_bytes shows those bytes. Hold briefly, or copy what you keep.
 * Inline messages (below the threshold, or when the sender's pool is full) arrive as heap
 * copies that nothing bounds: the sender's queue bound limits only the shared ones a receiver
 * holds, so a receiver that keeps buffers bounds its own memory (recv_buf_bytes counts both).
 * A shared message's buffer is the SENDER's memory, mapped read-only only in this process: the
 * peer process can still write it. The SDK checks at arrival that the byte after the message
 * is the NUL (a descriptor without it is a protocol error: the connection is closed), but a
 * misbehaving peer can change the bytes, the NUL included, until the buffer is released. Do
 * not validate in place what matters (lengths, JSON, strings you will parse): copy first, then
 * validate the copy (the classic on_recv/OnRecv path always gets a private copy).
 *
 * Threads: aipc_pipe_alloc, aipc_pipe_send_buf and aipc_buf_release may be called from any
 * thread, inside callbacks too; none waits for I/O (each takes the pipe's lock briefly). One
 * buffer is used by one thread at a time. The recv_ref callback runs where on_recv would: on the
 * SDK's I/O thread, or on the pipe's dispatcher thread when it has one, through the same gate
 * (never after aipc_pipe_exit returned: buffers not delivered are released by the SDK).
 */
typedef struct aipc_buf {
    void *data;      /* the bytes. aipc_pipe_alloc / aipc_bus_alloc: writable, `size` bytes.
                        Received: the message, followed by a NUL not counted in `size`;
                        READ-ONLY (a shared one is the sender's memory: it may still change,
                        see above) */
    size_t size;     /* aipc_*_alloc: the capacity asked for; received: the message's size */
} aipc_buf;          /* allocated by the SDK (a larger private object): never copy it. The bus
                        client's buffers: "Bus zero-copy buffers" below */
/* A writable buffer of `size` bytes for aipc_pipe_send_buf. 0 and *out, or AIPC_EINVAL,
 * AIPC_ETOOBIG (over AIPC_PIPE_OPT_MAX_MESSAGE), AIPC_ECLOSED (after Exit), AIPC_EQUEUEFULL
 * (no room in AIPC_PIPE_OPT_MAX_QUEUE now: retry after an OnSend), AIPC_ENOMEM. */
ASYNCIPC_API int  aipc_pipe_alloc(aipc_named_pipe *pipe, size_t size, aipc_buf **out);
/* Sends the first `len` bytes (len <= buf->size) of a buffer from aipc_pipe_alloc of this pipe.
 * 0: the buffer now belongs to the SDK and `buf` is invalid, as after free: reading, writing,
 * sending or releasing it again is undefined. OnSend/on_send reports `len` once it is written
 * (a shared one: once the peer released it). On an error the caller still owns it: AIPC_EINVAL
 * (another pipe's buffer, a received one, len too large, not a live buffer), AIPC_ECLOSED
 * (after Exit), AIPC_ENOMEM. */
ASYNCIPC_API int  aipc_pipe_send_buf(aipc_named_pipe *pipe, aipc_buf *buf, size_t len);
/* Gives a buffer back: an unsent one from aipc_pipe_alloc (its slot and queue room are free
 * again), or a received one (its slot goes back to the peer with our next write). NULL is
 * ignored. Any thread. Afterwards `buf` is invalid, as after free: using or releasing it again
 * is undefined. (A pointer that is no live buffer is ignored with an ERROR log line, but once
 * the SDK gave its address to a new buffer, a stale release releases that new one.) */
ASYNCIPC_API void aipc_buf_release(aipc_buf *buf);
/* Called with every received message instead of on_recv/OnRecv (see above). */
typedef void (*aipc_pipe_recv_ref_fn)(aipc_named_pipe *pipe, void *user, aipc_buf *buf);
/* Installs (fn != NULL) or removes the buffer callback, before Create (AIPC_ESTATE after);
 * `user` is passed to it untouched. 0, AIPC_EINVAL or AIPC_ESTATE. */
ASYNCIPC_API int  aipc_pipe_set_recv_ref(aipc_named_pipe *pipe, aipc_pipe_recv_ref_fn fn,
                                         void *user);

/* ======================================================================================== */
/* Dispatchers: callbacks on the application's thread                                       */
/* ======================================================================================== */
/*
 * A dispatcher moves the callbacks of the pipes and bus clients attached to it from the SDK's
 * I/O thread to a thread of the application, like .NET's SynchronizationContext or GDBus's
 * main context. Attach it before Create (aipc_pipe_set_dispatcher) or connect
 * (aipc_bus_options.dispatcher); several objects may share one dispatcher (their callbacks are
 * then serialised on it, each object's in order).
 *
 *   AIPC_DISPATCH_WINDOW  the thread calling aipc_dispatcher_new must run a message loop:
 *                         the dispatcher is a hidden message-only window of that thread, and
 *                         callbacks run inside DispatchMessage (also in dialog and modal loops).
 *                         Long bursts are cut into slices so input and painting keep flowing.
 *   AIPC_DISPATCH_MANUAL  for programs with their own loop: aipc_dispatcher_event() returns a
 *                         manual-reset event that is signalled while callbacks are queued; the
 *                         program calls aipc_dispatcher_run() (on any one thread at a time).
 *
 * Memory: what a callback receives is copied for the trip between threads and freed after the
 * callback. The queue is bounded per object: a pipe stops reading beyond
 * AIPC_PIPE_OPT_MAX_DISPATCH, a bus client beyond aipc_bus_options.max_dispatch_bytes (the
 * peer or the broker then holds the data back, under its own limits), so a thread that stops
 * pumping costs at most that much memory per object, plus AIPC_DISPATCH_ITEM_OVERHEAD per
 * queued event.
 * Lifetime: objects keep their dispatcher alive. aipc_dispatcher_free drops queued callbacks
 * (an object still attached then gets no more callbacks) and, for AIPC_DISPATCH_WINDOW,
 * destroys the window: call it on the creating thread, after Exit/Release/close of the objects.
 */
#define AIPC_DISPATCH_WINDOW 1
#define AIPC_DISPATCH_MANUAL 2
#define AIPC_DEFAULT_MAX_DISPATCH (8u * 1024u * 1024u)  /* default per-object bound, bytes */
#define AIPC_DISPATCH_ITEM_OVERHEAD 64u                 /* bytes charged per queued callback */

/* Creates a dispatcher (AIPC_DISPATCH_WINDOW: owned by the calling thread). 0 or AIPC_EINVAL,
 * AIPC_ENOMEM, AIPC_ESYS. */
ASYNCIPC_API int  aipc_dispatcher_new(int mode, aipc_dispatcher **out);
/* AIPC_DISPATCH_MANUAL: the event (a HANDLE) signalled while callbacks are queued; do not
 * close it. NULL for AIPC_DISPATCH_WINDOW. */
ASYNCIPC_API void *aipc_dispatcher_event(aipc_dispatcher *d);
/* Runs queued callbacks on the calling thread: at most `max` (0 = every one queued when the
 * call started). Returns how many ran, or AIPC_EINVAL. Called inside a callback it runs
 * nothing and returns 0 (callbacks never nest). Works for both modes. */
ASYNCIPC_API int  aipc_dispatcher_run(aipc_dispatcher *d, uint32_t max);
/* Callbacks queued now and the bytes they hold (either pointer may be NULL). */
ASYNCIPC_API int  aipc_dispatcher_queued(aipc_dispatcher *d, uint64_t *count, uint64_t *bytes);
/* Drops what is queued and releases the caller's reference (see Lifetime above). */
ASYNCIPC_API void aipc_dispatcher_free(aipc_dispatcher *d);

/* ---- logging --------------------------------------------------------------------------- */
typedef enum { AIPC_LOG_ERROR = 0, AIPC_LOG_WARN = 1, AIPC_LOG_INFO = 2, AIPC_LOG_DEBUG = 3,
               AIPC_LOG_TRACE = 4 } aipc_log_level;   /* TRACE also logs payload bytes */
ASYNCIPC_API void aipc_log_set_level(aipc_log_level level);   /* default AIPC_LOG_INFO */
/* Logs to an explicit file path (UTF-8) instead of the InitEasyLog location; NULL closes. */
ASYNCIPC_API int  aipc_log_open_file(const char *path_utf8);
/* printf-style log line through the SDK logger (for applications and the broker). */
ASYNCIPC_API void aipc_log(aipc_log_level level, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

/* ======================================================================================== */
/* Bus client (aipc_bus_*) - see docs/sdk.md                                                */
/* ======================================================================================== */

/*
 * The bus client connects to the AsyncIPC broker (asyncipc-broker.exe) and speaks wire protocol
 * v1 (docs/protocol.md): publish/subscribe with MQTT topic filters, retained messages, direct
 * messages, request/reply, presence, ping and broker statistics.
 *
 * Threads (see "Threading contract" at the top)
 *   - Every aipc_bus_* function is thread-safe and non-blocking (it queues work for the I/O
 *     thread and returns), except aipc_bus_close(), which waits at most for a callback of this
 *     client running on another thread.
 *   - Every callback runs on the SDK's I/O thread (the APC engine's thread, shared by every
 *     pipe and bus client of the process), or on the dispatcher's thread when
 *     options.dispatcher is set; one at a time. Pointers passed to a callback (topic, data,
 *     peer names, error texts) are valid only for the duration of the call: copy what you
 *     keep. Callbacks may call any aipc_bus_* function, including aipc_bus_close() on their
 *     own client; on the I/O thread they should not block for long (they hold up every other
 *     client of the process).
 *
 * Delivery
 *   - Per publisher, messages arrive in publish order. While the broker is unreachable,
 *     publish/send/request are queued (bounded by max_queue_bytes) and sent after reconnecting;
 *     a frame being written when the connection breaks may be lost (at-most-once delivery).
 *   - After a reconnect the client sends hello with the same name and re-subscribes every
 *     filter before anything queued; retained messages matching the filters are delivered again.
 */

typedef struct aipc_bus aipc_bus;   /* opaque client handle */

/* Connection state, reported through on_state and aipc_bus_get_state(). */
typedef enum {
    AIPC_BUS_CONNECTING   = 0,  /* first connection attempt in progress (never reported) */
    AIPC_BUS_CONNECTED    = 1,  /* the broker welcomed us; subscriptions are (re)established */
    AIPC_BUS_DISCONNECTED = 2,  /* connection lost or refused; final when reconnect is off */
    AIPC_BUS_RECONNECTING = 3,  /* waiting (backoff) before the next connection attempt */
    AIPC_BUS_CLOSED       = 4   /* aipc_bus_close() was called; the last callback */
} aipc_bus_state;

/* Text for a state ("connected", ...); never NULL. */
ASYNCIPC_API const char *aipc_bus_state_name(aipc_bus_state state);

/* A client as stamped by the broker. `name` is "" for an anonymous client, never NULL.
 * The broker fills in the identity it learnt when the client connected (not what the client
 * claims); a broker older than 0.2 leaves user_sid "" and the numbers 0. */
typedef struct aipc_bus_peer {
    uint64_t    id;        /* broker-assigned client id (unique while the broker runs) */
    const char *name;      /* client name */
    uint32_t    pid;       /* process id of the client (GetNamedPipeClientProcessId) */
    /* --- appended in 0.2 (the SDK allocates peers: callers only read them) --- */
    const char *user_sid;  /* the client's user, "S-1-5-21-..."; never NULL */
    uint32_t    session;   /* its Windows session id */
    uint32_t    integrity; /* its mandatory integrity level RID: 0x1000 low, 0x2000 medium,
                              0x3000 high, 0x4000 system; 0 = unknown */
} aipc_bus_peer;

/*
 * Completion of aipc_bus_request / aipc_bus_ping / aipc_bus_stats. Called exactly once, on the
 * I/O thread, for every call that returned an id > 0.
 *   status 0:                 data/len = the reply payload (stats: a JSON object of broker
 *                             counters; ping: empty); `from` = the replier (NULL for ping/stats)
 *   AIPC_ETIMEDOUT:           no answer within the timeout
 *   AIPC_EDISCONNECTED:       the connection broke after the request was sent
 *   AIPC_EREFUSED:            the broker answered with an error; data/len = its code
 *                             ("no_such_client", "no_reply", "queue_full", ...), NUL-terminated
 *   AIPC_ECLOSED:             aipc_bus_close() was called first
 */
typedef void (*aipc_bus_reply_fn)(aipc_bus *bus, void *user, int status, const aipc_bus_peer *from,
                                  const void *data, size_t len);

/*
 * Options for aipc_bus_connect(). Initialise with aipc_bus_options_init() (sets `size` and the
 * defaults), then change what you need. Fields are only ever appended; a zero numeric field
 * means "default". Every callback may be NULL (event ignored); `bus` is the client the event
 * belongs to and `user` is the options' `user` pointer.
 */
typedef struct aipc_bus_options {
    uint32_t size;                 /* sizeof(aipc_bus_options) - the struct's version */
    const wchar_t *pipe_name;      /* broker pipe, "\\.\pipe\NAME" or "NAME";
                                      NULL = AIPC_DEFAULT_BROKER_PIPE */
    const char *name;              /* client name [A-Za-z0-9._-]{1,128}, unique on the broker;
                                      NULL = anonymous */
    void *user;                    /* passed to every callback */

    /* A publication matching one of our filters (delivered once even if several match). */
    void (*on_message)(aipc_bus *bus, void *user, const char *topic, const aipc_bus_peer *from,
                       bool retained, const void *data, size_t len);
    /* A direct message (aipc_bus_send) addressed to us. */
    void (*on_direct)(aipc_bus *bus, void *user, const aipc_bus_peer *from, const void *data,
                      size_t len);
    /* A request. Answer with aipc_bus_reply(bus, from->id, req_id, ...) now or later, from any
     * thread. Without on_request, requests to us are answered with an empty reply. */
    void (*on_request)(aipc_bus *bus, void *user, const aipc_bus_peer *from, uint64_t req_id,
                       const void *data, size_t len);
    /* A client joined (joined=true) or left the bus. Setting it subscribes to $bus/joined and
     * $bus/left internally (on_message still sees them only through a matching filter). */
    void (*on_presence)(aipc_bus *bus, void *user, bool joined, const aipc_bus_peer *who);
    /* State change; `error` is the AIPC_E* cause (0 when none). */
    void (*on_state)(aipc_bus *bus, void *user, aipc_bus_state state, int error);
    /* The broker dropped `count` publications for us (we were too slow). */
    void (*on_dropped)(aipc_bus *bus, void *user, uint64_t count);
    /* An error without a request to report it to: `error` is an AIPC_E* code, `code` the
     * broker's code ("no_such_client", "bad_topic", "name_taken", ...) or "" for local errors,
     * `message` a human-readable line. */
    void (*on_error)(aipc_bus *bus, void *user, int error, const char *code, const char *message);

    int      reconnect;            /* non-zero: reconnect automatically (default: on) */
    uint32_t backoff_min_ms;       /* first reconnect delay (default 100) */
    uint32_t backoff_max_ms;       /* delay cap; the delay doubles per failure (default 5000) */
    uint64_t max_queue_bytes;      /* bytes accepted but not yet written to the broker (they
                                      pile up while disconnected); beyond it publish/send/
                                      request return AIPC_EQUEUEFULL (default 8 MiB) */
    uint32_t connect_timeout_ms;   /* one connection attempt waits this long for a busy or
                                      absent broker pipe, then as long again for the broker's
                                      welcome (default 5000) */
    /* --- appended in 0.2 --- */
    aipc_dispatcher *dispatcher;   /* run every callback through it (NULL = the I/O thread) */
    uint64_t max_dispatch_bytes;   /* with a dispatcher: bytes of queued callbacks (payloads
                                      plus AIPC_DISPATCH_ITEM_OVERHEAD each) beyond which the
                                      client stops reading from the broker until the
                                      application catches up; the broker then queues, and
                                      beyond its max_queue_bytes drops publications for us
                                      (reported by on_dropped). Default
                                      AIPC_DEFAULT_MAX_DISPATCH */
    const char *server_owners;     /* who may own the broker's pipe (checked after opening it,
                                      before hello; see aipc_pipe_set_security for the syntax).
                                      NULL = AIPC_BUS_DEFAULT_SERVER_OWNERS: the broker service's
                                      virtual account, SYSTEM, Administrators, or our own user
                                      (a console broker of the same user). Another owner: no
                                      data is sent, on_error(AIPC_EUNTRUSTED,
                                      "untrusted_server"), and the attempt fails with
                                      AIPC_EUNTRUSTED (retried with backoff when reconnecting) */
    /* --- appended in 0.3 --- */
    PipeImplType engine;           /* which I/O thread runs the client (as aipc_pipe_new):
                                      PIPE_ASYNC (default, 0): the APC thread shared with
                                      PIPE_ASYNC pipes; PIPE_OVERLAPPED: the completion-port
                                      thread shared with PIPE_OVERLAPPED pipes. Callbacks
                                      without a dispatcher run on that thread. Another value
                                      is AIPC_EINVAL */
    /* --- appended in 0.4 --- */
    uint32_t shm;                  /* shared memory for large payloads (docs/sdk.md "Shared
                                      memory"): AIPC_SHM_AUTO (default, 0) offers it in hello
                                      and uses it when the broker's welcome agrees;
                                      AIPC_SHM_OFF: everything inline. Another value is
                                      AIPC_EINVAL */
    uint32_t shm_threshold;        /* payloads of at least this many bytes are sent through
                                      shared memory when it is in use (0 =
                                      AIPC_DEFAULT_SHM_THRESHOLD). Retained publications always
                                      go inline */
    /* --- appended in 0.5: zero-copy receive (see "Bus zero-copy buffers" below) --- */
    /* Set: replaces on_message. The payload arrives as a buffer the application owns until
     * aipc_buf_release (any thread, any time, also after aipc_bus_close). */
    void (*on_message_buf)(aipc_bus *bus, void *user, const char *topic,
                           const aipc_bus_peer *from, bool retained, aipc_buf *buf);
    /* Set: replaces on_direct, the same way. */
    void (*on_direct_buf)(aipc_bus *bus, void *user, const aipc_bus_peer *from, aipc_buf *buf);
} aipc_bus_options;

#define AIPC_BUS_DEFAULT_SERVER_OWNERS "service:AsyncIPCBroker;SY;BA;self"

#define AIPC_BUS_DEFAULT_BACKOFF_MIN_MS   100u
#define AIPC_BUS_DEFAULT_BACKOFF_MAX_MS   5000u
#define AIPC_BUS_DEFAULT_MAX_QUEUE_BYTES  (8u * 1024u * 1024u)
#define AIPC_BUS_DEFAULT_CONNECT_TIMEOUT_MS 5000u

/* Fills *opts with the defaults (size set, reconnect on, everything else zero/default). */
ASYNCIPC_API void aipc_bus_options_init(aipc_bus_options *opts);

/*
 * Creates a client and starts connecting; returns at once with *bus set (0) or an AIPC_E* code
 * (AIPC_EINVAL: bad size/name/pipe name). The outcome arrives through on_state: CONNECTED, or
 * (reconnect off) DISCONNECTED with the cause - AIPC_ENOTFOUND when no broker listens,
 * AIPC_ETIMEDOUT, AIPC_EREFUSED (e.g. name taken). Strings in *opts are copied.
 */
ASYNCIPC_API int aipc_bus_connect(const aipc_bus_options *opts, aipc_bus **bus);

/* Adds/removes a topic filter ("a/+/c", "a/#"). Remembered across reconnects; adding an
 * existing filter or removing an absent one is a no-op. AIPC_EINVAL for a malformed filter. */
ASYNCIPC_API int aipc_bus_subscribe(aipc_bus *bus, const char *filter);
ASYNCIPC_API int aipc_bus_unsubscribe(aipc_bus *bus, const char *filter);

/* Publishes `len` bytes (copied) on `topic` (no wildcards, no leading '$'). retain=true keeps
 * it as the topic's retained message; retain with len 0 clears it. Returns 0, AIPC_EINVAL,
 * AIPC_ETOOBIG, AIPC_EQUEUEFULL, AIPC_EDISCONNECTED (reconnect off and the connection is gone). */
ASYNCIPC_API int aipc_bus_publish(aipc_bus *bus, const char *topic, const void *data, size_t len,
                                  bool retain);

/* Sends a direct message to a client `to`: its name, or its id in decimal ("17"; a string of
 * digits always means an id). Broker errors (no_such_client, queue_full) come to on_error. */
ASYNCIPC_API int aipc_bus_send(aipc_bus *bus, const char *to, const void *data, size_t len);

/* Sends a request to `to` (name or decimal id); `cb` runs once with the reply, or with an error
 * after timeout_ms (0 = 30000). Returns the request id (> 0) or an AIPC_E* code (< 0), in which
 * case cb is never called. */
ASYNCIPC_API int64_t aipc_bus_request(aipc_bus *bus, const char *to, const void *data, size_t len,
                                      uint32_t timeout_ms, aipc_bus_reply_fn cb, void *user);

/* Answers request `req_id` received from client `to_id` (from->id in on_request). Any thread,
 * any time while the client is open. */
ASYNCIPC_API int aipc_bus_reply(aipc_bus *bus, uint64_t to_id, uint64_t req_id, const void *data,
                                size_t len);

/* Round trip to the broker: cb gets status 0 on pong (timeout_ms 0 = 5000). Returns an id > 0. */
ASYNCIPC_API int64_t aipc_bus_ping(aipc_bus *bus, uint32_t timeout_ms, aipc_bus_reply_fn cb,
                                   void *user);
/* Broker statistics: cb gets status 0 and a JSON object (clients, subscriptions, retained,
 * msgs/bytes in/out, drops, errors, uptime) as data. Returns an id > 0. */
ASYNCIPC_API int64_t aipc_bus_stats(aipc_bus *bus, uint32_t timeout_ms, aipc_bus_reply_fn cb,
                                    void *user);

/* Current state and the broker-assigned id of this client (0 when not connected). */
ASYNCIPC_API aipc_bus_state aipc_bus_get_state(aipc_bus *bus);
ASYNCIPC_API uint64_t aipc_bus_client_id(aipc_bus *bus);
/* Why the connection last failed: the AIPC_E* code on_state last reported with DISCONNECTED or
 * RECONNECTING (0 if it never failed; a later success does not clear it); *win32 (may be NULL)
 * gets the Win32 error behind it, 0 if the failure was not a system call's (a timeout waiting
 * for welcome, a refusal, a protocol error, an untrusted owner). Any thread. */
ASYNCIPC_API int aipc_bus_get_error(aipc_bus *bus, uint32_t *win32);

/* Shared-memory counters of a bus client (aipc_bus_get_counters). Size-versioned like
 * aipc_pipe_stats: set `size` = sizeof(aipc_bus_counters); the call fills the first `size`
 * bytes and leaves `size` as it was. shm_active, shm_held_bytes, shm_segments and
 * shm_peer_segments describe the current connection (0 while disconnected); the message
 * counters count since aipc_bus_connect. */
typedef struct aipc_bus_counters {
    uint32_t size;               /* sizeof(aipc_bus_counters) as compiled by the caller */
    uint32_t shm_active;         /* 1: the broker's welcome agreed shared memory */
    uint64_t shm_sent;           /* payloads sent through our segments */
    uint64_t shm_recv;           /* payloads received through the broker's segments */
    uint64_t shm_fallback;       /* payloads at/above the threshold sent inline anyway */
    uint64_t shm_mapfail;        /* segments we could not map + ours the broker refused */
    uint64_t shm_held_bytes;     /* payload bytes of our slots the broker has not released */
    uint32_t shm_segments;       /* our segments the broker confirmed */
    uint32_t shm_peer_segments;  /* the broker's segments we map */
    /* --- appended in 0.5: zero-copy buffers --- */
    uint64_t buf_bytes;          /* capacity of aipc_bus_alloc buffers not sent or released */
    uint64_t buf_shm_bytes;      /* the part of it in slots of our shared segments */
    uint64_t recv_buf_bytes;     /* bytes of received buffers not released (shared + heap) */
    /* --- appended in 0.6: the release page (docs/sdk.md "Shared memory") --- */
    uint32_t shm_page;           /* 1: the broker's slots are released through the page */
    uint32_t shm_page_waiting;   /* shared messages released but not yet counted in the page:
                                    behind an older one still held (a received buffer) */
} aipc_bus_counters;
/* Fills *out (see aipc_bus_counters). 0, or AIPC_EINVAL (NULL, or `size` below 8). Any
 * thread. */
ASYNCIPC_API int aipc_bus_get_counters(aipc_bus *bus, aipc_bus_counters *out);

/*
 * Bus zero-copy buffers (0.5; docs/sdk.md "Zero-copy buffers"; the same aipc_buf and
 * aipc_buf_release as point to point). Optional: aipc_bus_publish and on_message work as
 * before, and mix with these in one client.
 *
 * Send without a copy: aipc_bus_alloc returns a buffer to fill in place - a slot of the
 * client's shared segments when shared memory is in use with the broker and `size` is at least
 * shm_threshold (the broker reads it where it was written), otherwise (below the threshold,
 * AIPC_SHM_OFF or declined, not connected, no room in the segments) a heap buffer that
 * aipc_bus_publish_buf / aipc_bus_send_buf copy like aipc_bus_publish / aipc_bus_send. Fill
 * buf->data[0 .. len) and publish (or send) it: it is queued in order with the client's other
 * publications and sends (aipc_bus_publish included) and on success (0) belongs to the SDK -
 * the pointer is invalid, as after free; on an error it is still the caller's (publish it
 * again, or aipc_buf_release it unsent; data[0 .. len) is unchanged, data[len] may have become
 * the 0 that follows a payload). Never retained. A buffer's capacity plus a frame
 * header counts against max_queue_bytes from aipc_bus_alloc on (AIPC_EQUEUEFULL when there is
 * no room), so publishing it never fails for room. A buffer outlives its connection: a slot
 * allocated before a reconnect is copied at publish time (into a slot of the new connection,
 * or inline) - nothing is lost, the broker never reads a segment of an ended connection.
 * A slot kept unsent holds back the reuse of its segment's later slots (as for pipes).
 *
 * Receive without a copy: with on_message_buf / on_direct_buf set, each publication / direct
 * message arrives as a buffer instead of through on_message / on_direct. A shared payload's
 * buffer points into our READ-ONLY view of the broker's segment (writing faults): no copy is
 * made, and data[size] is the broker's 0. An inline one is a heap copy (followed by a 0). The
 * callback may keep the buffer past its return; release it with aipc_buf_release from any
 * thread, at any time (after aipc_bus_close too: the client's memory stays until its last
 * buffer is released). Until a shared buffer is released the broker charges its slot to this
 * client's queue at the broker (max_queue_bytes in the broker's config): holding many makes the
 * broker drop publications for us, reported by on_dropped; hold briefly, or copy what you keep.
 * (The broker's segments are rings shared by every client of our user and integrity level: a
 * slot held long also holds back the reuse of the slots after it, so those clients' shared
 * deliveries move to new segments and, at the broker's max_shm_bytes, inline.)
 * Inline buffers are not charged anywhere (aipc_bus_counters.recv_buf_bytes counts both). A
 * held shared buffer stays readable (mapped) until released, but its bytes stay unchanged only
 * while the connection that delivered it lasts: when it ends, the broker takes the slot back
 * and may fill it with later publications (its segments serve every client of our user and
 * integrity level and outlive a connection). Copy what you keep past on_state(DISCONNECTED);
 * the release of an ended connection's buffer is simply not owed.
 * Threads: the callbacks run where on_message / on_direct would (the I/O thread, or the
 * client's dispatcher, through the same gate; an event not delivered because the client was
 * closed releases its buffer). aipc_bus_alloc, _publish_buf, _send_buf and aipc_buf_release
 * run on any thread, inside callbacks too, and never wait for I/O. One buffer is used by one
 * thread at a time.
 */
/* A writable buffer of `size` bytes for aipc_bus_publish_buf / aipc_bus_send_buf. 0 and *out,
 * or AIPC_EINVAL, AIPC_ETOOBIG (over the broker's max payload), AIPC_EQUEUEFULL (no room in
 * max_queue_bytes now), AIPC_ECLOSED, AIPC_EDISCONNECTED (reconnect off and the connection is
 * gone), AIPC_ENOMEM. */
ASYNCIPC_API int aipc_bus_alloc(aipc_bus *bus, size_t size, aipc_buf **out);
/* Publishes the first `len` bytes (len <= buf->size) of a buffer from aipc_bus_alloc of this
 * client on `topic` (not retained). 0: the buffer is the SDK's (invalid for the caller). On an
 * error it is still the caller's: AIPC_EINVAL (bad topic, another client's or a received or
 * no live buffer, len too large), AIPC_ETOOBIG, AIPC_ECLOSED, AIPC_EDISCONNECTED, AIPC_ENOMEM. */
ASYNCIPC_API int aipc_bus_publish_buf(aipc_bus *bus, const char *topic, aipc_buf *buf, size_t len);
/* The same as a direct message to `to` (as aipc_bus_send). */
ASYNCIPC_API int aipc_bus_send_buf(aipc_bus *bus, const char *to, aipc_buf *buf, size_t len);

/*
 * Closes the client and frees the handle. It waits at most for a callback of this client that
 * is running on another thread (serving sent messages meanwhile), never for queued callbacks
 * or I/O. Then, on the calling thread and before returning: replies that had arrived but were
 * not yet delivered are delivered, every other pending request completes with AIPC_ECLOSED,
 * and on_state(AIPC_BUS_CLOSED) runs - the last callback. Called inside one of this client's
 * callbacks, those run nested in it, and nothing follows after that callback. Unsent queued
 * messages are discarded; the I/O thread closes the connection afterwards.
 */
ASYNCIPC_API void aipc_bus_close(aipc_bus *bus);

#ifdef __cplusplus
}
#endif
#endif /* ASYNCIPC_ASYNCIPC_H */
