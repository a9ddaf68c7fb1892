/* bus_meta.c - bus meta JSON building/parsing; validation and topic matching through proto/
 * (portable). */
#include "bus_core.h"

#include "proto/names.h"
#include "proto/topic.h"

#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

/* The protocol's rules (proto/) on C strings: the broker applies the same functions. */
int aipc__bus_name_valid(const char *name)
{
    return name && aipc_proto_name_valid(name, strlen(name));
}

int aipc__bus_topic_valid(const char *topic)
{
    return topic && aipc_proto_topic_valid(topic, strlen(topic));
}

int aipc__bus_filter_valid(const char *filter)
{
    return filter && aipc_proto_filter_valid(filter, strlen(filter));
}

int aipc__bus_topic_match(const char *filter, const char *topic)
{
    return filter && topic && aipc_proto_topic_match(filter, strlen(filter), topic, strlen(topic));
}

int aipc__bus_to_is_id(const char *to, uint64_t *id)
{
    if (!to || !to[0])
        return 0;
    uint64_t v = 0;
    size_t n = 0;
    for (const char *p = to; *p; p++, n++) {
        if (*p < '0' || *p > '9' || n >= 20)
            return 0;
        uint64_t d = (uint64_t)(*p - '0');
        if (v > (UINT64_MAX - d) / 10)
            return 0;
        v = v * 10 + d;
    }
    if (id)
        *id = v;
    return 1;
}

/* Adds a u64 as a JSON number (exact up to 2^53, which ids never exceed in practice). */
static int add_u64(cJSON *o, const char *key, uint64_t v)
{
    return cJSON_AddNumberToObject(o, key, (double)v) != NULL;
}

char *aipc__bus_meta_build(const aipc__bus_out *o, size_t *len)
{
    if (!o || !o->op)
        return NULL;
    cJSON *j = cJSON_CreateObject();
    if (!j)
        return NULL;
    int ok = cJSON_AddStringToObject(j, "op", o->op) != NULL;
    if (ok && strcmp(o->op, "hello") == 0) {
        ok = add_u64(j, "proto", AIPC_PROTO_VERSION);
        if (ok && o->name)
            ok = cJSON_AddStringToObject(j, "name", o->name) != NULL;
    }
    if (ok && o->topic)
        ok = cJSON_AddStringToObject(j, "topic", o->topic) != NULL;
    if (ok && o->to) {
        uint64_t id;
        if (aipc__bus_to_is_id(o->to, &id))
            ok = add_u64(j, "to", id);
        else
            ok = cJSON_AddStringToObject(j, "to", o->to) != NULL;
    } else if (ok && o->to_id) {
        ok = add_u64(j, "to", o->to_id);
    }
    if (ok && o->id)
        ok = add_u64(j, "id", o->id);
    if (ok && o->re)
        ok = add_u64(j, "re", o->re);
    if (ok && o->retain)
        ok = cJSON_AddTrueToObject(j, "retain") != NULL;
    if (ok && o->shm && strcmp(o->op, "hello") == 0) {
        cJSON *shm = cJSON_AddObjectToObject(j, "shm");
        ok = shm && add_u64(shm, "v", 1);
    }
    char *s = ok ? cJSON_PrintUnformatted(j) : NULL;
    cJSON_Delete(j);
    if (s && len)
        *len = strlen(s);
    return s;
}

/* Reads a non-negative integral number member; 1 if present and valid. */
static int get_u64(const cJSON *o, const char *key, uint64_t *out)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!cJSON_IsNumber(v) || v->valuedouble < 0 || v->valuedouble > 18446744073709549568.0)
        return 0;
    *out = (uint64_t)v->valuedouble;
    return 1;
}

/* A string member or "" when absent/not a string. */
static const char *get_str(const cJSON *o, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return (cJSON_IsString(v) && v->valuestring) ? v->valuestring : "";
}

static const struct { const char *text; aipc__bus_in_op op; } op_names[] = {
    {"welcome", AIPC_BUS_IN_WELCOME}, {"ok", AIPC_BUS_IN_OK}, {"error", AIPC_BUS_IN_ERROR},
    {"msg", AIPC_BUS_IN_MSG}, {"direct", AIPC_BUS_IN_DIRECT}, {"req", AIPC_BUS_IN_REQ},
    {"rep", AIPC_BUS_IN_REP}, {"pong", AIPC_BUS_IN_PONG}, {"stats", AIPC_BUS_IN_STATS},
    {"dropped", AIPC_BUS_IN_DROPPED}, {"bye", AIPC_BUS_IN_BYE},
    {"shm_seg", AIPC_BUS_IN_SHM}, {"shm_done", AIPC_BUS_IN_SHM}, {"shm_unseg", AIPC_BUS_IN_SHM},
};

/* A u32 JSON number (integral). */
static int u32_of(const cJSON *v, uint32_t *out)
{
    if (!cJSON_IsNumber(v) || v->valuedouble < 0 || v->valuedouble > 4294967295.0 ||
        v->valuedouble != (double)(uint32_t)v->valuedouble)
        return 0;
    *out = (uint32_t)v->valuedouble;
    return 1;
}

/* The "shm" member: a descriptor [seg,off,len] (has_shm 1, or -1 when malformed) or, in a
 * welcome, {"v":N} (shm_v) with "rel":N when the broker accepts a release page (shm_rel). */
static void get_shm(const cJSON *root, aipc__bus_in *in)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, "shm");
    if (!v)
        return;
    if (cJSON_IsObject(v)) {
        uint32_t ver = 0;
        if (u32_of(cJSON_GetObjectItemCaseSensitive(v, "v"), &ver))
            in->shm_v = ver;
        if (u32_of(cJSON_GetObjectItemCaseSensitive(v, "rel"), &ver))
            in->shm_rel = ver;
        return;
    }
    in->has_shm = -1;
    if (cJSON_GetArraySize(v) != 3 || !cJSON_IsArray(v))
        return;
    for (int i = 0; i < 3; i++)
        if (!u32_of(cJSON_GetArrayItem(v, i), &in->shm[i]))
            return;
    in->has_shm = 1;
}

/* Fills a peer from a {"id","name","pid","sid","session","integrity"} object; 1 if it had a
 * usable id. */
static int get_peer(const cJSON *o, aipc_bus_peer *p)
{
    uint64_t v = 0;
    memset(p, 0, sizeof *p);
    p->name = "";
    p->user_sid = "";
    if (!cJSON_IsObject(o))
        return 0;
    int has = get_u64(o, "id", &p->id);
    if (get_u64(o, "pid", &v) && v <= UINT32_MAX)
        p->pid = (uint32_t)v;
    if (get_u64(o, "session", &v) && v <= UINT32_MAX)
        p->session = (uint32_t)v;
    if (get_u64(o, "integrity", &v) && v <= UINT32_MAX)
        p->integrity = (uint32_t)v;
    p->name = get_str(o, "name");
    p->user_sid = get_str(o, "sid");
    return has;
}

int aipc__bus_meta_parse(const uint8_t *meta, size_t len, aipc__bus_in *in)
{
    memset(in, 0, sizeof *in);
    if (!meta || len == 0)
        return AIPC_EPROTO;
    cJSON *root = cJSON_ParseWithLength((const char *)meta, len);
    if (!cJSON_IsObject(root)) {
        cJSON_Delete(root);
        return AIPC_EPROTO;
    }
    const cJSON *op = cJSON_GetObjectItemCaseSensitive(root, "op");
    if (!cJSON_IsString(op) || !op->valuestring) {
        cJSON_Delete(root);
        return AIPC_EPROTO;
    }
    in->root_ = root;
    in->op_text = op->valuestring;
    in->op = AIPC_BUS_IN_UNKNOWN;
    for (size_t i = 0; i < sizeof op_names / sizeof op_names[0]; i++)
        if (strcmp(op_names[i].text, op->valuestring) == 0)
            in->op = op_names[i].op;
    in->topic = get_str(root, "topic");
    in->has_from = get_peer(cJSON_GetObjectItemCaseSensitive(root, "from"), &in->from);
    in->retained = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(root, "retained"));
    in->has_id = get_u64(root, "id", &in->id);
    in->has_re = get_u64(root, "re", &in->re);
    get_u64(root, "count", &in->count);
    get_u64(root, "max_payload", &in->max_payload);
    get_u64(root, "max_queue_bytes", &in->max_queue_bytes);
    uint64_t proto = 0;
    if (get_u64(root, "proto", &proto) && proto <= UINT32_MAX)
        in->proto = (uint32_t)proto;
    in->name = get_str(root, "name");
    in->code = get_str(root, "code");
    in->message = get_str(root, "message");
    in->reason = get_str(root, "reason");
    get_shm(root, in);
    return 0;
}

void aipc__bus_in_free(aipc__bus_in *in)
{
    if (in && in->root_) {
        cJSON_Delete((cJSON *)in->root_);
        in->root_ = NULL;
    }
}

int aipc__bus_presence_parse(const uint8_t *payload, size_t len, aipc_bus_peer *who,
                            char *name_buf, size_t cap)
{
    if (!payload || len == 0 || !name_buf || cap == 0)
        return AIPC_EPROTO;
    cJSON *root = cJSON_ParseWithLength((const char *)payload, len);
    aipc_bus_peer p;
    if (!root || !get_peer(root, &p)) {
        cJSON_Delete(root);
        return AIPC_EPROTO;
    }
    size_t n = strlen(p.name);
    if (n >= cap)
        n = cap - 1;
    memcpy(name_buf, p.name, n);
    name_buf[n] = 0;
    /* the SID follows the name's NUL when there is room for it whole */
    char *sid = name_buf + n;
    size_t sl = strlen(p.user_sid);
    if (sl && n + 1 + sl + 1 <= cap) {
        sid = name_buf + n + 1;
        memcpy(sid, p.user_sid, sl + 1);
    }
    *who = p;
    who->name = name_buf;
    who->user_sid = sid;
    cJSON_Delete(root);
    return 0;
}
