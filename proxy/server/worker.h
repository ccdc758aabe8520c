// A worker: one thread running one single-threaded io_context that owns its own SO_REUSEPORT
// acceptors, sessions, upstream pools, load-balancer state, stats and access-log buffer. Nothing
// here is shared with other threads except through posted functions, so nothing is locked.
// The main thread hands it new config snapshots with ApplySnapshot().
#ifndef OUTRIGGER_PROXY_SERVER_WORKER_H_
#define OUTRIGGER_PROXY_SERVER_WORKER_H_

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "filters/ratelimit/token_bucket.h"
#include "proxy/config/snapshot.h"
#include "proxy/server/access_log.h"
#include "proxy/server/stats.h"
#include "proxy/server/telemetry.h"
#include "proxy/server/tls_state.h"
#include "proxy/upstream/cluster_manager.h"

namespace outrigger::proxy {

class Http1Session;
class SpanExporter;

// A listening socket the main thread created for this worker.
struct ListenerSocket {
  std::string name;
  int fd = -1;
  bool ipv6 = false;
};

class Worker {
 public:
  // `workers`: how many workers the proxy runs (they split circuit-breaker limits, retry-budget
  // floors and rate-limit buckets). `telemetry` outlives the worker; `exporter` (null: no
  // tracing) lives on the main thread and is only posted to.
  Worker(int index, int workers, const TelemetryOptions& telemetry, SpanExporter* exporter);
  ~Worker();
  Worker(const Worker&) = delete;
  Worker& operator=(const Worker&) = delete;

  void Start();
  void Stop();  // stops the loop and joins the thread
  boost::asio::io_context& io_context() { return *ioc_; }
  int index() const { return index_; }
  // Sessions open on this worker (read from other threads for draining).
  int active_sessions() const { return active_sessions_.load(std::memory_order_relaxed); }

  // Called on the worker thread (post them):
  void ApplySnapshot(std::shared_ptr<const Snapshot> snapshot, std::vector<ListenerSocket> add);
  void BeginDrain();
  void FlushAccessLog() { access_log_.Flush(); }

  // For sessions, on the worker thread:
  const std::shared_ptr<const Snapshot>& snapshot() const { return snapshot_; }
  ClusterManager& clusters() { return clusters_; }
  WorkerStats& stats() { return stats_; }
  ListenerStats* listener_stats(const std::string& name) { return &stats_.listeners[name]; }
  bool draining() const { return draining_; }
  int workers() const { return workers_; }
  // The workload's TLS contexts (null until the mesh CA issued a certificate).
  const std::shared_ptr<const TlsState>& tls() const { return tls_; }
  void SetTls(std::shared_ptr<const TlsState> tls) { tls_ = std::move(tls); }
  // Local rate limiting: takes a token from this worker's bucket for `config` (its share of
  // the tokens). False: answer 429.
  bool TakeToken(const router::RateLimitConfig& config, SteadyTime now);
  uint64_t Random();
  // True with probability `percent` / 100 (exactly never at 0, always at 100).
  bool Chance(double percent);
  bool access_log_enabled() const { return access_log_.enabled(); }
  // Whether to log this request: always for errors (5xx, response flags), else sampled.
  bool ShouldLog(int status, uint16_t flags);
  void LogRequest(const RequestInfo& info);
  // Telemetry: this workload's labels, and spans.
  const TelemetryOptions& telemetry() const { return telemetry_; }
  const std::string& service_label() const { return service_label_; }
  const std::string& workload_label() const { return workload_label_; }
  const std::string& version_label() const { return version_label_; }
  // "x-outrigger-source-workload: ...\r\n..." for requests to mesh peers ("" when unknown).
  const std::string& source_headers() const { return source_headers_; }
  bool tracing() const { return exporter_ != nullptr; }
  void RecordSpan(tracing::Span span);
  std::string& key_scratch() { return key_scratch_; }
  void Register(Http1Session* s);
  void Unregister(Http1Session* s);

 private:
  struct Acceptor {
    std::string name;
    std::unique_ptr<boost::asio::ip::tcp::acceptor> acceptor;
  };
  void AcceptLoop(Acceptor* a);
  void ArmSweep();
  void FlushSpans();

  const int index_;
  const int workers_;
  // Destroyed explicitly in ~Worker, after the thread stopped and before the state that pending
  // handlers (sessions' coroutine frames) still touch when they are destroyed with it.
  // UNSAFE_IO: every socket of a worker is used by the worker thread alone, so the reactor's
  // per-socket lock is not needed; the scheduler stays locked for posts from the main thread.
  std::unique_ptr<boost::asio::io_context> ioc_ =
      std::make_unique<boost::asio::io_context>(BOOST_ASIO_CONCURRENCY_HINT_UNSAFE_IO);
  std::thread thread_;
  std::shared_ptr<const Snapshot> snapshot_;
  WorkerStats stats_;
  ClusterManager clusters_{&stats_, workers_};
  absl::flat_hash_map<uint64_t, ratelimit::TokenBucket> buckets_;  // by RateLimitConfig::id
  std::shared_ptr<const TlsState> tls_;
  AccessLog access_log_;
  const TelemetryOptions& telemetry_;
  const std::string service_label_;
  const std::string workload_label_;
  const std::string version_label_;
  std::string source_headers_;
  SpanExporter* exporter_;
  std::vector<tracing::Span> spans_;  // finished, not yet handed to the exporter
  std::string key_scratch_;
  std::unique_ptr<boost::asio::steady_timer> sweep_timer_ =
      std::make_unique<boost::asio::steady_timer>(*ioc_);
  std::unique_ptr<boost::asio::steady_timer> log_timer_ =
      std::make_unique<boost::asio::steady_timer>(*ioc_);
  bool log_flush_armed_ = false;
  std::vector<std::unique_ptr<Acceptor>> acceptors_;
  absl::flat_hash_set<Http1Session*> sessions_;
  std::atomic<int> active_sessions_{0};
  bool draining_ = false;
  uint64_t rng_state_;
  int sweeps_ = 0;
};

}  // namespace outrigger::proxy

#endif  // OUTRIGGER_PROXY_SERVER_WORKER_H_
