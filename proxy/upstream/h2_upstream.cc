// See h2_upstream.h.
#include "proxy/upstream/h2_upstream.h"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "xds/common/log.h"

namespace outrigger::proxy {

namespace asio = boost::asio;

namespace {
constexpr auto kTuple = asio::as_tuple(asio::use_awaitable);
constexpr size_t kReadSize = 64 * 1024;
}  // namespace

H2Upstream::H2Upstream(std::unique_ptr<UpstreamConnection> connection)
    : conn_(std::move(connection)),
      codec_(http2::Codec::Role::kClient, this),
      writer_wake_(conn_->stream.socket().get_executor(),
                   asio::steady_timer::time_point::max()),
      idle_since_(std::chrono::steady_clock::now()) {}

H2Upstream::~H2Upstream() = default;

std::shared_ptr<H2Upstream> H2Upstream::Usable(const HostPool& host) {
  return host.h2 && host.h2->usable() ? host.h2 : nullptr;
}

std::shared_ptr<H2Upstream> H2Upstream::Adopt(std::unique_ptr<UpstreamConnection> connection) {
  std::shared_ptr<HostPool> host = connection->host;
  auto h2 = std::make_shared<H2Upstream>(std::move(connection));
  h2->Start();
  host->h2 = h2;
  return h2;
}

void H2Upstream::Start() {
  auto ex = conn_->stream.socket().get_executor();
  asio::co_spawn(ex, Reader(shared_from_this()), asio::detached);
  asio::co_spawn(ex, Writer(shared_from_this()), asio::detached);
}

bool H2Upstream::usable() const { return !dead_ && !goaway_ && codec_.alive(); }

int32_t H2Upstream::Open(const http2::Headers& headers, bool end_stream, Owner* owner) {
  if (!usable()) return -1;
  const int32_t id = codec_.SubmitRequest(headers, end_stream);
  if (id > 0) owners_[id] = Entry{owner, 0};
  Flush();
  return id;
}

void H2Upstream::SendData(int32_t stream, absl::string_view data, bool end) {
  (void)codec_.SendData(stream, data, end);
  Flush();
}

void H2Upstream::SendTrailers(int32_t stream, const http2::Headers& trailers) {
  (void)codec_.SendTrailers(stream, trailers);
  Flush();
}

void H2Upstream::Reset(int32_t stream, uint32_t error_code) {
  codec_.ResetStream(stream, error_code);
  Flush();
}

void H2Upstream::Consume(int32_t stream, size_t n) {
  if (auto it = owners_.find(stream); it != owners_.end()) {
    it->second.unconsumed -= std::min(n, it->second.unconsumed);
  }
  codec_.Consume(stream, n);  // after the stream closed too: the connection's window
  Flush();
}

void H2Upstream::Detach(int32_t stream) {
  auto it = owners_.find(stream);
  if (it == owners_.end()) return;
  const Entry e = it->second;
  owners_.erase(it);
  if (owners_.empty()) idle_since_ = std::chrono::steady_clock::now();
  if (dead_) return;
  if (e.owner != nullptr) codec_.ResetStream(stream, http2::kCancel);
  if (e.unconsumed > 0) codec_.Consume(stream, e.unconsumed);
  Flush();
}

void H2Upstream::Close() {
  if (dead_) return;
  codec_.Goaway();
  goaway_ = true;
  Flush();
}

H2Upstream::Owner* H2Upstream::OwnerOf(int32_t id) {
  auto it = owners_.find(id);
  return it == owners_.end() ? nullptr : it->second.owner;
}

void H2Upstream::OnHeaders(int32_t id, http2::Headers headers, bool end_stream) {
  if (Owner* o = OwnerOf(id)) o->OnUpstreamHeaders(std::move(headers), end_stream);
}

void H2Upstream::OnData(int32_t id, absl::string_view data) {
  auto it = owners_.find(id);
  if (it == owners_.end() || it->second.owner == nullptr) {
    codec_.Consume(id, data.size());  // nobody wants it
    return;
  }
  it->second.unconsumed += data.size();
  it->second.owner->OnUpstreamData(data);
}

void H2Upstream::OnTrailers(int32_t id, http2::Headers trailers) {
  if (Owner* o = OwnerOf(id)) o->OnUpstreamTrailers(std::move(trailers));
}

void H2Upstream::OnEndStream(int32_t id) {
  if (Owner* o = OwnerOf(id)) o->OnUpstreamEnd();
}

void H2Upstream::OnStreamClose(int32_t id, uint32_t error_code) {
  auto it = owners_.find(id);
  if (it == owners_.end() || it->second.owner == nullptr) return;
  Owner* o = it->second.owner;
  it->second.owner = nullptr;  // the entry stays for its unconsumed bytes until Detach
  o->OnUpstreamClose(error_code);
}

void H2Upstream::OnGoaway(uint32_t, int32_t) {
  goaway_ = true;
  Flush();  // the writer ends the connection once no stream is left
}

void H2Upstream::Flush() { writer_wake_.cancel(); }

void H2Upstream::Fail() {
  if (dead_) return;
  dead_ = true;
  // The host stops handing out this connection (and no longer keeps it alive).
  if (conn_->host && conn_->host->h2.get() == this) conn_->host->h2.reset();
  conn_->stream.Cancel();
  writer_wake_.cancel();
  auto owners = std::move(owners_);
  owners_.clear();
  for (auto& [id, e] : owners) {
    if (e.owner != nullptr) e.owner->OnUpstreamClose(http2::kInternalError);
  }
}

asio::awaitable<void> H2Upstream::Reader(std::shared_ptr<H2Upstream> self) {
  auto& in = conn_->in;
  while (!dead_) {
    auto [ec, n] = co_await conn_->stream.ReadSome(in.prepare(kReadSize));
    if (ec) break;
    in.commit(n);
    const absl::Status st = codec_.Receive(BufferView(in));
    in.consume(in.size());
    Flush();
    if (!st.ok()) {
      LogDebug("HTTP/2 upstream ", conn_->host->address_text, ": ", st.message());
      break;
    }
    if (!codec_.alive()) break;
  }
  Fail();
}

asio::awaitable<void> H2Upstream::Writer(std::shared_ptr<H2Upstream> self) {
  std::string out;
  while (!dead_) {
    out.clear();
    if (!codec_.TakeOutput(&out).ok()) break;
    if (out.empty()) {
      if (goaway_ && owners_.empty()) break;  // closing, and nothing left to send or hear
      writer_wake_.expires_at(asio::steady_timer::time_point::max());
      (void)co_await writer_wake_.async_wait(kTuple);
      continue;
    }
    auto [ec, n] = co_await conn_->stream.Write(asio::buffer(out));
    if (ec) break;
    // Owners with request data waiting may send more.
    notify_.clear();  // collected first: callbacks must not run while the map is walked
    for (auto& [id, e] : owners_) {
      if (e.owner != nullptr) notify_.push_back(e.owner);
    }
    for (Owner* o : notify_) o->OnUpstreamWritable();
  }
  Fail();
}

}  // namespace outrigger::proxy
