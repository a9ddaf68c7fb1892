/*
 * bus.hpp - C++ wrapper of the bus client (aipc_bus_* in asyncipc.h): asyncipc::BusClient.
 *
 * Header-only; link against asyncipc.dll like the C API. May be included before or after
 * <asyncipc/asyncipc.hpp>. Needs C++11. Payloads are asyncipc::BytesView: std::string_view
 * from C++17 on (MSVC: /std:c++17 or later), before that a small class of this header with the
 * same data()/size()/begin()/end()/empty()/[]/== members; a std::string or a string literal
 * converts to either. std::string(view.data(), view.size()) copies one in every version.
 *
 * Threads: see the threading contract below (the same as the C API). In short - every member
 * function is thread-safe and non-blocking except close() and the destructor, which wait only
 * for a handler of this client running on another thread (serving sent messages meanwhile) and
 * then run the last handlers (replies with AIPC_ECLOSED, onState(CLOSED)) on the calling
 * thread. Handlers run on the SDK's I/O thread, or on your UI thread when
 * Options::dispatcher is set (asyncipc::Dispatcher in asyncipc.hpp, or aipc_dispatcher_new).
 * Arguments (topic, peer names, data views) are valid only during the call: copy what you
 * keep. Set the handlers before connect(); they are read by the delivering thread afterwards.
 *
 * Zero-copy buffers (asyncipc.h "Bus zero-copy buffers"): alloc() / publishBuf() / sendBuf()
 * publish a frame written in place (a shared slot from the threshold on); onMessageBuf /
 * onDirectBuf handlers get each payload as an asyncipc::Buffer (buffer.hpp) they may move out
 * and keep, read-only (cdata()); it is released when its last owner lets it go, on any thread.
 *
 * Example
 *   asyncipc::BusClient bus;
 *   bus.onMessage([](const std::string &topic, const asyncipc::BusPeer &from, bool retained,
 *                    asyncipc::BytesView data) { ... });   // or std::string_view (C++17)
 *   asyncipc::BusClient::Options o;
 *   o.name = "ui";
 *   if (bus.connect(o) == 0) { bus.subscribe("sensors/#"); bus.publish("ui/started", "1"); }
 */
/*
 * Threading contract (the same text is in asyncipc.h, asyncipc.hpp, bus.hpp and docs/sdk.md)
 *
 * Where callbacks run
 *   - Default: on the SDK's I/O thread of the object's engine - one process-wide thread per
 *     engine: PIPE_ASYNC pipes and bus clients (aipc_bus_options.engine, default PIPE_ASYNC)
 *     on the APC thread, PIPE_OVERLAPPED pipes and bus clients on the completion-port thread.
 *   - With a dispatcher (aipc_pipe_set_dispatcher, aipc_bus_options.dispatcher, C++
 *     SetDispatcher / BusOptions::dispatcher): on the application's thread.
 *     AIPC_DISPATCH_WINDOW: inside the message loop of the thread that created the dispatcher
 *     (a hidden message-only window; the loop must pump: GetMessage/DispatchMessage, a dialog's
 *     or a modal loop). AIPC_DISPATCH_MANUAL: inside aipc_dispatcher_run(), on the thread that
 *     calls it, typically when aipc_dispatcher_event() is signalled.
 *   - Always: callbacks of one object run one at a time, in the order the events happened.
 *     Pointers a callback receives are valid during the call only. A callback never runs nested
 *     inside another callback of the same thread: a modal loop, a message box or an alertable
 *     wait inside a callback does not deliver further callbacks; they follow when it returns.
 *   - The bus client's final callbacks (pending requests completing with AIPC_ECLOSED,
 *     on_state(AIPC_BUS_CLOSED)) run on the thread that calls aipc_bus_close, before it returns.
 *
 * Which calls wait, and for what
 *   - Never wait: CreateInstance/aipc_pipe_new, Create/aipc_pipe_create/aipc_pipe_create_ex (a
 *     server creates its pipe instance, a client starts connecting; OnCreate/OnConnected or
 *     on_create/on_connected follow as callbacks), Send/SendData/aipc_pipe_send,
 *     aipc_pipe_set_option, and every aipc_bus_* call except aipc_bus_close.
 *   - Exit/Release/aipc_pipe_exit/aipc_pipe_free/aipc_bus_close and the C++ destructors wait
 *     only for a callback of the same object that is running at that moment on another thread:
 *     never for queued callbacks, I/O, or the I/O thread. While they wait they serve messages
 *     sent to the calling thread's windows, as COM's modal loop does (a callback blocked in
 *     SendMessage to a window of the calling thread completes). Called on the thread that runs
 *     the object's callbacks (inside a callback, or on its dispatcher's thread) they never wait.
 *   - After they return no callback of the object starts; called inside one of its callbacks,
 *     none starts after that callback returns. The I/O itself (cancel, close the handle) is
 *     finished by the I/O thread afterwards; the SDK keeps its buffers alive until then.
 *   - Still a deadlock: a callback running on the I/O thread that waits for the thread calling
 *     Exit/close by other means than a sent message (an event that thread sets, a message
 *     posted to it, a COM call into its apartment). Code like that belongs on a dispatcher:
 *     its callbacks then run on that thread itself, and Exit/close there never waits.
 *   - At process exit, when the thread running a callback is already gone (a static destructor
 *     in a DLL, an atexit handler after ExitProcess), they return without waiting.
 */
#ifndef ASYNCIPC_BUS_HPP
#define ASYNCIPC_BUS_HPP

#if !defined(ASYNCIPC_ASYNCIPC_H) && !defined(ASYNCIPC_NO_CLASSIC_C_NAMES)
/* asyncipc.hpp defines the classic names as C++ classes: keep the C typedefs out of its way */
#define ASYNCIPC_NO_CLASSIC_C_NAMES 1
#endif
#include "asyncipc.h"
#include "buffer.hpp"

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <functional>
#include <memory>
#include <string>

#if !defined(ASYNCIPC_HAS_STRING_VIEW)
#  if __cplusplus >= 201703L || (defined(_MSVC_LANG) && _MSVC_LANG >= 201703L)
#    define ASYNCIPC_HAS_STRING_VIEW 1
#  else
#    define ASYNCIPC_HAS_STRING_VIEW 0
#  endif
#endif
#if ASYNCIPC_HAS_STRING_VIEW
#include <string_view>
#endif

namespace asyncipc {

#if ASYNCIPC_HAS_STRING_VIEW
/* A payload: a view of bytes, valid during the call that receives it. */
using BytesView = std::string_view;
#else
/* C++11/14: a read-only view of bytes, the part of std::string_view this API needs.
 * Valid only as long as what it views (during the call that receives it). */
class BytesView {
public:
    BytesView() noexcept : p_(nullptr), n_(0) {}
    BytesView(const char *p, std::size_t n) noexcept : p_(p), n_(n) {}
    BytesView(const char *s) noexcept : p_(s), n_(s ? std::strlen(s) : 0) {}
    BytesView(const std::string &s) noexcept : p_(s.data()), n_(s.size()) {}
    const char *data() const noexcept { return p_; }
    std::size_t size() const noexcept { return n_; }
    std::size_t length() const noexcept { return n_; }
    bool empty() const noexcept { return n_ == 0; }
    const char *begin() const noexcept { return p_; }
    const char *end() const noexcept { return p_ + n_; }
    char operator[](std::size_t i) const noexcept { return p_[i]; }
    explicit operator std::string() const { return std::string(p_, n_); }

private:
    const char *p_;
    std::size_t n_;
};
inline bool operator==(BytesView a, BytesView b) noexcept
{
    return a.size() == b.size() && (a.size() == 0 || std::memcmp(a.data(), b.data(), a.size()) == 0);
}
inline bool operator!=(BytesView a, BytesView b) noexcept { return !(a == b); }
#endif

/* A client as stamped by the broker (copied out of aipc_bus_peer). */
struct BusPeer {
    uint64_t id = 0;
    std::string name;
    uint32_t pid = 0;
    std::string userSid;      /* the identity the broker learnt at connect (see aipc_bus_peer) */
    uint32_t session = 0;
    uint32_t integrity = 0;

    static BusPeer from(const aipc_bus_peer *p)
    {
        BusPeer r;
        if (p) {
            r.id = p->id;
            r.name = p->name ? p->name : "";
            r.pid = p->pid;
            r.userSid = p->user_sid ? p->user_sid : "";
            r.session = p->session;
            r.integrity = p->integrity;
        }
        return r;
    }
};

/* Connection options (see aipc_bus_options for each field's meaning). */
struct BusOptions {
    std::wstring pipe;                 /* empty = AIPC_DEFAULT_BROKER_PIPE */
    std::string name;                  /* empty = anonymous */
    bool reconnect = true;
    uint32_t backoffMinMs = AIPC_BUS_DEFAULT_BACKOFF_MIN_MS;
    uint32_t backoffMaxMs = AIPC_BUS_DEFAULT_BACKOFF_MAX_MS;
    uint64_t maxQueueBytes = AIPC_BUS_DEFAULT_MAX_QUEUE_BYTES;
    uint32_t connectTimeoutMs = AIPC_BUS_DEFAULT_CONNECT_TIMEOUT_MS;
    aipc_dispatcher *dispatcher = nullptr;  /* handlers on this dispatcher's thread */
    uint64_t maxDispatchBytes = 0;          /* 0 = AIPC_DEFAULT_MAX_DISPATCH */
    std::string serverOwners;               /* empty = AIPC_BUS_DEFAULT_SERVER_OWNERS */
    PipeImplType engine = PIPE_ASYNC;       /* I/O thread: PIPE_ASYNC (APC) or PIPE_OVERLAPPED */
    uint32_t shm = AIPC_SHM_AUTO;           /* shared memory with the broker, or AIPC_SHM_OFF */
    uint32_t shmThreshold = 0;              /* 0 = AIPC_DEFAULT_SHM_THRESHOLD */
};

/*
 * A bus client. close() from inside one of its handlers runs the last handlers (pending
 * replies with AIPC_ECLOSED, onState(CLOSED)) nested in that call; no handler runs after it.
 * Do not call connect() again from inside a handler.
 */
class BusClient {
public:
    using Options = BusOptions;

    using MessageHandler = std::function<void(const std::string &topic, const BusPeer &from,
                                              bool retained, BytesView data)>;
    using DirectHandler = std::function<void(const BusPeer &from, BytesView data)>;
    /* Answer with reply(from.id, reqId, ...) now or later, from any thread. */
    using RequestHandler = std::function<void(const BusPeer &from, uint64_t reqId,
                                              BytesView data)>;
    using PresenceHandler = std::function<void(bool joined, const BusPeer &who)>;
    using StateHandler = std::function<void(aipc_bus_state state, int error)>;
    using DroppedHandler = std::function<void(uint64_t count)>;
    using ErrorHandler = std::function<void(int error, const std::string &code,
                                            const std::string &message)>;
    /* Zero-copy receive (set, they replace onMessage / onDirect): buf owns the payload, the
     * broker's shared slot or a heap copy; move it out to keep it (read it through cdata()). */
    using MessageBufHandler = std::function<void(const std::string &topic, const BusPeer &from,
                                                 bool retained, Buffer buf)>;
    using DirectBufHandler = std::function<void(const BusPeer &from, Buffer buf)>;
    /* status 0: data is the answer; otherwise an AIPC_E* code (see aipc_bus_reply_fn). */
    using ReplyHandler = std::function<void(int status, const BusPeer &from, BytesView data)>;

    BusClient() = default;
    ~BusClient() { close(); }
    BusClient(const BusClient &) = delete;
    BusClient &operator=(const BusClient &) = delete;

    void onMessage(MessageHandler h) { message_ = std::move(h); }
    void onDirect(DirectHandler h) { direct_ = std::move(h); }
    void onRequest(RequestHandler h) { request_ = std::move(h); }
    void onPresence(PresenceHandler h) { presence_ = std::move(h); }
    void onState(StateHandler h) { state_ = std::move(h); }
    void onDropped(DroppedHandler h) { dropped_ = std::move(h); }
    void onError(ErrorHandler h) { error_ = std::move(h); }
    void onMessageBuf(MessageBufHandler h) { messageBuf_ = std::move(h); }
    void onDirectBuf(DirectBufHandler h) { directBuf_ = std::move(h); }

    /* Starts connecting (aipc_bus_connect). 0 or AIPC_E*; AIPC_ESTATE if already connected. */
    int connect(const Options &opt = Options())
    {
        if (bus_)
            return AIPC_ESTATE;
        aipc_bus_options o;
        aipc_bus_options_init(&o);
        o.pipe_name = opt.pipe.empty() ? nullptr : opt.pipe.c_str();
        o.name = opt.name.empty() ? nullptr : opt.name.c_str();
        o.user = this;
        o.reconnect = opt.reconnect ? 1 : 0;
        o.backoff_min_ms = opt.backoffMinMs;
        o.backoff_max_ms = opt.backoffMaxMs;
        o.max_queue_bytes = opt.maxQueueBytes;
        o.connect_timeout_ms = opt.connectTimeoutMs;
        o.dispatcher = opt.dispatcher;
        o.max_dispatch_bytes = opt.maxDispatchBytes;
        o.server_owners = opt.serverOwners.empty() ? nullptr : opt.serverOwners.c_str();
        o.engine = opt.engine;
        o.shm = opt.shm;
        o.shm_threshold = opt.shmThreshold;
        o.on_message = message_ ? &BusClient::tMessage : nullptr;
        o.on_direct = direct_ ? &BusClient::tDirect : nullptr;
        o.on_request = request_ ? &BusClient::tRequest : nullptr;
        o.on_presence = presence_ ? &BusClient::tPresence : nullptr;
        o.on_state = &BusClient::tState;
        o.on_dropped = dropped_ ? &BusClient::tDropped : nullptr;
        o.on_error = error_ ? &BusClient::tError : nullptr;
        o.on_message_buf = messageBuf_ ? &BusClient::tMessageBuf : nullptr;
        o.on_direct_buf = directBuf_ ? &BusClient::tDirectBuf : nullptr;
        return aipc_bus_connect(&o, &bus_);
    }

    int subscribe(const std::string &filter) { return bus_ ? aipc_bus_subscribe(bus_, filter.c_str()) : AIPC_ECLOSED; }
    int unsubscribe(const std::string &filter) { return bus_ ? aipc_bus_unsubscribe(bus_, filter.c_str()) : AIPC_ECLOSED; }
    int publish(const std::string &topic, BytesView data, bool retain = false)
    {
        return bus_ ? aipc_bus_publish(bus_, topic.c_str(), data.data(), data.size(), retain) : AIPC_ECLOSED;
    }
    int send(const std::string &to, BytesView data)
    {
        return bus_ ? aipc_bus_send(bus_, to.c_str(), data.data(), data.size()) : AIPC_ECLOSED;
    }
    /* Returns the request id (> 0) or AIPC_E*; `cb` runs exactly once when the id is > 0. */
    int64_t request(const std::string &to, BytesView data, uint32_t timeoutMs, ReplyHandler cb)
    {
        if (!bus_)
            return AIPC_ECLOSED;
        auto *h = new ReplyHandler(std::move(cb));
        int64_t id = aipc_bus_request(bus_, to.c_str(), data.data(), data.size(), timeoutMs,
                                      &BusClient::tReply, h);
        if (id < 0)
            delete h;
        return id;
    }
    int reply(uint64_t toId, uint64_t reqId, BytesView data)
    {
        return bus_ ? aipc_bus_reply(bus_, toId, reqId, data.data(), data.size()) : AIPC_ECLOSED;
    }
    /* aipc_bus_alloc: on success `out` holds the new buffer (its previous one is released). */
    int alloc(size_t size, Buffer &out)
    {
        aipc_buf *b = nullptr;
        int rc = bus_ ? aipc_bus_alloc(bus_, size, &b) : AIPC_ECLOSED;
        if (rc == AIPC_OK)
            out = Buffer(b);
        return rc;
    }
    /* aipc_bus_publish_buf / aipc_bus_send_buf: on success `buf` is empty (the SDK's); on an
     * error it still holds the buffer. */
    int publishBuf(const std::string &topic, Buffer &buf, size_t len)
    {
        int rc = bus_ ? aipc_bus_publish_buf(bus_, topic.c_str(), buf.get(), len) : AIPC_ECLOSED;
        if (rc == AIPC_OK)
            buf.release();
        return rc;
    }
    int sendBuf(const std::string &to, Buffer &buf, size_t len)
    {
        int rc = bus_ ? aipc_bus_send_buf(bus_, to.c_str(), buf.get(), len) : AIPC_ECLOSED;
        if (rc == AIPC_OK)
            buf.release();
        return rc;
    }
    int64_t ping(uint32_t timeoutMs, ReplyHandler cb) { return call(&aipc_bus_ping, timeoutMs, std::move(cb)); }
    /* cb's data is the broker's counters as a JSON object. */
    int64_t stats(uint32_t timeoutMs, ReplyHandler cb) { return call(&aipc_bus_stats, timeoutMs, std::move(cb)); }

    aipc_bus_state state() const { return bus_ ? aipc_bus_get_state(bus_) : AIPC_BUS_CLOSED; }
    uint64_t id() const { return bus_ ? aipc_bus_client_id(bus_) : 0; }
    /* Shared-memory counters (aipc_bus_get_counters); all zero when not connected. */
    aipc_bus_counters counters() const
    {
        aipc_bus_counters c = {};
        c.size = sizeof c;
        if (bus_)
            aipc_bus_get_counters(bus_, &c);
        return c;
    }
    aipc_bus *handle() const { return bus_; }

    /* aipc_bus_close; the object may connect() again afterwards (not from inside a handler). */
    void close()
    {
        aipc_bus *b = bus_;
        bus_ = nullptr;
        if (b)
            aipc_bus_close(b);
    }

private:
    using CallFn = int64_t (*)(aipc_bus *, uint32_t, aipc_bus_reply_fn, void *);
    int64_t call(CallFn fn, uint32_t timeoutMs, ReplyHandler cb)
    {
        if (!bus_)
            return AIPC_ECLOSED;
        auto *h = new ReplyHandler(std::move(cb));
        int64_t id = fn(bus_, timeoutMs, &BusClient::tReply, h);
        if (id < 0)
            delete h;
        return id;
    }

    static BusClient *self(void *u) { return static_cast<BusClient *>(u); }
    static void tMessage(aipc_bus *, void *u, const char *topic, const aipc_bus_peer *from,
                         bool retained, const void *data, size_t len)
    {
        self(u)->message_(topic, BusPeer::from(from), retained,
                          BytesView(static_cast<const char *>(data), len));
    }
    static void tDirect(aipc_bus *, void *u, const aipc_bus_peer *from, const void *data, size_t len)
    {
        self(u)->direct_(BusPeer::from(from), BytesView(static_cast<const char *>(data), len));
    }
    static void tRequest(aipc_bus *, void *u, const aipc_bus_peer *from, uint64_t req,
                         const void *data, size_t len)
    {
        self(u)->request_(BusPeer::from(from), req,
                          BytesView(static_cast<const char *>(data), len));
    }
    static void tPresence(aipc_bus *, void *u, bool joined, const aipc_bus_peer *who)
    {
        self(u)->presence_(joined, BusPeer::from(who));
    }
    static void tState(aipc_bus *, void *u, aipc_bus_state st, int err)
    {
        if (self(u)->state_)
            self(u)->state_(st, err);
    }
    static void tDropped(aipc_bus *, void *u, uint64_t n) { self(u)->dropped_(n); }
    static void tError(aipc_bus *, void *u, int err, const char *code, const char *msg)
    {
        self(u)->error_(err, code ? code : "", msg ? msg : "");
    }
    /* The buffer is owned by a Buffer before the handler runs: released however it ends. An
     * exception does not unwind into the SDK's C frames: it is logged and dropped. */
    static void tMessageBuf(aipc_bus *, void *u, const char *topic, const aipc_bus_peer *from,
                            bool retained, aipc_buf *buf) noexcept
    {
        Buffer b(buf);
        try {
            self(u)->messageBuf_(topic, BusPeer::from(from), retained, std::move(b));
        } catch (...) {
            aipc_log(AIPC_LOG_ERROR, "bus.hpp: an exception escaped the onMessageBuf handler");
        }
    }
    static void tDirectBuf(aipc_bus *, void *u, const aipc_bus_peer *from, aipc_buf *buf) noexcept
    {
        Buffer b(buf);
        try {
            self(u)->directBuf_(BusPeer::from(from), std::move(b));
        } catch (...) {
            aipc_log(AIPC_LOG_ERROR, "bus.hpp: an exception escaped the onDirectBuf handler");
        }
    }
    static void tReply(aipc_bus *, void *u, int status, const aipc_bus_peer *from,
                       const void *data, size_t len)
    {
        std::unique_ptr<ReplyHandler> h(static_cast<ReplyHandler *>(u));
        if (*h)
            (*h)(status, BusPeer::from(from), BytesView(static_cast<const char *>(data), len));
    }

    aipc_bus *bus_ = nullptr;
    MessageHandler message_;
    DirectHandler direct_;
    RequestHandler request_;
    PresenceHandler presence_;
    StateHandler state_;
    DroppedHandler dropped_;
    ErrorHandler error_;
    MessageBufHandler messageBuf_;
    DirectBufHandler directBuf_;
};

} // namespace asyncipc

#endif
