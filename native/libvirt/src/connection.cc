#include <cstring>

#include "objects.h"

namespace vagoth {

Napi::Function Connection::Define(Napi::Env env) {
  return DefineClass(env, "Connection",
                     {
                         InstanceAccessor("uri", &Connection::GetName, nullptr),
                         InstanceMethod<&Connection::Close>("close"),
                         InstanceMethod<&Connection::IsAlive>("isAlive"),
                         InstanceMethod<&Connection::NodeGetInfo>("nodeGetInfo"),
                         InstanceMethod<&Connection::NodeFreeMemory>("nodeFreeMemory"),
                         InstanceMethod<&Connection::GetCapabilities>("getCapabilities"),
                         InstanceMethod<&Connection::ListAllDomains>("listAllDomains"),
                         InstanceMethod<&Connection::LookupDomainByName>("lookupDomainByName"),
                         InstanceMethod<&Connection::DefineDomainXML>("defineDomainXML"),
                         InstanceMethod<&Connection::LookupStoragePoolByName>(
                             "lookupStoragePoolByName"),
                     });
}

Napi::Value Connection::Open(const Napi::CallbackInfo& info) {
  std::string uri = StringArg(info, 0, "uri");
  bool readOnly = info[1].IsBoolean() && info[1].As<Napi::Boolean>().Value();
  // An SSH connect can hang for its whole timeout: a thread of its own.
  return RunLong(info.Env(), [uri, readOnly]() -> Resolve {
    virConnectPtr conn = readOnly ? virConnectOpenReadOnly(uri.c_str())
                                  : virConnectOpen(uri.c_str());
    Check(conn, "virConnectOpen");
    // Probe every 5 s, give up after 3 unanswered: calls then fail instead of hanging. Local
    // drivers (test://) have no keepalive, which is fine.
    if (virConnectSetKeepAlive(conn, 5, 3) < 0) virResetLastError();
    auto found = std::make_shared<Found<virConnectPtr>>(conn, uri, "");
    return [found](Napi::Env env) { return From(env, found, std::make_shared<bool>(true)); };
  });
}

// The JS object lets go of its reference now; the connection really closes in the worker, or
// when the last call still using it finishes.
Napi::Value Connection::Close(const Napi::CallbackInfo& info) {
  if (alive_) *alive_ = false;
  Owned<virConnectPtr> conn(std::exchange(ptr_, nullptr));
  return Run(info.Env(), [conn = std::move(conn)]() mutable -> Resolve {
    if (conn.get() != nullptr) Check(virConnectClose(conn.release()), "virConnectClose");
    return Undefined;
  });
}

Napi::Value Connection::IsAlive(const Napi::CallbackInfo& info) {
  return Run(info.Env(), [conn = Share(info.Env())]() -> Resolve {
    bool alive = Check(virConnectIsAlive(conn.get()), "virConnectIsAlive") == 1;
    return [alive](Napi::Env env) { return Napi::Boolean::New(env, alive); };
  });
}

Napi::Value Connection::NodeGetInfo(const Napi::CallbackInfo& info) {
  return Run(info.Env(), [conn = Share(info.Env())]() -> Resolve {
    virNodeInfo node;
    Check(virNodeGetInfo(conn.get(), &node), "virNodeGetInfo");
    return [node](Napi::Env env) {
      Napi::Object out = Napi::Object::New(env);
      out.Set("model", std::string(node.model, strnlen(node.model, sizeof node.model)));
      out.Set("memoryKiB", static_cast<double>(node.memory));
      out.Set("cpus", node.cpus);
      out.Set("mhz", node.mhz);
      out.Set("nodes", node.nodes);
      out.Set("sockets", node.sockets);
      out.Set("cores", node.cores);
      out.Set("threads", node.threads);
      return out;
    };
  });
}

// The host's capabilities XML: its <host><uuid> tells one hypervisor from another.
Napi::Value Connection::GetCapabilities(const Napi::CallbackInfo& info) {
  return Run(info.Env(), [conn = Share(info.Env())]() -> Resolve {
    char* raw = Check(virConnectGetCapabilities(conn.get()), "virConnectGetCapabilities");
    std::string xml(raw);
    free(raw);
    return [xml](Napi::Env env) { return Napi::String::New(env, xml); };
  });
}

namespace {

// free + buffers + cached over all NUMA cells, in KiB; nullopt where the driver has no stats.
std::optional<unsigned long long> MemoryStatsKiB(virConnectPtr conn) {
  int count = 0;
  if (virNodeGetMemoryStats(conn, VIR_NODE_MEMORY_STATS_ALL_CELLS, nullptr, &count, 0) < 0 ||
      count <= 0) {
    virResetLastError();
    return std::nullopt;
  }
  std::vector<virNodeMemoryStats> stats(count);
  if (virNodeGetMemoryStats(conn, VIR_NODE_MEMORY_STATS_ALL_CELLS, stats.data(), &count, 0) < 0) {
    virResetLastError();
    return std::nullopt;
  }
  unsigned long long kib = 0;
  for (int i = 0; i < count; i++) {
    const char* field = stats[i].field;
    if (strcmp(field, VIR_NODE_MEMORY_STATS_FREE) == 0 ||
        strcmp(field, VIR_NODE_MEMORY_STATS_BUFFERS) == 0 ||
        strcmp(field, VIR_NODE_MEMORY_STATS_CACHED) == 0) {
      kib += stats[i].value;
    }
  }
  return kib;
}

}  // namespace

Napi::Value Connection::NodeFreeMemory(const Napi::CallbackInfo& info) {
  return Run(info.Env(), [conn = Share(info.Env())]() -> Resolve {
    std::optional<unsigned long long> kib = MemoryStatsKiB(conn.get());
    unsigned long long bytes;
    const char* source = "stats";
    if (kib) {
      bytes = *kib * 1024;
    } else {
      // NUMA cells' free pages only: lower than what the host could really give a guest.
      source = "cells";
      bytes = virNodeGetFreeMemory(conn.get());
      virErrorPtr err = virGetLastError();
      if (bytes == 0 && err != nullptr && err->code != VIR_ERR_OK) {
        ThrowLastError("virNodeGetFreeMemory");
      }
    }
    return [bytes, source](Napi::Env env) {
      Napi::Object out = Napi::Object::New(env);
      out.Set("bytes", static_cast<double>(bytes));
      out.Set("source", source);
      return out;
    };
  });
}

Napi::Value Connection::ListAllDomains(const Napi::CallbackInfo& info) {
  unsigned int flags = FlagsArg(info, 0);
  return Run(info.Env(), [conn = Share(info.Env()), alive = alive_, flags]() -> Resolve {
    virDomainPtr* domains = nullptr;
    int count = Check(virConnectListAllDomains(conn.get(), &domains, flags),
                      "virConnectListAllDomains");
    std::vector<FoundPtr<virDomainPtr>> found;
    // Adopt every reference before anything can throw, so none leaks.
    std::vector<Owned<virDomainPtr>> refs;
    for (int i = 0; i < count; i++) refs.emplace_back(domains[i]);
    free(domains);
    for (auto& ref : refs) found.push_back(FoundDomain(ref.release()));
    return [found, alive](Napi::Env env) { return Domain::FromList(env, found, alive); };
  });
}

Napi::Value Connection::LookupDomainByName(const Napi::CallbackInfo& info) {
  std::string name = StringArg(info, 0, "name");
  return Run(info.Env(), [conn = Share(info.Env()), alive = alive_, name]() -> Resolve {
    auto found = FoundDomain(
        Check(virDomainLookupByName(conn.get(), name.c_str()), "virDomainLookupByName"));
    return [found, alive](Napi::Env env) { return Domain::From(env, found, alive); };
  });
}

Napi::Value Connection::DefineDomainXML(const Napi::CallbackInfo& info) {
  std::string xml = StringArg(info, 0, "xml");
  unsigned int flags = FlagsArg(info, 1);
  return Run(info.Env(), [conn = Share(info.Env()), alive = alive_, xml, flags]() -> Resolve {
    auto found = FoundDomain(Check(virDomainDefineXMLFlags(conn.get(), xml.c_str(), flags),
                                   "virDomainDefineXMLFlags"));
    return [found, alive](Napi::Env env) { return Domain::From(env, found, alive); };
  });
}

Napi::Value Connection::LookupStoragePoolByName(const Napi::CallbackInfo& info) {
  std::string name = StringArg(info, 0, "name");
  return Run(info.Env(), [conn = Share(info.Env()), alive = alive_, name]() -> Resolve {
    auto found = FoundPool(Check(virStoragePoolLookupByName(conn.get(), name.c_str()),
                                 "virStoragePoolLookupByName"));
    return [found, alive](Napi::Env env) { return StoragePool::From(env, found, alive); };
  });
}

}  // namespace vagoth
