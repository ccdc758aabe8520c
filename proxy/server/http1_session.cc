// See http1_session.h. Reads top to bottom in the order a request lives (the traffic-management
// decisions are in http1_session_policy.cc, mTLS in http1_session_tls.cc):
// Run -> ReadRequestHead -> HandleRequest (route, upstream, write head) -> PumpRequestBody and
// PumpResponse -> FinishRequest (stats, access log) -> next request or close.
//
// Timeouts: the session keeps one deadline for its current phase; the worker's 100 ms sweep calls
// CheckDeadline, which cancels the socket operations of an expired phase. No timer is armed per
// I/O operation.
#include "proxy/server/http1_session.h"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include "absl/strings/string_view.h"
#include "absl/strings/str_cat.h"
#include "proxy/server/admission.h"
#include "proxy/server/h2_session.h"
#include "proxy/server/hash_key.h"
#include "proxy/server/message_heads.h"
#include "proxy/server/request_record.h"
#include "proxy/upstream/connector.h"
#include "xds/common/log.h"

namespace outrigger::proxy {

namespace asio = boost::asio;
namespace bhttp = boost::beast::http;
using asio::ip::tcp;
using boost::system::error_code;
using namespace asio::experimental::awaitable_operators;

namespace {

constexpr auto kTuple = asio::as_tuple(asio::use_awaitable);
constexpr size_t kHeadReadSize = 16 * 1024;
constexpr size_t kBodyReadSize = 64 * 1024;
constexpr size_t kMaxLingerBytes = 1 << 20;

SteadyTime Deadline(SteadyTime now, absl::Duration d) {
  if (d == absl::ZeroDuration() || d == absl::InfiniteDuration()) return SteadyTime::max();
  return now + absl::ToChronoNanoseconds(d);
}

}  // namespace

Http1Session::Http1Session(Worker& worker, tcp::socket socket, std::string listener)
    : worker_(worker),
      client_(std::move(socket)),
      listener_name_(std::move(listener)),
      listener_stats_(worker.listener_stats(listener_name_)) {
  if (const ListenerConfig* l = worker.snapshot()->FindListener(listener_name_)) {
    inbound_ = l->direction == Direction::kInbound;
  }
  error_code ec;
  auto ep = client_.socket().remote_endpoint(ec);
  if (!ec) client_ip_ = ep.address().to_string();
  client_.socket().set_option(tcp::no_delay(true), ec);
  worker_.Register(this);
  ++listener_stats_->cx_total;
  ++listener_stats_->cx_active;
}

Http1Session::~Http1Session() {
  --listener_stats_->cx_active;
  ++listener_stats_->cx_closed;
  worker_.Unregister(this);
}

void Http1Session::Start(std::shared_ptr<Http1Session> self) {
  Http1Session* s = self.get();
  asio::co_spawn(s->client_.socket().get_executor(), s->Run(std::move(self)), asio::detached);
}

void Http1Session::SetPhase(Phase phase, absl::Duration timeout) {
  phase_ = phase;
  deadline_ = Deadline(std::chrono::steady_clock::now(), timeout);
}

void Http1Session::Touch() {
  if (phase_ == Phase::kStreaming) {
    deadline_ = Deadline(std::chrono::steady_clock::now(), stream_idle_timeout_);
  }
}

void Http1Session::CheckDeadline(SteadyTime now) {
  if (now < deadline_) return;
  deadline_ = SteadyTime::max();
  error_code ec;
  switch (phase_) {
    case Phase::kIdle:
    case Phase::kReadingHead:
    case Phase::kLingering:
      client_.Cancel();
      break;
    case Phase::kConnecting:
      fired_ = Fired::kConnect;
      if (connecting_ != nullptr) connecting_->cancel(ec);
      break;
    case Phase::kAwaitingResponse:
      if (now < response_deadline_) {
        // Only this try's time is up: cancel it; the request may be retried.
        fired_ = Fired::kPerTry;
        if (upstream_) upstream_->stream.Cancel();
        break;
      }
      fired_ = Fired::kResponse;
      if (upstream_) upstream_->stream.Cancel();
      client_.Cancel();
      break;
    case Phase::kStreaming:
      fired_ = Fired::kStreamIdle;
      if (upstream_) upstream_->stream.Cancel();
      client_.Cancel();
      break;
    case Phase::kBackoff:
    case Phase::kDone:
      break;
  }
}

void Http1Session::CloseIfIdle() {
  if (h2_ != nullptr) {
    h2_->BeginDrain();  // GOAWAY; the streams in flight finish
    return;
  }
  if (phase_ == Phase::kIdle) {
    error_code ec;
    client_.Cancel();
  }
}

asio::awaitable<void> Http1Session::Run(std::shared_ptr<Http1Session> self) {
  if (!co_await AcceptTls()) {
    phase_ = Phase::kDone;
    client_.Close();
    co_return;
  }
  if (!peer_identity_.empty()) ++listener_stats_->cx_mutual_tls;
  if (const ListenerConfig* l = worker_.snapshot()->FindListener(listener_name_);
      l != nullptr && l->protocol != ListenerProtocol::kHttp) {
    if (l->protocol == ListenerProtocol::kTcp || !co_await DetectHttp()) {
      co_await ProxyTcp();
      phase_ = Phase::kDone;
      client_.Close();
      co_return;
    }
  }
  if (co_await StartsWithHttp2Preface()) {
    H2Session h2(*this);
    h2_ = &h2;
    co_await h2.Run();
    h2_ = nullptr;
    phase_ = Phase::kDone;
    client_.Close();
    co_return;
  }
  for (;;) {
    if (!co_await ReadRequestHead()) break;
    const bool keep = co_await HandleRequest();
    FinishRequest();
    if (!keep || worker_.draining()) break;
  }
  // Close gracefully: send FIN, then read and drop what the client still sends for a moment, so
  // that closing with unread input does not reset the connection before our reply is read.
  error_code ec;
  client_.ShutdownSend();
  if (linger_ && !ec) {
    SetPhase(Phase::kLingering, absl::Seconds(2));
    size_t dropped = 0;
    while (dropped < kMaxLingerBytes) {
      in_.clear();
      auto [rec, n] = co_await client_.ReadSome(in_.prepare(kBodyReadSize));
      if (rec) break;
      dropped += n;
    }
  }
  phase_ = Phase::kDone;
  client_.Close();
}

asio::awaitable<bool> Http1Session::StartsWithHttp2Preface() {
  const ListenerConfig* l = worker_.snapshot()->FindListener(listener_name_);
  if (l == nullptr) co_return false;
  SetPhase(Phase::kIdle, l->http.idle_timeout);
  for (;;) {
    const absl::string_view have = BufferView(in_);
    const size_t n = std::min(have.size(), kHttp2Preface.size());
    if (have.substr(0, n) != kHttp2Preface.substr(0, n)) co_return false;  // HTTP/1.x
    if (n == kHttp2Preface.size()) co_return true;
    if (n > 0) SetPhase(Phase::kReadingHead, l->http.request_headers_timeout);
    auto [ec, got] = co_await client_.ReadSome(in_.prepare(kHeadReadSize));
    if (ec) co_return false;  // (the HTTP/1.1 loop then sees the connection close)
    in_.commit(got);
  }
}

asio::awaitable<bool> Http1Session::ReadRequestHead() {
  snapshot_ = worker_.snapshot();
  listener_ = snapshot_->FindListener(listener_name_);
  if (listener_ == nullptr) co_return false;  // the listener was removed: finish here
  req_.Clear();
  req_body_.Reset(http::Framing::kNone, &to_upstream_);
  req_parser_.emplace(&req_, &req_body_);
  req_parser_->set_head_limit(listener_->http.max_request_headers_bytes);
  req_parser_->eager(false);
  if (in_.size() == 0) {
    SetPhase(Phase::kIdle, listener_->http.idle_timeout);
  } else {
    SetPhase(Phase::kReadingHead, listener_->http.request_headers_timeout);
  }
  for (;;) {
    if (in_.size() > 0) {
      if (phase_ == Phase::kIdle) {
        // A request begins: it runs under the newest snapshot, not the one in force when the
        // connection went idle (routes, limits and the listener's mTLS mode may have changed).
        snapshot_ = worker_.snapshot();
        listener_ = snapshot_->FindListener(listener_name_);
        if (listener_ == nullptr) co_return false;
        req_parser_->set_head_limit(listener_->http.max_request_headers_bytes);
        SetPhase(Phase::kReadingHead, listener_->http.request_headers_timeout);
      }
      error_code ec;
      const size_t used = req_parser_->Put(BufferView(in_), ec);
      in_.consume(used);
      if (!ec && req_parser_->is_header_done()) break;
      if (ec && ec != bhttp::error::need_more) {
        // Malformed or ambiguous: refuse, never forward, and close.
        BeginRequest();
        const bool too_big = ec == bhttp::error::header_limit;
        std::string why = req_parser_->reject_reason().empty()
                              ? ec.message()
                              : std::string(req_parser_->reject_reason());
        LogDebug("refused request on ", listener_name_, " from ", client_ip_, ": ", why);
        linger_ = true;
        // (Temporaries stay out of co_await expressions: GCC 12 destroys some of them twice.)
        const std::string body = too_big ? std::string("request header too large\n")
                                         : absl::StrCat(why, "\n");
        co_await LocalReply(too_big ? 431 : 400, body, kDownstreamProtocolError, true);
        FinishRequest();
        co_return false;
      }
      if (!ec && used > 0) continue;
    }
    auto [ec, n] = co_await client_.ReadSome(in_.prepare(kHeadReadSize));
    if (ec) co_return false;  // closed, idle timeout or drain
    in_.commit(n);
  }
  BeginRequest();
  co_return true;
}

void Http1Session::BeginRequest() {
  start_ = std::chrono::steady_clock::now();
  response_head_at_ = {};
  start_time_ = absl::Now();
  flags_ = 0;
  status_ = 0;
  bytes_received_ = 0;
  bytes_sent_ = 0;
  request_complete_ = false;
  response_complete_ = false;
  response_started_ = false;
  client_keep_alive_ = false;
  upstream_failed_ = false;
  client_failed_ = false;
  upstream_error_ = {};
  fired_ = Fired::kNone;
  cluster_name_ = {};
  host_.reset();
  stream_idle_timeout_ = listener_->http.stream_idle_timeout;
  route_timeout_ = absl::ZeroDuration();
  cstats_ = nullptr;
  authz_note_.clear();
  counted_active_ = false;
  host_active_ = false;
  retry_pending_ = false;
  connect_failed_ = false;
  mirrored_ = false;
  hash_.reset();
  replay_.clear();
  replay_ok_ = false;
  response_deadline_ = SteadyTime::max();
  response_deadline_set_ = false;
  in_request_ = true;
  ++listener_stats_->rq_active;

  if (auto id = req_.headers.Get("x-request-id"); id && !id->empty()) {
    request_id_ = std::string(*id);
  } else {
    // A random (version 4) UUID.
    const uint64_t hi = (worker_.Random() & ~0xF000ull) | 0x4000ull;
    const uint64_t lo = (worker_.Random() & ~(3ull << 62)) | (2ull << 62);
    request_id_ = absl::StrCat(absl::Hex(hi >> 32, absl::kZeroPad8), "-",
                               absl::Hex((hi >> 16) & 0xFFFF, absl::kZeroPad4), "-",
                               absl::Hex(hi & 0xFFFF, absl::kZeroPad4), "-",
                               absl::Hex(lo >> 48, absl::kZeroPad4), "-",
                               absl::Hex(lo & 0xFFFFFFFFFFFFull, absl::kZeroPad12));
  }
  if (auto xff = req_.headers.Get("x-forwarded-for"); xff && !xff->empty()) {
    forwarded_for_ = absl::StrCat(*xff, ", ", client_ip_);
  } else {
    forwarded_for_ = client_ip_;
  }
  if (inbound_) {
    CallerLabels(peer_identity_, req_.headers, &source_workload_, &source_version_);
  }
  // Upgrade (WebSocket and the like; not h2c, which would need the proxy to speak HTTP/2 here):
  // forwarded, and a 101 answer turns the connection into a tunnel.
  upgrade_.clear();
  if (req_.version == 11) {
    auto upgrade = req_.headers.Get("upgrade");
    bool asked = false;
    http::ForEachToken(req_.headers.Get("connection").value_or(""), [&](absl::string_view t) {
      asked = asked || http::EqualsIgnoreCase(t, "upgrade");
    });
    const bool body = req_parser_->chunked() || req_parser_->content_length().value_or(0) > 0;
    if (asked && !body && upgrade && !upgrade->empty() &&
        !http::EqualsIgnoreCase(*upgrade, "h2c")) {
      upgrade_ = std::string(*upgrade);
    }
  }
  // The caller's trace context, ours, and the headers that carry it on (request_trace.h).
  auto header = [this](absl::string_view name) { return req_.headers.Get(name); };
  trace_.Begin(header, worker_, [this](double percent) { return Chance(percent); });
}

asio::awaitable<bool> Http1Session::HandleRequest() {
  if (req_.method == "CONNECT") {
    co_return co_await LocalReply(501, "CONNECT is not supported\n", kDownstreamProtocolError,
                                  true);
  }

  // Route, redirect, STRICT, authorization, rate limits, fault (admission.cc).
  auto header = [this](absl::string_view name) { return req_.headers.Get(name); };
  const Admission admission =
      Admit(worker_, *listener_, *listener_stats_,
            RequestFacts{req_.authority, req_.path, req_.target, req_.method, header,
                         peer_identity_, client_ip_},
            [this](double percent) { return Chance(percent); });
  authz_note_ = admission.authz_note;
  route_ = admission.route;
  retry_ = admission.retry;
  cluster_name_ = admission.cluster;
  route_timeout_ = admission.route_timeout;
  switch (admission.verdict) {
    case Admission::Verdict::kClose:
      linger_ = !req_parser_->is_done();
      co_return false;
    case Admission::Verdict::kReply:
      co_return co_await LocalReply(admission.status, admission.body, admission.flag, false,
                                    admission.location);
    case Admission::Verdict::kForward:
      break;
  }
  const absl::string_view target =
      admission.rewritten_path.empty() ? absl::string_view(req_.path) : admission.rewritten_path;
  if (admission.fault_delay > absl::ZeroDuration()) {
    flags_ |= kFaultDelay;
    asio::steady_timer timer(client_.socket().get_executor());
    timer.expires_after(absl::ToChronoNanoseconds(admission.fault_delay));
    (void)co_await timer.async_wait(kTuple);
  }
  const auto now = std::chrono::steady_clock::now();

  ClusterState* cluster = worker_.clusters().Find(cluster_name_);
  if (cluster == nullptr || cluster->empty()) {
    co_return co_await LocalReply(503, "no healthy upstream\n", kNoHealthyUpstream, false);
  }
  cstats_ = &cluster->stats();
  // Circuit breaker on requests in flight: refuse at once rather than queue.
  if (cstats_->rq_active >= static_cast<int64_t>(cluster->limits().max_requests)) {
    ++cstats_->rq_overflow;
    co_return co_await LocalReply(503, "upstream connect error or disconnect/reset before "
                                       "headers. reset reason: overflow\n",
                                  kUpstreamOverflow, false);
  }
  ++cstats_->rq_active;
  counted_active_ = true;
  ewma_decay_ = cluster->config().ewma_decay;
  outlier_detection_ = cluster->config().outlier.has_value();
  cluster->retry_budget().RecordRequest(ToNanos(now));
  retry_gate_.Begin(worker_, *retry_, cluster_name_, *cstats_, req_.method, &flags_);
  hash_ = RequestHashKey(cluster->config(), req_.headers, client_ip_);
  if (cluster->config().http2 && upgrade_.empty()) {
    co_return co_await ForwardOverH2(target);  // http1_session_h2.cc
  }

  // The upstream request head, then whatever body bytes arrived with the head, framed for the
  // upstream side in the same buffer so that both leave in one write.
  http::Framing framing = http::Framing::kNone;
  if (req_parser_->chunked()) {
    framing = http::Framing::kChunked;
  } else if (req_parser_->content_length()) {
    framing = http::Framing::kContentLength;
  }
  BuildUpstreamHead(target, framing == http::Framing::kChunked);
  head_size_ = to_upstream_.size();
  req_body_.Reset(framing, &to_upstream_);
  req_parser_->eager(true);
  if (!req_parser_->is_done() && in_.size() > 0) {
    error_code ec;
    in_.consume(req_parser_->Put(BufferView(in_), ec));
    if (ec && ec != bhttp::error::need_more) {
      linger_ = true;
      const std::string body = absl::StrCat(ec.message(), "\n");
      co_return co_await LocalReply(400, body, kDownstreamProtocolError, true);
    }
  }
  request_complete_ = req_parser_->is_done();
  // What a retry (or a mirror) replays: the head and body as sent, up to the policy's limit.
  replay_limit_ = head_size_ + retry_->max_body_bytes;
  replay_ok_ = to_upstream_.size() <= replay_limit_;
  target_ = target;
  if (request_complete_) MaybeMirror(to_upstream_);

  // Tries: pick a host (a different one on a retry), send, read the response head. A failed or
  // retriable try is retried while the policy, the max_retries breaker and the retry budget
  // allow, after a jittered backoff; the last answer or failure goes to the client.
  std::shared_ptr<HostPool> previous;
  for (int attempt = 0;; ++attempt) {
    cluster = worker_.clusters().Find(cluster_name_);  // a snapshot may have replaced it
    if (cluster == nullptr || cluster->empty()) {
      co_return co_await LocalReply(503, "no healthy upstream\n", kNoHealthyUpstream,
                                    !request_complete_);
    }
    lb::PickContext pick{.hash = hash_, .random = worker_.Random(), .avoid = previous.get(),
                         .now_ns = ToNanos(std::chrono::steady_clock::now())};
    host_ = cluster->Pick(pick);
    if (!host_) {
      co_return co_await LocalReply(503, "no healthy upstream\n", kNoHealthyUpstream,
                                    !request_complete_);
    }
    ++host_->stats->rq_total;
    ++host_->active_requests;
    host_active_ = true;
    try_start_ = std::chrono::steady_clock::now();
    fired_ = Fired::kNone;
    upstream_failed_ = false;
    upstream_error_ = {};
    retry_pending_ = false;
    connect_failed_ = false;

    const TryResult result = co_await TryOnce(cluster->limits());
    if (result == TryResult::kOverflow) {
      EndTry();
      ++cstats_->rq_overflow;
      co_return co_await LocalReply(503, "upstream connect error or disconnect/reset before "
                                         "headers. reset reason: overflow\n",
                                    kUpstreamOverflow, !request_complete_);
    }
    if (result == TryResult::kHead) {
      RecordTry(OutcomeOfStatus(resp_.status));
      if (ShouldRetryStatus(resp_.status)) {
        upstream_.reset();  // the answer is dropped with its connection
        EndTry();
        previous = host_;
        co_await Backoff(attempt + 1);
        continue;
      }
      if (attempt > 0) ++cstats_->rq_retry_success;
      if (resp_.status == 101) {
        co_await Tunnel();
      } else {
        co_await PumpResponse(true);
      }
      break;
    }
    if (result == TryResult::kStreaming) {
      // The request body is still coming: stream it up while the response comes down.
      to_upstream_.clear();
      co_await (PumpRequestBody() && PumpResponse(false));
      if (retry_pending_) {  // a retriable answer arrived after the whole body was sent
        upstream_.reset();
        EndTry();
        previous = host_;
        co_await Backoff(attempt + 1);
        to_upstream_ = replay_;
        continue;
      }
      if (response_started_) break;
      // Failed before any answer.
      const Outcome outcome = FailureOutcome();
      RecordTry(outcome);
      upstream_.reset();
      EndTry();
      if (request_complete_ && replay_ok_ && ShouldRetryFailure(outcome, /*sent=*/true)) {
        previous = host_;
        co_await Backoff(attempt + 1);
        to_upstream_ = replay_;
        continue;
      }
      co_return co_await UpstreamFailureReply();
    }
    // kConnectFailure or kFailed: no answer from this host.
    const Outcome outcome = result == TryResult::kConnectFailure ? Outcome::kConnectFailure
                                                                 : FailureOutcome();
    RecordTry(outcome);
    upstream_.reset();
    EndTry();
    const bool sent = result != TryResult::kConnectFailure;
    if ((!sent || (request_complete_ && replay_ok_)) && ShouldRetryFailure(outcome, sent)) {
      previous = host_;
      co_await Backoff(attempt + 1);
      // A request complete at its head is still whole in to_upstream_; a streamed one was
      // collected in replay_.
      if (sent && !replay_.empty()) to_upstream_ = replay_;
      continue;
    }
    co_return co_await UpstreamFailureReply();
  }

  if (!response_started_) {
    if (upstream_) upstream_.reset();
    co_return co_await UpstreamFailureReply();
  }
  if (upstream_) {
    const bool reusable = request_complete_ && response_complete_ && !upstream_failed_ &&
                          fired_ == Fired::kNone && resp_parser_->keep_alive() &&
                          !resp_parser_->need_eof();
    if (reusable) {
      HostPool::Release(std::move(upstream_), std::chrono::steady_clock::now());
    } else {
      upstream_.reset();
    }
  }
  if (fired_ == Fired::kStreamIdle) flags_ |= kStreamIdleTimeout;
  if (upstream_failed_) flags_ |= kUpstreamTermination;
  if (client_failed_) flags_ |= kDownstreamTermination;
  if (!request_complete_ || !response_complete_ || client_failed_) {
    client_keep_alive_ = false;
    linger_ = !request_complete_;
  }
  co_return client_keep_alive_;
}

// One try at host_: a pooled connection when one is alive, else a new one (within the
// max_connections and max_pending_requests breakers); send what is ready; when the request is
// complete, read the response head. If a pooled connection turns out to have been closed by the
// upstream (nothing came back), the request is replayed once on a fresh connection to the same
// host: the "503 after an idle keep-alive" race other meshes show. That replay is not a retry.
asio::awaitable<Http1Session::TryResult> Http1Session::TryOnce(
    const CircuitBreakerConfig& limits) {
  for (int attempt = 0;; ++attempt) {
    const auto now = std::chrono::steady_clock::now();
    upstream_ = attempt == 0 ? host_->TakeIdle(now) : nullptr;
    upstream_bytes_ = 0;
    const bool reused = upstream_ != nullptr;
    if (!reused) {
      if (cstats_->cx_active >= static_cast<int64_t>(limits.max_connections) ||
          cstats_->rq_pending >= static_cast<int64_t>(limits.max_pending_requests)) {
        co_return TryResult::kOverflow;
      }
      ++cstats_->rq_pending;
      upstream_ = co_await Connect();
      --cstats_->rq_pending;
      if (!upstream_) {
        connect_failed_ = true;
        co_return TryResult::kConnectFailure;
      }
    }
    if (request_complete_) {
      AwaitResponse();
    } else {
      SetPhase(Phase::kStreaming, stream_idle_timeout_);
    }
    auto [ec, n] = co_await upstream_->stream.Write(asio::buffer(to_upstream_));
    if (!ec) {
      ++upstream_->requests;
      if (!request_complete_) {
        if (replay_ok_) {
          replay_ = to_upstream_;
        }
        co_return TryResult::kStreaming;
      }
      ec = co_await ReadResponseHead();
      if (!ec) {
        response_head_at_ = std::chrono::steady_clock::now();
        const int64_t now_ns = ToNanos(response_head_at_);
        host_->ewma.Observe(now_ns - ToNanos(try_start_), now_ns,
                            absl::ToInt64Nanoseconds(ewma_decay_));
        co_return TryResult::kHead;
      }
    }
    const bool nothing_back = upstream_bytes_ == 0;
    upstream_.reset();
    if (reused && attempt == 0 && nothing_back && fired_ == Fired::kNone &&
        (request_complete_ || n == 0) && http::IsIdempotent(req_.method)) {
      ++host_->stats->rq_retry_stale;
      continue;
    }
    upstream_error_ = ec;
    co_return TryResult::kFailed;
  }
}

void Http1Session::AwaitResponse() {
  const auto now = std::chrono::steady_clock::now();
  if (!response_deadline_set_) {
    // The route timeout covers every try, from the moment the whole request was received.
    response_deadline_ = Deadline(now, route_timeout_);
    response_deadline_set_ = true;
    retry_gate_.set_deadline(response_deadline_);
  }
  try_deadline_ = Deadline(now, retry_->per_try_timeout);
  phase_ = Phase::kAwaitingResponse;
  deadline_ = std::min(response_deadline_, try_deadline_);
}

asio::awaitable<std::unique_ptr<UpstreamConnection>> Http1Session::Connect() {
  SetPhase(Phase::kConnecting, host_->connect_timeout);  // the sweep cancels connecting_
  co_return co_await ConnectUpstream(host_, worker_.tls(), &connecting_, cluster_name_);
}

asio::awaitable<bool> Http1Session::UpstreamFailureReply() {
  if (client_failed_) {
    flags_ |= kDownstreamTermination;
    linger_ = false;
    co_return false;
  }
  const bool close = !request_complete_;
  switch (fired_) {
    case Fired::kResponse:
    case Fired::kPerTry:
      co_return co_await LocalReply(504, "upstream request timeout\n", kUpstreamTimeout, close);
    case Fired::kStreamIdle:
      co_return co_await LocalReply(504, "stream timeout\n", kStreamIdleTimeout, close);
    case Fired::kConnect:
      co_return co_await LocalReply(503, "upstream connect error or disconnect/reset before "
                                         "headers. reset reason: connection timeout\n",
                                    kUpstreamConnectFailure, close);
    case Fired::kNone:
      break;
  }
  if (connect_failed_) {
    co_return co_await LocalReply(503, "upstream connect error or disconnect/reset before "
                                       "headers. reset reason: connection failure\n",
                                  kUpstreamConnectFailure, close);
  }
  if (upstream_error_.category() == bhttp::make_error_code(bhttp::error::bad_target).category()) {
    co_return co_await LocalReply(502, "upstream sent an invalid response\n",
                                  kUpstreamProtocolError, close);
  }
  co_return co_await LocalReply(503, "upstream connect error or disconnect/reset before headers. "
                                     "reset reason: connection termination\n",
                                kUpstreamTermination, close);
}

asio::awaitable<bool> Http1Session::LocalReply(int status, absl::string_view body, uint16_t flag,
                                               bool close, absl::string_view location) {
  flags_ |= flag;
  status_ = status;
  // A request body already here is dropped; if more is to come, we close instead of reading it.
  if (req_parser_->is_header_done() && !req_parser_->is_done() && in_.size() > 0) {
    req_body_.Reset(http::Framing::kNone, &to_upstream_);
    req_parser_->eager(true);
    error_code ec;
    in_.consume(req_parser_->Put(BufferView(in_), ec));
  }
  const bool keep = !close && req_parser_->is_done() && req_parser_->keep_alive() &&
                    !worker_.draining();
  if (!keep && !req_parser_->is_done()) linger_ = true;
  to_client_ = http::LocalReply(status, body, !keep, location);
  response_started_ = true;
  auto [ec, n] = co_await client_.Write(asio::buffer(to_client_));
  to_client_.clear();
  if (ec) {
    flags_ |= kDownstreamTermination;
    co_return false;
  }
  bytes_sent_ += n;
  co_return keep;
}

void Http1Session::BuildUpstreamHead(absl::string_view target, bool chunked) {
  WriteUpstreamHead(req_, target, chunked, route_, ForwardedHeaders(), &to_upstream_);
}

ProxyHeaders Http1Session::ForwardedHeaders() const {
  return ProxyHeaders{forwarded_for_, request_id_, trace_.lines,
                      inbound_ ? absl::string_view() : worker_.source_headers(), upgrade_};
}

void Http1Session::BuildResponseHead(http::Framing framing) {
  client_keep_alive_ = req_parser_->keep_alive() && !worker_.draining() &&
                       framing != http::Framing::kCloseDelimited;
  WriteResponseHead(resp_, framing, client_keep_alive_, req_.version, &to_client_);
}

void Http1Session::FinishRequest() {
  if (!in_request_) return;
  in_request_ = false;
  --listener_stats_->rq_active;
  const auto now = std::chrono::steady_clock::now();
  const double ms = std::chrono::duration<double, std::milli>(now - start_).count();
  FinishedRequest r;
  RequestInfo& info = r.info;
  info.start_time = start_time_;
  info.listener = listener_name_;
  info.method = req_.method;
  info.authority = req_.authority;
  info.path = req_.path.empty() ? absl::string_view(req_.target) : absl::string_view(req_.path);
  info.version = req_.version;
  info.status = status_;
  info.flags = flags_;
  info.cluster = cluster_name_;
  info.duration_ms = ms;
  if (response_head_at_ > start_) {
    info.response_duration_ms =
        std::chrono::duration<double, std::milli>(response_head_at_ - start_).count();
  }
  info.bytes_received = std::max(bytes_received_, req_body_.bytes());
  info.bytes_sent = bytes_sent_;
  info.request_id = request_id_;
  info.trace_id = trace_.trace_id;
  info.forwarded_for = forwarded_for_;
  info.source_identity = peer_identity_;
  info.authz = authz_note_;
  r.inbound = inbound_;
  r.route = route_;
  r.host = host_.get();
  r.source_workload = source_workload_;
  r.source_version = source_version_;
  r.client_ip = client_ip_;
  r.trace = &trace_;
  RecordFinished(worker_, *listener_stats_, r);
  EndTry();
  retry_gate_.EndTry();  // a retry's place in the max_retries breaker
  if (counted_active_) --cstats_->rq_active;
  counted_active_ = false;
  host_.reset();
}

}  // namespace outrigger::proxy
