// See http1_codec.h.
#include "proxy/http/http1_codec.h"

#include <boost/beast/http/status.hpp>

#include "absl/strings/string_view.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace outrigger::http {

namespace bhttp = boost::beast::http;

void RequestHead::Clear() {
  method.clear();
  target.clear();
  version = 11;
  headers.Clear();
  authority.clear();
  path.clear();
  absolute_form = false;
  expect_continue = false;
}

absl::string_view RequestHead::PathOnly() const {
  absl::string_view p = path;
  return p.substr(0, p.find('?'));
}

void ResponseHead::Clear() {
  status = 0;
  reason.clear();
  version = 11;
  headers.Clear();
}

void BodyEncoder::Data(absl::string_view data) {
  if (data.empty()) return;
  bytes_ += data.size();
  switch (framing_) {
    case Framing::kNone:
      return;  // a body where none may be sent (HEAD, 204, 304) is dropped
    case Framing::kContentLength:
    case Framing::kCloseDelimited:
      out_->append(data.data(), data.size());
      return;
    case Framing::kChunked:
      absl::StrAppend(out_, absl::Hex(data.size()), "\r\n", data, "\r\n");
      return;
  }
}

void BodyEncoder::Finish(const HeaderMap& trailers) {
  if (framing_ != Framing::kChunked) return;
  out_->append("0\r\n");
  trailers.ForEach([&](absl::string_view n, absl::string_view v) {
    absl::StrAppend(out_, n, ": ", v, "\r\n");
  });
  out_->append("\r\n");
}

template <bool isRequest>
void Http1Parser<isRequest>::on_field_impl(bhttp::field f, Sv name, Sv value, error_code& ec) {
  ec = {};
  if (this->is_header_done()) {  // a trailer field after the last chunk
    if (f == bhttp::field::content_length || f == bhttp::field::transfer_encoding ||
        f == bhttp::field::host) {
      return;  // framing and routing fields are not allowed in trailers; drop them
    }
    trailers_.Add(ToAbsl(name), ToAbsl(value));
    return;
  }
  if (f == bhttp::field::transfer_encoding) {
    // Only a single "chunked" coding is accepted: anything else is how smuggling starts.
    ++transfer_encodings_;
    int tokens = 0;
    ForEachToken(ToAbsl(value), [&](absl::string_view t) {
      ++tokens;
      if (!absl::EqualsIgnoreCase(t, "chunked")) transfer_encoding_bad_ = true;
    });
    if (tokens != 1) transfer_encoding_bad_ = true;
  }
  headers_->Add(ToAbsl(name), ToAbsl(value));
}

template class Http1Parser<true>;
template class Http1Parser<false>;

size_t RequestParser::Put(absl::string_view data, error_code& ec) {
  if (!is_header_done()) {
    // Refuse obs-fold: a line break followed by a space or tab inside the head.
    size_t end = data.find("\r\n\r\n");
    absl::string_view head = data.substr(0, end == absl::string_view::npos ? data.size() : end + 2);
    for (size_t i = head.find('\n'); i != absl::string_view::npos && i + 1 < head.size();
         i = head.find('\n', i + 1)) {
      if (head[i + 1] == ' ' || head[i + 1] == '\t') {
        Reject(ec, "obs-fold (a header continued on the next line) is not allowed");
        return 0;
      }
    }
  }
  return Feed(data, ec);
}

void RequestParser::on_request_impl(bhttp::verb, Sv method, Sv target, int version,
                                    error_code& ec) {
  ec = {};
  if (version != 10 && version != 11) {
    Reject(ec, "unsupported HTTP version");
    return;
  }
  head_->method = std::string(method);
  head_->target = std::string(target);
  head_->version = version;
}

void RequestParser::on_header_impl(error_code& ec) {
  ec = {};
  if (transfer_encodings_ > 0) {
    if (transfer_encoding_bad_ || transfer_encodings_ > 1) {
      return Reject(ec, "Transfer-Encoding must be exactly 'chunked'");
    }
    if (head_->version == 10) return Reject(ec, "Transfer-Encoding in an HTTP/1.0 request");
  }
  const size_t hosts = head_->headers.Count("host");
  if (hosts > 1) return Reject(ec, "more than one Host header");
  if (head_->version == 11 && hosts == 0) return Reject(ec, "HTTP/1.1 request without Host");

  absl::string_view target = head_->target;
  if (target.size() >= 7 && (absl::StartsWithIgnoreCase(target, "http://") ||
                             absl::StartsWithIgnoreCase(target, "https://"))) {
    // Absolute form (the app uses us as HTTP_PROXY): the URI's authority wins over Host.
    absl::string_view rest = target.substr(target.find("//") + 2);
    size_t end = rest.find_first_of("/?");
    head_->authority = std::string(rest.substr(0, end));
    if (end == absl::string_view::npos) {
      head_->path = "/";
    } else if (rest[end] == '?') {
      head_->path = absl::StrCat("/", rest.substr(end));
    } else {
      head_->path = std::string(rest.substr(end));
    }
    head_->absolute_form = true;
    if (head_->authority.empty()) return Reject(ec, "absolute URI without authority");
  } else if (!target.empty() && (target[0] == '/' || target == "*")) {
    head_->path = std::string(target);
    if (auto host = head_->headers.Get("host")) head_->authority = std::string(*host);
  } else {
    return Reject(ec, "request target must be origin-form or absolute-form");
  }
  if (auto expect = head_->headers.Get("expect")) {
    head_->expect_continue = absl::EqualsIgnoreCase(*expect, "100-continue");
  }
}

void ResponseParser::on_response_impl(int status, Sv reason, int version, error_code& ec) {
  ec = {};
  head_->status = status;
  head_->reason = std::string(reason);
  head_->version = version;
}

bool IsIdempotent(absl::string_view method) {
  return method == "GET" || method == "HEAD" || method == "OPTIONS" || method == "TRACE" ||
         method == "PUT" || method == "DELETE";
}

bool IsHopByHop(absl::string_view name, absl::string_view connection_header) {
  static constexpr absl::string_view kHopByHop[] = {
      "connection", "keep-alive", "proxy-connection", "te", "transfer-encoding", "upgrade",
      "trailer"};
  for (absl::string_view h : kHopByHop) {
    if (name.size() == h.size() && absl::EqualsIgnoreCase(name, h)) return true;
  }
  bool named = false;
  if (!connection_header.empty()) {
    ForEachToken(connection_header, [&](absl::string_view t) {
      named = named || absl::EqualsIgnoreCase(t, name);
    });
  }
  return named;
}

Sniff SniffRequestLine(absl::string_view data) {
  constexpr size_t kLongestMethod = 20;  // longer than any registered method
  for (size_t i = 0; i < data.size(); ++i) {
    const char c = data[i];
    if (c == ' ') return i > 0 ? Sniff::kHttp : Sniff::kNotHttp;
    if (!((c >= 'A' && c <= 'Z') || c == '-' || c == '_') || i >= kLongestMethod) {
      return Sniff::kNotHttp;
    }
  }
  return Sniff::kNeedMore;
}

absl::string_view ReasonPhrase(int status) {
  auto r = bhttp::obsolete_reason(static_cast<bhttp::status>(status));
  return r.empty() ? absl::string_view("Unknown") : absl::string_view(r.data(), r.size());
}

std::string LocalReply(int status, absl::string_view body, bool close,
                       absl::string_view location) {
  return absl::StrCat("HTTP/1.1 ", status, " ", ReasonPhrase(status),
                      "\r\ncontent-type: text/plain\r\ncontent-length: ", body.size(), "\r\n",
                      location.empty() ? "" : absl::StrCat("location: ", location, "\r\n"),
                      close ? "connection: close\r\n" : "", "server: outrigger\r\n\r\n", body);
}

}  // namespace outrigger::http
