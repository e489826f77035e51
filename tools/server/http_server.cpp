// libmicrohttpd behind HttpServer (http_server.h). Each request's body is collected up to the
// payload limit; the handler then gets the request and an Exchange. An answer given before the
// handler returns is queued at once; otherwise the connection is suspended (it holds no thread)
// and the Exchange resumes it when the answer comes.
#include "http_server.h"

#include <microhttpd.h>
#include <netdb.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <thread>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <mutex>
#include <stdexcept>

namespace leanembed::server {

const std::string* HttpRequest::header(const std::string& lower_name) const {
  for (const auto& [name, value] : headers)
    if (name == lower_name) return &value;
  return nullptr;
}

namespace {

class MhdExchange : public Exchange {
 public:
  MhdExchange(MHD_Connection* connection, int fd) : connection_(connection), fd_(fd) {}

  void respond(HttpResponse response) override {
    std::lock_guard lock(mutex_);
    if (answered_) return;
    answer_ = std::move(response);
    answered_ = true;
    if (suspended_) MHD_resume_connection(connection_);
  }

  bool client_gone() const override {
    std::lock_guard lock(mutex_);
    if (answered_ || fd_ < 0) return false;
    char byte;
    const ssize_t n = ::recv(fd_, &byte, 1, MSG_PEEK | MSG_DONTWAIT);
    if (n == 0) return true;  // the client closed its end
    if (n < 0) return errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR;
    return false;  // bytes waiting: a pipelined request, the client is there
  }

  // On the event-loop thread, after the handler returned: true (and the answer) if it was given,
  // else the connection is suspended until respond() resumes it.
  bool take_or_suspend(HttpResponse& out) {
    std::lock_guard lock(mutex_);
    if (answered_) {
      out = std::move(answer_);
      return true;
    }
    MHD_suspend_connection(connection_);
    suspended_ = true;
    return false;
  }

  // On the event-loop thread when a suspended connection was resumed.
  HttpResponse take() {
    std::lock_guard lock(mutex_);
    suspended_ = false;
    return std::move(answer_);
  }

 private:
  mutable std::mutex mutex_;
  MHD_Connection* connection_;
  int fd_;
  bool answered_ = false, suspended_ = false;
  HttpResponse answer_;
};

struct RequestState {
  HttpRequest request;
  std::shared_ptr<MhdExchange> exchange;  // set once the handler has the request
};

MHD_Result queue(MHD_Connection* connection, const HttpResponse& r) {
  MHD_Response* response =
      MHD_create_response_from_buffer(r.body.size(), const_cast<char*>(r.body.data()), MHD_RESPMEM_MUST_COPY);
  if (!response) return MHD_NO;
  if (!r.content_type.empty()) MHD_add_response_header(response, "Content-Type", r.content_type.c_str());
  for (const auto& [name, value] : r.headers) MHD_add_response_header(response, name.c_str(), value.c_str());
  const MHD_Result result = MHD_queue_response(connection, static_cast<unsigned>(r.status), response);
  MHD_destroy_response(response);
  return result;
}

MHD_Result collect_header(void* cls, MHD_ValueKind, const char* key, const char* value) {
  auto* request = static_cast<HttpRequest*>(cls);
  std::string name = key ? key : "";
  std::transform(name.begin(), name.end(), name.begin(), [](unsigned char c) { return std::tolower(c); });
  request->headers.emplace_back(std::move(name), value ? value : "");
  return MHD_YES;
}

int listen_socket(const std::string& hostname, uint16_t port) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
  addrinfo* found = nullptr;
  const std::string service = std::to_string(port);
  if (int rc = ::getaddrinfo(hostname.c_str(), service.c_str(), &hints, &found); rc != 0) {
    throw std::runtime_error("cannot resolve --hostname '" + hostname + "': " + gai_strerror(rc));
  }
  std::string last_error = "no address";
  for (addrinfo* a = found; a; a = a->ai_next) {
    int fd = ::socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, a->ai_protocol);
    if (fd < 0) continue;
    int one = 1;
    ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (::bind(fd, a->ai_addr, a->ai_addrlen) == 0 && ::listen(fd, 1024) == 0) {
      ::freeaddrinfo(found);
      return fd;
    }
    last_error = std::strerror(errno);
    ::close(fd);
  }
  ::freeaddrinfo(found);
  throw std::runtime_error("cannot listen on " + hostname + ":" + service + ": " + last_error);
}

}  // namespace

struct HttpServer::Impl {
  HttpOptions options;
  Handler handler;
  MHD_Daemon* daemon = nullptr;
  int listen_fd = -1;
  uint16_t port = 0;
  std::mutex mutex;
  std::atomic<int64_t> unsent{0};  // requests handed to the handler whose answer is not written yet

  static MHD_Result on_request(void* cls, MHD_Connection* connection, const char* url, const char* method,
                               const char*, const char* upload_data, size_t* upload_data_size, void** con_cls) {
    Impl& self = *static_cast<Impl*>(cls);
    auto* state = static_cast<RequestState*>(*con_cls);
    if (!state) {  // first call: the headers are in
      state = new RequestState;
      *con_cls = state;
      state->request.method = method ? method : "";
      state->request.path = url ? url : "";
      MHD_get_connection_values(connection, MHD_HEADER_KIND, collect_header, &state->request);
      if (const std::string* length = state->request.header("content-length")) {
        char* end = nullptr;
        const unsigned long long declared = std::strtoull(length->c_str(), &end, 10);
        if (declared > self.options.payload_limit_bytes) {
          // Refused before its body is read (the connection is closed after the answer).
          state->request.body_too_large = true;
          return self.dispatch(connection, *state);
        }
      }
      return MHD_YES;
    }
    if (state->exchange) {  // resumed: the answer is there
      return queue(connection, state->exchange->take());
    }
    if (*upload_data_size > 0) {
      HttpRequest& r = state->request;
      if (!r.body_too_large) {
        if (r.body.size() + *upload_data_size > self.options.payload_limit_bytes) {
          r.body_too_large = true;
          std::string().swap(r.body);
        } else {
          r.body.append(upload_data, *upload_data_size);
        }
      }
      *upload_data_size = 0;
      return MHD_YES;
    }
    return self.dispatch(connection, *state);
  }

  MHD_Result dispatch(MHD_Connection* connection, RequestState& state) {
    const MHD_ConnectionInfo* info = MHD_get_connection_info(connection, MHD_CONNECTION_INFO_CONNECTION_FD);
    state.exchange = std::make_shared<MhdExchange>(connection, info ? info->connect_fd : -1);
    ++unsent;
    try {
      handler(std::move(state.request), state.exchange);
    } catch (const std::exception& e) {
      state.exchange->respond(HttpResponse{500, "application/json",
                                           std::string("{\"error\":\"internal error\",\"error_type\":\"backend\"}"), {}});
    }
    HttpResponse now;
    if (state.exchange->take_or_suspend(now)) return queue(connection, now);
    return MHD_YES;
  }

  static void on_completed(void* cls, MHD_Connection*, void** con_cls, MHD_RequestTerminationCode) {
    auto* state = static_cast<RequestState*>(*con_cls);
    if (state && state->exchange) --static_cast<Impl*>(cls)->unsent;
    delete state;
    *con_cls = nullptr;
  }
};

HttpServer::HttpServer(const HttpOptions& options, Handler handler) : impl_(std::make_unique<Impl>()) {
  Impl& m = *impl_;
  m.options = options;
  m.handler = std::move(handler);
  m.listen_fd = listen_socket(options.hostname, options.port);
  sockaddr_storage bound{};
  socklen_t length = sizeof bound;
  ::getsockname(m.listen_fd, reinterpret_cast<sockaddr*>(&bound), &length);
  m.port = ntohs(bound.ss_family == AF_INET6 ? reinterpret_cast<sockaddr_in6*>(&bound)->sin6_port
                                             : reinterpret_cast<sockaddr_in*>(&bound)->sin_port);
  unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG;
  if (bound.ss_family == AF_INET6) flags |= MHD_USE_IPv6;
  MHD_OptionItem pool[] = {{MHD_OPTION_THREAD_POOL_SIZE, static_cast<intptr_t>(options.threads), nullptr},
                           {MHD_OPTION_END, 0, nullptr}};
  if (options.threads <= 1) pool[0] = {MHD_OPTION_END, 0, nullptr};
  m.daemon = MHD_start_daemon(flags, 0, nullptr, nullptr, &Impl::on_request, &m,
                              MHD_OPTION_LISTEN_SOCKET, m.listen_fd,
                              MHD_OPTION_CONNECTION_TIMEOUT, static_cast<unsigned>(options.client_timeout_seconds),
                              MHD_OPTION_CONNECTION_LIMIT, static_cast<unsigned>(options.max_connections),
                              MHD_OPTION_NOTIFY_COMPLETED, &Impl::on_completed, &m,
                              MHD_OPTION_ARRAY, pool,
                              MHD_OPTION_END);
  if (!m.daemon) {
    ::close(m.listen_fd);
    throw std::runtime_error("cannot start the HTTP server on " + options.hostname + ":" + std::to_string(m.port));
  }
}

HttpServer::~HttpServer() { stop(); }

uint16_t HttpServer::port() const { return impl_->port; }

void HttpServer::stop_accepting() {
  std::lock_guard lock(impl_->mutex);
  if (!impl_->daemon || impl_->listen_fd < 0) return;
  const MHD_socket fd = MHD_quiesce_daemon(impl_->daemon);
  if (fd != MHD_INVALID_SOCKET) ::close(fd);
  impl_->listen_fd = -1;
}

bool HttpServer::wait_for_answers_sent(double seconds) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
  while (impl_->unsent > 0) {
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return true;
}

void HttpServer::stop() {
  std::lock_guard lock(impl_->mutex);
  if (!impl_->daemon) return;
  MHD_stop_daemon(impl_->daemon);
  impl_->daemon = nullptr;  // MHD closed the listening socket unless stop_accepting() had taken it
  impl_->listen_fd = -1;
}

}  // namespace leanembed::server
