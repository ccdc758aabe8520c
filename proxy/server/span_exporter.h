// Sends finished spans to a trace collector (Zipkin v2 JSON or OTLP/HTTP JSON) from the main
// thread. Workers hand over batches with Submit() (a post, never a wait); the exporter keeps at
// most `max_queued` spans and drops (and counts) the rest, so a slow or absent collector costs
// memory up to that bound and never blocks a request. One POST is in flight at a time, on a
// keep-alive connection, each with a 5 s deadline.
#ifndef OUTRIGGER_PROXY_SERVER_SPAN_EXPORTER_H_
#define OUTRIGGER_PROXY_SERVER_SPAN_EXPORTER_H_

#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "filters/tracing/span.h"
#include "proxy/config/snapshot.h"

namespace outrigger::proxy {

struct CollectorUrl {
  Address address;
  std::string host;  // as written, for the Host header
  std::string path;
};
// "http://IP:PORT/path" or "http://localhost:PORT/path" (the path defaults to /api/v2/spans for
// Zipkin and /v1/traces for OTLP).
absl::StatusOr<CollectorUrl> ParseCollectorUrl(const std::string& url, tracing::Format format);

class SpanExporter {
 public:
  SpanExporter(boost::asio::io_context& main, CollectorUrl url, tracing::Format format,
               tracing::SpanSource source, size_t max_queued = 8192);
  ~SpanExporter();

  void Start();
  // Thread-safe: queues `spans` on the main thread.
  void Submit(std::vector<tracing::Span> spans);
  // Stops after the batch in flight (spans still queued are dropped).
  void Stop();

  // Main thread (for /metrics).
  uint64_t exported() const { return exported_; }
  uint64_t dropped() const { return dropped_; }
  uint64_t failed() const { return failed_; }  // spans in batches the collector did not take
  size_t queued() const { return queue_.size(); }
  // Nothing queued or being sent.
  bool idle() const { return queue_.empty() && !in_flight_; }

 private:
  boost::asio::awaitable<void> Run();
  boost::asio::awaitable<bool> Post(const std::string& body);

  boost::asio::io_context& main_;
  CollectorUrl url_;
  tracing::Format format_;
  tracing::SpanSource source_;
  size_t max_queued_;
  std::deque<tracing::Span> queue_;
  boost::asio::steady_timer wake_;
  struct Connection;
  std::unique_ptr<Connection> conn_;
  bool stopped_ = false;
  bool warned_ = false;
  bool in_flight_ = false;
  uint64_t exported_ = 0;
  uint64_t dropped_ = 0;
  uint64_t failed_ = 0;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace outrigger::proxy

#endif  // OUTRIGGER_PROXY_SERVER_SPAN_EXPORTER_H_
