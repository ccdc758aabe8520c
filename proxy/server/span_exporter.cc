// See span_exporter.h.
#include "proxy/server/span_exporter.h"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>
#include <chrono>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "xds/common/log.h"

namespace outrigger::proxy {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;

namespace {
constexpr auto kTuple = asio::as_tuple(asio::use_awaitable);
constexpr size_t kBatch = 512;  // spans per POST
}  // namespace

struct SpanExporter::Connection {
  explicit Connection(asio::io_context& ioc) : stream(ioc) {}
  beast::tcp_stream stream;
  beast::flat_buffer buffer;
  bool open = false;
};

absl::StatusOr<CollectorUrl> ParseCollectorUrl(const std::string& url, tracing::Format format) {
  constexpr absl::string_view kScheme = "http://";
  if (!absl::StartsWith(url, kScheme)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--tracing-endpoint: '", url, "' must start with http:// (e.g. http://127.0.0.1:9411/api/v2/spans)"));
  }
  absl::string_view rest = absl::string_view(url).substr(kScheme.size());
  const size_t slash = rest.find('/');
  CollectorUrl out;
  out.host = std::string(rest.substr(0, slash));
  out.path = slash == absl::string_view::npos ? "" : std::string(rest.substr(slash));
  if (out.path.empty() || out.path == "/") {
    out.path = format == tracing::Format::kZipkin ? "/api/v2/spans" : "/v1/traces";
  }
  auto address = ParseAddress(out.host);
  if (!address.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("--tracing-endpoint: '", url, "': ", address.status().message()));
  }
  out.address = *address;
  return out;
}

SpanExporter::SpanExporter(asio::io_context& main, CollectorUrl url, tracing::Format format,
                           tracing::SpanSource source, size_t max_queued)
    : main_(main),
      url_(std::move(url)),
      format_(format),
      source_(std::move(source)),
      max_queued_(max_queued),
      wake_(main),
      conn_(std::make_unique<Connection>(main)) {}

SpanExporter::~SpanExporter() { alive_.reset(); }

void SpanExporter::Start() {
  wake_.expires_at(asio::steady_timer::time_point::max());
  asio::co_spawn(main_, Run(), asio::detached);
}

void SpanExporter::Stop() {
  stopped_ = true;
  wake_.cancel();
  beast::error_code ignored;
  conn_->stream.socket().close(ignored);
}

void SpanExporter::Submit(std::vector<tracing::Span> spans) {
  asio::post(main_, [this, alive = std::weak_ptr<bool>(alive_), spans = std::move(spans)]() mutable {
    if (alive.expired() || stopped_) return;
    for (auto& s : spans) {
      if (queue_.size() >= max_queued_) {
        ++dropped_;
        continue;
      }
      queue_.push_back(std::move(s));
    }
    wake_.cancel();  // the loop wakes up if it was waiting
  });
}

asio::awaitable<void> SpanExporter::Run() {
  std::weak_ptr<bool> alive = alive_;
  while (!alive.expired() && !stopped_) {
    if (queue_.empty()) {
      wake_.expires_at(asio::steady_timer::time_point::max());
      co_await wake_.async_wait(kTuple);
      continue;
    }
    std::vector<tracing::Span> batch;
    while (!queue_.empty() && batch.size() < kBatch) {
      batch.push_back(std::move(queue_.front()));
      queue_.pop_front();
    }
    const std::string body = tracing::EncodeSpans(format_, source_, batch);
    in_flight_ = true;
    const bool ok = co_await Post(body);
    if (alive.expired()) co_return;
    in_flight_ = false;
    if (ok) {
      exported_ += batch.size();
      if (warned_) LogInfo("tracing: the collector at ", url_.host, " takes spans again");
      warned_ = false;
    } else {
      failed_ += batch.size();
      warned_ = true;  // one warning until the collector works again
      // Do not hammer an absent collector: wait a little before the next batch.
      wake_.expires_after(std::chrono::seconds(1));
      co_await wake_.async_wait(kTuple);
    }
  }
}

asio::awaitable<bool> SpanExporter::Post(const std::string& body) {
  Connection& c = *conn_;
  for (int attempt = 0; attempt < 2; ++attempt) {
    c.stream.expires_after(std::chrono::seconds(5));
    if (!c.open) {
      c.buffer.clear();
      asio::ip::tcp::endpoint ep(asio::ip::make_address(url_.address.ip), url_.address.port);
      auto [ec] = co_await c.stream.async_connect(ep, kTuple);
      if (ec) {
        if (!warned_) LogWarning("tracing: cannot reach the collector at ", url_.host, ": ", ec.message());
        co_return false;
      }
      c.open = true;
    }
    bhttp::request<bhttp::string_body> req{bhttp::verb::post, url_.path, 11};
    req.set(bhttp::field::host, url_.host);
    req.set(bhttp::field::content_type, "application/json");
    req.set(bhttp::field::user_agent, "outrigger-proxy");
    req.body() = body;
    req.prepare_payload();
    auto [wec, wn] = co_await bhttp::async_write(c.stream, req, kTuple);
    bhttp::response<bhttp::string_body> res;
    boost::system::error_code rec;
    if (!wec) {
      auto [ec, n] = co_await bhttp::async_read(c.stream, c.buffer, res, kTuple);
      rec = ec;
    }
    if (wec || rec) {
      beast::error_code ignored;
      c.stream.socket().close(ignored);
      c.open = false;
      if (attempt == 0 && !stopped_) continue;  // a kept-alive connection the collector closed
      if (!warned_) LogWarning("tracing: sending spans to ", url_.host, " failed: ",
                 (wec ? wec : rec).message());
      co_return false;
    }
    if (!res.keep_alive()) {
      beast::error_code ignored;
      c.stream.socket().close(ignored);
      c.open = false;
    }
    if (res.result_int() / 100 != 2) {
      if (!warned_) LogWarning("tracing: the collector at ", url_.host, url_.path, " answered ",
                 res.result_int(), " to ", body.size(), " bytes of spans");
      co_return false;
    }
    co_return true;
  }
  co_return false;
}

}  // namespace outrigger::proxy
