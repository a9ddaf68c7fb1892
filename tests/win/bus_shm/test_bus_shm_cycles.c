/*
 * test_bus_shm_cycles.c - 1000 bus clients, one after the other, each connecting to the broker,
 * receiving a 1 MiB publication through the broker's shared memory and leaving (engines
 * alternate). Flat over the cycles, in both processes (GetProcessHandleCount is 0 under Wine):
 *   broker   its handles in use (not its next handle value: segments retired by the 5 s sweep
 *            and made again move the lowest free slot around; see bsk_outside_handles) and
 *            its mapped bytes, measured from outside
 *            (bus_shm_kit.h), and its counters: no slot held, no client segment more, no
 *            fan-out segment more, shm_clients back to the publisher's;
 *   here     this process's next handle value and mapped bytes (aipc_memstat): every view and
 *            handle of the broker's segments a client opened is closed with it.
 */
#include "check_main.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aipc_memstat.h"
#include "bus_shm_kit.h"

#define CYCLES 1000
#define BASE   3     /* the baseline is taken after this cycle (both engines' threads exist) */

/* Only our publisher is left and no slot is held. */
static int settled(const bsk_stats *st, const bsk_stats *ref)
{
    (void)ref;
    return st->clients == 1 && st->shm_bytes == 0;
}

START_TEST(connect_receive_shared_disconnect_flat)
{
    bs_broker b;
    bs_broker_start(&b, "bshmcyc", NULL);
    char topic[64];
    bt_unique_topic(topic, sizeof topic, "cyc");
    static bsk_sub pubc, sub;
    aipc_bus_options o;
    ck_assert_int_eq(bsk_open(&pubc, &b, PIPE_ASYNC, NULL), 0);
    uint8_t *buf = malloc(BS_MIB);
    ck_assert_ptr_nonnull(buf);
    bsk_stats st0, st;
    bsk_outside out0, out;
    aipc_memstat here0, here;
    memset(&st0, 0, sizeof st0);
    memset(&out0, 0, sizeof out0);
    memset(&here0, 0, sizeof here0);
    long long h0 = 0, h1 = 0;   /* the broker's handles in use */
    uint32_t seq = 0;
    long long extra_pubs = 0;
    for (int c = 0; c < CYCLES; c++) {
        memset(&sub, 0, sizeof sub);
        bsk_sub_options(&sub, &o, b.wpipe, c & 1 ? PIPE_OVERLAPPED : PIPE_ASYNC);
        sub.allow_gaps = 1;   /* a new subscriber starts at the next sequence number */
        sub.next_seq = seq;
        ck_assert_msg(bsk_sub_open(&sub, &o, topic) == 0, "cycle %d: no connection", c);
        /* until one arrives shared (the first may go inline while the client confirms the
         * broker's segment) */
        for (int k = 0; bsk_counters(sub.bus).shm_recv == 0; k++) {
            ck_assert_msg(k < 4, "cycle %d: no shared delivery after 4 publications", c);
            long long before = sub.got;
            ck_assert_int_eq(bsk_publish(pubc.bus, topic, buf, BS_MIB, seq++), AIPC_OK);
            ck_assert_msg(bsk_wait64(&sub.got, before + 1), "cycle %d: nothing received", c);
            extra_pubs += k > 0;
        }
        ck_assert_msg(sub.bad == 0 && sub.dropped == 0, "cycle %d: %s", c, sub.error);
        bsk_sub_close(&sub);
        if (c == BASE || c == CYCLES - 1) {
            ck_assert_msg(bsk_stats_until(pubc.bus, settled, NULL, &st),
                          "cycle %d: the broker keeps %lld clients, %lld shm bytes%s", c,
                          st.clients, st.shm_bytes, bsk_broker_gone(&b));
            bsk_outside *ob = c == BASE ? &out0 : &out;
            ck_assert_int_eq(bsk_outside_take(b.rb.process, ob), 0);
            long long *hp = c == BASE ? &h0 : &h1;
            *hp = bsk_outside_handles(b.rb.process);
            ck_assert_msg(*hp > 0, "cycle %d: the broker's handles could not be counted", c);
            aipc_memstat_take(c == BASE ? &here0 : &here);
            if (c == BASE)
                st0 = st;
        }
    }
    ck_assert_msg(h1 <= h0 + 2, "broker: handles in use grew from %lld to %lld over %d cycles "
                  "(next handle value %lld -> %lld)", h0, h1, CYCLES, out0.next_handle,
                  out.next_handle);
    ck_assert_msg(out.mapped_bytes <= out0.mapped_bytes,
                  "broker: mapped bytes grew from %lld to %lld over %d cycles", out0.mapped_bytes,
                  out.mapped_bytes, CYCLES);
    ck_assert_msg(st.shm_segments <= st0.shm_segments &&
                  st.shm_client_segments <= st0.shm_client_segments &&
                  st.shm_clients <= st0.shm_clients,
                  "broker: segments %lld -> %lld, client segments %lld -> %lld, shm clients "
                  "%lld -> %lld", st0.shm_segments, st.shm_segments, st0.shm_client_segments,
                  st.shm_client_segments, st0.shm_clients, st.shm_clients);
    ck_assert_msg(here.next_handle <= here0.next_handle + 8,
                  "here: next handle value grew from %lld to %lld over %d cycles",
                  (long long)here0.next_handle, (long long)here.next_handle, CYCLES);
    ck_assert_msg(here.mapped_bytes <= here0.mapped_bytes,
                  "here: mapped bytes grew from %lld to %lld over %d cycles",
                  (long long)here0.mapped_bytes, (long long)here.mapped_bytes, CYCLES);
    fprintf(stderr, "bus_shm_cycles: %d cycles, %u publications (%lld beyond the first of a "
            "cycle), broker handles in use %lld -> %lld (next handle %lld -> %lld), mapped %lld -> "
            "%lld\n", CYCLES, seq, extra_pubs, h0, h1, out0.next_handle, out.next_handle,
            out0.mapped_bytes, out.mapped_bytes);
    free(buf);
    bsk_sub_close(&pubc);
    bs_broker_stop(&b);
}
END_TEST

static Suite *bus_shm_cycles_suite(void)
{
    Suite *s = suite_create("bus_shm_cycles");
    TCase *t = bt_tcase_create("cycles");
    tcase_set_timeout(t, 0);
    tcase_add_test(t, connect_receive_shared_disconnect_flat);
    suite_add_tcase(s, t);
    return s;
}

CHECK_MAIN_EX(bus_shm_cycles_suite, NULL, NULL, CHECK_MAIN_VERBOSE);
