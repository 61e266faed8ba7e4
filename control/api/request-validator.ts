/**
 * `RequestValidator`: compiles every endpoint's request schema once at boot (ajv) and turns
 * a failed validation into the reference's 400 body: `invalid_input` with `errors[]` whose
 * `location` is the JSON-schema keyword location (spec api.md §4.1).
 */
import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';
import { Fault, type FaultDetail } from '../../core/fault.ts';
import type { JsonSchema } from './schema-builders.ts';

/** Validates request bodies of registered operations; one compiled function per operation. */
export class RequestValidator {
  readonly #ajv: Ajv;
  readonly #validators = new Map<string, ValidateFunction>();

  constructor() {
    // allErrors is off on purpose: the first error is the one reported in `detail`, and
    // stopping early keeps hostile bodies cheap to reject.
    this.#ajv = new Ajv({ allErrors: false, strict: false, coerceTypes: false, useDefaults: false });
  }

  /** Compiles `schema` for `operationId`. Called once per endpoint at boot. */
  register(operationId: string, schema: JsonSchema): void {
    this.#validators.set(operationId, this.#ajv.compile(schema));
  }

  /**
   * Checks `body` against the operation's schema; throws an expected `invalid_input` Fault
   * naming the first problem. Called per request, before authentication.
   */
  validate(operationId: string, body: unknown): void {
    const validate = this.#validators.get(operationId);
    if (validate === undefined) throw new Fault('err:unkey:application:assertion_failed', { internalMessage: `no schema registered for ${operationId}` });
    if (validate(body)) return;
    const errors = (validate.errors ?? []).map(toDetail);
    throw Fault.expected('err:unkey:application:invalid_input', {
      publicMessage: errors[0]?.message ?? 'The request body is invalid.',
      errors,
    });
  }
}

function toDetail(error: ErrorObject): FaultDetail {
  const where = error.instancePath === '' ? 'body' : 'body' + error.instancePath.replaceAll('/', '.');
  let message = `${where} ${error.message ?? 'is invalid'}`;
  if (error.keyword === 'additionalProperties') {
    const extra = (error.params as { additionalProperty?: string }).additionalProperty;
    message = `${where} has an unknown property '${extra}'`;
    return { location: error.schemaPath.replace(/^#/, ''), message, fix: `Remove '${extra}' from the request body.` };
  }
  if (error.keyword === 'required') {
    const missing = (error.params as { missingProperty?: string }).missingProperty;
    message = `${where} is missing the required property '${missing}'`;
  }
  return { location: error.schemaPath.replace(/^#/, ''), message };
}
