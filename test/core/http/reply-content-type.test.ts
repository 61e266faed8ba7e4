import t from 'tap';
import { HttpServer } from '../../../core/http/http-server.ts';
import { createLogger } from '../../../core/log.ts';
import { Metrics } from '../../../core/metrics.ts';

t.test('a reply can name the content type of a body it serialised itself', async (t) => {
  const server = new HttpServer({ logger: createLogger({ level: 'silent' }), metrics: new Metrics() });
  server.route('GET', '/pre', () => ({ body: '{"a":1}', contentType: 'application/json' }));
  server.route('GET', '/text', () => ({ body: 'plain' }));
  server.route('GET', '/override', () => ({ body: 'x', contentType: 'application/json', headers: { 'content-type': 'text/csv' } }));
  const { port } = await server.listen({ port: 0, host: '127.0.0.1' });
  t.teardown(() => server.close());
  const pre = await fetch(`http://127.0.0.1:${port}/pre`);
  t.equal(pre.headers.get('content-type'), 'application/json');
  t.same(await pre.json(), { a: 1 });
  const text = await fetch(`http://127.0.0.1:${port}/text`);
  t.equal(text.headers.get('content-type'), 'text/plain; charset=utf-8', 'a string body without contentType stays text');
  await text.text();
  const override = await fetch(`http://127.0.0.1:${port}/override`);
  t.equal(override.headers.get('content-type'), 'text/csv', 'an explicit header wins');
  await override.text();
  const injected = await server.inject({ method: 'GET', url: '/pre' });
  t.equal(injected.headers['content-type'], 'application/json', 'inject sees the same type');
});
