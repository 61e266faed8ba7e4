/**
 * `MemoryBus`: the in-process {@link InvalidationBus}, the default for a single node. Publish
 * applies the invalidation to this bus's subscribers. Buses that join the same
 * {@link MemoryBusHub} behave like nodes of a cluster: each message is encoded, delivered to
 * the others on a later turn of the event loop and decoded there, with the same ordering
 * rules as gossip. That makes it a faithful stand-in for tests and for several roles
 * embedded in one process.
 */
import type { Clock } from '../clock.ts';
import { Fault } from '../fault.ts';
import { randomAlphanumeric } from '../id.ts';
import type { AppliedVersionsOptions } from './applied-versions.ts';
import { InvalidationCodec } from './invalidation-codec.ts';
import type { InvalidationLimits } from './invalidation-codec.ts';
import { InvalidationReceiver } from './invalidation-receiver.ts';
import type { InvalidationReceiverObserver } from './invalidation-receiver.ts';
import type {
  Invalidation,
  InvalidationBus,
  InvalidationBusStatus,
  InvalidationHandler,
  InvalidationRequest,
} from './interface.ts';

/** Options for {@link MemoryBus}. */
export interface MemoryBusOptions extends AppliedVersionsOptions {
  /** Default: `memory-` and 12 random characters. */
  nodeId?: string;
  clock?: Clock;
  /** Join this hub to exchange invalidations with its other buses. Default: a private hub. */
  hub?: MemoryBusHub;
  limits?: Partial<InvalidationLimits>;
  observer?: InvalidationReceiverObserver;
}

/** A set of in-process buses that deliver to each other, like nodes of one cluster. */
export class MemoryBusHub {
  readonly #members = new Set<MemoryBus>();

  /** The buses currently joined. */
  get size(): number {
    return this.#members.size;
  }

  /** @internal Used by {@link MemoryBus}. */
  join(bus: MemoryBus): void {
    this.#members.add(bus);
  }

  /** @internal Used by {@link MemoryBus}. */
  leave(bus: MemoryBus): void {
    this.#members.delete(bus);
  }

  /** @internal Sends encoded bytes to every member except `sender`, each on a later event-loop turn. */
  broadcast(sender: MemoryBus, bytes: Uint8Array): void {
    for (const member of this.#members) {
      if (member !== sender) member.deliverLater(bytes);
    }
  }
}

/** The in-memory bus; see the file comment. */
export class MemoryBus implements InvalidationBus {
  /** This node's id. */
  readonly nodeId: string;
  readonly #hub: MemoryBusHub;
  readonly #codec: InvalidationCodec;
  readonly #receiver: InvalidationReceiver;
  readonly #pending = new Set<NodeJS.Immediate>();
  #closed = false;

  constructor(options: MemoryBusOptions = {}) {
    this.nodeId = options.nodeId ?? 'memory-' + randomAlphanumeric(12);
    this.#hub = options.hub ?? new MemoryBusHub();
    this.#codec = new InvalidationCodec(options.limits);
    this.#receiver = new InvalidationReceiver({ ...options, nodeId: this.nodeId });
    this.#hub.join(this);
  }

  /** See {@link InvalidationBus.publish}. */
  async publish(request: InvalidationRequest): Promise<Invalidation> {
    this.#assertOpen();
    this.#codec.validateRequest(request);
    const invalidation = this.#receiver.stamp(request);
    await this.#receiver.applyLocal(invalidation);
    this.#send(invalidation);
    return invalidation;
  }

  /** See {@link InvalidationBus.relay}. */
  async relay(invalidation: Invalidation): Promise<void> {
    this.#assertOpen();
    this.#codec.validateStamped(invalidation);
    await this.#receiver.applyLocal(invalidation);
    this.#send(invalidation);
  }

  /** See {@link InvalidationBus.subscribe}. */
  subscribe(handler: InvalidationHandler): () => void {
    return this.#receiver.subscribe(handler);
  }

  /** See {@link InvalidationBus.status}. A memory bus never falls back to expiry: its peers cannot be lost. */
  status(): InvalidationBusStatus {
    return {
      nodeId: this.nodeId,
      peerCount: this.#closed ? 0 : this.#hub.size - 1,
      fallbackToExpiry: false,
      ...this.#receiver.counts(),
    };
  }

  /** Leaves the hub and drops deliveries not yet made. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#hub.leave(this);
    for (const immediate of this.#pending) clearImmediate(immediate);
    this.#pending.clear();
  }

  /** @internal Called by the hub: decode and receive `bytes` on a later event-loop turn. */
  deliverLater(bytes: Uint8Array): void {
    if (this.#closed) return;
    const immediate = setImmediate(() => {
      this.#pending.delete(immediate);
      this.#deliver(bytes);
    });
    this.#pending.add(immediate);
  }

  #deliver(bytes: Uint8Array): void {
    let invalidation: Invalidation;
    try {
      invalidation = this.#codec.decode(bytes);
    } catch (err) {
      this.#receiver.receiveMalformed(Fault.from(err));
      return;
    }
    // receive() never rejects: handler failures are recorded as the last error.
    void this.#receiver.receive(invalidation);
  }

  #send(invalidation: Invalidation): void {
    if (this.#hub.size <= 1) return;
    for (const part of this.#codec.split(invalidation)) this.#hub.broadcast(this, this.#codec.encode(part));
  }

  #assertOpen(): void {
    if (this.#closed) throw Fault.expected('err:keygate:gossip:closed', { source: 'internal' });
  }
}
