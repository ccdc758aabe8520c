// See h2_codec.h. nghttp2 does the framing, HPACK, HTTP messaging checks and flow control; this
// file turns its callbacks into Events, keeps each stream's outgoing body until the peer's window
// takes it, and sets the limits.
#include "proxy/http2/h2_codec.h"

#include <nghttp2/nghttp2.h>

#include <algorithm>
#include <cstring>

#include "absl/strings/str_cat.h"

namespace outrigger::http2 {

namespace {

std::vector<nghttp2_nv> ToNv(const Headers& headers) {
  std::vector<nghttp2_nv> nv;
  nv.reserve(headers.size());
  for (const Header& h : headers) {
    nv.push_back({reinterpret_cast<uint8_t*>(const_cast<char*>(h.name.data())),
                  reinterpret_cast<uint8_t*>(const_cast<char*>(h.value.data())), h.name.size(),
                  h.value.size(), NGHTTP2_NV_FLAG_NONE});
  }
  return nv;
}

absl::Status Fail(absl::string_view what, int rv) {
  return absl::InternalError(absl::StrCat(what, ": ", nghttp2_strerror(rv)));
}

}  // namespace

// nghttp2's C callbacks, with access to the codec's internals.
struct CodecCallbacks {
  static Codec& Of(void* user) { return *static_cast<Codec*>(user); }

  static int OnBeginHeaders(nghttp2_session*, const nghttp2_frame* frame, void* user) {
    Codec& c = Of(user);
    Codec::Stream& s = c.StreamOf(frame->hd.stream_id);
    s.headers.clear();
    s.header_bytes = 0;
    return 0;
  }

  static int OnHeader(nghttp2_session*, const nghttp2_frame* frame, const uint8_t* name,
                      size_t namelen, const uint8_t* value, size_t valuelen, uint8_t,
                      void* user) {
    Codec& c = Of(user);
    Codec::Stream& s = c.StreamOf(frame->hd.stream_id);
    s.header_bytes += namelen + valuelen + 32;  // RFC 9113's size of a header list
    if (s.header_bytes > c.limits_.max_header_list_bytes) {
      return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;  // the stream is reset, the connection lives
    }
    s.headers.push_back({std::string(reinterpret_cast<const char*>(name), namelen),
                         std::string(reinterpret_cast<const char*>(value), valuelen)});
    return 0;
  }

  static int OnFrameRecv(nghttp2_session*, const nghttp2_frame* frame, void* user) {
    Codec& c = Of(user);
    const int32_t id = frame->hd.stream_id;
    const bool end = (frame->hd.flags & NGHTTP2_FLAG_END_STREAM) != 0;
    switch (frame->hd.type) {
      case NGHTTP2_HEADERS: {
        auto it = c.streams_.find(id);
        if (it == c.streams_.end()) return 0;
        Codec::Stream& s = it->second;
        Headers headers = std::move(s.headers);
        s.headers.clear();
        if (!s.headers_done) {
          // A client drops interim (1xx) responses; the final one follows.
          if (c.role_ == Codec::Role::kClient && !headers.empty() &&
              headers.front().name == ":status" && !headers.front().value.empty() &&
              headers.front().value[0] == '1') {
            return 0;
          }
          s.headers_done = true;
          c.events_->OnHeaders(id, std::move(headers), end);
        } else {
          c.events_->OnTrailers(id, std::move(headers));
        }
        if (end) c.events_->OnEndStream(id);
        return 0;
      }
      case NGHTTP2_DATA:
        if (end) c.events_->OnEndStream(id);
        return 0;
      case NGHTTP2_GOAWAY:
        c.events_->OnGoaway(frame->goaway.error_code, frame->goaway.last_stream_id);
        return 0;
      default:
        return 0;
    }
  }

  static int OnDataChunk(nghttp2_session*, uint8_t, int32_t stream, const uint8_t* data,
                         size_t len, void* user) {
    Of(user).events_->OnData(stream,
                             absl::string_view(reinterpret_cast<const char*>(data), len));
    return 0;
  }

  static int OnStreamClose(nghttp2_session*, int32_t stream, uint32_t error_code, void* user) {
    Codec& c = Of(user);
    if (c.streams_.erase(stream) == 0) return 0;
    c.events_->OnStreamClose(stream, error_code);
    return 0;
  }

  static ssize_t ReadData(nghttp2_session* session, int32_t stream, uint8_t* buf, size_t length,
                          uint32_t* flags, nghttp2_data_source*, void* user) {
    Codec& c = Of(user);
    auto it = c.streams_.find(stream);
    if (it == c.streams_.end()) return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    Codec::Stream& s = it->second;
    const size_t left = s.out.size() - s.out_offset;
    const size_t n = std::min(left, length);
    if (n > 0) std::memcpy(buf, s.out.data() + s.out_offset, n);
    s.out_offset += n;
    if (s.out_offset == s.out.size()) {
      s.out.clear();
      s.out_offset = 0;
    } else if (s.out_offset > (1 << 16) && s.out_offset * 2 > s.out.size()) {
      s.out.erase(0, s.out_offset);
      s.out_offset = 0;
    }
    if (n == 0 && !s.out_end) {
      s.data_deferred = true;
      return NGHTTP2_ERR_DEFERRED;
    }
    if (s.out_end && s.out_offset == s.out.size()) {
      *flags |= NGHTTP2_DATA_FLAG_EOF;
      s.has_provider = false;
      if (s.trailers) {
        *flags |= NGHTTP2_DATA_FLAG_NO_END_STREAM;
        std::vector<nghttp2_nv> nv = ToNv(*s.trailers);
        const int rv = nghttp2_submit_trailer(session, stream, nv.data(), nv.size());
        s.trailers.reset();
        if (rv != 0) return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
      }
    }
    return static_cast<ssize_t>(n);
  }
};

Codec::Codec(Role role, Events* events, const Limits& limits)
    : role_(role), events_(events), limits_(limits) {
  nghttp2_session_callbacks* cb = nullptr;
  nghttp2_session_callbacks_new(&cb);
  nghttp2_session_callbacks_set_on_begin_headers_callback(cb, &CodecCallbacks::OnBeginHeaders);
  nghttp2_session_callbacks_set_on_header_callback(cb, &CodecCallbacks::OnHeader);
  nghttp2_session_callbacks_set_on_frame_recv_callback(cb, &CodecCallbacks::OnFrameRecv);
  nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb, &CodecCallbacks::OnDataChunk);
  nghttp2_session_callbacks_set_on_stream_close_callback(cb, &CodecCallbacks::OnStreamClose);
  nghttp2_option* opt = nullptr;
  nghttp2_option_new(&opt);
  nghttp2_option_set_no_auto_window_update(opt, 1);  // windows open as the owner Consume()s
  nghttp2_option_set_max_continuations(opt, limits_.max_continuations);
  nghttp2_option_set_stream_reset_rate_limit(opt, limits_.reset_burst, limits_.reset_rate);
  nghttp2_option_set_max_settings(opt, 32);
  if (role == Role::kServer) {
    nghttp2_session_server_new2(&session_, cb, this, opt);
  } else {
    nghttp2_session_client_new2(&session_, cb, this, opt);
  }
  nghttp2_option_del(opt);
  nghttp2_session_callbacks_del(cb);

  std::vector<nghttp2_settings_entry> settings = {
      {NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, limits_.max_concurrent_streams},
      {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, limits_.stream_window},
      {NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, limits_.max_header_list_bytes},
  };
  if (role == Role::kClient) settings.push_back({NGHTTP2_SETTINGS_ENABLE_PUSH, 0});
  nghttp2_submit_settings(session_, NGHTTP2_FLAG_NONE, settings.data(), settings.size());
  // The connection window beyond the 65,535 bytes every connection starts with.
  nghttp2_session_set_local_window_size(session_, NGHTTP2_FLAG_NONE, 0,
                                        static_cast<int32_t>(limits_.connection_window));
}

Codec::~Codec() { nghttp2_session_del(session_); }

absl::Status Codec::Receive(absl::string_view bytes) {
  const ssize_t rv = nghttp2_session_mem_recv(
      session_, reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size());
  if (rv < 0) return Fail("HTTP/2", static_cast<int>(rv));
  return absl::OkStatus();
}

absl::Status Codec::TakeOutput(std::string* out) {
  for (;;) {
    const uint8_t* data = nullptr;
    const ssize_t n = nghttp2_session_mem_send(session_, &data);
    if (n < 0) return Fail("HTTP/2 send", static_cast<int>(n));
    if (n == 0) return absl::OkStatus();
    out->append(reinterpret_cast<const char*>(data), static_cast<size_t>(n));
  }
}

bool Codec::alive() const {
  return nghttp2_session_want_read(session_) != 0 || nghttp2_session_want_write(session_) != 0;
}

int32_t Codec::SubmitRequest(const Headers& headers, bool end_stream) {
  std::vector<nghttp2_nv> nv = ToNv(headers);
  nghttp2_data_provider provider{};
  provider.read_callback = &CodecCallbacks::ReadData;
  const int32_t id = nghttp2_submit_request(session_, nullptr, nv.data(), nv.size(),
                                            end_stream ? nullptr : &provider, nullptr);
  if (id > 0) {
    Stream& s = StreamOf(id);
    s.has_provider = !end_stream;
  }
  return id;
}

absl::Status Codec::SubmitResponse(int32_t stream, const Headers& headers, bool end_stream) {
  std::vector<nghttp2_nv> nv = ToNv(headers);
  nghttp2_data_provider provider{};
  provider.read_callback = &CodecCallbacks::ReadData;
  const int rv = nghttp2_submit_response(session_, stream, nv.data(), nv.size(),
                                         end_stream ? nullptr : &provider);
  if (rv != 0) return Fail("HTTP/2 response", rv);
  StreamOf(stream).has_provider = !end_stream;
  return absl::OkStatus();
}

absl::Status Codec::StartData(int32_t stream, Stream& s) {
  if (!s.has_provider) {
    return absl::FailedPreconditionError("HTTP/2: the stream's body is already finished");
  }
  if (s.data_deferred) {
    s.data_deferred = false;
    const int rv = nghttp2_session_resume_data(session_, stream);
    if (rv != 0) return Fail("HTTP/2 resume", rv);
  }
  return absl::OkStatus();
}

absl::Status Codec::SendData(int32_t stream, absl::string_view data, bool end) {
  auto it = streams_.find(stream);
  if (it == streams_.end()) return absl::NotFoundError("HTTP/2: the stream is closed");
  Stream& s = it->second;
  s.out.append(data.data(), data.size());
  s.out_end = s.out_end || end;
  return StartData(stream, s);
}

absl::Status Codec::SendTrailers(int32_t stream, const Headers& trailers) {
  auto it = streams_.find(stream);
  if (it == streams_.end()) return absl::NotFoundError("HTTP/2: the stream is closed");
  Stream& s = it->second;
  s.trailers = std::make_unique<Headers>(trailers);
  s.out_end = true;
  return StartData(stream, s);
}

void Codec::ResetStream(int32_t stream, uint32_t error_code) {
  nghttp2_submit_rst_stream(session_, NGHTTP2_FLAG_NONE, stream, error_code);
}

void Codec::Goaway(uint32_t error_code) {
  nghttp2_submit_goaway(session_, NGHTTP2_FLAG_NONE,
                        nghttp2_session_get_last_proc_stream_id(session_), error_code, nullptr,
                        0);
}

void Codec::Consume(int32_t stream, size_t n) { nghttp2_session_consume(session_, stream, n); }

size_t Codec::Queued(int32_t stream) const {
  auto it = streams_.find(stream);
  return it == streams_.end() ? 0 : it->second.out.size() - it->second.out_offset;
}

}  // namespace outrigger::http2
