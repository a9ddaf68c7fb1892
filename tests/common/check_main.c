/*
 * check_main.c - the one main() of every Check suite executable (see check_main.h): runs the
 * suite named by the executable's CHECK_MAIN and turns its failures into the exit code.
 */
#include <stdio.h>

#include "check_main.h"

int main(int argc, char **argv)
{
    const check_main_def *d = &check_main_suite;
    unsigned flags = d->flags;
    if (flags & (CHECK_MAIN_VERBOSE | CHECK_MAIN_LOG_EACH))
        setvbuf(stdout, NULL, _IONBF, 0);
    if (d->before && d->before() != 0) {
        fprintf(stderr, "%s: the suite's set-up failed; no test ran\n", argc > 0 ? argv[0] : "suite");
        return 1;
    }
    SRunner *sr = srunner_create(d->make());
#ifdef _WIN32
    srunner_set_fork_status(sr, CK_NOFORK); /* what Check does anyway without fork(), said once */
#endif
    if (flags & CHECK_MAIN_LOG_EACH)
        srunner_set_log(sr, "-");
    srunner_run(sr, NULL, argc > 1 ? argv[1] : NULL, (flags & CHECK_MAIN_VERBOSE) ? CK_VERBOSE : CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    if (d->after)
        d->after();
    return failed ? 1 : 0;
}
