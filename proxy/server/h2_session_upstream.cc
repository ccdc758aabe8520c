// H2Session towards a cluster whose upstream protocol is HTTP/2 (gRPC servers, h2UpgradePolicy,
// --app-protocol http2): the client's stream becomes a stream of the host's one multiplexed
// connection (h2_upstream.h); headers, data and trailers pass through with end-to-end flow control.
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "proxy/http2/grpc.h"
#include "proxy/server/h2_stream.h"
#include "proxy/server/http1_session.h"
#include "proxy/server/message_heads.h"
#include "proxy/upstream/connector.h"

namespace outrigger::proxy {

namespace asio = boost::asio;
using boost::system::error_code;

namespace {

// A grpc-status value as a metric label: a code of 0-99, else "unknown" (bounded labels).
std::string GrpcStatusLabel(absl::string_view v) {
  if (v.empty() || v.size() > 2 || !absl::ascii_isdigit(v[0]) ||
      (v.size() == 2 && !absl::ascii_isdigit(v[1]))) {
    return "unknown";
  }
  return std::string(v);
}

}  // namespace

// --------------------------------------------------------------------------------------------
// HTTP/2 upstream: the stream goes on as a stream of the host's multiplexed connection.

void H2Session::Stream::Sink::OnUpstreamHeaders(http2::Headers headers, bool end_stream) {
  Stream& s = *stream;
  if (s.gone) return;
  http2::Headers out;
  out.reserve(headers.size());
  for (auto& h : headers) {
    if (h.name == ":status") {
      s.status = std::atoi(h.value.c_str());
      out.insert(out.begin(), std::move(h));
    } else if (h.name[0] != ':' && !http::IsHopByHop(h.name, "")) {
      if (h.name == "grpc-status") s.grpc_status = GrpcStatusLabel(h.value);
      out.push_back(std::move(h));
    }
  }
  s.response_head_at = std::chrono::steady_clock::now();
  (void)session->codec_.SubmitResponse(s.id, out, end_stream);
  if (end_stream) s.response_complete = true;
  session->Flush();
  session->Wake(s);
}

void H2Session::Stream::Sink::OnUpstreamData(absl::string_view data) {
  Stream& s = *stream;
  s.up_unconsumed += data.size();
  if (s.gone) return;
  (void)session->codec_.SendData(s.id, data, false);
  s.bytes_sent += data.size();
  session->Flush();
  session->Wake(s);
}

void H2Session::Stream::Sink::OnUpstreamTrailers(http2::Headers trailers) {
  Stream& s = *stream;
  if (s.gone) return;
  http2::Headers out;
  for (auto& h : trailers) {
    if (h.name == "grpc-status") s.grpc_status = GrpcStatusLabel(h.value);
    if (h.name[0] != ':') out.push_back(std::move(h));
  }
  (void)session->codec_.SendTrailers(s.id, out);
  s.trailers_sent = true;
  s.response_complete = true;
  session->Flush();
}

void H2Session::Stream::Sink::OnUpstreamEnd() {
  Stream& s = *stream;
  if (!s.gone && !s.trailers_sent && !s.response_complete && s.status != 0) {
    (void)session->codec_.SendData(s.id, "", true);
    session->Flush();
  }
  if (s.status != 0) s.response_complete = true;
  session->Wake(s);
}

void H2Session::Stream::Sink::OnUpstreamClose(uint32_t error_code) {
  Stream& s = *stream;
  s.up_closed = true;
  s.up_error = error_code;
  if (!s.response_complete && s.status != 0 && !s.gone) {
    session->codec_.ResetStream(s.id, http2::kInternalError);  // cut mid-answer
    s.upstream_failed = true;
    session->Flush();
  }
  session->Wake(s);
}

asio::awaitable<void> H2Session::ForwardH2(Stream& s, const Admission& admission,
                                           absl::string_view target) {
  ClusterState* cluster = worker_.clusters().Find(s.cluster);
  ClusterStats& cstats = cluster->stats();
  if (cstats.rq_active >= static_cast<int64_t>(cluster->limits().max_requests)) {
    ++cstats.rq_overflow;
    LocalReply(s, 503, "upstream overflow\n", kUpstreamOverflow);
    co_return;
  }
  ++cstats.rq_active;
  struct Active {
    ClusterStats& c;
    ~Active() { --c.rq_active; }
  } active{cstats};
  s.sink.session = this;
  s.sink.stream = &s;

  // The host's multiplexed connection, else a new one; a failed connect is tried once more.
  std::shared_ptr<HostPool> failed;
  for (int attempt = 0; attempt < 2 && !s.h2up && !s.gone; ++attempt) {
    cluster = worker_.clusters().Find(s.cluster);
    if (cluster == nullptr || cluster->empty()) break;
    lb::PickContext pick{.random = worker_.Random(), .avoid = failed.get(),
                         .now_ns = ToNanos(std::chrono::steady_clock::now())};
    s.host = cluster->Pick(pick);
    if (!s.host) break;
    ++s.host->stats->rq_total;
    if (s.host->h2 && s.host->h2->usable()) {
      s.h2up = s.host->h2;
      break;
    }
    asio::steady_timer deadline(owner_.client_.socket().get_executor(),
                                absl::ToChronoNanoseconds(s.host->connect_timeout));
    deadline.async_wait([&s, alive = std::weak_ptr<bool>(alive_)](error_code ec) {
      if (ec || alive.expired() || s.connecting == nullptr) return;
      error_code ignored;
      s.connecting->cancel(ignored);
    });
    auto conn = co_await ConnectUpstream(s.host, worker_.tls(), &s.connecting, s.cluster);
    deadline.cancel();
    s.connecting = nullptr;
    if (!conn) {
      failed = s.host;
      continue;
    }
    s.h2up = std::make_shared<H2Upstream>(std::move(conn));
    s.h2up->Start();
    s.host->h2 = s.h2up;
  }
  if (!s.h2up) {
    LocalReply(s, 503, "upstream connect error\n", s.host ? kUpstreamConnectFailure
                                                          : kNoHealthyUpstream);
    co_return;
  }

  // The request head as for HTTP/1.1 (the route's header edits, the proxy's own headers), as
  // HTTP/2 fields; gRPC needs `te: trailers`, which HTTP/1.1 would drop as hop-by-hop.
  std::string text;
  s.req.version = 11;
  WriteUpstreamHead(s.req, target, false, admission.route,
                    ProxyHeaders{s.forwarded_for, s.request_id, s.trace.lines,
                                 owner_.inbound_ ? absl::string_view() : worker_.source_headers(),
                                 {}},
                    &text);
  s.req.version = 20;
  bool te_trailers = false;
  http::ForEachToken(s.req.headers.Get("te").value_or(""), [&](absl::string_view t) {
    te_trailers = te_trailers || http::EqualsIgnoreCase(t, "trailers");
  });
  const http2::Headers head =
      ToHttp2Request(text, s.req.method, target, s.req.authority, te_trailers);
  const bool no_body = s.body_end && s.body.empty();
  s.up_id = s.h2up->Open(head, no_body, &s.sink);
  if (s.up_id < 0) {
    LocalReply(s, 503, "upstream refused the stream\n", kUpstreamOverflow);
    co_return;
  }
  bool sent_end = no_body;

  // The route timeout (or the gRPC deadline) runs to the response head.
  asio::steady_timer route_timer(owner_.client_.socket().get_executor());
  const absl::Duration timeout = s.timeout;
  if (timeout > absl::ZeroDuration() && timeout != absl::InfiniteDuration()) {
    route_timer.expires_after(absl::ToChronoNanoseconds(timeout));
    route_timer.async_wait([this, &s, alive = std::weak_ptr<bool>(alive_)](error_code ec) {
      if (ec || alive.expired() || s.status != 0) return;
      s.timed_out = true;
      Wake(s);
    });
  }
  // Relay: request data up while the upstream stream takes it, response data acknowledged
  // upstream once the client's window took it. Every event wakes this loop.
  for (;;) {
    if (!s.body.empty() && s.h2up->Queued(s.up_id) < kMaxQueuedResponse && !s.up_closed) {
      const size_t n = s.body.size();
      s.h2up->SendData(s.up_id, s.body, s.body_end);
      sent_end = sent_end || s.body_end;
      s.body.clear();
      codec_.Consume(s.id, n);
      Flush();
    } else if (s.body_end && s.body.empty() && !sent_end && !s.up_closed) {
      s.h2up->SendData(s.up_id, "", true);
      sent_end = true;
    }
    if (s.up_unconsumed > 0 && codec_.Queued(s.id) < kMaxQueuedResponse && !s.up_closed) {
      s.h2up->Consume(s.up_id, s.up_unconsumed);
      s.up_unconsumed = 0;
    }
    if (s.up_closed || s.gone) break;
    if (s.timed_out && s.status == 0) break;
    co_await Wait(s.body_wake);
  }
  route_timer.cancel();
  if (!s.up_closed) s.h2up->Detach(s.up_id);
  if (s.status == 0 && !s.gone) {
    if (s.timed_out) {
      LocalReply(s, 504, "upstream request timeout\n", kUpstreamTimeout);
    } else {
      s.upstream_failed = true;
      LocalReply(s, 503, "upstream reset before headers\n", kUpstreamTermination);
    }
  }
  s.h2up.reset();
}

}  // namespace outrigger::proxy
