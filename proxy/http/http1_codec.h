// HTTP/1.x codec: Boost.Beast's parser turns bytes into a message head plus body pieces, and the
// body pieces are re-framed at once for the other side (Content-Length, chunked or close-delimited)
// so a body streams through in bounded memory and is never held whole.
//
// On top of Beast's own checks the request parser refuses what request smuggling needs: a
// Transfer-Encoding other than exactly "chunked", obs-fold, a missing or repeated Host in
// HTTP/1.1, and a version other than 1.0/1.1. Beast already refuses Content-Length with
// Transfer-Encoding, differing Content-Length values, bad chunk sizes, bare CR/LF and invalid
// header names.
#ifndef OUTRIGGER_PROXY_HTTP_HTTP1_CODEC_H_
#define OUTRIGGER_PROXY_HTTP_HTTP1_CODEC_H_

#include "absl/strings/string_view.h"
#include <boost/beast/http/basic_parser.hpp>
#include <boost/beast/http/error.hpp>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "proxy/http/header_map.h"

namespace outrigger::http {

using boost::system::error_code;
using Sv = boost::beast::string_view;  // Beast's view type
inline absl::string_view ToAbsl(Sv s) { return {s.data(), s.size()}; }

struct RequestHead {
  std::string method;
  std::string target;  // as received (origin-form or absolute-form)
  int version = 11;    // 10 or 11
  HeaderMap headers;
  // Derived when the head is complete:
  std::string authority;  // from an absolute-form target, else Host
  std::string path;       // origin-form target (path and query)
  bool absolute_form = false;
  bool expect_continue = false;

  void Clear();
  // The path without the query string.
  absl::string_view PathOnly() const;
};

struct ResponseHead {
  int status = 0;
  std::string reason;
  int version = 11;
  HeaderMap headers;
  void Clear();
};

// How a body is framed on the wire we write.
enum class Framing { kNone, kContentLength, kChunked, kCloseDelimited };

// Appends body pieces to `out` in the chosen framing.
class BodyEncoder {
 public:
  void Reset(Framing framing, std::string* out) {
    framing_ = framing;
    out_ = out;
    bytes_ = 0;
  }
  void Data(absl::string_view data);
  // Ends the body; for chunked, writes the last chunk and `trailers` (may be empty).
  void Finish(const HeaderMap& trailers);
  Framing framing() const { return framing_; }
  uint64_t bytes() const { return bytes_; }

 private:
  Framing framing_ = Framing::kNone;
  std::string* out_ = nullptr;
  uint64_t bytes_ = 0;
};

// Shared by the request and response parsers: fields go to a HeaderMap (trailers to their own
// map), body pieces to a BodyEncoder.
template <bool isRequest>
class Http1Parser : public boost::beast::http::basic_parser<isRequest> {
 public:
  Http1Parser(HeaderMap* headers, BodyEncoder* body) : headers_(headers), body_(body) {
    this->body_limit(boost::none);
  }
  const HeaderMap& trailers() const { return trailers_; }
  // The most bytes the whole head may take. Beast's own header_limit only bounds the part of the
  // head not yet consumed, so a head that trickles in over many reads is counted here.
  void set_head_limit(uint32_t limit) {
    head_limit_ = limit;
    this->header_limit(limit);
  }
  // Feeds bytes; enforces the head limit across calls.
  size_t Feed(absl::string_view data, error_code& ec) {
    const bool in_head = !this->is_header_done();
    const size_t used = this->put(boost::asio::const_buffer(data.data(), data.size()), ec);
    if (in_head) {
      head_bytes_ += used;
      const size_t pending = this->is_header_done() ? 0 : data.size() - used;
      if (head_bytes_ + pending > head_limit_ && (!ec || ec == boost::beast::http::error::need_more)) {
        ec = boost::beast::http::error::header_limit;
      }
    }
    return used;
  }
  // Why the message was refused, for logs ("Transfer-Encoding must be chunked").
  absl::string_view reject_reason() const { return reject_reason_; }

 protected:
  void on_field_impl(boost::beast::http::field f, Sv name, Sv value, error_code& ec) override;
  void on_body_init_impl(const boost::optional<std::uint64_t>&, error_code& ec) override {
    ec = {};
  }
  std::size_t on_body_impl(Sv body, error_code& ec) override {
    body_->Data(ToAbsl(body));
    ec = {};
    return body.size();
  }
  void on_chunk_header_impl(std::uint64_t, Sv, error_code& ec) override { ec = {}; }
  std::size_t on_chunk_body_impl(std::uint64_t, Sv body, error_code& ec) override {
    body_->Data(ToAbsl(body));
    ec = {};
    return body.size();
  }
  void on_finish_impl(error_code& ec) override {
    body_->Finish(trailers_);
    ec = {};
  }
  void Reject(error_code& ec, absl::string_view why) {
    reject_reason_ = why;
    ec = boost::beast::http::error::bad_field;
  }

  HeaderMap* headers_;
  BodyEncoder* body_;
  HeaderMap trailers_;
  absl::string_view reject_reason_;
  uint32_t head_limit_ = 8192;
  size_t head_bytes_ = 0;
  int transfer_encodings_ = 0;
  bool transfer_encoding_bad_ = false;
};

class RequestParser final : public Http1Parser<true> {
 public:
  RequestParser(RequestHead* head, BodyEncoder* body) : Http1Parser(&head->headers, body),
                                                        head_(head) {}
  // Feeds bytes; before the head is complete it also refuses obs-fold, which Beast would unfold.
  size_t Put(absl::string_view data, error_code& ec);

 private:
  void on_request_impl(boost::beast::http::verb, Sv method, Sv target, int version,
                       error_code& ec) override;
  void on_response_impl(int, Sv, int, error_code& ec) override { ec = {}; }
  void on_header_impl(error_code& ec) override;

  RequestHead* head_;
};

class ResponseParser final : public Http1Parser<false> {
 public:
  ResponseParser(ResponseHead* head, BodyEncoder* body) : Http1Parser(&head->headers, body),
                                                          head_(head) {}
  size_t Put(absl::string_view data, error_code& ec) { return Feed(data, ec); }

 private:
  void on_request_impl(boost::beast::http::verb, Sv, Sv, int, error_code& ec) override {
    ec = {};
  }
  void on_response_impl(int status, Sv reason, int version, error_code& ec) override;
  void on_header_impl(error_code& ec) override { ec = {}; }

  ResponseHead* head_;
};

// Is `name` a hop-by-hop header (RFC 9110 7.6.1), or named by the message's Connection header?
bool IsHopByHop(absl::string_view name, absl::string_view connection_header);
// GET, HEAD, OPTIONS, TRACE, PUT and DELETE (RFC 9110 9.2.2): safe to send again.
bool IsIdempotent(absl::string_view method);

// "HTTP/1.1 404 Not Found\r\n..." for replies the proxy makes itself.
// `location`, when not empty, becomes a Location header (redirects).
std::string LocalReply(int status, absl::string_view body, bool close,
                       absl::string_view location = {});

// The standard reason phrase for `status`.
absl::string_view ReasonPhrase(int status);

// Protocol detection: do the first bytes a client sent start an HTTP/1 request line (a method
// token of capital letters, '-' or '_', then a space)? kNeedMore while they could still be one.
enum class Sniff { kHttp, kNotHttp, kNeedMore };
Sniff SniffRequestLine(absl::string_view first_bytes);

}  // namespace outrigger::http

#endif  // OUTRIGGER_PROXY_HTTP_HTTP1_CODEC_H_
