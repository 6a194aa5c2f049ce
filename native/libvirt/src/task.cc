#include "task.h"

#include <condition_variable>
#include <deque>
#include <mutex>
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

TaskBase::TaskBase(Napi::Env env)
    : Napi::AsyncWorker(env, "vagoth:libvirt"), deferred_(Napi::Promise::Deferred::New(env)) {}

Napi::Promise TaskBase::Start() {
  Napi::Promise promise = deferred_.Promise();
  Queue();
  return promise;
}

void TaskBase::Execute() {
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

void TaskBase::OnOK() {
  Napi::Env env = Env();
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
