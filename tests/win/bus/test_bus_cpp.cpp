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

static Suite *suite()
{
    Suite *s = suite_create("bus_cpp");
    TCase *tc = bt_tcase_create("cpp");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, cpp_pubsub_retain_direct);
    tcase_add_test(tc, cpp_request_reply_timeout);
    tcase_add_test(tc, cpp_presence);
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
