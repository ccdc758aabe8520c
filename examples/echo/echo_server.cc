// One coroutine per connection: read a request head, stream the body through FNV-1a without
// keeping it, then answer as the query asks (echo JSON, N streamed bytes, an injected failure, or
// nothing at all). Responses are formatted by hand into reused strings so that each one leaves in
// a single write and steady keep-alive traffic does not allocate per request.
#include "echo_server.h"

#include <algorithm>
#include <array>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/string.hpp>
#include <boost/beast/http/basic_parser.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/status.hpp>
#include <charconv>
#include <chrono>
#include <cstdio>
#include <exception>
#include <memory>
#include <optional>
#include <span>
#include <utility>
#include <vector>

namespace outrigger::echo {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using boost::system::error_code;

constexpr auto kAsTuple = asio::as_tuple(asio::use_awaitable);

constexpr uint32_t kHeaderLimit = 64 * 1024;
// Larger than the header limit so that an oversized head trips the parser (431), not the buffer.
constexpr size_t kReadBufferLimit = 4 * kHeaderLimit;
constexpr size_t kBlockSize = 64 * 1024;
constexpr uint64_t kFnvOffsetBasis = 0xcbf29ce484222325ULL;
constexpr uint64_t kFnvPrime = 0x100000001b3ULL;
constexpr std::string_view kContinue = "HTTP/1.1 100 Continue\r\n\r\n";
constexpr std::string_view kJson = "application/json";
constexpr std::string_view kOctets = "application/octet-stream";

// The content of every `bytes=N` body: this block, written as many times as needed.
const std::array<char, kBlockSize>& Block() {
  static const std::array<char, kBlockSize> block = [] {
    std::array<char, kBlockSize> b;
    b.fill('x');
    return b;
  }();
  return block;
}

// ---- Formatting ------------------------------------------------------------------------------

void AppendUint(std::string& out, uint64_t v) {
  char digits[24];
  auto [end, ec] = std::to_chars(digits, digits + sizeof(digits), v);
  out.append(digits, end);
}

void AppendHex16(std::string& out, uint64_t v) {
  static constexpr char kHex[] = "0123456789abcdef";
  for (int shift = 60; shift >= 0; shift -= 4) out.push_back(kHex[(v >> shift) & 0xf]);
}

// Length of the well-formed UTF-8 sequence at the start of `s` (whose first byte is >= 0x80), or
// 0 when it is not one (RFC 3629, table 3-7 of Unicode: no overlongs, surrogates or > U+10FFFF).
size_t Utf8SequenceLength(std::string_view s) {
  auto byte = [&](size_t i) -> unsigned { return i < s.size() ? uint8_t(s[i]) : 0; };
  auto continuation = [&](size_t i) { return (byte(i) & 0xc0) == 0x80; };
  const unsigned b0 = byte(0), b1 = byte(1);
  if (b0 >= 0xc2 && b0 <= 0xdf) return continuation(1) ? 2 : 0;
  if (b0 >= 0xe0 && b0 <= 0xef) {
    const unsigned lo = b0 == 0xe0 ? 0xa0 : 0x80, hi = b0 == 0xed ? 0x9f : 0xbf;
    return b1 >= lo && b1 <= hi && continuation(2) ? 3 : 0;
  }
  if (b0 >= 0xf0 && b0 <= 0xf4) {
    const unsigned lo = b0 == 0xf0 ? 0x90 : 0x80, hi = b0 == 0xf4 ? 0x8f : 0xbf;
    return b1 >= lo && b1 <= hi && continuation(2) && continuation(3) ? 4 : 0;
  }
  return 0;
}

// Appends `s` as a JSON string. Header values may hold any octet; bytes that are not well-formed
// UTF-8 are written as the Latin-1 character of the same value, so the output is always valid.
void AppendJsonString(std::string& out, std::string_view s) {
  static constexpr char kHex[] = "0123456789abcdef";
  out.push_back('"');
  size_t i = 0;
  while (i < s.size()) {
    size_t run = i;  // Copy plain ASCII in runs.
    while (run < s.size() && uint8_t(s[run]) >= 0x20 && uint8_t(s[run]) < 0x80 && s[run] != '"' &&
           s[run] != '\\') {
      ++run;
    }
    out.append(s.data() + i, run - i);
    i = run;
    if (i == s.size()) break;
    const uint8_t c = s[i];
    if (c >= 0x80) {
      if (size_t n = Utf8SequenceLength(s.substr(i)); n > 0) {
        out.append(s.data() + i, n);
        i += n;
        continue;
      }
    }
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\b':
        out += "\\b";
        break;
      case '\f':
        out += "\\f";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        out += "\\u00";
        out.push_back(kHex[c >> 4]);
        out.push_back(kHex[c & 0xf]);
    }
    ++i;
  }
  out.push_back('"');
}

// ---- Requests --------------------------------------------------------------------------------

// What an answer needs to know about a request. One per connection and reused: the strings keep
// their capacity from one request to the next.
struct Request {
  http::verb method = http::verb::unknown;
  std::string method_string;
  std::string target;
  int version = 11;
  std::vector<std::pair<std::string, std::string>> fields;  // [0, field_count): lowercase names.
  size_t field_count = 0;
  bool expect_continue = false;
  uint64_t body_bytes = 0;
  uint64_t body_fnv1a64 = kFnvOffsetBasis;

  void Clear() {
    method = http::verb::unknown;
    method_string.clear();
    target.clear();
    version = 11;
    field_count = 0;
    expect_continue = false;
    body_bytes = 0;
    body_fnv1a64 = kFnvOffsetBasis;
  }

  void AddField(std::string_view name, std::string_view value) {
    if (field_count == fields.size()) fields.emplace_back();
    auto& [n, v] = fields[field_count++];
    n.assign(name);
    for (char& ch : n) {
      if (ch >= 'A' && ch <= 'Z') ch = char(ch - 'A' + 'a');
    }
    v.assign(value);
  }

  void HashBody(std::string_view data) {
    uint64_t h = body_fnv1a64;
    for (const char ch : data) h = (h ^ uint8_t(ch)) * kFnvPrime;
    body_fnv1a64 = h;
    body_bytes += data.size();
  }
};

// Parses one request into a Request. The body is hashed and counted straight out of the read
// buffer and never stored, so a 100 MB upload costs no more memory than a small one.
class RequestParser final : public http::basic_parser<true> {
 public:
  explicit RequestParser(Request& request) : request_(request) {
    header_limit(kHeaderLimit);
    body_limit(boost::none);
  }

 private:
  // Beast passes boost::core::string_view, which converts to std::string_view implicitly.
  void on_request_impl(http::verb method, beast::string_view method_string,
                       beast::string_view target, int version, error_code&) override {
    request_.method = method;
    request_.method_string.assign(method_string.data(), method_string.size());
    request_.target.assign(target.data(), target.size());
    request_.version = version;
  }
  void on_response_impl(int, beast::string_view, int, error_code&) override {}
  void on_field_impl(http::field name, beast::string_view name_string, beast::string_view value,
                     error_code&) override {
    if (name == http::field::expect && beast::iequals(value, "100-continue")) {
      request_.expect_continue = true;
    }
    request_.AddField(name_string, value);
  }
  void on_header_impl(error_code&) override {}
  void on_body_init_impl(const boost::optional<uint64_t>&, error_code&) override {}
  size_t on_body_impl(beast::string_view body, error_code&) override {
    request_.HashBody(body);
    return body.size();
  }
  void on_chunk_header_impl(uint64_t, beast::string_view, error_code&) override {}
  size_t on_chunk_body_impl(uint64_t, beast::string_view body, error_code&) override {
    request_.HashBody(body);
    return body.size();
  }
  void on_finish_impl(error_code&) override {}

  Request& request_;
};

// What the query asks for; absent parameters keep the command-line values.
struct Params {
  int64_t delay_ms = 0;
  double fail_rate = 0;
  int fail_status = 503;
  int status = 200;
  bool close = false;
  std::optional<uint64_t> bytes;
  bool chunked = false;
};

template <typename T>
bool ParseNumber(std::string_view s, T& out) {
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  return !s.empty() && ec == std::errc() && end == s.data() + s.size();
}

// "close", "close=", "close=1" and "close=true" all mean yes.
bool ParseFlag(std::string_view s, bool& out) {
  if (s.empty() || s == "1" || s == "true") {
    out = true;
  } else if (s == "0" || s == "false") {
    out = false;
  } else {
    return false;
  }
  return true;
}

bool IsAnswerableStatus(int status) { return status >= 200 && status <= 599; }

// Reads the query of `target` into `params`. Returns the name of the first bad parameter, or ""
// when all are good. Unknown parameters are ignored (clients add cache busters).
std::string_view ParseQuery(std::string_view target, Params& params) {
  const size_t question = target.find('?');
  if (question == std::string_view::npos) return {};
  std::string_view query = target.substr(question + 1);
  while (!query.empty()) {
    const size_t amp = query.find('&');
    const std::string_view pair = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
    const size_t eq = pair.find('=');
    const std::string_view key = pair.substr(0, eq);
    const std::string_view value =
        eq == std::string_view::npos ? std::string_view() : pair.substr(eq + 1);
    bool ok = true;
    if (key == "delay_ms") {
      ok = ParseNumber(value, params.delay_ms) && params.delay_ms >= 0 &&
           params.delay_ms <= kMaxTimerMs;
    } else if (key == "fail_rate") {
      ok = ParseNumber(value, params.fail_rate) && params.fail_rate >= 0 && params.fail_rate <= 1;
    } else if (key == "fail_status") {
      ok = ParseNumber(value, params.fail_status) && IsAnswerableStatus(params.fail_status);
    } else if (key == "status") {
      ok = ParseNumber(value, params.status) && IsAnswerableStatus(params.status);
    } else if (key == "close") {
      ok = ParseFlag(value, params.close);
    } else if (key == "bytes") {
      uint64_t n = 0;
      ok = ParseNumber(value, n);
      params.bytes = n;
    } else if (key == "chunked") {
      ok = ParseFlag(value, params.chunked);
    }
    if (!ok) return key;
  }
  return {};
}

// ---- Connections -----------------------------------------------------------------------------

struct Connection {
  Connection(Worker& worker, tcp::socket socket, uint64_t id)
      : worker(worker),
        socket(std::move(socket)),
        id(id),
        delay_timer(worker.io_context),
        idle_timer(worker.io_context) {}

  Worker& worker;
  tcp::socket socket;
  const uint64_t id;
  uint64_t requests = 0;  // Requests read on this connection, the current one included.
  bool counted = false;   // Whether Totals::connections includes this connection yet.
  beast::flat_buffer buffer{kReadBufferLimit};
  asio::steady_timer delay_timer;
  asio::steady_timer idle_timer;
  uint64_t idle_generation = 0;  // Tells a stale idle-timer completion from the current one.
  bool idle_waiting = false;
  Request request;
  std::string head;  // The response head being written.
  std::string body;  // The JSON body being written.
};

void Close(Connection& c) {
  error_code ignored;
  c.socket.shutdown(tcp::socket::shutdown_send, ignored);
  c.socket.close(ignored);
}

// While waiting for the next request, closes the connection after --idle-timeout-ms. The handler
// owns a reference so that it may run after the serving coroutine has finished.
void ArmIdleTimer(const std::shared_ptr<Connection>& c) {
  const int64_t timeout_ms = c->worker.options.idle_timeout_ms;
  if (timeout_ms <= 0) return;
  c->idle_waiting = true;
  c->idle_timer.expires_after(std::chrono::milliseconds(timeout_ms));
  c->idle_timer.async_wait([c, generation = ++c->idle_generation](const error_code& ec) {
    if (ec || !c->idle_waiting || c->idle_generation != generation) return;
    Close(*c);
  });
}

void DisarmIdleTimer(Connection& c) {
  if (!c.idle_waiting) return;
  c.idle_waiting = false;
  c.idle_timer.cancel();
}

bool IsStatsRequest(const Request& r) {
  const std::string_view target = r.target;
  return (r.method == http::verb::get || r.method == http::verb::head) &&
         target.substr(0, target.find('?')) == "/_echo/stats";
}

// Counts everything but stats requests, so that asking for the stats does not change them.
void CountRequest(Connection& c) {
  ++c.requests;
  if (IsStatsRequest(c.request)) return;
  Totals& totals = c.worker.totals;
  totals.requests.fetch_add(1, std::memory_order_relaxed);
  if (!c.counted) {
    c.counted = true;
    totals.connections.fetch_add(1, std::memory_order_relaxed);
  }
}

// A uniform draw in [0, 1) that does not depend on the standard library's distributions.
double Draw(std::mt19937_64& rng) { return double(rng() >> 11) * 0x1.0p-53; }

bool BodyForbidden(int status) { return status == 204 || status == 304; }

enum class Framing { kContentLength, kChunked, kNone };

// Formats the status line and headers into c.head.
void FormatHead(Connection& c, int status, std::string_view content_type, Framing framing,
                uint64_t content_length, bool keep_alive) {
  std::string& out = c.head;
  const int version = c.request.version;
  out.clear();
  out += version == 10 ? "HTTP/1.0 " : "HTTP/1.1 ";
  AppendUint(out, status);
  out.push_back(' ');
  const std::string_view reason = http::obsolete_reason(static_cast<http::status>(status));
  out += reason.starts_with('<') ? std::string_view("Unknown") : reason;
  out += "\r\ncontent-type: ";
  out += content_type;
  out += "\r\n";
  out += c.worker.echo_headers;
  if (framing == Framing::kContentLength) {
    out += "content-length: ";
    AppendUint(out, content_length);
    out += "\r\n";
  } else if (framing == Framing::kChunked) {
    out += "transfer-encoding: chunked\r\n";
  }
  if (!keep_alive) {
    out += "connection: close\r\n";
  } else if (version == 10) {
    out += "connection: keep-alive\r\n";
  }
  out += "\r\n";
}

// Writes c.body as a JSON response, head and body in one write. Returns whether the write worked.
asio::awaitable<bool> WriteJson(Connection& c, int status, bool keep_alive) {
  const bool has_body = !BodyForbidden(status);
  FormatHead(c, status, kJson, has_body ? Framing::kContentLength : Framing::kNone, c.body.size(),
             keep_alive);
  const bool send_body = has_body && c.request.method != http::verb::head;
  const std::array<asio::const_buffer, 2> buffers = {
      asio::buffer(c.head), asio::buffer(c.body.data(), send_body ? c.body.size() : 0)};
  auto [ec, n] = co_await asio::async_write(c.socket, buffers, kAsTuple);
  co_return !ec;
}

// Writes `bytes` bytes of Block() content, with Content-Length or (HTTP/1.1 only) chunked. The
// head goes out with the first block; the last-chunk marker with the last one.
asio::awaitable<bool> WriteBytes(Connection& c, const Params& params, bool keep_alive) {
  const uint64_t total = *params.bytes;
  const bool chunked = params.chunked && c.request.version >= 11;
  const bool has_body = !BodyForbidden(params.status);
  Framing framing = Framing::kContentLength;
  if (!has_body) {
    framing = Framing::kNone;
  } else if (chunked) {
    framing = Framing::kChunked;
  }
  FormatHead(c, params.status, kOctets, framing, total, keep_alive);
  if (!has_body || c.request.method == http::verb::head) {
    auto [ec, n] = co_await asio::async_write(c.socket, asio::buffer(c.head), kAsTuple);
    co_return !ec;
  }
  uint64_t left = total;
  bool first = true;
  do {
    const size_t n = size_t(std::min<uint64_t>(left, kBlockSize));
    left -= n;
    std::array<asio::const_buffer, 5> buffers;
    size_t count = 0;
    char size_line[24];
    if (first) buffers[count++] = asio::buffer(c.head);
    if (chunked && n > 0) {
      char* end = std::to_chars(size_line, size_line + 16, n, 16).ptr;
      *end++ = '\r';
      *end++ = '\n';
      buffers[count++] = asio::buffer(size_line, end - size_line);
    }
    buffers[count++] = asio::buffer(Block().data(), n);
    if (chunked && n > 0) buffers[count++] = asio::buffer("\r\n", 2);
    if (chunked && left == 0) buffers[count++] = asio::buffer("0\r\n\r\n", 5);
    auto [ec, written] = co_await asio::async_write(
        c.socket, std::span<const asio::const_buffer>(buffers.data(), count), kAsTuple);
    if (ec) co_return false;
    first = false;
  } while (left > 0);
  co_return true;
}

void FormatEcho(Connection& c) {
  const Request& r = c.request;
  const Options& options = c.worker.options;
  std::string& out = c.body;
  out.clear();
  out += "{\"name\":";
  AppendJsonString(out, options.name);
  out += ",\"version\":";
  AppendJsonString(out, options.version);
  out += ",\"method\":";
  AppendJsonString(out, r.method_string);
  out += ",\"path\":";
  AppendJsonString(out, r.target);
  out += ",\"http_version\":\"";
  AppendUint(out, r.version / 10);
  out.push_back('.');
  AppendUint(out, r.version % 10);
  out += "\",\"headers\":{";
  bool first = true;
  for (size_t i = 0; i < r.field_count; ++i) {
    const std::string& name = r.fields[i].first;
    // A repeated field appears once, its values joined with ", " as RFC 9110 5.3 allows.
    const auto same_name = [&](size_t j) { return r.fields[j].first == name; };
    bool seen = false;
    for (size_t j = 0; j < i && !seen; ++j) seen = same_name(j);
    if (seen) continue;
    if (!first) out.push_back(',');
    first = false;
    AppendJsonString(out, name);
    out.push_back(':');
    bool repeated = false;
    for (size_t j = i + 1; j < r.field_count && !repeated; ++j) repeated = same_name(j);
    if (!repeated) {
      AppendJsonString(out, r.fields[i].second);
      continue;
    }
    std::string joined;  // Rare: allocating here is fine.
    for (size_t j = i; j < r.field_count; ++j) {
      if (!same_name(j)) continue;
      if (!joined.empty()) joined += ", ";
      joined += r.fields[j].second;
    }
    AppendJsonString(out, joined);
  }
  out += "},\"body_bytes\":";
  AppendUint(out, r.body_bytes);
  out += ",\"body_fnv1a64\":\"";
  AppendHex16(out, r.body_fnv1a64);
  out += "\",\"connection_id\":";
  AppendUint(out, c.id);
  out += ",\"connection_requests\":";
  AppendUint(out, c.requests);
  out += "}";
}

void FormatError(Connection& c, std::string_view message, std::string_view detail) {
  c.body.clear();
  c.body += "{\"error\":";
  AppendJsonString(c.body, message);
  if (!detail.empty()) {
    c.body += ",\"detail\":";
    AppendJsonString(c.body, detail);
  }
  c.body += ",\"name\":";
  AppendJsonString(c.body, c.worker.options.name);
  c.body += ",\"version\":";
  AppendJsonString(c.body, c.worker.options.version);
  c.body += "}";
}

// Answers a complete request. Returns false when the connection must be closed.
asio::awaitable<bool> Answer(Connection& c, bool keep_alive) {
  const Options& options = c.worker.options;
  if (IsStatsRequest(c.request)) {
    c.body.clear();
    c.body += "{\"requests\": ";
    AppendUint(c.body, c.worker.totals.requests.load(std::memory_order_relaxed));
    c.body += ", \"connections\": ";
    AppendUint(c.body, c.worker.totals.connections.load(std::memory_order_relaxed));
    c.body += "}";
    co_return co_await WriteJson(c, 200, keep_alive);
  }
  Params params;
  params.delay_ms = options.delay_ms;
  params.fail_rate = options.fail_rate;
  params.fail_status = options.fail_status;
  if (std::string_view bad = ParseQuery(c.request.target, params); !bad.empty()) {
    FormatError(c, "bad query parameter", bad);
    co_return co_await WriteJson(c, 400, keep_alive);
  }
  if (params.delay_ms > 0) {
    c.delay_timer.expires_after(std::chrono::milliseconds(params.delay_ms));
    auto [ec] = co_await c.delay_timer.async_wait(kAsTuple);
    if (ec) co_return false;
  }
  if (params.close) co_return false;
  if (params.fail_rate > 0 && Draw(c.worker.rng) < params.fail_rate) {
    FormatError(c, "injected failure", {});
    co_return co_await WriteJson(c, params.fail_status, keep_alive);
  }
  if (params.bytes) co_return co_await WriteBytes(c, params, keep_alive);
  FormatEcho(c);
  co_return co_await WriteJson(c, params.status, keep_alive);
}

// Answers a request that could not be read, when there is still someone to answer.
asio::awaitable<void> AnswerReadError(Connection& c, const error_code& ec) {
  if (ec.category() != http::make_error_code(http::error::header_limit).category() ||
      ec == http::error::end_of_stream || ec == http::error::partial_message) {
    co_return;  // The peer went away, or the socket failed: nobody to answer.
  }
  c.request.version = 11;
  const bool too_large = ec == http::error::header_limit;
  FormatError(c, too_large ? "request header too large" : "malformed request", ec.message());
  co_await WriteJson(c, too_large ? 431 : 400, /*keep_alive=*/false);
}

asio::awaitable<void> Serve(std::shared_ptr<Connection> c) {
  for (;;) {
    c->request.Clear();
    RequestParser parser(c->request);
    ArmIdleTimer(c);
    auto [ec, n] = co_await http::async_read_header(c->socket, c->buffer, parser, kAsTuple);
    DisarmIdleTimer(*c);
    if (ec) {
      co_await AnswerReadError(*c, ec);
      break;
    }
    CountRequest(*c);
    if (!parser.is_done()) {
      if (c->request.expect_continue && c->request.version >= 11) {
        auto [write_ec, written] =
            co_await asio::async_write(c->socket, asio::buffer(kContinue), kAsTuple);
        if (write_ec) break;
      }
      auto [read_ec, bytes_read] =
          co_await http::async_read(c->socket, c->buffer, parser, kAsTuple);
      if (read_ec) {
        co_await AnswerReadError(*c, read_ec);
        break;
      }
    }
    const bool keep_alive = parser.keep_alive();
    if (!co_await Answer(*c, keep_alive) || !keep_alive) break;
  }
  Close(*c);
  c->delay_timer.cancel();
  c->idle_timer.cancel();
}

void ReportException(std::exception_ptr e) {
  if (!e) return;
  try {
    std::rethrow_exception(e);
  } catch (const std::exception& ex) {
    std::fprintf(stderr, "outrigger-echo: connection failed: %s\n", ex.what());
  } catch (...) {
    std::fprintf(stderr, "outrigger-echo: connection failed\n");
  }
}

}  // namespace

Worker::Worker(const Options& options, Totals& totals, uint64_t index)
    : options(options),
      totals(totals),
      rng(options.seed + index),
      echo_headers("x-echo-name: " + options.name + "\r\nx-echo-version: " + options.version +
                   "\r\n") {}

bool IsValidHeaderValue(std::string_view s) {
  return std::none_of(s.begin(), s.end(), [](char ch) {
    return (uint8_t(ch) < 0x20 && ch != '\t') || uint8_t(ch) == 0x7f;
  });
}

asio::awaitable<void> AcceptLoop(Worker& worker) {
  asio::steady_timer backoff(worker.io_context);
  for (;;) {
    auto [ec, socket] = co_await worker.acceptor.async_accept(kAsTuple);
    if (ec == asio::error::operation_aborted || !worker.acceptor.is_open()) co_return;
    if (ec) {
      // Typically out of file descriptors: wait instead of spinning on the same error.
      backoff.expires_after(std::chrono::milliseconds(10));
      co_await backoff.async_wait(kAsTuple);
      continue;
    }
    error_code ignored;
    socket.set_option(tcp::no_delay(true), ignored);
    const uint64_t id = worker.totals.next_connection_id.fetch_add(1, std::memory_order_relaxed);
    asio::co_spawn(worker.io_context,
                   Serve(std::make_shared<Connection>(worker, std::move(socket), id)),
                   ReportException);
  }
}

}  // namespace outrigger::echo
