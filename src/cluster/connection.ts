/**
 * NATS connections, shared per server list, and the JetStream object store of the cluster.
 * The NATS client (`@nats-io/transport-node` and friends) is loaded on first use by a computed
 * module name, so that a browser bundle of kernelflow never tries to include it.
 */
import type { NatsConnection } from '@nats-io/transport-node';
import type { ObjectStore } from '@nats-io/obj';
import { BackendError } from '../errors.js';
import { BUCKET } from './wire.js';

/** Loads a module by a computed name (bundlers leave it alone); Node only. */
export async function load<T>(name: string): Promise<T> {
  return (await import(name)) as T;
}

/** The NATS client modules kernelflow uses. */
export interface NatsModules {
  readonly transport: typeof import('@nats-io/transport-node');
  readonly obj: typeof import('@nats-io/obj');
  readonly services: typeof import('@nats-io/services');
}

let modules: Promise<NatsModules> | undefined;

/** The NATS client modules (loaded once). */
export function natsModules(): Promise<NatsModules> {
  return (modules ??= (async () => {
    try {
      const [transport, obj, services] = await Promise.all([
        load<NatsModules['transport']>('@nats-io/transport-node'),
        load<NatsModules['obj']>('@nats-io/obj'),
        load<NatsModules['services']>('@nats-io/services'),
      ]);
      // Node's own SHA-256 for object store digests (the pure-JS default is ~10x slower).
      obj.setSha256Backend('native');
      return { transport, obj, services };
    } catch (e) {
      modules = undefined;
      throw new BackendError(`the NATS client is not installed (npm install @nats-io/transport-node @nats-io/obj @nats-io/services): ${(e as Error).message}`);
    }
  })());
}

/**
 * Micro services (`@nats-io/services`) on a connection. The services package (3.0.0-25, its latest
 * on npm) still depends on a pre-release of `@nats-io/nats-core` whose typings differ from the
 * current client's only in details it does not use (a `Match` enum became a string union); at run
 * time it works with any v3 connection. This is the one place the two typings meet.
 */
export function svcm(mods: NatsModules, nc: NatsConnection): InstanceType<NatsModules['services']['Svcm']> {
  type ServicesConnection = ConstructorParameters<NatsModules['services']['Svcm']>[0];
  return new mods.services.Svcm(nc as unknown as ServicesConnection);
}

/** Normalises a server list: `'nats://a:4222,nats://b:4222'` or an array. */
export function serverList(servers: string | readonly string[]): string[] {
  const list = (typeof servers === 'string' ? servers.split(',') : [...servers]).map((s) => s.trim()).filter((s) => s !== '');
  if (list.length === 0) throw new BackendError('no NATS server given (servers: "nats://HOST:PORT")');
  return list;
}

const connections = new Map<string, Promise<NatsConnection>>();
const stores = new Map<NatsConnection, Promise<ObjectStore>>();

/** A shared connection to these servers (opened on first use; a BackendError when none answers). */
export function natsConnection(servers: string | readonly string[], name = 'kernelflow'): Promise<NatsConnection> {
  const list = serverList(servers);
  const key = list.join(',');
  const live = connections.get(key);
  if (live !== undefined) return live;
  const opened = (async () => {
    const { transport } = await natsModules();
    try {
      const nc = await transport.connect({ servers: list, name, maxReconnectAttempts: -1, reconnectTimeWait: 250 });
      void nc.closed().then(() => {
        if (connections.get(key) === opened) connections.delete(key);
      });
      return nc;
    } catch (e) {
      connections.delete(key);
      throw new BackendError(`cannot connect to NATS at ${key}: ${(e as Error).message}`, { transient: true });
    }
  })();
  connections.set(key, opened);
  return opened;
}

/** Closes every shared connection (after flushing what was published). */
export async function closeNatsConnections(): Promise<void> {
  const all = [...connections.values()];
  connections.clear();
  stores.clear();
  await Promise.all(
    all.map(async (p) => {
      const nc = await p.catch(() => undefined);
      if (nc !== undefined && !nc.isClosed()) await nc.drain().catch(() => nc.close());
    }),
  );
}

/**
 * The cluster's object store (created on first use; needs JetStream on the server). Objects
 * expire after an hour unless put again, so a bucket left behind by crashed clients empties itself.
 */
export function objectStore(nc: NatsConnection): Promise<ObjectStore> {
  const hit = stores.get(nc);
  if (hit !== undefined) return hit;
  const p = (async () => {
    const { obj } = await natsModules();
    try {
      return await new obj.Objm(nc).create(BUCKET, { ttl: 3600 * 1e9, description: 'kernelflow arrays (by content id) and large shard results' });
    } catch (e) {
      stores.delete(nc);
      throw new BackendError(`the NATS server has no usable JetStream object store (start nats-server with -js): ${(e as Error).message}`);
    }
  })();
  stores.set(nc, p);
  return p;
}

/** Largest chunk for object store puts on this connection (a chunk must fit in one message). */
export function chunkSize(nc: NatsConnection): number {
  const max = nc.info?.max_payload ?? 1 << 20;
  return Math.max(64 * 1024, max - 64 * 1024);
}
