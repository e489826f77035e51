// A fixed set of threads running tasks in arrival order (the server's tokenization workers: request
// parsing and validation, tokenization, answers' serialisation). The queue is bounded by the
// server's admission (at most two tasks per request in flight).
#pragma once

#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace leanembed::server {

class WorkerPool {
 public:
  explicit WorkerPool(int threads) {
    for (int i = 0; i < threads; ++i) threads_.emplace_back([this] { work(); });
  }
  ~WorkerPool() { stop(); }
  // After stop() the task runs on the caller's thread (a late request on a kept-alive connection).
  void post(std::function<void()> task) {
    {
      std::lock_guard lock(mutex_);
      if (!stopping_) {
        tasks_.push_back(std::move(task));
        task = nullptr;
      }
    }
    if (task) task();
    else wake_.notify_one();
  }
  // Runs what is queued, then joins the threads.
  void stop() {
    {
      std::lock_guard lock(mutex_);
      stopping_ = true;
    }
    wake_.notify_all();
    for (auto& t : threads_)
      if (t.joinable()) t.join();
  }

 private:
  void work() {
    for (;;) {
      std::function<void()> task;
      {
        std::unique_lock lock(mutex_);
        wake_.wait(lock, [&] { return stopping_ || !tasks_.empty(); });
        if (tasks_.empty()) return;
        task = std::move(tasks_.front());
        tasks_.pop_front();
      }
      task();
    }
  }
  std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<std::function<void()>> tasks_;
  bool stopping_ = false;
  std::vector<std::thread> threads_;
};

}  // namespace leanembed::server
