// HTTP/2 from clients: a connection that opened with the HTTP/2 preface (h2c with prior
// knowledge, or h2 after TLS) is served here instead of by the HTTP/1.1 loop. Each stream is one
// request: it goes through the same admission as HTTP/1.1 (route, redirect, STRICT, authorization,
// rate limits, fault; admission.cc), is forwarded over a pooled HTTP/1.1 connection to the
// upstream host the cluster's balancer picks (mTLS to mesh peers), tried again under the route's
// retry policy (retry_gate.h: the body kept for replay, retriable answers held back), and its
// response streams back as HEADERS, DATA and trailers (from a chunked HTTP/1.1 response's
// trailers). Mirrors get a copy (as HTTP/1.1) when the body fits the replay limit. Memory per stream and per connection is bounded by the codec's
// windows: request data is acknowledged only once written upstream, and a response's data waits
// upstream while the client's window is full. Drain sends GOAWAY and lets open streams finish.
// Counted, logged ("protocol":"HTTP/2") and labelled like HTTP/1.1 requests.
//
// A cluster whose upstream protocol is HTTP/2 (gRPC servers) gets each stream as a stream of one
// multiplexed HTTP/2 connection per host (h2_upstream.h): headers, data and trailers pass through,
// flow control end to end; retries as above (a gRPC code counts in a trailers-only answer).
// Spans as for HTTP/1.1.
// See docs/life-of-a-request.md.
#ifndef OUTRIGGER_PROXY_SERVER_H2_SESSION_H_
#define OUTRIGGER_PROXY_SERVER_H2_SESSION_H_

#include <boost/asio/awaitable.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <memory>
#include <string>

#include "absl/container/flat_hash_map.h"
#include "proxy/http2/h2_codec.h"
#include "proxy/net/transport.h"
#include "proxy/server/admission.h"
#include "proxy/server/request_trace.h"
#include "proxy/server/worker.h"

namespace outrigger::proxy {

class Http1Session;

// The 24 bytes every HTTP/2 connection starts with.
inline constexpr absl::string_view kHttp2Preface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

class H2Session : public http2::Codec::Events {
 public:
  // `owner` keeps the connection (its transport, buffer, identity) alive while Run runs.
  explicit H2Session(Http1Session& owner);
  ~H2Session() override;

  // Serves the connection until it ends; `owner.in_` holds the bytes read so far.
  boost::asio::awaitable<void> Run();
  // Drain: GOAWAY now; the connection closes when its streams have finished.
  void BeginDrain();

 private:
  struct Stream;
  template <typename T>
  using awaitable = boost::asio::awaitable<T>;

  // Codec events.
  void OnHeaders(int32_t id, http2::Headers headers, bool end_stream) override;
  void OnData(int32_t id, absl::string_view data) override;
  void OnTrailers(int32_t id, http2::Headers trailers) override;
  void OnEndStream(int32_t id) override;
  void OnStreamClose(int32_t id, uint32_t error_code) override;

  // How one try ended.
  enum class TryEnd {
    kAnswered,  // the response (head and on) went to the client
    kHeld,      // a retriable answer, held back: the retry was taken
    kFailed,    // no answer (Stream::failure says why)
    kOverflow,  // the cluster's max_connections breaker is full
  };

  awaitable<void> Serve(std::shared_ptr<Stream> s);
  // Tries hosts until an answer the client may have (retries: retry_gate.h).
  awaitable<void> Forward(Stream& s, const Admission& admission, absl::string_view target);
  // One try over a pooled HTTP/1.1 connection to s.host; `head` is the request head as text
  // (h2_session_http1.cc).
  awaitable<TryEnd> TryH1(Stream& s, const std::string& head);
  // One try as a stream of s.host's multiplexed HTTP/2 connection (h2_session_http2.cc).
  awaitable<TryEnd> TryH2(Stream& s, const http2::Headers& head);
  // The answer just read may be retried: true when the retry was taken (hold it back).
  bool HoldForRetry(Stream& s, int status, int grpc_code);
  void RecordTry(Stream& s, Outcome outcome);  // outlier detection
  void MaybeMirror(Stream& s, const Admission& admission, absl::string_view target);
  awaitable<void> SendRequestBody(Stream& s);
  // The body bytes in s.body are on their way: keep them for a retry (while they fit) and let
  // the client send as much more.
  void KeepForReplay(Stream& s);
  awaitable<bool> ReadResponseHead(Stream& s);
  awaitable<void> StreamResponse(Stream& s);
  void LocalReply(Stream& s, int status, absl::string_view body, uint16_t flag,
                  absl::string_view location = {});
  void Finish(Stream& s);
  awaitable<void> Wait(boost::asio::steady_timer& timer);  // until Wake (data, window, reset)
  void Wake(Stream& s);
  void Flush();
  awaitable<void> Writer();
  void EndIfDrained();  // after GOAWAY, once the last stream closed: end the connection

  Http1Session& owner_;
  Worker& worker_;
  http2::Codec codec_;
  absl::flat_hash_map<int32_t, std::shared_ptr<Stream>> streams_;
  std::unique_ptr<boost::asio::steady_timer> writer_wake_;
  std::unique_ptr<boost::asio::steady_timer> done_wake_;
  size_t serving_ = 0;  // Serve coroutines running
  bool writer_running_ = false;
  bool closing_ = false;  // the reader is done: the writer stops once nothing is left
  bool goaway_sent_ = false;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace outrigger::proxy

#endif  // OUTRIGGER_PROXY_SERVER_H2_SESSION_H_
