// H2Session towards a cluster whose upstream protocol is HTTP/1.1: one try of a stream over a
// pooled HTTP/1.1 connection (or a new one within the max_connections breaker). The head goes
// with whatever body is here, the rest follows as the client sends it (chunked unless its length
// was declared, the client's trailers in the last chunk), and the answer streams back as HEADERS,
// DATA and trailers with backpressure from the client's window. A retriable answer is held back
// (HoldForRetry) and its connection closed; a pooled connection found closed is replayed once.
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "proxy/http/http1_codec.h"
#include "proxy/server/h2_stream.h"
#include "proxy/server/http1_session.h"
#include "proxy/upstream/connector.h"

namespace outrigger::proxy {

namespace asio = boost::asio;
namespace bhttp = boost::beast::http;
using boost::system::error_code;
using namespace asio::experimental::awaitable_operators;

namespace {

constexpr auto kTuple = asio::as_tuple(asio::use_awaitable);
constexpr size_t kReadSize = 64 * 1024;
constexpr uint32_t kMaxResponseHeadBytes = 96 * 1024;

}  // namespace

asio::awaitable<H2Session::TryEnd> H2Session::TryH1(Stream& s, const std::string& head) {
  const auto ex = owner_.client_.socket().get_executor();
  s.upstream = s.host->TakeIdle(std::chrono::steady_clock::now());
  bool reused = s.upstream != nullptr;
  for (;;) {
    if (!s.upstream) {
      ClusterState* cluster = worker_.clusters().Find(s.cluster);
      if (cluster == nullptr) {
        s.failure = TryFailure::kConnect;
        co_return TryEnd::kFailed;
      }
      if (cluster->stats().cx_active >= static_cast<int64_t>(cluster->limits().max_connections)) {
        co_return TryEnd::kOverflow;
      }
      s.upstream = co_await ConnectUpstreamInTime(s.host, worker_.tls(), &s.connecting, s.cluster);
      if (!s.upstream) {
        s.failure = TryFailure::kConnect;
        co_return TryEnd::kFailed;
      }
    }
    s.sent = true;
    s.to_upstream = head;
    // This try's deadline (per-try timeout, or the route's) to the response head.
    asio::steady_timer timer(ex);
    if (s.try_deadline != SteadyTime::max()) {
      timer.expires_at(s.try_deadline);
      timer.async_wait([&s, alive = std::weak_ptr<bool>(alive_)](error_code ec) {
        if (ec || alive.expired() || s.response_head_at != SteadyTime{}) return;
        s.fired = s.try_deadline < s.retry.deadline() ? Stream::Fired::kPerTry
                                                      : Stream::Fired::kRoute;
        if (s.upstream) s.upstream->stream.Cancel();
      });
    }
    if (s.body_end && s.body.size() <= 64 * 1024) {
      // The whole (small) request is here: send it, then read the answer, in this coroutine.
      co_await SendRequestBody(s);
      if (!s.upstream_failed) co_await StreamResponse(s);
    } else {
      co_await (SendRequestBody(s) && StreamResponse(s));
    }
    timer.cancel();
    if (s.held) {
      s.upstream.reset();  // the held answer goes with its connection
      co_return TryEnd::kHeld;
    }
    if (s.status != 0) {
      if (s.upstream && s.response_complete && !s.upstream_failed && s.body_end && s.parser &&
          s.parser->keep_alive() && !s.parser->need_eof()) {
        HostPool::Release(std::move(s.upstream), std::chrono::steady_clock::now());
      }
      s.upstream.reset();
      co_return TryEnd::kAnswered;
    }
    s.upstream.reset();
    if (s.fired != Stream::Fired::kNone) {
      s.failure = s.fired == Stream::Fired::kPerTry ? TryFailure::kPerTryTimeout
                                                    : TryFailure::kRouteTimeout;
      co_return TryEnd::kFailed;
    }
    // A pooled connection the upstream had closed (nothing came back): the request goes once
    // more on a fresh connection to the same host. Not a retry.
    if (reused && !s.got_response_bytes && !s.gone && s.body_end && s.replay_ok) {
      reused = false;
      ++s.host->stats->rq_retry_stale;
      s.body.insert(0, s.replay);
      s.replay.clear();
      s.upstream_failed = false;
      continue;
    }
    s.failure = TryFailure::kReset;
    co_return TryEnd::kFailed;
  }
}

asio::awaitable<void> H2Session::SendRequestBody(Stream& s) {
  http::BodyEncoder enc;
  std::string framed;
  enc.Reset(s.req.headers.Get("content-length") ? http::Framing::kContentLength
                                                : http::Framing::kChunked,
            &framed);
  bool finished = !s.has_body;
  // The head goes first, with whatever body is already here. Conditions are checked again after
  // every write: data may arrive while a write is in progress.
  std::string out = std::move(s.to_upstream);
  for (;;) {
    if (!s.body.empty()) {
      if (s.has_body) enc.Data(s.body);
      KeepForReplay(s);
    }
    if (s.body_end && !finished) {
      http::HeaderMap trailers;
      for (const auto& t : s.req_trailers) trailers.Add(t.name, t.value);
      enc.Finish(trailers);
      finished = true;
    }
    out += framed;
    framed.clear();
    if (!out.empty()) {
      auto [ec, n] = co_await s.upstream->stream.Write(asio::buffer(out));
      out.clear();
      if (ec) {
        s.upstream_failed = true;
        s.upstream->stream.Cancel();
        co_return;
      }
      continue;
    }
    if (s.body_end || s.gone || s.held) co_return;
    co_await Wait(s.body_wake);
  }
}

asio::awaitable<bool> H2Session::ReadResponseHead(Stream& s) {
  for (;;) {
    s.resp.Clear();
    s.resp_out.clear();
    s.resp_body.Reset(http::Framing::kContentLength, &s.resp_out);  // raw bytes
    s.parser.emplace(&s.resp, &s.resp_body);
    s.parser->set_head_limit(kMaxResponseHeadBytes);
    s.parser->eager(false);
    if (s.req.method == "HEAD") s.parser->skip(true);
    auto& in = s.upstream->in;
    for (;;) {
      if (in.size() > 0) {
        error_code ec;
        const size_t used = s.parser->Put(BufferView(in), ec);
        in.consume(used);
        if (!ec && s.parser->is_header_done()) break;
        if (ec && ec != bhttp::error::need_more) co_return false;
        if (!ec && used > 0) continue;
      }
      auto [ec, n] = co_await s.upstream->stream.ReadSome(in.prepare(kReadSize));
      if (ec) co_return false;
      s.got_response_bytes = true;
      in.commit(n);
    }
    if (s.resp.status >= 100 && s.resp.status < 200) continue;  // interim answers are dropped
    co_return true;
  }
}

asio::awaitable<void> H2Session::StreamResponse(Stream& s) {
  if (!co_await ReadResponseHead(s)) {
    s.upstream_failed = true;
    co_return;
  }
  s.response_head_at = std::chrono::steady_clock::now();
  if (HoldForRetry(s, s.resp.status, -1)) {
    s.upstream->stream.Cancel();  // ends the request body's writer too
    co_return;
  }
  s.status = s.resp.status;
  if (s.gone) co_return;
  // The response head: connection-specific headers have no place in HTTP/2.
  http2::Headers h;
  h.reserve(1 + s.resp.headers.size());
  h.push_back({":status", absl::StrCat(s.resp.status)});
  const absl::string_view connection = s.resp.headers.Get("connection").value_or("");
  s.resp.headers.ForEach([&](absl::string_view name, absl::string_view value) {
    if (http::IsHopByHop(name, connection)) return;
    h.push_back({absl::AsciiStrToLower(name), std::string(value)});
  });
  const bool no_body = s.req.method == "HEAD" || s.resp.status == 204 || s.resp.status == 304;
  s.parser->eager(true);
  auto& in = s.upstream->in;
  if (!s.parser->is_done() && in.size() > 0) {
    error_code ec;
    in.consume(s.parser->Put(BufferView(in), ec));
  }
  const bool ends_now = s.parser->is_done() && s.resp_out.empty() &&
                        s.parser->trailers().size() == 0;
  if (!codec_.SubmitResponse(s.id, h, no_body || ends_now).ok()) co_return;
  Flush();
  if (no_body || ends_now) {
    s.response_complete = s.parser->is_done();
    co_return;
  }
  for (;;) {
    if (!s.resp_out.empty()) {
      s.bytes_sent += s.resp_out.size();
      (void)codec_.SendData(s.id, s.resp_out, false);
      s.resp_out.clear();
      Flush();
    }
    if (s.parser->is_done()) break;
    // Backpressure: the client's window is full; wait for the writer to move it.
    while (codec_.Queued(s.id) >= kMaxQueuedStreamBytes && !s.gone) co_await Wait(s.window_wake);
    if (s.gone) co_return;
    auto [ec, n] = co_await s.upstream->stream.ReadSome(in.prepare(kReadSize));
    error_code pec;
    if (ec == asio::error::eof && s.parser->need_eof()) {
      s.parser->put_eof(pec);
    } else if (ec) {
      s.upstream_failed = true;
      codec_.ResetStream(s.id, http2::kInternalError);  // cut mid-body: the client sees a reset
      Flush();
      co_return;
    } else {
      in.commit(n);
      in.consume(s.parser->Put(BufferView(in), pec));
    }
    if (pec && pec != bhttp::error::need_more) {
      s.upstream_failed = true;
      codec_.ResetStream(s.id, http2::kInternalError);
      Flush();
      co_return;
    }
  }
  // Trailers (a chunked HTTP/1.1 response may carry them: grpc-status and friends).
  if (s.parser->trailers().size() > 0) {
    http2::Headers t;
    s.parser->trailers().ForEach([&](absl::string_view name, absl::string_view value) {
      t.push_back({absl::AsciiStrToLower(name), std::string(value)});
    });
    (void)codec_.SendTrailers(s.id, t);
  } else {
    (void)codec_.SendData(s.id, "", true);
  }
  s.response_complete = true;
  Flush();
}

}  // namespace outrigger::proxy
