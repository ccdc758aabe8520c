// Http1Session for a cluster whose upstream protocol is HTTP/2 (a gRPC or HTTP/2 service, or
// traffic between sidecars upgraded to HTTP/2 by a TrafficPolicy): the HTTP/1.1 request becomes
// a stream of the host's multiplexed HTTP/2 connection (h2_upstream.h; mTLS to mesh peers), and
// the answer comes back as HTTP/1.1: the head, the body chunked (or with its content-length), and
// trailers in the last chunk when the client asked for them (TE: trailers). Tries are retried as
// on every path (retry_gate.h): connect failures, refused streams, resets, per-try timeouts, and
// retriable answers (HTTP statuses, or the gRPC code of a trailers-only answer) while the request
// body fits the replay limit.
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "proxy/server/http1_session.h"
#include "proxy/server/message_heads.h"
#include "proxy/upstream/connector.h"
#include "proxy/upstream/h2_upstream.h"
#include "proxy/http2/h2_codec.h"

namespace outrigger::proxy {

namespace asio = boost::asio;
namespace bhttp = boost::beast::http;
using boost::system::error_code;

namespace {

constexpr auto kTuple = asio::as_tuple(asio::use_awaitable);
constexpr size_t kReadSize = 64 * 1024;

// What the HTTP/2 stream delivered, collected by its callbacks; the session's coroutine waits
// on `wake` and writes it out.
struct Exchange : H2Upstream::Owner {
  explicit Exchange(const asio::any_io_executor& ex)
      : wake(ex, asio::steady_timer::time_point::max()) {}
  asio::steady_timer wake;
  int status = 0;
  http2::Headers headers;
  bool have_headers = false;
  std::string data;
  http2::Headers trailers;
  bool ended = false;
  bool closed = false;
  uint32_t error = 0;

  void OnUpstreamHeaders(http2::Headers h, bool end_stream) override {
    for (auto& x : h) {
      if (x.name == ":status") status = std::atoi(x.value.c_str());
    }
    headers = std::move(h);
    have_headers = true;
    ended = ended || end_stream;
    wake.cancel();
  }
  void OnUpstreamData(absl::string_view d) override {
    data.append(d.data(), d.size());
    wake.cancel();
  }
  void OnUpstreamTrailers(http2::Headers t) override {
    trailers = std::move(t);
    wake.cancel();
  }
  void OnUpstreamEnd() override {
    ended = true;
    wake.cancel();
  }
  void OnUpstreamClose(uint32_t code) override {
    closed = true;
    error = code;
    wake.cancel();
  }
  void OnUpstreamWritable() override { wake.cancel(); }
};

asio::awaitable<void> Wait(asio::steady_timer& t) {
  t.expires_at(asio::steady_timer::time_point::max());
  (void)co_await t.async_wait(kTuple);
}

}  // namespace

asio::awaitable<bool> Http1Session::ForwardOverH2(absl::string_view target) {
  const auto ex = client_.socket().get_executor();
  // The request head as HTTP/2: the proxy's own headers as for HTTP/1.1 (WriteUpstreamHead),
  // turned into header fields; connection-specific ones have no place in HTTP/2.
  std::string head;
  WriteUpstreamHead(req_, target, false, route_, ForwardedHeaders(), &head);
  const http2::Headers headers =
      ToHttp2Request(head, req_.method, target, req_.authority, /*te_trailers=*/false);
  const bool has_body =
      req_parser_->chunked() || req_parser_->content_length().value_or(0) > 0;
  // The body as sent, for a retry, while it fits the policy's limit.
  std::string replay;
  bool replay_ok = true;
  std::shared_ptr<HostPool> previous;
  std::shared_ptr<H2Upstream> h2;
  std::optional<Exchange> x;
  int32_t id = -1;
  struct DetachOnExit {
    std::shared_ptr<H2Upstream>& h2;
    int32_t& id;
    ~DetachOnExit() {
      if (h2 && id > 0) h2->Detach(id);
    }
  } detach{h2, id};
  auto end_try = [&] {
    if (h2 && id > 0) h2->Detach(id);
    h2.reset();
    id = -1;
    EndTry();
  };

  for (int attempt = 0;; ++attempt) {
    if (attempt > 0) {
      previous = host_;
      co_await Backoff(attempt);
    }
    ClusterState* cluster = worker_.clusters().Find(cluster_name_);
    lb::PickContext pick{.hash = hash_, .random = worker_.Random(), .avoid = previous.get(),
                         .now_ns = ToNanos(std::chrono::steady_clock::now())};
    host_ = cluster != nullptr && !cluster->empty() ? cluster->Pick(pick) : nullptr;
    if (!host_) {
      co_return co_await LocalReply(503, "no healthy upstream\n", kNoHealthyUpstream,
                                    !req_parser_->is_done());
    }
    ++host_->stats->rq_total;
    ++host_->active_requests;
    host_active_ = true;
    fired_ = Fired::kNone;
    connect_failed_ = false;
    upstream_error_ = {};
    // The host's multiplexed connection, else a new one.
    h2 = H2Upstream::Usable(*host_);
    if (!h2) {
      if (auto conn = co_await Connect()) h2 = H2Upstream::Adopt(std::move(conn));
    }
    if (!h2) {
      RecordTry(Outcome::kConnectFailure);
      end_try();
      connect_failed_ = fired_ != Fired::kConnect;
      if (ShouldRetryFailure(Outcome::kConnectFailure, /*sent=*/false)) continue;
      co_return co_await UpstreamFailureReply();
    }
    x.emplace(ex);
    id = h2->Open(headers, !has_body || (request_complete_ && replay.empty()), &*x);
    if (id < 0) {  // the connection cannot take a stream now: nothing was sent
      end_try();
      if (!client_failed_ && retry_gate_.RetryFailure(TryFailure::kRefusedStream, false)) {
        continue;
      }
      co_return co_await LocalReply(503, "upstream refused the stream\n", kUpstreamOverflow,
                                    !req_parser_->is_done());
    }

    // The request body: on the first try, raw pieces from the HTTP/1.1 parser, sent as the
    // stream's window allows; on a retry, the whole body again.
    SetPhase(Phase::kStreaming, stream_idle_timeout_);
    if (has_body && attempt > 0) {
      h2->SendData(id, replay, true);
    } else if (has_body) {
      std::string piece;
      req_body_.Reset(http::Framing::kContentLength, &piece);
      req_parser_->eager(true);
      for (;;) {
        if (in_.size() > 0 && !req_parser_->is_done()) {
          error_code ec;
          in_.consume(req_parser_->Put(BufferView(in_), ec));
          if (ec && ec != bhttp::error::need_more) {
            flags_ |= kDownstreamProtocolError;
            co_return false;
          }
        }
        const bool done = req_parser_->is_done();
        if (!piece.empty() || done) {
          if (replay_ok && replay.size() + piece.size() <= retry_->max_body_bytes) {
            replay += piece;
          } else {
            replay_ok = false;
            replay.clear();
          }
          h2->SendData(id, piece, done);
          piece.clear();
        }
        if (done) break;
        while (h2->Queued(id) >= kMaxQueuedStreamBytes && !x->closed) co_await Wait(x->wake);
        if (x->closed) break;
        auto [ec, n] = co_await client_.ReadSome(in_.prepare(kReadSize));
        if (ec) {
          client_failed_ = true;
          co_return false;
        }
        in_.commit(n);
        Touch();
      }
      bytes_received_ = req_body_.bytes();
    }
    request_complete_ = req_parser_->is_done();
    if (attempt == 0 && request_complete_) {
      // Mirrors get the request as HTTP/1.1, its body framed as the client framed it.
      replay_ok_ = replay_ok;
      head_size_ = 0;
      target_ = target;
      if (!req_parser_->chunked()) {
        MaybeMirror(replay);
      } else if (replay.empty()) {
        MaybeMirror("0\r\n\r\n");
      } else {
        MaybeMirror(absl::StrCat(absl::Hex(replay.size()), "\r\n", replay, "\r\n0\r\n\r\n"));
      }
    }

    // The answer's head, within this try's time (this timer wakes the wait when it fires).
    AwaitResponse();
    asio::steady_timer timer(ex);
    if (const SteadyTime until = std::min(response_deadline_, try_deadline_);
        until != SteadyTime::max()) {
      timer.expires_at(until);
      timer.async_wait([this, &x](error_code ec) {
        if (ec) return;
        fired_ = try_deadline_ < response_deadline_ ? Fired::kPerTry : Fired::kResponse;
        x->wake.cancel();
      });
    }
    while (!x->have_headers && !x->closed && fired_ == Fired::kNone) co_await Wait(x->wake);
    timer.cancel();
    if (x->have_headers) {
      RecordTry(OutcomeOfStatus(x->status));
      // A retriable answer (a gRPC code only counts in a trailers-only answer) is dropped.
      int grpc_code = -1;
      if (x->ended && x->data.empty()) {
        for (const auto& h : x->headers) {
          if (h.name == "grpc-status" && !h.value.empty() && h.value.size() <= 2 &&
              absl::ascii_isdigit(h.value[0]) &&
              (h.value.size() == 1 || absl::ascii_isdigit(h.value[1]))) {
            grpc_code = std::atoi(h.value.c_str());
          }
        }
      }
      if (request_complete_ && replay_ok && !client_failed_ &&
          retry_gate_.RetryAnswer(x->status, grpc_code)) {
        end_try();
        continue;
      }
      if (attempt > 0) ++cstats_->rq_retry_success;
      break;
    }
    // No answer: timed out, reset, or refused.
    const bool refused = x->closed && x->error == http2::kRefusedStream;
    RecordTry(fired_ != Fired::kNone ? Outcome::kTimeout : Outcome::kReset);
    if (fired_ == Fired::kNone) upstream_error_ = asio::error::connection_reset;
    end_try();
    if (refused && !client_failed_ && request_complete_ && replay_ok &&
        retry_gate_.RetryFailure(TryFailure::kRefusedStream, false)) {
      continue;
    }
    if (!refused && request_complete_ && replay_ok &&
        ShouldRetryFailure(fired_ != Fired::kNone ? Outcome::kTimeout : Outcome::kReset,
                           /*sent=*/true)) {
      continue;
    }
    co_return co_await UpstreamFailureReply();
  }
  response_head_at_ = std::chrono::steady_clock::now();
  SetPhase(Phase::kStreaming, stream_idle_timeout_);
  status_ = x->status;
  resp_.Clear();
  resp_.status = x->status;
  bool has_length = false;
  for (const auto& h : x->headers) {
    if (h.name[0] == ':') continue;
    if (h.name == "content-length") has_length = true;
    resp_.headers.Add(h.name, h.value);
  }
  const bool no_body = req_.method == "HEAD" || x->status == 204 || x->status == 304 ||
                       (x->ended && x->data.empty() && x->trailers.empty() && !has_length);
  const bool wants_trailers = WantsTrailers(req_.headers);
  http::Framing framing = http::Framing::kNone;
  if (!no_body) {
    if (has_length && !(wants_trailers && req_.version == 11)) {
      framing = http::Framing::kContentLength;
    } else {
      framing = req_.version == 11 ? http::Framing::kChunked : http::Framing::kCloseDelimited;
      if (framing == http::Framing::kChunked) resp_.headers.Remove("content-length");
    }
  }
  BuildResponseHead(framing);
  response_started_ = true;
  resp_body_.Reset(framing, &to_client_);
  for (;;) {
    if (!x->data.empty()) {
      const size_t n = x->data.size();
      resp_body_.Data(x->data);
      x->data.clear();
      h2->Consume(id, n);  // the client took it: the upstream may send more
    }
    const bool finished = x->ended && x->data.empty();
    if (finished && framing == http::Framing::kChunked) {
      http::HeaderMap trailers;
      if (wants_trailers) {
        for (const auto& t : x->trailers) trailers.Add(t.name, t.value);
      }
      resp_body_.Finish(trailers);
    }
    if (!to_client_.empty()) {
      auto [ec, n] = co_await client_.Write(asio::buffer(to_client_));
      to_client_.clear();
      if (ec) {
        client_failed_ = true;
        co_return false;
      }
      bytes_sent_ += n;
      Touch();
      continue;  // more may have arrived while writing
    }
    if (finished) break;
    if (x->closed) {
      upstream_failed_ = true;  // cut mid-answer
      flags_ |= kUpstreamTermination;
      co_return false;
    }
    co_await Wait(x->wake);
  }
  response_complete_ = true;
  co_return client_keep_alive_ && framing != http::Framing::kCloseDelimited;
}

}  // namespace outrigger::proxy
