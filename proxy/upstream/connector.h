// Opens a new connection to an upstream host for any session: TCP (Nagle off), then, when the
// host is a mesh peer, mTLS with this workload's certificate, checking the peer's chain and its
// exact SPIFFE ID and resuming an earlier TLS session with the host when one is kept. Counts
// connects, failures and handshakes in the host's cluster stats. The caller owns the deadline: it
// may cancel `*connecting` (the socket being connected or handshaken) when its timeout fires.
#ifndef OUTRIGGER_PROXY_UPSTREAM_CONNECTOR_H_
#define OUTRIGGER_PROXY_UPSTREAM_CONNECTOR_H_

#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <memory>

#include "absl/strings/string_view.h"
#include "proxy/server/tls_state.h"
#include "proxy/upstream/cluster_manager.h"

namespace outrigger::proxy {

// Null when the connection or the handshake failed (logged at debug, or warning for a peer with
// the wrong identity).
boost::asio::awaitable<std::unique_ptr<UpstreamConnection>> ConnectUpstream(
    const std::shared_ptr<HostPool>& host, const std::shared_ptr<const TlsState>& tls,
    boost::asio::ip::tcp::socket** connecting, absl::string_view cluster);

// The same within the host's connect timeout, for callers without a deadline of their own.
boost::asio::awaitable<std::unique_ptr<UpstreamConnection>> ConnectUpstreamInTime(
    const std::shared_ptr<HostPool>& host, const std::shared_ptr<const TlsState>& tls,
    boost::asio::ip::tcp::socket** connecting, absl::string_view cluster);

}  // namespace outrigger::proxy

#endif  // OUTRIGGER_PROXY_UPSTREAM_CONNECTOR_H_
