// See transport.h.
#include "proxy/net/transport.h"

#include <openssl/ssl.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

namespace outrigger::proxy {

namespace asio = boost::asio;
using boost::system::error_code;

namespace {
constexpr auto kTuple = asio::as_tuple(asio::use_awaitable);
}  // namespace

void Transport::WrapTls(asio::ssl::context& context) {
  tls_.emplace(std::move(*plain_), context);
  plain_.reset();
}

asio::awaitable<std::tuple<error_code>> Transport::Handshake(
    asio::ssl::stream_base::handshake_type type) {
  return tls_->async_handshake(type, kTuple);
}

IoResult Transport::ReadSome(asio::mutable_buffer buffer) {
  if (tls_) return tls_->async_read_some(buffer, kTuple);
  return plain_->async_read_some(buffer, kTuple);
}

IoResult Transport::Write(asio::const_buffer buffer) {
  if (tls_) return asio::async_write(*tls_, buffer, kTuple);
  return asio::async_write(*plain_, buffer, kTuple);
}

void Transport::ShutdownSend() {
  error_code ec;
  if (tls_) {
    // Marks the TLS connection as shut down, so that freeing it keeps its session resumable
    // (OpenSSL invalidates the session of a connection freed without SSL_shutdown). The
    // close_notify it produces stays in Asio's engine buffer and is not flushed: the peer sees
    // the TCP FIN, which is enough for HTTP/1.1 whose messages are delimited.
    SSL* ssl = tls_->native_handle();
    if (SSL_is_init_finished(ssl)) SSL_shutdown(ssl);
  }
  socket().shutdown(asio::ip::tcp::socket::shutdown_send, ec);
}

void Transport::Cancel() {
  error_code ec;
  socket().cancel(ec);
}

void Transport::Close() {
  error_code ec;
  socket().close(ec);
}

}  // namespace outrigger::proxy
