// One HTTP(S) GET streamed into a file, through libcurl: redirects followed (a bearer token is never
// sent to a host a redirect leads to), certificates verified against the system trust store,
// bounded connect and stall timeouts, a body shorter than its Content-Length reported as an error.
#pragma once

#include <cstdint>
#include <string>

namespace leanembed::hub {

struct HttpSettings {
  std::string token;                  // "" = no Authorization header
  long connect_timeout_seconds = 30;  // per connection (each redirect hop)
  long stall_timeout_seconds = 60;    // abort when less than 1 byte/s arrives over this long
  std::string progress_label;         // "" = no progress bar; else drawn on stderr (caller checks isatty)
};

struct HttpResult {
  long status = 0;            // the final response's status (after redirects)
  std::string error_code;     // its X-Error-Code header (the hub's "RepoNotFound", "EntryNotFound", "GatedRepo", …)
  std::string error_message;  // its X-Error-Message header
  std::string final_url;      // where the redirects led
  uint64_t bytes = 0;         // body bytes written to the file (2xx only)
};

// GETs `url` into `file` (created or truncated, mode 0644). A 2xx body is written to the file; any
// other status leaves it empty and is returned for the caller to judge. Throws Error(io) naming the
// URL and what happened for every transport failure: no connection, TLS refusal, a cut connection,
// a body shorter than its Content-Length, a stall, too many redirects, a failed write.
HttpResult http_get_to_file(const std::string& url, const std::string& file, const HttpSettings& settings);

// "  onnx/model.onnx  45.1 / 90.3 MB [##########..........]  50%" for the progress bar; `total` 0 = unknown.
std::string progress_line(const std::string& label, uint64_t done, uint64_t total, int bar_width = 20);

}  // namespace leanembed::hub
