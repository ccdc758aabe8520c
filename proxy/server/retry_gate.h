// Whether a request is tried again, the same for every protocol path (HTTP/1.1 or HTTP/2 from the
// client, HTTP/1.1 or HTTP/2 to the upstream): first the route's retry conditions (HTTP statuses,
// the gRPC code of a trailers-only answer, connect failures, refused streams, resets, per-try
// timeouts), then the limits every retry must pass: the policy's count, the route deadline, the
// method's idempotency, the cluster's max_retries breaker and its retry budget. Also the
// full-jitter wait before a retry. One per request; the session owns the bytes and the timers
// and asks the gate only when a try has ended without an answer the client may have.
#ifndef OUTRIGGER_PROXY_SERVER_RETRY_GATE_H_
#define OUTRIGGER_PROXY_SERVER_RETRY_GATE_H_

#include <cstdint>

#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "filters/router/route_policies.h"
#include "proxy/upstream/cluster_manager.h"

namespace outrigger::proxy {

class Worker;

// Why a try ended without an answer.
enum class TryFailure {
  kConnect,        // no connection (refused, unreachable, connect timeout): nothing was sent
  kRefusedStream,  // an HTTP/2 upstream refused the stream: nothing was processed
  kReset,          // closed or reset before the response head
  kPerTryTimeout,  // no response head within the policy's per-try timeout
  kRouteTimeout,   // the route timeout (over every try) ran out: never retried
};

// What an answer with `status` says of the host, for outlier detection.
Outcome OutcomeOfStatus(int status);

class RetryGate {
 public:
  // `flags` gets URX (retry limit exceeded) when a configured policy runs out of retries.
  void Begin(Worker& worker, const router::RetryPolicy& policy, absl::string_view cluster,
             ClusterStats& stats, absl::string_view method, uint16_t* flags);
  // The route timeout covers every try: no retry starts after it.
  void set_deadline(SteadyTime deadline) { deadline_ = deadline; }
  SteadyTime deadline() const { return deadline_; }
  const router::RetryPolicy& policy() const { return *policy_; }

  // An answer with `status` (and `grpc_code` of a trailers-only gRPC answer, else -1): true when
  // the policy retries it and a retry was taken (counted, holding a place in max_retries until
  // EndTry). The caller must be able to send the request again.
  bool RetryAnswer(int status, int grpc_code);
  // A try that failed: true when the policy retries it and a retry was taken. `sent`: request
  // bytes may have reached the upstream (then non-idempotent methods need retryNonIdempotent).
  bool RetryFailure(TryFailure failure, bool sent);
  // The wait before retry number `retry` (1, 2, ...), never past the deadline.
  absl::Duration Backoff(int retry);
  // A retry's try has ended: its place in the max_retries breaker is free again.
  void EndTry();
  uint32_t retries() const { return retries_; }

 private:
  bool Take(bool safe);

  Worker* worker_ = nullptr;
  const router::RetryPolicy* policy_ = nullptr;
  absl::string_view cluster_;
  ClusterStats* stats_ = nullptr;
  uint16_t* flags_ = nullptr;
  bool idempotent_ = true;
  SteadyTime deadline_ = SteadyTime::max();
  uint32_t retries_ = 0;
  bool active_ = false;  // counted in stats_->rq_retry_active
};

}  // namespace outrigger::proxy

#endif  // OUTRIGGER_PROXY_SERVER_RETRY_GATE_H_
