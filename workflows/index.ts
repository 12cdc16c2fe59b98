// Bundle entry for the worker: every workflow type Punctual registers.
export {
  serviceCall,
  cancelSignal,
  rescheduledSignal,
  flowLimitChangedSignal,
  phaseQuery,
  SERVICE_CALL_REVISION,
} from './service-call';
export type { ServiceCallInput, ServiceCallOutcome } from './service-call';
export { scheduledRun } from './scheduled-run';
export type { ScheduledRunInput } from './scheduled-run';
