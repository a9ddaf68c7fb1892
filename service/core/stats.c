/* stats.c - broker counters (SPEC section 4: clients, subscriptions, retained topics and their
 * bytes, messages and bytes in/out, drops, errors, uptime) as a struct and as the `stats`
 * answer's JSON. */
#include "internal.h"

#include <inttypes.h>
#include <stdio.h>

/* Snapshot of the counters; gauges are read from the live structures. */
void aipc_broker_get_stats(const aipc_broker *b, aipc_broker_stats *out)
{
    *out = b->st;
    out->clients = b->nclients;
    out->subscriptions = b->nsubs;
    out->subscription_bytes = b->sub_bytes;
    out->pending_requests = b->npending;
    out->incomplete_bytes = b->incomplete_bytes;
    out->queue_bytes = b->queue_total;
    out->retained_topics = b->nretained;
    out->retained_bytes = b->retained_bytes;
    out->shm_clients = b->shm_nclients;
    out->shm_bytes = b->shm_slot_bytes;
    out->shm_segments = b->shm_segs.count;
    out->shm_client_segments = b->shm_in_segs;
    out->shm_pages = b->shm_npages;
    uint64_t now = aipc__now(b);
    out->uptime_ms = now > b->started_ms ? now - b->started_ms : 0;
}

/* One flat JSON object, so tools can print it as is. */
size_t aipc_broker_stats_json(const aipc_broker *b, char *out, size_t cap)
{
    aipc_broker_stats s;
    aipc_broker_get_stats(b, &s);
    int n = snprintf(out, cap,
                     "{\"clients\":%" PRIu64 ",\"clients_total\":%" PRIu64
                     ",\"subscriptions\":%" PRIu64 ",\"retained_topics\":%" PRIu64
                     ",\"retained_bytes\":%" PRIu64
                     ",\"msgs_in\":%" PRIu64 ",\"bytes_in\":%" PRIu64 ",\"msgs_out\":%" PRIu64
                     ",\"bytes_out\":%" PRIu64 ",\"publications\":%" PRIu64
                     ",\"deliveries\":%" PRIu64 ",\"drops\":%" PRIu64 ",\"errors\":%" PRIu64
                     ",\"denied\":%" PRIu64 ",\"hello_timeouts\":%" PRIu64
                     ",\"subscription_bytes\":%" PRIu64 ",\"subs_refused\":%" PRIu64
                     ",\"pending_requests\":%" PRIu64 ",\"reqs_refused\":%" PRIu64
                     ",\"request_timeouts\":%" PRIu64 ",\"incomplete_bytes\":%" PRIu64
                     ",\"incomplete_refused\":%" PRIu64 ",\"frame_timeouts\":%" PRIu64
                     ",\"linger_aborts\":%" PRIu64 ",\"drop_reports\":%" PRIu64
                     ",\"queue_bytes\":%" PRIu64 ",\"queue_total_drops\":%" PRIu64
                     ",\"process_conns_refused\":%" PRIu64 ",\"user_conns_refused\":%" PRIu64
                     ",\"uptime_ms\":%" PRIu64 ",\"shm_clients\":%" PRIu64
                     ",\"shm_bytes\":%" PRIu64 ",\"shm_segments\":%" PRIu64
                     ",\"shm_client_segments\":%" PRIu64 ",\"shm_publications\":%" PRIu64
                     ",\"shm_deliveries\":%" PRIu64 ",\"shm_inline_fallbacks\":%" PRIu64
                     ",\"shm_map_failures\":%" PRIu64 ",\"shm_in\":%" PRIu64
                     ",\"shm_bad_releases\":%" PRIu64 ",\"shm_release_frames\":%" PRIu64
                     ",\"shm_page_releases\":%" PRIu64 ",\"shm_pages\":%" PRIu64 "}",
                     s.clients, s.clients_total, s.subscriptions, s.retained_topics,
                     s.retained_bytes, s.msgs_in, s.bytes_in, s.msgs_out, s.bytes_out,
                     s.publications, s.deliveries, s.drops, s.errors, s.denied, s.hello_timeouts,
                     s.subscription_bytes, s.subs_refused, s.pending_requests, s.reqs_refused,
                     s.request_timeouts, s.incomplete_bytes, s.incomplete_refused,
                     s.frame_timeouts, s.linger_aborts, s.drop_reports,
                     s.queue_bytes, s.queue_total_drops, s.process_conns_refused, s.user_conns_refused, s.uptime_ms,
                     s.shm_clients, s.shm_bytes, s.shm_segments, s.shm_client_segments,
                     s.shm_publications, s.shm_deliveries, s.shm_inline_fallbacks,
                     s.shm_map_failures, s.shm_in, s.shm_bad_releases,
                     s.shm_release_frames, s.shm_page_releases, s.shm_pages);
    return n < 0 ? 0 : (size_t)n;
}
