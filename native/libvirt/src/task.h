// The machinery every binding call shares: libvirt errors captured in the thread that made
// the call, owned references that are only ever dropped off the main thread, and one promise
// per call, its work run on libuv's pool or, for a call that can take long, a thread of its own.
#pragma once

#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>
#include <napi.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>

namespace vagoth {

struct VirError {
  int code = VIR_ERR_INTERNAL_ERROR;
  int domain = VIR_FROM_NONE;
  int level = VIR_ERR_ERROR;
  std::string message;
  std::string call;
};

class Failure : public std::exception {
 public:
  explicit Failure(VirError error) : error(std::move(error)) {}
  const char* what() const noexcept override { return error.message.c_str(); }
  VirError error;
};

// libvirt keeps the last error per thread: this must run in the thread whose call failed.
[[noreturn]] void ThrowLastError(const char* call);

template <typename T>
T* Check(T* result, const char* call) {
  if (result == nullptr) ThrowLastError(call);
  return result;
}

inline int Check(int result, const char* call) {
  if (result < 0) ThrowLastError(call);
  return result;
}

Napi::Error ToJsError(Napi::Env env, const VirError& error);

template <typename P>
struct RefTraits;
template <>
struct RefTraits<virConnectPtr> {
  static void Ref(virConnectPtr p) { virConnectRef(p); }
  static void Free(virConnectPtr p) { virConnectClose(p); }
};
template <>
struct RefTraits<virDomainPtr> {
  static void Ref(virDomainPtr p) { virDomainRef(p); }
  static void Free(virDomainPtr p) { virDomainFree(p); }
};
template <>
struct RefTraits<virStoragePoolPtr> {
  static void Ref(virStoragePoolPtr p) { virStoragePoolRef(p); }
  static void Free(virStoragePoolPtr p) { virStoragePoolFree(p); }
};
template <>
struct RefTraits<virStorageVolPtr> {
  static void Ref(virStorageVolPtr p) { virStorageVolRef(p); }
  static void Free(virStorageVolPtr p) { virStorageVolFree(p); }
};

// Runs `release` on a background thread of its own. Dropping the last reference to a remote
// connection sends a close RPC, which must never block the main thread (GC finalizers
// included), and a finalizer cannot start an AsyncWorker.
void ReleaseLater(std::function<void()> release);

// One owned libvirt reference. Taking one is an atomic increment that never blocks, so it may
// happen on the main thread; a task drops its references in its worker thread.
template <typename P>
class Owned {
 public:
  Owned() = default;
  explicit Owned(P adopted) : p_(adopted) {}
  static Owned Share(P p) {
    RefTraits<P>::Ref(p);
    return Owned(p);
  }
  Owned(Owned&& other) noexcept : p_(std::exchange(other.p_, nullptr)) {}
  Owned& operator=(Owned&& other) noexcept {
    reset();
    p_ = std::exchange(other.p_, nullptr);
    return *this;
  }
  Owned(const Owned&) = delete;
  Owned& operator=(const Owned&) = delete;
  ~Owned() { reset(); }
  void reset() {
    if (p_ != nullptr) RefTraits<P>::Free(std::exchange(p_, nullptr));
  }
  P get() const { return p_; }
  P release() { return std::exchange(p_, nullptr); }

 private:
  P p_ = nullptr;
};

// What a worker hands back to the main thread: builds the JS result from plain data.
using Resolve = std::function<Napi::Value(Napi::Env)>;

// One binding call: its work runs off the main thread, its promise settles on it.
class Call {
 public:
  virtual ~Call() = default;
  Napi::Promise Promise() const { return deferred_.Promise(); }
  // In the thread that runs the call: libvirt's last error is read there, and the work's
  // references are dropped there (dropping a connection's last one sends an RPC).
  void Execute();
  // On the main thread.
  void Settle(Napi::Env env);

 protected:
  explicit Call(Napi::Env env) : deferred_(Napi::Promise::Deferred::New(env)) {}
  virtual Resolve Work() = 0;
  // Destroys the work and its captured references.
  virtual void Drop() = 0;

 private:
  Napi::Promise::Deferred deferred_;
  Resolve resolve_;
  std::optional<VirError> error_;
};

template <typename Fn>
class FnCall final : public Call {
 public:
  FnCall(Napi::Env env, Fn&& fn) : Call(env), fn_(std::move(fn)) {}

 private:
  Resolve Work() override { return (*fn_)(); }
  void Drop() override { fn_.reset(); }
  std::optional<Fn> fn_;
};

// Where a call runs. libuv's pool has 4 threads, shared with Node's own file and DNS work, so
// only calls that answer promptly may wait there: a call that can run for minutes (a wipe, an
// upload, a clone, a migration, an SSH connect) gets a thread of its own, or four of them
// would starve every other call, monitor polls included.
enum class Lane { kPool, kOwnThread };

Napi::Value Start(Napi::Env env, std::unique_ptr<Call> call, Lane lane);

// Runs `fn` (returning a Resolve) on libuv's thread pool and returns a promise of its result.
template <typename Fn>
Napi::Value Run(Napi::Env env, Fn fn) {
  return Start(env, std::make_unique<FnCall<Fn>>(env, std::move(fn)), Lane::kPool);
}

// The same for a call that can take long: it runs on a thread of its own.
template <typename Fn>
Napi::Value RunLong(Napi::Env env, Fn fn) {
  return Start(env, std::make_unique<FnCall<Fn>>(env, std::move(fn)), Lane::kOwnThread);
}

// Argument readers: a wrong type is a TypeError naming the argument.
std::string StringArg(const Napi::CallbackInfo& info, size_t index, const char* name);
std::optional<std::string> OptionalString(const Napi::Object& object, const char* name);
unsigned int FlagsArg(const Napi::CallbackInfo& info, size_t index);
uint64_t SizeArg(const Napi::CallbackInfo& info, size_t index, const char* name);

Napi::Value Undefined(Napi::Env env);

}  // namespace vagoth
