#include <algorithm>

#include "objects.h"

namespace vagoth {

FoundPtr<virStoragePoolPtr> FoundPool(virStoragePoolPtr adopted) {
  Owned<virStoragePoolPtr> ref(adopted);
  const char* name = Check(virStoragePoolGetName(adopted), "virStoragePoolGetName");
  char uuid[VIR_UUID_STRING_BUFLEN];
  Check(virStoragePoolGetUUIDString(adopted, uuid), "virStoragePoolGetUUIDString");
  return std::make_shared<Found<virStoragePoolPtr>>(ref.release(), name, uuid);
}

FoundPtr<virStorageVolPtr> FoundVol(virStorageVolPtr adopted) {
  Owned<virStorageVolPtr> ref(adopted);
  const char* name = Check(virStorageVolGetName(adopted), "virStorageVolGetName");
  const char* key = Check(virStorageVolGetKey(adopted), "virStorageVolGetKey");
  return std::make_shared<Found<virStorageVolPtr>>(ref.release(), name, key);
}

namespace {

Resolve String(char* raw) {
  std::string text(raw);
  free(raw);
  return [text](Napi::Env env) { return Napi::String::New(env, text); };
}

Resolve VolumeResult(virStorageVolPtr adopted, const Alive& alive) {
  auto found = FoundVol(adopted);
  return [found, alive](Napi::Env env) { return StorageVol::From(env, found, alive); };
}

}  // namespace

Napi::Function StoragePool::Define(Napi::Env env) {
  return DefineClass(env, "StoragePool",
                     {
                         InstanceAccessor("name", &StoragePool::GetName, nullptr),
                         InstanceAccessor("uuid", &StoragePool::GetId, nullptr),
                         InstanceMethod<&StoragePool::GetInfo>("getInfo"),
                         InstanceMethod<&StoragePool::GetXMLDesc>("getXMLDesc"),
                         InstanceMethod<&StoragePool::Refresh>("refresh"),
                         InstanceMethod<&StoragePool::LookupVolumeByName>("lookupVolumeByName"),
                         InstanceMethod<&StoragePool::ListAllVolumes>("listAllVolumes"),
                         InstanceMethod<&StoragePool::CreateVolumeXML>("createVolumeXML"),
                         InstanceMethod<&StoragePool::CreateVolumeXMLFrom>("createVolumeXMLFrom"),
                         InstanceMethod("free", &StoragePool::Free),
                     });
}

Napi::Value StoragePool::GetInfo(const Napi::CallbackInfo& info) {
  return Run(info.Env(), [pool = Share(info.Env())]() -> Resolve {
    virStoragePoolInfo pi;
    Check(virStoragePoolGetInfo(pool.get(), &pi), "virStoragePoolGetInfo");
    return [pi](Napi::Env env) {
      Napi::Object out = Napi::Object::New(env);
      out.Set("state", pi.state);
      out.Set("capacity", static_cast<double>(pi.capacity));
      out.Set("allocation", static_cast<double>(pi.allocation));
      out.Set("available", static_cast<double>(pi.available));
      return out;
    };
  });
}

Napi::Value StoragePool::GetXMLDesc(const Napi::CallbackInfo& info) {
  unsigned int flags = FlagsArg(info, 0);
  return Run(info.Env(), [pool = Share(info.Env()), flags]() -> Resolve {
    return String(Check(virStoragePoolGetXMLDesc(pool.get(), flags), "virStoragePoolGetXMLDesc"));
  });
}

Napi::Value StoragePool::Refresh(const Napi::CallbackInfo& info) {
  return Run(info.Env(), [pool = Share(info.Env())]() -> Resolve {
    Check(virStoragePoolRefresh(pool.get(), 0), "virStoragePoolRefresh");
    return Undefined;
  });
}

Napi::Value StoragePool::LookupVolumeByName(const Napi::CallbackInfo& info) {
  std::string name = StringArg(info, 0, "name");
  return Run(info.Env(), [pool = Share(info.Env()), alive = alive_, name]() -> Resolve {
    return VolumeResult(
        Check(virStorageVolLookupByName(pool.get(), name.c_str()), "virStorageVolLookupByName"),
        alive);
  });
}

Napi::Value StoragePool::ListAllVolumes(const Napi::CallbackInfo& info) {
  return Run(info.Env(), [pool = Share(info.Env()), alive = alive_]() -> Resolve {
    virStorageVolPtr* vols = nullptr;
    int count =
        Check(virStoragePoolListAllVolumes(pool.get(), &vols, 0), "virStoragePoolListAllVolumes");
    std::vector<Owned<virStorageVolPtr>> refs;
    for (int i = 0; i < count; i++) refs.emplace_back(vols[i]);
    free(vols);
    std::vector<FoundPtr<virStorageVolPtr>> found;
    for (auto& ref : refs) found.push_back(FoundVol(ref.release()));
    return [found, alive](Napi::Env env) { return StorageVol::FromList(env, found, alive); };
  });
}

Napi::Value StoragePool::CreateVolumeXML(const Napi::CallbackInfo& info) {
  std::string xml = StringArg(info, 0, "xml");
  unsigned int flags = FlagsArg(info, 1);
  // A volume created with its allocation writes (or fallocates) all of it: a thread of its own.
  return RunLong(info.Env(), [pool = Share(info.Env()), alive = alive_, xml, flags]() -> Resolve {
    return VolumeResult(Check(virStorageVolCreateXML(pool.get(), xml.c_str(), flags),
                              "virStorageVolCreateXML"),
                        alive);
  });
}

Napi::Value StoragePool::CreateVolumeXMLFrom(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string xml = StringArg(info, 0, "xml");
  Owned<virStorageVolPtr> source = StorageVol::FromArg(info, 1, "source")->Share(env);
  unsigned int flags = FlagsArg(info, 2);
  // A clone copies every byte of its source.
  return RunLong(env, [pool = Share(env), alive = alive_, xml, source = std::move(source),
                       flags]() -> Resolve {
    return VolumeResult(
        Check(virStorageVolCreateXMLFrom(pool.get(), xml.c_str(), source.get(), flags),
              "virStorageVolCreateXMLFrom"),
        alive);
  });
}

Napi::Function StorageVol::Define(Napi::Env env) {
  return DefineClass(env, "StorageVol",
                     {
                         InstanceAccessor("name", &StorageVol::GetName, nullptr),
                         InstanceAccessor("key", &StorageVol::GetId, nullptr),
                         InstanceMethod<&StorageVol::GetPath>("getPath"),
                         InstanceMethod<&StorageVol::GetInfo>("getInfo"),
                         InstanceMethod<&StorageVol::GetXMLDesc>("getXMLDesc"),
                         InstanceMethod<&StorageVol::Wipe>("wipe"),
                         InstanceMethod<&StorageVol::Delete>("delete"),
                         InstanceMethod<&StorageVol::UploadZeros>("uploadZeros"),
                         InstanceMethod("free", &StorageVol::Free),
                     });
}

Napi::Value StorageVol::GetPath(const Napi::CallbackInfo& info) {
  return Run(info.Env(), [vol = Share(info.Env())]() -> Resolve {
    return String(Check(virStorageVolGetPath(vol.get()), "virStorageVolGetPath"));
  });
}

Napi::Value StorageVol::GetInfo(const Napi::CallbackInfo& info) {
  return Run(info.Env(), [vol = Share(info.Env())]() -> Resolve {
    virStorageVolInfo vi;
    Check(virStorageVolGetInfo(vol.get(), &vi), "virStorageVolGetInfo");
    return [vi](Napi::Env env) {
      Napi::Object out = Napi::Object::New(env);
      out.Set("type", vi.type);
      out.Set("capacity", static_cast<double>(vi.capacity));
      out.Set("allocation", static_cast<double>(vi.allocation));
      return out;
    };
  });
}

Napi::Value StorageVol::GetXMLDesc(const Napi::CallbackInfo& info) {
  return Run(info.Env(), [vol = Share(info.Env())]() -> Resolve {
    return String(Check(virStorageVolGetXMLDesc(vol.get(), 0), "virStorageVolGetXMLDesc"));
  });
}

// wipe(algorithm = VIR_STORAGE_VOL_WIPE_ALG_ZERO)
Napi::Value StorageVol::Wipe(const Napi::CallbackInfo& info) {
  unsigned int algorithm =
      info[0].IsUndefined() ? static_cast<unsigned int>(VIR_STORAGE_VOL_WIPE_ALG_ZERO) : FlagsArg(info, 0);
  return RunLong(info.Env(), [vol = Share(info.Env()), algorithm]() -> Resolve {
    Check(virStorageVolWipePattern(vol.get(), algorithm, 0), "virStorageVolWipePattern");
    return Undefined;
  });
}

Napi::Value StorageVol::Delete(const Napi::CallbackInfo& info) {
  unsigned int flags = FlagsArg(info, 0);
  return Run(info.Env(), [vol = Share(info.Env()), flags]() -> Resolve {
    Check(virStorageVolDelete(vol.get(), flags), "virStorageVolDelete");
    return Undefined;
  });
}

namespace {

// Frees a stream on every path, aborting it unless it was finished.
struct StreamGuard {
  virStreamPtr stream;
  bool finished = false;
  ~StreamGuard() {
    if (!finished) virStreamAbort(stream);
    virStreamFree(stream);
  }
};

constexpr size_t kChunk = 1 << 20;

}  // namespace

// uploadZeros(offset, length): writes zeros over [offset, offset + length) through a stream,
// for pools that cannot wipe. The caller walks the volume in windows to report progress.
Napi::Value StorageVol::UploadZeros(const Napi::CallbackInfo& info) {
  uint64_t offset = SizeArg(info, 0, "offset");
  uint64_t length = SizeArg(info, 1, "length");
  return RunLong(info.Env(), [vol = Share(info.Env()), offset, length]() -> Resolve {
    virConnectPtr conn = Check(virStorageVolGetConnect(vol.get()), "virStorageVolGetConnect");
    StreamGuard guard{Check(virStreamNew(conn, 0), "virStreamNew")};
    Check(virStorageVolUpload(vol.get(), guard.stream, offset, length, 0), "virStorageVolUpload");
    static const std::vector<char> zeros(kChunk, 0);
    for (uint64_t left = length; left > 0;) {
      size_t n = static_cast<size_t>(std::min<uint64_t>(left, kChunk));
      int sent = Check(virStreamSend(guard.stream, zeros.data(), n), "virStreamSend");
      left -= static_cast<uint64_t>(sent);
    }
    Check(virStreamFinish(guard.stream), "virStreamFinish");
    guard.finished = true;
    return Undefined;
  });
}

}  // namespace vagoth
