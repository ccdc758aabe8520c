// One multiplexed HTTP/2 connection to an upstream host: h2c, or h2 over mTLS to a mesh peer (the
// peer sidecar recognizes the HTTP/2 preface after its TLS handshake). A worker keeps at most
// one per host (HostPool::h2) and sends every HTTP/2 stream for that host over it, as long as it
// is usable (open, no GOAWAY received, below the peer's stream limit). Each stream's owner hears
// the answer through H2Upstream::Owner; flow control is end to end: the owner Consume()s response
// data once the client took it. Reader and writer coroutines keep the connection alive while it
// is open; when it fails, every open stream hears OnUpstreamClose. A connection without streams
// for the cluster's idle_timeout is closed by the worker's sweep (ClusterState::CloseIdleOlderThan).
#ifndef OUTRIGGER_PROXY_UPSTREAM_H2_UPSTREAM_H_
#define OUTRIGGER_PROXY_UPSTREAM_H2_UPSTREAM_H_

#include <boost/asio/awaitable.hpp>
#include <boost/asio/steady_timer.hpp>
#include <memory>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "proxy/http2/h2_codec.h"
#include "proxy/upstream/cluster_manager.h"

namespace outrigger::proxy {

// Data a stream lets wait in a codec for the peer's window before its sender pauses (request data
// to an upstream, response data to a client): bounds memory per stream.
inline constexpr size_t kMaxQueuedStreamBytes = 256 * 1024;

class H2Upstream : public http2::Codec::Events,
                   public std::enable_shared_from_this<H2Upstream> {
 public:
  class Owner {
   public:
    virtual ~Owner() = default;
    virtual void OnUpstreamHeaders(http2::Headers headers, bool end_stream) = 0;
    virtual void OnUpstreamData(absl::string_view data) = 0;
    virtual void OnUpstreamTrailers(http2::Headers trailers) = 0;
    virtual void OnUpstreamEnd() = 0;
    // The stream is over (after its end, or reset: `error_code` != 0, or the connection died).
    virtual void OnUpstreamClose(uint32_t error_code) = 0;
    // The connection took queued request data: more may be sent.
    virtual void OnUpstreamWritable() {}
  };

  explicit H2Upstream(std::unique_ptr<UpstreamConnection> connection);
  ~H2Upstream() override;

  // The host's shared connection when it can take a stream, else null.
  static std::shared_ptr<H2Upstream> Usable(const HostPool& host);
  // A new connection to connection->host, started and made the host's shared one.
  static std::shared_ptr<H2Upstream> Adopt(std::unique_ptr<UpstreamConnection> connection);

  // Starts the reader and writer; call once, right after construction.
  void Start();
  bool usable() const;
  // Opens a stream; < 0 when the connection cannot take one.
  int32_t Open(const http2::Headers& headers, bool end_stream, Owner* owner);
  void SendData(int32_t stream, absl::string_view data, bool end);
  // Ends the request with trailers (after any data sent).
  void SendTrailers(int32_t stream, const http2::Headers& trailers);
  void Reset(int32_t stream, uint32_t error_code);
  // The owner passed on `n` response bytes: the peer may send that much more.
  void Consume(int32_t stream, size_t n);
  size_t Queued(int32_t stream) const { return codec_.Queued(stream); }
  // The owner is done with the stream, whether or not it closed: the stream is reset if still
  // open, response bytes never Consume()d go back to the connection's window, and no more
  // callbacks come. Every Open is ended by one Detach.
  void Detach(int32_t stream);
  // GOAWAY: open streams finish, none start; the connection ends once the last one is detached.
  void Close();
  // Since when no stream has been open (SteadyTime::max() while one is).
  SteadyTime idle_since() const { return owners_.empty() ? idle_since_ : SteadyTime::max(); }

 private:
  void OnHeaders(int32_t id, http2::Headers headers, bool end_stream) override;
  void OnData(int32_t id, absl::string_view data) override;
  void OnTrailers(int32_t id, http2::Headers trailers) override;
  void OnEndStream(int32_t id) override;
  void OnStreamClose(int32_t id, uint32_t error_code) override;
  void OnGoaway(uint32_t error_code, int32_t last_stream_id) override;
  Owner* OwnerOf(int32_t id);
  void Flush();
  void Fail();
  boost::asio::awaitable<void> Reader(std::shared_ptr<H2Upstream> self);
  boost::asio::awaitable<void> Writer(std::shared_ptr<H2Upstream> self);

  std::unique_ptr<UpstreamConnection> conn_;
  http2::Codec codec_;
  struct Entry {
    Owner* owner = nullptr;  // null once the stream closed (until Detach)
    size_t unconsumed = 0;   // response bytes delivered, not yet Consume()d
  };
  absl::flat_hash_map<int32_t, Entry> owners_;
  std::vector<Owner*> notify_;  // the writer's scratch list, reused
  boost::asio::steady_timer writer_wake_;
  SteadyTime idle_since_;
  bool dead_ = false;
  bool goaway_ = false;  // sent or received: no new streams
};

}  // namespace outrigger::proxy

#endif  // OUTRIGGER_PROXY_UPSTREAM_H2_UPSTREAM_H_
