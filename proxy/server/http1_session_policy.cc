// See http1_session.h: the traffic-management decisions of one request, apart from the byte
// moving of http1_session.cc: fault draws, each try's outcome for outlier detection, whether and
// when to retry (retry_gate.h: conditions, budget, breaker, backoff) and request mirrors. The
// consistent-hashing key is hash_key.h. See docs/life-of-a-request.md, step 5.
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "proxy/server/http1_session.h"
#include "proxy/server/message_heads.h"
#include "proxy/server/mirror.h"

namespace outrigger::proxy {

namespace asio = boost::asio;
using asio::ip::tcp;

namespace {
constexpr auto kTuple = asio::as_tuple(asio::use_awaitable);
}  // namespace

bool Http1Session::Chance(double percent) {
  return worker_.Chance(percent);
}

Outcome Http1Session::FailureOutcome() const {
  if (fired_ == Fired::kPerTry || fired_ == Fired::kResponse) return Outcome::kTimeout;
  if (fired_ == Fired::kConnect) return Outcome::kConnectFailure;
  return Outcome::kReset;
}

void Http1Session::RecordTry(Outcome outcome) {
  if (outcome == Outcome::kTimeout && fired_ == Fired::kPerTry) ++cstats_->rq_per_try_timeout;
  if (!outlier_detection_) return;
  if (ClusterState* c = worker_.clusters().Find(cluster_name_)) {
    c->RecordOutcome(host_.get(), outcome, ToNanos(std::chrono::steady_clock::now()));
  }
}

void Http1Session::EndTry() {
  if (host_active_) {
    --host_->active_requests;
    host_active_ = false;
  }
}

bool Http1Session::ShouldRetryStatus(int status) {
  if (!request_complete_ || !replay_ok_) return false;
  return retry_gate_.RetryAnswer(status, /*grpc_code=*/-1);
}

bool Http1Session::ShouldRetryFailure(Outcome outcome, bool sent) {
  if (client_failed_) return false;
  switch (outcome) {
    case Outcome::kConnectFailure:
      return retry_gate_.RetryFailure(TryFailure::kConnect, sent);
    case Outcome::kReset:
      return retry_gate_.RetryFailure(TryFailure::kReset, sent);
    case Outcome::kTimeout:
      // An overall (route) timeout ends the request; a per-try timeout may be retried.
      return retry_gate_.RetryFailure(
          fired_ == Fired::kPerTry ? TryFailure::kPerTryTimeout : TryFailure::kRouteTimeout, sent);
    default:
      return false;
  }
}

asio::awaitable<void> Http1Session::Backoff(int retry) {
  const absl::Duration wait = retry_gate_.Backoff(retry);
  phase_ = Phase::kBackoff;
  deadline_ = SteadyTime::max();
  if (wait <= absl::ZeroDuration()) co_return;
  asio::steady_timer timer(client_.socket().get_executor());
  timer.expires_after(absl::ToChronoNanoseconds(wait));
  (void)co_await timer.async_wait(kTuple);
}

void Http1Session::MaybeMirror(const std::string& sent) {
  if (route_ == nullptr || route_->mirrors.empty() || mirrored_) return;
  mirrored_ = true;
  for (const auto& m : route_->mirrors) {
    if (!Chance(m.percent)) continue;
    if (!replay_ok_ || sent.size() < head_size_) {
      // The body was larger than the replay limit: it was not kept, so it cannot be copied.
      if (ClusterState* c = worker_.clusters().Find(m.cluster)) ++c->stats().rq_mirror_dropped;
      continue;
    }
    MirrorCopy copy;
    WriteUpstreamHead(req_, target_, req_parser_->chunked(), route_, ForwardedHeaders(),
                      &copy.head, "-shadow");
    copy.body = sent.substr(head_size_);
    copy.chunked = req_parser_->chunked();
    copy.method = req_.method;
    copy.target = std::string(target_);
    copy.authority = req_.authority;
    SendMirror(worker_, m.cluster, std::move(copy), route_timeout_);
  }
}

}  // namespace outrigger::proxy
