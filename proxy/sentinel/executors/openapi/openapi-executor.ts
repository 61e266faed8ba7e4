/**
 * OpenAPI request validation executor (dataplane.md §5.8): the document (the policy's own, else
 * the deployment's) is compiled once with ajv when the policy set loads: one matcher per path
 * template and one validator per parameter and JSON request body. Per request: the operation is
 * found by method and normalised path (none → 400), then path, query and header parameters
 * (required, schema with type coercion) and, when the request can be buffered, the JSON body
 * (bounded by `maxBodyBytes`). Failure → 400 `openapi_validation_failed` with a precise message
 * (`query parameter "limit": must be <= 100`). No document → everything passes.
 */
import { Ajv } from 'ajv';
import type { ValidateFunction } from 'ajv';
import { Fault } from '../../../../core/fault.ts';
import type { Policy } from '../../policy/policy-types.ts';
import type { ExecutorContext, PolicyExecutor } from '../../policy-executor.ts';
import type { RequestView } from '../../request-view.ts';

/** Bounds of OpenAPI validation. */
export const OPENAPI_DEFAULTS = {
  /** Largest request body read for validation (413 beyond). */
  maxBodyBytes: 1024 * 1024,
} as const;

const METHODS = ['get', 'put', 'post', 'delete', 'options', 'head', 'patch', 'trace'] as const;

interface CompiledParameter {
  name: string;
  location: 'path' | 'query' | 'header';
  required: boolean;
  validate: ValidateFunction | undefined;
}

interface CompiledOperation {
  parameters: CompiledParameter[];
  bodyRequired: boolean;
  validateBody: ValidateFunction | undefined;
}

interface CompiledPath {
  template: string;
  pattern: RegExp;
  names: string[];
  operations: Map<string, CompiledOperation>;
}

/** Creates the executor of an OpenAPI policy; throws `Fault` 422 when the document does not compile. */
export function createOpenApiExecutor(policy: Policy, context: ExecutorContext, maxBodyBytes: number = OPENAPI_DEFAULTS.maxBodyBytes): PolicyExecutor {
  const spec = policy.openapi?.spec ?? context.openApiSpec;
  if (spec === undefined) return { execute() {} };
  let paths: CompiledPath[];
  try {
    paths = compileSpec(spec);
  } catch (err) {
    throw new Fault('err:frontline:config:invalid_configuration', { publicMessage: `policy ${policy.id}: the OpenAPI document does not compile: ${(err as Error).message}`, cause: err });
  }
  return {
    execute(request: RequestView) {
      const problem = findProblem(paths, request);
      if (problem !== undefined) throw rejected(problem);
      const operation = request.source.readBody === undefined ? undefined : findOperation(paths, request)?.operation;
      if (operation?.validateBody === undefined && !operation?.bodyRequired) return;
      return request.source.readBody!(maxBodyBytes).then((body) => {
        const bodyProblem = checkBody(operation, body, request.header('content-type'));
        if (bodyProblem !== undefined) throw rejected(bodyProblem);
      });
    },
  };
}

function rejected(problem: string): Fault {
  return Fault.expected('err:frontline:client:openapi_validation_failed', { publicMessage: `Request validation failed: ${problem}` });
}

function compileSpec(spec: Record<string, unknown>): CompiledPath[] {
  const ajv = new Ajv({ strict: false, allErrors: false, coerceTypes: false });
  // Schemas reference `#/components/...`; the whole document is registered once and references
  // are rewritten to point into it.
  ajv.addSchema({ $id: 'openapi', components: rewriteRefs(spec['components'] ?? {}) } as object);
  const coercing = new Ajv({ strict: false, coerceTypes: true });
  coercing.addSchema({ $id: 'openapi', components: rewriteRefs(spec['components'] ?? {}) } as object);
  const compiled: CompiledPath[] = [];
  const paths = spec['paths'] as Record<string, Record<string, unknown>>;
  for (const template of Object.keys(paths)) {
    const item = paths[template]!;
    const names: string[] = [];
    const source = template.split('/').map((segment) => segment.replace(/[.*+?^${}()|[\]\\]/g, (char) => `\\${char}`)).join('/')
      .replace(/\\\{([^/]+?)\\\}/g, (_match, name: string) => {
        names.push(name);
        return '([^/]+)';
      });
    const operations = new Map<string, CompiledOperation>();
    const shared = (item['parameters'] as unknown[] | undefined) ?? [];
    for (const method of METHODS) {
      const operation = item[method] as Record<string, unknown> | undefined;
      if (operation === undefined) continue;
      const parameters = new Map<string, CompiledParameter>();
      for (const raw of [...shared, ...((operation['parameters'] as unknown[] | undefined) ?? [])]) {
        const parameter = resolveRef(spec, raw) as { name: string; in: string; required?: boolean; schema?: unknown };
        if (parameter.in !== 'path' && parameter.in !== 'query' && parameter.in !== 'header') continue;
        parameters.set(`${parameter.in}:${parameter.name}`, {
          name: parameter.in === 'header' ? parameter.name.toLowerCase() : parameter.name,
          location: parameter.in,
          required: parameter.required === true || parameter.in === 'path',
          // Wrapped in an object so ajv can coerce the string ("42" → 42) in place.
          validate: parameter.schema === undefined ? undefined : coercing.compile({ type: 'object', properties: { value: rewriteRefs(parameter.schema) } } as object),
        });
      }
      const requestBody = operation['requestBody'] === undefined ? undefined : resolveRef(spec, operation['requestBody']) as { required?: boolean; content?: Record<string, { schema?: unknown }> };
      const jsonSchema = requestBody?.content?.['application/json']?.schema;
      operations.set(method.toUpperCase(), {
        parameters: [...parameters.values()],
        bodyRequired: requestBody?.required === true,
        validateBody: jsonSchema === undefined ? undefined : ajv.compile(rewriteRefs(jsonSchema) as object),
      });
    }
    compiled.push({ template, pattern: new RegExp(`^${source}$`), names, operations });
  }
  // Literal paths before templated ones, so `/users/me` wins over `/users/{id}`.
  compiled.sort((a, b) => a.names.length - b.names.length);
  return compiled;
}

function findOperation(paths: readonly CompiledPath[], request: RequestView): { operation: CompiledOperation; params: Record<string, string> } | undefined {
  for (const path of paths) {
    const match = path.pattern.exec(request.path);
    if (match === null) continue;
    const operation = path.operations.get(request.method);
    if (operation === undefined) continue;
    const params: Record<string, string> = {};
    path.names.forEach((name, index) => { params[name] = match[index + 1]!; });
    return { operation, params };
  }
  return undefined;
}

function findProblem(paths: readonly CompiledPath[], request: RequestView): string | undefined {
  const found = findOperation(paths, request);
  if (found === undefined) {
    const pathKnown = paths.some((path) => path.pattern.test(request.path));
    return pathKnown ? `method ${request.method} is not allowed on ${request.path}` : `no operation matches ${request.method} ${request.path}`;
  }
  for (const parameter of found.operation.parameters) {
    let value: string | undefined;
    if (parameter.location === 'path') value = found.params[parameter.name];
    else if (parameter.location === 'query') value = request.query.get(parameter.name) ?? undefined;
    else value = request.header(parameter.name);
    const label = `${parameter.location} parameter "${parameter.name}"`;
    if (value === undefined) {
      if (parameter.required) return `${label} is required`;
      continue;
    }
    if (parameter.validate !== undefined) {
      if (!parameter.validate({ value })) return `${label}: ${parameter.validate.errors?.[0]?.message ?? 'is invalid'}`;
    }
  }
  return undefined;
}

function checkBody(operation: CompiledOperation, body: Buffer, contentType: string | undefined): string | undefined {
  if (body.length === 0) return operation.bodyRequired ? 'request body is required' : undefined;
  if (operation.validateBody === undefined) return undefined;
  if (contentType !== undefined && !contentType.toLowerCase().includes('json')) return `content type ${contentType} is not application/json`;
  let value: unknown;
  try {
    value = JSON.parse(body.toString('utf8'));
  } catch {
    return 'request body is not valid JSON';
  }
  if (operation.validateBody(value)) return undefined;
  const error = operation.validateBody.errors?.[0];
  return `body${error?.instancePath ?? ''}: ${error?.message ?? 'is invalid'}`;
}

function resolveRef(spec: Record<string, unknown>, value: unknown): unknown {
  const ref = (value as { $ref?: unknown } | null)?.$ref;
  if (typeof ref !== 'string' || !ref.startsWith('#/')) return value;
  let current: unknown = spec;
  for (const segment of ref.slice(2).split('/')) current = (current as Record<string, unknown> | undefined)?.[segment.replaceAll('~1', '/').replaceAll('~0', '~')];
  if (current === undefined) throw new Error(`unresolved reference ${ref}`);
  return current;
}

function rewriteRefs(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(rewriteRefs);
  if (value === null || typeof value !== 'object') return value;
  const result: Record<string, unknown> = {};
  for (const [key, inner] of Object.entries(value)) {
    result[key] = key === '$ref' && typeof inner === 'string' && inner.startsWith('#/') ? `openapi${inner}` : rewriteRefs(inner);
  }
  return result;
}
