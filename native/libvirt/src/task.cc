#include "task.h"

#include <condition_variable>
#include <deque>
#include <mutex>
#include <system_error>
#include <thread>

namespace vagoth {

void ThrowLastError(const char* call) {
  VirError error;
  error.call = call;
  virErrorPtr last = virGetLastError();
  if (last != nullptr && last->code != VIR_ERR_OK) {
    error.code = last->code;
    error.domain = last->domain;
    error.level = last->level;
    error.message = last->message != nullptr ? last->message : "unknown libvirt error";
  } else {
    error.message = std::string(call) + " failed and libvirt gave no reason";
  }
  virResetLastError();
  throw Failure(std::move(error));
}

Napi::Error ToJsError(Napi::Env env, const VirError& error) {
  Napi::Error err = Napi::Error::New(env, error.message);
  Napi::Object object = err.Value();
  object.Set("name", "LibvirtError");
  object.Set("code", error.code);
  object.Set("domain", error.domain);
  object.Set("level", error.level);
  object.Set("call", error.call);
  return err;
}

namespace {

// Never destroyed: a static destructor at exit would race the detached thread.
struct Reaper {
  std::mutex mutex;
  std::condition_variable ready;
  std::deque<std::function<void()>> queue;

  void Loop() {
    for (;;) {
      std::function<void()> next;
      {
        std::unique_lock<std::mutex> lock(mutex);
        ready.wait(lock, [this] { return !queue.empty(); });
        next = std::move(queue.front());
        queue.pop_front();
      }
      next();
      virResetLastError();
    }
  }
};

Reaper* TheReaper() {
  static Reaper* reaper = [] {
    auto* r = new Reaper();
    std::thread([r] { r->Loop(); }).detach();
    return r;
  }();
  return reaper;
}

}  // namespace

void ReleaseLater(std::function<void()> release) {
  Reaper* reaper = TheReaper();
  {
    std::lock_guard<std::mutex> lock(reaper->mutex);
    reaper->queue.push_back(std::move(release));
  }
  reaper->ready.notify_one();
}

void Call::Execute() {
  try {
    resolve_ = Work();
  } catch (const Failure& failure) {
    error_ = failure.error;
  } catch (const std::exception& e) {
    VirError error;
    error.message = e.what();
    error_ = std::move(error);
  }
  Drop();
}

void Call::Settle(Napi::Env env) {
  if (error_) {
    deferred_.Reject(ToJsError(env, *error_).Value());
    return;
  }
  try {
    deferred_.Resolve(resolve_(env));
  } catch (const Napi::Error& e) {
    deferred_.Reject(e.Value());
  }
}

namespace {

class PoolWorker final : public Napi::AsyncWorker {
 public:
  PoolWorker(Napi::Env env, std::unique_ptr<Call> call)
      : Napi::AsyncWorker(env, "vagoth:libvirt"), call_(std::move(call)) {}

 private:
  void Execute() override { call_->Execute(); }
  void OnOK() override { call_->Settle(Env()); }
  std::unique_ptr<Call> call_;
};

// Called on the main thread with a call its thread finished; `env` is null when the
// environment is being torn down, and then there is no promise left to settle.
void SettleOnMain(Napi::Env env, Napi::Function, std::nullptr_t*, Call* finished) {
  std::unique_ptr<Call> call(finished);
  if (static_cast<napi_env>(env) != nullptr) call->Settle(env);
}

using Settler = Napi::TypedThreadSafeFunction<std::nullptr_t, Call, SettleOnMain>;

// Hands the call back when no thread could be started. The settler holds the event loop open
// until the thread hands the call to the main thread, as a queued AsyncWorker does.
std::unique_ptr<Call> StartOwnThread(Napi::Env env, std::unique_ptr<Call> call) {
  Settler settler = Settler::New(env, "vagoth:libvirt", 0, 1);
  Call* running = call.release();
  try {
    std::thread([settler, running] {
      running->Execute();
      // Refused only while the environment is torn down: nobody awaits the promise then.
      // What the call still holds drops here, off the main thread.
      if (settler.NonBlockingCall(running) != napi_ok) delete running;
      settler.Release();
    }).detach();
    return nullptr;
  } catch (const std::system_error&) {
    settler.Release();
    return std::unique_ptr<Call>(running);
  }
}

}  // namespace

Napi::Value Start(Napi::Env env, std::unique_ptr<Call> call, Lane lane) {
  Napi::Promise promise = call->Promise();
  if (lane == Lane::kOwnThread) call = StartOwnThread(env, std::move(call));
  // Out of threads (a process limit), a long call waits in the pool's queue: slower, but it
  // still answers.
  if (call) (new PoolWorker(env, std::move(call)))->Queue();
  return promise;
}

std::string StringArg(const Napi::CallbackInfo& info, size_t index, const char* name) {
  if (!info[index].IsString()) {
    throw Napi::TypeError::New(info.Env(), std::string(name) + " must be a string");
  }
  return info[index].As<Napi::String>().Utf8Value();
}

std::optional<std::string> OptionalString(const Napi::Object& object, const char* name) {
  Napi::Value value = object.Get(name);
  if (value.IsUndefined()) return std::nullopt;
  if (!value.IsString()) {
    throw Napi::TypeError::New(object.Env(), std::string(name) + " must be a string");
  }
  return value.As<Napi::String>().Utf8Value();
}

unsigned int FlagsArg(const Napi::CallbackInfo& info, size_t index) {
  if (info[index].IsUndefined()) return 0;
  if (!info[index].IsNumber()) throw Napi::TypeError::New(info.Env(), "flags must be a number");
  int64_t flags = info[index].As<Napi::Number>().Int64Value();
  if (flags < 0 || flags > UINT32_MAX) {
    throw Napi::RangeError::New(info.Env(), "flags must fit in 32 unsigned bits");
  }
  return static_cast<unsigned int>(flags);
}

uint64_t SizeArg(const Napi::CallbackInfo& info, size_t index, const char* name) {
  if (!info[index].IsNumber()) {
    throw Napi::TypeError::New(info.Env(), std::string(name) + " must be a number");
  }
  double value = info[index].As<Napi::Number>().DoubleValue();
  if (!(value >= 0) || value > 9007199254740991.0 || value != static_cast<double>(
                                                                   static_cast<uint64_t>(value))) {
    throw Napi::RangeError::New(info.Env(), std::string(name) + " must be a whole number >= 0");
  }
  return static_cast<uint64_t>(value);
}

Napi::Value Undefined(Napi::Env env) { return env.Undefined(); }

}  // namespace vagoth
