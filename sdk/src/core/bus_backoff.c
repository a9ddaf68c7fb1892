/* bus_backoff.c - reconnect delay: capped exponential backoff with jitter (portable). */
#include "bus_core.h"

uint32_t aipc__bus_backoff_delay(uint32_t min_ms, uint32_t max_ms, uint32_t attempt, uint32_t rnd)
{
    if (min_ms == 0)
        min_ms = 1;
    if (max_ms < min_ms)
        return max_ms ? max_ms : min_ms;
    /* min * 2^attempt without overflow: stop doubling once past the cap */
    uint64_t d = min_ms;
    for (uint32_t i = 0; i < attempt && d < max_ms; i++)
        d *= 2;
    if (d > max_ms)
        d = max_ms;
    /* jitter in [d/2, d] so that many clients of a restarted broker do not reconnect in step */
    uint64_t half = d / 2;
    uint64_t j = half + (uint64_t)rnd % (d - half + 1);
    if (j < min_ms)
        j = min_ms;
    return (uint32_t)j;
}
