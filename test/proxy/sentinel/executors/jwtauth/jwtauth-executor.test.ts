import http from 'node:http';
import type { AddressInfo } from 'node:net';
import t from 'tap';
import { exportJWK, exportSPKI, generateKeyPair, SignJWT } from 'jose';
import { createJwtAuthExecutor } from '../../../../../proxy/sentinel/executors/jwtauth/jwtauth-executor.ts';
import { parsePolicies } from '../../../../../proxy/sentinel/policy/parse-policies.ts';
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
