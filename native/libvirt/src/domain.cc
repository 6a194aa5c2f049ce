#include "objects.h"

namespace vagoth {

FoundPtr<virDomainPtr> FoundDomain(virDomainPtr adopted) {
  Owned<virDomainPtr> ref(adopted);
  const char* name = Check(virDomainGetName(adopted), "virDomainGetName");
  char uuid[VIR_UUID_STRING_BUFLEN];
  Check(virDomainGetUUIDString(adopted, uuid), "virDomainGetUUIDString");
  return std::make_shared<Found<virDomainPtr>>(ref.release(), name, uuid);
}

Napi::Function Domain::Define(Napi::Env env) {
  return DefineClass(env, "Domain",
                     {
                         InstanceAccessor("name", &Domain::GetName, nullptr),
                         InstanceAccessor("uuid", &Domain::GetId, nullptr),
                         InstanceMethod<&Domain::GetInfo>("getInfo"),
                         InstanceMethod<&Domain::GetState>("getState"),
                         InstanceMethod<&Domain::GetXMLDesc>("getXMLDesc"),
                         InstanceMethod<&Domain::Create>("create"),
                         InstanceMethod<&Domain::Destroy>("destroy"),
                         InstanceMethod<&Domain::Shutdown>("shutdown"),
                         InstanceMethod<&Domain::Reboot>("reboot"),
                         InstanceMethod<&Domain::Undefine>("undefine"),
                         InstanceMethod<&Domain::Migrate>("migrate"),
                         InstanceMethod("free", &Domain::Free),
                     });
}

Napi::Value Domain::GetInfo(const Napi::CallbackInfo& info) {
  return Run(info.Env(), [dom = Share(info.Env())]() -> Resolve {
    virDomainInfo di;
    Check(virDomainGetInfo(dom.get(), &di), "virDomainGetInfo");
    return [di](Napi::Env env) {
      Napi::Object out = Napi::Object::New(env);
      out.Set("state", static_cast<int>(di.state));
      out.Set("maxMemKiB", static_cast<double>(di.maxMem));
      out.Set("memoryKiB", static_cast<double>(di.memory));
      out.Set("vcpus", static_cast<int>(di.nrVirtCpu));
      out.Set("cpuTimeNs", static_cast<double>(di.cpuTime));
      return out;
    };
  });
}

Napi::Value Domain::GetState(const Napi::CallbackInfo& info) {
  return Run(info.Env(), [dom = Share(info.Env())]() -> Resolve {
    int state = 0;
    int reason = 0;
    Check(virDomainGetState(dom.get(), &state, &reason, 0), "virDomainGetState");
    return [state, reason](Napi::Env env) {
      Napi::Object out = Napi::Object::New(env);
      out.Set("state", state);
      out.Set("reason", reason);
      return out;
    };
  });
}

Napi::Value Domain::GetXMLDesc(const Napi::CallbackInfo& info) {
  unsigned int flags = FlagsArg(info, 0);
  return Run(info.Env(), [dom = Share(info.Env()), flags]() -> Resolve {
    char* raw = Check(virDomainGetXMLDesc(dom.get(), flags), "virDomainGetXMLDesc");
    std::string xml(raw);
    free(raw);
    return [xml](Napi::Env env) { return Napi::String::New(env, xml); };
  });
}

namespace {

// The many libvirt domain calls of the shape int f(virDomainPtr, unsigned int flags).
template <int (*Call)(virDomainPtr, unsigned int)>
Napi::Value FlagsCall(Napi::Env env, Owned<virDomainPtr> dom, unsigned int flags, const char* name) {
  return Run(env, [dom = std::move(dom), flags, name]() -> Resolve {
    Check(Call(dom.get(), flags), name);
    return Undefined;
  });
}

}  // namespace

Napi::Value Domain::Create(const Napi::CallbackInfo& info) {
  return FlagsCall<virDomainCreateWithFlags>(info.Env(), Share(info.Env()), FlagsArg(info, 0),
                                             "virDomainCreateWithFlags");
}

Napi::Value Domain::Destroy(const Napi::CallbackInfo& info) {
  return FlagsCall<virDomainDestroyFlags>(info.Env(), Share(info.Env()), FlagsArg(info, 0),
                                          "virDomainDestroyFlags");
}

Napi::Value Domain::Shutdown(const Napi::CallbackInfo& info) {
  return FlagsCall<virDomainShutdownFlags>(info.Env(), Share(info.Env()), FlagsArg(info, 0),
                                           "virDomainShutdownFlags");
}

Napi::Value Domain::Reboot(const Napi::CallbackInfo& info) {
  return FlagsCall<virDomainReboot>(info.Env(), Share(info.Env()), FlagsArg(info, 0),
                                    "virDomainReboot");
}

Napi::Value Domain::Undefine(const Napi::CallbackInfo& info) {
  return FlagsCall<virDomainUndefineFlags>(info.Env(), Share(info.Env()), FlagsArg(info, 0),
                                           "virDomainUndefineFlags");
}

namespace {

struct MigrateParams {
  std::optional<std::string> uri, destName, destXml, persistentXml;
};

}  // namespace

// migrate(dest: Connection, flags, { uri?, destName?, destXml?, persistentXml? }) -> Domain on dest
Napi::Value Domain::Migrate(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Connection* destination = Connection::FromArg(info, 0, "dest");
  Owned<virConnectPtr> dest = destination->Share(env);
  Alive alive = destination->alive();
  unsigned int flags = FlagsArg(info, 1);
  MigrateParams params;
  if (info[2].IsObject()) {
    Napi::Object options = info[2].As<Napi::Object>();
    params.uri = OptionalString(options, "uri");
    params.destName = OptionalString(options, "destName");
    params.destXml = OptionalString(options, "destXml");
    params.persistentXml = OptionalString(options, "persistentXml");
  }
  return RunLong(env, [dom = Share(env), dest = std::move(dest), alive, flags,
                       params]() -> Resolve {
    virTypedParameterPtr typed = nullptr;
    int count = 0;
    int max = 0;
    auto add = [&](const char* field, const std::optional<std::string>& value) {
      if (value && virTypedParamsAddString(&typed, &count, &max, field, value->c_str()) < 0) {
        virTypedParamsFree(typed, count);
        ThrowLastError("virTypedParamsAddString");
      }
    };
    add(VIR_MIGRATE_PARAM_URI, params.uri);
    add(VIR_MIGRATE_PARAM_DEST_NAME, params.destName);
    add(VIR_MIGRATE_PARAM_DEST_XML, params.destXml);
    add(VIR_MIGRATE_PARAM_PERSIST_XML, params.persistentXml);
    virDomainPtr moved = virDomainMigrate3(dom.get(), dest.get(), typed, count, flags);
    if (moved == nullptr) {
      try {
        ThrowLastError("virDomainMigrate3");
      } catch (...) {
        virTypedParamsFree(typed, count);
        throw;
      }
    }
    virTypedParamsFree(typed, count);
    auto found = FoundDomain(moved);
    return [found, alive](Napi::Env env) { return Domain::From(env, found, alive); };
  });
}

}  // namespace vagoth
