import t from 'tap';
import { Fault, FAULT_CODES, faultTypeUrl, isFaultCode } from '../../core/fault.ts';

t.test('every code has the err:<system>:<category>:<specific> shape and a status', async (t) => {
  for (const [code, info] of Object.entries(FAULT_CODES)) {
    t.match(code, /^err:[a-z]+:[a-z_]+:[a-z_]+$/, code);
    t.ok(info.status >= 400 && info.status < 600, `${code} status`);
    t.ok(info.title.length > 0, `${code} title`);
  }
});

t.test('maps codes to the reference statuses, including the 500 for service_unavailable', async (t) => {
  t.equal(new Fault('err:unkey:data:api_not_found').status, 404);
  t.equal(new Fault('err:unkey:application:service_unavailable').status, 500);
  t.equal(new Fault('err:unkey:application:protected_resource').title, 'Resource is protected');
  t.equal(new Fault('err:user:bad_request:request_body_too_large').status, 413);
});

t.test('keeps the internal message out of the public one', async (t) => {
  const fault = new Fault('err:unkey:data:key_not_found', { publicMessage: 'The key was not found.', internalMessage: 'SELECT failed on host db-3' });
  t.equal(fault.publicMessage, 'The key was not found.');
  t.equal(fault.message, 'SELECT failed on host db-3');
  t.notMatch(fault.publicMessage, /db-3/);
});

t.test('expected faults carry no stack frames and default to a downstream source', async (t) => {
  const fault = Fault.expected('err:unkey:application:invalid_input');
  t.equal(fault.source, 'downstream');
  t.notMatch(String(fault.stack), /\n\s+at /);
  t.match(String(new Fault('err:unkey:application:invalid_input').stack), /\n\s+at /);
});

t.test('Fault.from wraps foreign errors as unexpected and passes faults through', async (t) => {
  const original = new Fault('err:unkey:data:role_not_found');
  t.equal(Fault.from(original), original);
  const wrapped = Fault.from(new Error('boom'));
  t.equal(wrapped.code, 'err:unkey:application:unexpected_error');
  t.equal(wrapped.status, 500);
  t.equal(wrapped.internalMessage, 'boom');
  t.equal(wrapped.publicMessage, 'Internal Server Error');
});

t.test('builds the docs URL from the code', async (t) => {
  t.equal(faultTypeUrl('err:unkey:data:api_not_found'), 'https://unkey.com/docs/errors/unkey/data/api_not_found');
  t.ok(isFaultCode('err:unkey:data:api_not_found'));
  t.notOk(isFaultCode('err:nope:nope:nope'));
  t.notOk(isFaultCode('toString'));
});
