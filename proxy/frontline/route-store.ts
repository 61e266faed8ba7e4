/**
 * `RouteStore`: where Frontline finds the route of a request host. Two implementations: a static
 * table from the ingress file (`StaticRouteStore`, swapped whole on reload) and the database
 * through an SWR cache (`DatabaseRouteStore`). Per request, `lookup` is called once with the
 * normalised host (lower case, no port, no trailing dot).
 */
import type { FrontlineRoute } from './route-table.ts';
import { RouteTable } from './route-table.ts';

/** The route source of a Frontline. */
export interface RouteStore {
  /**
   * The route for `host`, or undefined when none is configured (→ 404 `config_not_found`).
   * Synchronous when the answer is in memory; a promise when it must be loaded. A load failure
   * rejects with a `Fault` (→ 500 `config_load_failed`).
   */
  lookup(host: string): FrontlineRoute | undefined | Promise<FrontlineRoute | undefined>;
  /** Releases timers and connections. */
  close?(): Promise<void>;
}

/** Routes from a static table; `replace` swaps in a new table atomically (reload). */
export class StaticRouteStore implements RouteStore {
  #table: RouteTable;

  constructor(table: RouteTable = new RouteTable([])) {
    this.#table = table;
  }

  /** The table in use. */
  get table(): RouteTable {
    return this.#table;
  }

  /** Swaps in a fully built table; requests already routed keep the route they got. */
  replace(table: RouteTable): void {
    this.#table = table;
  }

  lookup(host: string): FrontlineRoute | undefined {
    return this.#table.lookup(host);
  }
}
