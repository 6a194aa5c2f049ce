#include <algorithm>
#include <cstdlib>
#include <memory>
#include <utility>
#include <vector>

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
                         InstanceMethod<&StorageVol::Download>("download"),
                         InstanceMethod<&StorageVol::DownloadSparse>("downloadSparse"),
                         InstanceMethod<&StorageVol::DataWindows>("dataWindows"),
                         InstanceMethod<&StorageVol::Upload>("upload"),
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

// A download's bytes, malloc'd off the main thread and handed to JavaScript as they are.
using Bytes = std::unique_ptr<char, decltype(&std::free)>;

Bytes Allocate(size_t size, bool zeroed) {
  void* p = zeroed ? std::calloc(size > 0 ? size : 1, 1) : std::malloc(size > 0 ? size : 1);
  if (p == nullptr) throw std::bad_alloc();
  return Bytes(static_cast<char*>(p), std::free);
}

// The first `length` bytes as a Buffer that owns them (no copy), freed when it is collected.
Napi::Value Hand(Napi::Env env, Bytes& bytes, size_t length) {
  char* data = bytes.release();
  return Napi::Buffer<char>::New(env, data, length, [](Napi::Env, char* p) { std::free(p); });
}

// A stream that broke its promise (more bytes than asked, an empty hole): libvirt set no error.
Failure StreamBroken(const char* message, const char* call) {
  VirError e;
  e.code = VIR_ERR_INTERNAL_ERROR;
  e.message = message;
  e.call = call;
  return Failure(e);
}

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

// download(offset, length): the bytes of [offset, offset + length) through one download
// stream, opened and finished within the call (virStorageVolDownload). The caller walks the
// volume in chunks of a few MiB, so each call is short and may wait on libuv's pool, and no
// stream outlives a call: a worker lost mid-copy leaves none open on the host.
Napi::Value StorageVol::Download(const Napi::CallbackInfo& info) {
  uint64_t offset = SizeArg(info, 0, "offset");
  uint64_t length = SizeArg(info, 1, "length");
  return Run(info.Env(), [vol = Share(info.Env()), offset, length]() -> Resolve {
    virConnectPtr conn = Check(virStorageVolGetConnect(vol.get()), "virStorageVolGetConnect");
    StreamGuard guard{Check(virStreamNew(conn, 0), "virStreamNew")};
    Check(virStorageVolDownload(vol.get(), guard.stream, offset, length, 0),
          "virStorageVolDownload");
    // Not zeroed: every byte handed on was received.
    Bytes bytes = Allocate(static_cast<size_t>(length), false);
    size_t size = static_cast<size_t>(length);
    size_t got = 0;
    for (;;) {
      size_t room = size - got;
      // At the end of the data libvirt answers 0; a full buffer asks once more to see the end.
      char probe;
      int n = room > 0 ? Check(virStreamRecv(guard.stream, bytes.get() + got, room),
                               "virStreamRecv")
                       : Check(virStreamRecv(guard.stream, &probe, 1), "virStreamRecv");
      if (n == 0) break;
      if (room == 0) {
        throw StreamBroken("virStorageVolDownload sent more bytes than asked", "virStreamRecv");
      }
      got += static_cast<size_t>(n);
    }
    Check(virStreamFinish(guard.stream), "virStreamFinish");
    guard.finished = true;
    return [bytes = std::make_shared<Bytes>(std::move(bytes)), got](Napi::Env env) {
      return Hand(env, *bytes, got);
    };
  });
}

namespace {

// Reads [offset, offset + length) of `vol` through one sparse download stream
// (VIR_STORAGE_VOL_DOWNLOAD_SPARSE_STREAM): the host reads and sends only the volume's data,
// and tells where its holes are. Each run of data is received where `into(at)` says (a place
// and how many bytes fit there, `at` counted from `offset`; none once the window is full, when
// one byte more is asked for to see the end) and handed to `took(at, n)`; each hole is
// skipped. Answers how far into the window the stream reached. A stream that sends more than
// the window holds, or an empty hole, is broken.
template <typename Into, typename Took>
uint64_t ReceiveSparse(virStorageVolPtr vol, uint64_t offset, uint64_t length, Into into,
                       Took took) {
  virConnectPtr conn = Check(virStorageVolGetConnect(vol), "virStorageVolGetConnect");
  StreamGuard guard{Check(virStreamNew(conn, 0), "virStreamNew")};
  Check(virStorageVolDownload(vol, guard.stream, offset, length,
                              VIR_STORAGE_VOL_DOWNLOAD_SPARSE_STREAM),
        "virStorageVolDownload");
  const char* overrun = "virStorageVolDownload sent more bytes than asked";
  uint64_t at = 0;
  for (;;) {
    auto [place, room] = into(at);
    char probe;
    int n = virStreamRecvFlags(guard.stream, room > 0 ? place : &probe, room > 0 ? room : 1,
                               VIR_STREAM_RECV_STOP_AT_HOLE);
    if (n == -3) {
      long long hole = 0;
      Check(virStreamRecvHole(guard.stream, &hole, 0), "virStreamRecvHole");
      // A hole of nothing would be asked for again and again: a protocol error, not a loop.
      if (hole <= 0) {
        throw StreamBroken("virStreamRecvHole answered an empty hole", "virStreamRecvHole");
      }
      if (static_cast<uint64_t>(hole) > length - at) {
        throw StreamBroken(overrun, "virStreamRecvHole");
      }
      at += static_cast<uint64_t>(hole);
      continue;
    }
    Check(n, "virStreamRecvFlags");
    if (n == 0) break;
    if (room == 0) throw StreamBroken(overrun, "virStreamRecvFlags");
    took(at, static_cast<uint64_t>(n));
    at += static_cast<uint64_t>(n);
  }
  Check(virStreamFinish(guard.stream), "virStreamFinish");
  guard.finished = true;
  return at;
}

}  // namespace

// downloadSparse(offset, length): as download, through a sparse stream (ReceiveSparse).
// Answers the window's length and its bytes (zero in its holes), or no bytes at all for a
// window all hole: a copy then neither reads, sends nor hashes it.
Napi::Value StorageVol::DownloadSparse(const Napi::CallbackInfo& info) {
  uint64_t offset = SizeArg(info, 0, "offset");
  uint64_t length = SizeArg(info, 1, "length");
  return Run(info.Env(), [vol = Share(info.Env()), offset, length]() -> Resolve {
    // calloc: fresh pages read zero without being written, so a hole costs nothing here.
    size_t size = static_cast<size_t>(length);
    Bytes bytes = Allocate(size, true);
    bool data = false;
    uint64_t at = ReceiveSparse(
        vol.get(), offset, length,
        [&](uint64_t at) { return std::pair(bytes.get() + at, size - static_cast<size_t>(at)); },
        [&](uint64_t, uint64_t) { data = true; });
    return [bytes = std::make_shared<Bytes>(std::move(bytes)), at, data](Napi::Env env) {
      Napi::Object out = Napi::Object::New(env);
      out.Set("length", static_cast<double>(at));
      if (data) out.Set("data", Hand(env, *bytes, static_cast<size_t>(at)));
      return out;
    };
  });
}

// dataWindows(offset, length, window): where [offset, offset + length) holds data, through one
// sparse stream (ReceiveSparse) whose bytes are read into a small buffer and dropped: the
// offsets of the `window`-aligned windows (counted from 0) that hold any data, and how many
// bytes were data. Holes are the file's own (SEEK_HOLE). Nothing of the volume is held in
// memory, whatever its size.
Napi::Value StorageVol::DataWindows(const Napi::CallbackInfo& info) {
  uint64_t offset = SizeArg(info, 0, "offset");
  uint64_t length = SizeArg(info, 1, "length");
  uint64_t window = SizeArg(info, 2, "window");
  if (window == 0) throw Napi::RangeError::New(info.Env(), "window must be positive");
  return Run(info.Env(), [vol = Share(info.Env()), offset, length, window]() -> Resolve {
    std::vector<char> scratch(kChunk);
    std::vector<uint64_t> windows;
    uint64_t dataBytes = 0;
    ReceiveSparse(
        vol.get(), offset, length,
        [&](uint64_t at) {
          return std::pair(scratch.data(), std::min<size_t>(scratch.size(), length - at));
        },
        [&](uint64_t at, uint64_t got) {
          // Every window the run touches, once each (runs come in order).
          uint64_t from = offset + at;
          for (uint64_t w = from / window * window; w < from + got; w += window) {
            if (windows.empty() || windows.back() < w) windows.push_back(w);
          }
          dataBytes += got;
        });
    return [windows = std::move(windows), dataBytes](Napi::Env env) -> Napi::Value {
      Napi::Object out = Napi::Object::New(env);
      Napi::Array list = Napi::Array::New(env, windows.size());
      for (size_t i = 0; i < windows.size(); i++) {
        list.Set(static_cast<uint32_t>(i), static_cast<double>(windows[i]));
      }
      out.Set("windows", list);
      out.Set("dataBytes", static_cast<double>(dataBytes));
      return out;
    };
  });
}

// upload(offset, buffer): writes the buffer's bytes at offset through one upload stream,
// opened and finished within the call (virStorageVolUpload). The bytes are copied before the
// call leaves the main thread, so the caller may reuse its buffer at once.
Napi::Value StorageVol::Upload(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  uint64_t offset = SizeArg(info, 0, "offset");
  if (info.Length() < 2 || !info[1].IsBuffer()) {
    throw Napi::TypeError::New(env, "data must be a Buffer");
  }
  auto source = info[1].As<Napi::Buffer<char>>();
  auto bytes = std::make_shared<std::vector<char>>(source.Data(), source.Data() + source.Length());
  return Run(env, [vol = Share(env), offset, bytes]() -> Resolve {
    virConnectPtr conn = Check(virStorageVolGetConnect(vol.get()), "virStorageVolGetConnect");
    StreamGuard guard{Check(virStreamNew(conn, 0), "virStreamNew")};
    Check(virStorageVolUpload(vol.get(), guard.stream, offset, bytes->size(), 0),
          "virStorageVolUpload");
    for (size_t sent = 0; sent < bytes->size();) {
      size_t n = std::min(bytes->size() - sent, kChunk);
      sent += static_cast<size_t>(
          Check(virStreamSend(guard.stream, bytes->data() + sent, n), "virStreamSend"));
    }
    Check(virStreamFinish(guard.stream), "virStreamFinish");
    guard.finished = true;
    return Undefined;
  });
}

}  // namespace vagoth
