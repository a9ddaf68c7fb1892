// test_bus_cpp.cpp - asyncipc::BusClient (bus.hpp) against the real broker: pub/sub with
// wildcards and retain, direct, request/reply (now and later), request timeout, presence,
// stats, ping, and coexistence with asyncipc.hpp. Waits are condition-based and bounded.
#include <asyncipc/asyncipc.hpp>
#include <asyncipc/bus.hpp>

#include "check_main.h"

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "bus_test.h"

using asyncipc::BusClient;
using asyncipc::BusPeer;

static bt_broker g_br;
static const auto kWait = std::chrono::milliseconds(AIPC_TEST_WAIT_MS);

// Records what a BusClient's handlers saw; the test thread waits on it.
struct Rec {
    std::mutex m;
    std::condition_variable cv;
    std::vector<std::string> topics, data, directs, joinedNames;
    std::vector<bool> retained;
    std::vector<std::pair<BusPeer, uint64_t>> requests;
    int connected = 0, closed = 0;

    template <class P> bool waitFor(P pred)
    {
        std::unique_lock<std::mutex> lk(m);
        return cv.wait_for(lk, kWait, pred);
    }
    void attach(BusClient &c, bool echo)
    {
        c.onMessage([this](const std::string &t, const BusPeer &, bool r, std::string_view d) {
            std::lock_guard<std::mutex> g(m);
            topics.push_back(t);
            data.emplace_back(d);
            retained.push_back(r);
            cv.notify_all();
        });
        c.onDirect([this](const BusPeer &from, std::string_view d) {
            std::lock_guard<std::mutex> g(m);
            directs.push_back(from.name + ":" + std::string(d));
            cv.notify_all();
        });
        c.onRequest([this, &c, echo](const BusPeer &from, uint64_t id, std::string_view d) {
            if (echo)
                c.reply(from.id, id, std::string("re:") + std::string(d));
            std::lock_guard<std::mutex> g(m);
            requests.emplace_back(from, id);
            cv.notify_all();
        });
        c.onPresence([this](bool joined, const BusPeer &who) {
            std::lock_guard<std::mutex> g(m);
            if (joined)
                joinedNames.push_back(who.name);
            cv.notify_all();
        });
        c.onState([this](aipc_bus_state s, int) {
            std::lock_guard<std::mutex> g(m);
            if (s == AIPC_BUS_CONNECTED)
                connected++;
            if (s == AIPC_BUS_CLOSED)
                closed++;
            cv.notify_all();
        });
    }
};

// A reply handler result.
struct Answer {
    std::mutex m;
    std::condition_variable cv;
    bool done = false;
    int status = 1;
    std::string data, from;
    BusClient::ReplyHandler handler()
    {
        return [this](int st, const BusPeer &p, std::string_view d) {
            std::lock_guard<std::mutex> g(m);
            status = st;
            data = std::string(d);
            from = p.name;
            done = true;
            cv.notify_all();
        };
    }
    bool wait()
    {
        std::unique_lock<std::mutex> lk(m);
        return cv.wait_for(lk, kWait, [this] { return done; });
    }
};

static BusClient::Options opts(const char *name)
{
    BusClient::Options o;
    o.pipe = g_br.wpipe;
    if (name)
        o.name = name;
    o.backoffMinMs = 20;
    o.engine = aipc_test_bus_engine();
    return o;
}

static bool sync(BusClient &c)
{
    Answer a;
    return c.ping(10000, a.handler()) > 0 && a.wait() && a.status == 0;
}

START_TEST(cpp_pubsub_retain_direct)
{
    BusClient sub, pub;
    Rec rs, rp;
    rs.attach(sub, true);
    rp.attach(pub, true);
    ck_assert_int_eq(pub.connect(opts("cpp-pub")), 0);
    ck_assert(rp.waitFor([&] { return rp.connected == 1; }));
    ck_assert_int_eq(pub.publish("cpp/r/1", "retained-one", true), 0);
    ck_assert(sync(pub));
    ck_assert_int_eq(sub.connect(opts("cpp-sub")), 0);
    ck_assert(rs.waitFor([&] { return rs.connected == 1; }));
    ck_assert_int_eq(pub.connect(opts("x")), AIPC_ESTATE);
    ck_assert_int_eq(sub.subscribe("cpp/+/1"), 0);
    ck_assert(rs.waitFor([&] { return rs.data.size() == 1; }));
    ck_assert_str_eq(rs.data[0].c_str(), "retained-one");
    ck_assert(rs.retained[0]);
    ck_assert(sync(sub));
    ck_assert_int_eq(pub.publish("cpp/x/1", std::string("bin\0ary", 7)), 0);
    ck_assert_int_eq(pub.publish("cpp/x/2", "not matched"), 0);
    ck_assert_int_eq(pub.publish("cpp/y/1", "last"), 0);
    ck_assert(rs.waitFor([&] { return rs.data.size() == 3; }));
    ck_assert(rs.data[1] == std::string("bin\0ary", 7));
    ck_assert_str_eq(rs.topics[2].c_str(), "cpp/y/1");
    ck_assert(!rs.retained[2]);
    ck_assert_int_eq(pub.send("cpp-sub", "direct!"), 0);
    ck_assert(rs.waitFor([&] { return rs.directs.size() == 1; }));
    ck_assert_str_eq(rs.directs[0].c_str(), "cpp-pub:direct!");
    ck_assert_int_eq(pub.publish("cpp/r/1", "", true), 0);   // clear the retained message
    sub.close();
    pub.close();
    ck_assert_int_eq(rs.closed, 1);
    ck_assert_int_eq(sub.publish("a", "x"), AIPC_ECLOSED);
}
END_TEST

START_TEST(cpp_request_reply_timeout)
{
    BusClient svc, later, cli;
    Rec r1, r2, r3;
    r1.attach(svc, true);
    r2.attach(later, false);
    r3.attach(cli, true);
    ck_assert_int_eq(svc.connect(opts("cpp-svc")), 0);
    ck_assert_int_eq(later.connect(opts("cpp-later")), 0);
    ck_assert_int_eq(cli.connect(opts("cpp-cli")), 0);
    ck_assert(r1.waitFor([&] { return r1.connected == 1; }));
    ck_assert(r2.waitFor([&] { return r2.connected == 1; }));
    ck_assert(r3.waitFor([&] { return r3.connected == 1; }));

    Answer a;
    ck_assert_int_gt(cli.request("cpp-svc", "hello", 10000, a.handler()), 0);
    ck_assert(a.wait());
    ck_assert_int_eq(a.status, 0);
    ck_assert_str_eq(a.data.c_str(), "re:hello");
    ck_assert_str_eq(a.from.c_str(), "cpp-svc");

    Answer b;
    ck_assert_int_gt(cli.request("cpp-later", "slow", 10000, b.handler()), 0);
    ck_assert(r2.waitFor([&] { return r2.requests.size() == 1; }));
    std::pair<BusPeer, uint64_t> req;
    {
        std::lock_guard<std::mutex> g(r2.m);
        req = r2.requests[0];
    }
    ck_assert_int_eq(later.reply(req.first.id, req.second, "answered later"), 0);
    ck_assert(b.wait());
    ck_assert_int_eq(b.status, 0);
    ck_assert_str_eq(b.data.c_str(), "answered later");

    Answer c;
    ck_assert_int_gt(cli.request("cpp-later", "never", 300, c.handler()), 0);
    ck_assert(c.wait());
    ck_assert_int_eq(c.status, AIPC_ETIMEDOUT);

    Answer s;
    ck_assert_int_gt(cli.stats(5000, s.handler()), 0);
    ck_assert(s.wait());
    ck_assert_int_eq(s.status, 0);
    ck_assert(s.data.find("\"clients\"") != std::string::npos);
    ck_assert_int_eq(cli.request("bad name", "x", 100, c.handler()), AIPC_EINVAL);
}
END_TEST

START_TEST(cpp_presence)
{
    BusClient watch;
    Rec rw;
    rw.attach(watch, true);
    ck_assert_int_eq(watch.connect(opts("cpp-watch")), 0);
    ck_assert(rw.waitFor([&] { return rw.connected == 1; }));
    ck_assert(sync(watch));
    {
        BusClient other;
        ck_assert_int_eq(other.connect(opts("cpp-other")), 0);
        ck_assert(rw.waitFor([&] {
            for (auto &n : rw.joinedNames)
                if (n == "cpp-other")
                    return true;
            return false;
        }));
        ck_assert_uint_gt(watch.id(), 0);
    }   // destructor closes
    ck_assert_int_eq(watch.state(), AIPC_BUS_CONNECTED);
}
END_TEST

// Zero-copy buffers through BusClient: alloc / publishBuf / sendBuf, onMessageBuf / onDirectBuf
// keeping asyncipc::Buffer objects past the handler and releasing them on another thread.
struct BufRec {
    std::mutex m;
    std::condition_variable cv;
    std::vector<asyncipc::Buffer> kept;
    std::vector<std::string> topics;
    int directs = 0, connected = 0;
    bool keep = true;
    template <class P> bool waitFor(P pred)
    {
        std::unique_lock<std::mutex> lk(m);
        return cv.wait_for(lk, kWait, pred);
    }
};

static bool bytes_are(const asyncipc::Buffer &b, size_t n, char c)
{
    const char *p = static_cast<const char *>(b.cdata());
    if (!p || b.size() != n || p[n] != 0)
        return false;
    for (size_t i = 0; i < n; i++)
        if (p[i] != c)
            return false;
    return true;
}

START_TEST(cpp_zero_copy_buffers)
{
    BusClient sub, pub;
    BufRec r;
    Rec rp;
    rp.attach(pub, false);
    sub.onState([&r](aipc_bus_state s, int) {
        std::lock_guard<std::mutex> g(r.m);
        r.connected += s == AIPC_BUS_CONNECTED;
        r.cv.notify_all();
    });
    sub.onMessageBuf([&r](const std::string &t, const BusPeer &, bool, asyncipc::Buffer b) {
        std::lock_guard<std::mutex> g(r.m);
        r.topics.push_back(t);
        if (r.keep)
            r.kept.push_back(std::move(b));   // kept past the handler
        r.cv.notify_all();
    });
    sub.onDirectBuf([&r](const BusPeer &, asyncipc::Buffer b) {
        std::lock_guard<std::mutex> g(r.m);
        r.directs++;
        r.kept.push_back(std::move(b));
        r.cv.notify_all();
    });
    ck_assert_int_eq(sub.connect(opts("cpp-zsub")), 0);
    ck_assert_int_eq(pub.connect(opts("cpp-zpub")), 0);
    ck_assert(r.waitFor([&] { return r.connected == 1; }));
    ck_assert(rp.waitFor([&] { return rp.connected == 1; }));
    ck_assert_int_eq(sub.subscribe("cppzc/#"), 0);
    ck_assert(sync(sub));
    const size_t big = 1u << 20;
    // warm-up: until a 1 MiB publication went shared both hops (our slot, the broker's)
    r.keep = false;
    std::string copy(big, 'w');
    for (int k = 0; pub.counters().shm_sent == 0 || sub.counters().shm_recv == 0; k++) {
        ck_assert_msg(k < 20, "no shared 1 MiB publication after 20");
        ck_assert_int_eq(pub.publish("cppzc/warm", copy), 0);
        ck_assert(r.waitFor([&] { return r.topics.size() == (size_t)k + 1; }));
        ck_assert(sync(pub) && sync(sub));
    }
    {
        std::lock_guard<std::mutex> g(r.m);
        r.topics.clear();
        r.keep = true;
    }
    asyncipc::Buffer b, small;
    ck_assert_int_eq(pub.alloc(big, b), 0);
    ck_assert_uint_eq(pub.counters().buf_shm_bytes, big);   // a slot of our segment
    std::memset(b.data(), 'z', big);
    ck_assert_int_eq(pub.publishBuf("cppzc/a", b, big), 0);
    ck_assert(!b);                                         // the SDK's now
    ck_assert_int_eq(pub.alloc(100, small), 0);
    std::memset(small.data(), 's', 100);
    ck_assert_int_eq(pub.publishBuf("bad/#", small, 100), AIPC_EINVAL);
    ck_assert(small);                                      // still ours after the error
    ck_assert_int_eq(pub.sendBuf("cpp-zsub", small, 100), 0);
    ck_assert(r.waitFor([&] { return r.topics.size() == 1 && r.directs == 1; }));
    ck_assert_uint_eq(pub.counters().buf_bytes, 0);
    ck_assert_uint_eq(sub.counters().recv_buf_bytes, big + 100);
    std::vector<asyncipc::Buffer> mine;
    {
        std::lock_guard<std::mutex> g(r.m);
        mine.swap(r.kept);
    }
    ck_assert_uint_eq(mine.size(), 2);
    ck_assert(bytes_are(mine[0], big, 'z'));
    ck_assert(bytes_are(mine[1], 100, 's'));
    std::thread([&mine] { mine.clear(); }).join();         // released on another thread
    ck_assert_uint_eq(sub.counters().recv_buf_bytes, 0);
    sub.close();
    pub.close();
    ck_assert_int_eq(pub.alloc(10, b), AIPC_ECLOSED);
}
END_TEST

static Suite *suite()
{
    Suite *s = suite_create("bus_cpp");
    TCase *tc = bt_tcase_create("cpp");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, cpp_pubsub_retain_direct);
    tcase_add_test(tc, cpp_request_reply_timeout);
    tcase_add_test(tc, cpp_presence);
    tcase_add_test(tc, cpp_zero_copy_buffers);
    suite_add_tcase(s, tc);
    return s;
}

static int start_broker()
{
    return bt_broker_start(&g_br, "buscpp") != 0 ? 1 : 0;
}

static void stop_broker()
{
    bt_broker_stop(&g_br);
}

CHECK_MAIN_EX(suite, start_broker, stop_broker, 0u);
