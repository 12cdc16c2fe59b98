import assert from 'node:assert/strict';
import SwaggerParser from '@apidevtools/swagger-parser';
import Ajv2020 from 'ajv/dist/2020';
import addFormats from 'ajv-formats';
import type { FastifyInstance } from 'fastify';

/**
 * Checks HTTP answers against the OpenAPI document the app serves: the status must be declared
 * for the operation, the media type listed, the body valid against the declared schema, and the
 * declared headers present.
 */

type Json = Record<string, any>;

export interface ApiContract {
  /** The document as served (refs kept). */
  document: Json;
  /** The same, dereferenced. */
  dereferenced: Json;
  /** Validates one answer; `path` is the OpenAPI path template, e.g. /v1/service-calls/{id}. */
  check(
    method: string,
    path: string,
    answer: { statusCode: number; headers: Record<string, unknown>; body: string },
  ): void;
  /** What has been checked, as "METHOD path status". */
  checked: Set<string>;
  /** Validates a value against a schema of the dereferenced document. */
  validate(schema: Json, value: unknown, what: string): void;
}

export async function loadContract(app: FastifyInstance): Promise<ApiContract> {
  const served = await app.inject({ method: 'GET', url: '/openapi.json' });
  assert.equal(served.statusCode, 200);
  const document = served.json<Json>();
  // validate() dereferences in place: give it a copy.
  await SwaggerParser.validate(structuredClone(document) as never);
  const dereferenced = (await SwaggerParser.dereference(structuredClone(document) as never)) as Json;
  const ajv = new Ajv2020({ strict: false, allErrors: true });
  addFormats(ajv);
  const compiled = new Map<Json, ReturnType<typeof ajv.compile>>();
  const validate = (schema: Json, value: unknown, what: string) => {
    let fn = compiled.get(schema);
    if (fn === undefined) {
      fn = ajv.compile(schema);
      compiled.set(schema, fn);
    }
    assert.ok(fn(value), `${what}: ${ajv.errorsText(fn.errors)}\n${JSON.stringify(value)}`);
  };
  const checked = new Set<string>();
  return {
    document,
    dereferenced,
    checked,
    validate,
    check(method, path, answer) {
      const what = `${method.toUpperCase()} ${path} → ${answer.statusCode}`;
      const operation = dereferenced.paths?.[path]?.[method.toLowerCase()] as Json | undefined;
      assert.ok(operation !== undefined, `${what}: no such operation in the document`);
      const response = operation.responses?.[String(answer.statusCode)] as Json | undefined;
      assert.ok(
        response !== undefined,
        `${what}: status not declared (declared: ${Object.keys(operation.responses ?? {}).join(', ')})`,
      );
      const contentType = answer.headers['content-type'];
      const mediaType = (typeof contentType === 'string' ? contentType : '').split(';')[0]!.trim();
      const media = response.content?.[mediaType] as Json | undefined;
      assert.ok(
        media !== undefined,
        `${what}: media type ${mediaType} not declared (${Object.keys(response.content ?? {}).join(', ')})`,
      );
      const isJson = /(^application\/json$)|(\+json$)/.test(mediaType);
      validate(media.schema as Json, isJson ? JSON.parse(answer.body) : answer.body, what);
      for (const name of Object.keys((response.headers as Json | undefined) ?? {})) {
        if (name === 'Idempotent-Replayed') continue; // declared as "present on a replay"
        assert.ok(answer.headers[name.toLowerCase()] !== undefined, `${what}: header ${name} missing`);
      }
      checked.add(`${method.toUpperCase()} ${path} ${answer.statusCode}`);
    },
  };
}

/** Every route the app registered, from fastify's route tree, as [METHOD, url] pairs. */
export function registeredRoutes(app: FastifyInstance): [string, string][] {
  const routes: [string, string][] = [];
  const stack: string[] = [];
  for (const line of app.printRoutes({ commonPrefix: false }).split('\n')) {
    const m = /^(.*?)(?:├── |└── )(.*?)(?: \(([A-Z, ]+)\))?$/.exec(line);
    if (m === null) continue;
    const depth = [...m[1]!].length / 4;
    stack.length = depth;
    stack.push(m[2]!);
    const url = stack.join('');
    for (const method of (m[3] ?? '')
      .split(',')
      .map((s) => s.trim())
      .filter((s) => s !== '')) {
      routes.push([method, url]);
    }
  }
  return routes;
}
