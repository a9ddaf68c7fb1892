/* test_cli.c - aipc.exe end to end (SPEC section 5): pub/sub/send/req/serve/stats/ping against
 * the real broker, exit codes, and one-line stderr messages for bad arguments and an absent
 * broker. aipc.exe runs as a child process with captured output; an in-process bus client is
 * the other side where one is needed. Waits are on processes and events, all bounded. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bus_test.h"

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
        "pub a b c",
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
    ck_assert_str_eq((char *)bt_kept(&c, 1)->data, "from stdin\n");
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
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    if (bt_broker_start(&g_br, "cli") != 0)
        return 1;
    SRunner *r = srunner_create(suite());
    srunner_set_fork_status(r, CK_NOFORK);
    srunner_run_all(r, CK_NORMAL);
    int failed = srunner_ntests_failed(r);
    srunner_free(r);
    bt_broker_stop(&g_br);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
