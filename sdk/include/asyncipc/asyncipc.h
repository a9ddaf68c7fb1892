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
 *   - Threads: every callback runs on the SDK's I/O thread (see each callback's comment);
 *     calls may be made from any thread unless stated otherwise.
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

/* Wire protocol version spoken by this SDK (SPEC section 3). */
#define AIPC_PROTO_VERSION 1

/* ---- errors (append-only; always negative) ------------------------------------------------ */
#define AIPC_OK             0
#define AIPC_EINVAL        (-1)   /* invalid argument */
#define AIPC_ENOMEM        (-2)   /* out of memory */
#define AIPC_ETOOBIG       (-3)   /* message or frame larger than the configured limit */
#define AIPC_ECLOSED       (-4)   /* the pipe/connection is closed or was never opened */
#define AIPC_ESTATE        (-5)   /* call not valid in the current state (e.g. Create twice) */
#define AIPC_ESYS          (-6)   /* a Win32 call failed; see the log for GetLastError() */
#define AIPC_ETIMEDOUT     (-7)   /* a wait or request timed out */
#define AIPC_EPROTO        (-8)   /* malformed frame or protocol violation */
#define AIPC_ENOTFOUND     (-9)   /* pipe/broker/client not found */
#define AIPC_EBUSY         (-10)  /* all pipe instances busy */
#define AIPC_EQUEUEFULL    (-11)  /* an outbound queue is full */
#define AIPC_EDISCONNECTED (-12)  /* the peer or broker went away before completion */
#define AIPC_EREFUSED      (-13)  /* the broker refused the operation (see its error code) */
#define AIPC_ENOTSUP       (-14)  /* not supported by this engine/build */

/* Text for an AIPC_E* code; never NULL ("unknown error" for codes this version doesn't know). */
ASYNCIPC_API const char *aipc_strerror(int code);

/* ---- limits ------------------------------------------------------------------------------ */
#define AIPC_FRAME_HEADER_SIZE   8u                   /* u32 meta_len, u32 payload_len (LE) */
#define AIPC_MAX_META            65536u               /* meta_len limit (SPEC section 3) */
#define AIPC_DEFAULT_MAX_PAYLOAD (16u * 1024u * 1024u) /* default payload_len limit */
#define AIPC_DEFAULT_CONNECT_TIMEOUT_MS 5000u          /* client waits this long for a server */

/* Default broker pipe. Everywhere a pipe name is taken, "\\.\pipe\NAME" and "NAME" both work. */
#define AIPC_DEFAULT_BROKER_PIPE L"\\\\.\\pipe\\asyncipc.broker"

/* ======================================================================================== */
/* Point-to-point pipe API (classic AsyncIPC)                                               */
/* ======================================================================================== */

typedef enum { PIPE_ASYNC = 0, PIPE_OVERLAPPED = 1 } PipeImplType;  /* APC | overlapped I/O */
typedef enum { PIPE_SERVER = 0, PIPE_CLIENT = 1 } PipeType;

/*
 * The delegate receives a pipe's events. Embed it as the FIRST member of your own struct to
 * carry state, and cast `self` back. Any member may be NULL (event ignored).
 * Thread: every member is called on the SDK's I/O thread (one per process per engine), never
 * concurrently for one pipe, and never after Exit()/Release() has returned.
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
#define AIPC_PIPE_OPT_CONNECT_TIMEOUT_MS 1  /* client: how long to wait for a server (default 5000) */
#define AIPC_PIPE_OPT_MAX_MESSAGE        2  /* largest message in bytes, both ways (default 16 MiB) */
ASYNCIPC_API int  aipc_pipe_set_option(aipc_named_pipe *pipe, int option, uint64_t value);
/* Starts the pipe as server or client on `pipe_name` ("\\.\pipe\NAME" or "NAME").
 * Returns true if the setup started; OnCreate/OnConnected follow on the I/O thread.
 * `d` must stay valid until Exit/Release returns. */
ASYNCIPC_API bool aipc_pipe_create(aipc_named_pipe *pipe, const wchar_t *pipe_name, PipeType type,
                                   aipc_pipe_delegate *d);
/* Queues one message (copied; the caller keeps `data`). Non-blocking and thread-safe; a message
 * sent before the peer connects is kept and delivered once it does. Returns 0 or
 * AIPC_EINVAL / AIPC_ETOOBIG / AIPC_ECLOSED (after Exit) / AIPC_ENOMEM. */
ASYNCIPC_API int  aipc_pipe_send(aipc_named_pipe *pipe, const void *data, size_t size);
/* Closes the connection (and stops listening). After it returns no callback of this pipe runs
 * (unless called from inside a callback: then none after that callback returns). Any thread. */
ASYNCIPC_API void aipc_pipe_exit(aipc_named_pipe *pipe);
/* Exit if needed, then frees the pipe. Any thread, including inside the pipe's own callback. */
ASYNCIPC_API void aipc_pipe_free(aipc_named_pipe *pipe);

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
/* (declared below this line by the bus client; see issue "SDK bus client") */

#ifdef __cplusplus
}
#endif
#endif /* ASYNCIPC_ASYNCIPC_H */
