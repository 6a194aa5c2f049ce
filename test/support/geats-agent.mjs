#!/usr/bin/env node
// A stand-in for a geats host's JSON agent, for tests: one request on stdin, one answer on
// stdout, as sippeproject/geats's agent and vagoth's geatslocal driver speak it. Plain Node,
// no dependencies, so it runs wherever the driver can spawn it (locally or behind SSH).
//
// The host lives in a directory (argv[2] or GEATS_STATE_DIR) that outlasts each run, as a real
// host's database does: `host.json` holds the VMs, their storage and the host's figures.
// `faults.json` (optional) lists answers a test wants instead, each
// `{ action: '<action>' | '*', vm?, mode, errorcode?, message?, answer?, times? }` with mode
// 'error' | 'crash' | 'garbage' | 'answer' | 'hang' | 'ignore' (answer success, change nothing).
// `calls.log` gets one line per request. A migration moves the VM into the state of the host
// named `vm_destination`: `host.peers[name]`, or the directory of that name next to this one.
import {
  appendFileSync,
  existsSync,
  mkdirSync,
  readFileSync,
  renameSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import path from 'node:path';
import { setInterval } from 'node:timers';

const dir = process.argv[2] ?? process.env.GEATS_STATE_DIR;
if (!dir) {
  process.stderr.write('usage: geats-agent.mjs <state-dir> (or GEATS_STATE_DIR)\n');
  process.exit(5);
}

/** An answer the protocol defines as a failure; the class names are geats's exceptions. */
class GeatsError extends Error {
  constructor(errorcode, message) {
    super(message);
    this.errorcode = errorcode;
  }
}

const readJson = (file, fallback) => {
  try {
    return JSON.parse(readFileSync(path.join(dir, file), 'utf8'));
  } catch (err) {
    if (err.code === 'ENOENT') return fallback;
    throw err;
  }
};

const writeJson = (file, value, where = dir) => {
  const tmp = path.join(where, `.${file}.${process.pid}`);
  writeFileSync(tmp, JSON.stringify(value, null, 2));
  renameSync(tmp, path.join(where, file));
};

const sleepMs = (ms) => Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);

/** Geats serialises operations with lock files; a lock left by a killed agent is taken over. */
function withLock(where, fn) {
  const lock = path.join(where, 'lock');
  for (;;) {
    try {
      mkdirSync(lock);
      writeFileSync(path.join(lock, 'pid'), String(process.pid));
      break;
    } catch (err) {
      if (err.code !== 'EEXIST') throw err;
      let holder = 0;
      try {
        holder = Number(readFileSync(path.join(lock, 'pid'), 'utf8'));
        process.kill(holder, 0);
      } catch (gone) {
        if (holder && gone.code === 'ESRCH') rmSync(lock, { recursive: true, force: true });
      }
      sleepMs(5);
    }
  }
  try {
    return fn();
  } finally {
    rmSync(lock, { recursive: true, force: true });
  }
}

const emptyHost = () => ({
  host: { mem_total: 16 * 1024 * 1024, vm_types: ['kvm', 'lxc'], peers: {} },
  vms: {},
  volumes: {},
});

/** Takes the first fault that matches, counting down its `times`. */
function takeFault(action, vmName) {
  return withLock(dir, () => {
    const faults = readJson('faults.json', []);
    const i = faults.findIndex(
      (f) => (f.action === '*' || f.action === action) && (!f.vm || f.vm === vmName),
    );
    if (i < 0) return null;
    const fault = faults[i];
    if (fault.times !== undefined && --fault.times <= 0) faults.splice(i, 1);
    writeJson('faults.json', faults);
    return fault;
  });
}

function validate(state, vmName, definition) {
  if (typeof definition !== 'object' || definition === null || Array.isArray(definition))
    throw new GeatsError('InvalidVMDefinition', 'vm_definition parameter must be of type dict');
  definition.name ??= vmName;
  if (definition.name !== vmName)
    throw new GeatsError('InvalidVMDefinition', 'Name in VM definition differs from name in call');
  definition.description ??= definition.name;
  if (!definition.vm_type) throw new GeatsError('InvalidVMDefinition', 'No type set for VM');
  if (!state.host.vm_types.includes(definition.vm_type))
    throw new GeatsError('UnsupportedVMType', `Unsupported vm_type: ${definition.vm_type}`);
  for (const storage of definition.storage ?? []) {
    if (!storage.type) throw new GeatsError('VMException', 'Every storage entry must have a type.');
  }
}

/** Geats names a VM's storage volume `<vm>-<storage name>`. */
const volumeNames = (vm) =>
  (vm.definition.storage ?? []).map((s) => `${vm.definition.name}-${s.name ?? 'storage'}`);

function define(state, vmName, definition, provision) {
  validate(state, vmName, definition);
  if (state.vms[vmName])
    throw new GeatsError('AlreadyExistsException', `${vmName} already exists in datastore`);
  const vm = { definition, state: ['stopped', 'stopped'] };
  for (const name of volumeNames(vm)) {
    const installed = provision ? (definition.template ?? null) : null;
    state.volumes[name] ??= { vm: vmName, template: installed };
  }
  state.vms[vmName] = vm;
}

function required(state, vmName) {
  const vm = state.vms[vmName];
  if (!vm) throw new GeatsError('KeyError', `Unknown VM: ${vmName}`);
  return vm;
}

function migrate(state, vmName, destination) {
  const vm = required(state, vmName);
  // geats's AbstractVirtualMachine.migrate: a VM type that cannot move says so.
  if (state.host.migration === false) throw new GeatsError('NotImplementedError', '');
  // Hosts whose state lies next to this one's are its peers, by name.
  const sibling = /^[A-Za-z0-9][A-Za-z0-9_.-]*$/.test(destination)
    ? path.join(dir, '..', destination)
    : null;
  const peer =
    state.host.peers?.[destination] ??
    (sibling && existsSync(path.join(sibling, 'host.json')) ? sibling : null);
  if (!peer) throw new GeatsError('VMException', `Unknown destination host: ${destination}`);
  if (path.resolve(peer) === path.resolve(dir))
    throw new GeatsError('VMException', `${vmName} is already on ${destination}`);
  withLock(peer, () => {
    const target = JSON.parse(readFileSync(path.join(peer, 'host.json'), 'utf8'));
    if (target.vms[vmName])
      throw new GeatsError('AlreadyExistsException', `${vmName} already exists on ${destination}`);
    target.vms[vmName] = vm;
    for (const name of volumeNames(vm)) {
      target.volumes[name] = state.volumes[name];
      delete state.volumes[name];
    }
    writeJson('host.json', target, peer);
  });
  delete state.vms[vmName];
  return state.host.live_migration ? { live: true } : null;
}

function hostFigures(state) {
  const running = Object.values(state.vms).filter((vm) => vm.state[0] === 'running');
  const used = running.reduce((kB, vm) => kB + (vm.definition.ram ?? 0) * 1024, 0);
  const total = state.host.mem_total;
  const free = Math.max(0, total - used - 262144);
  return {
    mem_total: total,
    mem_free: free,
    mem_used: total - free,
    mem_buffers: 0,
    mem_cached: 0,
    swap_total: 0,
    swap_free: 0,
    swap_used: 0,
    load_avg: state.host.load_avg ?? [0.5, 0.25, 0.1],
  };
}

/** One action against the host's state; mutates it and returns the answer's data. */
function act(state, action, data) {
  const vmName = data.vm_name;
  if (action === 'status') return { vms: state.vms, status: hostFigures(state) };
  if (typeof vmName !== 'string') throw new GeatsError('MissingData', 'Missing vm_name parameter');
  const vm = state.vms[vmName];
  const setState = (s) => {
    required(state, vmName).state = [s, s];
  };
  switch (action) {
    case 'info':
      return required(state, vmName);
    case 'define':
    case 'provision':
      if (data.definition === undefined)
        throw new GeatsError('MissingData', 'Missing definition parameter');
      return define(state, vmName, data.definition, action === 'provision');
    case 'start':
    case 'reboot':
      return setState('running');
    case 'stop':
    case 'shutdown':
      return setState('stopped');
    case 'undefine':
      delete state.vms[vmName];
      return null;
    case 'deprovision':
      if (vm) for (const name of volumeNames(vm)) delete state.volumes[name];
      delete state.vms[vmName];
      return null;
    case 'migrate':
      if (typeof data.vm_destination !== 'string')
        throw new GeatsError('MissingData', 'Missing vm_destination parameter');
      return migrate(state, vmName, data.vm_destination);
    default:
      throw new GeatsError('UnknownAction', `Unknown action: ${action}`);
  }
}

function answer(request) {
  const { action, data = {} } = request;
  appendFileSync(
    path.join(dir, 'calls.log'),
    `${JSON.stringify({ pid: process.pid, action, vm: data.vm_name ?? null })}\n`,
  );
  const fault = takeFault(action, data.vm_name);
  if (fault?.mode === 'crash') {
    process.stderr.write('Traceback (most recent call last):\n  geats crashed\n');
    process.exit(fault.exitCode ?? 1);
  }
  if (fault?.mode === 'garbage') return process.stdout.write('<html>not json</html>\n');
  if (fault?.mode === 'answer') return process.stdout.write(`${JSON.stringify(fault.answer)}\n`);
  if (fault?.mode === 'hang') {
    writeFileSync(path.join(dir, `hung-${process.pid}`), action);
    return setInterval(() => {}, 60_000);
  }
  if (fault?.mode === 'error') throw new GeatsError(fault.errorcode, fault.message ?? 'injected');
  if (fault?.mode === 'ignore' && action !== 'status' && action !== 'info')
    return process.stdout.write(`${JSON.stringify({ success: true, data: null })}\n`);
  return withLock(dir, () => {
    const state = readJson('host.json', emptyHost());
    const result = act(state, action, data);
    writeJson('host.json', state);
    return process.stdout.write(`${JSON.stringify({ success: true, data: result ?? null })}\n`);
  });
}

const chunks = [];
process.stdin.setEncoding('utf8');
process.stdin.on('data', (chunk) => chunks.push(chunk));
process.stdin.on('end', () => {
  try {
    let request;
    try {
      request = JSON.parse(chunks.join(''));
    } catch {
      throw new GeatsError('InvalidData', 'the request is not a JSON document');
    }
    answer(request);
  } catch (err) {
    if (!(err instanceof GeatsError)) throw err;
    const failure = { success: false, errorcode: err.errorcode, message: err.message };
    process.stdout.write(`${JSON.stringify(failure)}\n`);
  }
});
