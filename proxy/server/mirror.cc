// See mirror.h.
#include "proxy/server/mirror.h"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include "proxy/http/http1_codec.h"
#include "proxy/server/message_heads.h"
#include "proxy/server/worker.h"
#include "proxy/upstream/connector.h"
#include "proxy/upstream/h2_upstream.h"
#include "xds/common/log.h"

namespace outrigger::proxy {

namespace asio = boost::asio;
using boost::system::error_code;
using namespace asio::experimental::awaitable_operators;

namespace {

constexpr auto kTuple = asio::as_tuple(asio::use_awaitable);

// Sends `request` on `conn` and reads the whole answer, discarding it. True when the connection
// ended the exchange cleanly and may be pooled again.
asio::awaitable<bool> Exchange(UpstreamConnection& conn, const std::string& request,
                               bool head_request) {
  auto [wec, wn] = co_await conn.stream.Write(asio::buffer(request));
  if (wec) co_return false;
  http::ResponseHead head;
  std::string sink;
  http::BodyEncoder body;
  for (;;) {
    // Interim (1xx) answers are skipped: parse until a final one.
    head.Clear();
    body.Reset(http::Framing::kNone, &sink);
    http::ResponseParser parser(&head, &body);
    parser.set_head_limit(96 * 1024);
    if (head_request) parser.skip(true);
    for (;;) {
      if (conn.in.size() > 0) {
        error_code ec;
        const size_t used = parser.Put(BufferView(conn.in), ec);
        conn.in.consume(used);
        sink.clear();
        if (!ec && parser.is_done()) break;
        if (ec && ec != boost::beast::http::error::need_more) co_return false;
        if (!ec && used > 0) continue;
      }
      auto [ec, n] = co_await conn.stream.ReadSome(conn.in.prepare(16 * 1024));
      if (ec == asio::error::eof && parser.need_eof()) {
        co_return false;  // delimited by close: done, but not reusable
      }
      if (ec) co_return false;
      conn.in.commit(n);
    }
    if (head.status >= 100 && head.status < 200) continue;
    co_return parser.keep_alive() && !parser.need_eof();
  }
}

// A copy's place in the mirror cluster: its breaker, the picked host, the counters. No host when
// the cluster has none or its breaker is full (then the copy is counted as dropped).
struct Slot {
  ClusterStats* stats = nullptr;
  std::shared_ptr<HostPool> host;

  static Slot Take(Worker& worker, absl::string_view cluster_name) {
    Slot slot;
    ClusterState* cluster = worker.clusters().Find(cluster_name);
    if (cluster == nullptr || cluster->empty()) return slot;
    slot.stats = &cluster->stats();
    if (slot.stats->rq_active < static_cast<int64_t>(cluster->limits().max_requests)) {
      slot.host = cluster->Pick({.hash = std::nullopt, .random = worker.Random()});
    }
    if (!slot.host) {
      ++slot.stats->rq_mirror_dropped;
      return slot;
    }
    ++slot.stats->rq_active;
    ++slot.stats->rq_mirror;
    ++slot.host->active_requests;
    return slot;
  }

  void Release(bool ok, absl::string_view cluster_name) {
    --host->active_requests;
    --stats->rq_active;
    if (!ok) {
      ++stats->rq_mirror_dropped;
      LogDebug("mirror to ", cluster_name, " (", host->address_text, ") failed or timed out");
    }
  }
};

asio::awaitable<void> Mirror(Worker& worker, std::string cluster_name, std::string request,
                             bool head_request, absl::Duration timeout) {
  Slot slot = Slot::Take(worker, cluster_name);
  if (!slot.host) co_return;
  auto conn = slot.host->TakeIdle(std::chrono::steady_clock::now());
  asio::ip::tcp::socket* connecting = nullptr;
  asio::steady_timer timer(worker.io_context());
  timer.expires_after(absl::ToChronoNanoseconds(timeout));
  auto run = [&]() -> asio::awaitable<bool> {
    if (!conn) {
      conn = co_await ConnectUpstreamInTime(slot.host, worker.tls(), &connecting, cluster_name);
      if (!conn) co_return false;
    }
    co_return co_await Exchange(*conn, request, head_request);
  };
  auto result = co_await (run() || timer.async_wait(kTuple));
  const bool ok = result.index() == 0 && std::get<0>(result);
  slot.Release(ok, cluster_name);
  if (ok) HostPool::Release(std::move(conn), std::chrono::steady_clock::now());
}

// The answer to an HTTP/2 copy: read and thrown away, its data given back to the window at once.
struct Discard : H2Upstream::Owner {
  explicit Discard(const asio::any_io_executor& ex)
      : wake(ex, asio::steady_timer::time_point::max()) {}
  asio::steady_timer wake;
  H2Upstream* up = nullptr;
  int32_t id = -1;
  bool closed = false;
  uint32_t error = 0;
  void OnUpstreamHeaders(http2::Headers, bool) override {}
  void OnUpstreamData(absl::string_view data) override { up->Consume(id, data.size()); }
  void OnUpstreamTrailers(http2::Headers) override {}
  void OnUpstreamEnd() override {}
  void OnUpstreamClose(uint32_t code) override {
    closed = true;
    error = code;
    wake.cancel();
  }
};

asio::awaitable<void> MirrorH2(Worker& worker, std::string cluster_name, http2::Headers head,
                               std::string body, absl::Duration timeout) {
  Slot slot = Slot::Take(worker, cluster_name);
  if (!slot.host) co_return;
  const auto ex = worker.io_context().get_executor();
  bool timed_out = false;
  Discard answer(ex);
  asio::steady_timer deadline(ex, absl::ToChronoNanoseconds(timeout));
  deadline.async_wait([&](error_code ec) {
    if (ec) return;
    timed_out = true;
    answer.wake.cancel();
  });
  std::shared_ptr<H2Upstream> h2 = H2Upstream::Usable(*slot.host);
  if (!h2) {
    asio::ip::tcp::socket* connecting = nullptr;
    if (auto conn =
            co_await ConnectUpstreamInTime(slot.host, worker.tls(), &connecting, cluster_name)) {
      h2 = H2Upstream::Adopt(std::move(conn));
    }
  }
  if (h2 && !timed_out) {
    answer.up = h2.get();
    answer.id = h2->Open(head, body.empty(), &answer);
    if (answer.id > 0) {
      if (!body.empty()) h2->SendData(answer.id, body, true);
      while (!answer.closed && !timed_out) {
        answer.wake.expires_at(asio::steady_timer::time_point::max());
        (void)co_await answer.wake.async_wait(kTuple);
      }
      h2->Detach(answer.id);
    }
  }
  deadline.cancel();
  slot.Release(answer.closed && answer.error == 0, cluster_name);
}

}  // namespace

void SendMirror(Worker& worker, absl::string_view cluster, MirrorCopy copy,
                absl::Duration timeout) {
  if (timeout <= absl::ZeroDuration() || timeout == absl::InfiniteDuration()) {
    timeout = absl::Seconds(15);
  }
  ClusterState* c = worker.clusters().Find(cluster);
  if (c != nullptr && c->config().http2) {
    if (copy.chunked) {  // HTTP/2 has no chunked framing, and the body is not kept unframed
      ++c->stats().rq_mirror_dropped;
      return;
    }
    http2::Headers head = ToHttp2Request(copy.head, copy.method, copy.target, copy.authority,
                                         copy.te_trailers);
    asio::co_spawn(worker.io_context(),
                   MirrorH2(worker, std::string(cluster), std::move(head), std::move(copy.body),
                            timeout),
                   asio::detached);
    return;
  }
  const bool head_request = copy.method == "HEAD";
  std::string request = std::move(copy.head);
  request += copy.body;
  asio::co_spawn(worker.io_context(),
                 Mirror(worker, std::string(cluster), std::move(request), head_request, timeout),
                 asio::detached);
}

}  // namespace outrigger::proxy
