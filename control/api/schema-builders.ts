/**
 * Small builders for the JSON Schemas that describe the API. The same schema objects validate
 * requests (ajv, compiled once at boot) and are published in `GET /openapi.json`, so the document
 * can never drift from what the server enforces.
 */

/** A JSON Schema (draft 2020-12 subset, as used in OpenAPI 3.1). */
export type JsonSchema = { [keyword: string]: unknown };

/** A closed object: unknown properties are rejected (the reference's schemas are closed). */
export function object(properties: Record<string, JsonSchema>, required: readonly string[] = [], extra: JsonSchema = {}): JsonSchema {
  return { type: 'object', properties, required: [...required], additionalProperties: false, ...extra };
}

/** An open object with free-form values (e.g. `meta`), bounded in number of properties. */
export function freeObject(maxProperties = 100, extra: JsonSchema = {}): JsonSchema {
  return { type: 'object', additionalProperties: true, maxProperties, ...extra };
}

/** A string with optional length bounds and pattern. */
export function string(options: { minLength?: number; maxLength?: number; pattern?: string; description?: string; enum?: readonly string[] } = {}): JsonSchema {
  const schema: JsonSchema = { type: 'string' };
  if (options.minLength !== undefined) schema['minLength'] = options.minLength;
  if (options.maxLength !== undefined) schema['maxLength'] = options.maxLength;
  if (options.pattern !== undefined) schema['pattern'] = options.pattern;
  if (options.enum !== undefined) schema['enum'] = [...options.enum];
  if (options.description !== undefined) schema['description'] = options.description;
  return schema;
}

/** An integer with optional bounds. Unix-millisecond times and millisecond durations use this. */
export function integer(options: { minimum?: number; maximum?: number; description?: string } = {}): JsonSchema {
  const schema: JsonSchema = { type: 'integer' };
  if (options.minimum !== undefined) schema['minimum'] = options.minimum;
  if (options.maximum !== undefined) schema['maximum'] = options.maximum;
  if (options.description !== undefined) schema['description'] = options.description;
  return schema;
}

/** A boolean. */
export function boolean(description?: string): JsonSchema {
  return description === undefined ? { type: 'boolean' } : { type: 'boolean', description };
}

/** An array with optional bounds. */
export function array(items: JsonSchema, options: { minItems?: number; maxItems?: number } = {}): JsonSchema {
  const schema: JsonSchema = { type: 'array', items };
  if (options.minItems !== undefined) schema['minItems'] = options.minItems;
  if (options.maxItems !== undefined) schema['maxItems'] = options.maxItems;
  return schema;
}

/** `schema` or `null` (a three-state field of an update: omitted, value, or null = clear). */
export function nullable(schema: JsonSchema): JsonSchema {
  const type = schema['type'];
  if (typeof type === 'string') return { ...schema, type: [type, 'null'] };
  return { anyOf: [schema, { type: 'null' }] };
}
