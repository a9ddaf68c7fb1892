/* test_cli.c - aipc.exe end to end (SPEC section 5), one command per process run to its end:
 * pub/sub/send/req/serve/stats/ping against the real broker, exit codes, and one-line stderr
 * messages for bad arguments and an absent broker; --name/-i; --engine; --version/--help of aipc
 * and asyncipc-broker; the retained flag and null names in --json. aipc.exe runs as a child
 * process with captured output (bt_child); an in-process bus client is the other side where one
 * is needed. Waits are on processes and condition variables, all bounded. As win.cli_iocp every
 * aipc runs with --engine iocp (cli_test.h). test_cli_live.c: aipc with live pipes. */
#include "cli_test.h"

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
        cli_run(&ch, cases[i], NULL);
        ck_assert_msg(ch.exit_code == 2, "aipc %s: exit %lu", cases[i], ch.exit_code);
        expect_one_line(&ch, cases[i]);
        ck_assert_str_eq(ch.out, "");
        bt_child_free(&ch);
    }
    bt_child ch;
    cli_run(&ch, "--help", NULL);
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
        cli_run(&ch, args, NULL);
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
    snprintf(args, sizeof args, "ping --pipe %s", bt_suite_broker.pipe);
    cli_run(&ch, args, NULL);
    ck_assert_int_eq(ch.exit_code, 0);
    ck_assert_ptr_nonnull(strstr(ch.out, "pong from \\\\.\\pipe\\"));
    ck_assert_str_eq(ch.err, "");
    bt_child_free(&ch);
    snprintf(args, sizeof args, "stats --pipe \\\\.\\pipe\\%s", bt_suite_broker.pipe);   /* full form */
    cli_run(&ch, args, NULL);
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
    ck_assert_int_eq(bt_open(&c, bt_suite_broker.wpipe, NULL, 1), 0);
    ck_assert_int_eq(aipc_bus_subscribe(c.bus, "cli/pub/#"), 0);
    ck_assert(bt_sync(&c, W));
    char args[256];
    bt_child ch;
    snprintf(args, sizeof args, "pub cli/pub/a \"hello world\" --pipe %s", bt_suite_broker.pipe);
    cli_run(&ch, args, NULL);
    ck_assert_int_eq(ch.exit_code, 0);
    DWORD pid = ch.pid;
    bt_child_free(&ch);
    snprintf(args, sizeof args, "pub cli/pub/b - --pipe %s", bt_suite_broker.pipe);
    cli_run(&ch, args, "from stdin\n");
    ck_assert_int_eq(ch.exit_code, 0);
    bt_child_free(&ch);
    snprintf(args, sizeof args, "pub cli/pub/c --pipe %s", bt_suite_broker.pipe);   /* no MSG: stdin */
    cli_run(&ch, args, "implicit");
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
    snprintf(args, sizeof args, "pub cli/ret/x kept-value --retain --pipe %s", bt_suite_broker.pipe);
    cli_run(&ch, args, NULL);
    ck_assert_int_eq(ch.exit_code, 0);
    bt_child_free(&ch);
    snprintf(args, sizeof args, "sub cli/ret/+ other/# --count 1 --json --pipe %s", bt_suite_broker.pipe);
    cli_run(&ch, args, NULL);
    ck_assert_int_eq(ch.exit_code, 0);
    ck_assert_int_eq(bt_count_lines(ch.out), 1);
    ck_assert_ptr_nonnull(strstr(ch.out, "\"topic\":\"cli/ret/x\""));
    ck_assert_ptr_nonnull(strstr(ch.out, "\"retained\":true"));
    ck_assert_ptr_nonnull(strstr(ch.out, "\"payload\":\"kept-value\""));
    ck_assert_msg(strstr(ch.out, "\"name\":null") != NULL, "anonymous sender: %s", ch.out);
    bt_child_free(&ch);
    snprintf(args, sizeof args, "pub cli/ret/x --retain --pipe %s", bt_suite_broker.pipe);  /* clear */
    cli_run(&ch, args, "");
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
    snprintf(args, sizeof args, "sub cli/live --count 2 --pipe %s", bt_suite_broker.pipe);
    ck_assert_int_eq(cli_start(&sub, args, NULL), 0);
    bt_client p;
    ck_assert_int_eq(bt_open(&p, bt_suite_broker.wpipe, NULL, 0), 0);
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
    ck_assert_int_eq(bt_open(&w, bt_suite_broker.wpipe, "cli-watch", 0), 0);
    ck_assert(bt_sync(&w, W));
    char args[256];
    bt_child svc;
    snprintf(args, sizeof args, "serve cli-echo --count 2 --pipe %s", bt_suite_broker.pipe);
    ck_assert_int_eq(cli_start(&svc, args, NULL), 0);
    /* wait for the service's presence */
    int seen = 0;
    for (long long k = 1; !seen && bt_wait(&w, &w.joined, k, W); k++) {
        EnterCriticalSection(&w.lock);
        seen = strcmp(w.last_presence_name, "cli-echo") == 0;
        LeaveCriticalSection(&w.lock);
    }
    ck_assert(seen);
    bt_child ch;
    snprintf(args, sizeof args, "req cli-echo \"echo this\" --pipe %s", bt_suite_broker.pipe);
    cli_run(&ch, args, NULL);
    ck_assert_int_eq(ch.exit_code, 0);
    ck_assert_str_eq(ch.out, "echo this\n");
    bt_child_free(&ch);
    snprintf(args, sizeof args, "send cli-watch hey --pipe %s", bt_suite_broker.pipe);
    cli_run(&ch, args, NULL);
    ck_assert_int_eq(ch.exit_code, 0);
    bt_child_free(&ch);
    ck_assert(bt_wait(&w, &w.directs, 1, W));
    snprintf(args, sizeof args, "req cli-echo again --pipe %s", bt_suite_broker.pipe);
    cli_run(&ch, args, NULL);
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
    ck_assert_int_eq(bt_open(&mute, bt_suite_broker.wpipe, "cli-mute", 0), 0);
    for (size_t i = 0; i < sizeof fails / sizeof fails[0]; i++) {
        snprintf(args, sizeof args, "%s --pipe %s", fails[i][0], bt_suite_broker.pipe);
        cli_run(&ch, args, NULL);
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
    ck_assert_int_eq(bt_open(&c, bt_suite_broker.wpipe, "cli-name-watch", 1), 0);
    ck_assert_int_eq(aipc_bus_subscribe(c.bus, "cli/name/#"), 0);
    ck_assert(bt_sync(&c, W));
    const char *cmds[] = {"pub cli/name/a one --name cli-alice", "pub cli/name/b two -i cli-bob",
                          "send cli-name-watch three --name cli-carol"};
    char args[256];
    bt_child ch;
    for (size_t i = 0; i < 3; i++) {
        snprintf(args, sizeof args, "%s --pipe %s", cmds[i], bt_suite_broker.pipe);
        cli_run(&ch, args, NULL);
        ck_assert_msg(ch.exit_code == 0, "aipc %s: exit %lu '%s'", args, ch.exit_code, ch.err);
        bt_child_free(&ch);
    }
    ck_assert(bt_wait(&c, &c.msgs, 2, W) && bt_wait(&c, &c.directs, 1, W));
    ck_assert_str_eq(bt_kept(&c, 0)->from_name, "cli-alice");
    ck_assert_str_eq(bt_kept(&c, 1)->from_name, "cli-bob");
    ck_assert_str_eq(bt_kept(&c, 2)->from_name, "cli-carol");
    snprintf(args, sizeof args, "ping --name cli-name-watch --pipe %s", bt_suite_broker.pipe);   /* taken */
    cli_run(&ch, args, NULL);
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
    cli_run(&ch, "--version", NULL);
    ck_assert_int_eq(ch.exit_code, 0);
    ck_assert_str_eq(ch.out, want);
    ck_assert_str_eq(ch.err, "");
    bt_child_free(&ch);
    cli_run(&ch, "sub x --version", NULL);   /* answers before any connection */
    ck_assert_int_eq(ch.exit_code, 0);
    ck_assert_str_eq(ch.out, want);
    bt_child_free(&ch);
    cli_run(&ch, "-h", NULL);
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

/* --engine apc|iocp (every command): both engines answer, anything else is a bad argument, and
 * --help documents it. */
START_TEST(engine_option)
{
    char args[256];
    bt_child ch;
    const char *engines[] = {"apc", "iocp", "IOCP"};
    for (size_t i = 0; i < sizeof engines / sizeof engines[0]; i++) {
        snprintf(args, sizeof args, "ping --engine %s --pipe %s", engines[i], bt_suite_broker.pipe);
        cli_run(&ch, args, NULL);
        ck_assert_msg(ch.exit_code == 0, "aipc %s: exit %lu '%s'", args, ch.exit_code, ch.err);
        ck_assert_ptr_nonnull(strstr(ch.out, "pong from \\\\.\\pipe\\"));
        bt_child_free(&ch);
    }
    const char *bad[] = {"ping --engine", "ping --engine overlapped", "sub x --engine 1"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        cli_run(&ch, bad[i], NULL);
        ck_assert_msg(ch.exit_code == 2, "aipc %s: exit %lu", bad[i], ch.exit_code);
        expect_one_line(&ch, bad[i]);
        bt_child_free(&ch);
    }
    cli_run(&ch, "ping --engine overlapped", NULL);
    ck_assert_msg(strstr(ch.err, "apc or iocp") != NULL, "'%s'", ch.err);
    bt_child_free(&ch);
    cli_run(&ch, "--help", NULL);
    ck_assert_ptr_nonnull(strstr(ch.out, "--engine apc|iocp"));
    bt_child_free(&ch);
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
    tcase_add_test(tc, engine_option);
    suite_add_tcase(s, tc);
    return s;
}

CHECK_MAIN_EX(suite, bt_suite_broker_start, bt_suite_broker_stop, 0u);
