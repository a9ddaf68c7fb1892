/*
 * p2p_shm_common.h - shared by the point-to-point shared-memory suites (test_p2p_shm.c,
 * test_p2p_shm_cycles.c): stats, the warm-up, an exact echo.
 * Warm-up: after connecting, round trips run until both segments are confirmed (the probe's
 * shm_segments = 2: ours confirmed, the peer's mapped), then one more so that the peer has read
 * our confirmation too; from then on every message at or above the threshold goes shared
 * (while the pool has room).
 */
#ifndef P2P_SHM_COMMON_H
#define P2P_SHM_COMMON_H

#include "p2p_common.h"

#define THR AIPC_DEFAULT_SHM_THRESHOLD
#define MIB (1024u * 1024u)

static inline aipc_pipe_stats stats_of(aipc_probe *p)
{
    aipc_pipe_stats st;
    memset(&st, 0, sizeof st);
    st.size = sizeof st;
    ck_assert_int_eq(aipc_pipe_get_stats(p->pipe, &st), AIPC_OK);
    return st;
}

/* Round trips of a small message until both sides' segments are confirmed, then one more. */
static inline void warm_up(aipc_probe *p)
{
    long long n = aipc_probe_get(p, &p->recv_count);
    int extra = 0;
    for (int i = 0; i < 100 && extra < 2; i++) {
        ck_assert_int_eq(aipc_probe_send(p, "warm", 4), AIPC_OK);
        WAIT_FOR(p, recv_count, ++n, "a warm-up echo");
        if (stats_of(p).shm_segments >= 2 || extra)
            extra++;
    }
    ck_assert_msg(extra == 2, "shared segments not confirmed after 100 round trips (%u)",
                  stats_of(p).shm_segments);
    aipc_probe_clear_msgs(p);
}

/* Spawns the echo peer in the other role and engine and starts the probe; waits connected. */
static inline void pair_up(aipc_probe *p, aipc_proc *peer, PipeImplType mine, int client, const char *tag,
                    const char *extra)
{
    char name[96];
    aipc_test_name(name, sizeof name, tag);
    const char *other = engine_arg(mine == PIPE_ASYNC ? PIPE_OVERLAPPED : PIPE_ASYNC);
    if (client) {
        ck_assert_int_eq(aipc_proc_spawn(peer, "p2p_peer.exe", "--mode echo --role server --once "
                                         "--engine %s --pipe %s %s", other, name, extra), AIPC_OK);
        start_probe(p, mine, PIPE_CLIENT, name, 0, 0);
    } else {
        start_probe(p, mine, PIPE_SERVER, name, 0, 0);
        ck_assert_int_eq(aipc_proc_spawn(peer, "p2p_peer.exe", "--mode echo --role client "
                                         "--engine %s --pipe %s %s", other, name, extra), AIPC_OK);
    }
    WAIT_FOR(p, connected, 1, "the peer connected");
}

/* Sends one pattern message of `size` bytes (seed) and checks its echo. */
static inline void echo_exact(aipc_probe *p, uint8_t *buf, size_t size, uint32_t seed)
{
    long long n = aipc_probe_get(p, &p->recv_count);
    aipc_pattern_fill(buf, size, seed);
    ck_assert_int_eq(aipc_probe_send(p, buf, size), AIPC_OK);
    WAIT_FOR(p, recv_count, n + 1, "an echo");
    EnterCriticalSection(&p->lock);
    aipc_probe_msg m = p->msgs[p->nmsgs - 1];
    LeaveCriticalSection(&p->lock);
    ck_assert_msg((size_t)m.size == size, "echo of %zu bytes came back with %d", size, m.size);
    long long bad = aipc_pattern_check(m.data, size, seed);
    ck_assert_msg(bad < 0, "echo of %zu bytes differs at byte %lld", size, bad);
    aipc_probe_clear_msgs(p);
}

#endif
