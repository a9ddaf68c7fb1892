/*
 * test_p2p_shm_cycles.c - many point-to-point connections with shared memory in one process
 * (an SDK server and SDK clients of the other engine): each connects, confirms segments both
 * ways, echoes a 1 MiB message through them and leaves. This process's next handle value and
 * mapped bytes (aipc_memstat: GetProcessHandleCount is 0 under Wine) must stay flat: every
 * section handle and view of both ends is closed with its connection.
 */
#include "p2p_shm_common.h"
#include "aipc_memstat.h"

/* ---- many connections ------------------------------------------------------------------------- */

#define CYCLES 200

/* _i: the server's engine (the client in this process uses the other). CYCLES times: a client
 * connects, both negotiate and confirm segments, a 1 MiB message goes shared, the client
 * leaves. Afterwards this process's next handle value and mapped bytes are what they were
 * after the first cycle (every section handle and view of both ends was closed). */
START_TEST(connect_send_disconnect_cycles_flat)
{
    PipeImplType mine = _i ? PIPE_OVERLAPPED : PIPE_ASYNC;
    PipeImplType other = _i ? PIPE_ASYNC : PIPE_OVERLAPPED;
    char name[96];
    aipc_test_name(name, sizeof name, "shmcyc");
    aipc_probe *srv = new_probe();
    srv->echo = 1;
    start_probe(srv, mine, PIPE_SERVER, name, 0, 0);
    uint8_t *buf = malloc(MIB);
    ck_assert_ptr_nonnull(buf);
    aipc_memstat first, now;
    memset(&first, 0, sizeof first);
    for (int c = 0; c < CYCLES; c++) {
        aipc_probe *cl = new_probe();
        cl->keep = 1;
        start_probe(cl, other, PIPE_CLIENT, name, 0, 0);
        WAIT_FOR(cl, connected, 1, "the client connected");
        warm_up(cl);
        echo_exact(cl, buf, MIB, (uint32_t)c);
        ck_assert_msg(stats_of(cl).shm_sent >= 1 && stats_of(cl).shm_received >= 1,
                      "cycle %d: the 1 MiB message did not go shared", c);
        free_probe(cl);
        WAIT_FOR(srv, disconnected, c + 1, "the server saw the client leave");
        if (c == 0)
            aipc_memstat_take(&first);
    }
    free(buf);
    aipc_memstat_take(&now);
    ck_assert_msg(now.next_handle <= first.next_handle + 8,
                  "next handle value grew from %lld to %lld over %d cycles",
                  (long long)first.next_handle, (long long)now.next_handle, CYCLES);
    ck_assert_msg(now.mapped_bytes <= first.mapped_bytes,
                  "mapped bytes grew from %lld to %lld over %d cycles",
                  (long long)first.mapped_bytes, (long long)now.mapped_bytes, CYCLES);
    aipc_pipe_stats st = stats_of(srv);
    ck_assert_msg(st.shm_bytes == 0 && st.shm_segments == 0, "server holds %llu bytes, %u segments",
                  (unsigned long long)st.shm_bytes, st.shm_segments);
    ASSERT_PROBE_CLEAN(srv);
    free_probe(srv);
}
END_TEST

static Suite *p2p_shm_cycles_suite(void)
{
    Suite *s = suite_create("p2p_shm_cycles");
    TCase *t = tcase_create("cycles");
    tcase_add_checked_fixture(t, p2p_setup, p2p_teardown);
    tcase_set_timeout(t, 0);
    tcase_add_loop_test(t, connect_send_disconnect_cycles_flat, 0, 2);
    suite_add_tcase(s, t);
    return s;
}

CHECK_MAIN_EX(p2p_shm_cycles_suite, NULL, NULL, CHECK_MAIN_VERBOSE);
