// Http1Session for raw TCP: a listener whose protocol is TCP relays every connection to its
// cluster, and one whose protocol is DETECT relays connections that do not start with an HTTP/1
// request line (or stay silent for the detection timeout, as clients of server-first protocols
// such as MySQL or SMTP do). The upstream is picked, limited by the max_connections breaker,
// connected (mTLS to mesh peers, as for HTTP) and then bytes flow both ways through Relay
// (tunnel.cc) until both sides have finished. Each relayed connection is counted
// with the Istio labels requests have (outrigger_tcp_relays_total, bytes both ways; the caller
// from its certificate inbound) and logged as one access-log line whose protocol
// is "TCP". During a drain relays run on until they end or the drain timeout cuts them.
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "absl/strings/string_view.h"
#include "proxy/server/http1_session.h"
#include "proxy/server/message_heads.h"
#include "proxy/server/request_record.h"
#include "xds/common/log.h"

namespace outrigger::proxy {

namespace asio = boost::asio;
using asio::ip::tcp;
using boost::system::error_code;
using namespace asio::experimental::awaitable_operators;

namespace {

constexpr auto kTuple = asio::as_tuple(asio::use_awaitable);
constexpr size_t kDetectReadSize = 16 * 1024;

// A timer that cancels the client's pending operation when it fires; `fired` outlives the
// coroutine frame (the handler may run after the frame is gone when the timer is cancelled).
struct Watchdog {
  std::shared_ptr<bool> fired = std::make_shared<bool>(false);
  asio::steady_timer timer;
  Watchdog(const asio::any_io_executor& ex, absl::Duration d, Transport& client)
      : timer(ex, absl::ToChronoNanoseconds(d)) {
    timer.async_wait([fired = fired, &client](error_code ec) {
      if (ec) return;
      *fired = true;
      client.Cancel();
    });
  }
  ~Watchdog() { timer.cancel(); }
};

}  // namespace

asio::awaitable<bool> Http1Session::ClientSpeaksWithin(absl::Duration timeout) {
  Watchdog dog(client_.socket().get_executor(), timeout, client_);
  auto [ec] = co_await client_.socket().async_wait(tcp::socket::wait_read, kTuple);
  co_return !ec && !*dog.fired;
}

asio::awaitable<error_code> Http1Session::ReadClientFor(absl::Duration timeout, bool* timed_out) {
  Watchdog dog(client_.socket().get_executor(), timeout, client_);
  auto [ec, n] = co_await client_.ReadSome(in_.prepare(kDetectReadSize));
  *timed_out = *dog.fired;
  if (!ec) in_.commit(n);
  co_return ec;
}

asio::awaitable<bool> Http1Session::DetectHttp() {
  const ListenerConfig* l = worker_.snapshot()->FindListener(listener_name_);
  const auto deadline = std::chrono::steady_clock::now() +
                        absl::ToChronoNanoseconds(l ? l->detection_timeout : absl::Seconds(0));
  for (;;) {
    switch (http::SniffRequestLine(BufferView(in_))) {
      case http::Sniff::kHttp: co_return true;
      case http::Sniff::kNotHttp: co_return false;
      case http::Sniff::kNeedMore: break;
    }
    const auto now = std::chrono::steady_clock::now();
    // Bytes that may still become a request line: HTTP (its own head timeout applies).
    if (now >= deadline) co_return in_.size() > 0;
    bool timed_out = false;
    const error_code ec = co_await ReadClientFor(
        absl::FromChrono(std::chrono::duration_cast<std::chrono::nanoseconds>(deadline - now)),
        &timed_out);
    if (timed_out) co_return in_.size() > 0;  // silent: a server-first protocol
    if (ec) co_return in_.size() > 0;         // gone; HTTP's reader will see it close
  }
}

asio::awaitable<void> Http1Session::ProxyTcp() {
  snapshot_ = worker_.snapshot();
  listener_ = snapshot_->FindListener(listener_name_);
  if (listener_ == nullptr) co_return;
  start_ = std::chrono::steady_clock::now();
  start_time_ = absl::Now();
  flags_ = 0;
  status_ = 0;
  bytes_received_ = bytes_sent_ = 0;
  cluster_name_ = listener_->cluster;
  stream_idle_timeout_ = listener_->http.stream_idle_timeout;
  // The relay's series (Istio's labels, as for requests), once the upstream is known: counted
  // as relayed then, its bytes at the end.
  TcpSeries* series = nullptr;
  auto open_series = [this, &series] {
    std::string workload, version;
    if (inbound_) CallerLabels(peer_identity_, http::HeaderMap(), &workload, &version);
    ListenerStats::LabelView labels =
        PeerLabels(worker_, inbound_, cluster_name_, nullptr, host_.get(), workload, version,
                   peer_identity_);
    labels.response_flags = flags_;
    series = &listener_stats_->TcpSeriesFor(labels, &worker_.key_scratch());
    ++series->relays;
  };
  auto finish = [this, &series, &open_series] {
    if (series == nullptr) open_series();
    series->received_bytes += bytes_received_;
    series->sent_bytes += bytes_sent_;
    if (flags_ & (kNoHealthyUpstream | kUpstreamOverflow | kUpstreamConnectFailure)) {
      ++listener_stats_->tcp_relay_failures;
    }
    if (upstream_failed_) flags_ |= kUpstreamTermination;
    if (client_failed_) flags_ |= kDownstreamTermination;
    if (fired_ == Fired::kStreamIdle) flags_ |= kStreamIdleTimeout;
    if (worker_.ShouldLog(flags_ ? 503 : 0, flags_)) {
      RequestInfo info;
      info.start_time = start_time_;
      info.listener = listener_name_;
      info.version = 0;
      info.flags = flags_;
      info.cluster = cluster_name_;
      if (host_) info.upstream_host = host_->address_text;
      info.duration_ms =
          std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start_)
              .count();
      info.bytes_received = bytes_received_;
      info.bytes_sent = bytes_sent_;
      info.source_identity = peer_identity_;
      info.forwarded_for = client_ip_;
      worker_.LogRequest(info);
    }
    host_.reset();
  };

  ClusterState* cluster = worker_.clusters().Find(cluster_name_);
  if (cluster == nullptr || cluster->empty()) {
    flags_ |= kNoHealthyUpstream;
    LogDebug("raw TCP on ", listener_name_, ": no healthy upstream in ", cluster_name_);
    finish();
    co_return;
  }
  cstats_ = &cluster->stats();
  outlier_detection_ = cluster->config().outlier.has_value();
  if (cstats_->cx_active >= static_cast<int64_t>(cluster->limits().max_connections)) {
    ++cstats_->rq_overflow;
    flags_ |= kUpstreamOverflow;
    finish();
    co_return;
  }
  // A connect failure is tried once more on another host (nothing was sent yet).
  std::shared_ptr<HostPool> failed;
  for (int attempt = 0; attempt < 2 && !upstream_; ++attempt) {
    cluster = worker_.clusters().Find(cluster_name_);  // (the connect may have crossed a push)
    if (cluster == nullptr || cluster->empty()) break;
    lb::PickContext pick{.random = worker_.Random(), .avoid = failed.get(),
                         .now_ns = ToNanos(std::chrono::steady_clock::now())};
    host_ = cluster->Pick(pick);
    if (!host_) break;
    upstream_ = co_await Connect();
    if (!upstream_) {
      RecordTry(Outcome::kConnectFailure);  // outlier detection
      failed = host_;
    }
  }
  if (!upstream_) {
    flags_ |= host_ ? kUpstreamConnectFailure : kNoHealthyUpstream;
    finish();
    co_return;
  }
  open_series();
  SetPhase(Phase::kStreaming, stream_idle_timeout_);
  if (in_.size() > 0) {  // what detection (or the client) already sent
    auto [ec, n] = co_await upstream_->stream.Write(in_.data());
    if (ec) {
      upstream_failed_ = true;
      upstream_.reset();
      finish();
      co_return;
    }
    bytes_received_ += n;
    in_.consume(n);
  }
  co_await (Relay(true) && Relay(false));
  upstream_.reset();
  finish();
}

}  // namespace outrigger::proxy
