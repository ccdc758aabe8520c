// Loads YAML into protobuf messages: YAML -> JSON -> protobuf's JSON parser, guided by the message
// descriptor so that every error names the file, line, column, field path and problem; and
// multi-document streams split into documents that keep the file's line numbers.
#ifndef OUTRIGGER_XDS_YAML_PROTO_H_
#define OUTRIGGER_XDS_YAML_PROTO_H_

#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/string_view.h"
#include "absl/status/status.h"

namespace google::protobuf {
class Message;
}

namespace outrigger::xds {

// Where each field of a loaded document came from, so that errors found later (an unknown
// cluster, a duplicate name) can point at the YAML too.
class SourceMap {
 public:
  // "mesh.yaml:12:7" for "routes[0].virtual_hosts[0].routes[1].route.cluster", or for the nearest
  // enclosing field that has a position; nullopt when the path did not come from the file.
  std::optional<std::string> Locate(absl::string_view field_path) const;
  // Rewrites "field.path: problem" as "FILE:LINE:COL: field.path: problem" when it can.
  std::string Annotate(absl::string_view error) const;
  // (line, column) of exactly `field_path` (no fallback to an enclosing field), 1-based.
  std::optional<std::pair<int, int>> Position(absl::string_view field_path) const;

  std::string source;
  std::map<std::string, std::pair<int, int>> positions;  // normalized path -> (line, column)
};

// How YamlToProto reads one document. The defaults are what a single-document file needs.
struct YamlOptions {
  // Lines of the file before the document: added to every reported line, so that a document cut
  // out of a multi-document file (SplitYamlDocuments) reports the file's own line numbers.
  int line_offset = 0;
  // Skip fields the message does not have instead of failing (to peek at a few fields, such as
  // a Kubernetes document's apiVersion and kind, before choosing the real message type).
  bool ignore_unknown_fields = false;
  // Name fields in error paths and in the list of known fields by their JSON (lowerCamel) names,
  // as Kubernetes-style YAML writes them ("spec.backendRefs[0]"), not their proto names.
  bool json_names = false;
};

// Parses `yaml` (one document) into `msg`. Unknown fields, wrong shapes and bad values are errors
// of the form "SOURCE:LINE:COL: field.path: problem". `source` names the input in errors.
absl::Status YamlToProto(absl::string_view yaml, absl::string_view source,
                         google::protobuf::Message* msg, SourceMap* map = nullptr,
                         const YamlOptions& options = YamlOptions());

// Reads the file at `path` and parses it as above.
absl::Status YamlFileToProto(const std::string& path, google::protobuf::Message* msg,
                             SourceMap* map = nullptr);

// One document of a multi-document YAML stream.
struct YamlDocument {
  // The document's lines, its "---" marker blanked out so columns stay those of the file.
  std::string text;
  // Lines of the file before the document (YamlOptions::line_offset): 0 for the first line.
  int first_line = 0;
};

// Splits a YAML stream into documents at "---" (and "...") marker lines, as YAML does: a marker
// is three dashes (dots) at the start of a line followed by a space or the line's end. Documents
// that hold only blank lines and comments are dropped.
std::vector<YamlDocument> SplitYamlDocuments(absl::string_view text);

}  // namespace outrigger::xds

#endif  // OUTRIGGER_XDS_YAML_PROTO_H_
