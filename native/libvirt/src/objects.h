// The JS classes: each wraps one libvirt reference, dropped by free()/close() or, failing
// that, by the garbage collector (always off the main thread, see ReleaseLater).
#pragma once

#include <memory>
#include <string>
#include <type_traits>
#include <vector>

#include "task.h"

namespace vagoth {

// Whether a connection's JS object still holds its reference. Only the main thread reads or
// writes it.
using Alive = std::shared_ptr<bool>;

// A libvirt object a worker found, on its way to the main thread to become a JS object.
template <typename P>
struct Found {
  Found(P p, std::string name, std::string id) : ptr(p), name(std::move(name)), id(std::move(id)) {}
  Found(const Found&) = delete;
  Found& operator=(const Found&) = delete;
  ~Found() {
    if (ptr != nullptr) {
      P p = ptr;
      ReleaseLater([p] { RefTraits<P>::Free(p); });
    }
  }
  P ptr;
  std::string name;
  std::string id;
  Alive alive;  // set on the main thread, just before the JS object is made
};

template <typename P>
using FoundPtr = std::shared_ptr<Found<P>>;

// Worker side: adopt a new reference and read its local fields (no RPC involved).
FoundPtr<virDomainPtr> FoundDomain(virDomainPtr adopted);
FoundPtr<virStoragePoolPtr> FoundPool(virStoragePoolPtr adopted);
FoundPtr<virStorageVolPtr> FoundVol(virStorageVolPtr adopted);

struct Addon {
  Napi::FunctionReference connection;
  Napi::FunctionReference domain;
  Napi::FunctionReference pool;
  Napi::FunctionReference vol;
};

template <typename Self, typename P>
class Handle : public Napi::ObjectWrap<Self> {
 public:
  explicit Handle(const Napi::CallbackInfo& info) : Napi::ObjectWrap<Self>(info) {
    if (info.Length() != 1 || !info[0].IsExternal()) {
      throw Napi::TypeError::New(info.Env(), std::string(Self::kKind) +
                                                 " objects come from the binding, not new");
    }
    auto* found = info[0].As<Napi::External<Found<P>>>().Data();
    ptr_ = std::exchange(found->ptr, nullptr);
    name_ = found->name;
    id_ = found->id;
    alive_ = found->alive;
  }
  ~Handle() override { Release(); }

  // `alive`: the flag of the connection the object belongs to.
  static Napi::Object From(Napi::Env env, const FoundPtr<P>& found, const Alive& alive) {
    Napi::FunctionReference& ctor = Self::Constructor(env.GetInstanceData<Addon>());
    found->alive = alive;
    return ctor.New({Napi::External<Found<P>>::New(env, found.get())});
  }

  static Napi::Value FromList(Napi::Env env, const std::vector<FoundPtr<P>>& list,
                              const Alive& alive) {
    Napi::Array array = Napi::Array::New(env, list.size());
    for (size_t i = 0; i < list.size(); i++) array.Set(i, From(env, list[i], alive));
    return array;
  }

  const Alive& alive() const { return alive_; }

  // The object behind a JS argument, checked to be of this class.
  static Self* FromArg(const Napi::CallbackInfo& info, size_t index, const char* name) {
    Napi::FunctionReference& ctor = Self::Constructor(info.Env().GetInstanceData<Addon>());
    if (!info[index].IsObject() || !info[index].As<Napi::Object>().InstanceOf(ctor.Value())) {
      throw Napi::TypeError::New(info.Env(), std::string(name) + " must be a " + Self::kKind);
    }
    return Napi::ObjectWrap<Self>::Unwrap(info[index].As<Napi::Object>());
  }

  Owned<P> Share(Napi::Env env) const {
    if (ptr_ == nullptr) {
      Napi::Error err = Napi::Error::New(env, std::string("this ") + Self::kKind + " " + Self::kGone);
      err.Set("code", "ERR_LIBVIRT_RELEASED");
      throw err;
    }
    return Owned<P>::Share(ptr_);
  }

 protected:
  void Release() {
    if (ptr_ == nullptr) return;
    P p = std::exchange(ptr_, nullptr);
    if constexpr (std::is_same_v<P, virConnectPtr>) {
      if (alive_) *alive_ = false;
    } else if (alive_ && *alive_) {
      // The connection's JS object still holds the connection, so this cannot be its last
      // reference: dropping it is a counter decrement, never a close RPC. No thread needed.
      RefTraits<P>::Free(p);
      return;
    }
    ReleaseLater([p] { RefTraits<P>::Free(p); });
  }
  Napi::Value GetName(const Napi::CallbackInfo& info) { return Napi::String::New(info.Env(), name_); }
  Napi::Value GetId(const Napi::CallbackInfo& info) { return Napi::String::New(info.Env(), id_); }
  Napi::Value Free(const Napi::CallbackInfo& info) {
    Release();
    return info.Env().Undefined();
  }

  P ptr_ = nullptr;
  std::string name_;
  std::string id_;
  Alive alive_;
};

class Connection : public Handle<Connection, virConnectPtr> {
 public:
  static constexpr const char* kKind = "Connection";
  static constexpr const char* kGone = "is closed";
  static Napi::Function Define(Napi::Env env);
  static Napi::FunctionReference& Constructor(Addon* addon) { return addon->connection; }
  static Napi::Value Open(const Napi::CallbackInfo& info);
  using Handle::Handle;

 private:
  Napi::Value Close(const Napi::CallbackInfo& info);
  Napi::Value IsAlive(const Napi::CallbackInfo& info);
  Napi::Value NodeGetInfo(const Napi::CallbackInfo& info);
  Napi::Value NodeFreeMemory(const Napi::CallbackInfo& info);
  Napi::Value GetCapabilities(const Napi::CallbackInfo& info);
  Napi::Value ListAllDomains(const Napi::CallbackInfo& info);
  Napi::Value LookupDomainByName(const Napi::CallbackInfo& info);
  Napi::Value DefineDomainXML(const Napi::CallbackInfo& info);
  Napi::Value LookupStoragePoolByName(const Napi::CallbackInfo& info);
};

class Domain : public Handle<Domain, virDomainPtr> {
 public:
  static constexpr const char* kKind = "Domain";
  static constexpr const char* kGone = "was freed";
  static Napi::Function Define(Napi::Env env);
  static Napi::FunctionReference& Constructor(Addon* addon) { return addon->domain; }
  using Handle::Handle;

 private:
  Napi::Value GetInfo(const Napi::CallbackInfo& info);
  Napi::Value GetState(const Napi::CallbackInfo& info);
  Napi::Value GetXMLDesc(const Napi::CallbackInfo& info);
  Napi::Value Create(const Napi::CallbackInfo& info);
  Napi::Value Destroy(const Napi::CallbackInfo& info);
  Napi::Value Shutdown(const Napi::CallbackInfo& info);
  Napi::Value Reboot(const Napi::CallbackInfo& info);
  Napi::Value Undefine(const Napi::CallbackInfo& info);
  Napi::Value Migrate(const Napi::CallbackInfo& info);
};

class StoragePool : public Handle<StoragePool, virStoragePoolPtr> {
 public:
  static constexpr const char* kKind = "StoragePool";
  static constexpr const char* kGone = "was freed";
  static Napi::Function Define(Napi::Env env);
  static Napi::FunctionReference& Constructor(Addon* addon) { return addon->pool; }
  using Handle::Handle;

 private:
  Napi::Value GetInfo(const Napi::CallbackInfo& info);
  Napi::Value GetXMLDesc(const Napi::CallbackInfo& info);
  Napi::Value Refresh(const Napi::CallbackInfo& info);
  Napi::Value LookupVolumeByName(const Napi::CallbackInfo& info);
  Napi::Value ListAllVolumes(const Napi::CallbackInfo& info);
  Napi::Value CreateVolumeXML(const Napi::CallbackInfo& info);
  Napi::Value CreateVolumeXMLFrom(const Napi::CallbackInfo& info);
};

class StorageVol : public Handle<StorageVol, virStorageVolPtr> {
 public:
  static constexpr const char* kKind = "StorageVol";
  static constexpr const char* kGone = "was freed";
  static Napi::Function Define(Napi::Env env);
  static Napi::FunctionReference& Constructor(Addon* addon) { return addon->vol; }
  using Handle::Handle;

 private:
  Napi::Value GetPath(const Napi::CallbackInfo& info);
  Napi::Value GetInfo(const Napi::CallbackInfo& info);
  Napi::Value GetXMLDesc(const Napi::CallbackInfo& info);
  Napi::Value Wipe(const Napi::CallbackInfo& info);
  Napi::Value Delete(const Napi::CallbackInfo& info);
  Napi::Value UploadZeros(const Napi::CallbackInfo& info);
  Napi::Value Download(const Napi::CallbackInfo& info);
  Napi::Value DownloadSparse(const Napi::CallbackInfo& info);
  Napi::Value DataWindows(const Napi::CallbackInfo& info);
  Napi::Value Upload(const Napi::CallbackInfo& info);
};

}  // namespace vagoth
