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
  if (s.gone || s.held) return;
  int status = 0;
  int grpc_code = -1;
  std::string grpc_status;
  http2::Headers out;
  out.reserve(headers.size());
  for (auto& h : headers) {
    if (h.name == ":status") {
      status = std::atoi(h.value.c_str());
      out.insert(out.begin(), std::move(h));
    } else if (h.name[0] != ':' && !http::IsHopByHop(h.name, "")) {
      if (h.name == "grpc-status") {
        grpc_status = GrpcStatusLabel(h.value);
        if (grpc_status != "unknown") grpc_code = std::atoi(grpc_status.c_str());
      }
      out.push_back(std::move(h));
    }
  }
  if (status >= 100 && status < 200) return;  // interim answers are dropped
  s.response_head_at = std::chrono::steady_clock::now();
  // A retriable answer (a gRPC code only counts in a trailers-only answer) is held back.
  if (session->HoldForRetry(s, status, end_stream ? grpc_code : -1)) {
    session->Wake(s);
    return;
  }
  s.status = status;
  if (!grpc_status.empty()) s.grpc_status = grpc_status;
  (void)session->codec_.SubmitResponse(s.id, out, end_stream);
  if (end_stream) s.response_complete = true;
  session->Flush();
  session->Wake(s);
}

void H2Session::Stream::Sink::OnUpstreamData(absl::string_view data) {
  Stream& s = *stream;
  if (s.gone || s.held || s.status == 0) return;  // given back to the connection by Detach
  s.up_unconsumed += data.size();
  (void)session->codec_.SendData(s.id, data, false);
  s.bytes_sent += data.size();
  session->Flush();
  session->Wake(s);
}

void H2Session::Stream::Sink::OnUpstreamTrailers(http2::Headers trailers) {
  Stream& s = *stream;
  if (s.gone || s.held || s.status == 0) return;
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
  if (s.held) return;
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
  if (!s.held && !s.response_complete && s.status != 0 && !s.gone) {
    session->codec_.ResetStream(s.id, http2::kInternalError);  // cut mid-answer
    s.upstream_failed = true;
    session->Flush();
  }
  session->Wake(s);
}

asio::awaitable<H2Session::TryEnd> H2Session::TryH2(Stream& s, const http2::Headers& head) {
  const auto ex = owner_.client_.socket().get_executor();
  s.sink.session = this;
  s.sink.stream = &s;
  // The host's multiplexed connection, else a new one.
  s.h2up = H2Upstream::Usable(*s.host);
  if (!s.h2up) {
    auto conn = co_await ConnectUpstreamInTime(s.host, worker_.tls(), &s.connecting, s.cluster);
    if (!conn) {
      s.failure = TryFailure::kConnect;
      co_return TryEnd::kFailed;
    }
    s.h2up = H2Upstream::Adopt(std::move(conn));
  }
  const bool no_body = s.body_end && s.body.empty() && s.req_trailers.empty();
  s.up_id = s.h2up->Open(head, no_body, &s.sink);
  if (s.up_id < 0) {  // the connection cannot take a stream now: nothing was sent
    s.h2up.reset();
    s.failure = TryFailure::kRefusedStream;
    co_return TryEnd::kFailed;
  }
  s.sent = true;
  s.up_unconsumed = 0;
  bool sent_end = no_body;

  // This try's deadline (per-try timeout, or the route's) to the response head.
  asio::steady_timer timer(ex);
  if (s.try_deadline != SteadyTime::max()) {
    timer.expires_at(s.try_deadline);
    timer.async_wait([this, &s, alive = std::weak_ptr<bool>(alive_)](error_code ec) {
      if (ec || alive.expired() || s.status != 0 || s.held) return;
      s.fired = s.try_deadline < s.retry.deadline() ? Stream::Fired::kPerTry
                                                    : Stream::Fired::kRoute;
      Wake(s);
    });
  }
  // Relay: request data up while the upstream stream takes it, response data acknowledged
  // upstream once the client's window took it. Every event wakes this loop.
  for (;;) {
    if (!s.up_closed && !sent_end) {
      if (!s.body.empty() && s.h2up->Queued(s.up_id) < kMaxQueuedStreamBytes) {
        const bool end = s.body_end && s.req_trailers.empty();
        s.h2up->SendData(s.up_id, s.body, end);
        sent_end = end;
        KeepForReplay(s);
        continue;  // the trailers, if any, next
      } else if (s.body_end && s.body.empty()) {
        if (s.req_trailers.empty()) {
          s.h2up->SendData(s.up_id, "", true);
        } else {
          s.h2up->SendTrailers(s.up_id, s.req_trailers);
        }
        sent_end = true;
      }
    }
    if (s.up_unconsumed > 0 && (s.up_closed || codec_.Queued(s.id) < kMaxQueuedStreamBytes)) {
      s.h2up->Consume(s.up_id, s.up_unconsumed);
      s.up_unconsumed = 0;
    }
    if (s.up_closed || s.gone || s.held) break;
    if (s.fired != Stream::Fired::kNone && s.status == 0) break;
    co_await Wait(s.body_wake);
  }
  timer.cancel();
  s.h2up->Detach(s.up_id);
  s.h2up.reset();
  if (s.held) co_return TryEnd::kHeld;
  if (s.status != 0) co_return TryEnd::kAnswered;
  if (s.fired != Stream::Fired::kNone) {
    s.failure = s.fired == Stream::Fired::kPerTry ? TryFailure::kPerTryTimeout
                                                  : TryFailure::kRouteTimeout;
  } else {
    s.failure = s.up_error == http2::kRefusedStream ? TryFailure::kRefusedStream
                                                    : TryFailure::kReset;
  }
  co_return TryEnd::kFailed;
}

}  // namespace outrigger::proxy
