// A connection's byte stream, plaintext TCP or TLS over it, behind one small interface so that
// the session and the upstream pool read and write the same way either way. The TLS case wraps
// the TCP socket in an asio::ssl::stream after the proxy decided to speak TLS (a mesh upstream,
// or an inbound connection whose first byte was a TLS handshake). Reads and writes return Asio
// awaitables directly (no coroutine frame of their own), so the plaintext path costs a branch.
#ifndef OUTRIGGER_PROXY_NET_TRANSPORT_H_
#define OUTRIGGER_PROXY_NET_TRANSPORT_H_

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/buffer.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <cstddef>
#include <memory>
#include <optional>
#include <tuple>

#include "absl/strings/string_view.h"

namespace outrigger::proxy {

// The bytes a read buffer holds, as a view (valid until the buffer changes).
inline absl::string_view BufferView(const boost::beast::flat_buffer& b) {
  const auto d = b.data();
  return {static_cast<const char*>(d.data()), d.size()};
}

using IoResult = boost::asio::awaitable<std::tuple<boost::system::error_code, std::size_t>>;

class Transport {
 public:
  using Tls = boost::asio::ssl::stream<boost::asio::ip::tcp::socket>;

  explicit Transport(boost::asio::ip::tcp::socket socket) : plain_(std::move(socket)) {}
  explicit Transport(const boost::asio::any_io_executor& ex) : plain_(std::in_place, ex) {}

  boost::asio::ip::tcp::socket& socket() { return tls_ ? tls_->next_layer() : *plain_; }
  bool is_tls() const { return tls_.has_value(); }
  Tls& tls() { return *tls_; }

  // Moves the TCP socket into a TLS stream with a new SSL of `context` (server or client).
  void WrapTls(boost::asio::ssl::context& context);
  // The TLS handshake; call after WrapTls.
  boost::asio::awaitable<std::tuple<boost::system::error_code>> Handshake(
      boost::asio::ssl::stream_base::handshake_type type);

  IoResult ReadSome(boost::asio::mutable_buffer buffer);
  IoResult Write(boost::asio::const_buffer buffer);
  // Ends our sending side with TCP's FIN; for TLS it first marks the connection shut down (which
  // keeps its session resumable). Never waits.
  void ShutdownSend();
  void Cancel();
  void Close();

 private:
  std::optional<boost::asio::ip::tcp::socket> plain_;
  std::optional<Tls> tls_;
};

}  // namespace outrigger::proxy

#endif  // OUTRIGGER_PROXY_NET_TRANSPORT_H_
