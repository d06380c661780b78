import type { ReplicaTable } from './device-shards.js';

/**
 * Decides, when a request is admitted, which replica of each copied (layer, kv head) serves it —
 * beyond the FairKV paper, which splits a copied head's batch statically. Each replica carries the
 * KV tokens of the requests it serves; a new request goes to the replica whose load relative to its
 * planned share stays lowest after adding the request's actual kept tokens:
 * `argmin_r (load_r + tokens) / share_r` (ties: the lower replica index). Over many requests this
 * keeps every replica's load proportional to its share, so the plan's balance holds for real budgets.
 * Heads with one replica always route to it. Deterministic.
 */
export class ReplicaRouter {
  readonly #table: ReplicaTable;
  /** `[layer][kvHead][replica]` tokens held by the requests routed there. */
  readonly #load: number[][][];
  readonly #routes = new Map<string, Int32Array[]>();

  constructor(table: ReplicaTable) {
    this.#table = table;
    this.#load = table.replicas.map((layer) => layer.map((replicas) => replicas.map(() => 0)));
  }

  /**
   * Routes a request given its kept tokens per `[layer][kvHead]`; returns, per layer, the serving
   * replica index of each kv head. Throws if the request id is already routed.
   */
  admit(requestId: string, keptTokens: ArrayLike<number>[]): Int32Array[] {
    if (this.#routes.has(requestId)) throw new Error(`request ${requestId} is already routed`);
    const routes = this.#table.replicas.map((layer, l) => {
      const route = new Int32Array(layer.length);
      layer.forEach((replicas, h) => {
        const tokens = keptTokens[l]?.[h] ?? 0;
        let best = 0;
        let bestCost = Number.POSITIVE_INFINITY;
        replicas.forEach((replica, r) => {
          const cost = (this.#load[l]![h]![r]! + tokens) / replica.share;
          if (cost < bestCost - 1e-12) {
            best = r;
            bestCost = cost;
          }
        });
        route[h] = best;
        this.#load[l]![h]![best]! += tokens;
      });
      return route;
    });
    this.#routes.set(requestId, routes);
    return routes;
  }

  /** Adds decode growth (one token per step) to the replicas serving a request. */
  grow(requestId: string, tokens = 1): void {
    const routes = this.#routes.get(requestId);
    if (!routes) return;
    routes.forEach((route, l) => {
      route.forEach((replica, h) => {
        this.#load[l]![h]![replica]! += tokens;
      });
    });
  }

  /** Removes a finished request's load; `keptTokens` are its current lengths per `[layer][kvHead]`. */
  release(requestId: string, keptTokens: ArrayLike<number>[]): void {
    const routes = this.#routes.get(requestId);
    if (!routes) return;
    routes.forEach((route, l) => {
      route.forEach((replica, h) => {
        this.#load[l]![h]![replica]! -= keptTokens[l]?.[h] ?? 0;
      });
    });
    this.#routes.delete(requestId);
  }

  /** The replica serving `(requestId, layer, kvHead)`, or undefined for an unknown request. */
  replicaFor(requestId: string, layer: number, kvHead: number): number | undefined {
    return this.#routes.get(requestId)?.[layer]?.[kvHead];
  }

  /** Current tokens per `[layer][kvHead][replica]` (a copy). */
  loads(): number[][][] {
    return this.#load.map((layer) => layer.map((replicas) => [...replicas]));
  }
}
