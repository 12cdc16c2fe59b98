import type { FastifyInstance, FastifySchemaCompiler } from 'fastify';
import type { Deps } from '../../core/commands';
import { listServiceCalls, type ListFilter } from '../../projections/service-calls';
import { encodeCursor, parseListQuery } from '../list-query';
import { listRouteSchema } from '../schemas';

/**
 * The query string is checked by parseListQuery rather than by Ajv: the schema in
 * listRouteSchema documents it, this compiler enforces it (see api/list-query.ts for why).
 */
const listValidatorCompiler: FastifySchemaCompiler<unknown> = ({ httpPart }) => {
  if (httpPart !== 'querystring') return () => true;
  return (data: unknown) => {
    try {
      return { value: parseListQuery(data) };
    } catch (err) {
      return { error: err instanceof Error ? err : new Error(String(err)) };
    }
  };
};

export async function serviceCallListRoutes(fastify: FastifyInstance, deps: Deps): Promise<void> {
  fastify.get<{ Querystring: ListFilter }>(
    '/v1/service-calls',
    { schema: listRouteSchema, validatorCompiler: listValidatorCompiler },
    async (request) => {
      const filter = request.query;
      const page = await listServiceCalls(deps.db, request.tenantId, filter);
      return {
        items: page.items,
        nextCursor: page.next === null ? null : encodeCursor(page.next, filter),
      };
    },
  );
}
