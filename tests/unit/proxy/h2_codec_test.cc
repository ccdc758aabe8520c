// The HTTP/2 codec (proxy/http2/h2_codec.cc) between a client and a server in memory: requests and
// responses with bodies and trailers (gRPC's shape), flow control bounding what a peer can make
// us hold, and the abuse limits: too many concurrent streams, an oversized header list, a
// CONTINUATION flood, and rapid reset. Also the gRPC helpers (grpc.cc).
#include "proxy/http2/h2_codec.h"
#include "proxy/http2/grpc.h"

#include <catch2/catch.hpp>
#include <map>
#include <string>

using namespace outrigger::http2;

namespace {

struct Recorder : Codec::Events {
  struct Stream {
    Headers headers;
    std::string data;
    Headers trailers;
    bool ended = false;
    bool closed = false;
    uint32_t error = 0;
  };
  std::map<int32_t, Stream> streams;
  bool goaway = false;
  uint32_t goaway_error = 0;

  void OnHeaders(int32_t id, Headers h, bool) override { streams[id].headers = std::move(h); }
  void OnData(int32_t id, absl::string_view d) override {
    streams[id].data.append(d.data(), d.size());
  }
  void OnTrailers(int32_t id, Headers t) override { streams[id].trailers = std::move(t); }
  void OnEndStream(int32_t id) override { streams[id].ended = true; }
  void OnStreamClose(int32_t id, uint32_t error) override {
    streams[id].closed = true;
    streams[id].error = error;
  }
  void OnGoaway(uint32_t error, int32_t) override {
    goaway = true;
    goaway_error = error;
  }
};

std::string Value(const Headers& h, const std::string& name) {
  for (const auto& x : h) {
    if (x.name == name) return x.value;
  }
  return "";
}

// Moves frames both ways until neither side has anything to say. False if a side failed.
bool Pump(Codec& client, Codec& server, std::string* client_error = nullptr,
          std::string* server_error = nullptr) {
  for (int round = 0; round < 1000; ++round) {
    std::string c2s, s2c;
    REQUIRE(client.TakeOutput(&c2s).ok());
    REQUIRE(server.TakeOutput(&s2c).ok());
    if (c2s.empty() && s2c.empty()) return true;
    if (!c2s.empty()) {
      if (auto st = server.Receive(c2s); !st.ok()) {
        if (server_error) *server_error = std::string(st.message());
        std::string last;
        (void)server.TakeOutput(&last);  // the GOAWAY
        (void)client.Receive(last);
        return false;
      }
    }
    if (!s2c.empty()) {
      if (auto st = client.Receive(s2c); !st.ok()) {
        if (client_error) *client_error = std::string(st.message());
        return false;
      }
    }
  }
  FAIL("the peers never went quiet");
  return false;
}

Headers Request(const std::string& path, const std::string& method = "POST") {
  return {{":method", method}, {":scheme", "http"}, {":authority", "catalog"}, {":path", path},
          {"content-type", "application/grpc"}, {"te", "trailers"}};
}

std::string Frame(uint8_t type, uint8_t flags, uint32_t stream, const std::string& payload) {
  std::string f;
  const uint32_t n = static_cast<uint32_t>(payload.size());
  f += static_cast<char>(n >> 16);
  f += static_cast<char>(n >> 8);
  f += static_cast<char>(n);
  f += static_cast<char>(type);
  f += static_cast<char>(flags);
  f += static_cast<char>(stream >> 24);
  f += static_cast<char>(stream >> 16);
  f += static_cast<char>(stream >> 8);
  f += static_cast<char>(stream);
  return f + payload;
}

}  // namespace

TEST_CASE("a request and a response with bodies and trailers (gRPC's shape)", "[http2]") {
  Recorder cr, sr;
  Codec client(Codec::Role::kClient, &cr);
  Codec server(Codec::Role::kServer, &sr);
  const int32_t id = client.SubmitRequest(Request("/shop.Catalog/List"), false);
  REQUIRE(id == 1);
  REQUIRE(client.SendData(id, std::string(100000, 'q'), true).ok());
  REQUIRE(Pump(client, server));
  REQUIRE(sr.streams.count(1));
  CHECK(Value(sr.streams[1].headers, ":path") == "/shop.Catalog/List");
  CHECK(Value(sr.streams[1].headers, "te") == "trailers");
  CHECK(sr.streams[1].ended);
  // The server's window opens only as it consumes: the client's 100,000 bytes (more than the
  // 65,535 a connection starts with) arrive because the codec announced larger windows.
  CHECK(sr.streams[1].data.size() == 100000);
  server.Consume(1, 100000);

  REQUIRE(server.SubmitResponse(1, {{":status", "200"}, {"content-type", "application/grpc"}},
                                false).ok());
  REQUIRE(server.SendData(1, "reply-1", false).ok());
  REQUIRE(server.SendData(1, "reply-2", false).ok());
  REQUIRE(server.SendTrailers(1, {{"grpc-status", "0"}, {"grpc-message", "ok"}}).ok());
  REQUIRE(Pump(client, server));
  const auto& s = cr.streams[1];
  CHECK(Value(s.headers, ":status") == "200");
  CHECK(s.data == "reply-1reply-2");
  CHECK(Value(s.trailers, "grpc-status") == "0");
  CHECK(Value(s.trailers, "grpc-message") == "ok");
  CHECK(s.ended);
  CHECK(s.closed);
  CHECK(s.error == kNoError);
  CHECK(client.streams() == 0);
  CHECK(server.streams() == 0);
}

TEST_CASE("flow control: a peer cannot make us hold more than our window", "[http2]") {
  Recorder cr, sr;
  Limits small;
  small.stream_window = 64 * 1024;
  Codec client(Codec::Role::kClient, &cr, small);
  Codec server(Codec::Role::kServer, &sr);
  const int32_t id = client.SubmitRequest(Request("/big", "GET"), true);
  REQUIRE(Pump(client, server));
  REQUIRE(server.SubmitResponse(id, {{":status", "200"}}, false).ok());
  REQUIRE(server.SendData(id, std::string(1 << 20, 'x'), true).ok());
  REQUIRE(Pump(client, server));
  // The client consumed nothing: it holds exactly one stream window, the rest waits upstream.
  CHECK(cr.streams[id].data.size() == 64 * 1024);
  CHECK(server.Queued(id) == (1 << 20) - 64 * 1024);
  // Consuming what arrived lets the rest through.
  Recorder cr2, sr2;
  Codec c2(Codec::Role::kClient, &cr2, small);
  Codec s2(Codec::Role::kServer, &sr2);
  const int32_t id2 = c2.SubmitRequest(Request("/big", "GET"), true);
  REQUIRE(Pump(c2, s2));
  REQUIRE(s2.SubmitResponse(id2, {{":status", "200"}}, false).ok());
  REQUIRE(s2.SendData(id2, std::string(1 << 20, 'x'), true).ok());
  size_t consumed = 0;
  for (int i = 0; i < 200 && !cr2.streams[id2].ended; ++i) {
    REQUIRE(Pump(c2, s2));
    const size_t have = cr2.streams[id2].data.size();
    CHECK(have - consumed <= 64 * 1024);  // never more than a window unconsumed
    c2.Consume(id2, have - consumed);
    consumed = have;
  }
  CHECK(cr2.streams[id2].ended);
  CHECK(cr2.streams[id2].data.size() == 1 << 20);
}

TEST_CASE("streams beyond max_concurrent_streams are refused", "[http2][limits]") {
  Recorder cr, sr;
  Limits limits;
  limits.max_concurrent_streams = 10;
  Codec server(Codec::Role::kServer, &sr, limits);
  Codec client(Codec::Role::kClient, &cr);
  // The client opens 30 streams before it has seen the server's SETTINGS.
  for (int i = 0; i < 30; ++i) REQUIRE(client.SubmitRequest(Request("/s", "GET"), true) > 0);
  Pump(client, server);
  CHECK(sr.streams.size() <= 10);
  size_t refused = 0;
  for (const auto& [id, s] : cr.streams) refused += s.closed && s.error == kRefusedStream;
  CHECK(refused >= 20);
}

TEST_CASE("an oversized header list resets the stream, not the connection", "[http2][limits]") {
  Recorder cr, sr;
  Limits limits;
  limits.max_header_list_bytes = 8 * 1024;
  Codec server(Codec::Role::kServer, &sr, limits);
  Codec client(Codec::Role::kClient, &cr);
  Headers big = Request("/big", "GET");
  big.push_back({"x-big", std::string(16 * 1024, 'b')});
  const int32_t bad = client.SubmitRequest(big, true);
  Pump(client, server);
  CHECK(cr.streams[bad].closed);
  CHECK(cr.streams[bad].error != kNoError);
  CHECK(sr.streams[bad].headers.empty());  // never reported as a request
  const int32_t good = client.SubmitRequest(Request("/ok", "GET"), true);
  REQUIRE(Pump(client, server));
  CHECK(Value(sr.streams[good].headers, ":path") == "/ok");
}

TEST_CASE("a CONTINUATION flood ends the connection", "[http2][limits]") {
  Recorder sr;
  Codec server(Codec::Role::kServer, &sr);
  std::string wire = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + Frame(0x4, 0, 0, "");  // SETTINGS
  // HEADERS (END_STREAM, no END_HEADERS): :method GET, :scheme http, :path /, :authority a.
  wire += Frame(0x1, 0x1, 1, std::string("\x82\x86\x84\x41\x01" "a", 6));
  for (int i = 0; i < 100; ++i) {
    // Literal header without indexing, new name "x", value "y".
    wire += Frame(0x9, 0, 1, std::string("\x00\x01x\x01y", 5));
  }
  const auto st = server.Receive(wire);
  REQUIRE_FALSE(st.ok());  // fatal: the owner closes the connection
  CHECK_THAT(std::string(st.message()), Catch::Contains("CONTINUATION"));
  CHECK(sr.streams[1].headers.empty());  // never reported as a request
}

TEST_CASE("rapid reset: a peer that keeps opening and resetting streams gets GOAWAY",
          "[http2][limits]") {
  Recorder cr, sr;
  Limits limits;
  limits.reset_burst = 100;
  limits.reset_rate = 10;
  Codec server(Codec::Role::kServer, &sr, limits);
  Codec client(Codec::Role::kClient, &cr);
  bool broken = false;
  int sent = 0;
  auto deliver = [&] {  // client -> server only, as a flooding client sends without reading
    std::string out;
    REQUIRE(client.TakeOutput(&out).ok());
    if (!server.Receive(out).ok()) return false;
    std::string back;
    REQUIRE(server.TakeOutput(&back).ok());
    (void)client.Receive(back);
    return true;
  };
  for (; sent < 2000 && !broken; ++sent) {
    const int32_t id = client.SubmitRequest(Request("/r", "GET"), true);
    if (id < 0) break;
    broken = !deliver();  // HEADERS ...
    client.ResetStream(id, kCancel);
    broken = broken || !deliver();  // ... then RST_STREAM at once
    broken = broken || cr.goaway;
  }
  CHECK(cr.goaway);
  CHECK(cr.goaway_error == kInternalError);  // (what nghttp2 sends for it)
  CHECK(sent < 2000);
  CHECK(server.streams() == 0);  // nothing kept for the reset streams
}

TEST_CASE("grpc-timeout, gRPC content types and statuses for proxy answers", "[http2][grpc]") {
  CHECK(ParseGrpcTimeout("10S") == absl::Seconds(10));
  CHECK(ParseGrpcTimeout("250m") == absl::Milliseconds(250));
  CHECK(ParseGrpcTimeout("1H") == absl::Hours(1));
  CHECK(ParseGrpcTimeout("99999999n") == absl::Nanoseconds(99999999));
  CHECK_FALSE(ParseGrpcTimeout("123456789S"));  // more than 8 digits
  CHECK_FALSE(ParseGrpcTimeout("10"));
  CHECK_FALSE(ParseGrpcTimeout("S"));
  CHECK_FALSE(ParseGrpcTimeout("1x"));
  CHECK_FALSE(ParseGrpcTimeout("-1S"));
  CHECK(IsGrpc("application/grpc"));
  CHECK(IsGrpc("application/grpc+proto"));
  CHECK_FALSE(IsGrpc("application/grpc-web"));
  CHECK_FALSE(IsGrpc("application/json"));
  CHECK(GrpcStatusForHttp(503, false) == 14);
  CHECK(GrpcStatusForHttp(504, true) == 4);
  CHECK(GrpcStatusForHttp(403, false) == 7);
  CHECK(GrpcStatusForHttp(404, false) == 12);
  CHECK(GrpcStatusForHttp(418, false) == 2);
}
