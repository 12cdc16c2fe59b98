import { redactHeaders } from './redact';
import type { ServiceCallState } from './service-call';

/**
 * What the API shows of a call: its state without the tenant and the stream version. Header values
 * are redacted; the body is never part of it. A new field of the state is shown by adding it to
 * the view's schema (api/schemas.ts), which is what the serializer sends.
 */
export type ServiceCallView = Omit<ServiceCallState, 'tenantId' | 'version'>;

/** The request as the read model and the API keep it: sensitive header values redacted (ADR-0008). */
export function shownRequest(request: ServiceCallState['request']): ServiceCallState['request'] {
  return { method: request.method, url: request.url, headers: redactHeaders(request.headers) };
}

export function toView(state: ServiceCallState): ServiceCallView {
  const { tenantId: _tenantId, version: _version, ...view } = state;
  return { ...view, request: shownRequest(state.request) };
}
