// See retry_gate.h.
#include "proxy/server/retry_gate.h"

#include "filters/retry/backoff.h"
#include "proxy/http/http1_codec.h"
#include "proxy/server/stats.h"
#include "proxy/server/worker.h"

namespace outrigger::proxy {

Outcome OutcomeOfStatus(int status) {
  if (status == 502 || status == 503 || status == 504) return Outcome::kGatewayError;
  if (status >= 500) return Outcome::kServerError;
  return Outcome::kSuccess;
}

void RetryGate::Begin(Worker& worker, const router::RetryPolicy& policy,
                      absl::string_view cluster, ClusterStats& stats, absl::string_view method,
                      uint16_t* flags) {
  EndTry();
  worker_ = &worker;
  policy_ = &policy;
  cluster_ = cluster;
  stats_ = &stats;
  flags_ = flags;
  idempotent_ = http::IsIdempotent(method);
  deadline_ = SteadyTime::max();
  retries_ = 0;
}

bool RetryGate::RetryAnswer(int status, int grpc_code) {
  if (grpc_code >= 0 && policy_->RetriableGrpc(grpc_code)) return Take(/*safe=*/true);
  if (!policy_->RetriableStatus(status)) return false;
  return Take(/*safe=*/false);
}

bool RetryGate::RetryFailure(TryFailure failure, bool sent) {
  const router::RetryPolicy& p = *policy_;
  bool condition = false;
  switch (failure) {
    case TryFailure::kConnect:
      condition = p.on_connect_failure;
      sent = false;
      break;
    case TryFailure::kRefusedStream:
      condition = p.on_refused_stream;
      sent = false;
      break;
    case TryFailure::kReset:
      condition = p.on_reset;
      break;
    case TryFailure::kPerTryTimeout:
      condition = p.on_5xx || p.on_gateway_error || p.on_reset;
      break;
    case TryFailure::kRouteTimeout:
      break;
  }
  return condition && Take(/*safe=*/!sent);
}

bool RetryGate::Take(bool safe) {
  if (!safe && !idempotent_ && !policy_->retry_non_idempotent) return false;
  if (retries_ >= policy_->num_retries) {
    if (policy_->num_retries > 0) {
      ++stats_->rq_retry_limit_exceeded;
      if (policy_->configured && flags_ != nullptr) *flags_ |= kRetryLimitExceeded;
    }
    return false;
  }
  const auto now = std::chrono::steady_clock::now();
  if (now >= deadline_) return false;
  ClusterState* cluster = worker_->clusters().Find(cluster_);
  if (cluster == nullptr) return false;
  if (stats_->rq_retry_active >= static_cast<int64_t>(cluster->limits().max_retries)) {
    ++stats_->rq_retry_overflow;
    return false;
  }
  if (!cluster->retry_budget().TryWithdraw(ToNanos(now))) {
    ++stats_->rq_retry_budget_exhausted;
    return false;
  }
  EndTry();
  ++retries_;
  ++stats_->rq_retry;
  ++stats_->rq_retry_active;
  active_ = true;
  return true;
}

absl::Duration RetryGate::Backoff(int retry) {
  absl::Duration wait = retry::FullJitterBackoff(retry, policy_->base_interval,
                                                 policy_->max_interval, worker_->Random());
  if (deadline_ != SteadyTime::max()) {
    wait = std::min(wait, absl::FromChrono(deadline_ - std::chrono::steady_clock::now()));
  }
  return std::max(wait, absl::ZeroDuration());
}

void RetryGate::EndTry() {
  if (active_) {
    --stats_->rq_retry_active;
    active_ = false;
  }
}

}  // namespace outrigger::proxy
