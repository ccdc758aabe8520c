// Http1Session after a protocol switch: an Upgrade request (WebSocket, or any protocol but h2c)
// was forwarded with its `connection: upgrade`, and the upstream answered 101 Switching
// Protocols. From then on the connection carries the new protocol's bytes, which the proxy relays
// both ways without looking at them, through mTLS between sidecars like any other request. The
// tunnel ends when both directions have ended (each end's FIN is passed on as ours), or at once
// when either side fails; it counts as one request (status 101) whose duration is the tunnel's
// life. Idle for the listener's stream_idle_timeout (300 s by default) closes it (flag SI).
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/ssl/error.hpp>

#include "absl/strings/str_cat.h"
#include "proxy/server/http1_session.h"
#include "proxy/server/message_heads.h"

namespace outrigger::proxy {

namespace asio = boost::asio;
using namespace asio::experimental::awaitable_operators;

namespace {

constexpr size_t kRelayReadSize = 64 * 1024;

// The peer finished sending: TCP's FIN, or (TLS) the FIN without a close_notify that our own
// sidecars send when they pass a FIN on.
bool CleanEnd(const boost::system::error_code& ec) {
  return ec == asio::error::eof || ec == asio::ssl::error::stream_truncated;
}

}  // namespace

asio::awaitable<void> Http1Session::Tunnel() {
  status_ = 101;
  response_started_ = true;
  client_keep_alive_ = false;  // the connection now belongs to the new protocol
  const absl::string_view protocol = resp_.headers.Get("upgrade").value_or(upgrade_);
  WriteSwitchingProtocolsHead(resp_, protocol, &to_client_);
  // Bytes of the new protocol that came right behind the 101 head.
  auto& up_in = upstream_->in;
  if (up_in.size() > 0) {
    const auto d = up_in.data();
    to_client_.append(static_cast<const char*>(d.data()), d.size());
    up_in.consume(d.size());
  }
  SetPhase(Phase::kStreaming, stream_idle_timeout_);
  auto [ec, n] = co_await client_.Write(asio::buffer(to_client_));
  to_client_.clear();
  if (ec) {
    client_failed_ = true;
    upstream_.reset();
    co_return;
  }
  bytes_sent_ += n;
  // ... and bytes the client sent behind its request head.
  if (in_.size() > 0) {
    auto [wec, wn] = co_await upstream_->stream.Write(in_.data());
    if (wec) {
      upstream_failed_ = true;
      upstream_.reset();
      co_return;
    }
    bytes_received_ += wn;
    in_.consume(wn);
  }
  co_await (Relay(true) && Relay(false));
  request_complete_ = true;
  response_complete_ = true;
  linger_ = false;
  upstream_.reset();  // never pooled: it speaks the new protocol
}

asio::awaitable<void> Http1Session::Relay(bool upstream_bound) {
  Transport& from = upstream_bound ? client_ : upstream_->stream;
  Transport& to = upstream_bound ? upstream_->stream : client_;
  boost::beast::flat_buffer& buffer = upstream_bound ? in_ : upstream_->in;
  for (;;) {
    auto [ec, n] = co_await from.ReadSome(buffer.prepare(kRelayReadSize));
    if (ec) {
      if (CleanEnd(ec)) {
        to.ShutdownSend();  // pass the end on; the other direction may go on
      } else {
        // Reset, timeout or drain: end both directions now.
        (upstream_bound ? client_failed_ : upstream_failed_) = ec != asio::error::operation_aborted;
        from.Cancel();
        to.Cancel();
      }
      co_return;
    }
    buffer.commit(n);
    auto [wec, wn] = co_await to.Write(buffer.data());
    buffer.consume(buffer.size());
    if (wec) {
      (upstream_bound ? upstream_failed_ : client_failed_) = true;
      from.Cancel();
      to.Cancel();
      co_return;
    }
    (upstream_bound ? bytes_received_ : bytes_sent_) += wn;
    Touch();
  }
}

}  // namespace outrigger::proxy
