/**
 * @punctual/client: the typed client for the Punctual API and `verifyWebhook` for the requests
 * Punctual sends. This entry imports nothing from Node (no `node:` modules), so it runs in
 * browsers as on Node ≥ 20; the command line (src/cli.ts) is a separate entry.
 */
export {
  FlowLimits,
  Punctual,
  Schedules,
  ServiceCalls,
  SigningSecrets,
  TERMINAL_STATUSES,
  type BatchAnswer,
  type BatchBody,
  type BatchItem,
  type BulkAnswer,
  type BulkBody,
  type FlowLimit,
  type FlowLimitPutAnswer,
  type FlowLimitPutBody,
  type FlowLimitSummary,
  type Keyed,
  type KeyedOptions,
  type ListFilter,
  type ListQuery,
  type PunctualOptions,
  type ReplayAnswer,
  type ReplayBody,
  type RotateBody,
  type Schedule,
  type ScheduleCreateBody,
  type ScheduleListFilter,
  type ScheduleListQuery,
  type SchedulePage,
  type ScheduleStatus,
  type ScheduleSummary,
  type ScheduleUpdateBody,
  type ServiceCall,
  type ServiceCallPage,
  type ServiceCallStatus,
  type ServiceCallSummary,
  type SigningSecret,
  type SubmitAnswer,
  type SubmitBody,
  type TriggerAnswer,
} from './client';
export { PunctualError, PunctualTimeoutError, type FieldError, type Problem } from './errors';
export { retryAfterMs } from './retry';
export type { components, paths } from './schema';
export { verifyWebhook, WebhookVerificationError, type VerifiedWebhook, type WebhookHeaders } from './webhooks';
