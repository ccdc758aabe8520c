// See http1_session.h: the session's mTLS. Inbound, AcceptTls tells a TLS ClientHello from
// plaintext by the first byte and applies the listener's mode (STRICT / PERMISSIVE / DISABLE).
// Upstream mTLS is in proxy/upstream/connector.cc. See docs/security.md.
#include <openssl/ssl.h>
#include <sys/socket.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "certs/tls_context.h"
#include "proxy/server/http1_session.h"
#include "xds/common/log.h"

namespace outrigger::proxy {

namespace asio = boost::asio;
using asio::ip::tcp;

namespace {
constexpr auto kTuple = asio::as_tuple(asio::use_awaitable);
}  // namespace

asio::awaitable<bool> Http1Session::AcceptTls() {
  const ListenerConfig* l = worker_.snapshot()->FindListener(listener_name_);
  if (l == nullptr || l->direction != Direction::kInbound) co_return true;
  const std::shared_ptr<const TlsState> tls = worker_.tls();
  TlsMode mode = l->tls_mode;
  if (mode == TlsMode::kAuto) mode = tls ? TlsMode::kPermissive : TlsMode::kDisable;
  if (mode == TlsMode::kDisable) co_return true;
  if (!tls) {
    // STRICT before the proxy has a certificate: nobody can be let in yet.
    ++listener_stats_->tls_plaintext_refused;
    co_return false;
  }
  // Protocol detection: a TLS connection starts with a handshake record (0x16); HTTP with a
  // method's letter. The client speaks first, so waiting for its first byte delays nothing.
  if (l->protocol != ListenerProtocol::kHttp && mode == TlsMode::kPermissive) {
    // A raw TCP port may carry a server-first protocol whose client waits in silence: after
    // the detection timeout it is plaintext. (Mesh peers speak first: their ClientHello.)
    if (!co_await ClientSpeaksWithin(l->detection_timeout)) co_return true;
  }
  SetPhase(Phase::kReadingHead, l->http.request_headers_timeout);
  auto [wec] = co_await client_.socket().async_wait(tcp::socket::wait_read, kTuple);
  if (wec) co_return false;
  unsigned char first = 0;
  if (::recv(client_.socket().native_handle(), &first, 1, MSG_PEEK | MSG_DONTWAIT) != 1) {
    co_return false;
  }
  if (first != 0x16) {
    if (mode != TlsMode::kStrict) co_return true;
    ++listener_stats_->tls_plaintext_refused;
    LogDebug("STRICT mTLS on ", listener_name_, ": plaintext connection from ", client_ip_,
             " refused");
    co_return false;
  }
  client_.WrapTls(*tls->server);
  auto [hec] = co_await client_.Handshake(asio::ssl::stream_base::server);
  if (hec) {
    ++listener_stats_->tls_handshake_errors;
    LogDebug("TLS handshake from ", client_ip_, " on ", listener_name_, " failed: ",
             hec.message());
    co_return false;
  }
  ++listener_stats_->tls_handshakes;
  auto peer = certs::PeerSpiffeId(client_.tls().native_handle());
  if (peer.ok()) {
    peer_identity_ = peer->ToString();
  } else if (mode == TlsMode::kStrict) {
    ++listener_stats_->tls_plaintext_refused;
    LogDebug("STRICT mTLS on ", listener_name_, ": ", client_ip_, " has no mesh identity (",
             peer.status().message(), ")");
    co_return false;
  }
  co_return true;
}

}  // namespace outrigger::proxy
