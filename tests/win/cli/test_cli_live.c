/* test_cli_live.c - aipc.exe end to end with live pipes (cli_proc.h: stdin written while it
 * runs, stdout/stderr read as they come): pub's stdin modes (-, -s, -l, lines published as they
 * arrive), the retained marker of plain sub output, and sub and serve reconnecting across a
 * broker kill + restart (and exiting with --no-reconnect). An in-process bus client is the other
 * side where one is needed. Waits are on processes, events and condition variables, all bounded.
 * As win.cli_live_iocp every aipc runs with --engine iocp (cli_test.h). */
#include "cli_test.h"

/* ---- pub's stdin modes ----------------------------------------------------------------------- */


/* Runs `aipc pub TOPIC MODE --pipe P` with the stdin bytes given, to its exit 0. */
static void pub_stdin(const char *topic, const char *mode, const void *in, size_t len)
{
    cp_child ch;
    cli_start_live(&ch, "pub %s %s --pipe %s", topic, mode, bt_suite_broker.pipe);
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
    ck_assert_int_eq(bt_open(&c, bt_suite_broker.wpipe, NULL, 1), 0);
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
    cli_start_live(&ch, "pub cli/in/stream -l --pipe %s", bt_suite_broker.pipe);
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
    snprintf(args, sizeof args, "pub cli/mark/r kept --retain --pipe %s", bt_suite_broker.pipe);
    cli_run(&ch, args, NULL);
    ck_assert_int_eq(ch.exit_code, 0);
    bt_child_free(&ch);
    /* the retained message comes on subscribing; then a live one */
    cp_child sub;
    cli_start_live(&sub, "sub cli/mark/# --count 2 --pipe %s", bt_suite_broker.pipe);
    ck_assert(cp_wait_text(&sub, CP_OUT, "cli/mark/r (retained) kept\n", W));
    bt_client p;
    ck_assert_int_eq(bt_open(&p, bt_suite_broker.wpipe, NULL, 0), 0);
    ck_assert_int_eq(aipc_bus_publish(p.bus, "cli/mark/l", "live one", 8, false), 0);
    ck_assert(cp_wait_exit(&sub, W));
    ck_assert_int_eq(sub.exit_code, 0);
    ck_assert_str_eq(sub.text[CP_OUT], "cli/mark/r (retained) kept\ncli/mark/l live one\n");
    ck_assert_str_eq(sub.text[CP_ERR], "");
    cp_free(&sub);
    /* --json: the same flag as "retained", a named sender's name, an anonymous one's null */
    bt_client named;
    ck_assert_int_eq(bt_open(&named, bt_suite_broker.wpipe, "cli-namer", 0), 0);
    ck_assert_int_eq(aipc_bus_publish(named.bus, "cli/mark/n", "x", 1, true), 0);
    ck_assert(bt_sync(&named, W));
    snprintf(args, sizeof args, "sub cli/mark/n cli/mark/r --count 2 --json --pipe %s", bt_suite_broker.pipe);
    cli_run(&ch, args, NULL);
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
    cli_start_live(&sub, "sub cli/rc/# --count 2 --pipe %s", b.pipe);
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
    cli_start_live(&svc, "serve cli-rs-echo --count 2 --pipe %s", b.pipe);
    ck_assert(cp_wait_text(&svc, CP_ERR, "aipc: serving 'cli-rs-echo' (echo)", W));
    bt_child ch;
    snprintf(args, sizeof args, "req cli-rs-echo one --pipe %s", b.pipe);
    cli_run(&ch, args, NULL);
    ck_assert_int_eq(ch.exit_code, 0);
    ck_assert_str_eq(ch.out, "one\n");
    bt_child_free(&ch);
    bt_broker_kill(&b);
    ck_assert(cp_wait_text(&svc, CP_ERR, "; reconnecting", W));
    ck_assert_int_eq(bt_broker_restart(&b), 0);
    /* the name is registered again once it says so */
    ck_assert_msg(cp_wait_text(&svc, CP_ERR, conn, W), "stderr '%s'", svc.text[CP_ERR]);
    snprintf(args, sizeof args, "req cli-rs-echo two --pipe %s", b.pipe);
    cli_run(&ch, args, NULL);
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
    cli_start_live(&sub, "sub cli/nr/x --no-reconnect --pipe %s", b.pipe);
    ck_assert(cp_wait_text(&sub, CP_OUT, "cli/nr/x (retained) here\n", W));
    bt_broker_kill(&b);
    ck_assert(cp_wait_exit(&sub, W));
    ck_assert_int_eq(sub.exit_code, 1);
    ck_assert_msg(bt_count_lines(sub.text[CP_ERR]) == 1 && strncmp(sub.text[CP_ERR], lost, strlen(lost)) == 0,
                  "stderr '%s'", sub.text[CP_ERR]);
    cp_free(&sub);

    ck_assert_int_eq(bt_broker_restart(&b), 0);
    cp_child svc;
    cli_start_live(&svc, "serve cli-nr-echo --no-reconnect --pipe %s", b.pipe);
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
    Suite *s = suite_create("cli_live");
    TCase *tc = tcase_create("aipc");
    tcase_set_timeout(tc, 120);
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

CHECK_MAIN_EX(suite, bt_suite_broker_start, bt_suite_broker_stop, 0u);
