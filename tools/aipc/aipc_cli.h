/*
 * aipc_cli.h - what the parts of aipc.exe share.
 *
 *   main.c           command table, option table, argument parsing, --help/--version, dispatch
 *   client_shared.c  messages and exit codes, argument checks, the bus connection (options,
 *                    state reporting and reconnection), waits, request completions, stdin
 *   cmd_pub.c        pub, send        (messages out)
 *   cmd_sub.c        sub              (publications in)
 *   cmd_req.c        req, serve       (request/reply)
 *   cmd_broker.c     stats, ping      (the broker itself)
 *
 * Threads: the main thread parses arguments, runs the command and waits on events; the SDK's
 * callbacks run on its I/O thread, record into the aipc_cli and signal those events.
 */
#ifndef AIPC_CLI_H
#define AIPC_CLI_H

#include <windows.h>

#include <stdint.h>

#include "proto/names.h"
#include "proto/topic.h"
#include <stdio.h>

#include "asyncipc/asyncipc.h"

#define EXIT_FAIL  1   /* the operation failed: no broker, refused, timed out, connection lost */
#define EXIT_USAGE 2   /* bad arguments */
#define DEFAULT_CONNECT_TIMEOUT_MS 2000u
#define DEFAULT_REQ_TIMEOUT_MS     5000u

/* Commands (bit masks, so an option can name the commands it is valid with). */
enum {
    CMD_PUB = 1u << 0,
    CMD_SUB = 1u << 1,
    CMD_SEND = 1u << 2,
    CMD_REQ = 1u << 3,
    CMD_SERVE = 1u << 4,
    CMD_STATS = 1u << 5,
    CMD_PING = 1u << 6,
    CMD_ALL = 0x7Fu,
};

/* Where `pub` takes its message from. */
typedef enum {
    MSG_ARG = 0,     /* the MSG argument */
    MSG_STDIN,       /* "-" or no MSG: all of stdin minus one trailing line end */
    MSG_STDIN_FILE,  /* -s: all of stdin, bytes unchanged */
    MSG_STDIN_LINE,  /* -l: one message per line of stdin, without its line end */
} msg_mode;

/* The parsed command line. */
typedef struct aipc_args {
    unsigned cmd;                 /* CMD_* */
    const char *cmd_name;
    const char **args;            /* positional arguments after the command */
    int nargs;
    const char *pipe;             /* --pipe as given, NULL = default */
    const char *name;             /* --name / -i, NULL = anonymous (serve: its NAME argument) */
    PipeImplType engine;          /* --engine apc|iocp: PIPE_ASYNC (default) or PIPE_OVERLAPPED */
    uint32_t connect_timeout_ms;  /* --connect-timeout */
    uint32_t timeout_ms;          /* --timeout (req, ping, stats; pub/send's barrier) */
    uint32_t count;               /* --count (sub, serve), 0 = until stopped */
    int retain;                   /* --retain */
    int json;                     /* --json */
    int reconnect;                /* sub, serve: on unless --no-reconnect */
    msg_mode msg_mode;            /* pub */
} aipc_args;

/* State shared between the main thread and the callbacks (I/O thread). */
typedef struct aipc_cli {
    const aipc_args *a;
    HANDLE ev_state;              /* connected, or failed */
    HANDLE ev_done;               /* the command finished (count reached, error, Ctrl+C) */
    HANDLE ev_reply;              /* auto-reset: the answer of the pending req/stats/ping came */
    HANDLE ev_drained;            /* the pong of cli_drain came (any status) */
    CRITICAL_SECTION lock;
    volatile LONG connected;      /* 1 once the first CONNECTED was reported */
    volatile LONG down;           /* 1 between a lost connection and the next CONNECTED */
    volatile LONG failed;         /* an error ended the command */
    int error;                    /* AIPC_E* of the failure */
    int exit_code;                /* of the failure: EXIT_FAIL, or EXIT_USAGE (cli_set_usage) */
    char message[512];            /* the one-line failure text */
    int long_running;             /* sub/serve: report broker errors, survive reconnects */
    volatile LONG64 seen;         /* sub/serve: messages handled */
    char pipe[AIPC_PROTO_PIPE_BUF];   /* canonical full pipe name, for messages */
    wchar_t *wpipe;
    /* the one pending req/stats/ping at a time and its answer */
    const char *what;             /* "request", "stats", ... for messages */
    char *reply;
    size_t reply_len;
} aipc_cli;

/* ---- messages (client_shared.c) ---------------------------------------------------------- */
/* Prints "aipc: <text>" on stderr. */
void cli_line(const char *fmt, ...);
/* "aipc: <text> (see aipc --help)" on stderr; returns EXIT_USAGE. */
int cli_bad_args(const char *fmt, ...);
/* Records the first failure (any thread) and ends the waits; exit code EXIT_FAIL. */
void cli_set_failed(aipc_cli *c, int err, const char *fmt, ...);
/* The same for an argument the SDK rejected after the connection was made: EXIT_USAGE. */
void cli_set_usage(aipc_cli *c, const char *fmt, ...);

/* ---- argument checks --------------------------------------------------------------------- */
int cli_parse_u32(const char *s, uint32_t *out);
/* "apc" -> PIPE_ASYNC, "iocp" -> PIPE_OVERLAPPED (ASCII case ignored). 1, or 0 for another word. */
int cli_parse_engine(const char *s, PipeImplType *out);
char **cli_utf8_args(int *argc);

/* ---- connection -------------------------------------------------------------------------- */
/* Sets up c for the command and fills o with the shared options (pipe, engine, timeouts,
 * reconnect, on_state, on_error, user). Returns 0 or an exit code (bad pipe name). */
int cli_init(aipc_cli *c, const aipc_args *a, aipc_bus_options *o);
/* Connects with o and waits for the first CONNECTED (bounded). Returns 0 or an exit code
 * (the failure is recorded in c). */
int cli_connect(aipc_cli *c, const aipc_bus_options *o, aipc_bus **bus);
/* cli_init then cli_connect, for the commands that add no option of their own. */
int cli_open(aipc_cli *c, const aipc_args *a, aipc_bus_options *o, aipc_bus **bus);
/* Waits for ev_done (count reached, Ctrl+C) or a failure, without a time bound (sub, serve).
 * 1 unless the command failed. */
int cli_wait_done(aipc_cli *c);
/* Waits for the answer of the pending request started with what = c->what (bounded by
 * a->timeout_ms plus slack). 1 with c->reply set, 0 on failure (recorded; Ctrl+C is
 * "interrupted"). */
int cli_wait_reply(aipc_cli *c);
/* Pings the broker and waits for the pong: everything sent before has been processed by the
 * broker. `what` names the operation in a failure message. 1 or 0. */
int cli_barrier(aipc_cli *c, aipc_bus *bus, const char *what);
/* For sub and serve after ev_done: pings the broker and waits (bounded, not interruptible: ev_done
 * is already set) for the pong, so the replies handed to the SDK before are written and processed
 * by the broker before the close (which discards unwritten frames). Any outcome returns. */
void cli_drain(aipc_cli *c, aipc_bus *bus);
/* Finishes a req or stats whose call returned id (< 0: "WHAT failed: ..."): waits for the
 * answer, prints it as one line on stdout, closes the bus; returns the exit code. */
int cli_print_answer(aipc_cli *c, aipc_bus *bus, int64_t id, const char *what);
/* One more message handled by sub or serve (I/O thread); ends the command at --count. */
void cli_count_seen(aipc_cli *c);
/* Reply callback of req/stats/ping/barriers; `user` is the aipc_cli. Keeps the answer. */
void cli_on_reply(aipc_bus *bus, void *user, int status, const aipc_bus_peer *from,
                  const void *data, size_t len);
/* Closes the bus and turns the outcome into the exit code (printing the failure line). */
int cli_finish(aipc_cli *c, aipc_bus *bus, int ok);

/* ---- stdin ------------------------------------------------------------------------------- */
/* Reads all of stdin (binary). NULL on allocation failure. */
char *cli_read_stdin(size_t *len);
/* Reads one line of stdin (binary, NULs kept) without its "\n" or "\r\n" into *buf (grown as
 * needed). Returns 1 with *len set, 0 at the end of input, -1 on allocation failure. */
int cli_read_line(char **buf, size_t *cap, size_t *len);

/* ---- commands ---------------------------------------------------------------------------- */
int cmd_pub(const aipc_args *a);
int cmd_send(const aipc_args *a);
int cmd_sub(const aipc_args *a);
int cmd_req(const aipc_args *a);
int cmd_serve(const aipc_args *a);
int cmd_stats(const aipc_args *a);
int cmd_ping(const aipc_args *a);

#endif
