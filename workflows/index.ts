// Bundle entry for the worker: every workflow type Punctual registers.
export { serviceCall, cancelSignal, phaseQuery } from './service-call';
export type { ServiceCallInput, ServiceCallOutcome } from './service-call';
