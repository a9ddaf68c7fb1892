/* config.c - the broker's JSON configuration (SPEC section 4), strict: every problem names the
 * key, so a service that refuses to start says exactly what to fix. */
#include "internal.h"

#include "asyncipc/asyncipc.h"

#include <inttypes.h>
#include <cjson/cJSON.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* The documented defaults. */
void aipc_broker_config_defaults(aipc_broker_config *out)
{
    memset(out, 0, sizeof *out);
    memcpy(out->pipe_name, AIPC_BROKER_DEFAULT_PIPE, sizeof AIPC_BROKER_DEFAULT_PIPE);
    out->max_clients = AIPC_BROKER_DEFAULT_MAX_CLIENTS;
    out->max_payload = AIPC_DEFAULT_MAX_PAYLOAD;
    out->max_queue_bytes = AIPC_BROKER_DEFAULT_MAX_QUEUE;
    out->max_total_queue_bytes = AIPC_BROKER_DEFAULT_MAX_TOTAL_QUEUE;
    out->max_retained_bytes = AIPC_BROKER_DEFAULT_MAX_RETAINED;
    out->hello_timeout_ms = AIPC_BROKER_DEFAULT_HELLO_TIMEOUT;
    out->max_subscriptions = AIPC_BROKER_DEFAULT_MAX_SUBS;
    out->max_subscription_bytes = AIPC_BROKER_DEFAULT_MAX_SUB_BYTES;
    out->max_pending_requests = AIPC_BROKER_DEFAULT_MAX_PENDING;
    out->request_timeout_ms = AIPC_BROKER_DEFAULT_REQ_TIMEOUT;
    out->max_incomplete_bytes = AIPC_BROKER_DEFAULT_MAX_INCOMPLETE;
    out->frame_timeout_ms = AIPC_BROKER_DEFAULT_FRAME_TIMEOUT;
    out->close_linger_ms = AIPC_BROKER_DEFAULT_LINGER;
    out->max_total_subscription_bytes = AIPC_BROKER_DEFAULT_MAX_TOTAL_SUB_BYTES;
    out->max_total_pending_requests = AIPC_BROKER_DEFAULT_MAX_TOTAL_PENDING;
    out->max_connections_per_process = AIPC_BROKER_DEFAULT_CONNS_PER_PROCESS;
    out->max_connections_per_user = AIPC_BROKER_DEFAULT_CONNS_PER_USER;
    out->log_level = AIPC_LOG_INFO;
    out->shm = true;
    out->shm_threshold = AIPC_BROKER_DEFAULT_SHM_THRESHOLD;
    out->max_shm_bytes = AIPC_BROKER_DEFAULT_MAX_SHM;
    out->shm_segment_bytes = AIPC_BROKER_DEFAULT_SHM_SEGMENT;
    out->shm_release_page = true;
}

void aipc_broker_config_free(aipc_broker_config *cfg)
{
    if (!cfg)
        return;
    aipc_policy_free(cfg->policy);
    cfg->policy = NULL;
}

/* Writes the error message (always NUL-terminated) and returns AIPC_EINVAL. */
static int cfg_err(char *err, size_t errlen, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;
static int cfg_err(char *err, size_t errlen, const char *fmt, ...)
{
    if (err && errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return AIPC_EINVAL;
}

/* An integer key within [lo, hi]. */
static int get_uint(const cJSON *v, uint64_t lo, uint64_t hi, uint64_t *out, char *err,
                    size_t errlen)
{
    if (!cJSON_IsNumber(v) || floor(v->valuedouble) != v->valuedouble)
        return cfg_err(err, errlen, "config: \"%s\" must be an integer", v->string);
    double d = v->valuedouble;
    if (d < (double)lo || d > (double)hi)
        return cfg_err(err, errlen, "config: \"%s\" must be between %" PRIu64 " and %" PRIu64,
                       v->string, lo, hi);
    *out = (uint64_t)d;
    return 0;
}

/* A string key copied into a fixed buffer (too long is an error, never a truncation). */
static int get_str(const cJSON *v, char *dst, size_t cap, bool allow_empty, char *err,
                   size_t errlen)
{
    if (!cJSON_IsString(v) || !v->valuestring)
        return cfg_err(err, errlen, "config: \"%s\" must be a string", v->string);
    size_t n = strlen(v->valuestring);
    if (n >= cap)
        return cfg_err(err, errlen, "config: \"%s\" is too long (at most %" PRIu64 " bytes)",
                       v->string, (uint64_t)(cap - 1));
    if (!n && !allow_empty)
        return cfg_err(err, errlen, "config: \"%s\" must not be empty", v->string);
    memcpy(dst, v->valuestring, n + 1);
    return 0;
}

/* pipe_name: "\\.\pipe\NAME" or "NAME" (proto/names.h's rules); stored short. */
static int get_pipe(const cJSON *v, aipc_broker_config *c, char *err, size_t errlen)
{
    char full[AIPC_PROTO_PIPE_BUF];
    if (!cJSON_IsString(v) || !v->valuestring)
        return cfg_err(err, errlen, "config: \"%s\" must be a string", v->string);
    size_t n = aipc_proto_pipe_name(v->valuestring, full);
    if (n == 0)
        return cfg_err(err, errlen,
                       "config: \"pipe_name\" must be \\\\.\\pipe\\NAME or NAME (NAME without "
                       "backslashes or control characters, the whole name at most %u UTF-16 "
                       "characters)", AIPC_PROTO_PIPE_MAX);
    memcpy(c->pipe_name, full + AIPC_PROTO_PIPE_PREFIX_LEN, n - AIPC_PROTO_PIPE_PREFIX_LEN + 1);
    return 0;
}

/* log_level: a level name or its number 0..4. */
static int get_level(const cJSON *v, int *out, char *err, size_t errlen)
{
    static const char *const names[] = {"error", "warn", "info", "debug", "trace"};
    if (cJSON_IsString(v) && v->valuestring) {
        for (int i = 0; i < 5; i++)
            if (strcmp(v->valuestring, names[i]) == 0) {
                *out = i;
                return 0;
            }
        return cfg_err(err, errlen,
                       "config: \"log_level\" must be error, warn, info, debug or trace");
    }
    uint64_t n;
    if (cJSON_IsNumber(v) && get_uint(v, 0, 4, &n, err, errlen) == 0) {
        *out = (int)n;
        return 0;
    }
    return cfg_err(err, errlen, "config: \"log_level\" must be error, warn, info, debug or trace");
}

/* Applies one key to the config being built. */
static int apply(const cJSON *v, aipc_broker_config *c, char *err, size_t errlen)
{
    const char *k = v->string;
    uint64_t n;
    int rc;
    if (strcmp(k, "pipe_name") == 0)
        return get_pipe(v, c, err, errlen);
    if (strcmp(k, "max_clients") == 0) {
        rc = get_uint(v, 1, AIPC_BROKER_MAX_CLIENTS_LIMIT, &n, err, errlen);
        c->max_clients = (uint32_t)n;
        return rc;
    }
    if (strcmp(k, "max_payload") == 0) {
        rc = get_uint(v, 1, AIPC_BROKER_MAX_PAYLOAD_LIMIT, &n, err, errlen);
        c->max_payload = (uint32_t)n;
        return rc;
    }
    if (strcmp(k, "max_queue_bytes") == 0) {
        rc = get_uint(v, AIPC_BROKER_MIN_QUEUE, AIPC_BROKER_MAX_QUEUE_LIMIT, &n, err, errlen);
        c->max_queue_bytes = n;
        return rc;
    }
    if (strcmp(k, "max_total_queue_bytes") == 0) {
        rc = get_uint(v, 0, AIPC_BROKER_MAX_QUEUE_LIMIT, &n, err, errlen);
        if (rc == 0 && n && n < AIPC_BROKER_MIN_QUEUE)
            rc = cfg_err(err, errlen, "config: \"max_total_queue_bytes\" must be 0 (no bound) "
                         "or between %u and %" PRIu64, AIPC_BROKER_MIN_QUEUE,
                         (uint64_t)AIPC_BROKER_MAX_QUEUE_LIMIT);
        c->max_total_queue_bytes = n;
        return rc;
    }
    if (strcmp(k, "max_retained_bytes") == 0) {
        rc = get_uint(v, 0, AIPC_BROKER_MAX_RETAINED_LIMIT, &n, err, errlen);
        c->max_retained_bytes = n;
        return rc;
    }
    if (strcmp(k, "hello_timeout_ms") == 0) {
        rc = get_uint(v, 1, AIPC_BROKER_MAX_TIMEOUT_MS, &n, err, errlen);
        c->hello_timeout_ms = (uint32_t)n;
        return rc;
    }
    if (strcmp(k, "max_subscriptions") == 0) {
        rc = get_uint(v, 1, AIPC_BROKER_MAX_SUBS_LIMIT, &n, err, errlen);
        c->max_subscriptions = (uint32_t)n;
        return rc;
    }
    if (strcmp(k, "max_subscription_bytes") == 0) {
        rc = get_uint(v, AIPC_BROKER_MIN_SUB_BYTES, AIPC_BROKER_MAX_SUB_BYTES_LIMIT, &n, err,
                      errlen);
        c->max_subscription_bytes = n;
        return rc;
    }
    if (strcmp(k, "max_pending_requests") == 0) {
        rc = get_uint(v, 1, AIPC_BROKER_MAX_PENDING_LIMIT, &n, err, errlen);
        c->max_pending_requests = (uint32_t)n;
        return rc;
    }
    if (strcmp(k, "request_timeout_ms") == 0) {
        rc = get_uint(v, 1, AIPC_BROKER_MAX_TIMEOUT_MS, &n, err, errlen);
        c->request_timeout_ms = (uint32_t)n;
        return rc;
    }
    if (strcmp(k, "max_incomplete_bytes") == 0) {
        rc = get_uint(v, AIPC_BROKER_MIN_INCOMPLETE, AIPC_BROKER_MAX_INCOMPLETE_LIMIT, &n, err,
                      errlen);
        c->max_incomplete_bytes = n;
        return rc;
    }
    if (strcmp(k, "frame_timeout_ms") == 0) {
        rc = get_uint(v, 1, AIPC_BROKER_MAX_TIMEOUT_MS, &n, err, errlen);
        c->frame_timeout_ms = (uint32_t)n;
        return rc;
    }
    if (strcmp(k, "close_linger_ms") == 0) {
        rc = get_uint(v, 1, AIPC_BROKER_MAX_TIMEOUT_MS, &n, err, errlen);
        c->close_linger_ms = (uint32_t)n;
        return rc;
    }
    if (strcmp(k, "max_total_subscription_bytes") == 0) {
        rc = get_uint(v, 0, AIPC_BROKER_MAX_RETAINED_LIMIT, &n, err, errlen);
        if (rc == 0 && n && n < AIPC_BROKER_MIN_SUB_BYTES)
            rc = cfg_err(err, errlen, "config: \"max_total_subscription_bytes\" must be 0 (no "
                         "bound) or between %u and %" PRIu64, AIPC_BROKER_MIN_SUB_BYTES,
                         (uint64_t)AIPC_BROKER_MAX_RETAINED_LIMIT);
        c->max_total_subscription_bytes = n;
        return rc;
    }
    if (strcmp(k, "max_total_pending_requests") == 0) {
        rc = get_uint(v, 0, 100000000u, &n, err, errlen);
        c->max_total_pending_requests = (uint32_t)n;
        return rc;
    }
    if (strcmp(k, "max_connections_per_process") == 0) {
        rc = get_uint(v, 0, AIPC_BROKER_MAX_CLIENTS_LIMIT, &n, err, errlen);
        c->max_connections_per_process = (uint32_t)n;
        return rc;
    }
    if (strcmp(k, "max_connections_per_user") == 0) {
        rc = get_uint(v, 0, AIPC_BROKER_MAX_CLIENTS_LIMIT, &n, err, errlen);
        c->max_connections_per_user = (uint32_t)n;
        return rc;
    }
    if (strcmp(k, "shm") == 0) {
        if (!cJSON_IsBool(v))
            return cfg_err(err, errlen, "config: \"shm\" must be true or false");
        c->shm = cJSON_IsTrue(v);
        return 0;
    }
    if (strcmp(k, "shm_release_page") == 0) {
        if (!cJSON_IsBool(v))
            return cfg_err(err, errlen, "config: \"shm_release_page\" must be true or false");
        c->shm_release_page = cJSON_IsTrue(v);
        return 0;
    }
    if (strcmp(k, "shm_threshold") == 0) {   /* <= max_payload: checked once all keys are in */
        rc = get_uint(v, AIPC_BROKER_MIN_SHM_THRESHOLD, AIPC_BROKER_MAX_PAYLOAD_LIMIT, &n, err,
                      errlen);
        c->shm_threshold = (uint32_t)n;
        return rc;
    }
    if (strcmp(k, "max_shm_bytes") == 0) {
        rc = get_uint(v, 0, AIPC_BROKER_MAX_QUEUE_LIMIT, &n, err, errlen);
        c->max_shm_bytes = n;
        return rc;
    }
    if (strcmp(k, "shm_segment_bytes") == 0) {
        rc = get_uint(v, AIPC_BROKER_MIN_SHM_SEGMENT, AIPC_BROKER_MAX_SHM_SEGMENT, &n, err,
                      errlen);
        if (rc == 0 && n % 4096u)
            rc = cfg_err(err, errlen, "config: \"shm_segment_bytes\" must be a multiple of 4096");
        c->shm_segment_bytes = (uint32_t)n;
        return rc;
    }
    if (strcmp(k, "log_level") == 0)
        return get_level(v, &c->log_level, err, errlen);
    if (strcmp(k, "log_file") == 0)
        return get_str(v, c->log_file, sizeof c->log_file, true, err, errlen);
    if (strcmp(k, "sddl") == 0)
        return get_str(v, c->sddl, sizeof c->sddl, true, err, errlen);
    if (strcmp(k, "policy") == 0) {
        rc = aipc_policy_from_cjson(v, &c->policy, err, errlen);
        return rc == AIPC_ENOMEM ? AIPC_EINVAL : rc;   /* the message says out of memory */
    }
    return cfg_err(err, errlen, "config: unknown key \"%s\"", k);
}

/* Parses over the defaults into a local copy, so *out only changes when everything is valid. */
int aipc_broker_config_load_json(aipc_broker_config *out, const char *json_text, char *err,
                                 size_t errlen)
{
    if (err && errlen)
        err[0] = 0;
    if (!out || !json_text)
        return cfg_err(err, errlen, "config: no text");
    cJSON *j = cJSON_Parse(json_text);
    if (!j) {
        const char *at = cJSON_GetErrorPtr();
        size_t off = at && at >= json_text ? (size_t)(at - json_text) : 0;
        return cfg_err(err, errlen, "config: invalid JSON near byte %" PRIu64, (uint64_t)off);
    }
    int rc = 0;
    if (!cJSON_IsObject(j)) {
        rc = cfg_err(err, errlen, "config: the top level must be a JSON object");
        goto done;
    }
    aipc_broker_config c;
    aipc_broker_config_defaults(&c);
    for (const cJSON *v = j->child; v && rc == 0; v = v->next) {
        for (const cJSON *w = j->child; w != v; w = w->next)
            if (strcmp(w->string, v->string) == 0) {
                rc = cfg_err(err, errlen, "config: duplicate key \"%s\"", v->string);
                break;
            }
        if (rc == 0)
            rc = apply(v, &c, err, errlen);
    }
    if (rc == 0 && cJSON_GetObjectItemCaseSensitive(j, "shm_threshold") &&
        c.shm_threshold > c.max_payload)
        rc = cfg_err(err, errlen, "config: \"shm_threshold\" must be between %u and "
                     "max_payload (%u)", AIPC_BROKER_MIN_SHM_THRESHOLD, c.max_payload);
    if (rc == 0)
        *out = c;
    else
        aipc_broker_config_free(&c);
done:
    cJSON_Delete(j);
    return rc;
}
