// Http1Session moving the bodies of one exchange: the upstream's response head (interim 1xx
// answers passed on or dropped), the request body streamed up as the client sends it, and the
// response streamed down, each direction bounded by one buffer and paced by the slower side. A
// retriable answer that arrives while the body is still streaming is noted for HandleRequest.
// See docs/life-of-a-request.md, steps 6 and 7.
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "absl/strings/string_view.h"
#include "proxy/server/http1_session.h"
#include "proxy/server/message_heads.h"

namespace outrigger::proxy {

namespace asio = boost::asio;
namespace bhttp = boost::beast::http;
using boost::system::error_code;

namespace {

constexpr auto kTuple = asio::as_tuple(asio::use_awaitable);
constexpr size_t kHeadReadSize = 16 * 1024;
constexpr size_t kBodyReadSize = 64 * 1024;
constexpr uint32_t kMaxResponseHeadBytes = 96 * 1024;

}  // namespace

asio::awaitable<error_code> Http1Session::ReadResponseHead() {
  upstream_bytes_ = 0;
  for (;;) {
    resp_.Clear();
    resp_body_.Reset(http::Framing::kNone, &to_client_);
    resp_parser_.emplace(&resp_, &resp_body_);
    resp_parser_->set_head_limit(kMaxResponseHeadBytes);
    resp_parser_->eager(false);
    if (req_.method == "HEAD") resp_parser_->skip(true);
    for (;;) {
      auto& in = upstream_->in;
      if (in.size() > 0) {
        error_code ec;
        const size_t used = resp_parser_->Put(BufferView(in), ec);
        in.consume(used);
        if (!ec && resp_parser_->is_header_done()) break;
        if (ec && ec != bhttp::error::need_more) co_return ec;
        if (!ec && used > 0) continue;
      }
      auto [ec, n] = co_await upstream_->stream.ReadSome(in.prepare(kHeadReadSize));
      if (ec) co_return ec;
      in.commit(n);
      upstream_bytes_ += n;
    }
    if (resp_.status == 101 && !upgrade_.empty()) co_return error_code{};  // switching
    if (resp_.status >= 100 && resp_.status < 200) {
      // Interim response. 100 Continue goes to a client that asked for it; the rest are dropped.
      if (resp_.status == 100 && req_.expect_continue && req_.version == 11 &&
          !request_complete_) {
        static constexpr absl::string_view kContinue = "HTTP/1.1 100 Continue\r\n\r\n";
        auto [ec, n] = co_await client_.Write(asio::buffer(kContinue));
        if (ec) {
          client_failed_ = true;
          co_return ec;
        }
      }
      continue;
    }
    co_return error_code{};
  }
}

asio::awaitable<void> Http1Session::PumpRequestBody() {
  while (!req_parser_->is_done()) {
    auto [ec, n] = co_await client_.ReadSome(in_.prepare(kBodyReadSize));
    if (ec) {
      if (ec != asio::error::operation_aborted) client_failed_ = true;
      break;
    }
    in_.commit(n);
    error_code pec;
    in_.consume(req_parser_->Put(BufferView(in_), pec));
    if (pec && pec != bhttp::error::need_more) {
      client_failed_ = true;
      flags_ |= kDownstreamProtocolError;
      break;
    }
    Touch();
    if (!to_upstream_.empty()) {
      if (replay_ok_) {
        if (replay_.size() + to_upstream_.size() > replay_limit_) {
          replay_ok_ = false;  // too large to keep: this request will not be retried
          std::string().swap(replay_);
        } else {
          replay_ += to_upstream_;
        }
      }
      auto [wec, wn] = co_await upstream_->stream.Write(asio::buffer(to_upstream_));
      if (wec) {
        upstream_failed_ = true;
        upstream_error_ = wec;
        break;
      }
      to_upstream_.clear();
      Touch();
    }
  }
  bytes_received_ = req_body_.bytes();
  if (req_parser_->is_done()) {
    request_complete_ = true;
    if (!response_started_ && !upstream_failed_) AwaitResponse();
    MaybeMirror(replay_);
  } else if (upstream_ && !response_complete_) {
    // The client went away or sent garbage: stop the response side too.
    error_code ec;
    upstream_->stream.Cancel();
  }
}

asio::awaitable<void> Http1Session::PumpResponse(bool head_already_read) {
  if (!head_already_read) {
    error_code ec = co_await ReadResponseHead();
    if (ec) {
      upstream_failed_ = true;
      if (!upstream_error_) upstream_error_ = ec;
      if (!request_complete_) client_.Cancel();
      co_return;
    }
    response_head_at_ = std::chrono::steady_clock::now();
    const int64_t now_ns = ToNanos(response_head_at_);
    host_->ewma.Observe(now_ns - ToNanos(try_start_), now_ns,
                        absl::ToInt64Nanoseconds(ewma_decay_));
    RecordTry(OutcomeOfStatus(resp_.status));
    if (ShouldRetryStatus(resp_.status)) {
      retry_pending_ = true;
      co_return;
    }
  }
  SetPhase(Phase::kStreaming, stream_idle_timeout_);
  status_ = resp_.status;

  // How the body is framed towards the client.
  http::Framing framing;
  const bool no_body = req_.method == "HEAD" || resp_.status == 204 || resp_.status == 304;
  if (no_body) {
    framing = http::Framing::kNone;
  } else if (resp_parser_->chunked() || !resp_parser_->content_length()) {
    // Chunked, or delimited by the upstream closing: HTTP/1.1 clients get chunked, HTTP/1.0
    // clients get a body delimited by our close.
    framing = req_.version == 11 ? http::Framing::kChunked : http::Framing::kCloseDelimited;
  } else {
    framing = http::Framing::kContentLength;
  }
  BuildResponseHead(framing);
  resp_body_.Reset(framing, &to_client_);
  resp_parser_->eager(true);
  auto& in = upstream_->in;
  if (!resp_parser_->is_done() && in.size() > 0) {
    error_code ec;
    in.consume(resp_parser_->Put(BufferView(in), ec));
    if (ec && ec != bhttp::error::need_more) {
      upstream_failed_ = true;
      upstream_error_ = ec;
      if (!request_complete_) client_.Cancel();
      co_return;
    }
  }
  response_started_ = true;
  for (;;) {
    if (!to_client_.empty()) {
      auto [ec, n] = co_await client_.Write(asio::buffer(to_client_));
      if (ec) {
        client_failed_ = true;
        upstream_failed_ = true;  // the rest of the response cannot be delivered
        co_return;
      }
      bytes_sent_ += n;
      to_client_.clear();
      Touch();
    }
    if (resp_parser_->is_done()) break;
    auto [ec, n] = co_await upstream_->stream.ReadSome(in.prepare(kBodyReadSize));
    error_code pec;
    if (ec == asio::error::eof && resp_parser_->need_eof()) {
      resp_parser_->put_eof(pec);
    } else if (ec) {
      upstream_failed_ = true;  // cut mid-body: the client sees the connection close
      upstream_error_ = ec;
      co_return;
    } else {
      in.commit(n);
      upstream_bytes_ += n;
      in.consume(resp_parser_->Put(BufferView(in), pec));
    }
    if (pec && pec != bhttp::error::need_more) {
      upstream_failed_ = true;
      upstream_error_ = pec;
      co_return;
    }
    Touch();
  }
  response_complete_ = true;
  if (!request_complete_) {
    // The upstream answered without reading the whole body (e.g. 413): stop reading it too.
    error_code ec;
    client_.Cancel();
  }
}

}  // namespace outrigger::proxy
