#include "batcher.h"

#include <algorithm>
#include <future>
#include <span>
#include <unordered_set>

#include "leanembed/error.h"

namespace leanembed::server {

Batcher::Batcher(Embedder& embedder, BatchLimits limits, Metrics& metrics)
    : embedder_(embedder), limits_(limits), metrics_(metrics), width_(embedder.dims()) {
  std::promise<void> warmed;
  std::future<void> ready = warmed.get_future();
  // The promise moves into the thread: it outlives its set_value / set_exception call.
  thread_ = std::thread([this, warmed = std::move(warmed)]() mutable {
    try {
      warm_up();
    } catch (...) {
      warmed.set_exception(std::current_exception());
      return;
    }
    warmed.set_value();
    run();
  });
  try {
    ready.get();
  } catch (...) {
    thread_.join();
    throw;
  }
}

void Batcher::warm_up() {
  // Both kinds of encoder run, so that the first request of either shape pays no one-time cost
  // (the fp32 matmul's oneDNN primitives, made per thread count; the OpenMP pool's threads): a short text, and, when
  // short runs stay on one thread (EmbedderInfo::parallel_min_tokens), sequences of that many
  // tokens in all (the short text's tokens repeated between [CLS] and [SEP], at most max_length each).
  const std::vector<int64_t> ids = embedder_.tokenize("warm up", Truncation::right, false).ids;
  std::vector<std::vector<int64_t>> runs[2] = {{ids}, {}};
  const EmbedderInfo info = embedder_.info();
  if (info.parallel_min_tokens > 0 && info.threads > 1 && ids.size() > 2 && info.max_length > 2) {
    const std::size_t length = static_cast<std::size_t>(std::min(info.max_length, info.parallel_min_tokens));
    std::vector<int64_t> sequence{ids.front()};
    while (sequence.size() + 1 < length) sequence.push_back(ids[1 + (sequence.size() - 1) % (ids.size() - 2)]);
    sequence.push_back(ids.back());
    for (int64_t tokens = 0; tokens < info.parallel_min_tokens; tokens += static_cast<int64_t>(sequence.size()))
      runs[1].push_back(sequence);
  }
  for (const auto& texts : runs) {
    if (texts.empty()) continue;
    const std::vector<std::span<const int64_t>> spans(texts.begin(), texts.end());
    std::vector<float> out(texts.size() * static_cast<std::size_t>(width_));
    embedder_.embed_tokens(spans, out);
  }
}

Batcher::~Batcher() { stop("the server is shutting down"); }

void Batcher::submit(std::shared_ptr<Job> job) {
  job->remaining = job->ids.size();
  job->vectors.assign(job->ids.size() * static_cast<std::size_t>(width_), 0.0f);
  job->queued_at = Clock::now();
  bool refused = false;  // decided under the lock: once queued, the job belongs to the encoder thread
  {
    std::lock_guard lock(mutex_);
    if (stopping_ || job->ids.empty()) {
      refused = true;
    } else {
      for (std::size_t i = 0; i < job->ids.size(); ++i) pending_.push_back(Entry{job, i});
      fill_next_locked();
    }
  }
  if (refused) {
    job->remaining = 0;
    if (!job->ids.empty()) job->fail(503, "the server is shutting down");
    job->on_done(*job);
    return;
  }
  wake_.notify_one();
}

int64_t Batcher::queued() const {
  std::lock_guard lock(mutex_);
  return static_cast<int64_t>(pending_.size() + next_.size());
}

// Moves inputs from the queue into the next batch while they fit (a batch always takes at least one).
void Batcher::fill_next_locked() {
  while (!pending_.empty()) {
    const Entry& e = pending_.front();
    const auto tokens = static_cast<int64_t>(e.job->ids[e.index].size());
    if (!next_.empty()) {
      if (next_tokens_ + tokens > limits_.max_batch_tokens) break;
      if (limits_.max_batch_requests > 0 && static_cast<int64_t>(next_.size()) >= limits_.max_batch_requests) break;
    }
    next_tokens_ += tokens;
    next_.push_back(pending_.front());
    pending_.pop_front();
  }
}

void Batcher::run() {
  for (;;) {
    std::vector<Entry> batch;
    {
      std::unique_lock lock(mutex_);
      wake_.wait(lock, [&] { return stopping_ || !next_.empty(); });
      if (stopping_) return;
      batch.swap(next_);
      next_tokens_ = 0;
      fill_next_locked();  // the next batch fills while this one runs
    }
    run_batch(batch);
  }
}

void Batcher::run_batch(std::vector<Entry>& batch) {
  // Drop the inputs of requests whose client has gone (asked once per request and batch).
  std::unordered_set<Job*> asked;
  std::vector<Entry> live, dropped;
  for (Entry& e : batch) {
    Job& job = *e.job;
    if (!job.client_gone && job.exchange && asked.insert(&job).second && job.exchange->client_gone()) {
      job.client_gone = true;
      metrics_.client_gone(job.ids.size());
    }
    (job.client_gone ? dropped : live).push_back(std::move(e));
  }
  std::vector<float> out;
  if (!live.empty()) {
    const auto start = Clock::now();
    int64_t tokens = 0;
    for (const Entry& e : live) tokens += static_cast<int64_t>(e.job->ids[e.index].size());
    compute(live, out);
    const auto end = Clock::now();
    const double seconds = std::chrono::duration<double>(end - start).count();
    metrics_.batch_inputs.observe(static_cast<double>(live.size()));
    metrics_.batch_tokens.observe(static_cast<double>(tokens));
    ++batches_;
    for (std::size_t k = 0; k < live.size(); ++k) {
      Job& job = *live[k].job;
      std::copy_n(out.begin() + static_cast<std::ptrdiff_t>(k * width_), width_,
                  job.vectors.begin() + static_cast<std::ptrdiff_t>(live[k].index * width_));
      if (job.first_batch_at == Clock::time_point{}) job.first_batch_at = start;
      job.last_batch_end = end;
      if (job.last_batch != batches_) {
        job.last_batch = batches_;
        job.inference_seconds += seconds;
      }
    }
  }
  auto done = [](Entry& e) {
    if (--e.job->remaining == 0) e.job->on_done(*e.job);
  };
  for (Entry& e : live) done(e);
  for (Entry& e : dropped) done(e);
}

// Runs the batch: inputs under the embedding cache by text, the others by token ids. If the encoder
// refuses the batch (it should not: inputs were checked), each input runs alone so only the faulty
// one fails.
void Batcher::compute(std::vector<Entry>& batch, std::vector<float>& out) {
  out.assign(batch.size() * static_cast<std::size_t>(width_), 0.0f);
  std::vector<std::size_t> by_text, by_ids;
  for (std::size_t k = 0; k < batch.size(); ++k)
    (batch[k].job->cache_texts.empty() ? by_ids : by_text).push_back(k);
  auto run_group = [&](const std::vector<std::size_t>& group, bool texts) {
    if (group.empty()) return;
    std::vector<float> vectors(group.size() * static_cast<std::size_t>(width_));
    if (texts) {
      std::vector<std::string_view> views;
      for (std::size_t k : group) views.emplace_back(batch[k].job->cache_texts[batch[k].index]);
      embedder_.embed(views, vectors);
    } else {
      std::vector<std::span<const int64_t>> views;
      for (std::size_t k : group) views.emplace_back(batch[k].job->ids[batch[k].index]);
      embedder_.embed_tokens(views, vectors);
    }
    for (std::size_t g = 0; g < group.size(); ++g)
      std::copy_n(vectors.begin() + static_cast<std::ptrdiff_t>(g * width_), width_,
                  out.begin() + static_cast<std::ptrdiff_t>(group[g] * width_));
  };
  auto run_alone = [&](const std::vector<std::size_t>& group, bool texts) {
    for (std::size_t k : group) {
      try {
        run_group({k}, texts);
      } catch (const Error& e) {
        batch[k].job->fail(e.code() == ErrorCode::invalid_argument ? 422 : 424, e.what());
      } catch (const std::exception& e) {
        batch[k].job->fail(424, e.what());
      }
    }
  };
  for (bool texts : {true, false}) {
    const auto& group = texts ? by_text : by_ids;
    try {
      run_group(group, texts);
    } catch (const std::exception&) {
      run_alone(group, texts);
    }
  }
}

void Batcher::stop(const std::string& error) {
  std::vector<Entry> left;
  {
    std::lock_guard lock(mutex_);
    if (stopping_ && !thread_.joinable()) return;
    stopping_ = true;
    left.assign(next_.begin(), next_.end());
    left.insert(left.end(), pending_.begin(), pending_.end());
    next_.clear();
    pending_.clear();
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
  for (Entry& e : left) {
    e.job->fail(503, error);
    if (--e.job->remaining == 0) e.job->on_done(*e.job);
  }
}

}  // namespace leanembed::server
