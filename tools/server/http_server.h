// The HTTP layer of `leanembed serve`: GNU libmicrohttpd (Debian's libmicrohttpd-dev) behind a small
// C++ interface. Why libmicrohttpd and not cpp-httplib (see README.md): its epoll event loop holds
// no thread per connection (a slow or half-open client costs a socket, not a worker, and is closed
// after `client_timeout_seconds` without traffic), a request can be answered later from another
// thread (suspend/resume), the listening socket can be closed while requests in flight finish
// (quiesce), and the connection's socket is reachable to tell whether the client has gone.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace leanembed::server {

struct HttpRequest {
  std::string method;   // "GET", "POST", …
  std::string path;     // without the query string
  std::vector<std::pair<std::string, std::string>> headers;  // names lower-cased
  std::string body;
  bool body_too_large = false;  // the body passed payload_limit_bytes (its bytes were dropped)
  const std::string* header(const std::string& lower_name) const;
};

struct HttpResponse {
  int status = 200;
  std::string content_type = "application/json";
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;
};

// Answers one request; call exactly once, from any thread. gone() tells, while the request waits
// for its answer, whether the client has closed its connection (a read of the socket sees its end).
class Exchange {
 public:
  virtual ~Exchange() = default;
  virtual void respond(HttpResponse response) = 0;
  virtual bool client_gone() const = 0;
};

struct HttpOptions {
  std::string hostname = "127.0.0.1";
  uint16_t port = 3000;              // 0 = any free port (port() says which)
  std::size_t payload_limit_bytes = 2000000;
  unsigned client_timeout_seconds = 10;  // a connection without traffic for this long is closed
  unsigned max_connections = 1024;
  unsigned threads = 1;              // event-loop threads (handlers must not block)
};

class HttpServer {
 public:
  // handler(request, exchange): runs on an event-loop thread; it must not block — it answers at
  // once or hands the exchange to another thread. Throws std::runtime_error when it cannot listen.
  using Handler = std::function<void(HttpRequest&&, std::shared_ptr<Exchange>)>;
  HttpServer(const HttpOptions& options, Handler handler);
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  uint16_t port() const;
  // Closes the listening socket: no new connection is accepted; open ones go on.
  void stop_accepting();
  // Waits (up to `seconds`) until every answer given has been written out; true if so.
  bool wait_for_answers_sent(double seconds);
  // Stops the event loop and closes every connection (answers must all have been given).
  void stop();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace leanembed::server
