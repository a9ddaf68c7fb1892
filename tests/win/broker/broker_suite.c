/*
 * broker_suite.c - what the broker suites share (broker_suite.h): the test's broker, the fixture,
 * named events, helper exits and the next-frame check.
 */
#include "broker_suite.h"

/* Creates a named manual-reset event with a unique name (written to name). */
HANDLE mk_event(char *name, size_t cap, const char *tag)
{
    aipc_test_name(name, cap, tag);
    HANDLE h = CreateEventA(NULL, TRUE, FALSE, name);
    ck_assert(h != NULL);
    return h;
}

/* Waits for a helper and asserts its exit code. */
void expect_exit(aipc_proc *p, DWORD ms, const char *what)
{
    ck_assert_msg(aipc_proc_wait(p, ms) == 0, "%s did not finish in time", what);
    ck_assert_msg(p->exit_code == 0, "%s exited with %lu", what, (unsigned long)p->exit_code);
    aipc_proc_close(p);
}

/* The broker of the running test, killed by the teardown if the test failed half-way. */
static raw_broker *g_broker;

/* Starts the test's broker (and remembers it for the teardown). */
void broker_start(raw_broker *b, const char *tag, const char *extra)
{
    ck_assert_int_eq(raw_broker_start(b, tag, extra), 0);
    g_broker = b;
}

static uint64_t g_t0;

/* Records the start of a test (its duration is printed by the teardown). */
static void setup(void)
{
    g_t0 = aipc_test_now_ms();
}

static void teardown(void)
{
    fprintf(stderr, "  test took %llu ms\n", (unsigned long long)(aipc_test_now_ms() - g_t0));
    aipc_proc_kill_all();
    if (g_broker && g_broker->process)
        raw_broker_stop(g_broker, 0);
    g_broker = NULL;
}

/* Receives the next frame and checks its op (and optional error code). */
void want(raw_conn *c, raw_frame *f, const char *op, const char *code)
{
    int r = raw_recv(c, f, W);
    ck_assert_msg(r == 1, "expected %s, got %d", op, r);
    ck_assert_msg(strcmp(raw_op(f), op) == 0, "expected %s, got %s", op, f->meta_text);
    if (code)
        ck_assert_msg(raw_str(f, "code") && strcmp(raw_str(f, "code"), code) == 0,
                      "expected code %s: %s", code, f->meta_text);
}

/* One test case per test so that one can be run alone: <suite>.exe <name>. */
void bs_add(Suite *s, const char *name, const TTest *t)
{
    TCase *tc = tcase_create(name);
    tcase_set_timeout(tc, 300);
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, t);
    suite_add_tcase(s, tc);
}
