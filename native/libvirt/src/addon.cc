// Entry point: libvirt initialised once, its stderr printing silenced (errors reach JS as
// rejections instead), the classes registered per Node environment, and the constants the
// TypeScript wrapper uses taken from the headers rather than copied by hand.
#include <mutex>
#include <thread>

#include "objects.h"

namespace vagoth {
namespace {

void Silent(void*, virErrorPtr) {}

// libvirt's own event loop, on a thread of its own, for keepalive: without it a remote
// connection whose host died is only noticed when TCP gives up, minutes later.
void StartEventLoop() {
  static std::once_flag once;
  std::call_once(once, [] {
    if (virEventRegisterDefaultImpl() < 0) ThrowLastError("virEventRegisterDefaultImpl");
    std::thread([] {
      for (;;) {
        if (virEventRunDefaultImpl() < 0) virResetLastError();
      }
    }).detach();
  });
}

Napi::Object Constants(Napi::Env env) {
  Napi::Object c = Napi::Object::New(env);
#define VAGOTH_CONSTANT(name) c.Set(#name, static_cast<double>(name))
  // virErrorNumber
  VAGOTH_CONSTANT(VIR_ERR_OK);
  VAGOTH_CONSTANT(VIR_ERR_INTERNAL_ERROR);
  VAGOTH_CONSTANT(VIR_ERR_NO_MEMORY);
  VAGOTH_CONSTANT(VIR_ERR_NO_SUPPORT);
  VAGOTH_CONSTANT(VIR_ERR_UNKNOWN_HOST);
  VAGOTH_CONSTANT(VIR_ERR_NO_CONNECT);
  VAGOTH_CONSTANT(VIR_ERR_INVALID_CONN);
  VAGOTH_CONSTANT(VIR_ERR_INVALID_ARG);
  VAGOTH_CONSTANT(VIR_ERR_OPERATION_FAILED);
  VAGOTH_CONSTANT(VIR_ERR_NO_KERNEL);
  VAGOTH_CONSTANT(VIR_ERR_NO_OS);
  VAGOTH_CONSTANT(VIR_ERR_XML_ERROR);
  VAGOTH_CONSTANT(VIR_ERR_DOM_EXIST);
  VAGOTH_CONSTANT(VIR_ERR_OPERATION_DENIED);
  VAGOTH_CONSTANT(VIR_ERR_OPEN_FAILED);
  VAGOTH_CONSTANT(VIR_ERR_XML_DETAIL);
  VAGOTH_CONSTANT(VIR_ERR_SYSTEM_ERROR);
  VAGOTH_CONSTANT(VIR_ERR_RPC);
  VAGOTH_CONSTANT(VIR_ERR_NO_DOMAIN);
  VAGOTH_CONSTANT(VIR_ERR_NO_NETWORK);
  VAGOTH_CONSTANT(VIR_ERR_INVALID_MAC);
  VAGOTH_CONSTANT(VIR_ERR_AUTH_FAILED);
  VAGOTH_CONSTANT(VIR_ERR_NO_STORAGE_POOL);
  VAGOTH_CONSTANT(VIR_ERR_NO_STORAGE_VOL);
  VAGOTH_CONSTANT(VIR_ERR_OPERATION_INVALID);
  VAGOTH_CONSTANT(VIR_ERR_CONFIG_UNSUPPORTED);
  VAGOTH_CONSTANT(VIR_ERR_OPERATION_TIMEOUT);
  VAGOTH_CONSTANT(VIR_ERR_MIGRATE_PERSIST_FAILED);
  VAGOTH_CONSTANT(VIR_ERR_ARGUMENT_UNSUPPORTED);
  VAGOTH_CONSTANT(VIR_ERR_OPERATION_ABORTED);
  VAGOTH_CONSTANT(VIR_ERR_MIGRATE_UNSAFE);
  VAGOTH_CONSTANT(VIR_ERR_OPERATION_UNSUPPORTED);
  VAGOTH_CONSTANT(VIR_ERR_SSH);
  VAGOTH_CONSTANT(VIR_ERR_AGENT_UNRESPONSIVE);
  VAGOTH_CONSTANT(VIR_ERR_RESOURCE_BUSY);
  VAGOTH_CONSTANT(VIR_ERR_ACCESS_DENIED);
  VAGOTH_CONSTANT(VIR_ERR_STORAGE_VOL_EXIST);
  VAGOTH_CONSTANT(VIR_ERR_XML_INVALID_SCHEMA);
  VAGOTH_CONSTANT(VIR_ERR_AUTH_UNAVAILABLE);
  VAGOTH_CONSTANT(VIR_ERR_LIBSSH);
  VAGOTH_CONSTANT(VIR_ERR_NO_HOSTNAME);
  // virErrorDomain (where an error came from)
  VAGOTH_CONSTANT(VIR_FROM_NONE);
  VAGOTH_CONSTANT(VIR_FROM_RPC);
  VAGOTH_CONSTANT(VIR_FROM_REMOTE);
  VAGOTH_CONSTANT(VIR_FROM_SSH);
  VAGOTH_CONSTANT(VIR_FROM_LIBSSH);
  VAGOTH_CONSTANT(VIR_FROM_TEST);
  VAGOTH_CONSTANT(VIR_FROM_QEMU);
  VAGOTH_CONSTANT(VIR_FROM_DOMAIN);
  VAGOTH_CONSTANT(VIR_FROM_STORAGE);
  // virDomainState
  VAGOTH_CONSTANT(VIR_DOMAIN_NOSTATE);
  VAGOTH_CONSTANT(VIR_DOMAIN_RUNNING);
  VAGOTH_CONSTANT(VIR_DOMAIN_BLOCKED);
  VAGOTH_CONSTANT(VIR_DOMAIN_PAUSED);
  VAGOTH_CONSTANT(VIR_DOMAIN_SHUTDOWN);
  VAGOTH_CONSTANT(VIR_DOMAIN_SHUTOFF);
  VAGOTH_CONSTANT(VIR_DOMAIN_CRASHED);
  VAGOTH_CONSTANT(VIR_DOMAIN_PMSUSPENDED);
  // flags
  VAGOTH_CONSTANT(VIR_CONNECT_LIST_DOMAINS_ACTIVE);
  VAGOTH_CONSTANT(VIR_CONNECT_LIST_DOMAINS_INACTIVE);
  VAGOTH_CONSTANT(VIR_DOMAIN_DEFINE_VALIDATE);
  VAGOTH_CONSTANT(VIR_DOMAIN_XML_SECURE);
  VAGOTH_CONSTANT(VIR_DOMAIN_XML_INACTIVE);
  VAGOTH_CONSTANT(VIR_DOMAIN_XML_MIGRATABLE);
  VAGOTH_CONSTANT(VIR_DOMAIN_SHUTDOWN_DEFAULT);
  VAGOTH_CONSTANT(VIR_DOMAIN_SHUTDOWN_ACPI_POWER_BTN);
  VAGOTH_CONSTANT(VIR_DOMAIN_REBOOT_DEFAULT);
  VAGOTH_CONSTANT(VIR_DOMAIN_UNDEFINE_MANAGED_SAVE);
  VAGOTH_CONSTANT(VIR_DOMAIN_UNDEFINE_SNAPSHOTS_METADATA);
  VAGOTH_CONSTANT(VIR_DOMAIN_UNDEFINE_NVRAM);
  VAGOTH_CONSTANT(VIR_DOMAIN_UNDEFINE_CHECKPOINTS_METADATA);
  VAGOTH_CONSTANT(VIR_MIGRATE_LIVE);
  VAGOTH_CONSTANT(VIR_MIGRATE_PEER2PEER);
  VAGOTH_CONSTANT(VIR_MIGRATE_PERSIST_DEST);
  VAGOTH_CONSTANT(VIR_MIGRATE_UNDEFINE_SOURCE);
  VAGOTH_CONSTANT(VIR_MIGRATE_NON_SHARED_DISK);
  VAGOTH_CONSTANT(VIR_MIGRATE_NON_SHARED_INC);
  VAGOTH_CONSTANT(VIR_MIGRATE_OFFLINE);
  VAGOTH_CONSTANT(VIR_STORAGE_VOL_WIPE_ALG_ZERO);
  VAGOTH_CONSTANT(VIR_STORAGE_VOL_DELETE_NORMAL);
#undef VAGOTH_CONSTANT
  c.Freeze();
  return c;
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  if (virInitialize() < 0) ThrowLastError("virInitialize");
  // Process-wide: libvirt would otherwise print every error on stderr as well.
  virSetErrorFunc(nullptr, Silent);
  StartEventLoop();

  auto* addon = new Addon();
  env.SetInstanceData(addon);
  Napi::Function connection = Connection::Define(env);
  Napi::Function domain = Domain::Define(env);
  Napi::Function pool = StoragePool::Define(env);
  Napi::Function vol = StorageVol::Define(env);
  addon->connection = Napi::Persistent(connection);
  addon->domain = Napi::Persistent(domain);
  addon->pool = Napi::Persistent(pool);
  addon->vol = Napi::Persistent(vol);

  exports.Set("open", Napi::Function::New<Connection::Open>(env, "open"));
  exports.Set("Connection", connection);
  exports.Set("Domain", domain);
  exports.Set("StoragePool", pool);
  exports.Set("StorageVol", vol);
  exports.Set("constants", Constants(env));
  unsigned long version = 0;
  virGetVersion(&version, nullptr, nullptr);
  exports.Set("libvirtVersion", static_cast<double>(version));
  return exports;
}

}  // namespace
}  // namespace vagoth

static Napi::Object InitModule(Napi::Env env, Napi::Object exports) {
  return vagoth::Init(env, exports);
}

NODE_API_MODULE(vagoth_libvirt, InitModule)
