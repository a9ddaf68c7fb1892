/* fuzz_bus_client.c - libFuzzer target for the bus client's portable parsing: the byte stream a
 * broker sends (frames -> meta JSON -> fields, presence payloads) and the topic/filter rules. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "bus_core.h"
#include "proto/frame.h"

/* Per frame: parse the meta as the client does, then use the payload as a presence payload and
 * as a filter/topic pair. */
static int on_frame(void *ctx, const uint8_t *meta, uint32_t ml, const uint8_t *pl, uint32_t pn)
{
    aipc__bus_in in;
    if (aipc__bus_meta_parse(meta, ml, &in) == 0) {
        volatile size_t sink = strlen(in.topic) + strlen(in.code) + strlen(in.message) +
                               strlen(in.from.name) + strlen(in.name) + strlen(in.reason);
        (void)sink;
        aipc__bus_in_free(&in);
    }
    aipc_bus_peer who;
    char name[AIPC_BUS_NAME_MAX + 1];
    aipc__bus_presence_parse(pl, pn, &who, name, sizeof name);
    char *a = malloc((size_t)pn + 1);
    if (a) {
        memcpy(a, pl, pn);
        a[pn] = 0;
        char *b = memchr(a, '|', pn);
        const char *topic = a;
        if (b) {
            *b = 0;
            topic = b + 1;
        }
        aipc__bus_filter_valid(a);
        aipc__bus_topic_valid(topic);
        aipc__bus_name_valid(a);
        aipc__bus_to_is_id(a, NULL);
        aipc__bus_topic_match(a, topic);
        free(a);
    }
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    aipc_decoder d;
    aipc_decoder_init(&d, 0, 1u << 20);
    /* feed in two pieces to exercise frames split across reads */
    size_t cut = size ? data[0] % (size + 1) : 0;
    size_t used = 0;
    if (aipc_decoder_feed(&d, data, cut, on_frame, NULL, &used) == 0)
        aipc_decoder_feed(&d, data + cut, size - cut, on_frame, NULL, &used);
    aipc_decoder_free(&d);
    return 0;
}
