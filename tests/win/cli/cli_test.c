/*
 * cli_test.c - what the cli suites share (cli_test.h).
 */
#include "cli_test.h"

/* args with the suite's engine in front. */
static void with_engine(char *out, size_t cap, const char *args)
{
    snprintf(out, cap, "%s%s", aipc_test_bus_engine() == PIPE_OVERLAPPED ? "--engine iocp " : "",
             args);
}

int cli_start(bt_child *ch, const char *args, const char *in)
{
    char full[1024];
    with_engine(full, sizeof full, args);
    return bt_child_start(ch, "aipc.exe", full, in);
}

void cli_run(bt_child *ch, const char *args, const char *in)
{
    ck_assert_int_eq(cli_start(ch, args, in), 0);
    ck_assert_msg(bt_child_wait(ch, W), "aipc %s did not finish", args);
}

void cli_start_live(cp_child *ch, const char *fmt, ...)
{
    char args[512], full[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(args, sizeof args, fmt, ap);
    va_end(ap);
    with_engine(full, sizeof full, args);
    ck_assert_msg(cp_start(ch, "aipc.exe", full) == 0, "cannot start aipc %s", args);
}
