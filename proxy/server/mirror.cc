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
#include "proxy/server/worker.h"
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
        auto d = conn.in.data();
        const size_t used = parser.Put(
            absl::string_view(static_cast<const char*>(d.data()), d.size()), ec);
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

asio::awaitable<void> Mirror(Worker& worker, std::string cluster_name, std::string request,
                             bool head_request, absl::Duration timeout) {
  ClusterState* cluster = worker.clusters().Find(cluster_name);
  if (cluster == nullptr || cluster->empty()) co_return;
  ClusterStats* stats = &cluster->stats();
  if (stats->rq_active >= static_cast<int64_t>(cluster->limits().max_requests)) {
    ++stats->rq_mirror_dropped;
    co_return;
  }
  std::shared_ptr<HostPool> host = cluster->Pick({.hash = std::nullopt, .random = worker.Random()});
  // Mirrors speak plaintext only (not yet mTLS): a copy for a mesh peer is dropped, counted.
  if (!host || !host->spiffe_id.empty()) {
    ++stats->rq_mirror_dropped;
    co_return;
  }
  ++stats->rq_active;
  ++stats->rq_mirror;
  ++host->active_requests;
  auto conn = host->TakeIdle(std::chrono::steady_clock::now());
  if (!conn) conn = std::make_unique<UpstreamConnection>(worker.io_context().get_executor(), host);
  asio::steady_timer timer(worker.io_context());
  timer.expires_after(absl::ToChronoNanoseconds(timeout));
  bool ok = false;
  auto run = [&]() -> asio::awaitable<bool> {
    if (!conn->stream.socket().is_open()) {
      auto [ec] = co_await conn->stream.socket().async_connect(host->endpoint, kTuple);
      if (ec) {
        ++stats->cx_connect_fail;
        co_return false;
      }
      error_code ignored;
      conn->stream.socket().set_option(asio::ip::tcp::no_delay(true), ignored);
      conn->counted = true;
      ++stats->cx_total;
      ++stats->cx_active;
    }
    co_return co_await Exchange(*conn, request, head_request);
  };
  auto result = co_await (run() || timer.async_wait(kTuple));
  if (result.index() == 0) ok = std::get<0>(result);
  --host->active_requests;
  --stats->rq_active;
  if (ok) {
    HostPool::Release(std::move(conn), std::chrono::steady_clock::now());
  } else {
    ++stats->rq_mirror_dropped;
    LogDebug("mirror to ", cluster_name, " (", host->address_text, ") failed or timed out");
  }
}

}  // namespace

void SendMirror(Worker& worker, absl::string_view cluster, std::string request, bool head_request,
                absl::Duration timeout) {
  if (timeout <= absl::ZeroDuration() || timeout == absl::InfiniteDuration()) {
    timeout = absl::Seconds(15);
  }
  asio::co_spawn(worker.io_context(),
                 Mirror(worker, std::string(cluster), std::move(request), head_request, timeout),
                 asio::detached);
}

}  // namespace outrigger::proxy
