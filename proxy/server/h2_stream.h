// H2Session's per-stream state, shared by h2_session.cc (the connection, the tries) and the two
// kinds of try: h2_session_http1.cc (HTTP/1.1 upstreams), h2_session_http2.cc (HTTP/2 upstreams).
// Private to those files.
#ifndef OUTRIGGER_PROXY_SERVER_H2_STREAM_H_
#define OUTRIGGER_PROXY_SERVER_H2_STREAM_H_

#include <boost/asio/steady_timer.hpp>
#include <memory>
#include <optional>
#include <string>

#include "proxy/http/http1_codec.h"
#include "proxy/server/h2_session.h"
#include "proxy/server/request_trace.h"
#include "proxy/server/retry_gate.h"
#include "proxy/upstream/h2_upstream.h"

namespace outrigger::proxy {

struct H2Session::Stream {
  explicit Stream(int32_t stream_id, const boost::asio::any_io_executor& ex)
      : id(stream_id),
        body_wake(ex, boost::asio::steady_timer::time_point::max()),
        window_wake(ex, boost::asio::steady_timer::time_point::max()) {}
  int32_t id;
  http::RequestHead req;
  std::string body;  // request data received, not yet sent upstream (or to send again)
  bool body_end = false;
  bool has_body = false;      // the request has a body (HEADERS did not end the stream)
  http2::Headers req_trailers;  // the client's trailers, passed on with the body's end
  size_t client_unacked = 0;  // request data received, not yet acknowledged to the client
  bool gone = false;  // reset by the client, or the connection ended
  // Two waiters, two timers (re-arming one timer cancels its other waiter).
  boost::asio::steady_timer body_wake;    // request data arrived, or the stream ended
  boost::asio::steady_timer window_wake;  // the client's window moved
  // The exchange.
  std::shared_ptr<const Snapshot> snapshot;
  const ListenerConfig* listener = nullptr;
  const router::Route* route = nullptr;
  std::string cluster;
  std::string authz_note;
  std::string request_id;
  std::shared_ptr<HostPool> host;
  std::unique_ptr<UpstreamConnection> upstream;
  boost::asio::ip::tcp::socket* connecting = nullptr;
  http::ResponseHead resp;
  http::BodyEncoder resp_body;
  std::string resp_out;  // response body bytes read, to hand to the codec
  std::optional<http::ResponseParser> parser;
  std::string to_upstream;
  int status = 0;  // the answer the client got (0: none yet)
  uint16_t flags = 0;
  // Tries (retries: retry_gate.h). The body sent so far is kept for a retry while it fits.
  RetryGate retry;
  std::string replay;  // replay + body == all request data received, while replay_ok
  size_t replay_limit = 0;
  bool replay_ok = true;
  enum class Fired { kNone, kPerTry, kRoute } fired = Fired::kNone;  // this try's deadline
  SteadyTime try_deadline = SteadyTime::max();
  TryFailure failure = TryFailure::kReset;  // why this try ended without an answer
  bool sent = false;            // this try sent request bytes (or opened a stream)
  bool held = false;            // this try's answer is held back: it is retried
  int held_status = 0;          // ... its status
  bool got_response_bytes = false;  // HTTP/1.1 upstream: this try's connection answered at all
  bool mirrored = false;
  bool upstream_failed = false;
  bool response_complete = false;
  SteadyTime start;
  absl::Time start_time;
  SteadyTime response_head_at{};
  uint64_t bytes_received = 0;
  uint64_t bytes_sent = 0;
  std::string forwarded_for;    // x-forwarded-for sent upstream
  std::string source_workload;  // inbound: who calls (metrics labels)
  std::string source_version;
  // HTTP/2 upstream (TryH2).
  struct Sink : H2Upstream::Owner {
    H2Session* session = nullptr;
    Stream* stream = nullptr;
    void OnUpstreamHeaders(http2::Headers headers, bool end_stream) override;
    void OnUpstreamData(absl::string_view data) override;
    void OnUpstreamTrailers(http2::Headers trailers) override;
    void OnUpstreamEnd() override;
    void OnUpstreamClose(uint32_t error_code) override;
    void OnUpstreamWritable() override { session->Wake(*stream); }
  } sink;
  std::shared_ptr<H2Upstream> h2up;
  int32_t up_id = -1;
  bool up_closed = false;
  uint32_t up_error = 0;
  bool trailers_sent = false;
  size_t up_unconsumed = 0;  // response bytes passed on, not yet acknowledged upstream
  std::string grpc_status;   // from the response's trailers (or a trailers-only answer)
  bool grpc = false;         // content-type application/grpc: local answers speak gRPC
  RequestTrace trace;
  absl::Duration timeout = absl::ZeroDuration();  // to the response head, every try; 0: none
};

}  // namespace outrigger::proxy

#endif  // OUTRIGGER_PROXY_SERVER_H2_STREAM_H_
