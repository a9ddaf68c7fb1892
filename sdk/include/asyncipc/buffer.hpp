/*
 * buffer.hpp - asyncipc::Buffer, the owner of one zero-copy buffer (aipc_buf) of a pipe
 * (asyncipc.hpp: Alloc, SendBuf, SetRecvRef) or of a bus client (bus.hpp: BusClient::alloc,
 * publishBuf, sendBuf, onMessageBuf, onDirectBuf). Included by both; header-only, C++11.
 */
#ifndef ASYNCIPC_BUFFER_HPP
#define ASYNCIPC_BUFFER_HPP

#if !defined(ASYNCIPC_ASYNCIPC_H) && !defined(ASYNCIPC_NO_CLASSIC_C_NAMES)
/* asyncipc.hpp defines the classic names as C++ classes: keep the C typedefs out of its way */
#define ASYNCIPC_NO_CLASSIC_C_NAMES 1
#endif
#include "asyncipc.h"

#include <cstddef>

namespace asyncipc {

/*
 * Zero-copy buffers (see "Zero-copy buffers" and "Bus zero-copy buffers" in asyncipc.h):
 * Buffer owns an aipc_buf - a pipe's or a bus client's - and releases it when destroyed unless
 * it was sent (SendBuf, BusClient::publishBuf / sendBuf) or handed over (release()).
 *     asyncipc::Buffer b;
 *     if (asyncipc::Alloc(pipe, size, b) == AIPC_OK) {
 *         render_into(b.data(), size);             // in place: a shared slot from the threshold
 *         asyncipc::SendBuf(pipe, b, size);        // b is empty after a successful send
 *     }
 * Receive: asyncipc::SetRecvRef(pipe, fn, user) before Create; wrap each received aipc_buf in
 * a Buffer (or call aipc_buf_release) when done with it, from any thread. A received buffer is
 * read-only (data() is void * for both directions: never write through it), and a shared one
 * is the sender's memory, which a misbehaving sender can still change: copy before validating.
 * Holding a buffer pins the rest of its segment's ring (asyncipc.h): hold briefly or copy.
 * Do not keep a Buffer in static storage: its destructor would release at process exit, when
 * the SDK's I/O threads are gone (the same as aipc_buf_release from a DLL_PROCESS_DETACH).
 */
class Buffer {
public:
    Buffer() = default;
    explicit Buffer(aipc_buf *b) : b_(b) {}
    ~Buffer() { aipc_buf_release(b_); }
    Buffer(Buffer &&o) noexcept : b_(o.b_) { o.b_ = nullptr; }
    Buffer &operator=(Buffer &&o) noexcept
    {
        if (this != &o) {
            aipc_buf_release(b_);
            b_ = o.b_;
            o.b_ = nullptr;
        }
        return *this;
    }
    Buffer(const Buffer &) = delete;
    Buffer &operator=(const Buffer &) = delete;
    void *data() const { return b_ ? b_->data : nullptr; }
    /* The bytes read-only: what a received buffer must be read through (review m6). */
    const void *cdata() const { return b_ ? b_->data : nullptr; }
    size_t size() const { return b_ ? b_->size : 0; }
    explicit operator bool() const { return b_ != nullptr; }
    aipc_buf *get() const { return b_; }
    /* Gives up ownership (the caller releases or sends it). */
    aipc_buf *release()
    {
        aipc_buf *b = b_;
        b_ = nullptr;
        return b;
    }

private:
    aipc_buf *b_ = nullptr;
};

} // namespace asyncipc

#endif /* ASYNCIPC_BUFFER_HPP */
