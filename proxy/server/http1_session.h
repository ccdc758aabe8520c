// One downstream HTTP/1.x connection and the requests on it, start to finish: read a request head,
// route it, take an upstream connection from the worker's pool, stream the request body up and
// the response down (concurrently when the request has a body still to come), then log, count and
// either wait for the next request or close. See docs/life-of-a-request.md.
#ifndef OUTRIGGER_PROXY_SERVER_HTTP1_SESSION_H_
#define OUTRIGGER_PROXY_SERVER_HTTP1_SESSION_H_

#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <chrono>
#include <memory>
#include <optional>
#include <string>

#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "filters/tracing/trace_context.h"
#include "proxy/http/http1_codec.h"
#include "proxy/net/transport.h"
#include "proxy/server/message_heads.h"
#include "proxy/server/request_trace.h"
#include "proxy/server/retry_gate.h"
#include "proxy/server/worker.h"

namespace outrigger::proxy {

class H2Session;

class Http1Session : public std::enable_shared_from_this<Http1Session> {
 public:
  Http1Session(Worker& worker, boost::asio::ip::tcp::socket socket, std::string listener);
  ~Http1Session();

  static void Start(std::shared_ptr<Http1Session> self);
  // Called by the worker's sweep: acts on an expired deadline.
  void CheckDeadline(SteadyTime now);
  // Drain: closes the connection now if it is between requests.
  void CloseIfIdle();

 private:
  friend class H2Session;  // serves HTTP/2 connections with this session's transport and state
  // What the connection is waiting for; decides which timeout applies.
  enum class Phase {
    kIdle, kReadingHead, kConnecting, kAwaitingResponse, kStreaming, kBackoff, kLingering, kDone
  };
  // kResponse: the route timeout (covers every try); kPerTry: this try's timeout only.
  enum class Fired { kNone, kConnect, kResponse, kPerTry, kStreamIdle };
  enum class TryResult {
    kHead,            // the response head was read (request complete)
    kStreaming,       // head (and early body) sent; the rest of the body is still to stream
    kConnectFailure,  // no connection (refused, unreachable, connect timeout)
    kFailed,          // closed, reset or timed out before the response head
    kOverflow,        // a connection circuit breaker was full
  };
  template <typename T>
  using awaitable = boost::asio::awaitable<T>;

  awaitable<void> Run(std::shared_ptr<Http1Session> self);
  // Inbound mTLS by the listener's mode (STRICT / PERMISSIVE / DISABLE): detects a TLS
  // ClientHello, handshakes, records the client's SPIFFE ID. False: close the connection.
  awaitable<bool> AcceptTls();
  // Whether the client opened with the HTTP/2 preface (then H2Session serves the connection).
  awaitable<bool> StartsWithHttp2Preface();
  // Reads one request head. Returns false when the connection should close.
  awaitable<bool> ReadRequestHead();
  void BeginRequest();
  // Forwards the request whose head was just read. Returns true to keep the connection.
  awaitable<bool> HandleRequest();
  awaitable<TryResult> TryOnce(const CircuitBreakerConfig& limits);
  awaitable<std::unique_ptr<UpstreamConnection>> Connect();
  // Retry decisions (retry_gate.h), which also take the retry from the breaker and the budget.
  bool ShouldRetryStatus(int status);
  bool ShouldRetryFailure(Outcome outcome, bool sent);
  awaitable<void> Backoff(int retry);
  Outcome FailureOutcome() const;
  void RecordTry(Outcome outcome);  // outlier detection
  void EndTry();                    // the try's host gauge
  void AwaitResponse();             // phase and deadlines while waiting for a response head
  bool Chance(double percent);
  void MaybeMirror(const std::string& sent);
  awaitable<boost::system::error_code> ReadResponseHead();
  awaitable<void> PumpRequestBody();
  awaitable<void> PumpResponse(bool head_already_read);
  // After a 101 answer to an Upgrade request (WebSocket and others): relays bytes both ways
  // until both sides have finished (tunnel.cc).
  awaitable<void> Tunnel();
  awaitable<void> Relay(bool upstream_bound);
  // A cluster whose upstream protocol is HTTP/2 (h2.cc): the request as an HTTP/2 stream.
  awaitable<bool> ForwardOverH2(absl::string_view target);
  // Raw TCP (tcp.cc): the listener's protocol is TCP, or DETECT found no HTTP request line.
  awaitable<bool> DetectHttp();  // true: HTTP; false: relay as TCP
  awaitable<void> ProxyTcp();
  // Reads more client bytes into in_, waiting at most `timeout`. Sets *timed_out.
  awaitable<boost::system::error_code> ReadClientFor(absl::Duration timeout, bool* timed_out);
  // Before TLS detection: whether the client sends anything within `timeout`.
  awaitable<bool> ClientSpeaksWithin(absl::Duration timeout);
  // A reply made by the proxy itself (404, 503, ...). Returns whether to keep the connection.
  awaitable<bool> LocalReply(int status, absl::string_view body, uint16_t flag, bool close,
                             absl::string_view location = {});
  // The reply for an upstream that failed before its response head reached the client.
  awaitable<bool> UpstreamFailureReply();
  void BuildUpstreamHead(absl::string_view target, bool chunked);
  ProxyHeaders ForwardedHeaders() const;
  void BuildResponseHead(http::Framing framing);
  void FinishRequest();  // stats, span, access log (request_record.h)
  void SetPhase(Phase phase, absl::Duration timeout);
  void Touch();  // progress while streaming: push the stream-idle deadline out

  Worker& worker_;
  Transport client_;
  const std::string listener_name_;
  ListenerStats* listener_stats_;
  std::string client_ip_;
  std::string peer_identity_;  // the client's SPIFFE ID (inbound mTLS), or ""
  std::string authz_note_;     // the authorization decision, for the access log
  bool inbound_ = false;       // an inbound listener: the mesh calls the local app
  H2Session* h2_ = nullptr;    // while the connection speaks HTTP/2

  // Per connection, reused across requests.
  boost::beast::flat_buffer in_;
  std::string to_upstream_;
  std::string to_client_;
  http::RequestHead req_;
  http::ResponseHead resp_;
  http::BodyEncoder req_body_;
  http::BodyEncoder resp_body_;
  std::optional<http::RequestParser> req_parser_;
  std::optional<http::ResponseParser> resp_parser_;

  // Per request.
  std::shared_ptr<const Snapshot> snapshot_;
  const ListenerConfig* listener_ = nullptr;
  const router::Route* route_ = nullptr;  // in snapshot_
  std::shared_ptr<HostPool> host_;
  std::unique_ptr<UpstreamConnection> upstream_;
  boost::system::error_code upstream_error_;
  absl::Duration route_timeout_;
  boost::asio::ip::tcp::socket* connecting_ = nullptr;
  std::string request_id_;
  std::string forwarded_for_;
  std::string upgrade_;  // the Upgrade header of a request that asks to switch protocols
  // Inbound: the calling workload, for metrics (from its certificate and its sidecar's headers).
  std::string source_workload_;
  std::string source_version_;
  // Tracing: the caller's context, our span (0: not tracing), the headers sent onward.
  RequestTrace trace_;
  absl::string_view cluster_name_;
  absl::string_view target_;  // the path sent upstream (lives in HandleRequest)
  const router::RetryPolicy* retry_ = nullptr;  // in snapshot_
  ClusterStats* cstats_ = nullptr;  // the cluster's stats (stable for the worker's life)
  std::optional<uint64_t> hash_;    // consistent-hashing key of the request
  absl::Duration ewma_decay_ = absl::Seconds(10);
  bool outlier_detection_ = false;  // the cluster has it: report each try's outcome
  // Retries: the request as sent (head and framed body) while it fits the policy's limit.
  std::string replay_;
  size_t replay_limit_ = 0;
  size_t head_size_ = 0;
  bool replay_ok_ = false;
  RetryGate retry_gate_;
  SteadyTime try_start_;
  SteadyTime response_deadline_ = SteadyTime::max();  // route timeout, over every try
  bool response_deadline_set_ = false;
  SteadyTime try_deadline_ = SteadyTime::max();
  bool counted_active_ = false;  // counted in cstats_->rq_active
  bool host_active_ = false;     // counted in host_->active_requests
  bool retry_pending_ = false;   // a retriable answer came while streaming: retry
  bool connect_failed_ = false;
  bool mirrored_ = false;
  absl::Time start_time_;
  SteadyTime start_;
  SteadyTime response_head_at_;  // when the (last try's) response head arrived
  uint16_t flags_ = 0;
  int status_ = 0;
  uint64_t bytes_received_ = 0;
  uint64_t bytes_sent_ = 0;
  uint64_t upstream_bytes_ = 0;  // response bytes read from the current upstream connection
  bool request_complete_ = false;
  bool response_complete_ = false;
  bool response_started_ = false;  // head written to the client: no local reply possible now
  bool client_keep_alive_ = false;
  bool upstream_failed_ = false;
  bool client_failed_ = false;
  bool in_request_ = false;
  bool linger_ = false;  // input may be left unread: drain it briefly before closing

  Phase phase_ = Phase::kIdle;
  Fired fired_ = Fired::kNone;
  SteadyTime deadline_ = SteadyTime::max();
  absl::Duration stream_idle_timeout_ = absl::Seconds(300);
};

}  // namespace outrigger::proxy

#endif  // OUTRIGGER_PROXY_SERVER_HTTP1_SESSION_H_
