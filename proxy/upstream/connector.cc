// See connector.h.
#include "proxy/upstream/connector.h"

#include <openssl/ssl.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "certs/tls_context.h"
#include "xds/common/log.h"

namespace outrigger::proxy {

namespace asio = boost::asio;
using asio::ip::tcp;

namespace {

constexpr auto kTuple = asio::as_tuple(asio::use_awaitable);

// mTLS to a mesh peer: our client certificate, the peer's checked against the bundle and its
// SPIFFE ID against the identity the control plane registered for this endpoint.
asio::awaitable<bool> StartTls(UpstreamConnection& conn, HostPool& host,
                               const std::shared_ptr<const TlsState>& tls, tcp::socket** connecting,
                               absl::string_view cluster) {
  if (!tls) {
    ++host.stats->tls_handshake_errors;
    LogDebug("mTLS to ", host.address_text, ": this proxy has no certificate yet");
    co_return false;
  }
  conn.stream.WrapTls(*tls->client);
  *connecting = &conn.stream.socket();  // the socket moved into the TLS stream
  SSL* ssl = conn.stream.tls().native_handle();
  std::shared_ptr<SSL_SESSION> session;
  while (!session && !host.tls_sessions.empty()) {
    session = std::move(host.tls_sessions.back());
    host.tls_sessions.pop_back();
    if (!SSL_SESSION_is_resumable(session.get())) session.reset();
  }
  if (session) SSL_set_session(ssl, session.get());
  SetTlsSessionSink(ssl, &host);  // collects the peer's new tickets
  auto [ec] = co_await conn.stream.Handshake(asio::ssl::stream_base::client);
  *connecting = nullptr;
  if (ec) {
    ++host.stats->tls_handshake_errors;
    LogDebug("mTLS to ", host.address_text, " (", cluster, "): ", ec.message());
    co_return false;
  }
  auto peer = certs::PeerSpiffeId(ssl);
  if (!peer.ok() || peer->ToString() != host.spiffe_id) {
    ++host.stats->tls_handshake_errors;
    LogWarning("mTLS to ", host.address_text, " (", cluster, "): the peer is ",
               peer.ok() ? peer->ToString() : std::string(peer.status().message()),
               ", expected ", host.spiffe_id);
    co_return false;
  }
  ++host.stats->tls_handshakes;
  if (SSL_session_reused(ssl)) ++host.stats->tls_resumed;
  co_return true;
}

}  // namespace

asio::awaitable<std::unique_ptr<UpstreamConnection>> ConnectUpstream(
    const std::shared_ptr<HostPool>& host, const std::shared_ptr<const TlsState>& tls,
    tcp::socket** connecting, absl::string_view cluster) {
  auto conn = std::make_unique<UpstreamConnection>(co_await asio::this_coro::executor, host);
  *connecting = &conn->stream.socket();
  auto [ec] = co_await conn->stream.socket().async_connect(host->endpoint, kTuple);
  *connecting = nullptr;
  if (ec) {
    ++host->stats->cx_connect_fail;
    LogDebug("connect to ", host->address_text, " (", cluster, "): ", ec.message());
    co_return nullptr;
  }
  conn->stream.socket().set_option(tcp::no_delay(true), ec);
  if (!host->spiffe_id.empty() && !co_await StartTls(*conn, *host, tls, connecting, cluster)) {
    *connecting = nullptr;
    ++host->stats->cx_connect_fail;
    co_return nullptr;
  }
  conn->counted = true;
  ++host->stats->cx_total;
  ++host->stats->cx_active;
  co_return conn;
}

asio::awaitable<std::unique_ptr<UpstreamConnection>> ConnectUpstreamInTime(
    const std::shared_ptr<HostPool>& host, const std::shared_ptr<const TlsState>& tls,
    tcp::socket** connecting, absl::string_view cluster) {
  asio::steady_timer deadline(co_await asio::this_coro::executor,
                              absl::ToChronoNanoseconds(host->connect_timeout));
  deadline.async_wait([connecting](boost::system::error_code ec) {
    if (ec || *connecting == nullptr) return;  // cancelled below before `connecting` goes away
    boost::system::error_code ignored;
    (*connecting)->cancel(ignored);
  });
  auto conn = co_await ConnectUpstream(host, tls, connecting, cluster);
  deadline.cancel();
  co_return conn;
}

}  // namespace outrigger::proxy
