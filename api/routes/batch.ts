import Ajv from 'ajv';
import addFormats from 'ajv-formats';
import type { FastifyInstance } from 'fastify';
import { submitServiceCalls, type SubmitCommand } from '../../core/commands';
import { batchItemsSubmitted } from '../../core/metrics';
import type { AppDeps } from '../app';
import { itemInputProblem } from '../input-guard';
import { inputProblem, validationProblem, type Problem } from '../problem';
import { BATCH_BODY_LIMIT_BYTES, batchItemSchema, batchSubmitRouteSchema, type BatchItem } from '../schemas';
import { idempotencyKeyOf, submitCommandOf } from './service-calls';

/**
 * POST /v1/service-calls/batch (issue 14): up to 1,000 submits in one request, each judged as the
 * single submit would judge it and all recorded in one transaction (core/commands.ts
 * submitServiceCalls).
 *
 * The route's own schema checks only the batch's shape (an `items` array of 1–1,000 objects): an
 * item the submit schema refuses is that item's 400, not the batch's. Items are validated with an
 * Ajv set up as Fastify's (no coercion, defaults filled in, every error reported, formats), on
 * the very schema the OpenAPI document shows for them.
 */

const ajv = new Ajv({ coerceTypes: false, useDefaults: true, removeAdditional: false, allErrors: true });
addFormats(ajv);
const validateItem = ajv.compile<BatchItem>(batchItemSchema);
const validateShape = ajv.compile({
  ...batchSubmitRouteSchema.body,
  properties: { items: { ...batchSubmitRouteSchema.body.properties.items, items: { type: 'object' } } },
});

type ItemAnswer =
  { status: 200 | 202; id: string; dueAt: string; createdAt: string } | { status: 400 | 422; error: Problem };

function refused(error: Problem): ItemAnswer {
  return { status: error.status === 422 ? 422 : 400, error };
}

/** One item, judged as the single submit judges its body: in the guard's order, then the schema's, then the route's. */
function judge(
  deps: AppDeps,
  item: unknown,
  ctx: { tenantId: string; correlationId: string },
): { command: SubmitCommand } | { problem: Problem } {
  const guarded = itemInputProblem(item, ['request.body']);
  if (guarded !== undefined) return { problem: inputProblem(guarded)! };
  if (!validateItem(item)) return { problem: validationProblem(validateItem.errors ?? [], 'body') };
  try {
    const { idempotencyKey, ...body } = item;
    return {
      command: submitCommandOf(deps, body, {
        ...ctx,
        idempotencyKey: idempotencyKeyOf(idempotencyKey, 'idempotencyKey'),
      }),
    };
  } catch (err) {
    const problem = inputProblem(err);
    if (problem === undefined) throw err;
    return { problem };
  }
}

export async function batchRoutes(fastify: FastifyInstance, deps: AppDeps): Promise<void> {
  // Typed by hand, not by the type provider: the route validates only the batch's shape, so an
  // item is `unknown` until judge() has validated it on the submit schema.
  fastify.post<{ Body: { items: unknown[] } }>(
    '/v1/service-calls/batch',
    {
      schema: batchSubmitRouteSchema,
      bodyLimit: BATCH_BODY_LIMIT_BYTES,
      // Items are checked one by one below, with fields named as in a single submit's body.
      config: { itemsBody: 'items' },
      // The only part with a schema is the body: its shape here, each item in the handler.
      validatorCompiler: () => validateShape,
    },
    async (request) => {
      const { items } = request.body;
      request.chargeRateLimit(items.length - 1);
      const answers: (ItemAnswer | undefined)[] = items.map(() => undefined);
      const commands: { index: number; command: SubmitCommand }[] = [];
      items.forEach((item, index) => {
        const judged = judge(deps, item, { tenantId: request.tenantId, correlationId: request.correlationId });
        if ('command' in judged) commands.push({ index, command: judged.command });
        else answers[index] = refused(judged.problem);
      });
      const outcomes = await submitServiceCalls(
        deps,
        request.tenantId,
        commands.map((c) => c.command),
      );
      outcomes.forEach((outcome, i) => {
        const { index } = commands[i]!;
        if (outcome instanceof Error) {
          answers[index] = refused(inputProblem(outcome)!);
        } else {
          const { id, dueAt, createdAt, replayed } = outcome;
          answers[index] = { status: replayed ? 200 : 202, id, dueAt, createdAt };
        }
      });
      const counts: Record<number, number> = {};
      for (const a of answers) {
        if (a === undefined) throw new Error('a batch item went unanswered');
        counts[a.status] = (counts[a.status] ?? 0) + 1;
        batchItemsSubmitted.inc({ status: String(a.status) });
      }
      request.log.info(
        { tenantId: request.tenantId, items: items.length, byStatus: counts },
        'service call batch submitted',
      );
      return { items: answers };
    },
  );
}
