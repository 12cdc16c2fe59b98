import type { FastifyInstance } from 'fastify';
import { activeSigningSecrets, MAX_ACTIVE_SECRETS, rotateSigningSecret } from '../../core/signing';
import type { AppDeps } from '../app';
import { authErrors, type TypeProvider } from '../schemas';

/**
 * The tenant's Standard Webhooks signing secrets: every request Punctual sends carries
 * `webhook-id`, `webhook-timestamp` and `webhook-signature` made with each secret listed here.
 */

const DEFAULT_GRACE_SECONDS = 24 * 3600;

const secretsResponse = {
  type: 'object',
  additionalProperties: false,
  required: ['secrets'],
  properties: {
    secrets: {
      type: 'array',
      description: 'Every secret that signs right now, oldest first.',
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['id', 'secret', 'createdAt', 'expiresAt'],
        properties: {
          id: { type: 'string', format: 'uuid' },
          secret: { type: 'string', description: '`whsec_` followed by the base64 key.' },
          createdAt: { type: 'string', format: 'date-time' },
          expiresAt: {
            type: ['string', 'null'],
            format: 'date-time',
            description: 'Set once a newer secret replaced it: it signs until then.',
          },
        },
      },
    },
  },
  examples: [
    {
      secrets: [
        {
          id: '0b9f5c7e-3c1a-4f55-9a0e-2f1d7c7b9e21',
          secret: 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw',
          createdAt: '2026-11-27T12:00:00.000Z',
          expiresAt: null,
        },
      ],
    },
  ],
} as const;

export async function signingSecretRoutes(instance: FastifyInstance, deps: AppDeps): Promise<void> {
  const fastify = instance.withTypeProvider<TypeProvider>();
  fastify.get(
    '/v1/signing-secrets',
    {
      schema: {
        operationId: 'listSigningSecrets',
        tags: ['signing'],
        summary: 'Show the request-signing secrets',
        description: 'Creates the first secret on first use.',
        response: { 200: secretsResponse, ...authErrors },
      },
    },
    async (request) => ({ secrets: await activeSigningSecrets(deps.db, deps.keyring, request.tenantId) }),
  );

  fastify.post(
    '/v1/signing-secrets/rotate',
    {
      schema: {
        operationId: 'rotateSigningSecret',
        tags: ['signing'],
        summary: 'Rotate the request-signing secret',
        description:
          'Creates a new secret. Every secret that signs now keeps signing for at most `graceSeconds` (default one day), so targets can switch without rejecting a request; `graceSeconds: 0` retires all of them at once (a leaked one too). ' +
          `At most ${MAX_ACTIVE_SECRETS} secrets sign at once: a rotation beyond retires the oldest. The body is optional.`,
        'x-body-optional': true,
        body: {
          type: ['object', 'null'],
          additionalProperties: false,
          properties: { graceSeconds: { type: 'integer', minimum: 0, maximum: 7 * 24 * 3600 } },
        },
        response: { 201: secretsResponse, ...authErrors },
      },
    },
    async (request, reply) => {
      const grace = request.body?.graceSeconds ?? DEFAULT_GRACE_SECONDS;
      const secrets = await rotateSigningSecret(deps.db, deps.keyring, request.tenantId, grace);
      request.log.info({ tenantId: request.tenantId, graceSeconds: grace }, 'signing secret rotated');
      return reply.code(201).send({ secrets });
    },
  );
}
