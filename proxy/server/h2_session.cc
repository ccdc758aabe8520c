// See h2_session.h. This file: the connection (one reader loop, Run, feeds the codec, whose events
// start one Serve coroutine per stream; one writer coroutine, Writer, sends whatever the codec has
// framed), admission, the tries of a stream and their retries (Forward), local replies, mirrors
// and the end of a stream. One try goes over HTTP/1.1 (h2_session_http1.cc) or HTTP/2
// (h2_session_http2.cc). Streams wait on their own timer (Wait/Wake) for request data, for window
// space, or for a reset.
#include "proxy/server/h2_session.h"
#include "proxy/server/h2_stream.h"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "absl/strings/str_cat.h"
#include "proxy/http/http1_codec.h"
#include "proxy/http2/grpc.h"
#include "proxy/server/http1_session.h"
#include "proxy/server/hash_key.h"
#include "proxy/server/message_heads.h"
#include "proxy/server/mirror.h"
#include "proxy/server/request_record.h"
#include "xds/common/log.h"

namespace outrigger::proxy {

namespace asio = boost::asio;
using boost::system::error_code;

namespace {

constexpr auto kTuple = asio::as_tuple(asio::use_awaitable);
constexpr size_t kReadSize = 64 * 1024;

}  // namespace


H2Session::H2Session(Http1Session& owner)
    : owner_(owner),
      worker_(owner.worker_),
      codec_(http2::Codec::Role::kServer, this),
      writer_wake_(std::make_unique<asio::steady_timer>(owner.client_.socket().get_executor())),
      done_wake_(std::make_unique<asio::steady_timer>(owner.client_.socket().get_executor())) {}

H2Session::~H2Session() { alive_.reset(); }

void H2Session::Flush() { writer_wake_->cancel(); }

void H2Session::Wake(Stream& s) {
  s.body_wake.cancel();
  s.window_wake.cancel();
}

asio::awaitable<void> H2Session::Wait(asio::steady_timer& timer) {
  timer.expires_at(asio::steady_timer::time_point::max());
  (void)co_await timer.async_wait(kTuple);
}

asio::awaitable<void> H2Session::Writer() {
  writer_running_ = true;
  std::string out;
  for (;;) {
    out.clear();
    if (!codec_.TakeOutput(&out).ok()) break;
    if (out.empty()) {
      if (closing_) break;  // everything framed has been written
      writer_wake_->expires_at(asio::steady_timer::time_point::max());
      (void)co_await writer_wake_->async_wait(kTuple);
      continue;
    }
    auto [ec, n] = co_await owner_.client_.Write(asio::buffer(out));
    if (ec) {
      owner_.client_.Cancel();
      break;
    }
    // Window space may have opened for streams holding response data.
    for (auto& [id, s] : streams_) {
      if (codec_.Queued(id) < kMaxQueuedStreamBytes) Wake(*s);
    }
  }
  writer_running_ = false;
  done_wake_->cancel();
}

void H2Session::BeginDrain() {
  if (goaway_sent_) return;
  goaway_sent_ = true;
  codec_.Goaway();
  Flush();
  EndIfDrained();
}

void H2Session::EndIfDrained() {
  if (!goaway_sent_ || !streams_.empty()) return;
  // Ends the reader (a pending read sees end of stream); the writer still sends what is framed.
  boost::system::error_code ignored;
  owner_.client_.socket().shutdown(asio::ip::tcp::socket::shutdown_receive, ignored);
}

asio::awaitable<void> H2Session::Run() {
  auto ex = owner_.client_.socket().get_executor();
  asio::co_spawn(ex, Writer(), asio::detached);
  auto& in = owner_.in_;
  bool first = true;
  for (;;) {
    if (!first || in.size() > 0) {
      if (auto st = codec_.Receive(BufferView(in)); !st.ok()) {
        LogDebug("HTTP/2 from ", owner_.client_ip_, " on ", owner_.listener_name_, ": ",
                 st.message());
        in.consume(in.size());
        break;
      }
      in.consume(in.size());
    }
    first = false;
    Flush();
    if (worker_.draining()) BeginDrain();
    if (!codec_.alive() || (goaway_sent_ && streams_.empty())) break;
    const ListenerConfig* l = worker_.snapshot()->FindListener(owner_.listener_name_);
    if (streams_.empty() && l != nullptr) {
      owner_.SetPhase(Http1Session::Phase::kIdle, l->http.idle_timeout);
    } else {
      owner_.SetPhase(Http1Session::Phase::kStreaming, absl::InfiniteDuration());
    }
    auto [ec, n] = co_await owner_.client_.ReadSome(in.prepare(kReadSize));
    if (ec) break;
    in.commit(n);
  }
  // The connection is over: streams still open end now, then the writer sends what is left.
  for (auto& [id, s] : streams_) {
    s->gone = true;
    if (s->upstream) s->upstream->stream.Cancel();
    if (s->connecting) {
      error_code ignored;
      s->connecting->cancel(ignored);
    }
    Wake(*s);
  }
  while (serving_ > 0) {
    done_wake_->expires_at(asio::steady_timer::time_point::max());
    (void)co_await done_wake_->async_wait(kTuple);
  }
  closing_ = true;
  Flush();
  while (writer_running_) {
    done_wake_->expires_at(asio::steady_timer::time_point::max());
    (void)co_await done_wake_->async_wait(kTuple);
  }
}

// --------------------------------------------------------------------------------------------
// Codec events

void H2Session::OnHeaders(int32_t id, http2::Headers headers, bool end_stream) {
  auto s = std::make_shared<Stream>(id, owner_.client_.socket().get_executor());
  http::RequestHead& req = s->req;
  req.version = 20;
  std::string authority;
  for (auto& h : headers) {
    if (h.name == ":method") {
      req.method = std::move(h.value);
    } else if (h.name == ":path") {
      req.target = h.value;
      req.path = std::move(h.value);
    } else if (h.name == ":authority") {
      authority = std::move(h.value);
    } else if (h.name[0] == ':') {
      continue;  // :scheme, :protocol
    } else if (h.name == "host") {
      if (authority.empty()) authority = h.value;
    } else {
      req.headers.Add(h.name, h.value);
    }
  }
  req.authority = authority;
  s->body_end = end_stream;
  s->has_body = !end_stream;
  streams_[id] = s;
  ++serving_;
  asio::co_spawn(owner_.client_.socket().get_executor(), Serve(s), asio::detached);
}

void H2Session::OnData(int32_t id, absl::string_view data) {
  auto it = streams_.find(id);
  if (it == streams_.end()) {
    codec_.Consume(id, data.size());
    return;
  }
  it->second->body.append(data.data(), data.size());
  it->second->client_unacked += data.size();
  it->second->bytes_received += data.size();
  Wake(*it->second);
}

void H2Session::OnTrailers(int32_t id, http2::Headers trailers) {
  // Passed on with the body's end: in the last chunk (HTTP/1.1), or as trailers (HTTP/2).
  if (auto it = streams_.find(id); it != streams_.end()) {
    for (auto& t : trailers) {
      if (!t.name.empty() && t.name[0] != ':') it->second->req_trailers.push_back(std::move(t));
    }
  }
}

void H2Session::OnEndStream(int32_t id) {
  if (auto it = streams_.find(id); it != streams_.end()) {
    it->second->body_end = true;
    Wake(*it->second);
  }
}

void H2Session::OnStreamClose(int32_t id, uint32_t code) {
  auto it = streams_.find(id);
  if (it == streams_.end()) return;
  Stream& s = *it->second;
  if (!s.response_complete || code != http2::kNoError) {
    // The client reset it (or it ended before our answer was complete).
    s.gone = true;
    if (s.upstream) s.upstream->stream.Cancel();
    if (s.connecting) {
      boost::system::error_code ignored;
      s.connecting->cancel(ignored);
    }
  }
  Wake(s);
  streams_.erase(it);
  EndIfDrained();
}

// --------------------------------------------------------------------------------------------
// One stream

asio::awaitable<void> H2Session::Serve(std::shared_ptr<Stream> sp) {
  Stream& s = *sp;
  s.start = std::chrono::steady_clock::now();
  s.start_time = absl::Now();
  s.snapshot = worker_.snapshot();
  s.listener = s.snapshot->FindListener(owner_.listener_name_);
  ++owner_.listener_stats_->rq_active;
  if (auto id = s.req.headers.Get("x-request-id"); id && !id->empty()) {
    s.request_id = std::string(*id);
  } else {
    s.request_id = absl::StrCat(absl::Hex(worker_.Random(), absl::kZeroPad16),
                                absl::Hex(worker_.Random(), absl::kZeroPad16));
  }
  if (owner_.inbound_) {
    CallerLabels(owner_.peer_identity_, s.req.headers, &s.source_workload, &s.source_version);
  }
  s.grpc = http2::IsGrpc(s.req.headers.Get("content-type").value_or(""));
  s.forwarded_for = owner_.client_ip_;
  if (auto xff = s.req.headers.Get("x-forwarded-for"); xff && !xff->empty()) {
    s.forwarded_for = absl::StrCat(*xff, ", ", owner_.client_ip_);
  }
  auto chance = [this](double percent) { return worker_.Chance(percent); };
  {
    auto header = [&s](absl::string_view name) { return s.req.headers.Get(name); };
    s.trace.Begin(header, worker_, chance);
  }
  if (s.gone) {
    s.flags |= kDownstreamTermination;  // reset before we began (e.g. a rapid-reset flood)
  } else if (s.listener == nullptr) {
    LocalReply(s, 503, "listener removed\n", kNoRoute);
  } else if (s.req.method.empty() || s.req.path.empty()) {
    LocalReply(s, 400, "missing :method or :path\n", kDownstreamProtocolError);
  } else if (s.req.method == "CONNECT") {
    LocalReply(s, 501, "CONNECT is not supported\n", kDownstreamProtocolError);
  } else {
    auto header = [&s](absl::string_view name) { return s.req.headers.Get(name); };
    const Admission admission = Admit(
        worker_, *s.listener, *owner_.listener_stats_,
        RequestFacts{s.req.authority, s.req.path, s.req.target, s.req.method, header,
                     owner_.peer_identity_, owner_.client_ip_},
        chance);
    s.authz_note = admission.authz_note;
    s.route = admission.route;
    s.cluster = std::string(admission.cluster);
    switch (admission.verdict) {
      case Admission::Verdict::kClose:
        codec_.ResetStream(s.id, http2::kRefusedStream);
        s.flags |= kDownstreamProtocolError;
        break;
      case Admission::Verdict::kReply:
        LocalReply(s, admission.status, admission.body, admission.flag, admission.location);
        break;
      case Admission::Verdict::kForward: {
        // The route timeout, or the gRPC client's deadline when that is sooner.
        s.timeout = admission.route_timeout;
        if (s.grpc) {
          if (auto t = s.req.headers.Get("grpc-timeout")) {
            if (auto d = http2::ParseGrpcTimeout(*t)) {
              if (s.timeout <= absl::ZeroDuration() || *d < s.timeout) s.timeout = *d;
            }
          }
        }
        if (admission.fault_delay > absl::ZeroDuration()) {
          s.flags |= kFaultDelay;
          asio::steady_timer t(owner_.client_.socket().get_executor(),
                               absl::ToChronoNanoseconds(admission.fault_delay));
          (void)co_await t.async_wait(kTuple);
        }
        const absl::string_view target = admission.rewritten_path.empty()
                                             ? absl::string_view(s.req.path)
                                             : absl::string_view(admission.rewritten_path);
        co_await Forward(s, admission, target);
        break;
      }
    }
  }
  Flush();
  Finish(s);
  --owner_.listener_stats_->rq_active;
  --serving_;
  done_wake_->cancel();
}

void H2Session::LocalReply(Stream& s, int status, absl::string_view body, uint16_t flag,
                           absl::string_view location) {
  s.flags |= flag;
  s.status = status;
  if (s.gone) return;
  if (s.grpc && status >= 400) {
    // A gRPC client reads errors from grpc-status: a trailers-only answer, HTTP 200.
    s.status = 200;
    s.grpc_status = absl::StrCat(http2::GrpcStatusForHttp(status, flag == kUpstreamTimeout));
    absl::string_view message = body;
    while (!message.empty() && (message.back() == '\n' || message.back() == '\r')) {
      message.remove_suffix(1);
    }
    (void)codec_.SubmitResponse(
        s.id,
        {{":status", "200"}, {"content-type", "application/grpc"},
         {"grpc-status", s.grpc_status}, {"grpc-message", std::string(message)}},
        true);
    s.response_complete = true;
    Flush();
    return;
  }
  http2::Headers h = {{":status", absl::StrCat(status)}};
  if (!location.empty()) h.push_back({"location", std::string(location)});
  if (!body.empty()) {
    h.push_back({"content-type", "text/plain"});
    h.push_back({"content-length", absl::StrCat(body.size())});
  }
  if (!codec_.SubmitResponse(s.id, h, body.empty()).ok()) return;
  if (!body.empty()) (void)codec_.SendData(s.id, body, true);
  s.bytes_sent += body.size();
  s.response_complete = true;
  Flush();
}

asio::awaitable<void> H2Session::Forward(Stream& s, const Admission& admission,
                                         absl::string_view target) {
  ClusterState* cluster = worker_.clusters().Find(s.cluster);
  if (cluster == nullptr || cluster->empty()) {
    LocalReply(s, 503, "no healthy upstream\n", kNoHealthyUpstream);
    co_return;
  }
  ClusterStats& cstats = cluster->stats();
  if (cstats.rq_active >= static_cast<int64_t>(cluster->limits().max_requests)) {
    ++cstats.rq_overflow;
    LocalReply(s, 503, "upstream overflow\n", kUpstreamOverflow);
    co_return;
  }
  ++cstats.rq_active;
  struct Active {
    Stream& s;
    ClusterStats& c;
    ~Active() {
      --c.rq_active;
      s.retry.EndTry();
    }
  } active{s, cstats};
  const auto now = std::chrono::steady_clock::now();
  cluster->retry_budget().RecordRequest(ToNanos(now));
  s.retry.Begin(worker_, *admission.retry, s.cluster, cstats, s.req.method, &s.flags);
  // The route timeout (or the gRPC deadline) covers every try, to the response head.
  if (s.timeout > absl::ZeroDuration() && s.timeout != absl::InfiniteDuration()) {
    s.retry.set_deadline(now + absl::ToChronoNanoseconds(s.timeout));
  }
  s.replay_limit = admission.retry->max_body_bytes;
  const bool http2 = cluster->config().http2;
  const std::optional<uint64_t> hash =
      RequestHashKey(cluster->config(), s.req.headers, owner_.client_ip_);

  // The request head, built once for every try: as HTTP/1.1 text (the body chunked unless its
  // length was declared), or as HTTP/2 fields (gRPC needs `te: trailers`, which HTTP/1.1 would
  // drop as hop-by-hop).
  std::string text;
  http2::Headers fields;
  const bool chunked = s.has_body && !s.req.headers.Get("content-length").has_value();
  s.req.version = 11;
  WriteUpstreamHead(s.req, target, !http2 && chunked, admission.route,
                    ProxyHeaders{s.forwarded_for, s.request_id, s.trace.lines,
                                 owner_.inbound_ ? absl::string_view() : worker_.source_headers(),
                                 {}},
                    &text);
  s.req.version = 20;
  if (http2) {
    fields = ToHttp2Request(text, s.req.method, target, s.req.authority,
                            WantsTrailers(s.req.headers));
  }
  if (s.body_end) MaybeMirror(s, admission, target);

  // Tries: pick a host (another one on a retry), send, wait for the answer's head. A failed try,
  // or a retriable answer held back, is retried while the policy and the cluster's limits allow,
  // after a jittered backoff.
  std::shared_ptr<HostPool> previous;
  for (int attempt = 0;; ++attempt) {
    if (s.gone) co_return;
    cluster = worker_.clusters().Find(s.cluster);  // a snapshot may have replaced it
    lb::PickContext pick{.hash = hash, .random = worker_.Random(), .avoid = previous.get(),
                         .now_ns = ToNanos(std::chrono::steady_clock::now())};
    s.host = cluster != nullptr && !cluster->empty() ? cluster->Pick(pick) : nullptr;
    if (!s.host) {
      LocalReply(s, 503, "no healthy upstream\n", kNoHealthyUpstream);
      co_return;
    }
    ++s.host->stats->rq_total;
    ++s.host->active_requests;
    if (attempt > 0) {  // the body again, from the start
      s.body.insert(0, s.replay);
      s.replay.clear();
    }
    s.fired = Stream::Fired::kNone;
    s.held = false;
    s.sent = false;
    s.upstream_failed = false;
    s.got_response_bytes = false;
    s.up_closed = false;
    s.up_error = 0;
    s.response_head_at = SteadyTime{};
    s.try_deadline = s.retry.deadline();
    if (const absl::Duration per_try = admission.retry->per_try_timeout;
        per_try > absl::ZeroDuration()) {
      s.try_deadline = std::min(s.try_deadline, std::chrono::steady_clock::now() +
                                                    absl::ToChronoNanoseconds(per_try));
    }
    const TryEnd end = http2 ? co_await TryH2(s, fields) : co_await TryH1(s, text);
    --s.host->active_requests;
    // The client reset the stream (a cancelled gRPC call): not the host's failure, no answer.
    if (s.gone && end != TryEnd::kAnswered) co_return;
    switch (end) {
      case TryEnd::kAnswered:
        RecordTry(s, OutcomeOfStatus(s.status));
        if (attempt > 0) ++cstats.rq_retry_success;
        if (!s.mirrored && s.body_end) MaybeMirror(s, admission, target);
        co_return;
      case TryEnd::kOverflow:
        ++cstats.rq_overflow;
        LocalReply(s, 503, "upstream overflow\n", kUpstreamOverflow);
        co_return;
      case TryEnd::kHeld:
        RecordTry(s, OutcomeOfStatus(s.held_status));
        break;
      case TryEnd::kFailed: {
        RecordTry(s, s.failure == TryFailure::kConnect ? Outcome::kConnectFailure
                     : s.failure == TryFailure::kPerTryTimeout ||
                             s.failure == TryFailure::kRouteTimeout
                         ? Outcome::kTimeout
                         : Outcome::kReset);
        const bool replayable = s.body_end && s.replay_ok;
        if (s.gone || !((!s.sent || replayable) && s.retry.RetryFailure(s.failure, s.sent))) {
          switch (s.failure) {
            case TryFailure::kConnect:
              LocalReply(s, 503, "upstream connect error\n", kUpstreamConnectFailure);
              break;
            case TryFailure::kPerTryTimeout:
            case TryFailure::kRouteTimeout:
              LocalReply(s, 504, "upstream request timeout\n", kUpstreamTimeout);
              break;
            case TryFailure::kRefusedStream:
            case TryFailure::kReset:
              s.upstream_failed = true;
              LocalReply(s, 503, "upstream reset before headers\n", kUpstreamTermination);
              break;
          }
          co_return;
        }
        break;
      }
    }
    // Retry: after a jittered wait, on another host when there is one.
    previous = s.host;
    const absl::Duration wait = s.retry.Backoff(attempt + 1);
    if (wait > absl::ZeroDuration()) {
      asio::steady_timer t(owner_.client_.socket().get_executor(),
                           absl::ToChronoNanoseconds(wait));
      (void)co_await t.async_wait(kTuple);
    }
  }
}

bool H2Session::HoldForRetry(Stream& s, int status, int grpc_code) {
  if (s.gone || !s.body_end || !s.replay_ok) return false;  // cannot send it again
  if (!s.retry.RetryAnswer(status, grpc_code)) return false;
  s.held = true;
  s.held_status = status;
  return true;
}

void H2Session::RecordTry(Stream& s, Outcome outcome) {
  ClusterState* c = worker_.clusters().Find(s.cluster);
  if (c == nullptr) return;
  if (outcome == Outcome::kTimeout && s.failure == TryFailure::kPerTryTimeout) {
    ++c->stats().rq_per_try_timeout;
  }
  if (!c->config().outlier.has_value()) return;
  c->RecordOutcome(s.host.get(), outcome, ToNanos(std::chrono::steady_clock::now()));
}

void H2Session::MaybeMirror(Stream& s, const Admission& admission, absl::string_view target) {
  if (s.mirrored || admission.route == nullptr || admission.route->mirrors.empty()) return;
  s.mirrored = true;
  // The copy carries the whole body (kept for replay): it must have fit.
  const bool whole = s.body_end && s.replay_ok &&
                     s.replay.size() + s.body.size() <= s.replay_limit;
  for (const auto& m : admission.route->mirrors) {
    if (!worker_.Chance(m.percent)) continue;
    if (!whole) {
      if (ClusterState* c = worker_.clusters().Find(m.cluster)) ++c->stats().rq_mirror_dropped;
      continue;
    }
    MirrorCopy copy;
    copy.body = s.replay + s.body;
    http::RequestHead head = s.req;
    head.version = 11;
    head.headers.Remove("content-length");
    if (!copy.body.empty() || s.has_body) {
      head.headers.Set("content-length", absl::StrCat(copy.body.size()));
    }
    WriteUpstreamHead(head, target, false, admission.route,
                      ProxyHeaders{s.forwarded_for, s.request_id, s.trace.lines,
                                   owner_.inbound_ ? absl::string_view()
                                                   : worker_.source_headers(),
                                   {}},
                      &copy.head, "-shadow");
    copy.method = s.req.method;
    copy.target = std::string(target);
    copy.authority = s.req.authority;
    copy.te_trailers = WantsTrailers(s.req.headers);
    SendMirror(worker_, m.cluster, std::move(copy), s.timeout);
  }
}

void H2Session::KeepForReplay(Stream& s) {
  // What was sent is kept for a retry while it fits the policy's limit; the client may send as
  // much again once it is on its way.
  if (s.replay_ok && s.replay.size() + s.body.size() <= s.replay_limit) {
    s.replay += s.body;
  } else {
    s.replay_ok = false;
    s.replay.clear();
  }
  s.body.clear();
  if (s.client_unacked > 0) {
    codec_.Consume(s.id, s.client_unacked);
    s.client_unacked = 0;
    Flush();
  }
}

void H2Session::Finish(Stream& s) {
  const double ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - s.start)
          .count();
  if (s.gone && !s.response_complete) s.flags |= kDownstreamTermination;
  // Cut after the answer began (before it, the local reply carried its own flag).
  if (s.upstream_failed && s.response_head_at != SteadyTime{}) s.flags |= kUpstreamTermination;
  FinishedRequest r;
  RequestInfo& info = r.info;
  info.start_time = s.start_time;
  info.listener = owner_.listener_name_;
  info.method = s.req.method;
  info.authority = s.req.authority;
  info.path = s.req.path;
  info.version = 20;
  info.status = s.status;
  info.flags = s.flags;
  info.cluster = s.cluster;
  info.duration_ms = ms;
  if (s.response_head_at != SteadyTime{}) {
    info.response_duration_ms =
        std::chrono::duration<double, std::milli>(s.response_head_at - s.start).count();
  }
  info.bytes_received = s.bytes_received;
  info.bytes_sent = s.bytes_sent;
  info.request_id = s.request_id;
  info.trace_id = s.trace.trace_id;
  info.forwarded_for = s.forwarded_for;
  info.source_identity = owner_.peer_identity_;
  info.authz = s.authz_note;
  r.inbound = owner_.inbound_;
  r.grpc_status = s.grpc_status;
  r.route = s.route;
  r.host = s.host.get();
  r.source_workload = s.source_workload;
  r.source_version = s.source_version;
  r.client_ip = owner_.client_ip_;
  r.trace = &s.trace;
  RecordFinished(worker_, *owner_.listener_stats_, r);
}

}  // namespace outrigger::proxy
