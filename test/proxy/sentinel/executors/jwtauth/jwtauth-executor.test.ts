import http from 'node:http';
import type { AddressInfo } from 'node:net';
import t from 'tap';
import { exportJWK, exportSPKI, generateKeyPair, SignJWT } from 'jose';
import { TestClock } from '../../../../../core/clock.ts';
import { createJwtAuthExecutor } from '../../../../../proxy/sentinel/executors/jwtauth/jwtauth-executor.ts';
import { VerifiedTokenCache } from '../../../../../proxy/sentinel/executors/jwtauth/verified-token-cache.ts';
import { parsePolicies } from '../../../../../proxy/sentinel/policy/parse-policies.ts';
import type { Principal } from '../../../../../proxy/sentinel/principal.ts';
import { freshState, rejection, requestView } from '../helpers.ts';

async function keyPair(kid: string) {
  const { publicKey, privateKey } = await generateKeyPair('RS256', { extractable: true });
  return { kid, publicKey, privateKey, jwk: { ...(await exportJWK(publicKey)), kid, alg: 'RS256', use: 'sig' } };
}

type PrivateKey = Awaited<ReturnType<typeof generateKeyPair>>['privateKey'];

function sign(privateKey: PrivateKey, kid: string, claims: Record<string, unknown> = {}, expiresIn = '5m', audience = 'gateway') {
  return new SignJWT({ scope: 'read', ...claims }).setProtectedHeader({ alg: 'RS256', kid }).setSubject('user_42').setIssuer('https://issuer.test').setAudience(audience).setIssuedAt().setExpirationTime(expiresIn).sign(privateKey);
}

t.test('verifies tokens against a JWKS URL and refetches it when a rotated key appears', async (t) => {
  const first = await keyPair('k1');
  const second = await keyPair('k2');
  let served = [first.jwk];
  let fetches = 0;
  const server = http.createServer((_req, res) => {
    fetches++;
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ keys: served }));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => new Promise<void>((resolve) => { server.closeAllConnections(); server.close(() => resolve()); }));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/jwks.json`;
  const policy = parsePolicies([{ id: 'jwt', enabled: true, jwtauth: { jwksUri: url, issuer: 'https://issuer.test', audiences: ['gateway'], algorithms: ['RS256'], clockSkewMs: 1000 } }])[0]!;
  const executor = await createJwtAuthExecutor(policy, { jwksCooldownMs: 0 });

  const state = freshState();
  await executor.execute(requestView('/', { authorization: `Bearer ${await sign(first.privateKey, 'k1')}` }), state);
  t.equal(state.principal!.type, 'JWT');
  t.equal(state.principal!.subject, 'user_42');
  t.equal(state.principal!.source.jwt!.payload['scope'], 'read', 'claims reach the principal');
  t.equal(fetches, 1);
  await executor.execute(requestView('/', { authorization: `Bearer ${await sign(first.privateKey, 'k1')}` }), freshState());
  t.equal(fetches, 1, 'the key set is cached');

  served = [second.jwk];
  const rotated = freshState();
  await executor.execute(requestView('/', { authorization: `Bearer ${await sign(second.privateKey, 'k2')}` }), rotated);
  t.equal(rotated.principal!.subject, 'user_42', 'a token signed with the rotated key is accepted');
  t.equal(fetches, 2, 'an unknown kid triggered exactly one refetch');

  const expired = await rejection(async () => executor.execute(requestView('/', { authorization: `Bearer ${await sign(second.privateKey, 'k2', {}, '-10s')}` }), freshState()));
  t.equal(expired.code, 'err:frontline:client:invalid_token');
  t.equal(expired.status, 401);
  const wrongAudience = await rejection(async () => executor.execute(requestView('/', { authorization: `Bearer ${await sign(second.privateKey, 'k2', {}, '5m', 'someone-else')}` }), freshState()));
  t.equal(wrongAudience.code, 'err:frontline:client:invalid_token');
  const forged = await keyPair('k2');
  const forgedFault = await rejection(async () => executor.execute(requestView('/', { authorization: `Bearer ${await sign(forged.privateKey, 'k2')}` }), freshState()));
  t.equal(forgedFault.code, 'err:frontline:client:invalid_token', 'a token signed by another key with a known kid fails');
  const missing = await rejection(() => executor.execute(requestView('/'), freshState()));
  t.equal(missing.code, 'err:frontline:client:missing_credentials');
});

t.test('verifies with a static public key and honours allowed algorithms and clock skew', async (t) => {
  const pair = await keyPair('static');
  const pem = await exportSPKI(pair.publicKey);
  const policy = parsePolicies([{ id: 'jwt', enabled: true, jwtauth: { publicKeyPem: pem, clockSkewMs: 30_000, allowAnonymous: true } }])[0]!;
  const executor = await createJwtAuthExecutor(policy);
  const state = freshState();
  await executor.execute(requestView('/', { authorization: `Bearer ${await sign(pair.privateKey, 'static', {}, '-10s')}` }), state);
  t.equal(state.principal!.subject, 'user_42', 'expired 10 s ago is within a 30 s skew');
  const anonymous = freshState();
  await executor.execute(requestView('/'), anonymous);
  t.equal(anonymous.principal, undefined, 'allowAnonymous lets a request without a token through unauthenticated');
  const es = await generateKeyPair('ES256');
  const esToken = await new SignJWT({}).setProtectedHeader({ alg: 'ES256' }).setSubject('x').setExpirationTime('1m').sign(es.privateKey);
  t.equal((await rejection(() => executor.execute(requestView('/', { authorization: `Bearer ${esToken}` }), freshState()))).code, 'err:frontline:client:invalid_token', 'an algorithm outside the allowed list fails');
});

t.test('a repeated token is served from memory only until its exp, and a changed byte is verified in full', async (t) => {
  const clock = new TestClock(1_700_000_000_000);
  const nowSeconds = Math.floor(clock.nowMs() / 1000);
  const pair = await keyPair('static');
  const policy = parsePolicies([{ id: 'jwt', enabled: true, jwtauth: { publicKeyPem: await exportSPKI(pair.publicKey), clockSkewMs: 0 } }])[0]!;
  const executor = await createJwtAuthExecutor(policy, { clock });
  const token = await new SignJWT({ scope: 'read' }).setProtectedHeader({ alg: 'RS256' }).setSubject('user_7').setIssuedAt(nowSeconds).setExpirationTime(nowSeconds + 60).sign(pair.privateKey);
  const bearer = (value: string) => requestView('/', { authorization: `Bearer ${value}` });

  const first = freshState();
  const pending = executor.execute(bearer(token), first);
  t.ok(pending instanceof Promise, 'the first use is verified in full');
  await pending;
  t.equal(first.principal!.subject, 'user_7');

  const again = freshState();
  t.equal(executor.execute(bearer(token), again), undefined, 'the same token again is decided synchronously');
  t.equal(again.principal, first.principal, 'sharing one frozen principal');
  t.ok(Object.isFrozen(again.principal) && Object.isFrozen(again.principal!.source.jwt!.payload), 'which no request can change');

  // A signature character well inside (the last one carries padding bits a decoder ignores).
  const at = token.length - 10;
  const tampered = token.slice(0, at) + (token[at] === 'A' ? 'B' : 'A') + token.slice(at + 1);
  t.equal((await rejection(() => executor.execute(bearer(tampered), freshState()))).code, 'err:frontline:client:invalid_token', 'a token differing in one byte is checked, not served');

  clock.advance(30_000);
  const afterMaxAge = freshState();
  const reverified = executor.execute(bearer(token), afterMaxAge);
  t.ok(reverified instanceof Promise, 'past the cache age the token is verified again');
  await reverified;
  t.equal(afterMaxAge.principal!.subject, 'user_7');

  clock.advance(30_000);
  const expired = await rejection(() => executor.execute(bearer(token), freshState()));
  t.equal(expired.code, 'err:frontline:client:invalid_token', 'at exp the remembered token is rejected like any expired token');
});

t.test('the verified-token cache is bounded in entries and token length and never keeps an expired token', async (t) => {
  const principal = Object.freeze({ version: 'v1', subject: 's', type: 'JWT', source: {} }) as Principal;
  const cache = new VerifiedTokenCache({ maxEntries: 2, maxAgeMs: 1_000, maxTokenChars: 10 });
  const nowMs = 1_700_000_000_000;
  cache.set('a', principal, undefined, nowMs);
  cache.set('b', principal, undefined, nowMs);
  cache.set('c', principal, undefined, nowMs);
  t.equal(cache.size, 2);
  t.equal(cache.get('a', nowMs), undefined, 'the oldest entry made room');
  t.equal(cache.get('c', nowMs), principal);
  t.equal(cache.get('c', nowMs + 1_000), undefined, 'not served at maxAgeMs');
  cache.set('long-token-x', principal, undefined, nowMs);
  t.equal(cache.get('long-token-x', nowMs), undefined, 'a token above maxTokenChars is not kept');
  cache.set('d', principal, nowMs / 1000, nowMs);
  t.equal(cache.get('d', nowMs), undefined, 'a token at its exp is not kept');
  cache.set('e', principal, nowMs / 1000 + 0.5, nowMs);
  t.equal(cache.get('e', nowMs + 499), principal);
  t.equal(cache.get('e', nowMs + 500), undefined, 'exp bounds the entry before maxAgeMs does');
});
