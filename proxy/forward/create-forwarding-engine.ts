/**
 * `createForwardingEngine`: a forwarding engine by name, so configuration (`frontline.engine`,
 * `--frontline-engine`, `KEYGATE_FRONTLINE_ENGINE`) and worker threads, which only pass plain
 * data, can choose one. `raw` is {@link RawHttp1Engine} (the default: its own strict HTTP/1.1
 * framing over pooled sockets; in `make bench` as cheap as undici or cheaper); `undici` is
 * {@link UndiciEngine}.
 */
import { Fault } from '../../core/fault.ts';
import type { ForwardingEngine } from './forwarding-engine.ts';
import { RawHttp1Engine } from './raw-http1-engine.ts';
import { UndiciEngine } from './undici-engine.ts';

/** The names an engine can be chosen by, in the order help texts list them. */
export const FORWARDING_ENGINE_NAMES = ['raw', 'undici'] as const;

/** A forwarding engine's name (see {@link FORWARDING_ENGINE_NAMES}). */
export type ForwardingEngineName = (typeof FORWARDING_ENGINE_NAMES)[number];

/** The engine a runner creates when none is given. */
export const DEFAULT_FORWARDING_ENGINE: ForwardingEngineName = 'raw';

/**
 * A new engine of the named kind with its default bounds. Called once per runner, at boot.
 * Throws a `Fault` (`invalid_configuration`) for a name that is not one of the engines.
 */
export function createForwardingEngine(name: ForwardingEngineName = DEFAULT_FORWARDING_ENGINE): ForwardingEngine {
  switch (name) {
    case 'raw': return new RawHttp1Engine();
    case 'undici': return new UndiciEngine();
    default: throw new Fault('err:frontline:config:invalid_configuration', {
      internalMessage: `unknown forwarding engine ${JSON.stringify(name)} (expected one of ${FORWARDING_ENGINE_NAMES.join(', ')})`,
    });
  }
}
