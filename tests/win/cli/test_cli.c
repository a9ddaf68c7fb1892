/* test_cli.c - aipc.exe end to end (SPEC section 5): pub/sub/send/req/serve/stats/ping against
 * the real broker, exit codes, and one-line stderr messages for bad arguments and an absent
 * broker; --name/-i; --version/--help of aipc and asyncipc-broker; pub's stdin modes (-, -s,
 * -l); the retained marker of plain sub output and null names in --json; sub and serve reconnecting
 * across a broker kill + restart (and exiting with --no-reconnect). aipc.exe runs as a child
 * process with captured output (bt_child) or with live pipes (cli_proc.h); an in-process bus
 * client is the other side where one is needed. Waits are on processes, events and condition
 * variables, all bounded. */
#include "check_main.h"
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bus_test.h"
#include "cli_proc.h"

#define W AIPC_TEST_WAIT_MS

static bt_broker g_br;

/* Runs aipc.exe with args (and stdin) to completion; returns the finished child. */
static void run(bt_child *ch, const char *args, const char *in)
{
    ck_assert_int_eq(bt_child_start(ch, "aipc.exe", args, in), 0);
    ck_assert_msg(bt_child_wait(ch, W), "aipc %s did not finish", args);
}

/* A failure must print exactly one line, starting with "aipc: ". */
static void expect_one_line(const bt_child *ch, const char *args)
{
    ck_assert_msg(bt_count_lines(ch->err) == 1 && strncmp(ch->err, "aipc: ", 6) == 0,
                  "aipc %s: stderr was '%s'", args, ch->err);
}

START_TEST(bad_arguments_exit_2)
{
    const char *cases[] = {
        "", "bogus", "pub", "pub a/+ x", "pub $sys/x y", "sub", "sub a/#/b", "send onlyname",
        "req a", "req bad/name x", "ping extra", "pub t x --count 3", "req a b --timeout abc",
        "ping --pipe", "serve", "sub x --frobnicate", "stats --retain", "sub x --count 0",
        "pub a b c", "pub t x -l", "pub t x --stdin-file", "pub t -l -s", "sub x -l",
        "ping --no-reconnect", "req a b --no-reconnect", "pub t x --no-reconnect",
        "stats --json", "send a b --count 2", "ping --name bad/name", "serve s --name other",
        "pub t x -i",
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        bt_child ch;
        run(&ch, cases[i], NULL);
        ck_assert_msg(ch.exit_code == 2, "aipc %s: exit %lu", cases[i], ch.exit_code);
        expect_one_line(&ch, cases[i]);
        ck_assert_str_eq(ch.out, "");
        bt_child_free(&ch);
    }
    bt_child ch;
    run(&ch, "--help", NULL);
    ck_assert_int_eq(ch.exit_code, 0);
    ck_assert_ptr_nonnull(strstr(ch.out, "usage: aipc pub"));
    bt_child_free(&ch);
}
END_TEST

START_TEST(absent_broker_exit_1)
{
    char pipe[96];
    aipc_test_name(pipe, sizeof pipe, "nobroker");
    const char *cmds[] = {"ping", "stats", "pub a/b x", "sub a/#", "send x y", "req x y",
                          "serve nobroker-svc"};
    for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++) {
        char args[256];
        snprintf(args, sizeof args, "%s --pipe %s --connect-timeout 300", cmds[i], pipe);
        bt_child ch;
        run(&ch, args, NULL);
        ck_assert_msg(ch.exit_code == 1, "aipc %s: exit %lu", args, ch.exit_code);
        expect_one_line(&ch, args);
        ck_assert_msg(strstr(ch.err, "no broker is listening") != NULL, "aipc %s: '%s'", args, ch.err);
        ck_assert_ptr_nonnull(strstr(ch.err, pipe));
        bt_child_free(&ch);
    }
}
END_TEST

START_TEST(ping_and_stats)
{
    char args[256];
    bt_child ch;
    snprintf(args, sizeof args, "ping --pipe %s", g_br.pipe);
    run(&ch, args, NULL);
    ck_assert_int_eq(ch.exit_code, 0);
    ck_assert_ptr_nonnull(strstr(ch.out, "pong from \\\\.\\pipe\\"));
    ck_assert_str_eq(ch.err, "");
    bt_child_free(&ch);
    snprintf(args, sizeof args, "stats --pipe \\\\.\\pipe\\%s", g_br.pipe);   /* full form */
    run(&ch, args, NULL);
    ck_assert_int_eq(ch.exit_code, 0);
    ck_assert_int_eq(ch.out[0], '{');
    ck_assert_ptr_nonnull(strstr(ch.out, "\"clients\""));
    ck_assert_int_eq(bt_count_lines(ch.out), 1);
    bt_child_free(&ch);
}
END_TEST

START_TEST(pub_reaches_subscriber)
{
    bt_client c;
    ck_assert_int_eq(bt_open(&c, g_br.wpipe, NULL, 1), 0);
    ck_assert_int_eq(aipc_bus_subscribe(c.bus, "cli/pub/#"), 0);
    ck_assert(bt_sync(&c, W));
    char args[256];
    bt_child ch;
    snprintf(args, sizeof args, "pub cli/pub/a \"hello world\" --pipe %s", g_br.pipe);
    run(&ch, args, NULL);
    ck_assert_int_eq(ch.exit_code, 0);
    DWORD pid = ch.pid;
    bt_child_free(&ch);
    snprintf(args, sizeof args, "pub cli/pub/b - --pipe %s", g_br.pipe);
    run(&ch, args, "from stdin\n");
    ck_assert_int_eq(ch.exit_code, 0);
    bt_child_free(&ch);
    snprintf(args, sizeof args, "pub cli/pub/c --pipe %s", g_br.pipe);   /* no MSG: stdin */
    run(&ch, args, "implicit");
    ck_assert_int_eq(ch.exit_code, 0);
    bt_child_free(&ch);
    ck_assert(bt_wait(&c, &c.msgs, 3, W));
    ck_assert_str_eq(bt_kept(&c, 0)->topic, "cli/pub/a");
    ck_assert_str_eq((char *)bt_kept(&c, 0)->data, "hello world");
    ck_assert_uint_eq(bt_kept(&c, 0)->from_pid, pid);
    ck_assert_str_eq((char *)bt_kept(&c, 1)->data, "from stdin");   /* one "\n" removed */
    ck_assert_str_eq((char *)bt_kept(&c, 2)->data, "implicit");
    ck_assert(bt_close(&c));
}
END_TEST

START_TEST(retained_then_sub_json)
{
    char args[256];
    bt_child ch;
    snprintf(args, sizeof args, "pub cli/ret/x kept-value --retain --pipe %s", g_br.pipe);
    run(&ch, args, NULL);
    ck_assert_int_eq(ch.exit_code, 0);
    bt_child_free(&ch);
    snprintf(args, sizeof args, "sub cli/ret/+ other/# --count 1 --json --pipe %s", g_br.pipe);
    run(&ch, args, NULL);
    ck_assert_int_eq(ch.exit_code, 0);
    ck_assert_int_eq(bt_count_lines(ch.out), 1);
    ck_assert_ptr_nonnull(strstr(ch.out, "\"topic\":\"cli/ret/x\""));
    ck_assert_ptr_nonnull(strstr(ch.out, "\"retained\":true"));
    ck_assert_ptr_nonnull(strstr(ch.out, "\"payload\":\"kept-value\""));
    ck_assert_msg(strstr(ch.out, "\"name\":null") != NULL, "anonymous sender: %s", ch.out);
    bt_child_free(&ch);
    snprintf(args, sizeof args, "pub cli/ret/x --retain --pipe %s", g_br.pipe);  /* clear */
    run(&ch, args, "");
    ck_assert_int_eq(ch.exit_code, 0);
    bt_child_free(&ch);
}
END_TEST

START_TEST(sub_live_count)
{
    /* the subscriber process subscribes at some point after it starts: publish at a steady
     * pace until it has seen two messages and exits (the wait is on its process handle) */
    char args[256];
    bt_child sub;
    snprintf(args, sizeof args, "sub cli/live --count 2 --pipe %s", g_br.pipe);
    ck_assert_int_eq(bt_child_start(&sub, "aipc.exe", args, NULL), 0);
    bt_client p;
    ck_assert_int_eq(bt_open(&p, g_br.wpipe, NULL, 0), 0);
    uint64_t until = aipc_test_now_ms() + W;
    int done = 0;
    while (!done && aipc_test_now_ms() < until) {
        ck_assert_int_eq(aipc_bus_publish(p.bus, "cli/live", "tick", 4, false), 0);
        done = bt_child_poll(&sub, 50);
    }
    ck_assert(done);
    ck_assert_int_eq(sub.exit_code, 0);
    ck_assert_int_eq(bt_count_lines(sub.out), 2);
    ck_assert_str_eq(sub.out, "cli/live tick\ncli/live tick\n");
    bt_child_free(&sub);
    ck_assert(bt_close(&p));
}
END_TEST

START_TEST(serve_req_send)
{
    bt_client w;
    ck_assert_int_eq(bt_open(&w, g_br.wpipe, "cli-watch", 0), 0);
    ck_assert(bt_sync(&w, W));
    char args[256];
    bt_child svc;
    snprintf(args, sizeof args, "serve cli-echo --count 2 --pipe %s", g_br.pipe);
    ck_assert_int_eq(bt_child_start(&svc, "aipc.exe", args, NULL), 0);
    /* wait for the service's presence */
    int seen = 0;
    for (long long k = 1; !seen && bt_wait(&w, &w.joined, k, W); k++) {
        EnterCriticalSection(&w.lock);
        seen = strcmp(w.last_presence_name, "cli-echo") == 0;
        LeaveCriticalSection(&w.lock);
    }
    ck_assert(seen);
    bt_child ch;
    snprintf(args, sizeof args, "req cli-echo \"echo this\" --pipe %s", g_br.pipe);
    run(&ch, args, NULL);
    ck_assert_int_eq(ch.exit_code, 0);
    ck_assert_str_eq(ch.out, "echo this\n");
    bt_child_free(&ch);
    snprintf(args, sizeof args, "send cli-watch hey --pipe %s", g_br.pipe);
    run(&ch, args, NULL);
    ck_assert_int_eq(ch.exit_code, 0);
    bt_child_free(&ch);
    ck_assert(bt_wait(&w, &w.directs, 1, W));
    snprintf(args, sizeof args, "req cli-echo again --pipe %s", g_br.pipe);
    run(&ch, args, NULL);
    ck_assert_int_eq(ch.exit_code, 0);
    ck_assert_str_eq(ch.out, "again\n");
    bt_child_free(&ch);
    ck_assert(bt_child_wait(&svc, W));
    ck_assert_int_eq(svc.exit_code, 0);
    bt_child_free(&svc);

    /* failures: unknown target, no answer in time */
    const char *fails[][2] = {
        {"req nobody-cli x", "no_such_client"},
        {"send nobody-cli x", "no_such_client"},
        {"req cli-mute x --timeout 300", "timed out"},
        {"serve cli-watch", "another client uses this name"},   /* name_taken: no retries */
    };
    bt_client mute;
    mute.req_mode = BT_REQ_IGNORE;
    ck_assert_int_eq(bt_open(&mute, g_br.wpipe, "cli-mute", 0), 0);
    for (size_t i = 0; i < sizeof fails / sizeof fails[0]; i++) {
        snprintf(args, sizeof args, "%s --pipe %s", fails[i][0], g_br.pipe);
        run(&ch, args, NULL);
        ck_assert_msg(ch.exit_code == 1, "aipc %s: exit %lu", args, ch.exit_code);
        expect_one_line(&ch, args);
        ck_assert_msg(strstr(ch.err, fails[i][1]) != NULL, "aipc %s: '%s'", args, ch.err);
        bt_child_free(&ch);
    }
    ck_assert(bt_close(&mute) && bt_close(&w));
}
END_TEST

/* --name/-i: the client's name on the bus, as receivers see the sender (all but serve) */
START_TEST(client_name)
{
    bt_client c;
    ck_assert_int_eq(bt_open(&c, g_br.wpipe, "cli-name-watch", 1), 0);
    ck_assert_int_eq(aipc_bus_subscribe(c.bus, "cli/name/#"), 0);
    ck_assert(bt_sync(&c, W));
    const char *cmds[] = {"pub cli/name/a one --name cli-alice", "pub cli/name/b two -i cli-bob",
                          "send cli-name-watch three --name cli-carol"};
    char args[256];
    bt_child ch;
    for (size_t i = 0; i < 3; i++) {
        snprintf(args, sizeof args, "%s --pipe %s", cmds[i], g_br.pipe);
        run(&ch, args, NULL);
        ck_assert_msg(ch.exit_code == 0, "aipc %s: exit %lu '%s'", args, ch.exit_code, ch.err);
        bt_child_free(&ch);
    }
    ck_assert(bt_wait(&c, &c.msgs, 2, W) && bt_wait(&c, &c.directs, 1, W));
    ck_assert_str_eq(bt_kept(&c, 0)->from_name, "cli-alice");
    ck_assert_str_eq(bt_kept(&c, 1)->from_name, "cli-bob");
    ck_assert_str_eq(bt_kept(&c, 2)->from_name, "cli-carol");
    snprintf(args, sizeof args, "ping --name cli-name-watch --pipe %s", g_br.pipe);   /* taken */
    run(&ch, args, NULL);
    ck_assert_msg(ch.exit_code == 1, "aipc %s: exit %lu", args, ch.exit_code);
    expect_one_line(&ch, args);
    ck_assert_msg(strstr(ch.err, "another client uses this name") != NULL, "'%s'", ch.err);
    bt_child_free(&ch);
    ck_assert(bt_close(&c));
}
END_TEST

/* ---- --version / --help ---------------------------------------------------------------------- */

/* Removes the "\r" of text-mode line ends (the broker's stdout is a text-mode stream). */
static const char *no_cr(char *s)
{
    char *w = s;
    for (const char *r = s; *r; r++)
        if (*r != '\r')
            *w++ = *r;
    *w = 0;
    return s;
}

START_TEST(version_and_help)
{
    char want[64];
    bt_child ch;
    /* the suite and aipc.exe load the same asyncipc.dll: its version is aipc's */
    snprintf(want, sizeof want, "aipc %s\n", aipc_version_string());
    run(&ch, "--version", NULL);
    ck_assert_int_eq(ch.exit_code, 0);
    ck_assert_str_eq(ch.out, want);
    ck_assert_str_eq(ch.err, "");
    bt_child_free(&ch);
    run(&ch, "sub x --version", NULL);   /* answers before any connection */
    ck_assert_int_eq(ch.exit_code, 0);
    ck_assert_str_eq(ch.out, want);
    bt_child_free(&ch);
    run(&ch, "-h", NULL);
    ck_assert_int_eq(ch.exit_code, 0);
    ck_assert_ptr_nonnull(strstr(ch.out, "--stdin-line"));
    ck_assert_ptr_nonnull(strstr(ch.out, "--no-reconnect"));
    bt_child_free(&ch);

    /* asyncipc-broker: --version and --help exit 0 on stdout; usage errors still exit 1 */
    snprintf(want, sizeof want, "asyncipc-broker %s\n", aipc_version_string());
    ck_assert_int_eq(bt_child_start(&ch, "asyncipc-broker.exe", "--version", NULL), 0);
    ck_assert(bt_child_wait(&ch, W));
    ck_assert_int_eq(ch.exit_code, 0);
    ck_assert_str_eq(no_cr(ch.out), want);
    ck_assert_str_eq(ch.err, "");
    bt_child_free(&ch);
    const char *helps[] = {"--help", "-h", "/?", "run --help"};
    for (size_t i = 0; i < sizeof helps / sizeof helps[0]; i++) {
        ck_assert_int_eq(bt_child_start(&ch, "asyncipc-broker.exe", helps[i], NULL), 0);
        ck_assert(bt_child_wait(&ch, W));
        ck_assert_msg(ch.exit_code == 0, "asyncipc-broker %s: exit %lu", helps[i], ch.exit_code);
        ck_assert_msg(strstr(ch.out, "usage: asyncipc-broker run") != NULL, "%s: '%s'", helps[i], ch.out);
        ck_assert_str_eq(ch.err, "");
        bt_child_free(&ch);
    }
    const char *bad[] = {"bogus", "run --frobnicate x", "status extra"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        ck_assert_int_eq(bt_child_start(&ch, "asyncipc-broker.exe", bad[i], NULL), 0);
        ck_assert(bt_child_wait(&ch, W));
        ck_assert_msg(ch.exit_code == 1, "asyncipc-broker %s: exit %lu", bad[i], ch.exit_code);
        ck_assert_msg(strstr(ch.err, "asyncipc-broker") != NULL, "%s: '%s'", bad[i], ch.err);
        ck_assert_str_eq(ch.out, "");
        bt_child_free(&ch);
    }
}
END_TEST

/* ---- pub's stdin modes ----------------------------------------------------------------------- */

/* Starts aipc.exe with live pipes; the argument string is printf-formatted. */
static void start_live(cp_child *ch, const char *fmt, ...)
{
    char args[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(args, sizeof args, fmt, ap);
    va_end(ap);
    ck_assert_msg(cp_start(ch, "aipc.exe", args) == 0, "cannot start aipc %s", args);
}

/* Runs `aipc pub TOPIC MODE --pipe P` with the stdin bytes given, to its exit 0. */
static void pub_stdin(const char *topic, const char *mode, const void *in, size_t len)
{
    cp_child ch;
    start_live(&ch, "pub %s %s --pipe %s", topic, mode, g_br.pipe);
    ck_assert_int_eq(cp_write(&ch, in, len), 0);
    cp_close_stdin(&ch);
    ck_assert(cp_wait_exit(&ch, W));
    ck_assert_msg(ch.exit_code == 0, "pub %s %s: exit %lu, stderr '%s'", topic, mode, ch.exit_code,
                  ch.text[CP_ERR]);
    cp_free(&ch);
}

/* The i-th kept message has exactly these bytes. */
static void expect_msg(bt_client *c, size_t i, const char *topic, const void *data, size_t len)
{
    bt_msg *m = bt_kept(c, i);
    ck_assert_ptr_nonnull(m);
    ck_assert_str_eq(m->topic, topic);
    ck_assert_msg(m->len == len && memcmp(m->data, data, len) == 0,
                  "message %u on %s: %u bytes '%s'", (unsigned)i, topic, (unsigned)m->len, m->data);
}

START_TEST(pub_stdin_modes)
{
    bt_client c;
    ck_assert_int_eq(bt_open(&c, g_br.wpipe, NULL, 1), 0);
    ck_assert_int_eq(aipc_bus_subscribe(c.bus, "cli/in/#"), 0);
    ck_assert(bt_sync(&c, W));
    long long n = 0;

    /* "-" and no MSG: stdin minus one trailing "\n" or "\r\n" */
    pub_stdin("cli/in/dash", "-", "21.5\r\n", 6);
    pub_stdin("cli/in/dash", "", "two\n\n", 5);
    pub_stdin("cli/in/dash", "-", "none", 4);
    ck_assert(bt_wait(&c, &c.msgs, n += 3, W));
    expect_msg(&c, 0, "cli/in/dash", "21.5", 4);
    expect_msg(&c, 1, "cli/in/dash", "two\n", 4);
    expect_msg(&c, 2, "cli/in/dash", "none", 4);

    /* -s / --stdin-file: bytes unchanged, NULs and line ends included */
    static const char raw[] = "a\nb\0c\r\n\0";
    pub_stdin("cli/in/file", "-s", raw, sizeof raw - 1);
    pub_stdin("cli/in/file", "--stdin-file", "", 0);
    ck_assert(bt_wait(&c, &c.msgs, n += 2, W));
    expect_msg(&c, 3, "cli/in/file", raw, sizeof raw - 1);
    expect_msg(&c, 4, "cli/in/file", "", 0);

    /* -l / --stdin-line: N lines -> N messages without their line ends, in order; an empty line
     * is an empty message; a last line without "\n" counts */
    static const char lines[] = "one\r\ntwo\n\nfo\0ur\nfive";
    pub_stdin("cli/in/lines", "-l", lines, sizeof lines - 1);
    ck_assert(bt_wait(&c, &c.msgs, n += 5, W));
    expect_msg(&c, 5, "cli/in/lines", "one", 3);
    expect_msg(&c, 6, "cli/in/lines", "two", 3);
    expect_msg(&c, 7, "cli/in/lines", "", 0);
    expect_msg(&c, 8, "cli/in/lines", "fo\0ur", 5);
    expect_msg(&c, 9, "cli/in/lines", "five", 4);
    pub_stdin("cli/in/lines", "--stdin-line", "", 0);   /* no line: no message, exit 0 */

    /* -l publishes each line as it arrives, before the end of input */
    cp_child ch;
    start_live(&ch, "pub cli/in/stream -l --pipe %s", g_br.pipe);
    ck_assert_int_eq(cp_write(&ch, "first\n", 6), 0);
    ck_assert_msg(bt_wait(&c, &c.msgs, n + 1, W), "the first line was not published before EOF");
    expect_msg(&c, 10, "cli/in/stream", "first", 5);
    ck_assert_int_eq(cp_write(&ch, "second\n", 7), 0);
    cp_close_stdin(&ch);
    ck_assert(cp_wait_exit(&ch, W));
    ck_assert_int_eq(ch.exit_code, 0);
    ck_assert_str_eq(ch.text[CP_ERR], "");
    cp_free(&ch);
    ck_assert(bt_sync(&c, W));
    ck_assert_int_eq(bt_get(&c, &c.msgs), n + 2);
    expect_msg(&c, 11, "cli/in/stream", "second", 6);

    /* many lines (more than one read buffer), order kept */
    enum { MANY = 2000 };
    char *big = malloc(MANY * 8), *w = big;
    for (int i = 0; i < MANY; i++)
        w += sprintf(w, "L%05d\n", i);
    bt_clear(&c);
    long long before = bt_get(&c, &c.msgs);
    pub_stdin("cli/in/many", "-l", big, (size_t)(w - big));
    free(big);
    ck_assert(bt_wait(&c, &c.msgs, before + MANY, W));
    for (int i = 0; i < MANY; i += 199) {
        char want[16];
        snprintf(want, sizeof want, "L%05d", i);
        expect_msg(&c, (size_t)i, "cli/in/many", want, 6);
    }
    ck_assert(bt_close(&c));
}
END_TEST

/* ---- sub output ------------------------------------------------------------------------------ */

START_TEST(sub_plain_marks_retained)
{
    char args[256];
    bt_child ch;
    snprintf(args, sizeof args, "pub cli/mark/r kept --retain --pipe %s", g_br.pipe);
    run(&ch, args, NULL);
    ck_assert_int_eq(ch.exit_code, 0);
    bt_child_free(&ch);
    /* the retained message comes on subscribing; then a live one */
    cp_child sub;
    start_live(&sub, "sub cli/mark/# --count 2 --pipe %s", g_br.pipe);
    ck_assert(cp_wait_text(&sub, CP_OUT, "cli/mark/r (retained) kept\n", W));
    bt_client p;
    ck_assert_int_eq(bt_open(&p, g_br.wpipe, NULL, 0), 0);
    ck_assert_int_eq(aipc_bus_publish(p.bus, "cli/mark/l", "live one", 8, false), 0);
    ck_assert(cp_wait_exit(&sub, W));
    ck_assert_int_eq(sub.exit_code, 0);
    ck_assert_str_eq(sub.text[CP_OUT], "cli/mark/r (retained) kept\ncli/mark/l live one\n");
    ck_assert_str_eq(sub.text[CP_ERR], "");
    cp_free(&sub);
    /* --json: the same flag as "retained", a named sender's name, an anonymous one's null */
    bt_client named;
    ck_assert_int_eq(bt_open(&named, g_br.wpipe, "cli-namer", 0), 0);
    ck_assert_int_eq(aipc_bus_publish(named.bus, "cli/mark/n", "x", 1, true), 0);
    ck_assert(bt_sync(&named, W));
    snprintf(args, sizeof args, "sub cli/mark/n cli/mark/r --count 2 --json --pipe %s", g_br.pipe);
    run(&ch, args, NULL);
    ck_assert_int_eq(ch.exit_code, 0);
    ck_assert_int_eq(bt_count_lines(ch.out), 2);
    ck_assert_msg(strstr(ch.out, "\"name\":\"cli-namer\"") && strstr(ch.out, "\"name\":null"),
                  "%s", ch.out);
    bt_child_free(&ch);
    ck_assert_int_eq(aipc_bus_publish(p.bus, "cli/mark/r", "", 0, true), 0);   /* clear */
    ck_assert_int_eq(aipc_bus_publish(p.bus, "cli/mark/n", "", 0, true), 0);
    ck_assert(bt_sync(&p, W));
    ck_assert(bt_close(&p) && bt_close(&named));
}
END_TEST

/* ---- reconnection ---------------------------------------------------------------------------- */

/* Publishes a retained message on b (a client of its own, closed again). */
static void retain_on(bt_broker *b, const char *topic, const char *payload)
{
    bt_client p;
    ck_assert_int_eq(bt_open(&p, b->wpipe, NULL, 0), 0);
    ck_assert_int_eq(aipc_bus_publish(p.bus, topic, payload, strlen(payload), true), 0);
    ck_assert(bt_sync(&p, W));
    ck_assert(bt_close(&p));
}

START_TEST(sub_reconnects_after_broker_restart)
{
    bt_broker b;
    ck_assert_int_eq(bt_broker_start(&b, "cli-rc"), 0);
    char disc[200], conn[200];
    snprintf(disc, sizeof disc, "aipc: disconnected from \\\\.\\pipe\\%s: ", b.pipe);
    snprintf(conn, sizeof conn, "aipc: connected to \\\\.\\pipe\\%s", b.pipe);
    /* subscribed once the retained message is printed */
    retain_on(&b, "cli/rc/x", "before");
    cp_child sub;
    start_live(&sub, "sub cli/rc/# --count 2 --pipe %s", b.pipe);
    ck_assert(cp_wait_text(&sub, CP_OUT, "cli/rc/x (retained) before\n", W));
    bt_broker_kill(&b);
    ck_assert_msg(cp_wait_text(&sub, CP_ERR, "; reconnecting", W), "stderr: '%s'", sub.text[CP_ERR]);
    ck_assert_int_eq(bt_broker_restart(&b), 0);
    /* published after the restart, retained: the subscriber gets it exactly once whether it
     * subscribes again before (live) or after (retained) the publication */
    retain_on(&b, "cli/rc/x", "after");
    ck_assert(cp_wait_exit(&sub, W));
    ck_assert_msg(sub.exit_code == 0, "exit %lu, stderr '%s'", sub.exit_code, sub.text[CP_ERR]);
    const char *out = sub.text[CP_OUT], *err = sub.text[CP_ERR];
    ck_assert_msg(strcmp(out, "cli/rc/x (retained) before\ncli/rc/x after\n") == 0 ||
                  strcmp(out, "cli/rc/x (retained) before\ncli/rc/x (retained) after\n") == 0,
                  "stdout '%s'", out);
    const char *d = strstr(err, disc), *c = strstr(err, conn);
    ck_assert_msg(d && c && d < c, "stderr '%s'", err);
    ck_assert_int_eq(bt_count_lines(err), 2);
    cp_free(&sub);
    bt_broker_kill(&b);   /* its own broker: no clean stop needed */
}
END_TEST

START_TEST(serve_reconnects_after_broker_restart)
{
    bt_broker b;
    ck_assert_int_eq(bt_broker_start(&b, "cli-rs"), 0);
    char args[256], conn[200];
    snprintf(conn, sizeof conn, "aipc: connected to \\\\.\\pipe\\%s", b.pipe);
    cp_child svc;
    start_live(&svc, "serve cli-rs-echo --count 2 --pipe %s", b.pipe);
    ck_assert(cp_wait_text(&svc, CP_ERR, "aipc: serving 'cli-rs-echo' (echo)", W));
    bt_child ch;
    snprintf(args, sizeof args, "req cli-rs-echo one --pipe %s", b.pipe);
    run(&ch, args, NULL);
    ck_assert_int_eq(ch.exit_code, 0);
    ck_assert_str_eq(ch.out, "one\n");
    bt_child_free(&ch);
    bt_broker_kill(&b);
    ck_assert(cp_wait_text(&svc, CP_ERR, "; reconnecting", W));
    ck_assert_int_eq(bt_broker_restart(&b), 0);
    /* the name is registered again once it says so */
    ck_assert_msg(cp_wait_text(&svc, CP_ERR, conn, W), "stderr '%s'", svc.text[CP_ERR]);
    snprintf(args, sizeof args, "req cli-rs-echo two --pipe %s", b.pipe);
    run(&ch, args, NULL);
    ck_assert_msg(ch.exit_code == 0, "req after the restart: %lu '%s'", ch.exit_code, ch.err);
    ck_assert_str_eq(ch.out, "two\n");
    bt_child_free(&ch);
    ck_assert(cp_wait_exit(&svc, W));
    ck_assert_int_eq(svc.exit_code, 0);
    ck_assert_int_eq(bt_count_lines(svc.text[CP_ERR]), 3);   /* serving, disconnected, connected */
    cp_free(&svc);
    bt_broker_kill(&b);   /* its own broker: no clean stop needed */
}
END_TEST

START_TEST(no_reconnect_exits_1)
{
    bt_broker b;
    ck_assert_int_eq(bt_broker_start(&b, "cli-nr"), 0);
    char lost[200];
    snprintf(lost, sizeof lost, "aipc: lost the connection to the broker on \\\\.\\pipe\\%s: ", b.pipe);
    retain_on(&b, "cli/nr/x", "here");
    cp_child sub;
    start_live(&sub, "sub cli/nr/x --no-reconnect --pipe %s", b.pipe);
    ck_assert(cp_wait_text(&sub, CP_OUT, "cli/nr/x (retained) here\n", W));
    bt_broker_kill(&b);
    ck_assert(cp_wait_exit(&sub, W));
    ck_assert_int_eq(sub.exit_code, 1);
    ck_assert_msg(bt_count_lines(sub.text[CP_ERR]) == 1 && strncmp(sub.text[CP_ERR], lost, strlen(lost)) == 0,
                  "stderr '%s'", sub.text[CP_ERR]);
    cp_free(&sub);

    ck_assert_int_eq(bt_broker_restart(&b), 0);
    cp_child svc;
    start_live(&svc, "serve cli-nr-echo --no-reconnect --pipe %s", b.pipe);
    ck_assert(cp_wait_text(&svc, CP_ERR, "aipc: serving 'cli-nr-echo'", W));
    bt_broker_kill(&b);
    ck_assert(cp_wait_exit(&svc, W));
    ck_assert_int_eq(svc.exit_code, 1);
    ck_assert_msg(bt_count_lines(svc.text[CP_ERR]) == 2 && strstr(svc.text[CP_ERR], lost),
                  "stderr '%s'", svc.text[CP_ERR]);
    cp_free(&svc);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("cli");
    TCase *tc = tcase_create("aipc");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, bad_arguments_exit_2);
    tcase_add_test(tc, absent_broker_exit_1);
    tcase_add_test(tc, ping_and_stats);
    tcase_add_test(tc, pub_reaches_subscriber);
    tcase_add_test(tc, retained_then_sub_json);
    tcase_add_test(tc, sub_live_count);
    tcase_add_test(tc, serve_req_send);
    tcase_add_test(tc, client_name);
    tcase_add_test(tc, version_and_help);
    tcase_add_test(tc, pub_stdin_modes);
    tcase_add_test(tc, sub_plain_marks_retained);
    suite_add_tcase(s, tc);
    TCase *rc = tcase_create("reconnect");   /* each with a broker of its own, killed */
    tcase_set_timeout(rc, 120);
    tcase_add_test(rc, sub_reconnects_after_broker_restart);
    tcase_add_test(rc, serve_reconnects_after_broker_restart);
    tcase_add_test(rc, no_reconnect_exits_1);
    suite_add_tcase(s, rc);
    return s;
}

static int start_broker(void)
{
    return bt_broker_start(&g_br, "cli") != 0 ? 1 : 0;
}

static void stop_broker(void)
{
    bt_broker_stop(&g_br);
}

CHECK_MAIN_EX(suite, start_broker, stop_broker, 0u);
