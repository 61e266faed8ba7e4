import t from 'tap';
import { Fault } from '../../core/fault.ts';
import { classifyUpstreamError } from '../../proxy/errors/classify-upstream-error.ts';
import { renderErrorPage, wantsJson } from '../../proxy/errors/error-page.ts';

function coded(code: string, cause?: { code: string }): Error {
  return Object.assign(new Error(code), { code }, cause === undefined ? {} : { cause });
}

t.test('classifies upstream errors by code (dataplane.md §2.4)', async (t) => {
  const table: [Error, boolean, string, number, boolean][] = [
    [coded('ECONNREFUSED'), false, 'err:frontline:upstream:service_unavailable', 503, true],
    [coded('EHOSTUNREACH'), false, 'err:frontline:upstream:service_unavailable', 503, true],
    [coded('ENOTFOUND'), false, 'err:frontline:upstream:service_unavailable', 503, true],
    [coded('EAI_AGAIN'), false, 'err:frontline:upstream:gateway_timeout', 504, true],
    [coded('UND_ERR_CONNECT_TIMEOUT'), false, 'err:frontline:upstream:gateway_timeout', 504, true],
    [coded('UND_ERR_HEADERS_TIMEOUT'), true, 'err:frontline:upstream:gateway_timeout', 504, false],
    [coded('UND_ERR_BODY_TIMEOUT'), true, 'err:frontline:upstream:gateway_timeout', 504, false],
    [coded('ECONNRESET'), true, 'err:frontline:upstream:bad_gateway', 502, false],
    [coded('UND_ERR_SOCKET'), true, 'err:frontline:upstream:bad_gateway', 502, false],
    [coded('UND_ERR_SOCKET', { code: 'ECONNRESET' }), true, 'err:frontline:upstream:bad_gateway', 502, false],
    [new Error('EOF before response'), true, 'err:frontline:upstream:bad_gateway', 502, false],
  ];
  for (const [err, connected, code, status, retryable] of table) {
    const fault = classifyUpstreamError(err, connected);
    t.equal(fault.code, code, `${err.message} → ${code}`);
    t.equal(fault.status, status);
    t.equal(fault.retryable, retryable, `${err.message} retryable=${retryable}`);
    t.equal(fault.source, 'upstream');
  }
  const passthrough = new Fault('err:frontline:client:rate_limited');
  t.equal(classifyUpstreamError(passthrough, true), passthrough);
});

t.test('negotiates JSON or HTML from Accept (empty Accept gets HTML)', async (t) => {
  const cases: [string | undefined, boolean][] = [
    [undefined, false], ['', false], ['application/json', true], ['application/*', true], ['*/*', true],
    ['text/html,*/*;q=0.8', false], ['text/html', false], ['text/plain', false], ['application/problem+json, application/json', true],
  ];
  for (const [accept, json] of cases) t.equal(wantsJson(accept), json, `Accept ${JSON.stringify(accept)}`);
});

t.test('renders the request id in both shapes and maps request_timeout to 504', async (t) => {
  const fault = Fault.expected('err:user:bad_request:request_timeout');
  const json = renderErrorPage(fault, 'req_123456789', 'application/json');
  t.equal(json.status, 504);
  t.same(JSON.parse(json.body), { meta: { requestId: 'req_123456789' }, error: { code: 'err:user:bad_request:request_timeout', message: 'Request Timeout' } });
  const html = renderErrorPage(new Fault('err:frontline:upstream:bad_gateway', { publicMessage: '<script>x</script>' }), 'req_abc', undefined);
  t.equal(html.status, 502);
  t.match(html.body, 'req_abc');
  t.notMatch(html.body, '<script>', 'messages are escaped');
  t.equal(renderErrorPage(Fault.expected('err:user:bad_request:client_closed_request'), 'r', '*/*').status, 499);
});
