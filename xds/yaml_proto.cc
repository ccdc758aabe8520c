// YAML -> protobuf. We walk the YAML tree alongside the message descriptor and write JSON that
// protobuf's own JSON parser then reads. The walk rejects unknown fields and wrong shapes with the
// YAML position at hand; for value errors found by the JSON parser we map its field path back to
// the YAML node we wrote it from.
#include "xds/yaml_proto.h"

#include <yaml-cpp/yaml.h>

#include <fstream>
#include <map>
#include <sstream>

#include "absl/strings/string_view.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/message.h"
#include "google/protobuf/util/json_util.h"
#include "xds/common/json.h"

namespace outrigger::xds {
namespace {

using google::protobuf::Descriptor;
using google::protobuf::FieldDescriptor;

// Paths are compared without underscores and case so that "connectTimeout" (as written in YAML)
// and "connect_timeout" (as protobuf reports it) meet.
std::string NormalizePath(absl::string_view path) {
  std::string out;
  out.reserve(path.size());
  for (char c : path) {
    if (c != '_') out.push_back(absl::ascii_tolower(static_cast<unsigned char>(c)));
  }
  return out;
}

bool LooksNumeric(const std::string& s) {
  if (s.empty()) return false;
  size_t i = (s[0] == '-' || s[0] == '+') ? 1 : 0;
  if (i == s.size()) return false;
  bool digit = false;
  for (; i < s.size(); ++i) {
    char c = s[i];
    if (absl::ascii_isdigit(static_cast<unsigned char>(c))) {
      digit = true;
    } else if (c != '.' && c != 'e' && c != 'E' && c != '-' && c != '+') {
      return false;
    }
  }
  return digit;
}

bool IsWellKnownScalar(const Descriptor* d) {
  const std::string& n = d->full_name();
  return n == "google.protobuf.Duration" || n == "google.protobuf.Timestamp" ||
         n == "google.protobuf.FieldMask";
}

bool IsWrapper(const Descriptor* d) {
  return d->file()->name() == "google/protobuf/wrappers.proto";
}

class Converter {
 public:
  Converter(absl::string_view source, const YamlOptions& options)
      : source_(source), options_(options) {}

  absl::Status Message(const YAML::Node& node, const Descriptor* d, const std::string& path,
                       std::string* out) {
    Remember(path, node);
    if (node.IsNull()) {
      out->append("{}");
      return absl::OkStatus();
    }
    if (!node.IsMap()) return Error(node, path, absl::StrCat("expected a mapping for ",
                                                             d->full_name(), ", got ",
                                                             KindName(node)));
    out->push_back('{');
    bool first = true;
    for (const auto& kv : node) {
      if (!kv.first.IsScalar()) return Error(kv.first, path, "a mapping key must be a string");
      const std::string key = kv.first.Scalar();
      const FieldDescriptor* f = d->FindFieldByName(key);
      if (f == nullptr) f = d->FindFieldByCamelcaseName(key);
      if (f == nullptr && options_.ignore_unknown_fields) continue;
      if (f == nullptr) {
        std::vector<std::string> known;
        for (int i = 0; i < d->field_count(); ++i) known.push_back(Name(d->field(i)));
        return Error(kv.first, Join(path, key),
                     absl::StrCat("unknown field '", key, "' in ", d->name(), " (known fields: ",
                                  absl::StrJoin(known, ", "), ")"));
      }
      if (!first) out->push_back(',');
      first = false;
      AppendJsonString(f->json_name(), out);
      out->push_back(':');
      if (auto s = Field(kv.second, f, Join(path, Name(f)), out); !s.ok()) return s;
    }
    out->push_back('}');
    return absl::OkStatus();
  }

  // Turns an error from protobuf's JSON parser into one that points at the YAML.
  absl::Status MapParseError(const absl::Status& s) const {
    std::string msg(s.message());
    // Messages look like "(clusters[0].connect_timeout): invalid value ..." or
    // "(clusters[0]) bogus: Cannot find field.".
    std::string path;
    if (!msg.empty() && msg[0] == '(') {
      size_t close = msg.find(')');
      if (close != std::string::npos) {
        path = msg.substr(1, close - 1);
        msg = std::string(absl::StripLeadingAsciiWhitespace(
            absl::StripPrefix(msg.substr(close + 1), ":")));
      }
    }
    auto it = marks_.find(NormalizePath(path));
    if (it == marks_.end()) {
      return absl::InvalidArgumentError(absl::StrCat(source_, ": ", path.empty() ? "" : path,
                                                     path.empty() ? "" : ": ", msg));
    }
    // With json_names the path is shown as the YAML spells it, not as protobuf reports it.
    if (options_.json_names) path = it->second.path;
    return absl::InvalidArgumentError(absl::StrCat(source_, ":", Line(it->second.mark), ":",
                                                   it->second.mark.column + 1, ": ", path, ": ",
                                                   msg));
  }

 private:
  absl::Status Field(const YAML::Node& node, const FieldDescriptor* f, const std::string& path,
                     std::string* out) {
    Remember(path, node);
    if (node.IsNull()) {
      out->append("null");
      return absl::OkStatus();
    }
    if (f->is_map()) {
      if (!node.IsMap()) return Error(node, path, absl::StrCat("expected a mapping, got ",
                                                               KindName(node)));
      const FieldDescriptor* value = f->message_type()->map_value();
      out->push_back('{');
      bool first = true;
      for (const auto& kv : node) {
        if (!kv.first.IsScalar()) return Error(kv.first, path, "a mapping key must be a string");
        if (!first) out->push_back(',');
        first = false;
        AppendJsonString(kv.first.Scalar(), out);
        out->push_back(':');
        if (auto s = Singular(kv.second, value, Join(path, kv.first.Scalar()), out); !s.ok()) {
          return s;
        }
      }
      out->push_back('}');
      return absl::OkStatus();
    }
    if (f->is_repeated()) {
      if (!node.IsSequence()) return Error(node, path, absl::StrCat("expected a list, got ",
                                                                    KindName(node)));
      out->push_back('[');
      for (size_t i = 0; i < node.size(); ++i) {
        if (i > 0) out->push_back(',');
        std::string item_path = absl::StrCat(path, "[", i, "]");
        if (auto s = Singular(node[i], f, item_path, out); !s.ok()) return s;
      }
      out->push_back(']');
      return absl::OkStatus();
    }
    return Singular(node, f, path, out);
  }

  absl::Status Singular(const YAML::Node& node, const FieldDescriptor* f, const std::string& path,
                        std::string* out) {
    Remember(path, node);
    if (node.IsNull()) {
      out->append("null");
      return absl::OkStatus();
    }
    if (f->cpp_type() == FieldDescriptor::CPPTYPE_MESSAGE) {
      const Descriptor* d = f->message_type();
      if (IsWellKnownScalar(d) || IsWrapper(d)) {
        if (!node.IsScalar()) return Error(node, path, "expected a single value");
        Scalar(node, IsWrapper(d) && d->field(0)->cpp_type() != FieldDescriptor::CPPTYPE_STRING,
               out);
        return absl::OkStatus();
      }
      return Message(node, d, path, out);
    }
    if (!node.IsScalar()) {
      return Error(node, path, absl::StrCat("expected a single value, got ", KindName(node)));
    }
    const bool raw = f->cpp_type() != FieldDescriptor::CPPTYPE_STRING &&
                     f->cpp_type() != FieldDescriptor::CPPTYPE_ENUM;
    Scalar(node, raw, out);
    return absl::OkStatus();
  }

  // Numbers and booleans are written bare when they look like one; everything else is quoted so
  // that protobuf reports a readable "invalid value" instead of a JSON syntax error.
  static void Scalar(const YAML::Node& node, bool raw_allowed, std::string* out) {
    const std::string& v = node.Scalar();
    const bool plain = node.Tag() != "!";
    if (raw_allowed && plain && (LooksNumeric(v) || v == "true" || v == "false")) {
      out->append(v);
    } else {
      AppendJsonString(v, out);
    }
  }

  const std::string& Name(const FieldDescriptor* f) const {
    return options_.json_names ? f->json_name() : f->name();
  }

  int Line(const YAML::Mark& m) const { return m.line + 1 + options_.line_offset; }

  static std::string Join(const std::string& path, absl::string_view name) {
    return path.empty() ? std::string(name) : absl::StrCat(path, ".", name);
  }

  static const char* KindName(const YAML::Node& n) {
    if (n.IsMap()) return "a mapping";
    if (n.IsSequence()) return "a list";
    if (n.IsScalar()) return "a single value";
    return "nothing";
  }

  void Remember(const std::string& path, const YAML::Node& node) {
    marks_.emplace(NormalizePath(path), Marked{node.Mark(), path});
  }

  absl::Status Error(const YAML::Node& node, const std::string& path, absl::string_view what) {
    const YAML::Mark m = node.Mark();
    return absl::InvalidArgumentError(absl::StrCat(source_, ":", Line(m), ":", m.column + 1,
                                                   ": ", path.empty() ? "(top level)" : path,
                                                   ": ", what));
  }

  struct Marked {
    YAML::Mark mark;
    std::string path;  // as written into errors
  };

  std::string source_;
  YamlOptions options_;
  std::map<std::string, Marked> marks_;

 public:
  void Export(SourceMap* map) const {
    map->source = source_;
    for (const auto& [k, m] : marks_) map->positions[k] = {Line(m.mark), m.mark.column + 1};
  }
};

}  // namespace

std::optional<std::string> SourceMap::Locate(absl::string_view field_path) const {
  std::string path = NormalizePath(field_path);
  for (;;) {
    if (auto it = positions.find(path); it != positions.end()) {
      return absl::StrCat(source, ":", it->second.first, ":", it->second.second);
    }
    size_t cut = path.find_last_of(".[");
    if (cut == std::string::npos || cut == 0) return std::nullopt;
    path.resize(cut);
  }
}

std::string SourceMap::Annotate(absl::string_view error) const {
  size_t colon = error.find(": ");
  if (colon != absl::string_view::npos && error.substr(0, colon).find(' ') == absl::string_view::npos) {
    if (auto where = Locate(error.substr(0, colon))) return absl::StrCat(*where, ": ", error);
  }
  return absl::StrCat(source, ": ", error);
}

std::optional<std::pair<int, int>> SourceMap::Position(absl::string_view field_path) const {
  auto it = positions.find(NormalizePath(field_path));
  if (it == positions.end()) return std::nullopt;
  return it->second;
}

absl::Status YamlToProto(absl::string_view yaml, absl::string_view source,
                         google::protobuf::Message* msg, SourceMap* map,
                         const YamlOptions& options) {
  YAML::Node root;
  try {
    root = YAML::Load(std::string(yaml));
  } catch (const YAML::Exception& e) {
    return absl::InvalidArgumentError(absl::StrCat(source, ":",
                                                   e.mark.line + 1 + options.line_offset, ":",
                                                   e.mark.column + 1, ": invalid YAML: ", e.msg));
  }
  Converter conv(source, options);
  std::string json;
  if (auto s = conv.Message(root, msg->GetDescriptor(), "", &json); !s.ok()) return s;
  google::protobuf::util::JsonParseOptions json_options;
  json_options.ignore_unknown_fields = false;
  msg->Clear();
  auto s = google::protobuf::util::JsonStringToMessage(json, msg, json_options);
  if (!s.ok()) return conv.MapParseError(absl::InvalidArgumentError(std::string(s.message())));
  if (map != nullptr) conv.Export(map);
  return absl::OkStatus();
}

absl::Status YamlFileToProto(const std::string& path, google::protobuf::Message* msg,
                             SourceMap* map) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat(path, ": cannot open file"));
  std::stringstream ss;
  ss << in.rdbuf();
  return YamlToProto(ss.str(), path, msg, map);
}

namespace {

// True when `line` is the marker `m` ("---" or "...") alone or followed by a space.
bool IsMarker(absl::string_view line, absl::string_view m) {
  if (!absl::StartsWith(line, m)) return false;
  return line.size() == m.size() ||
         absl::ascii_isspace(static_cast<unsigned char>(line[m.size()]));
}

// True when the document has something besides blank lines, comments and directives ("%YAML").
bool HasContent(absl::string_view text) {
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    absl::string_view t = absl::StripLeadingAsciiWhitespace(line);
    if (!t.empty() && t[0] != '#' && line[0] != '%') return true;
  }
  return false;
}

}  // namespace

std::vector<YamlDocument> SplitYamlDocuments(absl::string_view text) {
  std::vector<YamlDocument> docs;
  YamlDocument current;
  int line_no = 0;
  auto flush = [&](int next_first_line) {
    if (HasContent(current.text)) docs.push_back(std::move(current));
    current = YamlDocument();
    current.first_line = next_first_line;
  };
  absl::ConsumePrefix(&text, "\xEF\xBB\xBF");  // a byte order mark would hide a first "---"
  absl::ConsumeSuffix(&text, "\n");  // the last line's newline does not start another line
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    if (IsMarker(line, "---")) {
      flush(line_no);
      // Keep what follows the marker ("--- {a: 1}") at its column.
      absl::StrAppend(&current.text, "   ", line.substr(3), "\n");
    } else if (IsMarker(line, "...")) {
      flush(line_no + 1);  // what follows, if anything, is the next (bare) document
    } else {
      absl::StrAppend(&current.text, line, "\n");
    }
    ++line_no;
  }
  flush(line_no);
  return docs;
}

}  // namespace outrigger::xds
