// addon.cpp — the Node-API face of leanembed::Embedder (include/leanembed/embedder.h).
//
// Every call that may touch the model (load, embed, tokenize, unload, dispose) is an
// Napi::AsyncWorker that settles a Promise: the JavaScript thread only converts arguments and
// results. Its libuv pool thread hands the work to the one engine thread below and waits for it:
// libgomp (the OpenMP runtime of the encoder) keeps a pool of threads per thread that starts a
// parallel region, so work spread over libuv's 4 pool threads made up to 4 pools, and with more
// pool threads than cores libgomp cuts their spinning between regions to 100 rounds (one sentence
// back to back took 7.5 ms instead of the CLI's 3; bindings/node/README.md, "Process settings").
// The Embedder is shared (std::shared_ptr) between the JS object and the workers in flight, so a
// garbage-collected wrapper never frees a model a worker still uses. The library's own threads
// (OpenMP workers, the idle-unload watcher) and the engine thread are plain threads: they hold no
// libuv handle and never keep the process alive.
//
// Errors: leanembed::Error → Error with code = error_code_name(); a JS argument of the wrong type
// → TypeError with code "invalid_argument"; std::bad_alloc → code "out_of_memory".
#include <malloc.h>
#include <napi.h>

#include <atomic>
#include <condition_variable>
#include <deque>
#include <functional>
#include <future>
#include <memory>
#include <mutex>
#include <new>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "leanembed/embedder.h"
#include "leanembed/error.h"
#include "leanembed/model_options.h"
#include "options.h"

namespace leanembed_node {
namespace {

// A failure caught on a worker thread, turned into a JS Error on the JS thread.
struct Failure {
  std::string code;
  std::string message;
};

Failure failure_of(std::exception_ptr e) {
  try {
    std::rethrow_exception(e);
  } catch (const leanembed::Error& x) {
    return {leanembed::error_code_name(x.code()), x.what()};
  } catch (const std::bad_alloc&) {
    return {"out_of_memory", "out of memory"};
  } catch (const std::exception& x) {
    return {"runtime", x.what()};
  } catch (...) {
    return {"runtime", "unknown failure"};
  }
}

Napi::Value js_error(Napi::Env env, const Failure& f, bool type_error = false) {
  Napi::Error e = type_error ? Napi::TypeError::New(env, f.message) : Napi::Error::New(env, f.message);
  e.Set("code", Napi::String::New(env, f.code));
  return e.Value();
}

// Runs `argument-side` code on the JS thread and turns its failures into thrown JS errors.
template <typename F>
auto on_js_thread(Napi::Env env, F&& f) -> decltype(f()) {
  try {
    return f();
  } catch (const ArgumentTypeError& x) {
    throw Napi::Error(env, js_error(env, {"invalid_argument", x.what()}, true));
  } catch (const Napi::Error&) {
    throw;
  } catch (...) {
    throw Napi::Error(env, js_error(env, failure_of(std::current_exception())));
  }
}

// The thread every worker's work() runs on, one per process, started on first use. Never
// destroyed (nothing runs at exit): it waits on a condition variable, holds no libuv handle, and
// ends with the process.
class EngineThread {
 public:
  static EngineThread& get() {
    static EngineThread* instance = new EngineThread();
    return *instance;
  }
  // Runs work on the engine thread, waiting for it; rethrows what it threw.
  void run(const std::function<void()>& work) {
    std::packaged_task<void()> task(work);
    std::future<void> done = task.get_future();
    {
      std::lock_guard lock(mutex_);
      tasks_.push_back(std::move(task));
    }
    wake_.notify_one();
    done.get();
  }

 private:
  EngineThread() { std::thread([this] { loop(); }).detach(); }
  void loop() {
    for (;;) {
      std::packaged_task<void()> task;
      {
        std::unique_lock lock(mutex_);
        wake_.wait(lock, [this] { return !tasks_.empty(); });
        task = std::move(tasks_.front());
        tasks_.pop_front();
      }
      task();  // a packaged_task keeps what work() throws for run()
    }
  }
  std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<std::packaged_task<void()>> tasks_;
};

// Base of every worker: runs work() off the JS thread, on the engine thread; resolve() builds the
// value on the JS thread.
class PromiseWorker : public Napi::AsyncWorker {
 public:
  explicit PromiseWorker(Napi::Env env, const char* name)
      : Napi::AsyncWorker(env, name), deferred_(Napi::Promise::Deferred::New(env)) {}
  Napi::Promise promise() const { return deferred_.Promise(); }

 protected:
  virtual void work() = 0;
  virtual Napi::Value resolve(Napi::Env env) = 0;

 private:
  void Execute() override {
    try {
      EngineThread::get().run([this] { work(); });
    } catch (...) {
      failure_ = failure_of(std::current_exception());
      failed_ = true;
    }
  }
  void OnOK() override {
    Napi::Env env = Env();
    Napi::HandleScope scope(env);
    if (failed_) {
      deferred_.Reject(js_error(env, failure_));
      return;
    }
    try {
      deferred_.Resolve(resolve(env));
    } catch (const Napi::Error& e) {
      deferred_.Reject(e.Value());
    }
  }
  void OnError(const Napi::Error& e) override { deferred_.Reject(e.Value()); }

  Napi::Promise::Deferred deferred_;
  Failure failure_;
  bool failed_ = false;
};

using EmbedderPtr = std::shared_ptr<leanembed::Embedder>;

Napi::Object info_to_js(Napi::Env env, const leanembed::EmbedderInfo& i) {
  Napi::Object o = Napi::Object::New(env);
  auto num = [&](const char* k, double v) { o.Set(k, Napi::Number::New(env, v)); };
  auto str = [&](const char* k, const std::string& v) { o.Set(k, Napi::String::New(env, v)); };
  str("folder", i.folder);
  str("modelPath", i.model_path);
  str("tokenizerPath", i.tokenizer_path);
  str("modelType", i.model_type);
  num("hiddenSize", static_cast<double>(i.hidden_size));
  num("layers", static_cast<double>(i.layers));
  num("heads", static_cast<double>(i.heads));
  num("maxLength", static_cast<double>(i.max_length));
  str("maxLengthSource", i.max_length_source);
  num("dims", static_cast<double>(i.dims));
  str("pooling", leanembed::pooling_name(i.pooling));
  o.Set("normalize", Napi::Boolean::New(env, i.normalize));
  str("dtype", i.dtype);
  str("path", i.path);
  str("pathReason", i.path_reason);
  str("kernels", i.kernels);
  num("threads", i.threads);
  num("parallelMinTokens", static_cast<double>(i.parallel_min_tokens));
  num("modelFileBytes", static_cast<double>(i.model_file_bytes));
  num("plannedArenaBytes", static_cast<double>(i.planned_arena_bytes));
  num("memoryBudgetBytes", static_cast<double>(i.memory_budget_bytes));
  o.Set("loaded", Napi::Boolean::New(env, i.loaded));
  o.Set("disposed", Napi::Boolean::New(env, i.disposed));
  num("loads", static_cast<double>(i.loads));
  num("unloads", static_cast<double>(i.unloads));
  num("lastLoadSeconds", i.last_load_seconds);
  Napi::Object c = Napi::Object::New(env);
  c.Set("enabled", Napi::Boolean::New(env, i.cache_enabled));
  c.Set("problem", Napi::String::New(env, i.cache_problem));
  c.Set("hits", Napi::Number::New(env, static_cast<double>(i.cache_hits)));
  c.Set("misses", Napi::Number::New(env, static_cast<double>(i.cache_misses)));
  c.Set("hitRate", Napi::Number::New(env, i.cache_hit_rate));
  c.Set("entriesMemory", Napi::Number::New(env, static_cast<double>(i.cache_entries_memory)));
  c.Set("entriesDisk", Napi::Number::New(env, static_cast<double>(i.cache_entries_disk)));
  c.Set("bytesMemory", Napi::Number::New(env, static_cast<double>(i.cache_bytes_memory)));
  c.Set("bytesDisk", Napi::Number::New(env, static_cast<double>(i.cache_bytes_disk)));
  o.Set("cache", c);
  return o;
}

// The JS class NativeEmbedder: made only by load(); lib/embedder.cjs wraps it.
class NativeEmbedder : public Napi::ObjectWrap<NativeEmbedder> {
 public:
  static Napi::Function define(Napi::Env env) {
    return DefineClass(env, "NativeEmbedder",
                       {InstanceMethod<&NativeEmbedder::embed>("embed"),
                        InstanceMethod<&NativeEmbedder::tokenize>("tokenize"),
                        InstanceMethod<&NativeEmbedder::info>("info"),
                        InstanceMethod<&NativeEmbedder::unload>("unload"),
                        InstanceMethod<&NativeEmbedder::dispose>("dispose"),
                        InstanceAccessor<&NativeEmbedder::dims>("dims")});
  }

  explicit NativeEmbedder(const Napi::CallbackInfo& info) : Napi::ObjectWrap<NativeEmbedder>(info) {}
  void adopt(EmbedderPtr e) { embedder_ = std::move(e); }

 private:
  // Calls after dispose() (even before its Promise settled) reject with the library's wording.
  bool disposed(Napi::Env env, Napi::Promise::Deferred& d) {
    if (!disposing_) return false;
    d.Reject(js_error(env, {"invalid_argument", "this embedder was disposed"}));
    return true;
  }

  // embed(texts: string[]) → Promise<Float32Array> of texts.length × dims floats, row i for texts[i].
  Napi::Value embed(const Napi::CallbackInfo& info);
  // tokenize(text: string) → Promise<{ ids: number[], tokens: string[] }>.
  Napi::Value tokenize(const Napi::CallbackInfo& info);
  Napi::Value info(const Napi::CallbackInfo& info) {
    return on_js_thread(info.Env(), [&] { return Napi::Value(info_to_js(info.Env(), embedder_->info())); });
  }
  Napi::Value dims(const Napi::CallbackInfo& info) {
    return Napi::Number::New(info.Env(), static_cast<double>(embedder_->dims()));
  }
  Napi::Value unload(const Napi::CallbackInfo& info);
  Napi::Value dispose(const Napi::CallbackInfo& info);

  EmbedderPtr embedder_;
  bool disposing_ = false;
};

class EmbedWorker : public PromiseWorker {
 public:
  EmbedWorker(Napi::Env env, EmbedderPtr e, std::vector<std::string> texts)
      : PromiseWorker(env, "leanembed.embed"), embedder_(std::move(e)), texts_(std::move(texts)) {
    // The result array is made here, on the JS thread; the worker writes into its memory (kept
    // alive by the reference), so the vectors are never copied.
    const std::size_t floats = texts_.size() * static_cast<std::size_t>(embedder_->dims());
    Napi::Float32Array out = Napi::Float32Array::New(env, floats);
    out_ = Napi::Persistent(out);
    data_ = out.Data();
    floats_ = floats;
  }

 private:
  void work() override {
    std::vector<std::string_view> views(texts_.begin(), texts_.end());
    embedder_->embed(views, std::span<float>(data_, floats_));
    texts_.clear();
    texts_.shrink_to_fit();
  }
  Napi::Value resolve(Napi::Env env) override { return out_.Value(); }

  EmbedderPtr embedder_;
  std::vector<std::string> texts_;
  Napi::Reference<Napi::Float32Array> out_;
  float* data_ = nullptr;
  std::size_t floats_ = 0;
};

Napi::Value NativeEmbedder::embed(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return on_js_thread(env, [&]() -> Napi::Value {
    if (info.Length() < 1 || !info[0].IsArray()) throw ArgumentTypeError("embed: expected an array of strings");
    const Napi::Array arr = info[0].As<Napi::Array>();
    std::vector<std::string> texts(arr.Length());
    for (uint32_t i = 0; i < arr.Length(); ++i) {
      const Napi::Value v = arr.Get(i);
      if (!v.IsString()) throw ArgumentTypeError("embed: texts[" + std::to_string(i) + "] is not a string");
      texts[i] = v.As<Napi::String>().Utf8Value();  // lone surrogates become U+FFFD
    }
    if (disposing_) {
      auto d = Napi::Promise::Deferred::New(env);
      disposed(env, d);
      return d.Promise();
    }
    auto* w = new EmbedWorker(env, embedder_, std::move(texts));
    Napi::Promise p = w->promise();
    w->Queue();
    return p;
  });
}

class TokenizeWorker : public PromiseWorker {
 public:
  TokenizeWorker(Napi::Env env, EmbedderPtr e, std::string text)
      : PromiseWorker(env, "leanembed.tokenize"), embedder_(std::move(e)), text_(std::move(text)) {}

 private:
  void work() override { result_ = embedder_->tokenize(text_); }
  Napi::Value resolve(Napi::Env env) override {
    Napi::Array ids = Napi::Array::New(env, result_.ids.size());
    Napi::Array tokens = Napi::Array::New(env, result_.tokens.size());
    for (std::size_t i = 0; i < result_.ids.size(); ++i) ids.Set(i, Napi::Number::New(env, static_cast<double>(result_.ids[i])));
    for (std::size_t i = 0; i < result_.tokens.size(); ++i) tokens.Set(i, Napi::String::New(env, result_.tokens[i]));
    Napi::Object o = Napi::Object::New(env);
    o.Set("ids", ids);
    o.Set("tokens", tokens);
    return o;
  }

  EmbedderPtr embedder_;
  std::string text_;
  leanembed::Tokenized result_;
};

Napi::Value NativeEmbedder::tokenize(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return on_js_thread(env, [&]() -> Napi::Value {
    if (info.Length() < 1 || !info[0].IsString()) throw ArgumentTypeError("tokenize: expected a string");
    std::string text = info[0].As<Napi::String>().Utf8Value();
    if (disposing_) {
      auto d = Napi::Promise::Deferred::New(env);
      disposed(env, d);
      return d.Promise();
    }
    auto* w = new TokenizeWorker(env, embedder_, std::move(text));
    Napi::Promise p = w->promise();
    w->Queue();
    return p;
  });
}

// unload() and dispose() wait for calls in flight: never on the JS thread.
class LifecycleWorker : public PromiseWorker {
 public:
  LifecycleWorker(Napi::Env env, EmbedderPtr e, bool dispose)
      : PromiseWorker(env, dispose ? "leanembed.dispose" : "leanembed.unload"), embedder_(std::move(e)), dispose_(dispose) {}

 private:
  void work() override {
    if (dispose_) embedder_->dispose();
    else embedder_->unload();
  }
  Napi::Value resolve(Napi::Env env) override { return env.Undefined(); }

  EmbedderPtr embedder_;
  bool dispose_;
};

Napi::Value NativeEmbedder::unload(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (disposing_) {
    auto d = Napi::Promise::Deferred::New(env);
    disposed(env, d);
    return d.Promise();
  }
  auto* w = new LifecycleWorker(env, embedder_, false);
  Napi::Promise p = w->promise();
  w->Queue();
  return p;
}

Napi::Value NativeEmbedder::dispose(const Napi::CallbackInfo& info) {
  disposing_ = true;  // a second dispose() is harmless: the library's dispose is idempotent
  auto* w = new LifecycleWorker(info.Env(), embedder_, true);
  Napi::Promise p = w->promise();
  w->Queue();
  return p;
}

struct AddonData {
  Napi::FunctionReference native_embedder;
};

class LoadWorker : public PromiseWorker {
 public:
  LoadWorker(Napi::Env env, leanembed::EmbedderOptions options)
      : PromiseWorker(env, "leanembed.load"), options_(std::move(options)) {}

 private:
  void work() override { embedder_ = std::make_shared<leanembed::Embedder>(options_); }
  Napi::Value resolve(Napi::Env env) override {
    Napi::Object obj = env.GetInstanceData<AddonData>()->native_embedder.New({});
    NativeEmbedder::Unwrap(obj)->adopt(std::move(embedder_));
    return obj;
  }

  leanembed::EmbedderOptions options_;
  EmbedderPtr embedder_;
};

// load(options: object) → Promise<NativeEmbedder>.
Napi::Value load(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return on_js_thread(env, [&]() -> Napi::Value {
    if (info.Length() < 1 || !info[0].IsObject() || info[0].IsArray() || info[0].IsFunction())
      throw ArgumentTypeError("load: expected an options object, e.g. { model: 'path/to/model-folder' }");
    auto* w = new LoadWorker(env, embedder_options_from_js(info[0].As<Napi::Object>()));
    Napi::Promise p = w->promise();
    w->Queue();
    return p;
  });
}

Napi::Object init(Napi::Env env, Napi::Object exports) {
  // As the leanembed CLI does for itself (README, "Process settings"): large buffers are mapped
  // and go back to the system when freed, so peak RSS does not stay at the largest batch's.
  mallopt(M_MMAP_THRESHOLD, 128 * 1024);
  auto* data = new AddonData{Napi::Persistent(NativeEmbedder::define(env))};
  env.SetInstanceData(data);
  exports.Set("load", Napi::Function::New(env, load, "load"));
  return exports;
}

}  // namespace
}  // namespace leanembed_node

static Napi::Object InitLeanembed(Napi::Env env, Napi::Object exports) { return leanembed_node::init(env, exports); }
NODE_API_MODULE(leanembed, InitLeanembed)
