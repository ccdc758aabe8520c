// One HTTP/2 connection's framing, with nghttp2 and without I/O: the owner feeds it the bytes it
// read (Receive), writes what it produces (TakeOutput), learns about streams through Events and
// drives them with Submit*/SendData. Server and client roles. The protections a proxy facing
// untrusted peers needs are set here, once: our windows bound the memory a peer can make us hold
// per stream and per connection (data is acknowledged only when the owner Consume()s it), at most
// `max_concurrent_streams` streams, header lists of at most `max_header_list_bytes`, at most
// `max_continuations` CONTINUATION frames per header block (CVE-2024-27316/28182), and a token
// bucket on streams the peer resets (rapid reset, CVE-2023-44487): past it, nghttp2 ends the
// connection with GOAWAY (INTERNAL_ERROR). A fatal error (a CONTINUATION flood) makes Receive
// fail: the owner closes the connection. One codec per connection, used by one thread.
#ifndef OUTRIGGER_PROXY_HTTP2_H2_CODEC_H_
#define OUTRIGGER_PROXY_HTTP2_H2_CODEC_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/strings/string_view.h"

struct nghttp2_session;

namespace outrigger::http2 {

struct Header {
  std::string name;  // lower case; pseudo-headers start with ':'
  std::string value;
};
using Headers = std::vector<Header>;

// HTTP/2 error codes (RFC 9113 section 7) the proxy uses.
enum ErrorCode : uint32_t {
  kNoError = 0x0,
  kProtocolError = 0x1,
  kInternalError = 0x2,
  kRefusedStream = 0x7,
  kCancel = 0x8,
  kEnhanceYourCalm = 0xb,
};

struct Limits {
  uint32_t max_concurrent_streams = 128;
  uint32_t stream_window = 256 * 1024;     // what a peer may send on a stream before we Consume
  uint32_t connection_window = 1 << 20;    // ... on all streams together
  uint32_t max_header_list_bytes = 64 * 1024;
  uint32_t max_continuations = 8;
  uint64_t reset_burst = 1000;  // streams the peer may reset at once ...
  uint64_t reset_rate = 33;     // ... and per second after that
};

class Codec {
 public:
  enum class Role { kServer, kClient };

  class Events {
   public:
    virtual ~Events() = default;
    // A stream's first header block: a request (server role) or a response (client role).
    // Interim (1xx) responses are not reported.
    virtual void OnHeaders(int32_t stream, Headers headers, bool end_stream) = 0;
    virtual void OnData(int32_t stream, absl::string_view data) = 0;
    virtual void OnTrailers(int32_t stream, Headers trailers) = 0;
    // The peer finished sending on the stream (END_STREAM on headers, data or trailers).
    virtual void OnEndStream(int32_t stream) = 0;
    // The stream is gone (both sides done, or reset by either: `error_code` says why).
    virtual void OnStreamClose(int32_t stream, uint32_t error_code) = 0;
    virtual void OnGoaway(uint32_t error_code, int32_t last_stream_id) { (void)error_code, (void)last_stream_id; }
  };

  Codec(Role role, Events* events, const Limits& limits = {});
  ~Codec();
  Codec(const Codec&) = delete;
  Codec& operator=(const Codec&) = delete;

  // Processes bytes from the peer. An error means the connection is broken (a GOAWAY may be
  // waiting in the output: write it, then close).
  absl::Status Receive(absl::string_view bytes);
  // Appends the frames waiting to be written to `out`.
  absl::Status TakeOutput(std::string* out);
  // False once both sides are done with the connection (GOAWAY sent and received, or fatal).
  bool alive() const;

  // Client: opens a stream with a request head; returns its id (< 0 on error).
  int32_t SubmitRequest(const Headers& headers, bool end_stream);
  // Server: the response head of `stream`.
  absl::Status SubmitResponse(int32_t stream, const Headers& headers, bool end_stream);
  // Queues body bytes on `stream`, sent as the peer's windows allow; `end` closes our side
  // (unless trailers follow with SendTrailers, which also closes it).
  absl::Status SendData(int32_t stream, absl::string_view data, bool end);
  absl::Status SendTrailers(int32_t stream, const Headers& trailers);
  void ResetStream(int32_t stream, uint32_t error_code);
  // Graceful GOAWAY: no new streams; those already open finish.
  void Goaway(uint32_t error_code = kNoError);
  // The owner forwarded `n` bytes of the stream's data: the peer may send that much more.
  void Consume(int32_t stream, size_t n);
  // Body bytes queued by SendData and not yet framed (backpressure towards the owner).
  size_t Queued(int32_t stream) const;
  // Open streams.
  size_t streams() const { return streams_.size(); }

 private:
  struct Stream {
    Headers headers;           // the header block being received
    size_t header_bytes = 0;   // its size so far (names + values + 32 each, as RFC 9113 counts)
    bool headers_done = false; // the first block arrived: a later block is trailers
    std::string out;           // body to send
    size_t out_offset = 0;
    bool out_end = false;      // no more body after `out`
    bool data_deferred = false;
    bool has_provider = false;
    std::unique_ptr<Headers> trailers;  // to send after the body
  };
  friend struct CodecCallbacks;
  Stream& StreamOf(int32_t id) { return streams_[id]; }
  absl::Status StartData(int32_t stream, Stream& s);

  Role role_;
  Events* events_;
  Limits limits_;
  nghttp2_session* session_ = nullptr;
  absl::flat_hash_map<int32_t, Stream> streams_;
  std::string receive_error_;
};

}  // namespace outrigger::http2

#endif  // OUTRIGGER_PROXY_HTTP2_H2_CODEC_H_
