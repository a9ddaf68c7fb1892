/*
 * aipc.exe - command-line bus client, in the manner of mosquitto_pub/mosquitto_sub.
 *
 *   aipc pub TOPIC [MSG|-] [--retain] [-l|-s]   publish MSG, or stdin (see cmd_pub.c)
 *   aipc sub FILTER... [--count N] [--json]     print publications (see cmd_sub.c)
 *   aipc send NAME MSG                          direct message
 *   aipc req NAME MSG [--timeout MS]            request; prints the reply
 *   aipc serve NAME [--count N]                 answer requests with their own payload (echo)
 *   aipc stats                                  broker counters (JSON)
 *   aipc ping                                   round trip to the broker
 *   common: --pipe NAME   --connect-timeout MS   --engine apc|iocp   --help   --version
 *   all but serve: --name NAME (-i NAME): the client's name on the bus (default: anonymous)
 *   sub, serve: --no-reconnect (exit 1 when the connection is lost instead of reconnecting)
 *
 * Exit codes: 0 success; 1 the operation failed (no broker, refused, timed out, connection
 * lost); 2 bad arguments. Every failure prints one line "aipc: ..." on stderr.
 *
 * This file: the command and option tables, argument parsing and dispatch. The commands are
 * in cmd_*.c, what they share (connection, waits, messages) in client_shared.c.
 */
#include "aipc_cli.h"

#include <fcntl.h>
#include <io.h>
#include <stdlib.h>
#include <string.h>

typedef struct command {
    const char *name;
    unsigned id;                  /* CMD_* */
    int min_args, max_args;       /* positional arguments after the command (-1: no limit) */
    const char *args_text;        /* for "NAME needs ..." */
    int (*run)(const aipc_args *a);
} command;

static const command commands[] = {
    {"pub", CMD_PUB, 1, 2, "TOPIC [MSG|-]", cmd_pub},
    {"sub", CMD_SUB, 1, -1, "at least one FILTER", cmd_sub},
    {"send", CMD_SEND, 2, 2, "NAME MSG", cmd_send},
    {"req", CMD_REQ, 2, 2, "NAME MSG", cmd_req},
    {"serve", CMD_SERVE, 1, 1, "NAME", cmd_serve},
    {"stats", CMD_STATS, 0, 0, "no arguments", cmd_stats},
    {"ping", CMD_PING, 0, 0, "no arguments", cmd_ping},
};
#define NCOMMANDS (sizeof commands / sizeof commands[0])

enum { O_HELP, O_VERSION, O_PIPE, O_CONNECT_TIMEOUT, O_COUNT, O_TIMEOUT, O_RETAIN, O_JSON,
       O_NO_RECONNECT, O_STDIN_LINE, O_STDIN_FILE, O_NAME, O_ENGINE, O_COUNT_OF };

typedef enum { OPT_FLAG, OPT_STRING, OPT_NUMBER } opt_kind;

typedef struct option {
    const char *name, *alias;     /* "--stdin-line", "-l" */
    opt_kind kind;
    unsigned cmds;                /* the commands it is valid with */
    int id;
} option;

static const option options[] = {
    {"--help", "-h", OPT_FLAG, CMD_ALL, O_HELP},
    {"--version", NULL, OPT_FLAG, CMD_ALL, O_VERSION},
    {"--pipe", NULL, OPT_STRING, CMD_ALL, O_PIPE},
    {"--connect-timeout", NULL, OPT_NUMBER, CMD_ALL, O_CONNECT_TIMEOUT},
    {"--count", NULL, OPT_NUMBER, CMD_SUB | CMD_SERVE, O_COUNT},
    {"--timeout", NULL, OPT_NUMBER, CMD_REQ | CMD_STATS | CMD_PING, O_TIMEOUT},
    {"--retain", NULL, OPT_FLAG, CMD_PUB, O_RETAIN},
    {"--json", NULL, OPT_FLAG, CMD_SUB, O_JSON},
    {"--no-reconnect", NULL, OPT_FLAG, CMD_SUB | CMD_SERVE, O_NO_RECONNECT},
    {"--stdin-line", "-l", OPT_FLAG, CMD_PUB, O_STDIN_LINE},
    {"--stdin-file", "-s", OPT_FLAG, CMD_PUB, O_STDIN_FILE},
    {"--name", "-i", OPT_STRING, CMD_ALL & ~CMD_SERVE, O_NAME},
    {"--engine", NULL, OPT_STRING, CMD_ALL, O_ENGINE},
};
#define NOPTIONS (sizeof options / sizeof options[0])

static void usage(FILE *to)
{
    fputs("usage: aipc pub TOPIC [MSG|-] [--retain] [-l|--stdin-line] [-s|--stdin-file]\n"
          "       aipc sub FILTER... [--count N] [--json] [--no-reconnect]\n"
          "       aipc send NAME MSG\n"
          "       aipc req NAME MSG [--timeout MS]\n"
          "       aipc serve NAME [--count N] [--no-reconnect]\n"
          "       aipc stats [--timeout MS]\n"
          "       aipc ping [--timeout MS]\n"
          "       aipc --version | --help\n"
          "pub:   MSG, or stdin for \"-\" or no MSG (one trailing line end removed);\n"
          "       -s all of stdin unchanged; -l one message per line of stdin\n"
          "sub:   one line per message: \"TOPIC PAYLOAD\", retained ones \"TOPIC (retained) PAYLOAD\";\n"
          "       --json one JSON object per line\n"
          "sub, serve: reconnect when the broker restarts (state lines on stderr);\n"
          "       --no-reconnect exits 1 instead\n"
          "options: --pipe NAME (default \\\\.\\pipe\\asyncipc.broker), --connect-timeout MS\n"
          "       (default 2000), --timeout MS (default 5000), -- ends the options;\n"
          "       -i|--name NAME connects under that name (all but serve; default anonymous);\n"
          "       --engine apc|iocp: the bus client's I/O thread, APC (PIPE_ASYNC, default) or\n"
          "       completion port (PIPE_OVERLAPPED)\n"
          "exit codes: 0 success, 1 failure, 2 bad arguments\n", to);
}

static void version(void)
{
    /* the DLL's own version too when the loaded asyncipc.dll is not the one compiled against */
    if (strcmp(aipc_version_string(), AIPC_VERSION_STRING) == 0)
        printf("aipc %s\n", AIPC_VERSION_STRING);
    else
        printf("aipc %s (asyncipc.dll %s)\n", AIPC_VERSION_STRING, aipc_version_string());
}

/* "pub", "sub and serve", "req, stats and ping": the commands in mask. */
static void command_list(unsigned mask, char *out, size_t cap)
{
    size_t n = 0, total = 0, k = 0;
    for (size_t i = 0; i < NCOMMANDS; i++)
        total += (mask & commands[i].id) != 0;
    out[0] = 0;
    for (size_t i = 0; i < NCOMMANDS && n < cap; i++) {
        if (!(mask & commands[i].id))
            continue;
        const char *sep = k == 0 ? "" : k + 1 == total ? " and " : ", ";
        int w = snprintf(out + n, cap - n, "%s%s", sep, commands[i].name);
        if (w < 0)
            break;
        n += (size_t)w;
        k++;
    }
}

static const option *find_option(const char *a)
{
    if (strcmp(a, "/?") == 0)
        return &options[0];
    for (size_t i = 0; i < NOPTIONS; i++)
        if (strcmp(a, options[i].name) == 0 || (options[i].alias && strcmp(a, options[i].alias) == 0))
            return &options[i];
    return NULL;
}

int main(void)
{
    int argc = 0;
    char **argv = cli_utf8_args(&argc);
    if (!argv) {
        cli_line("cannot read the command line");
        return EXIT_FAIL;
    }
    _setmode(_fileno(stdout), _O_BINARY);

    aipc_args a;
    memset(&a, 0, sizeof a);
    a.timeout_ms = DEFAULT_REQ_TIMEOUT_MS;
    a.engine = PIPE_ASYNC;
    a.connect_timeout_ms = DEFAULT_CONNECT_TIMEOUT_MS;
    const char *pos[64];
    const char *given[O_COUNT_OF] = {0};   /* how each option was spelled, NULL = absent */
    int npos = 0, options_end = 0;
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        const option *opt = options_end ? NULL : find_option(arg);
        if (!options_end && strcmp(arg, "--") == 0) {
            options_end = 1;
            continue;
        }
        if (!opt) {
            /* "-" (stdin) and other single-dash words ("-5") are arguments */
            if (!options_end && arg[0] == '-' && arg[1] == '-')
                return cli_bad_args("unknown option '%s'", arg);
            if (npos == (int)(sizeof pos / sizeof pos[0]))
                return cli_bad_args("too many arguments");
            pos[npos++] = arg;
            continue;
        }
        given[opt->id] = arg;
        if (opt->id == O_HELP) {
            usage(stdout);
            return 0;
        }
        if (opt->id == O_VERSION) {
            version();
            return 0;
        }
        if (opt->kind == OPT_FLAG)
            continue;
        if (i + 1 >= argc)
            return cli_bad_args("%s needs a value", arg);
        const char *v = argv[++i];
        uint32_t n = 0;
        if (opt->kind == OPT_NUMBER && (!cli_parse_u32(v, &n) || n == 0))
            return cli_bad_args("%s needs a positive number, not '%s'", arg, v);
        switch (opt->id) {
        case O_PIPE: a.pipe = v; break;
        case O_NAME: a.name = v; break;
        case O_ENGINE:
            if (!cli_parse_engine(v, &a.engine))
                return cli_bad_args("%s needs apc or iocp, not '%s'", arg, v);
            break;
        case O_CONNECT_TIMEOUT: a.connect_timeout_ms = n; break;
        case O_COUNT: a.count = n; break;
        case O_TIMEOUT: a.timeout_ms = n; break;
        default: break;
        }
    }
    if (npos == 0)
        return cli_bad_args("missing command");
    const command *cmd = NULL;
    for (size_t i = 0; i < NCOMMANDS && !cmd; i++)
        if (strcmp(pos[0], commands[i].name) == 0)
            cmd = &commands[i];
    if (!cmd)
        return cli_bad_args("unknown command '%s'", pos[0]);
    a.cmd = cmd->id;
    a.cmd_name = cmd->name;
    a.args = pos + 1;
    a.nargs = npos - 1;

    /* options given to a command they do not apply to */
    for (size_t i = 0; i < NOPTIONS; i++) {
        if (given[options[i].id] && !(options[i].cmds & a.cmd)) {
            char list[128];
            command_list(options[i].cmds, list, sizeof list);
            return cli_bad_args("%s is only valid with %s", given[options[i].id], list);
        }
    }
    a.retain = given[O_RETAIN] != NULL;
    a.json = given[O_JSON] != NULL;
    a.reconnect = (a.cmd & (CMD_SUB | CMD_SERVE)) && !given[O_NO_RECONNECT];

    /* argument counts */
    if (a.nargs < cmd->min_args || (cmd->max_args >= 0 && a.nargs > cmd->max_args)) {
        if (cmd->max_args == 0)
            return cli_bad_args("%s takes no arguments", cmd->name);
        return cli_bad_args("%s needs %s", cmd->name, cmd->args_text);
    }

    /* pub: where the message comes from */
    if (a.cmd == CMD_PUB) {
        int from_arg = a.nargs == 2 && strcmp(a.args[1], "-") != 0;
        if (given[O_STDIN_LINE] && given[O_STDIN_FILE])
            return cli_bad_args("%s and %s cannot be combined", given[O_STDIN_LINE],
                                given[O_STDIN_FILE]);
        if (from_arg && (given[O_STDIN_LINE] || given[O_STDIN_FILE]))
            return cli_bad_args("%s reads the message from stdin: give no MSG",
                                given[O_STDIN_LINE] ? given[O_STDIN_LINE] : given[O_STDIN_FILE]);
        a.msg_mode = given[O_STDIN_LINE] ? MSG_STDIN_LINE
                     : given[O_STDIN_FILE] ? MSG_STDIN_FILE
                     : from_arg ? MSG_ARG : MSG_STDIN;
    }

    /* what the SDK would reject, with a precise message */
    if (a.cmd == CMD_PUB && !aipc_proto_topic_valid(a.args[0], strlen(a.args[0])))
        return cli_bad_args("bad topic '%s' (no wildcards, no leading '$')", a.args[0]);
    for (int i = 0; a.cmd == CMD_SUB && i < a.nargs; i++)
        if (!aipc_proto_filter_valid(a.args[i], strlen(a.args[i])))
            return cli_bad_args("bad filter '%s' ('+' and '#' must be whole levels, '#' last)",
                                a.args[i]);
    if (a.name && !aipc_proto_name_valid(a.name, strlen(a.name)))
        return cli_bad_args("bad client name '%s' (1-128 of A-Z a-z 0-9 . _ -)", a.name);
    if ((a.cmd & (CMD_SEND | CMD_REQ | CMD_SERVE)) &&
        !aipc_proto_name_valid(a.args[0], strlen(a.args[0])))
        return cli_bad_args("bad client name '%s' (1-128 of A-Z a-z 0-9 . _ -)", a.args[0]);

    return cmd->run(&a);
}
