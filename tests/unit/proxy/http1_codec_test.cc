// The HTTP/1 codec: heads parse into RequestHead/ResponseHead, bodies are re-framed, hop-by-hop
// headers are recognised, and every ambiguous framing that request smuggling relies on is refused.
#include "proxy/http/http1_codec.h"

#include <catch2/catch.hpp>

using namespace outrigger::http;

namespace {

struct Parsed {
  bool ok = false;
  bool done = false;
  std::string error;
  RequestHead head;
  std::string body_out;
};

// Feeds `raw` in one piece (header) then the rest (body), as the session does.
Parsed ParseRequest(const std::string& raw, Framing out = Framing::kContentLength) {
  Parsed p;
  BodyEncoder body;
  body.Reset(Framing::kNone, &p.body_out);
  RequestParser parser(&p.head, &body);
  parser.set_head_limit(1024);
  parser.eager(false);
  error_code ec;
  size_t used = parser.Put(raw, ec);
  if (ec) {
    p.error = parser.reject_reason().empty() ? ec.message() : std::string(parser.reject_reason());
    return p;
  }
  body.Reset(parser.chunked() ? Framing::kChunked : out, &p.body_out);
  parser.eager(true);
  if (!parser.is_done() && used < raw.size()) {
    parser.Put(absl::string_view(raw).substr(used), ec);
    if (ec && ec != boost::beast::http::error::need_more) {
      p.error = ec.message();
      return p;
    }
  }
  p.ok = true;
  p.done = parser.is_done();
  return p;
}

}  // namespace

TEST_CASE("a request head parses, origin form", "[codec]") {
  auto p = ParseRequest("GET /a?b=1 HTTP/1.1\r\nHost: reviews:9080\r\nX-A: 1\r\n\r\n");
  REQUIRE(p.ok);
  CHECK(p.done);
  CHECK(p.head.method == "GET");
  CHECK(p.head.authority == "reviews:9080");
  CHECK(p.head.path == "/a?b=1");
  CHECK(p.head.PathOnly() == "/a");
  CHECK(p.head.headers.Get("x-a").value() == "1");
}

TEST_CASE("absolute form: the URI's authority wins", "[codec]") {
  auto p = ParseRequest("GET http://ratings:9080/x?y HTTP/1.1\r\nHost: other\r\n\r\n");
  REQUIRE(p.ok);
  CHECK(p.head.authority == "ratings:9080");
  CHECK(p.head.path == "/x?y");
  CHECK(p.head.absolute_form);
  auto q = ParseRequest("GET http://ratings?q=1 HTTP/1.1\r\nHost: h\r\n\r\n");
  CHECK(q.head.path == "/?q=1");
}

TEST_CASE("HTTP/1.0 without Host is fine, HTTP/1.1 without Host is not", "[codec]") {
  CHECK(ParseRequest("GET / HTTP/1.0\r\n\r\n").ok);
  CHECK(ParseRequest("GET / HTTP/1.1\r\n\r\n").error.find("without Host") != std::string::npos);
}

TEST_CASE("bodies are re-framed", "[codec]") {
  auto cl = ParseRequest("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nhello");
  REQUIRE(cl.ok);
  CHECK(cl.done);
  CHECK(cl.body_out == "hello");
  auto ch = ParseRequest(
      "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
      "5\r\nhello\r\n3;ext=1\r\nabc\r\n0\r\nX-Trailer: t\r\n\r\n");
  REQUIRE(ch.ok);
  CHECK(ch.done);
  CHECK(ch.body_out == "5\r\nhello\r\n3\r\nabc\r\n0\r\nX-Trailer: t\r\n\r\n");
  auto partial = ParseRequest("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 10\r\n\r\nhel");
  CHECK(partial.ok);
  CHECK_FALSE(partial.done);
  CHECK(partial.body_out == "hel");
}

TEST_CASE("expect 100-continue is noticed", "[codec]") {
  auto p = ParseRequest(
      "PUT / HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\n");
  REQUIRE(p.ok);
  CHECK(p.head.expect_continue);
}

TEST_CASE("request smuggling framings are refused", "[codec][smuggling]") {
  const char* cases[] = {
      // Content-Length with Transfer-Encoding
      "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n",
      "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n",
      // differing duplicate Content-Length
      "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 4\r\nContent-Length: 5\r\n\r\n",
      "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 4, 5\r\n\r\n",
      // Transfer-Encoding other than exactly chunked
      "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip\r\n\r\n",
      "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked, gzip\r\n\r\n",
      "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
      "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: xchunked\r\n\r\n",
      "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n",
      "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n",
      // obs-fold
      "GET / HTTP/1.1\r\nHost: h\r\nX-A: 1\r\n 2\r\n\r\n",
      "GET / HTTP/1.1\r\nHost: h\r\nX-A: 1\r\n\t2\r\n\r\n",
      // bare LF / bare CR
      "GET / HTTP/1.1\nHost: h\n\n",
      "GET / HTTP/1.1\r\nHost: h\r\nX-A: 1\r2\r\n\r\n",
      // invalid header names
      "GET / HTTP/1.1\r\nHost: h\r\nBad Header: x\r\n\r\n",
      "GET / HTTP/1.1\r\nHost: h\r\nBad@Name: x\r\n\r\n",
      "GET / HTTP/1.1\r\nHost: h\r\nContent-Length : 0\r\n\r\n",
      // repeated Host
      "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
      // bad versions and targets
      "GET / HTTP/2.0\r\nHost: h\r\n\r\n",
      "GET foo HTTP/1.1\r\nHost: h\r\n\r\n",
  };
  for (const char* raw : cases) {
    INFO(raw);
    CHECK_FALSE(ParseRequest(raw).ok);
  }
}

TEST_CASE("bad chunk sizes are refused", "[codec][smuggling]") {
  const std::string head = "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n";
  CHECK_FALSE(ParseRequest(head + "zz\r\nhello\r\n0\r\n\r\n").ok);
  CHECK_FALSE(ParseRequest(head + "ffffffffffffffffff\r\nx\r\n").ok);
  CHECK_FALSE(ParseRequest(head + "-5\r\nhello\r\n0\r\n\r\n").ok);
  CHECK_FALSE(ParseRequest(head + "5\r\nhelloXX0\r\n\r\n").ok);  // missing CRLF after data
}

TEST_CASE("header block larger than the limit is header_limit", "[codec]") {
  RequestHead head;
  BodyEncoder body;
  std::string out;
  body.Reset(Framing::kNone, &out);
  RequestParser parser(&head, &body);
  parser.set_head_limit(64);
  error_code ec;
  parser.Put("GET / HTTP/1.1\r\nHost: h\r\nX: " + std::string(100, 'a') + "\r\n\r\n", ec);
  CHECK(ec == boost::beast::http::error::header_limit);
}

TEST_CASE("the head limit holds when the head arrives in pieces", "[codec]") {
  std::string raw = "GET / HTTP/1.1\r\nHost: h\r\n";
  for (int i = 0; i < 70; ++i) raw += "X-H" + std::to_string(i) + ": " + std::string(1024, 'a') + "\r\n";
  raw += "\r\n";
  RequestHead head;
  BodyEncoder body;
  std::string out;
  body.Reset(Framing::kNone, &out);
  RequestParser parser(&head, &body);
  parser.set_head_limit(60 * 1024);
  error_code ec;
  size_t consumed = 0;
  for (size_t have = 16384;; have = std::min(raw.size(), have + 16384)) {
    consumed += parser.Put(absl::string_view(raw).substr(consumed, have - consumed), ec);
    if (ec != boost::beast::http::error::need_more || have == raw.size()) break;
  }
  CHECK(ec == boost::beast::http::error::header_limit);
}

TEST_CASE("responses parse and close-delimited bodies end at EOF", "[codec]") {
  ResponseHead head;
  BodyEncoder body;
  std::string out;
  body.Reset(Framing::kChunked, &out);
  ResponseParser parser(&head, &body);
  parser.eager(true);
  error_code ec;
  parser.Put("HTTP/1.0 200 OK\r\nX: y\r\n\r\nabc", ec);
  CHECK(head.status == 200);
  CHECK(head.version == 10);
  CHECK(parser.need_eof());
  parser.put_eof(ec);
  CHECK_FALSE(ec);
  CHECK(parser.is_done());
  CHECK(out == "3\r\nabc\r\n0\r\n\r\n");
}

TEST_CASE("hop-by-hop headers and the ones Connection names", "[codec]") {
  CHECK(IsHopByHop("Keep-Alive", ""));
  CHECK(IsHopByHop("transfer-encoding", ""));
  CHECK(IsHopByHop("Proxy-Connection", ""));
  CHECK(IsHopByHop("x-secret", "close, X-Secret"));
  CHECK_FALSE(IsHopByHop("x-other", "close, X-Secret"));
  CHECK_FALSE(IsHopByHop("content-length", "close"));
}

TEST_CASE("header map keeps order, removes and finds without case", "[codec]") {
  HeaderMap m;
  m.Add("A", "1");
  m.Add("b", "2");
  m.Add("a", "3");
  CHECK(m.Count("a") == 2);
  CHECK(m.Get("B").value() == "2");
  CHECK(m.Remove("A") == 2);
  CHECK(m.size() == 1);
  m.Set("b", "4");
  std::string seen;
  m.ForEach([&](absl::string_view n, absl::string_view v) {
    seen += std::string(n) + "=" + std::string(v) + ";";
  });
  CHECK(seen == "b=4;");
}

TEST_CASE("local replies are complete responses", "[codec]") {
  std::string r = LocalReply(503, "no healthy upstream\n", true);
  CHECK(r.find("HTTP/1.1 503 Service Unavailable\r\n") == 0);
  CHECK(r.find("content-length: 20\r\n") != std::string::npos);
  CHECK(r.find("connection: close\r\n") != std::string::npos);
}

TEST_CASE("protocol detection tells an HTTP/1 request line from other bytes", "[codec][detect]") {
  CHECK(SniffRequestLine("GET / HTTP/1.1\r\n") == Sniff::kHttp);
  CHECK(SniffRequestLine("M-SEARCH * HTTP/1.1") == Sniff::kHttp);
  CHECK(SniffRequestLine("PROPFIND ") == Sniff::kHttp);
  CHECK(SniffRequestLine("") == Sniff::kNeedMore);
  CHECK(SniffRequestLine("GE") == Sniff::kNeedMore);
  CHECK(SniffRequestLine(std::string("\x16\x03\x01", 3)) == Sniff::kNotHttp);  // TLS
  CHECK(SniffRequestLine(std::string("\0\0\0\x08", 4)) == Sniff::kNotHttp);   // Postgres
  CHECK(SniffRequestLine("get / HTTP/1.1") == Sniff::kNotHttp);  // methods are case-sensitive
  CHECK(SniffRequestLine(" GET") == Sniff::kNotHttp);
  CHECK(SniffRequestLine("PRI * HTTP/2.0") == Sniff::kHttp);  // (HTTP/2's preface: HTTP's loop)
  CHECK(SniffRequestLine("*1\r\n$4\r\nPING\r\n") == Sniff::kNotHttp);  // Redis
  CHECK(SniffRequestLine(std::string(21, 'A')) == Sniff::kNotHttp);
}
