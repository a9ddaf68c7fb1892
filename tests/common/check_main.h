/*
 * check_main.h - the one main() of every Check suite, native and Windows (check_main.c).
 *
 * A suite file builds its Suite and names it once:
 *
 *     static Suite *make_suite(void) { ... return s; }
 *     CHECK_MAIN(make_suite);
 *
 * or, with a set-up before the run, a clean-up after it and output flags:
 *
 *     CHECK_MAIN_EX(make_suite, start_broker, stop_broker, CHECK_MAIN_VERBOSE);
 *
 * The main runs the suite once and exits 0 if no test failed, 1 otherwise (also 1 if the set-up
 * fails; the suite does not run then). Command line: an optional first argument is the name of
 * the one test case to run (as the environment's CK_RUN_CASE, which it overrides). Check's own
 * environment keeps working as it does for any runner: CK_FORK (native suites fork per test,
 * ctest sets CK_FORK=yes; Check has no fork on Windows), CK_DEFAULT_TIMEOUT and
 * CK_TIMEOUT_MULTIPLIER, CK_RUN_SUITE/CK_RUN_CASE, CK_INCLUDE_TAGS/CK_EXCLUDE_TAGS,
 * CK_VERBOSITY, CK_LOG_FILE_NAME, CK_XML_LOG_FILE_NAME and CK_TAP_LOG_FILE_NAME.
 */
#ifndef AIPC_TEST_CHECK_MAIN_H
#define AIPC_TEST_CHECK_MAIN_H

#include <check.h>

#ifdef __cplusplus
extern "C" {
#endif

enum {
    /* stdout unbuffered and one line per test (CK_VERBOSE): each test's line reaches ctest's
     * log even if a hang gets the process killed */
    CHECK_MAIN_VERBOSE = 1u << 0,
    /* stdout unbuffered and each test's result printed as soon as it ends (a log to "-"): a
     * later hang or crash does not take the earlier results with it */
    CHECK_MAIN_LOG_EACH = 1u << 1,
};

typedef struct check_main_def {
    Suite *(*make)(void);  /* builds the suite; called once, after before() */
    int (*before)(void);   /* NULL, or runs before the suite; non-zero: exit 1 at once */
    void (*after)(void);   /* NULL, or runs after the run (after before() succeeded) */
    unsigned flags;        /* CHECK_MAIN_* */
} check_main_def;

/* Defined by exactly one file of each suite executable, through CHECK_MAIN / CHECK_MAIN_EX. */
extern const check_main_def check_main_suite;

#ifdef __cplusplus
}
#endif

#define CHECK_MAIN_EX(make, before, after, flags) \
    const check_main_def check_main_suite = { (make), (before), (after), (flags) }
#define CHECK_MAIN(make) CHECK_MAIN_EX(make, NULL, NULL, 0u)

#endif
