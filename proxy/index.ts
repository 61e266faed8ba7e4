/**
 * The public API of keygate's proxy framework: build a custom proxy from {@link ProxyHooks}
 * phases and serve it with {@link ProxyServer} (or plug {@link PhaseRunner} handlers into your own
 * server). See proxy/README.md and examples/ for complete proxies.
 */
export type {
  ConnectFailureDecision, FailureResponseDecision, FilterOutcome, HeaderMap, MaybePromise, ProxyHooks,
  UpstreamRequest, UpstreamResponse,
} from './hooks.ts';
export { HttpPeer } from './http-peer.ts';
export type { HttpPeerOptions, UpstreamProtocol } from './http-peer.ts';
export { ProxySession, normalizeHost } from './proxy-session.ts';
export type { DownstreamRequest, DownstreamResponse } from './proxy-session.ts';
export { PhaseRunner, PHASE_RUNNER_DEFAULTS } from './phase-runner.ts';
export type { PhaseRunnerOptions } from './phase-runner.ts';
export { ProxyServer, PROXY_SERVER_DEFAULTS } from './proxy-server.ts';
export type { ProxyListenOptions, ProxyServerOptions } from './proxy-server.ts';
export { createListener, LISTENER_DEFAULTS } from './listener.ts';
export type { ListenerOptions, ListenerProtocol } from './listener.ts';
export type { ForwardingEngine, UpstreamController, UpstreamDispatch, UpstreamHandler } from './forward/forwarding-engine.ts';
export { UndiciEngine, UNDICI_ENGINE_DEFAULTS } from './forward/undici-engine.ts';
export type { UndiciEngineOptions } from './forward/undici-engine.ts';
export { createForwardingEngine, DEFAULT_FORWARDING_ENGINE, FORWARDING_ENGINE_NAMES } from './forward/create-forwarding-engine.ts';
export type { ForwardingEngineName } from './forward/create-forwarding-engine.ts';
export { RawHttp1Engine, RAW_HTTP1_ENGINE_DEFAULTS } from './forward/raw-http1-engine.ts';
export type { RawHttp1EngineOptions } from './forward/raw-http1-engine.ts';
export { Http1ResponseParser, Http1ParseError, HTTP1_PARSER_DEFAULTS } from './forward/http1-response-parser.ts';
export type { Http1ResponseListener } from './forward/http1-response-parser.ts';
export { TrustedProxies } from './forward/trusted-proxies.ts';
export { HOP_BY_HOP_HEADERS } from './forward/hop-by-hop.ts';
export { classifyUpstreamError } from './errors/classify-upstream-error.ts';
export { renderErrorPage, wantsJson } from './errors/error-page.ts';
export { CertificateStore, MODERN_CIPHERS } from './tls/certificate-store.ts';
export type { CertificateLoader, CertificateSource, CertificateStoreOptions } from './tls/certificate-store.ts';
export { WorkerGroup, signalWorkerReady } from './workers/worker-group.ts';
export type { WorkerGroupOptions } from './workers/worker-group.ts';
